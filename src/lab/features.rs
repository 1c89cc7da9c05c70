//! Looking at what a network learned: features of a view at several depths, and
//! their UMAP layouts.

use super::error::{LabError, LabEvent};
use crate::analysis::umap;
use crate::data::SplitData;
use crate::platform::{self, Compute};
use crate::train::engine::collect_rows;
use crate::train::{Images, RunControl, View};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// One 2-D layout of a feature set.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Embedding2d {
    /// What was embedded, e.g. "encoder (128-d)".
    pub title: String,
    /// Points.
    pub points: Vec<[f32; 2]>,
    /// Original class of each point.
    pub labels: Vec<usize>,
    /// Test-split row of each point (for hover thumbnails).
    pub rows: Vec<usize>,
}

/// Features of a view at several points, row-major.
pub struct FeatureSet {
    /// `(name, dim, rows * dim floats)`.
    pub sets: Vec<(String, usize, Vec<f32>)>,
    /// Rows.
    pub n: usize,
}

/// Run a feature function over a view in evaluation mode.
pub async fn extract<M: Module>(
    model: &M,
    compute: &Compute,
    split: &SplitData,
    view: &View,
    control: &RunControl,
    names: &[&str],
    f: &dyn Fn(&M, Tensor<4>) -> Vec<Tensor<2>>,
) -> Result<FeatureSet, LabError> {
    let valid = model.valid();
    let rows = collect_rows(&valid, compute, &Images::new(split, view), control, f).await?;
    let n = view.len();
    let sets = names
        .iter()
        .zip(rows)
        .map(|(name, v)| {
            let d = v.len().checked_div(n).unwrap_or(0);
            (name.to_string(), d, v)
        })
        .collect();
    Ok(FeatureSet { sets, n })
}

/// UMAP layouts (cosine, 15 neighbours, min_dist 0.1) of up to 300 test images per
/// class, computed in slices with yields in between so the page stays live.
pub async fn umap_layouts(
    features: &FeatureSet,
    view: &View,
    seed: u64,
    control: &RunControl,
    observer: &mut dyn FnMut(LabEvent),
    progress: (f64, f64),
) -> Result<Vec<Embedding2d>, LabError> {
    let sample = umap::sample_per_class(&view.labels, 300, seed);
    let mut out = Vec::new();
    let count = features.sets.len().max(1) as f64;
    for (k, (name, d, rows)) in features.sets.iter().enumerate() {
        let d = *d;
        let picked: Vec<f32> = sample
            .iter()
            .filter_map(|&i| rows.get(i * d..(i + 1) * d))
            .flatten()
            .copied()
            .collect();
        let cfg = umap::UmapConfig {
            seed: seed.wrapping_add(k as u64),
            ..umap::UmapConfig::default()
        };
        let mut run = umap::UmapRun::new(&picked, sample.len(), d, &cfg)
            .map_err(|e| LabError::Analysis(format!("UMAP of {name}: {e}")))?;
        loop {
            control.checkpoint().await?;
            let done = run.step(10);
            let frac = (k as f64 + run.progress() as f64) / count;
            observer(LabEvent::Stage {
                name: &format!("UMAP of {name}"),
                fraction: progress.0 + (progress.1 - progress.0) * frac,
            });
            platform::yield_now().await;
            if done {
                break;
            }
        }
        out.push(Embedding2d {
            title: format!("{name} ({d}-d)"),
            points: run.embedding().to_vec(),
            labels: sample
                .iter()
                .filter_map(|&i| view.labels.get(i).copied())
                .collect(),
            rows: sample
                .iter()
                .filter_map(|&i| view.indices.get(i).copied())
                .collect(),
        });
    }
    Ok(out)
}
