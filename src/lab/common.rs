//! What the training chapters share: preparing the lab's views of a dataset,
//! feature extraction, UMAP layouts, and the transfer protocol on the held-out classes.

use super::params::LabParams;
use crate::analysis::{metrics, probe, umap};
use crate::data::Dataset;
use crate::data::splits::{LabSplit, SplitConfig, make_split};
use crate::model::convnet::ConvNet;
use crate::platform::{self, Compute};
use crate::train::engine::{GradSelect, History, LossFn, all_params, collect_rows};
use crate::train::losses::cross_entropy;
use crate::train::{Batch, RunControl, TrainConfig, TrainError, TrainEvent, Trainer, View};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::Gradients;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Why a chapter could not run or finish.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum LabError {
    /// Bad parameters or a split that cannot be made.
    #[error("{0}")]
    Params(String),
    /// Training stopped.
    #[error(transparent)]
    Train(#[from] TrainError),
    /// An analysis step rejected its input.
    #[error("{0}")]
    Analysis(String),
    /// A weights file could not be used.
    #[error("{0}")]
    Weights(String),
}

impl LabError {
    /// Whether this is a user cancel rather than a failure.
    pub fn is_cancel(&self) -> bool {
        matches!(self, LabError::Train(TrainError::Cancelled))
    }
}

/// Progress of a chapter run.
pub enum LabEvent<'a> {
    /// A named stage began; `fraction` is the chapter's overall progress in [0, 1].
    Stage {
        /// What is happening.
        name: &'a str,
        /// Overall progress.
        fraction: f64,
    },
    /// A training event within the named phase.
    Train {
        /// e.g. `train`, `probe`, `finetune`.
        phase: &'a str,
        /// The event.
        event: &'a TrainEvent,
    },
}

/// The dataset with the lab's split applied and `limit` taken.
#[derive(Clone)]
pub struct Prepared {
    /// The decoded bundle.
    pub dataset: Arc<Dataset>,
    /// The split.
    pub split: LabSplit,
    /// Labelled train images of the kept classes, labels remapped.
    pub train_a: View,
    /// Labelled dev images of the kept classes.
    pub dev_a: View,
    /// Labelled train images of the held-out classes, labels remapped.
    pub train_b: View,
    /// Labelled dev images of the held-out classes.
    pub dev_b: View,
    /// All test images with their original labels.
    pub test: View,
    /// Test images of the held-out classes, remapped.
    pub test_b: View,
    /// Class names of the kept classes, in remapped order.
    pub names_a: Vec<String>,
    /// Class names of the held-out classes, in remapped order.
    pub names_b: Vec<String>,
}

/// Up to `limit` rows spread evenly over the view, so every class keeps its share.
pub fn spread(view: View, limit: Option<usize>) -> View {
    let n = view.len();
    match limit {
        Some(l) if l < n => {
            let picks: Vec<usize> = (0..l).map(|i| i * n / l).collect();
            View {
                indices: picks.iter().map(|&p| view.indices[p]).collect(),
                labels: picks.iter().map(|&p| view.labels[p]).collect(),
            }
        }
        _ => view,
    }
}

/// Apply the lab's split and the `limit` to a dataset.
pub fn prepare(dataset: Arc<Dataset>, params: &LabParams) -> Result<Prepared, LabError> {
    let cfg = SplitConfig {
        labeled_ratio: params.labeled_ratio,
        held_out_ratio: params.held_out_ratio,
        split_seed: params.split_seed,
    };
    let n_classes = dataset.n_classes();
    let split = make_split(n_classes, &dataset.train.labels, &dataset.val.labels, &cfg)
        .map_err(|e| LabError::Params(e.to_string()))?;
    let kept = |l: u8| split.kept_index(l);
    let held = |l: u8| split.held_out_index(l);
    let lim = params.limit;
    let train_a = spread(View::new(&dataset.train, &split.train_a, kept), lim);
    let dev_a = spread(View::new(&dataset.val, &split.dev_a, kept), lim);
    let train_b = spread(View::new(&dataset.train, &split.train_b, held), lim);
    let dev_b = spread(View::new(&dataset.val, &split.dev_b, held), lim);
    let all_test: Vec<usize> = (0..dataset.test.len()).collect();
    let test = spread(
        View::new(&dataset.test, &all_test, |l| Some(l as usize)),
        lim,
    );
    let test_b = spread(View::new(&dataset.test, &all_test, held), lim);
    let name = |l: &u8| {
        dataset
            .manifest
            .class_names
            .get(*l as usize)
            .cloned()
            .unwrap_or_default()
    };
    let mut kept_sorted = split.kept_labels.clone();
    kept_sorted.sort_unstable();
    let mut held_sorted = split.held_out_labels.clone();
    held_sorted.sort_unstable();
    let names_a = kept_sorted.iter().map(name).collect();
    let names_b = held_sorted.iter().map(name).collect();
    if train_a.is_empty() || train_b.is_empty() {
        return Err(LabError::Params(
            "the split leaves no labelled training images for one side; raise labeled_ratio or limit".into(),
        ));
    }
    Ok(Prepared {
        dataset,
        split,
        train_a,
        dev_a,
        train_b,
        dev_b,
        test,
        test_b,
        names_a,
        names_b,
    })
}

