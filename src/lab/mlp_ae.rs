//! Chapter: the MLP autoencoder.
//!
//! A nonlinear autoencoder on flattened images: [Linear → LayerNorm → LeakyReLU]
//! blocks 256, 256 down to a linear bottleneck, mirrored back up, trained to
//! reconstruct the unlabelled images. Its code is then a representation like any
//! other: a UMAP, and transfer to the held-out classes.

use super::autoencoding::{AeRecipe, AeSpec};
use super::chapter::Chapter;
use super::params::LabParams;
use super::pipeline::EncoderChapter;
use super::prepare::IMAGE_SIZE;
use super::registry::{AUTOENCODING, ChapterInfo, Exercise};
use crate::model::autoencoder::{MlpAe, MlpAeConfig};
use burn::prelude::*;

/// The chapter's registry entry.
pub const INFO: ChapterInfo = ChapterInfo {
    slug: "autoencoder",
    title: "MLP autoencoder",
    params: AUTOENCODING,
    defaults: &[("lr", "0.001"), ("batch_size", "256")],
    exercises: &[
        Exercise {
            label: "Bottleneck 8",
            set: &[("latent_dim", "8")],
        },
        Exercise {
            label: "Bottleneck 32",
            set: &[("latent_dim", "32")],
        },
        Exercise {
            label: "Bottleneck 128",
            set: &[("latent_dim", "128")],
        },
    ],
    loss_title: "Reconstruction loss (MSE)",
    monitors: &[],
    make: Some(make),
    built: true,
};

/// A fresh runner.
pub fn make() -> Box<dyn Chapter> {
    Box::<EncoderChapter<AeRecipe<MlpAeSpec>>>::default()
}

/// The MLP autoencoder chapter.
pub struct MlpAeSpec;

impl AeSpec for MlpAeSpec {
    type Model = MlpAe;
    const INFO: &'static ChapterInfo = &INFO;
    const STAGE: &'static str = "training the MLP autoencoder on the unlabelled images";
    const WHAT: &'static str = "MLP autoencoder";

    fn build(channels: usize, params: &LabParams, device: &Device) -> MlpAe {
        let d = channels * IMAGE_SIZE * IMAGE_SIZE;
        MlpAeConfig::new(d)
            .with_latent_dim(params.latent_dim)
            .init(device)
    }
}
