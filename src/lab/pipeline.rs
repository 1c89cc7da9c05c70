//! The stages an encoder-training chapter shares: train on the kept classes (or
//! continue), look at the test features with UMAP, and transfer. A chapter supplies
//! its model, its loss and its feature points; the rest is here, once.

use super::chapter::{ChapterOutput, RunCtx};
use super::error::{LabError, LabEvent};
use super::features::{Embedding2d, extract, umap_layouts};
use super::transfer::{TransferModel, transfer};
use crate::train::engine::{History, LossFn};
use crate::train::{Hooks, Images, TrainConfig, Trainer};
use burn::prelude::*;

/// The notebook's training settings from the run's parameters.
pub fn train_config(ctx: &RunCtx<'_>) -> TrainConfig {
    TrainConfig {
        epochs: ctx.params.epochs,
        batch_size: ctx.params.batch_size,
        lr: ctx.params.lr,
        seed: ctx.params.seed,
        ..TrainConfig::default()
    }
}

/// Train the kept model for `params.epochs` more epochs on train A (dev A for the
/// dev loss), creating it with `init` when there is none. The trainer is kept in
/// `slot` even when the run stops early, so what was trained is not lost.
pub async fn train_main<M: Module + Clone>(
    slot: &mut Option<Trainer<M>>,
    init: &dyn Fn(&RunCtx<'_>) -> Trainer<M>,
    loss: &LossFn<M>,
    hooks: &mut Hooks<'_, M>,
    stage: &str,
    ctx: &mut RunCtx<'_>,
) -> Result<(M, History), LabError> {
    let mut trainer = match slot.take() {
        Some(t) => t,
        None => {
            ctx.compute.device.seed(ctx.params.seed);
            init(ctx)
        }
    };
    trainer.config.epochs = ctx.params.epochs;
    ctx.stage(stage, 0.0);
    let ds = ctx.prepared.dataset.clone();
    let observer = &mut *ctx.observer;
    let fit = trainer
        .fit(
            ctx.compute,
            &Images::new(&ds.train, &ctx.prepared.train_a),
            Some(&Images::new(&ds.val, &ctx.prepared.dev_a)),
            loss,
            ctx.control,
            hooks,
            &mut |e| observer(LabEvent::Train { phase: "train", event: e }),
        )
        .await;
    let out = (trainer.model.clone(), trainer.history.clone());
    *slot = Some(trainer);
    fit?;
    Ok(out)
}

/// UMAP layouts of the test split at the points `f` returns (named by `names`).
pub async fn test_umaps<M: Module>(
    model: &M,
    names: &[&str],
    f: &dyn Fn(&M, Tensor<4>) -> Vec<Tensor<2>>,
    ctx: &mut RunCtx<'_>,
    progress: (f64, f64),
) -> Result<Vec<Embedding2d>, LabError> {
    ctx.stage("extracting test features", progress.0);
    let ds = &ctx.prepared.dataset;
    let feats = extract(model, ctx.compute, &ds.test, &ctx.prepared.test, ctx.control, names, f)
        .await?;
    umap_layouts(
        &feats,
        &ctx.prepared.test,
        ctx.params.seed,
        ctx.control,
        ctx.observer,
        (progress.0 + 0.05, progress.1),
    )
    .await
}

/// Transfer, then assemble the chapter's output.
pub async fn transfer_output<T: TransferModel>(
    history: History,
    umaps: Vec<Embedding2d>,
    fresh_head: &dyn Fn() -> T,
    untrained: &dyn Fn() -> T,
    ctx: &mut RunCtx<'_>,
) -> Result<ChapterOutput, LabError> {
    let (probe, curves) = transfer(fresh_head, untrained, ctx, (0.7, 1.0)).await?;
    let mut out = ChapterOutput::new(history, probe, ctx.prepared);
    out.umaps = umaps;
    out.curves = Some(curves);
    Ok(out)
}
