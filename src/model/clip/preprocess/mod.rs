//! CLIP's image preprocessing, reproducing open_clip's eval transform exactly.
//!
//! For ViT-B-32 open_clip evaluates images with torchvision's
//! `Resize(224, BICUBIC)` → `CenterCrop(224)` → `convert("RGB")` → `ToTensor`
//! → `Normalize(CLIP_MEAN, CLIP_STD)` applied to a PIL image. On PIL images the
//! resize is Pillow's own resampler, which works on 8-bit data with fixed-point
//! filter weights and stores the result of its first pass as 8-bit again, so a
//! float bicubic resize does not reproduce it. This module
//! re-implements that resampler so that the 8-bit image the network sees is
//! identical to Pillow's, and the float stage repeats torch's f32 arithmetic.
//!
//! How Pillow resamples one axis from `in_size` to `out_size` samples:
//!
//! * `scale = in_size / out_size`; the filter is stretched by
//!   `filterscale = max(scale, 1)` (anti-aliasing when shrinking), so the
//!   bicubic kernel (`a = -0.5`, support 2) covers `2 * filterscale` samples on
//!   each side.
//! * Output sample `i` is centred at `(i + 0.5) * scale` in input coordinates;
//!   its window runs from `trunc(center - support + 0.5)` (at least 0) to
//!   `trunc(center + support + 0.5)` (at most `in_size`), and input sample `j`
//!   gets the weight `kernel((j - center + 0.5) / filterscale)`.
//! * The weights of a window are divided by their sum, then turned into signed
//!   fixed point with 22 fraction bits, rounding half away from zero.
//! * A pixel is `clamp((2^21 + Σ weight·value) >> 22, 0, 255)` in 32-bit
//!   integers.
//!
//! A 2-D resize is two such passes, each on the 8-bit output of the one before;
//! a pass whose axis keeps its length is skipped. The horizontal pass runs
//! first, except that Pillow 13 runs the vertical one first when the height
//! shrinks by more than twice as many pixels as the width (a speed-up that
//! changes the rounding; Pillow 12 and earlier always go horizontal first).
//! Upscaling, as for 28×28 MedMNIST images, is the same in every version.
//!
//! torchvision's short-side resize gives the long side
//! `trunc(size * long / short)` (computed in f64), and its centre crop starts at
//! `round((len - size) / 2)` with Python's round-half-to-even.

mod resample;

use resample::Resampler;

/// CLIP's per-channel mean, subtracted after scaling pixels to `[0, 1]`.
pub const CLIP_MEAN: [f32; 3] = [0.48145466, 0.4578275, 0.40821073];
/// CLIP's per-channel standard deviation, dividing after the mean is removed.
// The digits are open_clip's, kept verbatim (some are finer than f32 resolves).
#[allow(clippy::excessive_precision)]
pub const CLIP_STD: [f32; 3] = [0.26862954, 0.26130258, 0.27577711];

/// Why an image could not be preprocessed.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum PreprocessError {
    /// The input image has no pixels.
    #[error("the image is empty ({width}x{height})")]
    EmptyImage {
        /// Width of the input, in pixels.
        width: usize,
        /// Height of the input, in pixels.
        height: usize,
    },
    /// The requested output has no pixels.
    #[error("the target size must be positive (got {width}x{height})")]
    ZeroTargetSize {
        /// Requested output width.
        width: usize,
        /// Requested output height.
        height: usize,
    },
    /// Only grayscale (1) and RGB (3) images are handled.
    #[error("{0} channels are not supported; expected 1 or 3")]
    UnsupportedChannels(usize),
    /// The pixel buffer's length does not match the stated dimensions.
    #[error("the pixel buffer holds {actual} values but the stated dimensions need {expected}")]
    BufferLength {
        /// `width * height * channels`.
        expected: usize,
        /// The buffer's actual length.
        actual: usize,
    },
    /// A size computation overflowed, or the output could not be allocated.
    #[error("the image dimensions are too large")]
    TooLarge,
}

/// Checks the channel count, that the image is non-empty, and that the buffer
/// holds `width * height * channels` values.
fn validate(
    len: usize,
    width: usize,
    height: usize,
    channels: usize,
) -> Result<(), PreprocessError> {
    if channels != 1 && channels != 3 {
        return Err(PreprocessError::UnsupportedChannels(channels));
    }
    if width == 0 || height == 0 {
        return Err(PreprocessError::EmptyImage { width, height });
    }
    let expected = width
        .checked_mul(height)
        .and_then(|n| n.checked_mul(channels))
        .ok_or(PreprocessError::TooLarge)?;
    if len != expected {
        return Err(PreprocessError::BufferLength {
            expected,
            actual: len,
        });
    }
    Ok(())
}

