//! Batch normalisation with PyTorch's semantics.
//!
//! burn's own `BatchNorm` always has an affine transform and updates its running
//! variance with the biased batch variance. The notebook needs `affine=False` in two
//! places and PyTorch updates the running variance with the *unbiased* estimate, so
//! evaluation after training only matches PyTorch with this layer.

use burn::config::Config;
use burn::module::{Flag, Module, Param, RunningState};
use burn::prelude::*;
use burn::tensor::module::batch_norm_train;

/// Configuration of [`BatchNorm`].
#[derive(Config, Debug)]
pub struct BatchNormConfig {
    /// Channels (dimension 1 of the input).
    pub num_features: usize,
    /// Whether there is a learnable scale and shift.
    #[config(default = true)]
    pub affine: bool,
    /// Numerical floor under the variance.
    #[config(default = 1e-5)]
    pub epsilon: f64,
    /// Weight of the newest batch in the running statistics.
    #[config(default = 0.1)]
    pub momentum: f64,
}

/// Batch normalisation over dimension 1 of a `[batch, channels, ...]` tensor.
#[derive(Module, Debug)]
pub struct BatchNorm {
    /// Scale, when affine.
    pub gamma: Option<Param<Tensor<1>>>,
    /// Shift, when affine.
    pub beta: Option<Param<Tensor<1>>>,
    /// Running mean used in evaluation.
    pub running_mean: RunningState<Tensor<1>>,
    /// Running (unbiased) variance used in evaluation.
    pub running_var: RunningState<Tensor<1>>,
    /// Whether batch statistics are used (train mode).
    pub training: Param<Flag>,
    /// Momentum of the running statistics.
    pub momentum: f64,
    /// Variance floor.
    pub epsilon: f64,
    /// Channels.
    pub num_features: usize,
}

impl BatchNormConfig {
    /// Create the layer: scale 1, shift 0, running mean 0 and variance 1.
    pub fn init(&self, device: &Device) -> BatchNorm {
        let n = self.num_features;
        let (gamma, beta) = if self.affine {
            (
                Some(Param::from_tensor(Tensor::ones([n], device))),
                Some(Param::from_tensor(Tensor::zeros([n], device))),
            )
        } else {
            (None, None)
        };
        BatchNorm {
            gamma,
            beta,
            running_mean: RunningState::new(Tensor::zeros([n], device)),
            running_var: RunningState::new(Tensor::ones([n], device)),
            training: Param::from_bool(true),
            momentum: self.momentum,
            epsilon: self.epsilon,
            num_features: n,
        }
    }
}

impl BatchNorm {
    /// The same layer with running statistics of its own. burn's clones share
    /// `RunningState` (an `Arc`), so a clone trained in train mode would move the
    /// original's statistics; this copies the current values into new states, on the
    /// device, without a readback.
    pub fn unshared(mut self) -> Self {
        // value() can miss the latest update; value_sync() folds it in.
        self.running_mean = RunningState::new(self.running_mean.value_sync());
        self.running_var = RunningState::new(self.running_var.value_sync());
        self
    }

    /// Normalise `[batch, channels, ...]`. Batch statistics are used when the input is
    /// on an autodiff device (training), the running statistics otherwise.
    pub fn forward<const D: usize>(&self, input: Tensor<D>) -> Tensor<D> {
        let device = input.device();
        let n = self.num_features;
        let gamma = match &self.gamma {
            Some(g) => g.val(),
            None => Tensor::ones([n], &device),
        };
        let beta = match &self.beta {
            Some(b) => b.val(),
            None => Tensor::zeros([n], &device),
        };
        if device.is_autodiff() && self.training.is_enabled() {
            let dims = input.dims();
            let per_channel: usize = dims
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != 1)
                .map(|(_, d)| *d)
                .product();
            let result = batch_norm_train(input, gamma, beta, self.epsilon);
            let unbiased = if per_channel > 1 {
                per_channel as f64 / (per_channel as f64 - 1.0)
            } else {
                1.0
            };
            let m = self.momentum;
            let mean = self
                .running_mean
                .value_sync()
                .to_device(&device)
                .mul_scalar(1.0 - m)
                .add(result.mean.detach().mul_scalar(m));
            let var = self
                .running_var
                .value_sync()
                .to_device(&device)
                .mul_scalar(1.0 - m)
                .add(result.variance.detach().mul_scalar(m * unbiased));
            self.running_mean.update(mean.detach());
            self.running_var.update(var.detach());
            result.output
        } else {
            // (x - mean) / sqrt(var + eps) * gamma + beta, broadcast over [1, C, 1, ...].
            let mean = self.running_mean.value_sync().to_device(&device);
            let var = self.running_var.value_sync().to_device(&device);
            let scale = gamma / var.add_scalar(self.epsilon).sqrt(); // [C]
            let shift = beta - mean * scale.clone(); // [C]
            let mut shape = [1usize; D];
            shape[1] = n;
            input * scale.reshape(shape) + shift.reshape(shape)
        }
    }
}
