//! The training loop every chapter shares, in the browser and natively.
//!
//! It is `async` so the browser can run it on its one thread: after every step it
//! reads the loss back asynchronously (the only kind of readback WebGPU allows) and
//! yields to the event loop, so the page keeps painting and the cancel button works.
//! Calling [`Trainer::fit`] again continues from the current weights and optimiser
//! state, as re-running a notebook cell does.

use super::batcher::{Batch, View, batch_positions, make_batch};
use crate::data::SplitData;
use crate::data::rng::NumpyRng;
use crate::platform::{self, Compute};
use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use burn::tensor::Gradients;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

/// Optimiser and schedule settings; the defaults are the notebook's.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TrainConfig {
    /// Epochs per call to [`Trainer::fit`].
    pub epochs: usize,
    /// Examples per step.
    pub batch_size: usize,
    /// AdamW learning rate.
    pub lr: f64,
    /// AdamW (decoupled) weight decay.
    pub weight_decay: f64,
    /// Seed for shuffling.
    pub seed: u64,
    /// Drop the last partial training batch (the notebook does for SupCon and transfer).
    pub drop_last: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 10,
            batch_size: 128,
            lr: 1e-4,
            weight_decay: 1e-5,
            seed: 0,
            drop_last: false,
        }
    }
}

/// What the user wants the loop to do; checked before every step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// Keep going.
    Run,
    /// Wait without stepping.
    Pause,
    /// Stop at the next step boundary.
    Cancel,
}

/// A shareable handle to pause, resume or cancel a run.
#[derive(Clone, Debug, Default)]
pub struct RunControl(Arc<AtomicU8>);

impl RunControl {
    /// Set the wanted state.
    pub fn set(&self, c: Control) {
        self.0.store(
            match c {
                Control::Run => 0,
                Control::Pause => 1,
                Control::Cancel => 2,
            },
            Ordering::SeqCst,
        );
    }

    /// The wanted state.
    pub fn get(&self) -> Control {
        match self.0.load(Ordering::SeqCst) {
            1 => Control::Pause,
            2 => Control::Cancel,
            _ => Control::Run,
        }
    }

    /// Wait while paused; `Err(Cancelled)` once cancelled.
    pub async fn checkpoint(&self) -> Result<(), TrainError> {
        loop {
            match self.get() {
                Control::Run => return Ok(()),
                Control::Cancel => return Err(TrainError::Cancelled),
                Control::Pause => platform::sleep_ms(50).await,
            }
        }
    }
}

/// Why a run stopped early.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum TrainError {
    /// The user cancelled; the weights are those of the last finished step.
    #[error("cancelled")]
    Cancelled,
    /// The loss became NaN or infinite.
    #[error(
        "the loss became {value} at epoch {epoch}, step {step}; training stopped (try a lower learning rate)"
    )]
    NonFinite {
        /// 1-based epoch.
        epoch: usize,
        /// 1-based step within the epoch.
        step: usize,
        /// The value read.
        value: f64,
    },
    /// The device failed, e.g. a lost GPU.
    #[error("the compute device failed: {0}")]
    Device(String),
    /// Nothing to train on.
    #[error("{0}")]
    Data(String),
}

/// Progress reports.
#[derive(Clone, Debug, Serialize)]
pub enum TrainEvent {
    /// One optimiser step finished.
    Step {
        /// 1-based epoch (counting earlier calls).
        epoch: usize,
        /// 1-based step in this epoch.
        step: usize,
        /// Steps in the epoch.
        steps: usize,
        /// Mean per-example loss of the batch.
        loss: f64,
        /// Seconds left in this call, estimated from the steps so far.
        eta_seconds: f64,
    },
    /// One epoch finished.
    Epoch(EpochStats),
}

/// Per-epoch numbers.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct EpochStats {
    /// 1-based epoch (counting earlier calls).
    pub epoch: usize,
    /// Mean per-example training loss.
    pub train_loss: f64,
    /// Mean per-example dev loss, when there is a dev split.
    pub dev_loss: Option<f64>,
    /// Wall seconds of the training part of the epoch.
    pub seconds: f64,
    /// Training examples per second.
    pub examples_per_second: f64,
}

