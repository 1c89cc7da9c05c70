//! The chapters that train an encoder share everything but their model, loss and
//! feature points: train on the kept classes (or continue), look at the test
//! features with UMAP, and transfer. A chapter states those three things as a
//! [`Recipe`]; [`EncoderChapter`] runs it. Self-supervised chapters plug their
//! augmentations and EMA teachers in through [`Recipe::hooks`].

use super::chapter::{Chapter, ChapterOutput, LocalBoxFuture, RunCtx};
use super::error::{LabError, LabEvent};
use super::features::{Embedding2d, extract, umap_layouts};
use super::params::LabParams;
use super::registry::ChapterInfo;
use super::transfer::{TransferModel, TransferSettings, classify, transfer};
use crate::model::safetensors::{SafeTensors, SafeTensorsWriter};
use crate::train::checkpoint::CheckpointError;
use crate::train::engine::{History, LossFn};
use crate::train::readback::read_floats;
use crate::train::{Batch, Hooks, Images, TrainConfig, Trainer};
use burn::prelude::*;
use std::any::Any;

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

/// What makes an encoder-training chapter itself.
pub trait Recipe: 'static {
    /// The network being trained.
    type Model: Module + Clone + 'static;
    /// The network transfer trains: the encoder with a head for the held-out classes.
    type Transfer: TransferModel;

    /// The registry entry.
    const INFO: &'static ChapterInfo;
    /// The stage shown while the main training runs.
    const STAGE: &'static str;
    /// Names of the feature points [`Recipe::features`] returns.
    const FEATURES: &'static [&'static str];

    /// A fresh model (the device is seeded with the run's seed just before).
    fn init(ctx: &RunCtx<'_>) -> Self::Model;
    /// Training settings, from the parameters by default.
    fn config(ctx: &RunCtx<'_>) -> TrainConfig {
        train_config(ctx)
    }
    /// The loss of a batch.
    fn loss(model: &Self::Model, batch: &Batch, params: &LabParams) -> Tensor<1>;
    /// Test features at each of [`Recipe::FEATURES`].
    fn features(model: &Self::Model, x: Tensor<4>) -> Vec<Tensor<2>>;
    /// The trained encoder with a fresh head for `n_b` classes.
    fn with_head(model: Self::Model, n_b: usize, device: &Device) -> Self::Transfer;
    /// An untrained encoder with a head, the baseline.
    fn untrained(
        channels: usize,
        n_b: usize,
        params: &LabParams,
        device: &Device,
    ) -> Self::Transfer;
    /// Whether the model classifies the kept classes (then dev-A accuracy is measured
    /// with [`Recipe::kept_logits`]).
    const CLASSIFIES_KEPT: bool = false;
    /// Logits for the kept classes, when the model classifies them.
    fn kept_logits(_model: &Self::Model, _x: Tensor<4>) -> Option<Tensor<2>> {
        None
    }
    /// Per-batch transform (augmented views) and after-step hook (an EMA teacher)
    /// for the main training.
    fn hooks<'a>(_params: &LabParams) -> Hooks<'a, Self::Model> {
        Hooks::none()
    }

    /// A tensor to keep at the end of every epoch of the main training (the linear
    /// autoencoder's weights, for its per-epoch principal angles).
    fn epoch_snapshot(_model: &Self::Model) -> Option<Tensor<2>> {
        None
    }
    /// Whether the main training reads the unlabelled train and dev images (the
    /// autoencoders) instead of the labelled kept classes.
    const UNLABELED: bool = false;
    /// Learning rate and batch size of the transfer runs.
    fn transfer_settings(params: &LabParams) -> TransferSettings {
        TransferSettings::from_params(params)
    }
    /// The chapter's own figures and numbers, added to the output once the shared
    /// analysis is done.
    fn extend<'a>(
        _model: &'a Self::Model,
        _snapshots: &'a [Tensor<2>],
        _ctx: &'a mut RunCtx<'_>,
        _out: &'a mut ChapterOutput,
    ) -> LocalBoxFuture<'a, Result<(), LabError>> {
        Box::pin(async { Ok(()) })
    }
}

/// An encoder-training chapter: a recipe and the model it trained.
pub struct EncoderChapter<R: Recipe> {
    /// The trainer, once a run has started; kept after a cancel.
    pub trainer: Option<Trainer<R::Model>>,
    /// What [`Recipe::epoch_snapshot`] kept, one per epoch trained.
    pub snapshots: Vec<Tensor<2>>,
}

