//! Chapter: DINO, self-distillation with no labels.
//!
//! The student sees two global and four local crops of every image and learns to
//! predict, from each, the teacher's sharpened and centred distribution over 256
//! prototypes for the *other* global crops. The teacher is an EMA of the student.
//! Collapse is watched live: the teacher's output entropy and the spread of the
//! student's embeddings.

use super::autoencoding;
use super::chapter::{Chapter, ChapterOutput, LocalBoxFuture, RunCtx};
use super::error::LabError;
use super::params::LabParams;
use super::pipeline::{EncoderChapter, Recipe};
use super::registry::{ChapterInfo, Exercise};
use super::ssl::{configured, split_views, unlabeled_config, views};
use super::transfer::{TransferSettings, transfer};
use crate::data::augment::Pipeline;
use crate::model::convnet::ConvNet;
use crate::model::dino::{DinoConfig, DinoNet, DinoPair};
use crate::train::losses::{dino_loss, dino_targets, embedding_spread, mean_entropy};
use crate::train::{Batch, Hooks, TrainConfig};
use burn::prelude::*;
use serde_json::json;

/// Global crops per image (the teacher sees these only).
pub const GLOBAL: usize = 2;
/// Local crops per image.
pub const LOCAL: usize = 4;
/// Temperature of the student's softmax.
pub const STUDENT_TEMP: f64 = 0.1;
/// Temperature of the teacher's softmax (sharpening).
pub const TEACHER_TEMP: f64 = 0.04;
/// Gradient clipping norm.
pub const CLIP: f64 = 3.0;

const PARAMS: &[&str] = &[
    "epochs",
    "limit",
    "seed",
    "batch_size",
    "lr",
    "momentum",
    "teacher_buffers",
    "jitter",
    "blur",
    "labeled_ratio",
    "held_out_ratio",
    "split_seed",
    "backend",
];

/// The chapter's registry entry.
pub const INFO: ChapterInfo = ChapterInfo {
    slug: "dino",
    title: "DINO",
    params: PARAMS,
    defaults: &[("batch_size", "256")],
    exercises: &[
        Exercise {
            label: "Momentum 0.9",
            set: &[("momentum", "0.9")],
        },
        Exercise {
            label: "Momentum 0.996",
            set: &[("momentum", "0.996")],
        },
        Exercise {
            label: "Momentum 0.9999",
            set: &[("momentum", "0.9999")],
        },
        Exercise {
            label: "EMA of BatchNorm statistics too",
            set: &[("teacher_buffers", "on")],
        },
    ],
    loss_title: "DINO loss while training (mean per batch)",
    monitors: &["teacher entropy (nats)", "embedding spread"],
    make: Some(make),
    built: true,
};

/// A fresh runner.
pub fn make() -> Box<dyn Chapter> {
    Box::<Dino>::default()
}

/// The chapter: a student and its EMA teacher.
pub type Dino = EncoderChapter<DinoRecipe>;

/// What the DINO chapter trains, and how.
pub struct DinoRecipe;

