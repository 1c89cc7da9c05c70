//! The notebook's `Autoencoder`: dense blocks (Linear → LayerNorm → leaky ReLU) down
//! to a linear bottleneck and back up to a linear output layer.

use super::{Autoencoder, flatten_image, load, new_head, unflatten_image};
use crate::model::state::{StateError, TensorMap};
use burn::config::Config;
use burn::module::Module;
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::leaky_relu;

/// Negative slope of `F.leaky_relu`'s default.
pub const LEAKY_SLOPE: f64 = 0.01;

/// LayerNorm's variance floor, PyTorch's default.
pub const LAYER_NORM_EPS: f64 = 1e-5;

/// The notebook's `AEBlock`: `leaky_relu(LayerNorm(Linear(x)))`.
#[derive(Module, Debug)]
pub struct AeBlock {
    dense: Linear,
    normalization: LayerNorm,
}

impl AeBlock {
    /// A block `d_in → d_out` with PyTorch's initialisation.
    pub fn new(d_in: usize, d_out: usize, device: &Device) -> Self {
        Self {
            dense: LinearConfig::new(d_in, d_out).init(device),
            normalization: LayerNormConfig::new(d_out)
                .with_epsilon(LAYER_NORM_EPS)
                .init(device),
        }
    }

    /// `[batch, d_in]` → `[batch, d_out]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let h = self.normalization.forward(self.dense.forward(x)); // [batch, d_out]
        leaky_relu(h, LEAKY_SLOPE)
    }

    fn load_torch(
        mut self,
        map: &TensorMap,
        prefix: &str,
        d_in: usize,
        d_out: usize,
        device: &Device,
    ) -> Result<Self, StateError> {
        self.dense = load::linear(map, &format!("{prefix}.dense"), d_in, d_out, true, device)?;
        load::set_layer_norm(
            &mut self.normalization,
            map,
            &format!("{prefix}.normalization"),
            device,
        )?;
        Ok(self)
    }
}

/// Configuration of [`MlpAe`].
#[derive(Config, Debug)]
pub struct MlpAeConfig {
    /// Flattened image size `c·h·w`.
    pub input_dim: usize,
    /// Width of the bottleneck.
    #[config(default = 128)]
    pub latent_dim: usize,
    /// Widths of the encoder's blocks, input side first. The decoder mirrors them
    /// (latent side first is the last width), which for the notebook's `[256, 256]`
    /// is its `decoder_dims=[256, 256]`.
    #[config(default = "vec![256, 256]")]
    pub widths: Vec<usize>,
}

/// The MLP autoencoder; field names follow the notebook's module.
#[derive(Module, Debug)]
pub struct MlpAe {
    encoder_layers: Vec<AeBlock>,
    inner_layer: Linear,
    decoder_layers: Vec<AeBlock>,
    final_layer: Linear,
    classifier: Option<Linear>,
    input_dim: usize,
    latent_dim: usize,
}

impl MlpAeConfig {
    /// Encoder dimensions `input → widths…`, the decoder's `latent → reversed widths…`.
    fn dims(&self) -> (Vec<usize>, Vec<usize>) {
        let mut enc = vec![self.input_dim];
        enc.extend(&self.widths);
        let mut dec = vec![self.latent_dim];
        dec.extend(self.widths.iter().rev());
        (enc, dec)
    }

    /// Fresh weights with PyTorch's initialisation.
    pub fn init(&self, device: &Device) -> MlpAe {
        let (enc, dec) = self.dims();
        let blocks = |dims: &[usize]| -> Vec<AeBlock> {
            dims.windows(2)
                .map(|w| AeBlock::new(w[0], w[1], device))
                .collect()
        };
        let last = |dims: &[usize]| dims.last().copied().unwrap_or(0);
        MlpAe {
            encoder_layers: blocks(&enc),
            inner_layer: LinearConfig::new(last(&enc), self.latent_dim).init(device),
            decoder_layers: blocks(&dec),
            final_layer: LinearConfig::new(last(&dec), self.input_dim).init(device),
            classifier: None,
            input_dim: self.input_dim,
            latent_dim: self.latent_dim,
        }
    }
}

impl MlpAe {
    /// Flattened image size.
    pub fn input_dim(&self) -> usize {
        self.input_dim
    }

    /// Load every weight from a PyTorch state dict (`encoder_layers.{i}.dense.*`,
    /// `encoder_layers.{i}.normalization.*`, `inner_layer.*`, `decoder_layers.*`,
    /// `final_layer.*`, and `classifier.*` when present).
    pub fn load_torch(mut self, map: &TensorMap, device: &Device) -> Result<Self, StateError> {
        let dims = |blocks: &[AeBlock]| -> Vec<[usize; 2]> {
            blocks
                .iter()
                .map(|b| b.dense.weight.val().dims()) // [in, out]
                .collect()
        };
        let enc_dims = dims(&self.encoder_layers);
        let dec_dims = dims(&self.decoder_layers);
        let load_blocks = |blocks: Vec<AeBlock>,
                           dims: &[[usize; 2]],
                           name: &str|
         -> Result<Vec<AeBlock>, StateError> {
            blocks
                .into_iter()
                .zip(dims)
                .enumerate()
                .map(|(i, (b, [d_in, d_out]))| {
                    b.load_torch(map, &format!("{name}.{i}"), *d_in, *d_out, device)
                })
                .collect()
        };
        self.encoder_layers = load_blocks(self.encoder_layers, &enc_dims, "encoder_layers")?;
        self.decoder_layers = load_blocks(self.decoder_layers, &dec_dims, "decoder_layers")?;
        let [d_in, d_out] = self.inner_layer.weight.val().dims();
        self.inner_layer = load::linear(map, "inner_layer", d_in, d_out, true, device)?;
        let [d_in, d_out] = self.final_layer.weight.val().dims();
        self.final_layer = load::linear(map, "final_layer", d_in, d_out, true, device)?;
        if let Some(head) = load::classifier(map, self.latent_dim, device)? {
            self.classifier = Some(head);
        }
        Ok(self)
    }
}

impl Autoencoder for MlpAe {
    fn encode(&self, x: Tensor<4>) -> Tensor<2> {
        let mut h = flatten_image(x); // [batch, input]
        for block in &self.encoder_layers {
            h = block.forward(h); // [batch, width]
        }
        self.inner_layer.forward(h) // [batch, latent], no activation
    }

    fn decode(&self, z: Tensor<2>, image: [usize; 3]) -> Tensor<4> {
        let mut h = z; // [batch, latent]
        for block in &self.decoder_layers {
            h = block.forward(h); // [batch, width]
        }
        let flat = self.final_layer.forward(h); // [batch, input], no activation
        unflatten_image(flat, image)
    }

    fn classifier(&self) -> Option<&Linear> {
        self.classifier.as_ref()
    }

    fn reset_head(mut self, n_classes: usize, device: &Device) -> Self {
        self.classifier = Some(new_head(self.latent_dim, n_classes, device));
        self
    }

    fn latent_dim(&self) -> usize {
        self.latent_dim
    }
}
