//! The notebook's `ConvAutoencoder` for 28×28 images: strided convolutions down to
//! 4×4, a dense bottleneck, and bilinear upsampling followed by convolutions back up.

use super::bilinear::Bilinear;
use super::{Autoencoder, load, new_head};
use crate::model::batchnorm::{BatchNorm, BatchNormConfig};
use crate::model::state::{StateError, TensorMap};
use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d, Relu};
use burn::prelude::*;

/// Side of the images the network takes.
pub const IMAGE_SIZE: usize = 28;

/// Channels of the deepest feature map.
const DEEP_CHANNELS: usize = 128;

/// Side of the deepest feature map: 28 → 14 → 7 → 4.
const DEEP_SIZE: usize = 4;

/// Flattened deepest feature map, `128·4·4`.
pub const FLAT_DIM: usize = DEEP_CHANNELS * DEEP_SIZE * DEEP_SIZE;

/// `nn.Upsample(size=target_size, mode='bilinear', align_corners=False)`, or with
/// `scale_factor=2` when there is no target size (see [`Bilinear`] for why it is
/// not burn's `interpolate`).
pub fn upsample(target_size: Option<[usize; 2]>) -> Bilinear {
    Bilinear::new(target_size)
}

fn conv3x3(c_in: usize, c_out: usize, stride: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([c_in, c_out], [3, 3])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init(device)
}

/// The notebook's `StridedConvBlock`: conv 3×3 (stride 2, padding 1) → BatchNorm → ReLU.
#[derive(Module, Debug)]
pub struct StridedConvBlock {
    conv: Conv2d,
    bn: BatchNorm,
    relu: Relu,
}

impl StridedConvBlock {
    /// A block from `c_in` to `c_out` channels.
    pub fn new(c_in: usize, c_out: usize, device: &Device) -> Self {
        Self {
            conv: conv3x3(c_in, c_out, 2, device),
            bn: BatchNormConfig::new(c_out).init(device),
            relu: Relu::new(),
        }
    }

    /// `[batch, c_in, h, w]` → `[batch, c_out, ⌈h/2⌉, ⌈w/2⌉]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.relu.forward(self.bn.forward(self.conv.forward(x)))
    }

    fn load_torch(
        mut self,
        map: &TensorMap,
        prefix: &str,
        device: &Device,
    ) -> Result<Self, StateError> {
        load::set_conv(&mut self.conv, map, &format!("{prefix}.block.0"), device)?;
        load::set_batch_norm(&mut self.bn, map, &format!("{prefix}.block.1"), device)?;
        Ok(self)
    }
}

/// The notebook's `UpsampleConvBlock`: bilinear upsample → conv 3×3 (padding 1), then
/// BatchNorm → ReLU unless it is the output block.
#[derive(Module, Debug)]
pub struct UpsampleConvBlock {
    upsample: Bilinear,
    conv: Conv2d,
    /// Present when the block is activated.
    bn: Option<BatchNorm>,
    relu: Relu,
}

impl UpsampleConvBlock {
    /// A block from `c_in` to `c_out` channels that resizes to `target_size`, or
    /// doubles the size when there is none.
    pub fn new(
        c_in: usize,
        c_out: usize,
        target_size: Option<[usize; 2]>,
        activate: bool,
        device: &Device,
    ) -> Self {
        Self {
            upsample: upsample(target_size),
            conv: conv3x3(c_in, c_out, 1, device),
            bn: activate.then(|| BatchNormConfig::new(c_out).init(device)),
            relu: Relu::new(),
        }
    }

    /// `[batch, c_in, h, w]` → `[batch, c_out, h', w']`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = self.conv.forward(self.upsample.forward(x));
        match &self.bn {
            Some(bn) => self.relu.forward(bn.forward(x)),
            None => x,
        }
    }

    fn load_torch(
        mut self,
        map: &TensorMap,
        prefix: &str,
        device: &Device,
    ) -> Result<Self, StateError> {
        load::set_conv(&mut self.conv, map, &format!("{prefix}.conv.0"), device)?;
        if let Some(bn) = self.bn.as_mut() {
            load::set_batch_norm(bn, map, &format!("{prefix}.conv.1"), device)?;
        }
        Ok(self)
    }
}

/// Configuration of [`ConvAe`].
#[derive(Config, Debug)]
pub struct ConvAeConfig {
    /// Image channels: 1 (grayscale) or 3 (RGB).
    pub channels: usize,
    /// Width of the bottleneck.
    #[config(default = 128)]
    pub latent_dim: usize,
}

/// The convolutional autoencoder for `[batch, channels, 28, 28]` images.
#[derive(Module, Debug)]
pub struct ConvAe {
    conv_blocks: Vec<StridedConvBlock>,
    /// `encoder_head.1`: Linear 2048 → latent (followed by ReLU).
    encoder_fc: Linear,
    /// `decoder_head.0`: Linear latent → 2048 (followed by ReLU).
    decoder_fc: Linear,
    deconv_blocks: Vec<UpsampleConvBlock>,
    relu: Relu,
    classifier: Option<Linear>,
    channels: usize,
    latent_dim: usize,
}

