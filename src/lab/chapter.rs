//! The interface every runnable chapter implements, the context a run gets, and the
//! one result type the page, `results.json` and the comparison board read.

use super::charts::Chart;
use super::error::{LabError, LabEvent};
use super::features::Embedding2d;
use super::params::LabParams;
use super::prepare::Prepared;
use super::registry::ChapterInfo;
use super::transfer::{ProbeResult, TransferCurves};
use crate::model::safetensors::{SafeTensors, SafeTensorsWriter};
use crate::platform::Compute;
use crate::train::RunControl;
use crate::train::engine::History;
use serde::{Deserialize, Serialize};
use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A boxed future that stays on its thread (the browser has only one).
pub type LocalBoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// What a run needs: the data, the parameters, the device, the control handle and
/// somewhere to report progress.
pub struct RunCtx<'a> {
    /// The dataset with the lab's split applied.
    pub prepared: &'a Prepared,
    /// The parameters of this run.
    pub params: &'a LabParams,
    /// Where to compute.
    pub compute: &'a Compute,
    /// Pause and cancel.
    pub control: &'a RunControl,
    /// Progress reports.
    pub observer: &'a mut dyn FnMut(LabEvent),
}

impl RunCtx<'_> {
    /// Report a stage.
    pub fn stage(&mut self, name: &str, fraction: f64) {
        (self.observer)(LabEvent::Stage { name, fraction });
    }
}

/// A chapter that can run. It keeps its trained model between runs, so a finished
/// run can be continued; [`Chapter::reset`] starts over from the seed.
pub trait Chapter {
    /// Its registry entry.
    fn info(&self) -> &'static ChapterInfo;

    /// Checks that need the chapter's own state or the data, made before any work.
    fn validate(&self, _params: &LabParams, _prepared: &Prepared) -> Result<(), LabError> {
        Ok(())
    }

    /// Train (or continue training) and analyse.
    fn run<'a>(
        &'a mut self,
        ctx: RunCtx<'a>,
    ) -> LocalBoxFuture<'a, Result<ChapterOutput, LabError>>;

    /// Forget the trained model.
    fn reset(&mut self);

    /// Epochs the kept model has trained (0 when there is none).
    fn epochs_trained(&self) -> usize;

    /// The concrete chapter, for a view or command that needs more (CLIP's weights).
    fn as_any_mut(&mut self) -> &mut dyn Any;

    /// Add the trained state to a saved run: the model, the optimiser's state when
    /// `with_optimizer`, and what continuing needs. `Ok(false)` when the chapter
    /// has nothing trained to save (not run yet, or nothing it trains).
    fn save_into<'a>(
        &'a self,
        _w: &'a mut SafeTensorsWriter,
        _with_optimizer: bool,
    ) -> LocalBoxFuture<'a, Result<bool, LabError>> {
        Box::pin(async { Ok(false) })
    }

    /// Replace the trained state with a saved run's; `ctx` holds the saved run's
    /// parameters and the data it was trained on. With `evaluate`, the next run
    /// trains no more epochs (it analyses the saved model), unless the saved run was
    /// cut short, which it then completes; without, it trains `epochs` more.
    fn load_from(
        &mut self,
        _file: &SafeTensors<'_>,
        _ctx: &RunCtx<'_>,
        _evaluate: bool,
    ) -> Result<(), LabError> {
        Err(LabError::Weights(format!(
            "the {} chapter trains no model that can be saved or loaded",
            self.info().title
        )))
    }
}

/// The numbers of a chapter run: the chapter's object in `results.json`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ChapterResult {
    /// Mean per-example training loss per epoch.
    pub train_loss: Vec<f64>,
    /// Mean per-example dev loss per epoch (NaN → null where absent).
    pub dev_loss: Vec<f64>,
    /// Mean wall seconds of the training part of an epoch.
    pub seconds_per_epoch: f64,
    /// Epochs trained in total.
    pub epochs_trained: usize,
    /// Accuracy on dev A, for chapters with a classifier on the kept classes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dev_a_accuracy: Option<f64>,
    /// Transfer to the held-out classes.
    pub probe: ProbeResult,
    /// What was adjusted on the way (e.g. a limit capped to the split's size).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Numbers only this chapter has (CLIP: the weights, images per second).
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// What a chapter's own view needs from a finished run beyond its charts (PCA's
/// basis, for the live reconstruction slider), read back with [`Attachment::get`].
#[derive(Clone)]
pub struct Attachment(pub Arc<dyn Any + Send + Sync>);

impl Attachment {
    /// Attach a value.
    pub fn new<T: Any + Send + Sync>(value: T) -> Self {
        Self(Arc::new(value))
    }
    /// The value, if it is a `T`.
    pub fn get<T: Any + Send + Sync>(&self) -> Option<&T> {
        self.0.downcast_ref::<T>()
    }
}

impl std::fmt::Debug for Attachment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Attachment")
    }
}

/// Everything a finished run shows: the numbers and what the charts are drawn from.
#[derive(Clone, Debug, Default)]
pub struct ChapterOutput {
    /// The numbers.
    pub result: ChapterResult,
    /// Loss history of the main training.
    pub history: History,
    /// UMAP layouts of test features.
    pub umaps: Vec<Embedding2d>,
    /// Freeze vs fine-tune curves, when the chapter fine-tunes.
    pub curves: Option<TransferCurves>,
    /// Held-out class names in remapped order.
    pub names_b: Vec<String>,
    /// Held-out original labels, for marking them in plots.
    pub held_out_labels: Vec<u8>,
    /// The chapter's own figures (reconstructions, components, …), drawn after the
    /// shared charts on the page and written as PNGs by the CLI.
    pub figures: Vec<Chart>,
    /// Data for the chapter's own live views.
    pub attachment: Option<Attachment>,
}

impl ChapterOutput {
    /// An output with the split's names and the history's numbers filled in.
    pub fn new(history: History, probe: ProbeResult, prepared: &Prepared) -> Self {
        Self {
            result: ChapterResult {
                train_loss: history.train_loss(),
                dev_loss: history.dev_loss(),
                seconds_per_epoch: history.seconds_per_epoch(),
                epochs_trained: history.epochs.len(),
                probe,
                notes: prepared.notes.clone(),
                ..ChapterResult::default()
            },
            history,
            names_b: prepared.names_b.clone(),
            held_out_labels: prepared.split.held_out_labels.clone(),
            ..Self::default()
        }
    }
}
