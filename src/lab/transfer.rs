//! Transfer to the held-out classes, for any encoder: the notebook's probe (a fresh
//! linear head trained with AdamW), a fine-tune of everything, the converged L-BFGS
//! probe on frozen features, and the same probe on an untrained encoder. Frozen
//! encoders whose features are cached on the host (CLIP, PCA) use
//! [`frozen_transfer`], which trains the head with the same loop on those features.

use super::chapter::RunCtx;
use super::error::{LabError, LabEvent};
use super::features::extract;
use crate::analysis::{metrics, probe};
use crate::model::convnet::ConvNet;
use crate::platform::Compute;
use crate::train::engine::{History, LossFn, all_params, collect_rows};
use crate::train::head::{LinearHead, head_loss, head_trainer};
use crate::train::losses::cross_entropy;
use crate::train::{Batch, BatchSource, Features, Hooks, Images, RunControl, TrainConfig, Trainer};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::Gradients;
use serde::{Deserialize, Serialize};

/// Transfer numbers, the `probe` object of `results.json`. A method without a
/// notebook probe or a fine-tune (PCA) leaves those out.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ProbeResult {
    /// Dev-B accuracy of the fresh head before training (notebook protocol).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<f64>,
    /// Dev-B accuracy after training the head only (notebook protocol).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<f64>,
    /// Dev-B accuracy after fine-tuning everything from the trained encoder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finetune_after: Option<f64>,
    /// Converged logistic-regression probe on standardised features: dev B.
    pub converged_dev_b: f64,
    /// The same probe on the test images of the held-out classes.
    pub converged_test_b: f64,
    /// The same probe on an untrained encoder, test B.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub random_init_test_b: Option<f64>,
    /// Row-normalised dev-B confusion matrix before training the head.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub confusion_before: Vec<Vec<f64>>,
    /// Row-normalised dev-B confusion matrix after training the head.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub confusion_after: Vec<Vec<f64>>,
    /// Row-normalised test-B confusion matrix of the converged probe.
    pub confusion_converged: Vec<Vec<f64>>,
}

/// Curves of a finished transfer run.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct TransferCurves {
    /// Head only (linear probe, notebook protocol).
    pub probe: History,
    /// Everything (fine-tune).
    pub finetune: History,
}

/// An encoder with a classifier for the held-out classes on top.
pub trait TransferModel: Module + Clone + 'static {
    /// Logits `[batch, n_b]`.
    fn logits(&self, x: Tensor<4>) -> Tensor<2>;
    /// The frozen features the converged probe reads `[batch, d]`.
    fn features(&self, x: Tensor<4>) -> Tensor<2>;
    /// The gradients of the head alone (the linear probe).
    fn head_grads(&self, grads: Gradients) -> GradientsParams;
    /// A copy that shares no BatchNorm statistics with the model it was cloned from,
    /// so training it leaves the original as it was.
    fn unshared(self) -> Self;
}

impl TransferModel for ConvNet {
    fn logits(&self, x: Tensor<4>) -> Tensor<2> {
        self.forward(x)
    }
    fn features(&self, x: Tensor<4>) -> Tensor<2> {
        self.encoder.forward(x)
    }
    fn head_grads(&self, mut grads: Gradients) -> GradientsParams {
        GradientsParams::from_module(&mut grads, &self.classifier)
    }
    fn unshared(self) -> Self {
        ConvNet::unshared(self)
    }
}

fn head_only<M: TransferModel>(m: &M, grads: Gradients) -> GradientsParams {
    m.head_grads(grads)
}

fn transfer_loss<M: TransferModel>(m: &M, b: &Batch) -> Tensor<1> {
    cross_entropy(m.logits(b.images.clone()), b.labels.clone())
}

/// Accuracy and row-normalised confusion matrix of a classifier on a source.
pub async fn classify<M: Module>(
    model: &M,
    logits: &dyn Fn(&M, Tensor<4>) -> Tensor<2>,
    source: &dyn BatchSource,
    labels: &[usize],
    n_classes: usize,
    compute: &Compute,
    control: &RunControl,
) -> Result<(f64, Vec<Vec<f64>>), LabError> {
    let valid = model.valid();
    let rows = collect_rows(&valid, compute, source, control, &|m, x| {
        vec![logits(m, x).argmax(1).float()]
    })
    .await?;
    let pred: Vec<usize> = rows
        .into_iter()
        .next()
        .unwrap_or_default()
        .into_iter()
        .map(|p| p.max(0.0) as usize)
        .collect();
    let acc = metrics::accuracy(&pred, labels);
    let cm = metrics::row_normalize(&metrics::confusion_matrix(&pred, labels, n_classes));
    Ok((acc, cm))
}

/// A classifier's dev-B accuracy and confusion: the view every transfer stage reports.
async fn on_dev_b<M: Module>(
    model: &M,
    logits: &dyn Fn(&M, Tensor<4>) -> Tensor<2>,
    dev: &dyn BatchSource,
    labels: &[usize],
    ctx: &RunCtx<'_>,
) -> Result<(f64, Vec<Vec<f64>>), LabError> {
    let n_b = ctx.prepared.names_b.len();
    classify(model, logits, dev, labels, n_b, ctx.compute, ctx.control).await
}

