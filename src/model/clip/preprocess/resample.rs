//! Pillow's 8-bit bicubic resampler: fixed-point filter taps per axis and
//! the two passes that apply them (see the parent module for the rules).

use std::ops::Range;

/// Fraction bits of Pillow's 8-bit fixed-point weights: 32 bits less 8 for the
/// pixel value and 2 of headroom for the kernel's negative lobes and overshoot.
const PRECISION_BITS: u32 = 32 - 8 - 2;
/// Support (half-width) of the bicubic kernel, in input samples, before it is
/// stretched for downscaling.
const BICUBIC_SUPPORT: f64 = 2.0;
/// The bicubic kernel's free parameter as Pillow sets it.
const BICUBIC_A: f64 = -0.5;

/// One output sample of a resampling pass: the first input sample it reads
/// and the range of its weights in [`Axis::weights`].
#[derive(Debug, Clone, Copy)]
struct Tap {
    start: usize,
    weights: (usize, usize),
}

/// Fixed-point filter taps for a range of output samples along one axis.
#[derive(Debug, Default)]
struct Axis {
    taps: Vec<Tap>,
    weights: Vec<i32>,
}

impl Axis {
    /// The weights of `tap` (empty if the tap were malformed, which the
    /// constructors rule out).
    fn weights_of(&self, tap: &Tap) -> &[i32] {
        self.weights
            .get(tap.weights.0..tap.weights.1)
            .unwrap_or(&[])
    }

    /// First input sample any tap reads, and one past the last.
    fn input_span(&self) -> Range<usize> {
        let first = self.taps.iter().map(|t| t.start).min().unwrap_or(0);
        let end = self
            .taps
            .iter()
            .map(|t| t.start + t.weights.1.saturating_sub(t.weights.0))
            .max()
            .unwrap_or(first);
        first..end.max(first)
    }

    /// Taps that copy input samples `window` unchanged: what Pillow does when
    /// an axis keeps its length (it skips the pass). A single weight of
    /// `2^PRECISION_BITS` reproduces each value exactly.
    fn identity(window: Range<usize>) -> Self {
        let mut axis = Axis::default();
        for (i, xx) in window.enumerate() {
            axis.taps.push(Tap {
                start: xx,
                weights: (i, i + 1),
            });
            axis.weights.push(1 << PRECISION_BITS);
        }
        axis
    }

    /// The taps for resampling `in_size` samples to `out_size`, kept only for
    /// the output samples in `window` (a crop after the resize). An axis whose
    /// length does not change is an identity, as Pillow skips that pass.
    fn bicubic(in_size: usize, out_size: usize, window: Range<usize>) -> Self {
        if in_size == out_size {
            Axis::identity(window)
        } else {
            Axis::bicubic_taps(in_size, out_size, window)
        }
    }

    /// Pillow's bicubic taps (`precompute_coeffs` followed by
    /// `normalize_coeffs_8bpc`) for the output samples in `window`.
    fn bicubic_taps(in_size: usize, out_size: usize, window: Range<usize>) -> Self {
        // Pillow passes the box edges as C floats, so the input length goes
        // through f32 before the f64 arithmetic.
        let scale = f64::from(in_size as f32) / out_size as f64;
        let filterscale = if scale < 1.0 { 1.0 } else { scale };
        let support = BICUBIC_SUPPORT * filterscale;
        let inv = 1.0 / filterscale;

        let mut axis = Axis::default();
        let mut raw: Vec<f64> = Vec::new();
        for xx in window {
            let center = (xx as f64 + 0.5) * scale;
            // `as usize` truncates toward zero and saturates negatives at 0,
            // which is C's `(int)` followed by the clamp at 0.
            let xmin = (center - support + 0.5) as usize;
            let xend = ((center + support + 0.5) as usize).min(in_size);
            let count = xend.saturating_sub(xmin);

            raw.clear();
            let mut sum = 0.0;
            for j in xmin..xmin + count {
                let w = bicubic_kernel((j as f64 - center + 0.5) * inv);
                raw.push(w);
                sum += w;
            }
            let first = axis.weights.len();
            for &w in &raw {
                let w = if sum != 0.0 { w / sum } else { w };
                axis.weights.push(to_fixed(w));
            }
            axis.taps.push(Tap {
                start: xmin,
                weights: (first, axis.weights.len()),
            });
        }
        axis
    }
}

