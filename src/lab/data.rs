//! Chapter: the data. Which classes are held out and how big each part of the lab's
//! split is, in the JSON shape `replab splits --json` prints.

use super::registry::ChapterInfo;
use crate::data::Dataset;
use crate::data::splits::{SplitConfig, SplitSizes, make_split};
use serde::{Deserialize, Serialize};

/// The chapter's registry entry.
pub const INFO: ChapterInfo = ChapterInfo {
    slug: "data",
    title: "The data and the lab's splits",
    params: &["labeled_ratio", "held_out_ratio", "split_seed"],
    defaults: &[],
    exercises: &[],
    loss_title: "",
    monitors: &[],
    make: None,
    built: true,
};

/// The split report.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SplitReport {
    /// Dataset name.
    pub dataset: String,
    /// Held-out labels in the order numpy drew them.
    pub held_out_labels: Vec<u8>,
    /// Kept labels, ascending.
    pub kept_labels: Vec<u8>,
    /// Sizes of the six parts.
    pub sizes: SplitSizes,
}

/// Make the lab's split of `dataset` and report it.
pub fn split_report(dataset: &Dataset, cfg: &SplitConfig) -> Result<SplitReport, String> {
    let split = make_split(
        dataset.n_classes(),
        &dataset.train.labels,
        &dataset.val.labels,
        cfg,
    )
    .map_err(|e| e.to_string())?;
    Ok(SplitReport {
        dataset: dataset.manifest.name.clone(),
        held_out_labels: split.held_out_labels.clone(),
        kept_labels: split.kept_labels.clone(),
        sizes: split.sizes(),
    })
}

/// Up to `per_class` train rows of each class, in order, for the sample grid.
pub fn samples_per_class(dataset: &Dataset, per_class: usize) -> Vec<Vec<usize>> {
    let mut out = vec![Vec::new(); dataset.n_classes()];
    for (i, &l) in dataset.train.labels.iter().enumerate() {
        if let Some(v) = out.get_mut(l as usize)
            && v.len() < per_class
        {
            v.push(i);
        }
        if out.iter().all(|v| v.len() >= per_class) {
            break;
        }
    }
    out
}
