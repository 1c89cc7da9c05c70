//! Chapter: supervised contrastive learning (SupCon).
//!
//! The same encoder learns by pulling same-class images together and pushing others
//! apart on the unit sphere, with no classifier at all. Transfer then puts a linear
//! classifier on the encoder output (not after the projection head).

use super::chapter::{Chapter, RunCtx};
use super::params::LabParams;
use super::pipeline::{EncoderChapter, Recipe, train_config};
use super::registry::{ChapterInfo, Exercise};
use crate::model::contrastive::{ContrastiveConvNet, ContrastiveConvNetConfig};
use crate::model::convnet::ConvNet;
use crate::train::losses::supcon;
use crate::train::{Batch, TrainConfig};
use burn::prelude::*;

/// The chapter's registry entry.
pub const INFO: ChapterInfo = ChapterInfo {
    slug: "supcon",
    title: "Supervised contrastive learning",
    params: &[
        "epochs",
        "limit",
        "seed",
        "batch_size",
        "lr",
        "temperature",
        "labeled_ratio",
        "held_out_ratio",
        "split_seed",
        "backend",
    ],
    defaults: &[],
    exercises: &[
        Exercise {
            label: "Temperature 0.01",
            set: &[("temperature", "0.01")],
        },
        Exercise {
            label: "Temperature 0.07",
            set: &[("temperature", "0.07")],
        },
        Exercise {
            label: "Temperature 0.5",
            set: &[("temperature", "0.5")],
        },
        Exercise {
            label: "Batch 32",
            set: &[("batch_size", "32")],
        },
        Exercise {
            label: "Batch 512",
            set: &[("batch_size", "512")],
        },
    ],
    loss_title: "SupCon loss while training (mean per example)",
    monitors: &[],
    make: Some(make),
    built: true,
};

/// A fresh runner.
pub fn make() -> Box<dyn Chapter> {
    Box::<SupCon>::default()
}

/// The chapter: the same encoder trained with the SupCon loss.
pub type SupCon = EncoderChapter<SupConRecipe>;

/// What the SupCon chapter trains, and how.
pub struct SupConRecipe;

impl Recipe for SupConRecipe {
    type Model = ContrastiveConvNet;
    type Transfer = ConvNet;
    const INFO: &'static ChapterInfo = &INFO;
    const STAGE: &'static str = "training the encoder with the SupCon loss";
    const FEATURES: &'static [&'static str] = &["flat conv", "encoder", "contrastive"];

    fn init(ctx: &RunCtx<'_>) -> ContrastiveConvNet {
        let channels = ctx.prepared.dataset.manifest.channels;
        ContrastiveConvNetConfig::new(channels).init(&ctx.compute.train_device())
    }
    fn config(ctx: &RunCtx<'_>) -> TrainConfig {
        TrainConfig {
            // The notebook drops the last partial batch here.
            drop_last: ctx.prepared.train_a.len() >= ctx.params.batch_size,
            ..train_config(ctx)
        }
    }
    fn loss(model: &ContrastiveConvNet, batch: &Batch, params: &LabParams) -> Tensor<1> {
        supcon(
            model.project(batch.images.clone()),
            batch.labels.clone(),
            params.temperature,
        )
    }
    fn features(model: &ContrastiveConvNet, x: Tensor<4>) -> Vec<Tensor<2>> {
        model.features(x).to_vec()
    }
    fn with_head(model: ContrastiveConvNet, n_b: usize, device: &Device) -> ConvNet {
        model.reset_head(n_b, device)
    }
    fn untrained(channels: usize, n_b: usize, _params: &LabParams, device: &Device) -> ConvNet {
        ContrastiveConvNetConfig::new(channels)
            .init(device)
            .reset_head(n_b, device)
    }
}