/// Transfer numbers, the `probe` object of `results.json`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ProbeResult {
    /// Dev-B accuracy of the fresh head before training (notebook protocol).
    pub before: f64,
    /// Dev-B accuracy after training the head only (notebook protocol: AdamW, 10 epochs).
    pub after: f64,
    /// Dev-B accuracy after fine-tuning everything from the trained encoder.
    pub finetune_after: f64,
    /// Converged logistic-regression probe on standardised encoder features: dev B.
    pub converged_dev_b: f64,
    /// The same probe on the test images of the held-out classes.
    pub converged_test_b: f64,
    /// The same probe on an untrained encoder, test B.
    pub random_init_test_b: f64,
    /// Row-normalised dev-B confusion matrix before training the head.
    pub confusion_before: Vec<Vec<f64>>,
    /// Row-normalised dev-B confusion matrix after training the head.
    pub confusion_after: Vec<Vec<f64>>,
    /// Row-normalised test-B confusion matrix of the converged probe.
    pub confusion_converged: Vec<Vec<f64>>,
}

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
    split: &crate::data::SplitData,
    view: &View,
    control: &RunControl,
    names: &[&str],
    f: &dyn Fn(&M, Tensor<4>) -> Vec<Tensor<2>>,
) -> Result<FeatureSet, LabError> {
    let valid = model.valid();
    let rows = collect_rows(&valid, compute, split, view, control, f).await?;
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
            .flat_map(|&i| rows[i * d..(i + 1) * d].iter().copied())
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
            labels: sample.iter().map(|&i| view.labels[i]).collect(),
            rows: sample.iter().map(|&i| view.indices[i]).collect(),
        });
    }
    Ok(out)
}

/// Accuracy and row-normalised confusion matrix of a classifier on a view.
pub async fn classify(
    model: &ConvNet,
    compute: &Compute,
    split: &crate::data::SplitData,
    view: &View,
    n_classes: usize,
    control: &RunControl,
) -> Result<(f64, Vec<Vec<f64>>), LabError> {
    let valid = model.valid();
    let rows = collect_rows(&valid, compute, split, view, control, &|m, x| {
        vec![m.forward(x).argmax(1).float()]
    })
    .await?;
    let pred: Vec<usize> = rows
        .into_iter()
        .next()
        .unwrap_or_default()
        .into_iter()
        .map(|p| p.max(0.0) as usize)
        .collect();
    let acc = metrics::accuracy(&pred, &view.labels);
    let cm = metrics::row_normalize(&metrics::confusion_matrix(&pred, &view.labels, n_classes));
    Ok((acc, cm))
}

/// Cross-entropy of a ConvNet on a batch.
pub fn ce_loss(model: &ConvNet, batch: &Batch) -> Tensor<1> {
    cross_entropy(model.forward(batch.images.clone()), batch.labels.clone())
}

/// Only the classifier's gradients: the linear probe.
pub fn head_params(model: &ConvNet, mut grads: Gradients) -> GradientsParams {
    GradientsParams::from_module(&mut grads, &model.classifier)
}

/// Train a transfer model on train B, reporting dev B; returns the trainer.
#[allow(clippy::too_many_arguments)]
pub async fn transfer_run(
    model: ConvNet,
    select: GradSelect<ConvNet>,
    phase: &str,
    prepared: &Prepared,
    params: &LabParams,
    compute: &Compute,
    control: &RunControl,
    observer: &mut dyn FnMut(LabEvent),
) -> Result<Trainer<ConvNet>, LabError> {
    let cfg = TrainConfig {
        epochs: params.epochs,
        batch_size: params.batch_size,
        lr: params.lr,
        weight_decay: 1e-5,
        seed: params.seed.wrapping_add(1),
        // The notebook drops the last partial batch when training the transfer head.
        drop_last: prepared.train_b.len() >= params.batch_size,
    };
    let mut trainer = Trainer::new(model, cfg, select);
    let ds = &prepared.dataset;
    let loss: &LossFn<ConvNet> = &ce_loss;
    trainer
        .fit(
            compute,
            (&ds.train, &prepared.train_b),
            Some((&ds.val, &prepared.dev_b)),
            loss,
            control,
            &mut |e| observer(LabEvent::Train { phase, event: e }),
        )
        .await?;
    Ok(trainer)
}

/// The converged probe on encoder features: standardise with train-B statistics,
/// fit L2 logistic regression with L-BFGS, report dev-B and test-B accuracy and the
/// test-B confusion matrix.
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

