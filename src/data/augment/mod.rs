//! Image augmentations for the self-supervised chapters, with torchvision's semantics
//! and none of its per-sample loop.
//!
//! The notebook augments one image at a time in a `DataLoader`, which is most of
//! each epoch. Here every random choice is drawn on the host from the run's seeded
//! generator ([`Pipeline::sample`], a few numbers per view), and the whole batch is
//! then transformed on the training device at once ([`Pipeline::apply`], see
//! [`ops`]): the crop and flips as two batched matrix products per view, the
//! colour operations as tensor arithmetic, the blur as two more matrix products.
//!
//! The transforms, in the notebook's order: `RandomResizedCrop(28, scale)`,
//! `RandomHorizontalFlip()`, `RandomVerticalFlip()`,
//! `ColorJitter(0.4, 0.4, 0.2, 0.1)`, `RandomGrayscale(0.2)` and
//! `GaussianBlur(3, sigma=(0.1, 2.0))`.

pub mod ops;

use super::rng::NumpyRng;
use burn::prelude::*;

/// `ColorJitter`'s strengths: brightness, contrast and saturation factors are drawn
/// from `[1 − s, 1 + s]`, the hue shift from `[−h, h]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ColorJitter {
    /// Brightness strength.
    pub brightness: f64,
    /// Contrast strength.
    pub contrast: f64,
    /// Saturation strength.
    pub saturation: f64,
    /// Hue strength (at most 0.5).
    pub hue: f64,
}

impl ColorJitter {
    /// The notebook's `ColorJitter(brightness=0.4, contrast=0.4, saturation=0.2, hue=0.1)`.
    pub const LAB: Self = Self {
        brightness: 0.4,
        contrast: 0.4,
        saturation: 0.2,
        hue: 0.1,
    };
}

/// One augmentation pipeline: which transforms run, with what ranges.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pipeline {
    /// `RandomResizedCrop`'s range of the crop's share of the image area.
    pub scale: (f64, f64),
    /// `RandomResizedCrop`'s range of aspect ratios (width / height).
    pub ratio: (f64, f64),
    /// Flip left-right with probability ½.
    pub hflip: bool,
    /// Flip top-bottom with probability ½.
    pub vflip: bool,
    /// Colour jitter, in a random order per view.
    pub jitter: Option<ColorJitter>,
    /// Probability of turning a colour view grey.
    pub grayscale_p: f64,
    /// Gaussian blur (kernel 3) with sigma drawn from this range.
    pub blur: Option<(f64, f64)>,
}

/// Which transforms a pipeline runs, for the gallery's toggles and the ablation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transform {
    /// Random resized crop (off: the whole image).
    Crop,
    /// Horizontal flip.
    HFlip,
    /// Vertical flip.
    VFlip,
    /// Colour jitter.
    Jitter,
    /// Random grayscale.
    Grayscale,
    /// Gaussian blur.
    Blur,
}

impl Transform {
    /// Every transform, in the pipeline's order.
    pub const ALL: [Transform; 6] = [
        Transform::Crop,
        Transform::HFlip,
        Transform::VFlip,
        Transform::Jitter,
        Transform::Grayscale,
        Transform::Blur,
    ];

    /// A short name for a toggle.
    pub fn label(self) -> &'static str {
        match self {
            Transform::Crop => "crop",
            Transform::HFlip => "h-flip",
            Transform::VFlip => "v-flip",
            Transform::Jitter => "colour jitter",
            Transform::Grayscale => "grayscale",
            Transform::Blur => "blur",
        }
    }
}

const RATIO: (f64, f64) = (3.0 / 4.0, 4.0 / 3.0);

impl Pipeline {
    /// The notebook's `simclr_augment`.
    pub const SIMCLR: Self = Self {
        scale: (0.5, 1.0),
        ratio: RATIO,
        hflip: true,
        vflip: true,
        jitter: Some(ColorJitter::LAB),
        grayscale_p: 0.2,
        blur: Some((0.1, 2.0)),
    };
    /// The notebook's `dino_global_augment`.
    pub const DINO_GLOBAL: Self = Self {
        scale: (0.4, 1.0),
        ..Self::SIMCLR
    };
    /// The notebook's `dino_local_augment` (no blur).
    pub const DINO_LOCAL: Self = Self {
        scale: (0.15, 0.4),
        blur: None,
        ..Self::SIMCLR
    };

    /// Whether `t` is on.
    pub fn has(&self, t: Transform) -> bool {
        match t {
            Transform::Crop => self.scale != (1.0, 1.0) || self.ratio != (1.0, 1.0),
            Transform::HFlip => self.hflip,
            Transform::VFlip => self.vflip,
            Transform::Jitter => self.jitter.is_some(),
            Transform::Grayscale => self.grayscale_p > 0.0,
            Transform::Blur => self.blur.is_some(),
        }
    }

    /// The same pipeline with `t` switched off (`on == false`) or back to `base`'s
    /// setting.
    pub fn with(mut self, t: Transform, on: bool, base: &Pipeline) -> Self {
        match t {
            Transform::Crop if on => (self.scale, self.ratio) = (base.scale, base.ratio),
            Transform::Crop => (self.scale, self.ratio) = ((1.0, 1.0), (1.0, 1.0)),
            Transform::HFlip => self.hflip = on && base.hflip,
            Transform::VFlip => self.vflip = on && base.vflip,
            Transform::Jitter => self.jitter = base.jitter.filter(|_| on),
            Transform::Grayscale => self.grayscale_p = if on { base.grayscale_p } else { 0.0 },
            Transform::Blur => self.blur = base.blur.filter(|_| on),
        }
        self
    }