/// Everything a chapter plots: per-epoch and per-step losses.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct History {
    /// Per epoch.
    pub epochs: Vec<EpochStats>,
    /// Per step, in order.
    pub step_loss: Vec<f64>,
}

impl History {
    /// Per-epoch training losses.
    pub fn train_loss(&self) -> Vec<f64> {
        self.epochs.iter().map(|e| e.train_loss).collect()
    }
    /// Per-epoch dev losses (NaN where absent).
    pub fn dev_loss(&self) -> Vec<f64> {
        self.epochs
            .iter()
            .map(|e| e.dev_loss.unwrap_or(f64::NAN))
            .collect()
    }
    /// Mean training seconds per epoch.
    pub fn seconds_per_epoch(&self) -> f64 {
        if self.epochs.is_empty() {
            return 0.0;
        }
        self.epochs.iter().map(|e| e.seconds).sum::<f64>() / self.epochs.len() as f64
    }
}

/// The loss of a batch under a model: mean over the batch, shape `[1]`.
pub type LossFn<M> = dyn Fn(&M, &Batch) -> Tensor<1>;

/// Which parameters the optimiser updates: all, or a part (e.g. the head).
pub type GradSelect<M> = fn(&M, Gradients) -> GradientsParams;

/// Update every parameter.
pub fn all_params<M: Module>(model: &M, grads: Gradients) -> GradientsParams {
    GradientsParams::from_grads(grads, model)
}

/// A model with its optimiser state and history.
pub struct Trainer<M: Module + Clone> {
    /// The current weights (on the autodiff device).
    pub model: M,
    optim: ModuleOptimizer,
    select: GradSelect<M>,
    /// Settings.
    pub config: TrainConfig,
    /// What has happened so far.
    pub history: History,
    rng: NumpyRng,
}

/// Read a tensor's values back asynchronously, as f32 in row-major order.
pub async fn read_floats<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>, TrainError> {
    let data = t
        .into_data_async()
        .await
        .map_err(|e| TrainError::Device(format!("{e:?}")))?;
    data.convert::<f32>()
        .try_into_vec()
        .map_err(|e| TrainError::Device(format!("{e:?}")))
}

/// Read a scalar asynchronously.
pub async fn read_scalar(t: Tensor<1>) -> Result<f64, TrainError> {
    let v = read_floats(t).await?;
    v.first()
        .map(|x| *x as f64)
        .ok_or_else(|| TrainError::Device("empty readback".into()))
}

impl<M: Module + Clone> Trainer<M> {
    /// Wrap a freshly built model (on the training device).
    pub fn new(model: M, config: TrainConfig, select: GradSelect<M>) -> Self {
        let optim = AdamWConfig::new()
            .with_weight_decay(config.weight_decay as f32)
            .with_epsilon(1e-8)
            .init();
        let rng = NumpyRng::new(config.seed);
        Self {
            model,
            optim,
            select,
            config,
            history: History::default(),
            rng,
        }
    }

    /// Epochs trained so far.
    pub fn epochs_done(&self) -> usize {
        self.history.epochs.len()
    }