/// Encoder features (the 128-d encoder output) of train B, dev B and test B.
pub async fn encoder_features_b(
    encoder_model: &ConvNet,
    prepared: &Prepared,
    compute: &Compute,
    control: &RunControl,
) -> Result<[Vec<f32>; 3], LabError> {
    let ds = &prepared.dataset;
    let f: &dyn Fn(&ConvNet, Tensor<4>) -> Vec<Tensor<2>> = &|m, x| vec![m.encoder.forward(x)];
    let mut out: Vec<Vec<f32>> = Vec::new();
    for (split, view) in [
        (&ds.train, &prepared.train_b),
        (&ds.val, &prepared.dev_b),
        (&ds.test, &prepared.test_b),
    ] {
        let set = extract(
            encoder_model,
            compute,
            split,
            view,
            control,
            &["encoder"],
            f,
        )
        .await?;
        out.push(set.sets.into_iter().next().map(|s| s.2).unwrap_or_default());
    }
    let mut it = out.into_iter();
    Ok([
        it.next().unwrap_or_default(),
        it.next().unwrap_or_default(),
        it.next().unwrap_or_default(),
    ])
}

/// Curves of a finished transfer run.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct TransferCurves {
    /// Head only (linear probe, notebook protocol).
    pub probe: History,
    /// Everything (fine-tune).
    pub finetune: History,
}

/// The full transfer protocol for a trained encoder wrapped as `ConvNet` builders.
///
/// `fresh_head` builds a transfer model from the trained encoder with a new head;
/// `untrained` builds one from an untrained encoder (the baseline).
#[allow(clippy::too_many_arguments)]
pub async fn transfer(
    fresh_head: &dyn Fn() -> ConvNet,
    untrained: &dyn Fn() -> ConvNet,
    prepared: &Prepared,
    params: &LabParams,
    compute: &Compute,
    control: &RunControl,
    observer: &mut dyn FnMut(LabEvent),
    progress: (f64, f64),
) -> Result<(ProbeResult, TransferCurves), LabError> {
    let ds = &prepared.dataset;
    let n_b = prepared.names_b.len();
    let span = progress.1 - progress.0;
    let stage = |o: &mut dyn FnMut(LabEvent), name: &str, f: f64| {
        o(LabEvent::Stage {
            name,
            fraction: progress.0 + span * f,
        })
    };
    let mut result = ProbeResult::default();

    stage(
        observer,
        "transfer: fresh head on the held-out classes",
        0.0,
    );
    let head_model = fresh_head();
    let (before, cm_before) =
        classify(&head_model, compute, &ds.val, &prepared.dev_b, n_b, control).await?;
    result.before = before;
    result.confusion_before = cm_before;

    stage(
        observer,
        "transfer: training the head only (linear probe)",
        0.1,
    );
    let probe_trainer = transfer_run(
        head_model,
        head_params,
        "probe",
        prepared,
        params,
        compute,
        control,
        observer,
    )
    .await?;
    let (after, cm_after) = classify(
        &probe_trainer.model,
        compute,
        &ds.val,
        &prepared.dev_b,
        n_b,
        control,
    )
    .await?;
    result.after = after;
    result.confusion_after = cm_after;

    stage(observer, "transfer: fine-tuning everything", 0.4);
    let ft_trainer = transfer_run(
        fresh_head(),
        all_params::<ConvNet>,
        "finetune",
        prepared,
        params,
        compute,
        control,
        observer,
    )
    .await?;
    let (ft_acc, _) = classify(
        &ft_trainer.model,
        compute,
        &ds.val,
        &prepared.dev_b,
        n_b,
        control,
    )
    .await?;
    result.finetune_after = ft_acc;

    stage(
        observer,
        "transfer: converged probe on frozen encoder features",
        0.75,
    );
    let [tr, dv, te] = encoder_features_b(&fresh_head(), prepared, compute, control).await?;
    let d = if prepared.train_b.is_empty() {
        0
    } else {
        tr.len() / prepared.train_b.len()
    };
    let (cdev, ctest, ccm) = converged_probe(
        (&tr, &prepared.train_b.labels),
        (&dv, &prepared.dev_b.labels),
        (&te, &prepared.test_b.labels),
        d,
        n_b,
    )?;
    result.converged_dev_b = cdev;
    result.converged_test_b = ctest;
    result.confusion_converged = ccm;

    stage(
        observer,
        "transfer: the same probe on an untrained encoder",
        0.9,
    );
    let [rtr, rdv, rte] = encoder_features_b(&untrained(), prepared, compute, control).await?;
    let (_, rtest, _) = converged_probe(
        (&rtr, &prepared.train_b.labels),
        (&rdv, &prepared.dev_b.labels),
        (&rte, &prepared.test_b.labels),
        d,
        n_b,
    )?;
    result.random_init_test_b = rtest;
    stage(observer, "transfer done", 1.0);
    Ok((
        result,
        TransferCurves {
            probe: probe_trainer.history,
            finetune: ft_trainer.history,
        },
    ))
}
