//! The notebook's `LinearAutoencoder`: PCA as a one-layer network with tied weights.
//!
//! `z = W x` (plus `b` when the encoder has a bias, the notebook's second exercise)
//! and `x̂ = Wᵀ z`: the decoder reuses the encoder's matrix and never adds a bias.

use super::{Autoencoder, flatten_image, load, new_head, unflatten_image};
use crate::model::state::{StateError, TensorMap};
use burn::config::Config;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;

/// Configuration of [`LinearAe`].
#[derive(Config, Debug)]
pub struct LinearAeConfig {
    /// Flattened image size `c·h·w`.
    pub input_dim: usize,
    /// Number of learned components.
    pub latent_dim: usize,
    /// Whether the encoder adds a bias (`nn.Linear(..., bias=True)`).
    #[config(default = false)]
    pub bias: bool,
}

/// A tied-weight linear autoencoder.
#[derive(Module, Debug)]
pub struct LinearAe {
    /// `nn.Linear(input_dim, latent_dim)`; burn stores its weight as `[input, latent]`.
    encoder: Linear,
    classifier: Option<Linear>,
    input_dim: usize,
    latent_dim: usize,
}

impl LinearAeConfig {
    /// Fresh weights drawn like PyTorch's `nn.Linear`: `U(±1/√input_dim)`.
    pub fn init(&self, device: &Device) -> LinearAe {
        LinearAe {
            encoder: LinearConfig::new(self.input_dim, self.latent_dim)
                .with_bias(self.bias)
                .init(device),
            classifier: None,
            input_dim: self.input_dim,
            latent_dim: self.latent_dim,
        }
    }
}

impl LinearAe {
    /// The components `W`, `[latent, input_dim]`: PyTorch's `encoder.weight` layout,
    /// one flattened image per row.
    pub fn weight(&self) -> Tensor<2> {
        self.encoder.weight.val().transpose()
    }

    /// The encoder's bias `[latent]`, when it has one.
    pub fn bias(&self) -> Option<Tensor<1>> {
        self.encoder.bias.as_ref().map(|b| b.val())
    }

    /// The encoder layer itself (its parameters, e.g. to read their gradients).
    pub fn encoder(&self) -> &Linear {
        &self.encoder
    }

    /// Flattened image size.
    pub fn input_dim(&self) -> usize {
        self.input_dim
    }

    /// Load `encoder.weight` (and `encoder.bias` when the model has one, and
    /// `classifier.*` when present) from a PyTorch state dict.
    pub fn load_torch(mut self, map: &TensorMap, device: &Device) -> Result<Self, StateError> {
        let bias = self.encoder.bias.is_some();
        self.encoder = load::linear(
            map,
            "encoder",
            self.input_dim,
            self.latent_dim,
            bias,
            device,
        )?;
        if let Some(head) = load::classifier(map, self.latent_dim, device)? {
            self.classifier = Some(head);
        }
        Ok(self)
    }
}

impl Autoencoder for LinearAe {
    fn encode(&self, x: Tensor<4>) -> Tensor<2> {
        self.encoder.forward(flatten_image(x)) // [batch, latent]
    }

    fn decode(&self, z: Tensor<2>, image: [usize; 3]) -> Tensor<4> {
        // (Wᵀ zᵀ)ᵀ = z W, with burn's weight [input, latent] transposed to W.
        let flat = z.matmul(self.weight()); // [batch, input]
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
