//! The notebook's three autoencoders: the tied-weight linear one (PCA as a network),
//! the MLP with LayerNorm blocks, and the strided-conv / upsample-conv one.
//!
//! All three share the [`Autoencoder`] trait: `encode` flattens or convolves an image
//! batch to a latent code, `decode` maps codes back to images, and `reset_head` puts a
//! fresh linear classifier on the code for transfer. Layer names follow the notebook's
//! PyTorch modules so that a `state_dict` loads with each model's `load_torch`.
//!
//! Initialisation follows PyTorch's defaults: burn's `LinearConfig` and `Conv2dConfig`
//! default to `KaimingUniform { gain: 1/√3 }`, which draws weights and biases from
//! `U(±1/√fan_in)` exactly as `nn.Linear`/`nn.Conv2d` do; LayerNorm and BatchNorm
//! start at scale 1, shift 0.

pub mod bilinear;
pub mod conv;
pub mod linear;
use super::torch_load as load;
pub mod mlp;

pub use conv::{ConvAe, ConvAeConfig};
pub use linear::{LinearAe, LinearAeConfig};
pub use mlp::{MlpAe, MlpAeConfig};

use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;

/// An autoencoder over image batches `[batch, c, h, w]` with an optional linear
/// classifier on its latent code.
pub trait Autoencoder: burn::module::Module + Clone + core::fmt::Debug + 'static {
    /// `[batch, c, h, w]` → `[batch, latent]`.
    fn encode(&self, x: Tensor<4>) -> Tensor<2>;

    /// `[batch, latent]` → `[batch, c, h, w]` with the given image shape `(c, h, w)`.
    fn decode(&self, z: Tensor<2>, image: [usize; 3]) -> Tensor<4>;

    /// `decode(encode(x))` with `x`'s shape.
    fn reconstruct(&self, x: Tensor<4>) -> Tensor<4> {
        let [_, c, h, w] = x.dims();
        self.decode(self.encode(x), [c, h, w])
    }

    /// The head on the latent code, once [`Autoencoder::reset_head`] was called.
    fn classifier(&self) -> Option<&Linear>;

    /// Replace the head with a fresh `nn.Linear(latent, n_classes)` (PyTorch's default
    /// initialisation).
    fn reset_head(self, n_classes: usize, device: &Device) -> Self;

    /// Width of the latent code.
    fn latent_dim(&self) -> usize;
    /// A copy whose BatchNorm statistics, if any, are not shared with `self`'s.
    fn unshared(self) -> Self {
        self
    }

    /// Logits `[batch, n_classes]` of the head on the code, when there is a head (the
    /// notebook's `forward` once `reset_head` was called).
    fn classify(&self, x: Tensor<4>) -> Option<Tensor<2>> {
        let head = self.classifier()?.clone();
        Some(head.forward(self.encode(x)))
    }
}

/// Mean squared error over every element (`nn.MSELoss()`), as a one-element tensor.
pub fn mse(recon: Tensor<4>, x: Tensor<4>) -> Tensor<1> {
    (recon - x).powi_scalar(2).mean()
}

/// Learnable parameters, as PyTorch's `sum(p.numel() for p in model.parameters())`
/// counts them: burn's `num_params` also counts the BatchNorm running statistics,
/// which PyTorch keeps as buffers.
pub fn num_trainable_params<M: Module>(model: &M) -> usize {
    let mut count = TrainableCount::default();
    model.visit(&mut count);
    count.total
}

/// Sums the sizes of the float parameters outside the running-statistics fields.
#[derive(Default)]
struct TrainableCount {
    /// Field names from the root to the current module.
    path: Vec<String>,
    total: usize,
}

impl ModuleVisitor for TrainableCount {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let buffer = matches!(
            self.path.last().map(String::as_str),
            Some("running_mean" | "running_var")
        );
        if !buffer {
            self.total += param.lazy_shape().num_elements();
        }
    }
}

/// A fresh classifier head `latent → n_classes` (PyTorch's `nn.Linear` initialisation).
pub(crate) fn new_head(latent_dim: usize, n_classes: usize, device: &Device) -> Linear {
    LinearConfig::new(latent_dim, n_classes).init(device)
}

/// `[batch, c, h, w]` → `[batch, c·h·w]`, row-major like PyTorch's `reshape(b, -1)`.
pub(crate) fn flatten_image(x: Tensor<4>) -> Tensor<2> {
    x.flatten(1, 3)
}

/// `[batch, c·h·w]` → `[batch, c, h, w]`.
///
/// # Panics
///
/// When `c·h·w` is not the width of `flat`.
pub(crate) fn unflatten_image(flat: Tensor<2>, image: [usize; 3]) -> Tensor<4> {
    let [batch, width] = flat.dims();
    let [c, h, w] = image;
    assert_eq!(
        c * h * w,
        width,
        "image shape {image:?} does not hold the decoder's {width} outputs"
    );
    flat.reshape([batch, c, h, w])
}
