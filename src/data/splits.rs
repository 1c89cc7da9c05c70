//! The notebook's label and sample split, reproduced index for index.
//!
//! The notebook hides a share of the classes ("held out", task B) and keeps
//! the rest (task A); within every class it pretends only a share of the
//! samples is labeled. All randomness comes from one
//! `np.random.default_rng(split_seed)`, used in this order:
//!
//! 1. `choice` of the held-out classes among `0..n_classes`;
//! 2. one list `shuffle` per train class, in the order the classes first
//!    appear in the train labels; the first `ceil(len * labeled_ratio)`
//!    shuffled indices are "labeled", the rest "unlabeled";
//! 3. the same for the val labels, continuing the same stream.
//!
//! Subset A lists the labeled indices of the kept classes (in ascending class
//! order), subset B those of the held-out classes (in the order `choice`
//! returned them), and the unlabeled list concatenates the unlabeled indices
//! per class in first-appearance order.
//!
//! A two-class dataset (BreastMNIST, PneumoniaMNIST) holds one class out and
//! keeps one: task A then has a single class. That is what the notebook does,
//! so [`make_split`] returns such a split; a classifier trained on it can
//! only learn that one label.

use crate::data::rng::NumpyRng;

/// The notebook's split parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SplitConfig {
    /// Share of each class's samples treated as labeled (`pretend_labeled_ratio`).
    pub labeled_ratio: f64,
    /// Share of the classes held out for the transfer task (`held_out_ratio`).
    pub held_out_ratio: f64,
    /// Seed of `np.random.default_rng` for the whole split.
    pub split_seed: u64,
}

impl Default for SplitConfig {
    /// The notebook's values: 20 % labeled, 30 % of classes held out, seed 42.
    fn default() -> Self {
        Self {
            labeled_ratio: 0.2,
            held_out_ratio: 0.3,
            split_seed: 42,
        }
    }
}

/// Why a split could not be made. Each variant's message says what it means, and
/// its fields are the values that message names.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SplitError {
    #[error("{name} must be a finite number in (0, 1], got {value}")]
    RatioOutOfRange { name: &'static str, value: f64 },
    #[error("held-out ratio {ratio} holds out no class of {n_classes}; it must be greater than 0")]
    NoHeldOutClass { ratio: f64, n_classes: usize },
    #[error(
        "held-out ratio {ratio} holds out all {n_classes} classes, leaving no kept class for task A"
    )]
    NoKeptClass { ratio: f64, n_classes: usize },
    #[error("a split needs at least 2 classes, got {n_classes}")]
    TooFewClasses { n_classes: usize },
    #[error("labels are stored as u8, so at most 256 classes are supported, got {n_classes}")]
    TooManyClasses { n_classes: usize },
    #[error(
        "{split} label at index {index} is {label}, but the dataset has only {n_classes} classes"
    )]
    LabelOutOfRange {
        split: &'static str,
        index: usize,
        label: u8,
        n_classes: usize,
    },
    #[error("the {split} split has no samples")]
    EmptySplit { split: &'static str },
    #[error(
        "the {split} split holds images of only {present} class(es); the lab needs at least 2, one to learn on and one held out for transfer"
    )]
    TooFewClassesPresent { split: &'static str, present: usize },
    #[error("subset {subset} came out empty: none of its classes occurs in the {split} split")]
    EmptySubset {
        subset: &'static str,
        split: &'static str,
    },
}

/// The result of the notebook's split. Indices point into the official train
/// and val arrays.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabSplit {
    /// Held-out classes in the order numpy's `choice` returned them.
    pub held_out_labels: Vec<u8>,
    /// Kept classes in ascending order.
    pub kept_labels: Vec<u8>,
    /// Labeled train samples of the kept classes (task A).
    pub train_a: Vec<usize>,
    /// Labeled train samples of the held-out classes (task B).
    pub train_b: Vec<usize>,
    /// All train samples not treated as labeled, of every class.
    pub train_unlabeled: Vec<usize>,
    /// Labeled val samples of the kept classes.
    pub dev_a: Vec<usize>,
    /// Labeled val samples of the held-out classes.
    pub dev_b: Vec<usize>,
    /// All val samples not treated as labeled.
    pub dev_unlabeled: Vec<usize>,
}

