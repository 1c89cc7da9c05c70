//! Reading losses back without stalling a GPU: steps whose loss is still on the device
//! wait in a short queue, with the weights from before each one, and are settled in
//! one readback. Per-epoch sums and progress live here too, and the asynchronous
//! reads every readback goes through (a tensor's floats, a scalar, rows of features).

use super::batcher::batch_positions;
use super::control::{RunControl, TrainError};
use super::engine::TrainEvent;
use super::snapshot::Snapshot;
use super::source::BatchSource;
use crate::platform::{self, Compute};
use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::prelude::*;

/// Steps queued on a GPU before their losses are read back in one go. Long enough to
/// keep the device busy, short enough for a live chart.
pub const GPU_READBACK_WINDOW: usize = 8;

/// One step whose loss has not been read yet.
pub struct Pending<M> {
    /// 1-based step in the epoch.
    pub step: usize,
    /// Examples in its batch.
    pub len: usize,
    /// The loss (and monitors), detached, still on the device.
    pub out: Tensor<1>,
    /// The model (running statistics included, taken before the step's forward
    /// pass moved them) and the optimiser from before the step, to roll back to if
    /// its loss turns out not to be finite.
    pub before: Option<(Snapshot<M>, ModuleOptimizer)>,
}

/// Running sums of an epoch, and the counts behind the time estimate.
#[derive(Default)]
pub struct Tally {
    /// Steps in this call to `fit`.
    pub steps_total: usize,
    /// Steps settled so far in this call.
    pub steps_done: usize,
    /// When the call started (ms).
    pub started: f64,
    /// Current 1-based epoch.
    pub epoch: usize,
    /// Steps in the current epoch.
    pub steps: usize,
    loss_sum: f64,
    monitor_sum: Vec<f64>,
    seen: usize,
}

impl Tally {
    /// A call to `fit` of `steps_total` steps, started at `started` (ms).
    pub fn new(steps_total: usize, started: f64) -> Self {
        Self {
            steps_total,
            started,
            ..Self::default()
        }
    }

    /// Begin an epoch of `steps` steps.
    pub fn start_epoch(&mut self, epoch: usize, steps: usize) {
        self.epoch = epoch;
        self.steps = steps;
        self.loss_sum = 0.0;
        self.monitor_sum.clear();
        self.seen = 0;
    }

    /// Count one settled step and describe it.
    pub fn add(&mut self, step: usize, len: usize, loss: f64, monitors: Vec<f64>) -> TrainEvent {
        self.loss_sum += loss * len as f64;
        if self.monitor_sum.len() < monitors.len() {
            self.monitor_sum.resize(monitors.len(), 0.0);
        }
        for (s, v) in self.monitor_sum.iter_mut().zip(&monitors) {
            *s += len as f64 * v;
        }
        self.seen += len;
        self.steps_done += 1;
        let elapsed = (platform::now_ms() - self.started) / 1000.0;
        let left = self.steps_total.saturating_sub(self.steps_done);
        TrainEvent::Step {
            epoch: self.epoch,
            step,
            steps: self.steps,
            loss,
            monitors,
            eta_seconds: elapsed / self.steps_done.max(1) as f64 * left as f64,
        }
    }

    /// The epoch's sums: loss, monitors, examples.
    pub fn take_epoch(&mut self) -> (f64, Vec<f64>, usize) {
        (
            self.loss_sum,
            std::mem::take(&mut self.monitor_sum),
            self.seen,
        )
    }
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

/// Run `f` over a source in evaluation batches and collect one row of floats per example
/// for each output, reading back asynchronously.
pub async fn collect_rows<M: Module>(
    model: &M,
    compute: &Compute,
    source: &dyn BatchSource,
    control: &RunControl,
    f: &dyn Fn(&M, Tensor<4>) -> Vec<Tensor<2>>,
) -> Result<Vec<Vec<f32>>, TrainError> {
    let mut outs: Vec<Vec<f32>> = Vec::new();
    for positions in batch_positions(source.len(), 256, None, false) {
        control.checkpoint().await?;
        let batch = source.batch(&positions, &compute.device);
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
