//! Chapter: SimCLR.
//!
//! Every unlabelled image becomes two augmented views; the network learns to tell a
//! view's partner from the other `2(B − 1)` views in the batch (NT-Xent). No label is
//! read until transfer, which puts a linear classifier on the encoder.

use super::autoencoding;
use super::chapter::{Chapter, RunCtx};
use super::params::LabParams;
use super::pipeline::{EncoderChapter, Recipe};
use super::registry::{ChapterInfo, Exercise};
use super::ssl::{configured, split_views, unlabeled_config, views};
use super::transfer::TransferSettings;
use crate::data::augment::Pipeline;
use crate::model::convnet::ConvNet;
use crate::model::simclr::{SimClrNet, SimClrNetConfig};
use crate::train::losses::{embedding_spread, nt_xent};
use crate::train::{Batch, Hooks, TrainConfig};
use burn::prelude::*;

const PARAMS: &[&str] = &[
    "epochs",
    "limit",
    "seed",
    "batch_size",
    "lr",
    "temperature",
    "jitter",
    "blur",
    "labeled_ratio",
    "held_out_ratio",
    "split_seed",
    "backend",
];

/// The chapter's registry entry.
pub const INFO: ChapterInfo = ChapterInfo {
    slug: "simclr",
    title: "SimCLR",
    params: PARAMS,
    defaults: &[("batch_size", "256"), ("temperature", "0.5")],
    exercises: &[
        Exercise {
            label: "Without colour jitter",
            set: &[("jitter", "off"), ("blur", "on")],
        },
        Exercise {
            label: "Without blur",
            set: &[("jitter", "on"), ("blur", "off")],
        },
        Exercise {
            label: "Without both",
            set: &[("jitter", "off"), ("blur", "off")],
        },
        Exercise {
            label: "Temperature 0.1",
            set: &[("temperature", "0.1")],
        },
        Exercise {
            label: "Temperature 0.5",
            set: &[("temperature", "0.5")],
        },
        Exercise {
            label: "Temperature 2.0",
            set: &[("temperature", "2.0")],
        },
    ],
    loss_title: "NT-Xent loss while training (mean per batch)",
    monitors: &["embedding spread"],
    make: Some(make),
    built: true,
};

/// A fresh runner.
pub fn make() -> Box<dyn Chapter> {
    Box::<SimClr>::default()
}

/// The chapter: the encoder trained with NT-Xent on pairs of views.
pub type SimClr = EncoderChapter<SimClrRecipe>;

/// What the SimCLR chapter trains, and how.
pub struct SimClrRecipe;

impl Recipe for SimClrRecipe {
    type Model = SimClrNet;
    type Transfer = ConvNet;
    const INFO: &'static ChapterInfo = &INFO;
    const STAGE: &'static str = "training the encoder with SimCLR (two augmented views per image)";
    const FEATURES: &'static [&'static str] = &["flat conv", "encoder", "projection"];
    const UNLABELED: bool = true;

    fn init(ctx: &RunCtx<'_>) -> SimClrNet {
        let channels = ctx.prepared.dataset.manifest.channels;
        SimClrNetConfig::new(channels).init(&ctx.compute.train_device())
    }
    fn config(ctx: &RunCtx<'_>) -> TrainConfig {
        unlabeled_config(ctx, None)
    }
    fn hooks<'a>(params: &LabParams) -> Hooks<'a, SimClrNet> {
        let pipeline = configured(Pipeline::SIMCLR, params);
        Hooks {
            transform: Some(Box::new(move |b, rng| views(b, &[pipeline, pipeline], rng))),
            ..Hooks::none()
        }
    }
    fn loss(model: &SimClrNet, batch: &Batch, params: &LabParams) -> Tensor<1> {
        // Each view has a forward pass of its own, so BatchNorm sees one view at a time.
        let v = split_views(batch.images.clone(), 2);
        let z1 = model.project(v[0].clone()); // [batch, 128]
        let z2 = model.project(v[1].clone());
        let spread = embedding_spread(z1.clone().detach());
        let loss = nt_xent(z1, z2, params.temperature);
        Tensor::cat(vec![loss, spread], 0)
    }
    fn features(model: &SimClrNet, x: Tensor<4>) -> Vec<Tensor<2>> {
        model.features(x).to_vec()
    }
    fn with_head(model: SimClrNet, n_b: usize, device: &Device) -> ConvNet {
        model.reset_head(n_b, device)
    }
    fn untrained(channels: usize, n_b: usize, _params: &LabParams, device: &Device) -> ConvNet {
        SimClrNetConfig::new(channels)
            .init(device)
            .reset_head(n_b, device)
    }
    fn transfer_settings(params: &LabParams) -> TransferSettings {
        autoencoding::transfer_settings(params)
    }
}