impl<R: Recipe> Default for EncoderChapter<R> {
    fn default() -> Self {
        Self {
            trainer: None,
            snapshots: Vec::new(),
        }
    }
}

impl<R: Recipe> Chapter for EncoderChapter<R> {
    fn info(&self) -> &'static ChapterInfo {
        R::INFO
    }

    fn run<'a>(
        &'a mut self,
        mut ctx: RunCtx<'a>,
    ) -> LocalBoxFuture<'a, Result<ChapterOutput, LabError>> {
        Box::pin(async move {
            let params = ctx.params.clone();
            let loss_fn = move |m: &R::Model, b: &Batch| R::loss(m, b, &params);
            let (model, history) =
                train_main::<R>(&mut self.trainer, &mut self.snapshots, &loss_fn, &mut ctx).await?;
            let dev_a = dev_a_accuracy::<R>(&model, &mut ctx).await?;
            let umaps = test_umaps(&model, R::FEATURES, &R::features, &mut ctx, (0.5, 0.7)).await?;
            let device = ctx.compute.train_device();
            let seed = ctx.params.seed;
            let channels = ctx.prepared.dataset.manifest.channels;
            let n_b = ctx.prepared.names_b.len();
            let params = ctx.params.clone();
            // burn's clones share BatchNorm running statistics; the transfer trains
            // copies in train mode, so each gets statistics of its own, and the kept
            // model (for Continue and the chapter's own analysis) stays as trained.
            let fresh_head = || {
                device.seed(seed.wrapping_add(7));
                R::with_head(model.clone(), n_b, &device).unshared()
            };
            let untrained = || {
                device.seed(seed.wrapping_add(99));
                R::untrained(channels, n_b, &params, &device)
            };
            let settings = R::transfer_settings(ctx.params);
            let (probe, curves) =
                transfer(&fresh_head, &untrained, settings, &mut ctx, (0.7, 0.97)).await?;
            let mut out = ChapterOutput::new(history, probe, ctx.prepared);
            out.umaps = umaps;
            out.curves = Some(curves);
            out.result.dev_a_accuracy = dev_a;
            monitors_to_result(R::INFO.monitors, &mut out);
            R::extend(&model, &self.snapshots, &mut ctx, &mut out).await?;
            if let Some(trainer) = self.trainer.as_mut() {
                trainer.finish_run();
            }
            Ok(out)
        })
    }

    fn reset(&mut self) {
        self.trainer = None;
        self.snapshots.clear();
    }

    fn epochs_trained(&self) -> usize {
        self.trainer.as_ref().map_or(0, Trainer::epochs_done)
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn save_into<'a>(
        &'a self,
        w: &'a mut SafeTensorsWriter,
        with_optimizer: bool,
    ) -> LocalBoxFuture<'a, Result<bool, LabError>> {
        Box::pin(async move {
            let Some(trainer) = self.trainer.as_ref() else {
                return Ok(false);
            };
            let weights = |e: CheckpointError| LabError::Weights(e.to_string());
            trainer
                .save_into(w, with_optimizer)
                .await
                .map_err(weights)?;
            for (i, t) in self.snapshots.iter().enumerate() {
                let shape = t.dims();
                let values = read_floats(t.clone()).await?;
                w.add_f32(&format!("{SNAPSHOT_PREFIX}{i}"), &shape, &values)
                    .map_err(|e| LabError::Weights(e.to_string()))?;
            }
            Ok(true)
        })
    }

    fn load_from(
        &mut self,
        file: &SafeTensors<'_>,
        ctx: &RunCtx<'_>,
        evaluate: bool,
    ) -> Result<(), LabError> {
        ctx.compute.device.seed(ctx.params.seed);
        let select = crate::train::engine::all_params::<R::Model>;
        let optimizer = crate::platform::optimizer_state_restorable().is_ok();
        let mut trainer =
            Trainer::from_checkpoint(R::init(ctx), R::config(ctx), select, file, optimizer)
                .map_err(|e| LabError::Weights(e.to_string()))?;
        if evaluate && trainer.target_epochs.is_none() {
            trainer.target_epochs = Some(trainer.epochs_done());
        }
        let mut snapshots = Vec::new();
        let device = ctx.compute.train_device();
        while let Some(info) = file.info(&format!("{SNAPSHOT_PREFIX}{}", snapshots.len())) {
            let name = format!("{SNAPSHOT_PREFIX}{}", snapshots.len());
            let [a, b] = info.shape[..] else {
                return Err(LabError::Weights(format!("'{name}' is not a matrix")));
            };
            let values = file
                .to_f32(&name)
                .map_err(|e| LabError::Weights(e.to_string()))?;
            snapshots.push(Tensor::from_data(TensorData::new(values, [a, b]), &device));
        }
        self.trainer = Some(trainer);
        self.snapshots = snapshots;
        Ok(())
    }
}

