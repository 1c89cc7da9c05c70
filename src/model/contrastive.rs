//! The SupCon network: the same encoder, a projection head trained with the
//! supervised contrastive loss, and (for transfer) a classifier on the encoder.

use super::batchnorm::{BatchNorm, BatchNormConfig};
use super::convnet::{ConvNet, Encoder, l2_normalize};
use burn::config::Config;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig, Relu};
use burn::prelude::*;

/// Configuration of [`ContrastiveConvNet`].
#[derive(Config, Debug)]
pub struct ContrastiveConvNetConfig {
    /// 1 or 3.
    pub in_channels: usize,
    /// Encoder and projection width.
    #[config(default = 128)]
    pub latent_dim: usize,
}

/// Encoder → [Linear → ReLU] → BatchNorm (no affine) → L2 normalise.
/// For transfer, [`ContrastiveConvNet::reset_head`] turns it into a [`ConvNet`] whose
/// classifier reads the encoder output directly.
#[derive(Module, Debug)]
pub struct ContrastiveConvNet {
    /// The representation being learned.
    pub encoder: Encoder,
    projection: Linear,
    relu: Relu,
    bn: BatchNorm,
    latent_dim: usize,
}

impl ContrastiveConvNetConfig {
    /// Fresh weights, no classifier.
    pub fn init(&self, device: &Device) -> ContrastiveConvNet {
        ContrastiveConvNet {
            encoder: Encoder::new(self.in_channels, self.latent_dim, device),
            projection: LinearConfig::new(self.latent_dim, self.latent_dim).init(device),
            relu: Relu::new(),
            bn: BatchNormConfig::new(self.latent_dim)
                .with_affine(false)
                .init(device),
            latent_dim: self.latent_dim,
        }
    }
}

impl ContrastiveConvNet {
    /// The normalised projection `[batch, latent]` the contrastive loss sees.
    pub fn project(&self, x: Tensor<4>) -> Tensor<2> {
        let z = self
            .relu
            .forward(self.projection.forward(self.encoder.forward(x)));
        l2_normalize(self.bn.forward(z))
    }

    /// Features at the three points the lab shows: flat conv, encoder, and the
    /// normalised projection the loss was trained on.
    pub fn features(&self, x: Tensor<4>) -> [Tensor<2>; 3] {
        let out = self.encoder.forward_all(x);
        let z = self
            .relu
            .forward(self.projection.forward(out.encoded.clone()));
        [out.flat, out.encoded, l2_normalize(self.bn.forward(z))]
    }

    /// Drop the projection head and put a fresh classifier for `n_classes` on the
    /// encoder output, as the notebook's `reset_head` does.
    pub fn reset_head(self, n_classes: usize, device: &Device) -> ConvNet {
        ConvNet::on_encoder(self.encoder, self.latent_dim, n_classes, device)
    }
}
