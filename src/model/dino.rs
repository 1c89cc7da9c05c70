//! DINO: a student network, its EMA teacher, and the centre of the teacher's outputs.
//!
//! The student is the shared encoder (ending in GELU) with a DINO head: an MLP of
//! width 256 with GELU twice, L2 normalisation, then a prototype layer whose weight
//! rows are normalised too, so each output is a cosine similarity to a prototype.
//! The teacher has the same shape, is never trained by gradients, and always runs in
//! evaluation mode; after each step its parameters move towards the student's.

use super::batchnorm::BatchNorm;
use super::convnet::{ConvNet, Encoder, l2_normalize};
use super::ema::{ema_params, with_fresh_params};
use super::state::{StateError, TensorMap};
use super::torch_load::{linear, tensor};
use burn::config::Config;
use burn::module::{Module, Param, RunningState};
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::gelu;

/// Configuration of [`DinoPair`].
#[derive(Config, Debug)]
pub struct DinoConfig {
    /// 1 or 3.
    pub in_channels: usize,
    /// Encoder width.
    #[config(default = 128)]
    pub latent_dim: usize,
    /// Number of prototypes (the head's outputs).
    #[config(default = 256)]
    pub out_dim: usize,
    /// Width of the head's MLP.
    #[config(default = 256)]
    pub hidden_dim: usize,
}

/// MLP [Linear → GELU → Linear → GELU] → L2 normalise → cosine to `out` prototypes.
#[derive(Module, Debug)]
pub struct DinoHead {
    fc1: Linear,
    fc2: Linear,
    /// Prototype directions `[out, hidden]`, PyTorch's layout (normalised per row).
    prototypes: Param<Tensor<2>>,
}

impl DinoHead {
    /// A fresh head; the prototype layer is initialised as `nn.Linear` (no bias).
    pub fn new(d_in: usize, hidden: usize, out: usize, device: &Device) -> Self {
        let last = LinearConfig::new(hidden, out).with_bias(false).init(device);
        Self {
            fc1: LinearConfig::new(d_in, hidden).init(device),
            fc2: LinearConfig::new(hidden, hidden).init(device),
            prototypes: Param::from_tensor(last.weight.val().transpose().detach()), // [out, hidden]
        }
    }

    /// `[batch, d_in]` → `[batch, out]` cosine similarities.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let h = gelu(self.fc1.forward(x)); // [batch, hidden]
        let h = l2_normalize(gelu(self.fc2.forward(h))); // [batch, hidden]
        let w = l2_normalize(self.prototypes.val()); // [out, hidden]
        h.matmul(w.transpose()) // [batch, out]
    }

    /// Load the notebook's `DINOHead` state dict (`mlp.0.*`, `mlp.2.*`,
    /// `last_layer.weight`).
    pub fn load_torch(mut self, map: &TensorMap, device: &Device) -> Result<Self, StateError> {
        let [d_in, hidden] = self.fc1.weight.val().dims();
        let [out, _] = self.prototypes.val().dims();
        self.fc1 = linear(map, "mlp.0", d_in, hidden, true, device)?;
        self.fc2 = linear(map, "mlp.2", hidden, hidden, true, device)?;
        let w: Tensor<2> = tensor(map, "last_layer.weight", [out, hidden], device)?;
        self.prototypes = Param::from_tensor(w);
        Ok(self)
    }
}

/// The encoder (GELU) with a DINO head.
#[derive(Module, Debug)]
pub struct DinoNet {
    /// The representation being learned.
    pub encoder: Encoder,
    /// The head the DINO loss sees.
    pub head: DinoHead,
    latent_dim: usize,
}

impl DinoNet {
    /// A fresh network.
    pub fn new(c: &DinoConfig, device: &Device) -> Self {
        Self {
            encoder: Encoder::with_activation(c.in_channels, c.latent_dim, true, device),
            head: DinoHead::new(c.latent_dim, c.hidden_dim, c.out_dim, device),
            latent_dim: c.latent_dim,
        }
    }

