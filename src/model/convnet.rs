//! The notebook's supervised ConvNet: three conv blocks, a 128-d encoder, and a
//! classifier that sees batch-normalised, L2-normalised features.

use super::batchnorm::{BatchNorm, BatchNormConfig};
use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d, Relu};
use burn::prelude::*;

/// conv 3×3 (padding 1) → BatchNorm → ReLU → max-pool 2.
#[derive(Module, Debug)]
pub struct ConvBlock {
    conv: Conv2d,
    bn: BatchNorm,
    pool: MaxPool2d,
    relu: Relu,
}

impl ConvBlock {
    /// A block from `c_in` to `c_out` channels.
    pub fn new(c_in: usize, c_out: usize, device: &Device) -> Self {
        Self {
            conv: Conv2dConfig::new([c_in, c_out], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device),
            bn: BatchNormConfig::new(c_out).init(device),
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            relu: Relu::new(),
        }
    }

    /// `[batch, c_in, h, w]` → `[batch, c_out, h/2, w/2]` (floor).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.pool
            .forward(self.relu.forward(self.bn.forward(self.conv.forward(x))))
    }
}

/// What the encoder produces at its two named points.
pub struct EncoderOutput {
    /// The flattened conv features, `[batch, 1152]` (the notebook's `encoder_head.0`).
    pub flat: Tensor<2>,
    /// The encoder output after Linear and ReLU, `[batch, latent]` (`encoder_head.2`).
    pub encoded: Tensor<2>,
}

/// The shared encoder: 28 → 14 → 7 → 3, flatten, Linear 1152 → latent, then ReLU
/// (GELU in DINO's network).
#[derive(Module, Debug)]
pub struct Encoder {
    blocks: Vec<ConvBlock>,
    fc: Linear,
    relu: Relu,
    gelu: bool,
}

/// Flattened conv features for a 28×28 input.
pub const FLAT_DIM: usize = 128 * 3 * 3;

impl Encoder {
    /// An encoder for `in_channels`-channel 28×28 images.
    pub fn new(in_channels: usize, latent_dim: usize, device: &Device) -> Self {
        Self::with_activation(in_channels, latent_dim, false, device)
    }

    /// The same encoder, ending in GELU instead of ReLU when `gelu`.
    pub fn with_activation(
        in_channels: usize,
        latent_dim: usize,
        gelu: bool,
        device: &Device,
    ) -> Self {
        Self {
            blocks: vec![
                ConvBlock::new(in_channels, 32, device), // [batch, 32, 14, 14]
                ConvBlock::new(32, 64, device),          // [batch, 64, 7, 7]
                ConvBlock::new(64, 128, device),         // [batch, 128, 3, 3]
            ],
            fc: LinearConfig::new(FLAT_DIM, latent_dim).init(device),
            relu: Relu::new(),
            gelu,
        }
    }

    /// A copy whose BatchNorm statistics are its own (see [`BatchNorm::unshared`]).
    pub fn unshared(mut self) -> Self {
        for block in &mut self.blocks {
            block.bn = block.bn.clone().unshared();
        }
        self
    }

    /// Every BatchNorm of the encoder, in order.
    pub fn batch_norms(&self) -> Vec<&BatchNorm> {
        self.blocks.iter().map(|b| &b.bn).collect()
    }

    /// The BatchNorm of conv block `i` (0, 1 or 2).
    pub fn block_bn(&self, i: usize) -> Option<&BatchNorm> {
        self.blocks.get(i).map(|b| &b.bn)
    }

    /// `[batch, c, 28, 28]` → both feature points.
    pub fn forward_all(&self, x: Tensor<4>) -> EncoderOutput {
        let mut x = x;
        for block in &self.blocks {
            x = block.forward(x);
        }
        let flat: Tensor<2> = x.flatten(1, 3); // [batch, 1152]
        let z = self.fc.forward(flat.clone()); // [batch, latent]
        let encoded = if self.gelu {
            burn::tensor::activation::gelu(z)
        } else {
            self.relu.forward(z)
        };
        EncoderOutput { flat, encoded }
    }

    /// `[batch, c, 28, 28]` → `[batch, latent]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.forward_all(x).encoded
    }
}

/// L2-normalise the rows of `[batch, d]`, as `F.normalize(x, dim=1)` (eps 1e-12).
pub fn l2_normalize(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().powi_scalar(2).sum_dim(1).sqrt().clamp_min(1e-12); // [batch, 1]
    x / norm
}

/// Configuration of [`ConvNet`].
#[derive(Config, Debug)]
pub struct ConvNetConfig {
    /// 1 (grayscale) or 3 (RGB).
    pub in_channels: usize,
    /// Classes of the classifier.
    pub n_classes: usize,
    /// Encoder width.
    #[config(default = 128)]
    pub latent_dim: usize,
}

