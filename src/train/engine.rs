//! The training loop every chapter shares, in the browser and natively.
//!
//! It is `async` so the browser can run it on its one thread: it reads losses back
//! asynchronously (the only kind of readback WebGPU allows; on a GPU once every few
//! steps, see [`super::readback`]) and yields to the event loop after every step, so the
//! page keeps painting and the cancel button works.
//! Calling [`Trainer::fit`] again continues from the current weights and optimiser
//! state, as re-running a notebook cell does.

use super::batcher::{Batch, batch_positions};
use super::clip_grad::clip_global_norm;
pub use super::control::{Control, RunControl, TrainError};
use super::readback::{GPU_READBACK_WINDOW, Pending, Tally};
pub use super::readback::{collect_rows, read_floats, read_scalar};
use super::snapshot::Snapshot;
use super::source::{BatchSource, Resident};
use crate::data::rng::NumpyRng;
use crate::platform::{self, BackendKind, Compute};
use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use burn::tensor::Gradients;
use serde::{Deserialize, Serialize};

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
    /// Clip the gradients to this global L2 norm before each step (DINO uses 3.0).
    pub grad_clip_norm: Option<f64>,
    /// Steps whose losses are read back together: `None` picks 1 on the CPU and
    /// [`GPU_READBACK_WINDOW`] on a GPU. Above 1, each queued step keeps the weights
    /// from before it, so a non-finite loss still rolls back to them.
    #[serde(default)]
    pub readback_window: Option<usize>,
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
            grad_clip_norm: None,
            readback_window: None,
        }
    }
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
        /// The chapter's monitored values for this batch (see [`LossFn`]).
        monitors: Vec<f64>,
        /// Seconds left in this call, estimated from the steps so far.
        eta_seconds: f64,
    },
    /// One epoch finished.
    Epoch(EpochStats),
}

impl TrainEvent {
    /// One line for a progress display, as the page and the CLI show it.
    pub fn describe(&self, phase: &str) -> String {
        match self {
            TrainEvent::Step {
                epoch,
                step,
                steps,
                loss,
                ..
            } => format!("{phase}: epoch {epoch}, step {step} of {steps}, loss {loss:.4}"),
            TrainEvent::Epoch(s) => format!(
                "{phase} epoch {}: train {:.4} dev {} ({:.1}s, {:.0} img/s)",
                s.epoch,
                s.train_loss,
                s.dev_loss
                    .map(|d| format!("{d:.4}"))
                    .unwrap_or_else(|| "-".into()),
                s.seconds,
                s.examples_per_second
            ),
        }
    }
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
    /// Epoch means of the chapter's monitored values (see [`LossFn`]).
    #[serde(default)]
    pub monitors: Vec<f64>,
}

/// Everything a chapter plots: per-epoch and per-step losses.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct History {
    /// Per epoch.
    pub epochs: Vec<EpochStats>,
    /// Per step, in order.
    pub step_loss: Vec<f64>,
    /// Per step, the chapter's monitored values (empty rows when it has none).
    #[serde(default)]
    pub step_monitors: Vec<Vec<f64>>,
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

/// The loss of a batch under a model: mean over the batch, shape `[1]`. A chapter
/// that monitors more (DINO's teacher entropy) appends those values, detached, as
/// `[1 + k]`; only element 0 is differentiated, and all are read back in one go.
pub type LossFn<M> = dyn Fn(&M, &Batch) -> Tensor<1>;

/// Which parameters the optimiser updates: all, or a part (e.g. the head).
pub type GradSelect<M> = fn(&M, Gradients) -> GradientsParams;

/// Update every parameter.
pub fn all_params<M: Module>(model: &M, grads: Gradients) -> GradientsParams {
    GradientsParams::from_grads(grads, model)
}

/// A per-batch transform on the device (augmentations, extra views), given a
/// seeded augmentation generator.
pub type Transform<'a> = Box<dyn Fn(Batch, &mut NumpyRng) -> Batch + 'a>;

/// What a chapter can add to the loop without writing its own.
pub struct Hooks<'a, M> {
    /// Applied to every training batch before the loss, and to every dev batch (with
    /// a generator restarted each time, so every epoch's dev loss sees the same views).
    pub transform: Option<Transform<'a>>,
    /// Called after every optimiser step with the new weights, returning the model to
    /// keep (an EMA teacher inside it moves).
    pub after_step: Option<Box<dyn FnMut(M) -> M + 'a>>,
    /// Called at the end of every epoch with the weights (per-epoch snapshots).
    pub after_epoch: Option<&'a mut dyn FnMut(&M)>,
}

impl<M> Hooks<'_, M> {
    /// No transform, no after-step hook.
    pub fn none() -> Self {
        Self {
            transform: None,
            after_step: None,
            after_epoch: None,
        }
    }
}

