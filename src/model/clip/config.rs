//! The shape of a CLIP vision tower, as a plain struct so tests can build tiny ones.

use serde::{Deserialize, Serialize};

/// The non-linearity inside each transformer MLP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `x * sigmoid(1.702 x)`, which OpenAI's original CLIP weights were trained with.
    QuickGelu,
    /// The exact (erf) GELU of most later checkpoints.
    Gelu,
}

/// Hyper-parameters of a ViT image encoder with CLIP's layout: a bias-free patch
/// convolution, a class token, learned positions, `ln_pre`, pre-norm residual
/// blocks, `ln_post` on the class token and a bias-free projection.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClipVisionConfig {
    /// Side of the square input image, in pixels.
    pub image_size: usize,
    /// Side of a square patch, in pixels.
    pub patch_size: usize,
    /// Token width.
    pub width: usize,
    /// Number of residual attention blocks.
    pub layers: usize,
    /// Attention heads per block; `width` must be a multiple of it.
    pub heads: usize,
    /// Hidden width of each block's MLP.
    pub mlp_dim: usize,
    /// Width of the projected embedding.
    pub output_dim: usize,
    /// The MLP non-linearity.
    pub activation: Activation,
    /// LayerNorm epsilon.
    pub ln_eps: f64,
}

impl ClipVisionConfig {
    /// open_clip's `ViT-B-32-quickgelu`: the visual tower of OpenAI's ViT-B/32.
    pub fn vit_b32() -> Self {
        Self {
            image_size: 224,
            patch_size: 32,
            width: 768,
            layers: 12,
            heads: 12,
            mlp_dim: 3072,
            output_dim: 512,
            activation: Activation::QuickGelu,
            ln_eps: 1e-5,
        }
    }

    /// Patches along one side.
    pub fn grid(&self) -> usize {
        self.image_size / self.patch_size.max(1)
    }

    /// Tokens per image: one per patch plus the class token.
    pub fn tokens(&self) -> usize {
        self.grid() * self.grid() + 1
    }

    /// Parameters of the tower.
    pub fn parameters(&self) -> usize {
        let w = self.width;
        let block = 2 * 2 * w
            + (3 * w * w + 3 * w)
            + (w * w + w)
            + (self.mlp_dim * w + self.mlp_dim)
            + (w * self.mlp_dim + w);
        w * 3 * self.patch_size * self.patch_size
            + w
            + self.tokens() * w
            + 2 * w
            + self.layers * block
            + 2 * w
            + w * self.output_dim
    }

    /// Multiply-adds for one image, the figure usually quoted as "GFLOP" for ViTs.
    pub fn flops_per_image(&self) -> f64 {
        let (t, w, m) = (self.tokens() as f64, self.width as f64, self.mlp_dim as f64);
        let patch =
            (self.grid() * self.grid()) as f64 * w * (3 * self.patch_size * self.patch_size) as f64;
        let block = t * (3.0 * w * w + w * w + 2.0 * w * m) + 2.0 * t * t * w;
        patch + self.layers as f64 * block + w * self.output_dim as f64
    }

    /// Why this configuration cannot be built, if it cannot.
    pub fn validate(&self) -> Result<(), String> {
        if self.patch_size == 0
            || self.image_size == 0
            || !self.image_size.is_multiple_of(self.patch_size)
        {
            return Err(format!(
                "image size {} is not a multiple of patch size {}",
                self.image_size, self.patch_size
            ));
        }
        if self.heads == 0 || self.width == 0 || !self.width.is_multiple_of(self.heads) {
            return Err(format!(
                "width {} is not divisible into {} heads",
                self.width, self.heads
            ));
        }
        if self.layers == 0 || self.mlp_dim == 0 || self.output_dim == 0 {
            return Err("layers, MLP width and output width must all be positive".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vit_b32_matches_open_clip_counts() {
        let c = ClipVisionConfig::vit_b32();
        assert_eq!(c.tokens(), 50);
        // open_clip's visual tower of ViT-B-32 has 87,849,216 parameters.
        assert_eq!(c.parameters(), 87_849_216);
        // About 4.4 GFLOP per image.
        let g = c.flops_per_image() / 1e9;
        assert!((4.3..4.5).contains(&g), "{g}");
    }
}