/// Checks that the intermediate image of either pass order (`in_h` rows of
/// `out_w` pixels, or `out_h` rows of `in_w`) has a representable size.
fn check_intermediate(
    (in_w, in_h): (usize, usize),
    (out_w, out_h): (usize, usize),
    channels: usize,
) -> Result<(), PreprocessError> {
    let horizontal_first = in_h
        .checked_mul(out_w)
        .and_then(|n| n.checked_mul(channels));
    let vertical_first = out_h
        .checked_mul(in_w)
        .and_then(|n| n.checked_mul(channels));
    match (horizontal_first, vertical_first) {
        (Some(_), Some(_)) => Ok(()),
        _ => Err(PreprocessError::TooLarge),
    }
}

/// Pillow's bicubic resize (`Image.resize(..., BICUBIC)`) of one 8-bit image
/// with interleaved channels (HWC, `channels` = 1 or 3) to `out_w` × `out_h`.
///
/// The result is interleaved the same way and matches Pillow bit for bit.
pub fn resize_bicubic(
    pixels: &[u8],
    width: usize,
    height: usize,
    channels: usize,
    out_w: usize,
    out_h: usize,
) -> Result<Vec<u8>, PreprocessError> {
    validate(pixels.len(), width, height, channels)?;
    if out_w == 0 || out_h == 0 {
        return Err(PreprocessError::ZeroTargetSize {
            width: out_w,
            height: out_h,
        });
    }
    let len = out_w
        .checked_mul(out_h)
        .and_then(|n| n.checked_mul(channels))
        .ok_or(PreprocessError::TooLarge)?;
    check_intermediate((width, height), (out_w, out_h), channels)?;
    let mut out = Vec::new();
    out.try_reserve_exact(len)
        .map_err(|_| PreprocessError::TooLarge)?;
    let mut resampler = Resampler::bicubic((width, height), (out_w, out_h), 0..out_w, 0..out_h);
    if channels == 1 {
        resampler.run::<1>(pixels, &mut out);
    } else {
        resampler.run::<3>(pixels, &mut out);
    }
    Ok(out)
}

/// The size torchvision's `Resize(size)` gives a `height` × `width` image: the
/// short side becomes `size` and the long side `trunc(size * long / short)`.
/// Returns `(new_height, new_width)`.
fn short_side_resize(
    height: usize,
    width: usize,
    size: usize,
) -> Result<(usize, usize), PreprocessError> {
    let (short, long) = if width <= height {
        (width, height)
    } else {
        (height, width)
    };
    let product = size.checked_mul(long).ok_or(PreprocessError::TooLarge)?;
    let new_long = (product as f64 / short as f64) as usize;
    Ok(if width <= height {
        (new_long, size)
    } else {
        (size, new_long)
    })
}

/// torchvision's centre-crop offset: `round((len - crop) / 2)` with Python's
/// round-half-to-even.
fn crop_offset(len: usize, crop: usize) -> usize {
    (len.saturating_sub(crop) as f64 / 2.0).round_ties_even() as usize
}

/// The 8-bit stage of the eval transform: resize the short side to `size`
/// (Pillow bicubic), centre-crop to `size` × `size`, and replicate grayscale to
/// RGB.
///
/// Input is planar (CHW) with `channels` = 1 or 3; output is planar RGB,
/// `3 * size * size` values: exactly what `ToTensor` sees, times 255.
pub fn resize_and_crop(
    planar: &[u8],
    channels: usize,
    height: usize,
    width: usize,
    size: usize,
) -> Result<Vec<u8>, PreprocessError> {
    validate(planar.len(), width, height, channels)?;
    if size == 0 {
        return Err(PreprocessError::ZeroTargetSize {
            width: size,
            height: size,
        });
    }
    let plane_len = size.checked_mul(size).ok_or(PreprocessError::TooLarge)?;
    let out_len = plane_len.checked_mul(3).ok_or(PreprocessError::TooLarge)?;
    let (new_h, new_w) = short_side_resize(height, width, size)?;
    // Only the cropped window is computed, so that bounds the intermediate.
    check_intermediate((width, height), (size, size), 1)?;
    // The short side is exactly `size` and the long side at least `size`, so
    // the crop never needs torchvision's padding.
    let top = crop_offset(new_h, size);
    let left = crop_offset(new_w, size);
    let mut out = Vec::new();
    out.try_reserve_exact(out_len)
        .map_err(|_| PreprocessError::TooLarge)?;
    let mut resampler = Resampler::bicubic(
        (width, height),
        (new_w, new_h),
        left..left + size,
        top..top + size,
    );
    for plane in planar.chunks_exact(width * height) {
        resampler.run::<1>(plane, &mut out);
    }
    if channels == 1 {
        // PIL's convert("RGB") copies the gray value into all three channels.
        out.extend_from_within(..);
        out.extend_from_within(..plane_len);
    }
    Ok(out)
}