/// How many samples each subset of a [`LabSplit`] holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SplitSizes {
    /// Labelled train images of the kept classes.
    pub train_a: usize,
    /// Labelled train images of the held-out classes.
    pub train_b: usize,
    /// Train images treated as unlabelled.
    pub train_unlabeled: usize,
    /// Labelled dev images of the kept classes.
    pub dev_a: usize,
    /// Labelled dev images of the held-out classes.
    pub dev_b: usize,
    /// Dev images treated as unlabelled.
    pub dev_unlabeled: usize,
}

impl LabSplit {
    /// The task-A class index of an original label (`kept_label_map`), or
    /// `None` if the label is held out or unknown.
    pub fn kept_index(&self, original: u8) -> Option<usize> {
        self.kept_labels.binary_search(&original).ok()
    }

    /// The task-B class index of an original label (`held_out_label_map`:
    /// position among the held-out labels sorted ascending), or `None` if
    /// the label is kept or unknown.
    pub fn held_out_index(&self, original: u8) -> Option<usize> {
        if !self.held_out_labels.contains(&original) {
            return None;
        }
        Some(
            self.held_out_labels
                .iter()
                .filter(|&&label| label < original)
                .count(),
        )
    }

    /// The number of samples in each subset.
    pub fn sizes(&self) -> SplitSizes {
        SplitSizes {
            train_a: self.train_a.len(),
            train_b: self.train_b.len(),
            train_unlabeled: self.train_unlabeled.len(),
            dev_a: self.dev_a.len(),
            dev_b: self.dev_b.len(),
            dev_unlabeled: self.dev_unlabeled.len(),
        }
    }
}

/// Splits a dataset exactly as the notebook does (see the module docs).
///
/// `train_labels` and `val_labels` are the official train and val labels in
/// file order. Fails on invalid ratios, fewer than 2 (or more than 256)
/// classes, labels `>= n_classes`, an empty train or val split, or when
/// task A or B would get no sample in either split.
pub fn make_split(
    n_classes: usize,
    train_labels: &[u8],
    val_labels: &[u8],
    cfg: &SplitConfig,
) -> Result<LabSplit, SplitError> {
    check_ratio("labeled ratio", cfg.labeled_ratio)?;
    if cfg.held_out_ratio == 0.0 {
        return Err(SplitError::NoHeldOutClass {
            ratio: cfg.held_out_ratio,
            n_classes,
        });
    }
    check_ratio("held-out ratio", cfg.held_out_ratio)?;
    if n_classes < 2 {
        return Err(SplitError::TooFewClasses { n_classes });
    }
    if n_classes > usize::from(u8::MAX) + 1 {
        return Err(SplitError::TooManyClasses { n_classes });
    }
    check_labels("train", train_labels, n_classes)?;
    check_labels("val", val_labels, n_classes)?;
    for (split, labels) in [("train", train_labels), ("val", val_labels)] {
        let mut seen = vec![false; n_classes];
        for &l in labels {
            if let Some(slot) = seen.get_mut(usize::from(l)) {
                *slot = true;
            }
        }
        let present = seen.iter().filter(|&&b| b).count();
        if present < 2 {
            return Err(SplitError::TooFewClassesPresent { split, present });
        }
    }

    let n_held_out = ceil_count(n_classes, cfg.held_out_ratio);
    if n_held_out == 0 {
        return Err(SplitError::NoHeldOutClass {
            ratio: cfg.held_out_ratio,
            n_classes,
        });
    }
    if n_held_out >= n_classes {
        return Err(SplitError::NoKeptClass {
            ratio: cfg.held_out_ratio,
            n_classes,
        });
    }

    let mut rng = NumpyRng::new(cfg.split_seed);
    // Class ids are < 256 (checked above), so the casts are lossless.
    let held_out_labels: Vec<u8> = rng
        .choice_indices(n_classes, n_held_out)
        .into_iter()
        .map(|label| label as u8)
        .collect();
    let kept_labels: Vec<u8> = (0..n_classes)
        .map(|label| label as u8)
        .filter(|label| !held_out_labels.contains(label))
        .collect();

    let train = split_by_class(train_labels, n_classes, cfg.labeled_ratio, &mut rng);
    let val = split_by_class(val_labels, n_classes, cfg.labeled_ratio, &mut rng);

    let split = LabSplit {
        train_a: train.labeled_of(&kept_labels),
        train_b: train.labeled_of(&held_out_labels),
        train_unlabeled: train.all_unlabeled(),
        dev_a: val.labeled_of(&kept_labels),
        dev_b: val.labeled_of(&held_out_labels),
        dev_unlabeled: val.all_unlabeled(),
        held_out_labels,
        kept_labels,
    };
    for (subset, split_name, indices) in [
        ("train_a", "train", &split.train_a),
        ("train_b", "train", &split.train_b),
        ("dev_a", "val", &split.dev_a),
        ("dev_b", "val", &split.dev_b),
    ] {
        if indices.is_empty() {
            return Err(SplitError::EmptySubset {
                subset,
                split: split_name,
            });
        }
    }
    Ok(split)
}