    /// Train for `config.epochs` more epochs on `train`, measuring `dev` after each.
    #[allow(clippy::too_many_arguments)]
    pub async fn fit(
        &mut self,
        compute: &Compute,
        train: (&SplitData, &View),
        dev: Option<(&SplitData, &View)>,
        loss: &LossFn<M>,
        control: &RunControl,
        observer: &mut dyn FnMut(&TrainEvent),
    ) -> Result<(), TrainError> {
        let (train_split, train_view) = train;
        if train_view.is_empty() {
            return Err(TrainError::Data("the training split is empty".into()));
        }
        let train_device = compute.train_device();
        let epochs = self.config.epochs;
        let bs = self.config.batch_size.max(1);
        let steps_total = {
            let full = train_view.len() / bs;
            let part = usize::from(!self.config.drop_last && train_view.len() % bs != 0);
            (full + part) * epochs
        };
        if steps_total == 0 {
            return Err(TrainError::Data(format!(
                "{} training examples make no full batch of {bs}",
                train_view.len()
            )));
        }
        let started = platform::now_ms();
        let mut steps_done = 0usize;
        for _ in 0..epochs {
            let epoch = self.epochs_done() + 1;
            let batches = batch_positions(
                train_view.len(),
                bs,
                Some(&mut self.rng),
                self.config.drop_last,
            );
            let t0 = platform::now_ms();
            let mut loss_sum = 0.0;
            let mut seen = 0usize;
            for (s, positions) in batches.iter().enumerate() {
                control.checkpoint().await?;
                let batch = make_batch(train_split, train_view, positions, &train_device);
                let l = loss(&self.model, &batch);
                let grads = (self.select)(&self.model, l.backward());
                let value = read_scalar(l).await?;
                if !value.is_finite() {
                    return Err(TrainError::NonFinite {
                        epoch,
                        step: s + 1,
                        value,
                    });
                }
                self.model = self.optim.step(self.config.lr, self.model.clone(), grads);
                loss_sum += value * batch.len as f64;
                seen += batch.len;
                steps_done += 1;
                self.history.step_loss.push(value);
                let elapsed = (platform::now_ms() - started) / 1000.0;
                let eta = elapsed / steps_done as f64 * (steps_total - steps_done) as f64;
                observer(&TrainEvent::Step {
                    epoch,
                    step: s + 1,
                    steps: batches.len(),
                    loss: value,
                    eta_seconds: eta,
                });
                platform::yield_now().await;
            }
            let seconds = (platform::now_ms() - t0) / 1000.0;
            let dev_loss = match dev {
                Some((split, view)) if !view.is_empty() => Some(
                    self.evaluate_loss(compute, split, view, loss, control)
                        .await?,
                ),
                _ => None,
            };
            let stats = EpochStats {
                epoch,
                train_loss: loss_sum / seen.max(1) as f64,
                dev_loss,
                seconds,
                examples_per_second: seen as f64 / seconds.max(1e-9),
            };
            self.history.epochs.push(stats.clone());
            observer(&TrainEvent::Epoch(stats));
        }
        Ok(())
    }

    /// Mean per-example loss over a whole view in evaluation mode, keeping the last
    /// partial batch.
    pub async fn evaluate_loss(
        &self,
        compute: &Compute,
        split: &SplitData,
        view: &View,
        loss: &LossFn<M>,
        control: &RunControl,
    ) -> Result<f64, TrainError> {
        let model = self.model.valid();
        let mut sum = 0.0;
        let mut n = 0usize;
        for positions in batch_positions(view.len(), 256, None, false) {
            control.checkpoint().await?;
            let batch = make_batch(split, view, &positions, &compute.device);
            let value = read_scalar(loss(&model, &batch)).await?;
            sum += value * batch.len as f64;
            n += batch.len;
            platform::yield_now().await;
        }
        Ok(sum / n.max(1) as f64)
    }
}

/// Run `f` over a view in evaluation batches and collect one row of floats per example
/// for each output, reading back asynchronously.
pub async fn collect_rows<M: Module>(
    model: &M,
    compute: &Compute,
    split: &SplitData,
    view: &View,
    control: &RunControl,
    f: &dyn Fn(&M, Tensor<4>) -> Vec<Tensor<2>>,
) -> Result<Vec<Vec<f32>>, TrainError> {
    let mut outs: Vec<Vec<f32>> = Vec::new();
    for positions in batch_positions(view.len(), 256, None, false) {
        control.checkpoint().await?;
        let batch = make_batch(split, view, &positions, &compute.device);
        let tensors = f(model, batch.images);
        if outs.is_empty() {
            outs = vec![Vec::new(); tensors.len()];
        }
        for (out, t) in outs.iter_mut().zip(tensors) {
            out.extend(read_floats(t).await?);
        }
        platform::yield_now().await;
    }
    Ok(outs)
}