/// Prefix of the per-epoch snapshots in a saved run.
const SNAPSHOT_PREFIX: &str = "snapshot.";

/// The per-epoch means of what the loss monitors, under `monitors` in the result.
fn monitors_to_result(names: &[&str], out: &mut ChapterOutput) {
    if names.is_empty() {
        return;
    }
    let series: serde_json::Map<String, serde_json::Value> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let per_epoch: Vec<f64> = out
                .history
                .epochs
                .iter()
                .map(|e| e.monitors.get(i).copied().unwrap_or(f64::NAN))
                .collect();
            (name.to_string(), serde_json::json!(per_epoch))
        })
        .collect();
    out.result
        .extra
        .insert("monitors".into(), serde_json::Value::Object(series));
    let charts = super::charts::monitor_charts(&out.history, names);
    out.figures.extend(charts);
}

/// Train the kept model for `params.epochs` more epochs on train A (dev A for the
/// dev loss), creating it when there is none; after a cancel, only the epochs that
/// run still owed. The trainer stays in `slot` even when the run stops early, so
/// what was trained is not lost.
async fn train_main<R: Recipe>(
    slot: &mut Option<Trainer<R::Model>>,
    snapshots: &mut Vec<Tensor<2>>,
    loss: &LossFn<R::Model>,
    ctx: &mut RunCtx<'_>,
) -> Result<(R::Model, History), LabError> {
    let mut trainer = match slot.take() {
        Some(t) => t,
        None => {
            snapshots.clear();
            ctx.compute.device.seed(ctx.params.seed);
            let select = crate::train::engine::all_params::<R::Model>;
            Trainer::new(R::init(ctx), R::config(ctx), select)
        }
    };
    trainer.config.epochs = trainer.epochs_owed(ctx.params.epochs);
    ctx.stage(R::STAGE, 0.0);
    let ds = ctx.prepared.dataset.clone();
    let observer = &mut *ctx.observer;
    let mut keep = |m: &R::Model| {
        if let Some(t) = R::epoch_snapshot(m) {
            snapshots.push(t);
        }
    };
    let mut hooks = R::hooks(ctx.params);
    hooks.after_epoch = Some(&mut keep);
    let (train, dev) = if R::UNLABELED {
        (&ctx.prepared.train_unlabeled, &ctx.prepared.dev_unlabeled)
    } else {
        (&ctx.prepared.train_a, &ctx.prepared.dev_a)
    };
    let fit = trainer
        .fit(
            ctx.compute,
            &Images::new(&ds.train, train),
            Some(&Images::new(&ds.val, dev)),
            loss,
            ctx.control,
            &mut hooks,
            &mut |e| {
                observer(LabEvent::Train {
                    phase: "train",
                    event: e,
                })
            },
        )
        .await;
    let out = (trainer.model.clone(), trainer.history.clone());
    *slot = Some(trainer);
    fit?;
    Ok(out)
}

async fn dev_a_accuracy<R: Recipe>(
    model: &R::Model,
    ctx: &mut RunCtx<'_>,
) -> Result<Option<f64>, LabError> {
    let ds = ctx.prepared.dataset.clone();
    let dev_a = ctx.prepared.dev_a.clone();
    let source = Images::new(&ds.val, &dev_a);
    if !R::CLASSIFIES_KEPT {
        return Ok(None);
    }
    ctx.stage("measuring dev-A accuracy", 0.45);
    let logits = |m: &R::Model, x: Tensor<4>| {
        R::kept_logits(m, x.clone()).unwrap_or_else(|| x.flatten(1, 3))
    };
    let n_a = ctx.prepared.names_a.len();
    let (acc, _) = classify(
        model,
        &logits,
        &source,
        &dev_a.labels,
        n_a,
        ctx.compute,
        ctx.control,
    )
    .await?;
    Ok(Some(acc))
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
    let feats = extract(
        model,
        ctx.compute,
        &ds.test,
        &ctx.prepared.test,
        ctx.control,
        names,
        f,
    )
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
