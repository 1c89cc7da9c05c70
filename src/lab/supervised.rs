//! Chapter: supervised representations.
//!
//! Train the notebook's ConvNet on the kept classes (train A, dev A), look at its
//! features at three depths with UMAP, then transfer the encoder to the held-out
//! classes with the notebook's probe, a fine-tune, and a converged probe.

use super::chapter::{Chapter, ChapterOutput, LocalBoxFuture, RunCtx};
use super::error::LabError;
use super::pipeline::{test_umaps, train_config, train_main, transfer_output};
use super::registry::{ChapterInfo, Exercise, TRAINING};
use super::transfer::{TransferModel, classify};
use crate::model::convnet::{ConvNet, ConvNetConfig};
use crate::train::engine::{LossFn, all_params};
use crate::train::losses::cross_entropy;
use crate::train::{Batch, Hooks, Images, Trainer};
use burn::prelude::*;
use std::any::Any;

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
    make: Some(make),
    built: true,
};

/// A fresh runner.
pub fn make() -> Box<dyn Chapter> {
    Box::<Supervised>::default()
}

/// Cross-entropy of the ConvNet on a batch.
pub fn ce_loss(model: &ConvNet, batch: &Batch) -> Tensor<1> {
    cross_entropy(model.forward(batch.images.clone()), batch.labels.clone())
}

/// The chapter, with the model it trained.
#[derive(Default)]
pub struct Supervised {
    /// The trainer, once a run has started.
    pub trainer: Option<Trainer<ConvNet>>,
}

impl Chapter for Supervised {
    fn info(&self) -> &'static ChapterInfo {
        &INFO
    }

    fn run<'a>(&'a mut self, mut ctx: RunCtx<'a>) -> LocalBoxFuture<'a, Result<ChapterOutput, LabError>> {
        Box::pin(async move {
            let channels = ctx.prepared.dataset.manifest.channels;
            let n_a = ctx.prepared.names_a.len();
            let n_b = ctx.prepared.names_b.len();
            let init = |ctx: &RunCtx<'_>| {
                let model = ConvNetConfig::new(channels, n_a).init(&ctx.compute.train_device());
                Trainer::new(model, train_config(ctx), all_params::<ConvNet>)
            };
            let loss: &LossFn<ConvNet> = &ce_loss;
            let (model, history) = train_main(
                &mut self.trainer,
                &init,
                loss,
                &mut Hooks::none(),
                "training the ConvNet on the kept classes",
                &mut ctx,
            )
            .await?;

            ctx.stage("measuring dev-A accuracy", 0.45);
            let ds = ctx.prepared.dataset.clone();
            let dev_a = &ctx.prepared.dev_a;
            let (dev_acc, _) = classify(
                &model,
                &|m: &ConvNet, x| m.logits(x),
                &Images::new(&ds.val, dev_a),
                &dev_a.labels,
                n_a,
                ctx.compute,
                ctx.control,
            )
            .await?;

            let umaps = test_umaps(
                &model,
                &["flat conv", "encoder", "normalised"],
                &|m: &ConvNet, x| {
                    let f = m.features(x);
                    vec![f.flat, f.encoded, f.normalized]
                },
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
                ConvNetConfig::new(channels, n_b).init(&device)
            };
            let mut out = transfer_output(history, umaps, &fresh_head, &untrained, &mut ctx).await?;
            out.result.dev_a_accuracy = Some(dev_acc);
            Ok(out)
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
