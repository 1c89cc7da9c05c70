//! A linear head trained on features cached from a frozen encoder (CLIP, PCA):
//! the same loop as every other training run, fed from host features instead of
//! images. With a frozen encoder and no augmentation this is equivalent to running
//! the encoder every epoch, at a fraction of the cost.

use super::batcher::Batch;
use super::engine::{TrainConfig, Trainer, all_params};
use super::losses::cross_entropy;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;

/// `[batch, d, 1, 1]` features → logits.
#[derive(Module, Debug)]
pub struct LinearHead {
    /// The classifier.
    pub linear: Linear,
}

impl LinearHead {
    /// A fresh head from `d` features to `n_classes`.
    pub fn new(d: usize, n_classes: usize, device: &Device) -> Self {
        Self {
            linear: LinearConfig::new(d, n_classes).init(device),
        }
    }

    /// Logits `[batch, n_classes]` of features carried as `[batch, d, 1, 1]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.linear.forward(x.flatten(1, 3)) // [batch, n_classes]
    }
}

/// Mean cross-entropy of the head on a batch of features.
pub fn head_loss(head: &LinearHead, batch: &Batch) -> Tensor<1> {
    cross_entropy(head.forward(batch.images.clone()), batch.labels.clone())
}

/// A trainer for a fresh head with the notebook's AdamW settings in `config`.
pub fn head_trainer(
    d: usize,
    n_classes: usize,
    config: TrainConfig,
    device: &Device,
) -> Trainer<LinearHead> {
    Trainer::new(
        LinearHead::new(d, n_classes, device),
        config,
        all_params::<LinearHead>,
    )
}