/// Applies `ToTensor` and `Normalize` to a planar RGB 8-bit image of
/// `plane_len` pixels per channel, appending the f32 values to `out`.
fn normalise_into(rgb: &[u8], plane_len: usize, out: &mut Vec<f32>) {
    out.reserve(rgb.len());
    for ((plane, &mean), &std) in rgb
        .chunks_exact(plane_len.max(1))
        .zip(&CLIP_MEAN)
        .zip(&CLIP_STD)
    {
        // torch: x.float().div(255), then sub_(mean).div_(std), all in f32.
        let mut lut = [0.0f32; 256];
        for (v, slot) in lut.iter_mut().enumerate() {
            *slot = (v as f32 / 255.0 - mean) / std;
        }
        out.extend(plane.iter().map(|&p| lut[usize::from(p)]));
    }
}

/// open_clip's full eval transform: short side to `size` (Pillow bicubic),
/// centre crop to `size` × `size`, grayscale → RGB, `/ 255`, and normalisation
/// with [`CLIP_MEAN`] and [`CLIP_STD`].
///
/// Input is planar (CHW) 8-bit with `channels` = 1 or 3, as replab stores
/// images. The planar f32 result `[3, size, size]` is appended to `out`; on
/// error `out` is left unchanged.
pub fn clip_preprocess_into(
    planar: &[u8],
    channels: usize,
    height: usize,
    width: usize,
    size: usize,
    out: &mut Vec<f32>,
) -> Result<(), PreprocessError> {
    let rgb = resize_and_crop(planar, channels, height, width, size)?;
    normalise_into(&rgb, rgb.len() / 3, out);
    Ok(())
}