    /// `[batch, c, 28, 28]` → (encoder output `[batch, latent]`, head `[batch, out]`).
    pub fn forward(&self, x: Tensor<4>) -> (Tensor<2>, Tensor<2>) {
        let z = self.encoder.forward(x);
        let out = self.head.forward(z.clone());
        (z, out)
    }

    /// Drop the head and put a classifier for `n_classes` on the encoder.
    pub fn reset_head(self, n_classes: usize, device: &Device) -> ConvNet {
        ConvNet::on_encoder(self.encoder, self.latent_dim, n_classes, device)
    }
}

/// Student, teacher and the centre: everything DINO carries from step to step, so a
/// continued run picks up where it stopped.
#[derive(Module, Debug)]
pub struct DinoPair {
    /// Trained by gradients.
    pub student: DinoNet,
    /// The EMA of the student; its parameters never require gradients.
    pub teacher: DinoNet,
    /// Running mean of the teacher's outputs `[1, out]`, subtracted before sharpening.
    pub center: RunningState<Tensor<2>>,
    /// The mean teacher output of the latest training batch `[1, out]`.
    pub batch_center: RunningState<Tensor<2>>,
}

impl DinoConfig {
    /// A fresh student and a teacher that starts as its copy (as `copy.deepcopy`),
    /// with parameters and BatchNorm statistics of its own; the centre starts at 0.
    pub fn init(&self, device: &Device) -> DinoPair {
        let student = DinoNet::new(self, device);
        let mut teacher = with_fresh_params(student.clone(), false);
        teacher.encoder = teacher.encoder.unshared();
        DinoPair {
            student,
            teacher,
            center: RunningState::new(Tensor::zeros([1, self.out_dim], device)),
            batch_center: RunningState::new(Tensor::zeros([1, self.out_dim], device)),
        }
    }
}

impl DinoPair {
    /// The teacher's encoder output and head output for `x`, in evaluation mode and
    /// outside the autodiff graph (returned on `x`'s device as constants).
    pub fn teacher_forward(&self, x: Tensor<4>) -> (Tensor<2>, Tensor<2>) {
        let ad = x.is_autodiff();
        let teacher = self.teacher.valid();
        let (z, out) = teacher.forward(x.inner());
        if ad {
            (z.autodiff(), out.autodiff())
        } else {
            (z, out)
        }
    }

    /// After an optimiser step: the teacher's parameters move to
    /// `m·teacher + (1 − m)·student`, its BatchNorm statistics too when `buffers`
    /// (the notebook leaves them at their initial values), and the centre to
    /// `0.9·centre + 0.1·(latest batch mean)`.
    pub fn after_step(mut self, momentum: f64, buffers: bool) -> Self {
        self.teacher = ema_params(self.teacher, &self.student, momentum);
        if buffers {
            let t = self.teacher.encoder.batch_norms();
            let s = self.student.encoder.batch_norms();
            for (t, s) in t.into_iter().zip(s) {
                ema_buffers(t, s, momentum);
            }
        }
        let c = self.center.value_sync();
        let b = self.batch_center.value_sync().to_device(&c.device());
        self.center
            .update(c.mul_scalar(0.9).add(b.mul_scalar(0.1)).detach());
        self
    }

    /// The teacher's encoder as a trainable network with a fresh head, for transfer.
    pub fn teacher_with_head(&self, n_classes: usize, device: &Device) -> ConvNet {
        let mut teacher = with_fresh_params(self.teacher.clone(), true);
        teacher.encoder = teacher.encoder.unshared();
        teacher.reset_head(n_classes, device)
    }
}

fn ema_buffers(teacher: &BatchNorm, student: &BatchNorm, m: f64) {
    let mix = |t: Tensor<1>, s: Tensor<1>| {
        let s = s.to_device(&t.device());
        t.mul_scalar(m).add(s.mul_scalar(1.0 - m)).detach()
    };
    teacher.running_mean.update(mix(
        teacher.running_mean.value_sync(),
        student.running_mean.value_sync(),
    ));
    teacher.running_var.update(mix(
        teacher.running_var.value_sync(),
        student.running_var.value_sync(),
    ));
}