/// Features at the three points the lab visualises.
pub struct ConvNetFeatures {
    /// `[batch, 1152]`.
    pub flat: Tensor<2>,
    /// `[batch, latent]`.
    pub encoded: Tensor<2>,
    /// `[batch, latent]`, after BatchNorm (no affine) and L2 normalisation.
    pub normalized: Tensor<2>,
    /// `[batch, n_classes]`.
    pub logits: Tensor<2>,
}

/// The supervised network, and (with `bn: None`) any encoder with a linear head.
///
/// The notebook's ConvNet classifies batch-normalised, L2-normalised features; the
/// transfer heads of the other chapters sit directly on the encoder output, so the
/// normalisation is optional and one type serves every transfer run.
#[derive(Module, Debug)]
pub struct ConvNet {
    /// The representation being learned.
    pub encoder: Encoder,
    /// BatchNorm without affine, followed by L2 normalisation, when present.
    pub bn: Option<BatchNorm>,
    /// The linear classifier.
    pub classifier: Linear,
    latent_dim: usize,
}

impl ConvNetConfig {
    /// Build the network with fresh weights.
    pub fn init(&self, device: &Device) -> ConvNet {
        ConvNet {
            encoder: Encoder::new(self.in_channels, self.latent_dim, device),
            bn: Some(
                BatchNormConfig::new(self.latent_dim)
                    .with_affine(false)
                    .init(device),
            ),
            classifier: LinearConfig::new(self.latent_dim, self.n_classes).init(device),
            latent_dim: self.latent_dim,
        }
    }
}

impl ConvNet {
    /// A copy whose BatchNorm statistics are its own (see [`BatchNorm::unshared`]).
    pub fn unshared(mut self) -> Self {
        self.encoder = self.encoder.unshared();
        self.bn = self.bn.map(BatchNorm::unshared);
        self
    }

    /// A classifier on `encoder`'s output with no normalisation in between.
    pub fn on_encoder(
        encoder: Encoder,
        latent_dim: usize,
        n_classes: usize,
        device: &Device,
    ) -> Self {
        Self {
            encoder,
            bn: None,
            classifier: LinearConfig::new(latent_dim, n_classes).init(device),
            latent_dim,
        }
    }

    fn head_input(&self, encoded: Tensor<2>) -> Tensor<2> {
        match &self.bn {
            Some(bn) => l2_normalize(bn.forward(encoded)),
            None => encoded,
        }
    }

    /// All three feature points.
    pub fn features(&self, x: Tensor<4>) -> ConvNetFeatures {
        let out = self.encoder.forward_all(x);
        let normalized = self.head_input(out.encoded.clone());
        let logits = self.classifier.forward(normalized.clone());
        ConvNetFeatures {
            flat: out.flat,
            encoded: out.encoded,
            normalized,
            logits,
        }
    }

    /// `[batch, c, 28, 28]` → logits `[batch, n_classes]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let encoded = self.encoder.forward(x);
        self.classifier.forward(self.head_input(encoded))
    }

    /// Replace the classifier with a fresh one for `n_classes`.
    pub fn reset_head(mut self, n_classes: usize, device: &Device) -> Self {
        self.classifier = LinearConfig::new(self.latent_dim, n_classes).init(device);
        self
    }
}

mod load {
    //! Loading a PyTorch `state_dict` of the notebook's ConvNet.
    use super::*;
    use crate::model::state::{StateError, TensorMap};
    use crate::model::torch_load::{linear, set_batch_norm, set_conv};

    impl Encoder {
        /// Load `conv_blocks.*` and `encoder_head.1.*` from a PyTorch state dict; every
        /// tensor must have the shape of the layer it replaces.
        pub fn load_torch(mut self, map: &TensorMap, device: &Device) -> Result<Self, StateError> {
            let latent = self.fc.weight.val().dims()[1];
            for (i, block) in self.blocks.iter_mut().enumerate() {
                let prefix = format!("conv_blocks.{i}.block");
                set_conv(&mut block.conv, map, &format!("{prefix}.0"), device)?;
                set_batch_norm(&mut block.bn, map, &format!("{prefix}.1"), device)?;
            }
            self.fc = linear(map, "encoder_head.1", FLAT_DIM, latent, true, device)?;
            Ok(self)
        }
    }

    impl ConvNet {
        /// Load every weight and running statistic of the notebook's ConvNet; every
        /// tensor must have the shape of the layer it replaces.
        pub fn load_torch(mut self, map: &TensorMap, device: &Device) -> Result<Self, StateError> {
            let latent = self.latent_dim;
            let n_classes = self.classifier.weight.val().dims()[1];
            self.encoder = self.encoder.load_torch(map, device)?;
            if let Some(bn) = self.bn.as_mut() {
                set_batch_norm(bn, map, "bn", device)?;
            }
            self.classifier = linear(map, "classifier", latent, n_classes, true, device)?;
            Ok(self)
        }
    }
}
