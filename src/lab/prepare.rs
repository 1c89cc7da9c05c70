//! The lab's views of a dataset (the split, with `limit` applied) and the checks
//! every chapter makes before any work starts.

use super::error::LabError;
use super::params::LabParams;
use crate::data::Dataset;
use crate::data::splits::{LabSplit, SplitConfig, make_split};
use crate::train::View;
use std::sync::Arc;

/// The side the chapters' networks take, in pixels.
pub const IMAGE_SIZE: usize = 28;
/// The fewest test images the UMAP accepts (15 neighbours plus the point itself).
pub const MIN_UMAP_POINTS: usize = 16;

/// The dataset with the lab's split applied and `limit` taken.
#[derive(Clone)]
pub struct Prepared {
    /// The decoded bundle.
    pub dataset: Arc<Dataset>,
    /// The split.
    pub split: LabSplit,
    /// Labelled train images of the kept classes, labels remapped.
    pub train_a: View,
    /// Labelled dev images of the kept classes.
    pub dev_a: View,
    /// Labelled train images of the held-out classes, labels remapped.
    pub train_b: View,
    /// Labelled dev images of the held-out classes.
    pub dev_b: View,
    /// The "unlabelled" train images (original labels, which no training reads).
    pub train_unlabeled: View,
    /// The "unlabelled" dev images.
    pub dev_unlabeled: View,
    /// All test images with their original labels.
    pub test: View,
    /// Test images of the held-out classes, remapped.
    pub test_b: View,
    /// Class names of the kept classes, in remapped order.
    pub names_a: Vec<String>,
    /// Class names of the held-out classes, in remapped order.
    pub names_b: Vec<String>,
    /// What was adjusted (a limit above a part's size).
    pub notes: Vec<String>,
}

/// Up to `limit` rows spread evenly over the view, so every class keeps its share.
pub fn spread(view: View, limit: Option<usize>) -> View {
    let n = view.len();
    match limit {
        Some(l) if l < n => {
            let picks: Vec<usize> = (0..l).map(|i| i * n / l).collect();
            View {
                indices: picks
                    .iter()
                    .filter_map(|&p| view.indices.get(p).copied())
                    .collect(),
                labels: picks
                    .iter()
                    .filter_map(|&p| view.labels.get(p).copied())
                    .collect(),
            }
        }
        _ => view,
    }
}

fn distinct(labels: &[usize]) -> usize {
    let mut v = labels.to_vec();
    v.sort_unstable();
    v.dedup();
    v.len()
}

/// Apply the lab's split and the `limit` to a dataset, refusing what no chapter can
/// use: images that are not 28×28, fewer than two kept or held-out classes, and a
/// limit that leaves too little for the UMAP or the probes.
pub fn prepare(dataset: Arc<Dataset>, params: &LabParams) -> Result<Prepared, LabError> {
    let size = dataset.train.size;
    if size != IMAGE_SIZE {
        return Err(LabError::Params(format!(
            "dataset '{}' has {size}×{size} images; the lab's networks take {IMAGE_SIZE}×{IMAGE_SIZE} (MedMNIST's default size)",
            dataset.manifest.name
        )));
    }
    let cfg = SplitConfig {
        labeled_ratio: params.labeled_ratio,
        held_out_ratio: params.held_out_ratio,
        split_seed: params.split_seed,
    };
    let n_classes = dataset.n_classes();
    let split = make_split(n_classes, &dataset.train.labels, &dataset.val.labels, &cfg)
        .map_err(|e| LabError::Params(format!("held_out_ratio/labeled_ratio: {e}")))?;
    let (n_a, n_b) = (split.kept_labels.len(), split.held_out_labels.len());
    if n_b < 2 {
        return Err(LabError::Params(format!(
            "held_out_ratio={} holds out {n_b} of {n_classes} classes; transfer needs at least two held-out classes: raise held_out_ratio",
            params.held_out_ratio
        )));
    }
    if n_a < 2 {
        return Err(LabError::Params(format!(
            "held_out_ratio={} keeps {n_a} of {n_classes} classes; training needs at least two kept classes: lower held_out_ratio",
            params.held_out_ratio
        )));
    }
    let kept = |l: u8| split.kept_index(l);
    let held = |l: u8| split.held_out_index(l);
    let all = |l: u8| Some(l as usize);
    let lim = params.limit;
    let all_test: Vec<usize> = (0..dataset.test.len()).collect();
    let full = [
        ("train A", View::new(&dataset.train, &split.train_a, kept)),
        ("dev A", View::new(&dataset.val, &split.dev_a, kept)),
        ("train B", View::new(&dataset.train, &split.train_b, held)),
        ("dev B", View::new(&dataset.val, &split.dev_b, held)),
        (
            "unlabelled train",
            View::new(&dataset.train, &split.train_unlabeled, all),
        ),
        (
            "unlabelled dev",
            View::new(&dataset.val, &split.dev_unlabeled, all),
        ),
        ("test", View::new(&dataset.test, &all_test, all)),
        ("test B", View::new(&dataset.test, &all_test, held)),
    ];
    let mut notes = Vec::new();
    if let Some(l) = lim {
        let capped: Vec<String> = full
            .iter()
            .filter(|(_, v)| v.len() < l)
            .map(|(name, v)| format!("{name} ({})", v.len()))
            .collect();
        if !capped.is_empty() {
            notes.push(format!(
                "limit={l} is above the size of {}: all of those images are used",
                capped.join(", ")
            ));
        }
    }
    let [
        train_a,
        dev_a,
        train_b,
        dev_b,
        train_unlabeled,
        dev_unlabeled,
        test,
        test_b,
    ] = full.map(|(_, v)| spread(v, lim));
    let name = |l: &u8| {
        dataset
            .manifest
            .class_names
            .get(*l as usize)
            .cloned()
            .unwrap_or_default()
    };
    let mut kept_sorted = split.kept_labels.clone();
    kept_sorted.sort_unstable();
    let mut held_sorted = split.held_out_labels.clone();
    held_sorted.sort_unstable();
    let names_a = kept_sorted.iter().map(name).collect();
    let names_b = held_sorted.iter().map(name).collect();
    let limit_text = lim
        .map(|l| format!("limit={l}"))
        .unwrap_or_else(|| "the split".into());
    let (classes_a, classes_b) = (distinct(&train_a.labels), distinct(&train_b.labels));
    if classes_a < 2 || classes_b < 2 {
        return Err(LabError::Params(format!(
            "{limit_text} leaves train A with {classes_a} and train B with {classes_b} labelled classes; both need at least two: raise labeled_ratio or limit"
        )));
    }
    if test.len() < MIN_UMAP_POINTS || test_b.is_empty() {
        return Err(LabError::Params(format!(
            "{limit_text} leaves {} test images ({} of held-out classes); the UMAP needs at least {MIN_UMAP_POINTS} and the probe some of each side: raise limit",
            test.len(),
            test_b.len()
        )));
    }
    Ok(Prepared {
        dataset,
        split,
        train_a,
        dev_a,
        train_b,
        dev_b,
        train_unlabeled,
        dev_unlabeled,
        test,
        test_b,
        names_a,
        names_b,
        notes,
    })
}