/// Like [`clip_preprocess_into`], returning a new `[3, size, size]` planar
/// vector.
pub fn clip_preprocess(
    planar: &[u8],
    channels: usize,
    height: usize,
    width: usize,
    size: usize,
) -> Result<Vec<f32>, PreprocessError> {
    let mut out = Vec::new();
    clip_preprocess_into(planar, channels, height, width, size, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic pseudo-random image.
    pub(super) fn noise(len: usize, seed: u32) -> Vec<u8> {
        let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (state >> 24) as u8
            })
            .collect()
    }

    #[test]
    fn constant_image_stays_constant() {
        for &(w, h, ow, oh) in &[(28, 28, 224, 224), (20, 28, 7, 300), (300, 5, 33, 33)] {
            for &v in &[0u8, 1, 77, 128, 254, 255] {
                for c in [1, 3] {
                    let img = vec![v; w * h * c];
                    let out = resize_bicubic(&img, w, h, c, ow, oh).unwrap();
                    assert_eq!(out.len(), ow * oh * c);
                    assert!(out.iter().all(|&p| p == v), "value {v}, {w}x{h}->{ow}x{oh}");
                }
            }
        }
    }

    #[test]
    fn same_size_is_identity() {
        for c in [1, 3] {
            let img = noise(17 * 23 * c, 3);
            assert_eq!(resize_bicubic(&img, 17, 23, c, 17, 23).unwrap(), img);
        }
    }

    #[test]
    fn one_axis_resize_leaves_the_other_alone() {
        // Stretching only x must act on each row independently.
        let img = noise(9 * 4, 5);
        let out = resize_bicubic(&img, 9, 4, 1, 20, 4).unwrap();
        for (row, out_row) in img.chunks(9).zip(out.chunks(20)) {
            assert_eq!(resize_bicubic(row, 9, 1, 1, 20, 1).unwrap(), out_row);
        }
    }

    #[test]
    fn short_side_and_crop_follow_torchvision() {
        assert_eq!(short_side_resize(28, 28, 224).unwrap(), (224, 224));
        // 224 * 28 / 20 = 313.6 → 313 rows.
        assert_eq!(short_side_resize(28, 20, 224).unwrap(), (313, 224));
        assert_eq!(short_side_resize(27, 32, 224).unwrap(), (224, 265));
        // (313 - 224) / 2 = 44.5 rounds to even.
        assert_eq!(crop_offset(313, 224), 44);
        assert_eq!(crop_offset(227, 224), 2);
        assert_eq!(crop_offset(225, 224), 0);
        assert_eq!(crop_offset(224, 224), 0);
    }

    #[test]
    fn gray_is_replicated_and_matches_planar_rgb() {
        let gray = noise(28 * 28, 11);
        let rgb: Vec<u8> = gray.iter().chain(&gray).chain(&gray).copied().collect();
        let a = resize_and_crop(&gray, 1, 28, 28, 224).unwrap();
        let b = resize_and_crop(&rgb, 3, 28, 28, 224).unwrap();
        assert_eq!(a.len(), 3 * 224 * 224);
        assert_eq!(a, b);
    }

    #[test]
    fn planar_path_matches_interleaved_resize() {
        let (w, h) = (20, 28);
        let planar = noise(3 * w * h, 13);
        let mut hwc = vec![0u8; 3 * w * h];
        for c in 0..3 {
            for i in 0..w * h {
                hwc[i * 3 + c] = planar[c * w * h + i];
            }
        }
        let full = resize_bicubic(&hwc, w, h, 3, 224, 313).unwrap();
        let crop = resize_and_crop(&planar, 3, h, w, 224).unwrap();
        for c in 0..3 {
            for y in 0..224 {
                for x in 0..224 {
                    let want = full[((y + 44) * 224 + x) * 3 + c];
                    assert_eq!(crop[(c * 224 + y) * 224 + x], want);
                }
            }
        }
    }

    #[test]
    fn normalisation_of_extremes() {
        // Planes: red 255, green 0, blue 255 (1 row, 2 columns).
        let img = [255u8, 255, 0, 0, 255, 255];
        let out = clip_preprocess(&img, 3, 1, 2, 1).unwrap();
        assert_eq!(out.len(), 3);
        for (c, &v) in out.iter().enumerate() {
            let x = if c == 1 { 0.0 } else { 1.0 };
            let want = (x - f64::from(CLIP_MEAN[c])) / f64::from(CLIP_STD[c]);
            assert!((f64::from(v) - want).abs() < 1e-6);
        }
    }

    #[test]
    fn constants_match_python_float_to_f32() {
        // torch builds the normalisation tensors from Python (f64) floats.
        let mean = [0.48145466f64, 0.4578275, 0.40821073];
        let std = [0.26862954f64, 0.26130258, 0.27577711];
        for c in 0..3 {
            assert_eq!(CLIP_MEAN[c], mean[c] as f32);
            assert_eq!(CLIP_STD[c], std[c] as f32);
        }
    }

    #[test]
    fn errors_not_panics() {
        let img = vec![0u8; 28 * 28];
        assert_eq!(
            resize_bicubic(&img, 28, 28, 2, 10, 10),
            Err(PreprocessError::UnsupportedChannels(2))
        );
        assert_eq!(
            resize_bicubic(&img, 28, 27, 1, 10, 10),
            Err(PreprocessError::BufferLength {
                expected: 756,
                actual: 784
            })
        );
        assert_eq!(
            resize_bicubic(&img, 28, 28, 1, 0, 10),
            Err(PreprocessError::ZeroTargetSize {
                width: 0,
                height: 10
            })
        );
        assert_eq!(
            resize_bicubic(&[], 0, 5, 1, 10, 10),
            Err(PreprocessError::EmptyImage {
                width: 0,
                height: 5
            })
        );
        assert_eq!(
            resize_bicubic(&img, usize::MAX, 2, 1, 10, 10),
            Err(PreprocessError::TooLarge)
        );
        assert!(clip_preprocess(&img, 0, 28, 28, 224).is_err());
        assert!(clip_preprocess(&img, 1, 28, 28, 0).is_err());
        assert!(clip_preprocess(&img, 3, 28, 28, 224).is_err());
        assert!(clip_preprocess(&[], 1, 0, 0, 224).is_err());
        assert_eq!(
            clip_preprocess(&img, 1, 28, 28, usize::MAX),
            Err(PreprocessError::TooLarge)
        );
        assert_eq!(
            resize_bicubic(&[7], 1, 1, 1, usize::MAX / 4, 1),
            Err(PreprocessError::TooLarge)
        );
        assert_eq!(
            clip_preprocess(&img, 1, 28, 28, 1 << 31),
            Err(PreprocessError::TooLarge)
        );
        let mut out = vec![1.0f32];
        assert!(clip_preprocess_into(&img, 4, 28, 28, 224, &mut out).is_err());
        assert_eq!(out, vec![1.0]);
    }

    #[test]
    fn tiny_and_extreme_shapes_do_not_panic() {
        for &(w, h) in &[(1, 1), (1, 40), (40, 1), (2, 3), (500, 3)] {
            for c in [1, 3] {
                let img = noise(w * h * c, 17);
                let out = clip_preprocess(&img, c, h, w, 224).unwrap();
                assert_eq!(out.len(), 3 * 224 * 224);
                let out = resize_bicubic(&img, w, h, c, 3, 1).unwrap();
                assert_eq!(out.len(), 3 * c);
            }
        }
    }
}