impl ConvAeConfig {
    /// Fresh weights with PyTorch's initialisation.
    pub fn init(&self, device: &Device) -> ConvAe {
        let c = self.channels;
        ConvAe {
            conv_blocks: vec![
                StridedConvBlock::new(c, 32, device),   // [batch, 32, 14, 14]
                StridedConvBlock::new(32, 64, device),  // [batch, 64, 7, 7]
                StridedConvBlock::new(64, 128, device), // [batch, 128, 4, 4]
            ],
            encoder_fc: LinearConfig::new(FLAT_DIM, self.latent_dim).init(device),
            decoder_fc: LinearConfig::new(self.latent_dim, FLAT_DIM).init(device),
            deconv_blocks: vec![
                UpsampleConvBlock::new(128, 64, Some([7, 7]), true, device), // [batch, 64, 7, 7]
                UpsampleConvBlock::new(64, 32, None, true, device),          // [batch, 32, 14, 14]
                UpsampleConvBlock::new(32, c, None, false, device),          // [batch, c, 28, 28]
            ],
            relu: Relu::new(),
            classifier: None,
            channels: c,
            latent_dim: self.latent_dim,
        }
    }
}

impl ConvAe {
    /// A copy whose BatchNorm statistics are its own (see [`BatchNorm::unshared`]).
    pub fn unshared(mut self) -> Self {
        for b in &mut self.conv_blocks {
            b.bn = b.bn.clone().unshared();
        }
        for b in &mut self.deconv_blocks {
            b.bn = b.bn.take().map(BatchNorm::unshared);
        }
        self
    }

    /// Image channels.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// The BatchNorms in network order: the three encoder blocks, then the two
    /// activated decoder blocks.
    pub fn batch_norms(&self) -> Vec<&BatchNorm> {
        let enc = self.conv_blocks.iter().map(|b| &b.bn);
        let dec = self.deconv_blocks.iter().filter_map(|b| b.bn.as_ref());
        enc.chain(dec).collect()
    }

    /// Load every weight and running statistic from a PyTorch state dict
    /// (`conv_blocks.{i}.block.{0,1}.*`, `encoder_head.1.*`, `decoder_head.0.*`,
    /// `deconv_blocks.{i}.conv.{0,1}.*`, and `classifier.*` when present).
    pub fn load_torch(mut self, map: &TensorMap, device: &Device) -> Result<Self, StateError> {
        self.conv_blocks = self
            .conv_blocks
            .into_iter()
            .enumerate()
            .map(|(i, b)| b.load_torch(map, &format!("conv_blocks.{i}"), device))
            .collect::<Result<_, _>>()?;
        self.deconv_blocks = self
            .deconv_blocks
            .into_iter()
            .enumerate()
            .map(|(i, b)| b.load_torch(map, &format!("deconv_blocks.{i}"), device))
            .collect::<Result<_, _>>()?;
        let latent = self.latent_dim;
        self.encoder_fc = load::linear(map, "encoder_head.1", FLAT_DIM, latent, true, device)?;
        self.decoder_fc = load::linear(map, "decoder_head.0", latent, FLAT_DIM, true, device)?;
        if let Some(head) = load::classifier(map, latent, device)? {
            self.classifier = Some(head);
        }
        Ok(self)
    }
}

impl Autoencoder for ConvAe {
    fn unshared(self) -> Self {
        ConvAe::unshared(self)
    }
    fn encode(&self, x: Tensor<4>) -> Tensor<2> {
        let mut x = x; // [batch, c, 28, 28]
        for block in &self.conv_blocks {
            x = block.forward(x);
        }
        let flat: Tensor<2> = x.flatten(1, 3); // [batch, 2048]
        self.relu.forward(self.encoder_fc.forward(flat)) // [batch, latent]
    }

    /// The architecture fixes the output to `[batch, channels, 28, 28]`; `image` is
    /// only checked (in debug builds).
    fn decode(&self, z: Tensor<2>, image: [usize; 3]) -> Tensor<4> {
        debug_assert_eq!(
            image,
            [self.channels, IMAGE_SIZE, IMAGE_SIZE],
            "the conv autoencoder decodes to its own image shape"
        );
        let [batch, _] = z.dims();
        let h = self.relu.forward(self.decoder_fc.forward(z)); // [batch, 2048]
        let mut x: Tensor<4> = h.reshape([batch, DEEP_CHANNELS, DEEP_SIZE, DEEP_SIZE]); // [batch, 128, 4, 4]
        for block in &self.deconv_blocks {
            x = block.forward(x);
        }
        x // [batch, c, 28, 28]
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
