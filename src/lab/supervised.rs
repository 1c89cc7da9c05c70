//! Chapter: supervised representations.
//!
//! Train the notebook's ConvNet on the kept classes (train A, dev A), look at its
//! features at three depths with UMAP, then transfer the encoder to the held-out
//! classes with the notebook's probe, a fine-tune, and a converged probe.

use super::common::{
    Embedding2d, LabError, LabEvent, Prepared, ProbeResult, TransferCurves, ce_loss, classify,
    extract, transfer, umap_layouts,
};
use super::params::LabParams;
use crate::model::convnet::{ConvNet, ConvNetConfig};
use crate::platform::Compute;
use crate::train::engine::{History, LossFn, all_params};
use crate::train::{RunControl, TrainConfig, Trainer};
use serde::{Deserialize, Serialize};

/// The chapter's object in `results.json` and in the page's `result`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ChapterResult {
    /// Mean per-example training loss per epoch.
    pub train_loss: Vec<f64>,
    /// Mean per-example dev loss per epoch.
    pub dev_loss: Vec<f64>,
    /// Mean wall seconds of the training part of an epoch.
    pub seconds_per_epoch: f64,
    /// Accuracy on dev A after training (for SupCon: not applicable, NaN → null).
    pub dev_a_accuracy: Option<f64>,
    /// Transfer to the held-out classes.
    pub probe: ProbeResult,
    /// Epochs trained in total.
    pub epochs_trained: usize,
}

/// Everything the page draws after a run.
#[derive(Clone, Debug, Default)]
pub struct ChapterOutput {
    /// The numbers.
    pub result: ChapterResult,
    /// Loss history of the main training.
    pub history: History,
    /// UMAP layouts of the test features at each depth.
    pub umaps: Vec<Embedding2d>,
    /// Transfer learning curves.
    pub curves: TransferCurves,
    /// Held-out class names in remapped order.
    pub names_b: Vec<String>,
    /// Held-out original labels, for marking them in plots.
    pub held_out_labels: Vec<u8>,
}

impl ChapterOutput {
    /// Assemble a training chapter's output from its parts.
    pub fn new(
        history: History,
        dev_a_accuracy: Option<f64>,
        probe: ProbeResult,
        umaps: Vec<Embedding2d>,
        curves: TransferCurves,
        prepared: &Prepared,
    ) -> Self {
        Self {
            result: ChapterResult {
                train_loss: history.train_loss(),
                dev_loss: history.dev_loss(),
                seconds_per_epoch: history.seconds_per_epoch(),
                dev_a_accuracy,
                probe,
                epochs_trained: history.epochs.len(),
            },
            history,
            umaps,
            curves,
            names_b: prepared.names_b.clone(),
            held_out_labels: prepared.split.held_out_labels.clone(),
        }
    }
}

/// The model and optimiser state kept between runs in a session.
pub struct SupervisedState {
    /// The trainer, if a run has started.
    pub trainer: Option<Trainer<ConvNet>>,
}

impl SupervisedState {
    /// No model yet.
    pub fn new() -> Self {
        Self { trainer: None }
    }
}

impl Default for SupervisedState {
    fn default() -> Self {
        Self::new()
    }
}

/// Run (or continue) the chapter.
pub async fn run(
    state: &mut SupervisedState,
    prepared: &Prepared,
    params: &LabParams,
    compute: &Compute,
    control: &RunControl,
    observer: &mut dyn FnMut(LabEvent),
) -> Result<ChapterOutput, LabError> {
    let ds = &prepared.dataset;
    let channels = ds.manifest.channels;
    let n_a = prepared.names_a.len();
    let train_device = compute.train_device();
    let trainer = match state.trainer.take() {
        Some(t) => t,
        None => {
            compute.device.seed(params.seed);
            let model = ConvNetConfig::new(channels, n_a).init(&train_device);
            let cfg = TrainConfig {
                epochs: params.epochs,
                batch_size: params.batch_size,
                lr: params.lr,
                seed: params.seed,
                ..TrainConfig::default()
            };
            Trainer::new(model, cfg, all_params::<ConvNet>)
        }
    };
    let mut trainer = trainer;
    trainer.config.epochs = params.epochs;
    observer(LabEvent::Stage {
        name: "training the ConvNet on the kept classes",
        fraction: 0.0,
    });
    let loss: &LossFn<ConvNet> = &ce_loss;
    let fit = trainer
        .fit(
            compute,
            (&ds.train, &prepared.train_a),
            Some((&ds.val, &prepared.dev_a)),
            loss,
            control,
            &mut |e| {
                observer(LabEvent::Train {
                    phase: "train",
                    event: e,
                })
            },
        )
        .await;
    // Keep what was trained even when the run stops early, so a re-run continues.
    let model = trainer.model.clone();
    let history = trainer.history.clone();
    state.trainer = Some(trainer);
    fit?;

    observer(LabEvent::Stage {
        name: "measuring dev-A accuracy",
        fraction: 0.45,
    });
    let (dev_acc, _) = classify(&model, compute, &ds.val, &prepared.dev_a, n_a, control).await?;

    observer(LabEvent::Stage {
        name: "extracting test features",
        fraction: 0.5,
    });
    let feats = extract(
        &model,
        compute,
        &ds.test,
        &prepared.test,
        control,
        &["flat conv", "encoder", "normalised"],
        &|m: &ConvNet, x| {
            let f = m.features(x);
            vec![f.flat, f.encoded, f.normalized]
        },
    )
    .await?;
    let umaps = umap_layouts(
        &feats,
        &prepared.test,
        params.seed,
        control,
        observer,
        (0.55, 0.7),
    )
    .await?;

    let device = train_device.clone();
    let trained = model.clone();
    let fresh_head = move || {
        device.seed(params.seed.wrapping_add(7));
        trained.clone().reset_head(prepared.names_b.len(), &device)
    };
    let device2 = train_device.clone();
    let untrained = move || {
        device2.seed(params.seed.wrapping_add(99));
        ConvNetConfig::new(channels, prepared.names_b.len()).init(&device2)
    };
    let (probe, curves) = transfer(
        &fresh_head,
        &untrained,
        prepared,
        params,
        compute,
        control,
        observer,
        (0.7, 1.0),
    )
    .await?;

    Ok(ChapterOutput::new(
        history,
        Some(dev_acc),
        probe,
        umaps,
        curves,
        prepared,
    ))
}