/// The bicubic convolution kernel with `a = -0.5`, in Pillow's operation order.
fn bicubic_kernel(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 {
        ((BICUBIC_A + 2.0) * x - (BICUBIC_A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * BICUBIC_A
    } else {
        0.0
    }
}

/// A normalised weight as fixed point, rounding half away from zero and then
/// truncating, as Pillow does.
fn to_fixed(w: f64) -> i32 {
    let scaled = w * f64::from(1u32 << PRECISION_BITS);
    if w < 0.0 {
        (scaled - 0.5) as i32
    } else {
        (scaled + 0.5) as i32
    }
}

/// Start value of every accumulator: one half in fixed point, so that the
/// final shift rounds to nearest.
const ROUND_START: i32 = 1 << (PRECISION_BITS - 1);

/// Pillow's `clip8`: drops the fraction bits (flooring) and clamps to 0..=255.
fn clip8(acc: i32) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Reusable buffers for [`Resampler::run`]: the 8-bit intermediate image, the
/// horizontal pass's transposed input, and a row of accumulators.
#[derive(Debug, Default)]
struct Scratch {
    mid: Vec<u8>,
    tr: Vec<u8>,
    acc: Vec<i32>,
}

/// Whether Pillow (13 and later) runs the vertical pass first: when the
/// height shrinks by more than twice as many pixels as the width does.
/// Earlier Pillow always ran the horizontal pass first; the two orders round
/// the intermediate image differently, so the choice changes the output.
fn vertical_first(in_w: usize, in_h: usize, out_w: usize, out_h: usize) -> bool {
    // usize → i128 is lossless, so the differences cannot overflow.
    let dh = in_h as i128 - out_h as i128;
    let dw = in_w as i128 - out_w as i128;
    dh > 0 && dh > 2 * dw
}

/// Horizontal pass over an interleaved `C`-channel image with `src_w` pixels
/// per row: rows `rows` of `src` are resampled with `axis` (whose tap starts
/// are offset by `shift` pixels from `src`'s first column), and the 8-bit
/// result is appended to `out`, `axis.taps.len()` pixels per row.
///
/// The columns the taps read are first transposed into `tr`, so that each
/// weight multiplies a contiguous column of all rows at once (vectorisable)
/// rather than a short dependent chain per output pixel.
#[allow(clippy::too_many_arguments)]
fn horizontal_pass<const C: usize>(
    src: &[u8],
    src_w: usize,
    rows: Range<usize>,
    axis: &Axis,
    shift: usize,
    tr: &mut Vec<u8>,
    acc: &mut Vec<i32>,
    out: &mut Vec<u8>,
) {
    let row_len = src_w * C;
    let span = axis.input_span();
    let first_col = span.start.saturating_sub(shift);
    let block = rows.len() * C;

    // tr[j][r][c] = src[rows.start + r][first_col + j][c]
    tr.clear();
    tr.resize(span.len() * block, 0);
    for (ri, r) in rows.enumerate() {
        let begin = r * row_len + first_col * C;
        let seg = src.get(begin..begin + span.len() * C).unwrap_or(&[]);
        for (j, px) in seg.chunks_exact(C).enumerate() {
            let at = j * block + ri * C;
            let dst = tr.get_mut(at..at + C).unwrap_or(&mut []);
            for (d, &p) in dst.iter_mut().zip(px) {
                *d = p;
            }
        }
    }

    let n_taps = axis.taps.len();
    let base = out.len();
    out.resize(base + block * n_taps, 0);
    for (t, tap) in axis.taps.iter().enumerate() {
        acc.clear();
        acc.resize(block, ROUND_START);
        let first = tap.start.saturating_sub(span.start);
        for (j, &k) in (first..).zip(axis.weights_of(tap)) {
            let col = tr.get(j * block..(j + 1) * block).unwrap_or(&[]);
            for (a, &p) in acc.iter_mut().zip(col) {
                *a = a.wrapping_add(i32::from(p).wrapping_mul(k));
            }
        }
        for (ri, sums) in acc.chunks_exact(C).enumerate() {
            let at = base + (ri * n_taps + t) * C;
            let dst = out.get_mut(at..at + C).unwrap_or(&mut []);
            for (d, &s) in dst.iter_mut().zip(sums) {
                *d = clip8(s);
            }
        }
    }
}

/// Vertical pass over an interleaved `C`-channel image with `src_w` pixels per
/// row: each tap of `axis` (row starts offset by `shift` from `src`'s first
/// row) becomes one output row holding the pixels `cols`, appended to `out`.
fn vertical_pass<const C: usize>(
    src: &[u8],
    src_w: usize,
    cols: Range<usize>,
    axis: &Axis,
    shift: usize,
    acc: &mut Vec<i32>,
    out: &mut Vec<u8>,
) {
    let row_len = cols.len() * C;
    let src_row_len = src_w * C;
    out.reserve(axis.taps.len() * row_len);
    for tap in &axis.taps {
        acc.clear();
        acc.resize(row_len, ROUND_START);
        let first = tap.start.saturating_sub(shift);
        for (r, &k) in (first..).zip(axis.weights_of(tap)) {
            let begin = r * src_row_len + cols.start * C;
            let row = src.get(begin..begin + row_len).unwrap_or(&[]);
            for (a, &p) in acc.iter_mut().zip(row) {
                *a = a.wrapping_add(i32::from(p).wrapping_mul(k));
            }
        }
        out.extend(acc.iter().map(|&s| clip8(s)));
    }
}

/// One resize of an `in_w` × `in_h` image (`input`) to a window of a full
/// `out_w` × `out_h` resize (`output`), the window's samples selected by
/// `h_axis` and `v_axis`, with the buffers it reuses between images.
pub(super) struct Resampler {
    input: (usize, usize),
    output: (usize, usize),
    h_axis: Axis,
    v_axis: Axis,
    scratch: Scratch,
}

impl Resampler {
    /// Bicubic filters for the output columns `cols` and rows `rows`.
    pub(super) fn bicubic(
        input: (usize, usize),
        output: (usize, usize),
        cols: Range<usize>,
        rows: Range<usize>,
    ) -> Self {
        Self {
            input,
            output,
            h_axis: Axis::bicubic(input.0, output.0, cols),
            v_axis: Axis::bicubic(input.1, output.1, rows),
            scratch: Scratch::default(),
        }
    }

    /// Resamples an interleaved `C`-channel image, appending the
    /// `v_axis.taps.len()` × `h_axis.taps.len()` × `C` result to `out`.
    ///
    /// The pass order follows Pillow, and the intermediate image is 8-bit as
    /// in Pillow. Only the rows (or columns) that the second pass reads are
    /// computed in the first.
    pub(super) fn run<const C: usize>(&mut self, src: &[u8], out: &mut Vec<u8>) {
        let ((in_w, in_h), (out_w, out_h)) = (self.input, self.output);
        let (h_axis, v_axis) = (&self.h_axis, &self.v_axis);
        let Scratch { mid, tr, acc } = &mut self.scratch;
        mid.clear();
        if vertical_first(in_w, in_h, out_w, out_h) {
            let cols = h_axis.input_span();
            vertical_pass::<C>(src, in_w, cols.clone(), v_axis, 0, acc, mid);
            let rows = 0..v_axis.taps.len();
            horizontal_pass::<C>(mid, cols.len(), rows, h_axis, cols.start, tr, acc, out);
        } else {
            let rows = v_axis.input_span();
            horizontal_pass::<C>(src, in_w, rows.clone(), h_axis, 0, tr, acc, mid);
            let cols = 0..h_axis.taps.len();
            vertical_pass::<C>(mid, cols.len(), cols, v_axis, rows.start, acc, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::clip::preprocess::tests::noise;

    #[test]
    fn bicubic_same_length_taps_are_identity() {
        // Pillow skips a pass whose length is unchanged; its bicubic weights
        // would copy the input anyway.
        let img = noise(31, 9);
        let axis = Axis::bicubic_taps(31, 31, 0..31);
        let mut out = Vec::new();
        let (mut tr, mut acc) = (Vec::new(), Vec::new());
        horizontal_pass::<1>(&img, 31, 0..1, &axis, 0, &mut tr, &mut acc, &mut out);
        assert_eq!(out, img);
    }

    #[test]
    fn weights_sum_to_one_in_fixed_point() {
        for &(i, o) in &[(28, 224), (224, 28), (20, 313), (300, 224), (5, 3)] {
            let axis = Axis::bicubic(i, o, 0..o);
            for tap in &axis.taps {
                let sum: i64 = axis.weights_of(tap).iter().map(|&w| i64::from(w)).sum();
                assert!((sum - (1 << PRECISION_BITS)).abs() <= 4, "{i}->{o}: {sum}");
                assert!(tap.start + (tap.weights.1 - tap.weights.0) <= i);
            }
        }
    }

    #[test]
    fn kernel_values() {
        assert_eq!(bicubic_kernel(0.0), 1.0);
        assert_eq!(bicubic_kernel(1.0), 0.0);
        assert_eq!(bicubic_kernel(-2.0), 0.0);
        assert_eq!(bicubic_kernel(0.5), 0.5625);
        assert_eq!(bicubic_kernel(-1.5), -0.0625);
        assert_eq!(to_fixed(0.5), 1 << 21);
        assert_eq!(to_fixed(-0.5), -(1 << 21));
    }

    #[test]
    fn pass_order_follows_pillow_13() {
        // Pillow 13's pass order: vertical first only when the height shrinks
        // by more than twice as many pixels as the width.
        assert!(!vertical_first(28, 28, 224, 224));
        assert!(vertical_first(40, 100, 32, 80));
        assert!(!vertical_first(60, 50, 32, 32));
        assert!(!vertical_first(30, 40, 25, 30));
        assert!(vertical_first(30, 41, 25, 30));
    }
}
