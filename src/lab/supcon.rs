//! Chapter: supervised contrastive learning (SupCon).
//!
//! The same encoder learns by pulling same-class images together and pushing others
//! apart on the unit sphere, with no classifier at all. Transfer then puts a linear
//! classifier on the encoder output (not after the projection head).

use super::common::{LabError, LabEvent, Prepared, extract, transfer, umap_layouts};
use super::params::LabParams;
use super::supervised::ChapterOutput;
use crate::model::contrastive::{ContrastiveConvNet, ContrastiveConvNetConfig};
use crate::platform::Compute;
use crate::train::engine::{LossFn, all_params};
use crate::train::losses::supcon;
use crate::train::{Batch, RunControl, TrainConfig, Trainer};

/// The model and optimiser state kept between runs in a session.
#[derive(Default)]
pub struct SupConState {
    /// The trainer, if a run has started.
    pub trainer: Option<Trainer<ContrastiveConvNet>>,
}

/// Run (or continue) the chapter.
pub async fn run(
    state: &mut SupConState,
    prepared: &Prepared,
    params: &LabParams,
    compute: &Compute,
    control: &RunControl,
    observer: &mut dyn FnMut(LabEvent),
) -> Result<ChapterOutput, LabError> {
    let ds = &prepared.dataset;
    let channels = ds.manifest.channels;
    let train_device = compute.train_device();
    let mut trainer = match state.trainer.take() {
        Some(t) => t,
        None => {
            compute.device.seed(params.seed);
            let model = ContrastiveConvNetConfig::new(channels).init(&train_device);
            let cfg = TrainConfig {
                epochs: params.epochs,
                batch_size: params.batch_size,
                lr: params.lr,
                seed: params.seed,
                // The notebook drops the last partial batch here.
                drop_last: prepared.train_a.len() >= params.batch_size,
                ..TrainConfig::default()
            };
            Trainer::new(model, cfg, all_params::<ContrastiveConvNet>)
        }
    };
    trainer.config.epochs = params.epochs;
    let t = params.temperature;
    let loss_fn = move |m: &ContrastiveConvNet, b: &Batch| {
        supcon(m.project(b.images.clone()), b.labels.clone(), t)
    };
    let loss: &LossFn<ContrastiveConvNet> = &loss_fn;
    observer(LabEvent::Stage {
        name: "training the encoder with the SupCon loss",
        fraction: 0.0,
    });
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
    let model = trainer.model.clone();
    let history = trainer.history.clone();
    state.trainer = Some(trainer);
    fit?;

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
        &["flat conv", "encoder", "contrastive"],
        &|m: &ContrastiveConvNet, x| m.features(x).to_vec(),
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

    let n_b = prepared.names_b.len();
    let device = train_device.clone();
    let trained = model.clone();
    let fresh_head = move || {
        device.seed(params.seed.wrapping_add(7));
        trained.clone().reset_head(n_b, &device)
    };
    let device2 = train_device.clone();
    let untrained = move || {
        device2.seed(params.seed.wrapping_add(99));
        ContrastiveConvNetConfig::new(channels)
            .init(&device2)
            .reset_head(n_b, &device2)
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
        history, None, probe, umaps, curves, prepared,
    ))
}