/// The notebook's transfer settings: the chapter's batch size and learning rate,
/// weight decay 1e-5, the last partial batch dropped.
fn transfer_config(ctx: &RunCtx<'_>, lr: f64, weight_decay: f64, batch: usize) -> TrainConfig {
    TrainConfig {
        epochs: ctx.params.epochs,
        batch_size: batch,
        lr,
        weight_decay,
        seed: ctx.params.seed.wrapping_add(1),
        drop_last: ctx.prepared.train_b.len() >= batch,
        ..TrainConfig::default()
    }
}

/// The notebook's optimiser settings for training on the held-out classes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TransferSettings {
    /// AdamW learning rate.
    pub lr: f64,
    /// Batch size.
    pub batch: usize,
}

impl TransferSettings {
    /// The chapter's own learning rate and batch size (supervised, SupCon).
    pub fn from_params(p: &super::params::LabParams) -> Self {
        Self {
            lr: p.lr,
            batch: p.batch_size,
        }
    }
}

/// Train a transfer model on train B, reporting dev B.
async fn transfer_run<M: TransferModel>(
    model: M,
    select: crate::train::engine::GradSelect<M>,
    phase: &str,
    settings: TransferSettings,
    ctx: &mut RunCtx<'_>,
) -> Result<Trainer<M>, LabError> {
    let cfg = transfer_config(ctx, settings.lr, 1e-5, settings.batch);
    let mut trainer = Trainer::new(model, cfg, select);
    let ds = &ctx.prepared.dataset;
    let loss: &LossFn<M> = &transfer_loss::<M>;
    let observer = &mut *ctx.observer;
    trainer
        .fit(
            ctx.compute,
            &Images::new(&ds.train, &ctx.prepared.train_b),
            Some(&Images::new(&ds.val, &ctx.prepared.dev_b)),
            loss,
            ctx.control,
            &mut Hooks::none(),
            &mut |e| observer(LabEvent::Train { phase, event: e }),
        )
        .await?;
    Ok(trainer)
}

/// The converged probe: standardise with train-B statistics, fit L2 logistic
/// regression with L-BFGS, report dev-B and test-B accuracy and the test-B
/// confusion matrix.
pub fn converged_probe(
    train_b: (&[f32], &[usize]),
    dev_b: (&[f32], &[usize]),
    test_b: (&[f32], &[usize]),
    d: usize,
    n_classes: usize,
) -> Result<(f64, f64, Vec<Vec<f64>>), LabError> {
    let report = probe::linear_probe(
        train_b.0,
        train_b.1,
        d,
        n_classes,
        &[dev_b, test_b],
        &probe::ProbeConfig::default(),
    )
    .map_err(|e| LabError::Analysis(format!("linear probe: {e}")))?;
    let dev_acc = report.test.first().map(|r| r.accuracy).unwrap_or(f64::NAN);
    let test_acc = report.test.get(1).map(|r| r.accuracy).unwrap_or(f64::NAN);
    let test_pred = report
        .test
        .get(1)
        .map(|r| r.predictions.clone())
        .unwrap_or_default();
    let cm = metrics::row_normalize(&metrics::confusion_matrix(&test_pred, test_b.1, n_classes));
    Ok((dev_acc, test_acc, cm))
}

/// Frozen features of train B, dev B and test B, with their width.
async fn features_b<M: TransferModel>(
    model: &M,
    ctx: &RunCtx<'_>,
) -> Result<([Vec<f32>; 3], usize), LabError> {
    let ds = &ctx.prepared.dataset;
    let p = ctx.prepared;
    let f: &dyn Fn(&M, Tensor<4>) -> Vec<Tensor<2>> = &|m, x| vec![m.features(x)];
    let mut out: [Vec<f32>; 3] = Default::default();
    let mut d = 0;
    for (slot, (split, view)) in out.iter_mut().zip([
        (&ds.train, &p.train_b),
        (&ds.val, &p.dev_b),
        (&ds.test, &p.test_b),
    ]) {
        let set = extract(
            model,
            ctx.compute,
            split,
            view,
            ctx.control,
            &["features"],
            f,
        )
        .await?;
        if let Some((_, dim, v)) = set.sets.into_iter().next() {
            d = dim;
            *slot = v;
        }
    }
    Ok((out, d))
}

/// The converged probe on a model's frozen features.
async fn converged_on<M: TransferModel>(
    model: &M,
    ctx: &RunCtx<'_>,
) -> Result<(f64, f64, Vec<Vec<f64>>), LabError> {
    let ([tr, dv, te], d) = features_b(model, ctx).await?;
    let p = ctx.prepared;
    converged_probe(
        (&tr, &p.train_b.labels),
        (&dv, &p.dev_b.labels),
        (&te, &p.test_b.labels),
        d,
        p.names_b.len(),
    )
}

