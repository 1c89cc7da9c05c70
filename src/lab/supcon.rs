//! Chapter: supervised contrastive learning (SupCon).
//!
//! The same encoder learns by pulling same-class images together and pushing others
//! apart on the unit sphere, with no classifier at all. Transfer then puts a linear
//! classifier on the encoder output (not after the projection head).

use super::chapter::{Chapter, ChapterOutput, LocalBoxFuture, RunCtx};
use super::error::LabError;
use super::pipeline::{test_umaps, train_config, train_main, transfer_output};
use super::registry::{ChapterInfo, Exercise};
use crate::model::contrastive::{ContrastiveConvNet, ContrastiveConvNetConfig};
use crate::train::engine::{LossFn, all_params};
use crate::train::losses::supcon;
use crate::train::{Batch, Hooks, Trainer};
use std::any::Any;

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
    make: Some(make),
    built: true,
};

/// A fresh runner.
pub fn make() -> Box<dyn Chapter> {
    Box::<SupCon>::default()
}

/// The chapter, with the model it trained.
#[derive(Default)]
pub struct SupCon {
    /// The trainer, once a run has started.
    pub trainer: Option<Trainer<ContrastiveConvNet>>,
}

impl Chapter for SupCon {
    fn info(&self) -> &'static ChapterInfo {
        &INFO
    }

    fn run<'a>(&'a mut self, mut ctx: RunCtx<'a>) -> LocalBoxFuture<'a, Result<ChapterOutput, LabError>> {
        Box::pin(async move {
            let channels = ctx.prepared.dataset.manifest.channels;
            let n_b = ctx.prepared.names_b.len();
            let init = |ctx: &RunCtx<'_>| {
                let model = ContrastiveConvNetConfig::new(channels).init(&ctx.compute.train_device());
                let mut cfg = train_config(ctx);
                // The notebook drops the last partial batch here.
                cfg.drop_last = ctx.prepared.train_a.len() >= ctx.params.batch_size;
                Trainer::new(model, cfg, all_params::<ContrastiveConvNet>)
            };
            let t = ctx.params.temperature;
            let loss_fn = move |m: &ContrastiveConvNet, b: &Batch| {
                supcon(m.project(b.images.clone()), b.labels.clone(), t)
            };
            let loss: &LossFn<ContrastiveConvNet> = &loss_fn;
            let (model, history) = train_main(
                &mut self.trainer,
                &init,
                loss,
                &mut Hooks::none(),
                "training the encoder with the SupCon loss",
                &mut ctx,
            )
            .await?;
            let umaps = test_umaps(
                &model,
                &["flat conv", "encoder", "contrastive"],
                &|m: &ContrastiveConvNet, x| m.features(x).to_vec(),
                &mut ctx,
                (0.5, 0.7),
            )
            .await?;
            let device = ctx.compute.train_device();
            let seed = ctx.params.seed;
            let fresh_head = || {
                device.seed(seed.wrapping_add(7));
                model.clone().reset_head(n_b, &device)
            };
            let untrained = || {
                device.seed(seed.wrapping_add(99));
                ContrastiveConvNetConfig::new(channels)
                    .init(&device)
                    .reset_head(n_b, &device)
            };
            transfer_output(history, umaps, &fresh_head, &untrained, &mut ctx).await
        })
    }

    fn reset(&mut self) {
        self.trainer = None;
    }

    fn epochs_trained(&self) -> usize {
        self.trainer.as_ref().map_or(0, Trainer::epochs_done)
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}
