//! The SimCLR network: the supervised chapter's encoder, and a projection head
//! [Linear → ReLU → Linear] → BatchNorm (no affine) → L2 normalise that only the
//! contrastive training sees.

use super::batchnorm::{BatchNorm, BatchNormConfig};
use super::convnet::{ConvNet, Encoder, l2_normalize};
use super::state::{StateError, TensorMap};
use super::torch_load::{linear, set_batch_norm};
use burn::config::Config;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig, Relu};
use burn::prelude::*;

/// Configuration of [`SimClrNet`].
#[derive(Config, Debug)]
pub struct SimClrNetConfig {
    /// 1 or 3.
    pub in_channels: usize,
    /// Encoder width.
    #[config(default = 128)]
    pub latent_dim: usize,
    /// Projection width.
    #[config(default = 128)]
    pub projection_dim: usize,
}

/// [Linear → ReLU → Linear] → BatchNorm1d (no affine) → L2 normalise.
#[derive(Module, Debug)]
pub struct ProjectionHead {
    fc1: Linear,
    relu: Relu,
    fc2: Linear,
    bn: BatchNorm,
}

impl ProjectionHead {
    /// A fresh head from `latent` to `out` features.
    pub fn new(latent: usize, out: usize, device: &Device) -> Self {
        Self {
            fc1: LinearConfig::new(latent, latent).init(device),
            relu: Relu::new(),
            fc2: LinearConfig::new(latent, out).init(device),
            bn: BatchNormConfig::new(out).with_affine(false).init(device),
        }
    }

    /// `[batch, latent]` → unit vectors `[batch, out]`.
    pub fn forward(&self, z: Tensor<2>) -> Tensor<2> {
        let h = self.relu.forward(self.fc1.forward(z)); // [batch, latent]
        l2_normalize(self.bn.forward(self.fc2.forward(h))) // [batch, out]
    }

    /// The BatchNorm, to read its running statistics.
    pub fn batch_norm(&self) -> &BatchNorm {
        &self.bn
    }

    /// Load the notebook's `projection_head.{0,2}` (and `bn`) from a state dict whose
    /// keys are `0.*`, `2.*` (and optionally `bn.*`).
    pub fn load_torch(mut self, map: &TensorMap, device: &Device) -> Result<Self, StateError> {
        let [latent, _] = self.fc1.weight.val().dims();
        let [_, out] = self.fc2.weight.val().dims();
        self.fc1 = linear(map, "0", latent, latent, true, device)?;
        self.fc2 = linear(map, "2", latent, out, true, device)?;
        if map.raw("bn.running_mean").is_some() {
            set_batch_norm(&mut self.bn, map, "bn", device)?;
        }
        Ok(self)
    }
}

/// The encoder with its projection head; [`SimClrNet::reset_head`] swaps the head for
/// a classifier.
#[derive(Module, Debug)]
pub struct SimClrNet {
    /// The representation being learned.
    pub encoder: Encoder,
    /// Only the contrastive loss sees it.
    pub head: ProjectionHead,
    latent_dim: usize,
}

impl SimClrNetConfig {
    /// Fresh weights.
    pub fn init(&self, device: &Device) -> SimClrNet {
        SimClrNet {
            encoder: Encoder::new(self.in_channels, self.latent_dim, device),
            head: ProjectionHead::new(self.latent_dim, self.projection_dim, device),
            latent_dim: self.latent_dim,
        }
    }
}

impl SimClrNet {
    /// `[batch, c, 28, 28]` → the normalised projection `[batch, projection]`.
    pub fn project(&self, x: Tensor<4>) -> Tensor<2> {
        self.head.forward(self.encoder.forward(x))
    }

    /// Features at the points the chapter shows: flat conv, encoder, projection.
    pub fn features(&self, x: Tensor<4>) -> [Tensor<2>; 3] {
        let out = self.encoder.forward_all(x);
        let z = self.head.forward(out.encoded.clone());
        [out.flat, out.encoded, z]
    }

    /// Drop the projection head and put a classifier for `n_classes` on the encoder.
    pub fn reset_head(self, n_classes: usize, device: &Device) -> ConvNet {
        ConvNet::on_encoder(self.encoder, self.latent_dim, n_classes, device)
    }
}