/// The full transfer protocol. `fresh_head` builds a transfer model from the
/// trained encoder with a new head; `untrained` one from an untrained encoder.
pub async fn transfer<M: TransferModel>(
    fresh_head: &dyn Fn() -> M,
    untrained: &dyn Fn() -> M,
    settings: TransferSettings,
    ctx: &mut RunCtx<'_>,
    progress: (f64, f64),
) -> Result<(ProbeResult, TransferCurves), LabError> {
    let ds = ctx.prepared.dataset.clone();
    let at = |f: f64| progress.0 + (progress.1 - progress.0) * f;
    let dev_b = ctx.prepared.dev_b.clone();
    let dev_src = Images::new(&ds.val, &dev_b);
    let logits: &dyn Fn(&M, Tensor<4>) -> Tensor<2> = &|m, x| m.logits(x);
    let mut result = ProbeResult::default();

    ctx.stage("transfer: fresh head on the held-out classes", at(0.0));
    let head_model = fresh_head();
    let (before, cm_before) = on_dev_b(&head_model, logits, &dev_src, &dev_b.labels, ctx).await?;
    result.before = Some(before);
    result.confusion_before = cm_before;

    ctx.stage("transfer: training the head only (linear probe)", at(0.1));
    let probe = transfer_run(head_model, head_only::<M>, "probe", settings, ctx).await?;
    let (after, cm_after) = on_dev_b(&probe.model, logits, &dev_src, &dev_b.labels, ctx).await?;
    result.after = Some(after);
    result.confusion_after = cm_after;

    ctx.stage("transfer: fine-tuning everything", at(0.4));
    let finetune = transfer_run(fresh_head(), all_params::<M>, "finetune", settings, ctx).await?;
    let (ft, _) = on_dev_b(&finetune.model, logits, &dev_src, &dev_b.labels, ctx).await?;
    result.finetune_after = Some(ft);

    ctx.stage(
        "transfer: converged probe on frozen encoder features",
        at(0.75),
    );
    let (cdev, ctest, ccm) = converged_on(&fresh_head(), ctx).await?;
    result.converged_dev_b = cdev;
    result.converged_test_b = ctest;
    result.confusion_converged = ccm;

    ctx.stage("transfer: the same probe on an untrained encoder", at(0.9));
    let (_, rtest, _) = converged_on(&untrained(), ctx).await?;
    result.random_init_test_b = Some(rtest);
    ctx.stage("transfer done", at(1.0));
    Ok((
        result,
        TransferCurves {
            probe: probe.history,
            finetune: finetune.history,
        },
    ))
}

/// Features cached on the host for the held-out classes: train B, dev B, test B.
pub struct CachedFeatures<'a> {
    /// Width of a row.
    pub d: usize,
    /// Train B rows and labels.
    pub train: (&'a [f32], &'a [usize]),
    /// Dev B rows and labels.
    pub dev: (&'a [f32], &'a [usize]),
    /// Test B rows and labels.
    pub test: (&'a [f32], &'a [usize]),
}

/// Transfer for a frozen encoder whose features are cached: the notebook's head
/// (AdamW at `lr` with `weight_decay`, batches of `batch`) trained with the shared
/// loop, and the converged probe. Returns the probe numbers and the head's history.
pub async fn frozen_transfer(
    f: &CachedFeatures<'_>,
    (lr, weight_decay, batch): (f64, f64, usize),
    ctx: &mut RunCtx<'_>,
) -> Result<(ProbeResult, History), LabError> {
    let n_b = ctx.prepared.names_b.len();
    let mut cfg = transfer_config(ctx, lr, weight_decay, batch);
    cfg.drop_last = f.train.1.len() >= batch;
    // Seeded here, so the head starts the same whatever ran before on the device.
    let device = ctx.compute.train_device();
    device.seed(ctx.params.seed.wrapping_add(7));
    let mut trainer = head_trainer(f.d, n_b, cfg, &device);
    let train = Features {
        x: f.train.0,
        d: f.d,
        y: f.train.1,
    };
    let dev = Features {
        x: f.dev.0,
        d: f.d,
        y: f.dev.1,
    };
    let logits: &dyn Fn(&LinearHead, Tensor<4>) -> Tensor<2> = &|m, x| m.forward(x);
    let mut result = ProbeResult::default();
    let (before, cm) = on_dev_b(&trainer.model, logits, &dev, f.dev.1, ctx).await?;
    result.before = Some(before);
    result.confusion_before = cm;
    let loss: &LossFn<LinearHead> = &head_loss;
    let observer = &mut *ctx.observer;
    trainer
        .fit(
            ctx.compute,
            &train,
            Some(&dev),
            loss,
            ctx.control,
            &mut Hooks::none(),
            &mut |e| {
                observer(LabEvent::Train {
                    phase: "probe",
                    event: e,
                })
            },
        )
        .await?;
    let (after, cm) = on_dev_b(&trainer.model, logits, &dev, f.dev.1, ctx).await?;
    result.after = Some(after);
    result.confusion_after = cm;
    let (cdev, ctest, ccm) = converged_probe(f.train, f.dev, f.test, f.d, n_b)?;
    result.converged_dev_b = cdev;
    result.converged_test_b = ctest;
    result.confusion_converged = ccm;
    Ok((result, trainer.history))
}