    /// Draw the random parameters of `n` views of `height × width` images, in
    /// torchvision's order per view (crop, flips, jitter, grayscale, blur).
    pub fn sample(
        &self,
        rng: &mut NumpyRng,
        n: usize,
        height: usize,
        width: usize,
    ) -> Vec<ViewParams> {
        (0..n)
            .map(|_| self.sample_one(rng, height, width))
            .collect()
    }

    fn sample_one(&self, rng: &mut NumpyRng, height: usize, width: usize) -> ViewParams {
        let crop = Crop::sample(rng, height, width, self.scale, self.ratio);
        let hflip = self.hflip && rng.random() < 0.5;
        let vflip = self.vflip && rng.random() < 0.5;
        let jitter = self.jitter.map(|j| {
            let mut order = [0u8, 1, 2, 3];
            rng.shuffle(&mut order);
            let mut factor = |s: f64| uniform(rng, (1.0 - s).max(0.0), 1.0 + s) as f32;
            let b = factor(j.brightness);
            let c = factor(j.contrast);
            let s = factor(j.saturation);
            let h = uniform(rng, -j.hue, j.hue) as f32;
            JitterParams {
                order,
                factors: [b, c, s, h],
            }
        });
        let grayscale = self.grayscale_p > 0.0 && rng.random() < self.grayscale_p;
        let blur_sigma = self.blur.map(|(lo, hi)| uniform(rng, lo, hi) as f32);
        ViewParams {
            crop,
            hflip,
            vflip,
            jitter,
            grayscale,
            blur_sigma,
        }
    }

    /// Apply `views` (one per image) to `images [n, c, h, w]` on their device.
    pub fn apply(&self, images: Tensor<4>, views: &[ViewParams]) -> Tensor<4> {
        let mut x = ops::resized_crop(images, views);
        if self.jitter.is_some() {
            x = ops::color_jitter(x, views);
        }
        if self.grayscale_p > 0.0 {
            x = ops::random_grayscale(x, views);
        }
        if self.blur.is_some() {
            x = ops::gaussian_blur(x, views);
        }
        x
    }

    /// One random view of every image in `images [n, c, h, w]`.
    pub fn augment(&self, images: Tensor<4>, rng: &mut NumpyRng) -> Tensor<4> {
        let [n, _, h, w] = images.dims();
        let views = self.sample(rng, n, h, w);
        self.apply(images, &views)
    }
}

fn uniform(rng: &mut NumpyRng, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * rng.random()
}

/// A crop box in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Crop {
    /// First row.
    pub top: usize,
    /// First column.
    pub left: usize,
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
}

impl Crop {
    /// The whole image.
    pub fn full(height: usize, width: usize) -> Self {
        Self {
            top: 0,
            left: 0,
            height,
            width,
        }
    }

    /// `RandomResizedCrop`'s draw: up to ten tries at a box with a random share of
    /// the area and a log-uniform aspect ratio, then a centred fallback.
    pub fn sample(
        rng: &mut NumpyRng,
        height: usize,
        width: usize,
        scale: (f64, f64),
        ratio: (f64, f64),
    ) -> Self {
        if scale == (1.0, 1.0) && ratio == (1.0, 1.0) {
            return Self::full(height, width);
        }
        let area = (height * width) as f64;
        let (lo, hi) = (ratio.0.ln(), ratio.1.ln());
        for _ in 0..10 {
            let target = area * uniform(rng, scale.0, scale.1);
            let aspect = uniform(rng, lo, hi).exp();
            // Python's round() rounds halves to even.
            let w = (target * aspect).sqrt().round_ties_even() as usize;
            let h = (target / aspect).sqrt().round_ties_even() as usize;
            if 0 < w && w <= width && 0 < h && h <= height {
                let top = rng.integers(0, (height - h + 1) as i64) as usize;
                let left = rng.integers(0, (width - w + 1) as i64) as usize;
                return Self {
                    top,
                    left,
                    height: h,
                    width: w,
                };
            }
        }
        let in_ratio = width as f64 / height as f64;
        let (w, h) = if in_ratio < ratio.0 {
            (width, (width as f64 / ratio.0).round_ties_even() as usize)
        } else if in_ratio > ratio.1 {
            ((height as f64 * ratio.1).round_ties_even() as usize, height)
        } else {
            (width, height)
        };
        Self {
            top: (height - h) / 2,
            left: (width - w) / 2,
            height: h,
            width: w,
        }
    }
}

/// `ColorJitter`'s draw for one view.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct JitterParams {
    /// The order of the four operations: 0 brightness, 1 contrast, 2 saturation, 3 hue.
    pub order: [u8; 4],
    /// Brightness, contrast and saturation factors, and the hue shift.
    pub factors: [f32; 4],
}

/// Every random choice for one view.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ViewParams {
    /// The crop, resized back to the full size.
    pub crop: Crop,
    /// Flip left-right after the crop.
    pub hflip: bool,
    /// Flip top-bottom after the crop.
    pub vflip: bool,
    /// Colour jitter, when the pipeline has it.
    pub jitter: Option<JitterParams>,
    /// Turn grey (colour images only).
    pub grayscale: bool,
    /// Blur sigma, when the pipeline blurs.
    pub blur_sigma: Option<f32>,
}

impl ViewParams {
    /// A view that changes nothing.
    pub fn identity(height: usize, width: usize) -> Self {
        Self {
            crop: Crop::full(height, width),
            hflip: false,
            vflip: false,
            jitter: None,
            grayscale: false,
            blur_sigma: None,
        }
    }
}