/// A model with its optimiser state and history.
pub struct Trainer<M: Module + Clone> {
    /// The current weights (on the autodiff device).
    pub model: M,
    pub(crate) optim: ModuleOptimizer,
    pub(crate) select: GradSelect<M>,
    /// Settings.
    pub config: TrainConfig,
    /// What has happened so far.
    pub history: History,
    /// The epoch count a run that has not finished is heading for, so that running
    /// again after a cancel completes that run rather than adding epochs (see
    /// [`Trainer::epochs_owed`]); `None` once it finished.
    pub target_epochs: Option<usize>,
    pub(crate) rng: NumpyRng,
    pub(crate) aug_rng: NumpyRng,
}

/// Everything an epoch changes, as it was when the epoch began.
struct EpochStart<M> {
    model: Snapshot<M>,
    optim: ModuleOptimizer,
    rng: NumpyRng,
    aug_rng: NumpyRng,
    steps: usize,
}

impl<M: Module + Clone> Trainer<M> {
    /// Wrap a freshly built model (on the training device).
    pub fn new(model: M, config: TrainConfig, select: GradSelect<M>) -> Self {
        let optim = AdamWConfig::new()
            .with_weight_decay(config.weight_decay as f32)
            .with_epsilon(1e-8)
            .init();
        let rng = NumpyRng::new(config.seed);
        let aug_rng = NumpyRng::new(config.seed.wrapping_add(0x5eed));
        Self {
            model,
            optim,
            select,
            config,
            history: History::default(),
            target_epochs: None,
            rng,
            aug_rng,
        }
    }

    /// Start (or resume) a run of `epochs` epochs: returns how many epochs are left
    /// to train. A run that was cancelled keeps its target, so the next call
    /// completes it; [`Trainer::finish_run`] clears it.
    pub fn epochs_owed(&mut self, epochs: usize) -> usize {
        let target = *self
            .target_epochs
            .get_or_insert(self.epochs_done() + epochs);
        target.saturating_sub(self.epochs_done())
    }

    /// The run finished: the next one adds epochs again.
    pub fn finish_run(&mut self) {
        self.target_epochs = None;
    }

    /// Go back to the start of the epoch that was cut short by a cancel, so that
    /// a completed run gives the same numbers whether or not it was interrupted.
    fn rewind(&mut self, start: EpochStart<M>, e: TrainError) -> TrainError {
        if e == TrainError::Cancelled {
            self.model = start.model.restore();
            self.optim = start.optim;
            self.rng = start.rng;
            self.aug_rng = start.aug_rng;
            self.history.step_loss.truncate(start.steps);
            self.history.step_monitors.truncate(start.steps);
        }
        e
    }

    /// Epochs trained so far.
    pub fn epochs_done(&self) -> usize {
        self.history.epochs.len()
    }

    /// Train for `config.epochs` more epochs on `train`, measuring `dev` after each.
    /// A non-finite loss stops the run before the optimiser step, so the weights
    /// are those from before that step.
    #[allow(clippy::too_many_arguments)]
    pub async fn fit(
        &mut self,
        compute: &Compute,
        train: &dyn BatchSource,
        dev: Option<&dyn BatchSource>,
        loss: &LossFn<M>,
        control: &RunControl,
        hooks: &mut Hooks<'_, M>,
        observer: &mut dyn FnMut(&TrainEvent),
    ) -> Result<(), TrainError> {
        let train_view = train;
        if train_view.is_empty() {
            return Err(TrainError::Data("the training split is empty".into()));
        }
        if self.config.epochs == 0 {
            return Ok(());
        }
        let train_device = compute.train_device();
        let epochs = self.config.epochs;
        let bs = self.config.batch_size.max(1);
        let steps_total = {
            let full = train_view.len() / bs;
            let part = usize::from(!self.config.drop_last && !train_view.len().is_multiple_of(bs));
            (full + part) * epochs
        };
        if steps_total == 0 {
            return Err(TrainError::Data(format!(
                "{} training examples make no full batch of {bs}",
                train_view.len()
            )));
        }
        // On a GPU the data is uploaded once and the loss is read back once every
        // `window` steps, so the queue never drains between steps. The CPU backend
        // computes eagerly, so it reads every step and needs no snapshots.
        let on_gpu = compute.kind != BackendKind::Cpu;
        let window = self
            .config
            .readback_window
            .unwrap_or(if on_gpu { GPU_READBACK_WINDOW } else { 1 })
            .max(1);
        let resident = on_gpu.then(|| Resident::upload(train_view, &train_device));
        let source: &dyn BatchSource = match &resident {
            Some(r) => r,
            None => train_view,
        };
        let started = platform::now_ms();
        let mut tally = Tally::new(steps_total, started);
        for _ in 0..epochs {
            let epoch = self.epochs_done() + 1;
            let start = EpochStart {
                model: Snapshot::take(&self.model),
                optim: self.optim.clone(),
                rng: self.rng.clone(),
                aug_rng: self.aug_rng.clone(),
                steps: self.history.step_loss.len(),
            };
            let batches = batch_positions(
                train_view.len(),
                bs,
                Some(&mut self.rng),
                self.config.drop_last,
            );
            let t0 = platform::now_ms();
            tally.start_epoch(epoch, batches.len());
            let mut pending: Vec<Pending<M>> = Vec::new();
            for (s, positions) in batches.iter().enumerate() {
                if control.get() != Control::Run {
                    // Report the queued steps before parking or stopping.
                    self.settle(&mut pending, &mut tally, observer).await?;
                }
                if let Err(e) = control.checkpoint().await {
                    self.settle(&mut pending, &mut tally, observer).await?;
                    return Err(self.rewind(start, e));
                }
                let mut batch = source.batch(positions, &train_device);
                if let Some(t) = &hooks.transform {
                    batch = t(batch, &mut self.aug_rng);
                }
                // Before the forward pass, which moves BatchNorm's running statistics.
                let before = Snapshot::take(&self.model);
                let out = loss(&self.model, &batch);
                let l = if out.dims()[0] > 1 {
                    out.clone().narrow(0, 0, 1)
                } else {
                    out.clone()
                };
                let mut grads = (self.select)(&self.model, l.backward());
                if let Some(max) = self.config.grad_clip_norm {
                    clip_global_norm(&self.model, &mut grads, max);
                }
                pending.push(Pending {
                    step: s + 1,
                    len: batch.len,
                    out: out.detach(),
                    before: Some((before, self.optim.clone())),
                });
                if window == 1 {
                    // Read before stepping: a non-finite loss never reaches the weights.
                    self.settle(&mut pending, &mut tally, observer).await?;
                }
                self.model = self.optim.step(self.config.lr, self.model.clone(), grads);
                if let Some(after) = hooks.after_step.as_mut() {
                    self.model = after(self.model.clone());
                }
                if pending.len() >= window || s + 1 == batches.len() {
                    self.settle(&mut pending, &mut tally, observer).await?;
                }
                platform::yield_now().await;
            }
            let (loss_sum, monitor_sum, seen) = tally.take_epoch();
            let seconds = (platform::now_ms() - t0) / 1000.0;
            let dev_loss = match dev {
                Some(source) if !source.is_empty() => {
                    let transform = hooks.transform.as_ref();
                    match self
                        .evaluate_loss(compute, source, loss, control, transform)
                        .await
                    {
                        Ok(v) => Some(v),
                        Err(e) => return Err(self.rewind(start, e)),
                    }
                }
                _ => None,
            };
            let stats = EpochStats {
                epoch,
                train_loss: loss_sum / seen.max(1) as f64,
                dev_loss,
                seconds,
                examples_per_second: seen as f64 / seconds.max(1e-9),
                monitors: monitor_sum.iter().map(|s| s / seen.max(1) as f64).collect(),
            };
            self.history.epochs.push(stats.clone());
            if let Some(after) = hooks.after_epoch.as_mut() {
                after(&self.model);
            }
            observer(&TrainEvent::Epoch(stats));
        }
        Ok(())
    }