fn check_ratio(name: &'static str, value: f64) -> Result<(), SplitError> {
    if value.is_finite() && value > 0.0 && value <= 1.0 {
        Ok(())
    } else {
        Err(SplitError::RatioOutOfRange { name, value })
    }
}

fn check_labels(split: &'static str, labels: &[u8], n_classes: usize) -> Result<(), SplitError> {
    if labels.is_empty() {
        return Err(SplitError::EmptySplit { split });
    }
    match labels
        .iter()
        .position(|&label| usize::from(label) >= n_classes)
    {
        Some(index) => Err(SplitError::LabelOutOfRange {
            split,
            index,
            label: labels[index],
            n_classes,
        }),
        None => Ok(()),
    }
}

/// `int(np.ceil(count * ratio))`, computed in f64 as numpy does.
fn ceil_count(count: usize, ratio: f64) -> usize {
    (count as f64 * ratio).ceil() as usize
}

/// One split's indices grouped by class, after the per-class shuffles.
struct ClassGroups {
    /// Classes in the order they first appear in the labels.
    appearance_order: Vec<u8>,
    /// Per class id: the labeled indices.
    labeled: Vec<Vec<usize>>,
    /// Per class id: the unlabeled indices.
    unlabeled: Vec<Vec<usize>>,
}

impl ClassGroups {
    fn labeled_of(&self, classes: &[u8]) -> Vec<usize> {
        classes
            .iter()
            .filter_map(|&class| self.labeled.get(usize::from(class)))
            .flatten()
            .copied()
            .collect()
    }

    fn all_unlabeled(&self) -> Vec<usize> {
        self.appearance_order
            .iter()
            .filter_map(|&class| self.unlabeled.get(usize::from(class)))
            .flatten()
            .copied()
            .collect()
    }
}

/// Groups indices by class in first-appearance order, shuffles each group
/// with `rng` and cuts it into labeled and unlabeled parts. Labels must be
/// `< n_classes`.
fn split_by_class(
    labels: &[u8],
    n_classes: usize,
    labeled_ratio: f64,
    rng: &mut NumpyRng,
) -> ClassGroups {
    let mut appearance_order = Vec::new();
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); n_classes];
    for (index, &label) in labels.iter().enumerate() {
        if let Some(group) = by_class.get_mut(usize::from(label)) {
            if group.is_empty() {
                appearance_order.push(label);
            }
            group.push(index);
        }
    }

    let mut labeled = vec![Vec::new(); n_classes];
    let mut unlabeled = vec![Vec::new(); n_classes];
    for &class in &appearance_order {
        let class = usize::from(class);
        let mut indices = std::mem::take(&mut by_class[class]);
        let n_labeled = ceil_count(indices.len(), labeled_ratio).min(indices.len());
        rng.shuffle(&mut indices);
        unlabeled[class] = indices.split_off(n_labeled);
        labeled[class] = indices;
    }
    ClassGroups {
        appearance_order,
        labeled,
        unlabeled,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_matches_notebook() {
        let cfg = SplitConfig::default();
        assert_eq!(cfg.labeled_ratio, 0.2);
        assert_eq!(cfg.held_out_ratio, 0.3);
        assert_eq!(cfg.split_seed, 42);
    }

    #[test]
    fn label_maps_follow_sorted_order() {
        let train: Vec<u8> = (0..80).map(|i| (i % 8) as u8).collect();
        let val: Vec<u8> = (0..40).map(|i| (i % 8) as u8).collect();
        let split = make_split(8, &train, &val, &SplitConfig::default()).unwrap();
        assert_eq!(split.held_out_labels, [7, 0, 5]);
        assert_eq!(split.kept_labels, [1, 2, 3, 4, 6]);
        assert_eq!(split.held_out_index(0), Some(0));
        assert_eq!(split.held_out_index(5), Some(1));
        assert_eq!(split.held_out_index(7), Some(2));
        assert_eq!(split.held_out_index(1), None);
        assert_eq!(split.kept_index(1), Some(0));
        assert_eq!(split.kept_index(6), Some(4));
        assert_eq!(split.kept_index(7), None);
        assert_eq!(split.kept_index(200), None);
    }
}
