//! Chapter: the convolutional autoencoder.
//!
//! The encoder is the ConvNet's family with stride-2 convolutions (28 → 14 → 7 → 4)
//! and a 128-d code; the decoder mirrors it with bilinear upsampling and
//! convolutions, which avoids the checkerboard of transposed convolutions. Transfer
//! compares freezing the encoder with fine-tuning it.

use super::autoencoding::{AeRecipe, AeSpec};
use super::chapter::Chapter;
use super::params::LabParams;
use super::pipeline::EncoderChapter;
use super::registry::{AUTOENCODING, ChapterInfo, Exercise};
use crate::model::autoencoder::{ConvAe, ConvAeConfig};
use burn::prelude::*;

/// The chapter's registry entry.
pub const INFO: ChapterInfo = ChapterInfo {
    slug: "conv-ae",
    title: "Convolutional autoencoder",
    params: AUTOENCODING,
    defaults: &[("batch_size", "256")],
    exercises: &[Exercise {
        label: "Freeze vs fine-tune, 10 epochs",
        set: &[("epochs", "10")],
    }],
    loss_title: "Reconstruction loss (MSE)",
    monitors: &[],
    make: Some(make),
    built: true,
};

/// A fresh runner.
pub fn make() -> Box<dyn Chapter> {
    Box::<EncoderChapter<AeRecipe<ConvAeSpec>>>::default()
}

/// The convolutional autoencoder chapter.
pub struct ConvAeSpec;

impl AeSpec for ConvAeSpec {
    type Model = ConvAe;
    const INFO: &'static ChapterInfo = &INFO;
    const STAGE: &'static str = "training the convolutional autoencoder on the unlabelled images";
    const WHAT: &'static str = "convolutional autoencoder";

    fn build(channels: usize, params: &LabParams, device: &Device) -> ConvAe {
        ConvAeConfig::new(channels)
            .with_latent_dim(params.latent_dim)
            .init(device)
    }
}