    /// Read back the queued steps' losses in one go, record them, and report each. On a
    /// non-finite loss, go back to the weights and optimiser state from before that
    /// step and stop, naming it.
    async fn settle(
        &mut self,
        pending: &mut Vec<Pending<M>>,
        tally: &mut Tally,
        observer: &mut dyn FnMut(&TrainEvent),
    ) -> Result<(), TrainError> {
        if pending.is_empty() {
            return Ok(());
        }
        let steps = std::mem::take(pending);
        let width = steps.first().map_or(1, |p| p.out.dims()[0]);
        let outs: Vec<Tensor<1>> = steps.iter().map(|p| p.out.clone()).collect();
        let values = read_floats(Tensor::cat(outs, 0)).await?;
        for (p, row) in steps.into_iter().zip(values.chunks(width.max(1))) {
            let value = row.first().map_or(f64::NAN, |v| *v as f64);
            if !value.is_finite() {
                if let Some((model, optim)) = p.before {
                    self.model = model.restore();
                    self.optim = optim;
                }
                return Err(TrainError::NonFinite {
                    epoch: tally.epoch,
                    step: p.step,
                    value,
                });
            }
            let monitors: Vec<f64> = row.iter().skip(1).map(|v| *v as f64).collect();
            self.history.step_loss.push(value);
            self.history.step_monitors.push(monitors.clone());
            observer(&tally.add(p.step, p.len, value, monitors));
        }
        Ok(())
    }

    /// Mean per-example loss over a whole view in evaluation mode, keeping the last
    /// partial batch, through `transform` when given (with a generator seeded the
    /// same way every time).
    pub async fn evaluate_loss(
        &self,
        compute: &Compute,
        source: &dyn BatchSource,
        loss: &LossFn<M>,
        control: &RunControl,
        transform: Option<&Transform<'_>>,
    ) -> Result<f64, TrainError> {
        let model = self.model.valid();
        let mut rng = NumpyRng::new(self.config.seed.wrapping_add(0xde5));
        let mut sum = 0.0;
        let mut n = 0usize;
        for positions in batch_positions(source.len(), 256, None, false) {
            control.checkpoint().await?;
            let mut batch = source.batch(&positions, &compute.device);
            if let Some(t) = transform {
                batch = t(batch, &mut rng);
            }
            let value = read_scalar(loss(&model, &batch).narrow(0, 0, 1)).await?;
            sum += value * batch.len as f64;
            n += batch.len;
            platform::yield_now().await;
        }
        Ok(sum / n.max(1) as f64)
    }
}