impl Recipe for DinoRecipe {
    type Model = DinoPair;
    type Transfer = ConvNet;
    const INFO: &'static ChapterInfo = &INFO;
    const STAGE: &'static str = "training the student against its EMA teacher (DINO)";
    const FEATURES: &'static [&'static str] = &["flat conv", "encoder", "teacher encoder"];
    const UNLABELED: bool = true;

    fn init(ctx: &RunCtx<'_>) -> DinoPair {
        let channels = ctx.prepared.dataset.manifest.channels;
        DinoConfig::new(channels).init(&ctx.compute.train_device())
    }
    fn config(ctx: &RunCtx<'_>) -> TrainConfig {
        unlabeled_config(ctx, Some(CLIP))
    }
    fn hooks<'a>(params: &LabParams) -> Hooks<'a, DinoPair> {
        let global = configured(Pipeline::DINO_GLOBAL, params);
        let local = configured(Pipeline::DINO_LOCAL, params);
        let (momentum, buffers) = (params.momentum, params.teacher_buffers);
        Hooks {
            transform: Some(Box::new(move |b, rng| {
                views(b, &[global, global, local, local, local, local], rng)
            })),
            after_step: Some(Box::new(move |m: DinoPair| m.after_step(momentum, buffers))),
            ..Hooks::none()
        }
    }
    fn loss(model: &DinoPair, batch: &Batch, _params: &LabParams) -> Tensor<1> {
        let x = batch.images.clone(); // [6·batch, c, 28, 28]
        let n = x.dims()[0] / (GLOBAL + LOCAL);
        let device = x.device();
        // Teacher: the global crops only, evaluation mode, no gradients.
        let (_, t_out) = model.teacher_forward(x.clone().narrow(0, 0, GLOBAL * n)); // [2n, 256]
        let center = model.center.value_sync().to_device(&device); // [1, 256]
        let targets: Vec<Tensor<2>> = split_views(t_out.clone(), GLOBAL)
            .into_iter()
            .map(|t| dino_targets(t, center.clone(), TEACHER_TEMP))
            .collect();
        // Student: every crop in one forward pass.
        let (z, s_out) = model.student.forward(x); // [6n, 128], [6n, 256]
        let student = split_views(s_out, GLOBAL + LOCAL);
        let loss = dino_loss(&student, &targets, STUDENT_TEMP);
        // The centre moves after the step, towards this batch's teacher mean.
        model.batch_center.update(t_out.mean_dim(0).detach()); // [1, 256]
        let entropy = mean_entropy(Tensor::cat(targets, 0));
        let spread = embedding_spread(z.narrow(0, 0, GLOBAL * n).detach());
        Tensor::cat(vec![loss, entropy, spread], 0)
    }
    fn features(model: &DinoPair, x: Tensor<4>) -> Vec<Tensor<2>> {
        let out = model.student.encoder.forward_all(x.clone());
        let (teacher, _) = model.teacher_forward(x);
        vec![out.flat, out.encoded, teacher]
    }
    fn with_head(model: DinoPair, n_b: usize, device: &Device) -> ConvNet {
        model.student.reset_head(n_b, device)
    }
    fn untrained(channels: usize, n_b: usize, _params: &LabParams, device: &Device) -> ConvNet {
        DinoNet::new(&DinoConfig::new(channels), device).reset_head(n_b, device)
    }
    fn transfer_settings(params: &LabParams) -> TransferSettings {
        autoencoding::transfer_settings(params)
    }
    fn extend<'a>(
        model: &'a DinoPair,
        _snapshots: &'a [Tensor<2>],
        ctx: &'a mut RunCtx<'_>,
        out: &'a mut ChapterOutput,
    ) -> LocalBoxFuture<'a, Result<(), LabError>> {
        Box::pin(async move {
            // The same transfer protocol on the teacher's encoder.
            let device = ctx.compute.train_device();
            let seed = ctx.params.seed;
            let channels = ctx.prepared.dataset.manifest.channels;
            let n_b = ctx.prepared.names_b.len();
            let params = ctx.params.clone();
            let teacher = || {
                device.seed(seed.wrapping_add(7));
                model.teacher_with_head(n_b, &device)
            };
            let untrained = || {
                device.seed(seed.wrapping_add(99));
                Self::untrained(channels, n_b, &params, &device)
            };
            let settings = Self::transfer_settings(ctx.params);
            let (probe, _) = transfer(&teacher, &untrained, settings, ctx, (0.97, 0.995)).await?;
            out.result.extra.insert(
                "teacher_probe".into(),
                json!({
                    "before": probe.before,
                    "after": probe.after,
                    "finetune_after": probe.finetune_after,
                    "converged_dev_b": probe.converged_dev_b,
                    "converged_test_b": probe.converged_test_b,
                    "random_init_test_b": probe.random_init_test_b,
                }),
            );
            out.result
                .extra
                .insert("momentum".into(), json!(ctx.params.momentum));
            Ok(())
        })
    }
}
