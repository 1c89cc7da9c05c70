//! Chapter: supervised representations.
//!
//! Train the notebook's ConvNet on the kept classes (train A, dev A), look at its
//! features at three depths with UMAP, then transfer the encoder to the held-out
//! classes with the notebook's probe, a fine-tune, and a converged probe.

use super::chapter::{Chapter, RunCtx};
use super::params::LabParams;
use super::pipeline::{EncoderChapter, Recipe};
use super::registry::{ChapterInfo, Exercise, TRAINING};
use crate::model::convnet::{ConvNet, ConvNetConfig};
use crate::train::Batch;
use crate::train::losses::cross_entropy;
use burn::prelude::*;

/// The chapter's registry entry.
pub const INFO: ChapterInfo = ChapterInfo {
    slug: "supervised",
    title: "Supervised representations",
    params: TRAINING,
    defaults: &[],
    exercises: &[
        Exercise {
            label: "Labelled ratio 0.05",
            set: &[("labeled_ratio", "0.05")],
        },
        Exercise {
            label: "Labelled ratio 0.2",
            set: &[("labeled_ratio", "0.2")],
        },
        Exercise {
            label: "Labelled ratio 1.0",
            set: &[("labeled_ratio", "1")],
        },
    ],
    loss_title: "Loss while training (mean per example)",
    monitors: &[],
    make: Some(make),
    built: true,
};

/// A fresh runner.
pub fn make() -> Box<dyn Chapter> {
    Box::<Supervised>::default()
}

/// The chapter: the notebook's ConvNet trained with cross-entropy.
pub type Supervised = EncoderChapter<SupervisedRecipe>;

/// Cross-entropy of the ConvNet on a batch.
pub fn ce_loss(model: &ConvNet, batch: &Batch) -> Tensor<1> {
    cross_entropy(model.forward(batch.images.clone()), batch.labels.clone())
}

/// What the supervised chapter trains, and how.
pub struct SupervisedRecipe;

impl Recipe for SupervisedRecipe {
    type Model = ConvNet;
    type Transfer = ConvNet;
    const INFO: &'static ChapterInfo = &INFO;
    const STAGE: &'static str = "training the ConvNet on the kept classes";
    const FEATURES: &'static [&'static str] = &["flat conv", "encoder", "normalised"];
    const CLASSIFIES_KEPT: bool = true;

    fn init(ctx: &RunCtx<'_>) -> ConvNet {
        let channels = ctx.prepared.dataset.manifest.channels;
        ConvNetConfig::new(channels, ctx.prepared.names_a.len()).init(&ctx.compute.train_device())
    }
    fn loss(model: &ConvNet, batch: &Batch, _params: &LabParams) -> Tensor<1> {
        ce_loss(model, batch)
    }
    fn features(model: &ConvNet, x: Tensor<4>) -> Vec<Tensor<2>> {
        let f = model.features(x);
        vec![f.flat, f.encoded, f.normalized]
    }
    fn with_head(model: ConvNet, n_b: usize, device: &Device) -> ConvNet {
        model.reset_head(n_b, device)
    }
    fn untrained(channels: usize, n_b: usize, _params: &LabParams, device: &Device) -> ConvNet {
        ConvNetConfig::new(channels, n_b).init(device)
    }
    fn kept_logits(model: &ConvNet, x: Tensor<4>) -> Option<Tensor<2>> {
        Some(model.forward(x))
    }
}
