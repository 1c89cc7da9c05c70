//! Stochastic gradient descent on the layout, and the fast power function it
//! can use.

use super::fuzzy::Edges;
use super::rng::SplitMix64;

/// Negative samples drawn per positive edge sample.
const NEGATIVE_SAMPLE_RATE: f64 = 5.0;
/// Initial SGD learning rate (`alpha` in umap-learn).
const LEARNING_RATE: f32 = 1.0;
/// Weight of the repulsive term (`gamma`).
const REPULSION_STRENGTH: f32 = 1.0;
/// Gradient components are clipped to this magnitude.
const GRAD_CLIP: f32 = 4.0;

/// The state of the SGD optimiser between epochs.
#[derive(Clone, Debug)]
pub(super) struct Layout {
    edges: Edges,
    next_sample: Vec<f64>,
    epochs_per_negative: Vec<f64>,
    next_negative: Vec<f64>,
    pub(super) emb: Vec<[f32; 2]>,
    a: f32,
    b: f32,
    pub(super) epoch: usize,
    /// Use [`fast_pow`] instead of `f32::powf`.
    fast_pow: bool,
}

#[inline]
fn clip(v: f32) -> f32 {
    v.clamp(-GRAD_CLIP, GRAD_CLIP)
}

/// `x^p` for `x > 0` as `2^(p·log2 x)`, from `+ − × ÷`, bit manipulation and short
/// polynomials; relative error below 5e-7.
///
/// The layout loop spends much of its time raising distances to the power `b`. In
/// wasm `f32::powf` is a software routine costing about 50–75 ns; this costs about
/// 15–25 ns there. Natively the system `powf` is faster (about 6 ns against 14).
/// [`UmapConfig::fast_pow`](super::UmapConfig::fast_pow) chooses between them, the
/// same way on every target, so one configuration gives one layout. Subnormal, zero or NaN
/// `x` is treated as the smallest normal `f32`; the result saturates near `2^±126`.
#[inline]
fn fast_pow(x: f32, p: f32) -> f32 {
    // A comparison rather than `max`, which costs extra NaN handling in wasm; NaN
    // also ends up as the smallest normal here.
    let x = if x >= f32::MIN_POSITIVE {
        x
    } else {
        f32::MIN_POSITIVE
    };
    let bits = x.to_bits();
    let mut exponent = ((bits >> 23) & 0xff) as i32 - 127;
    // Mantissa in [1, 2), folded into [√½, √2) so the series below converges fast.
    let mut m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000);
    if m > std::f32::consts::SQRT_2 {
        m *= 0.5;
        exponent += 1;
    }
    // ln m = 2·atanh(t) = 2(t + t³/3 + t⁵/5 + t⁷/7 + t⁹/9 + …), t = (m − 1)/(m + 1),
    // |t| < 0.172; grouped (Estrin) to keep the dependency chain short.
    let t = (m - 1.0) / (m + 1.0);
    let t2 = t * t;
    let t4 = t2 * t2;
    let series =
        (2.0 + t2 * (2.0 / 3.0)) + t4 * ((2.0 / 5.0 + t2 * (2.0 / 7.0)) + t4 * (2.0 / 9.0));
    let log2_m = t * series * std::f32::consts::LOG2_E;
    // The integer part of p·log2 x is carried in f64 so that large exponents keep
    // the fractional part exact enough.
    let y = f64::from(p) * f64::from(exponent) + f64::from(p * log2_m);
    let y = y.clamp(-126.0, 126.0);
    // Nearest integer (halves up); the cast's argument is positive, so truncation
    // is a floor.
    let whole = (y + 126.5) as i32 - 126;
    // 2^frac = e^z with |z| ≤ ln2 / 2: Taylor series to z⁶.
    let z = (y - f64::from(whole)) as f32 * std::f32::consts::LN_2;
    let z2 = z * z;
    let z4 = z2 * z2;
    let e_z = (1.0 + z)
        + z2 * (0.5 + z * (1.0 / 6.0))
        + z4 * ((1.0 / 24.0 + z * (1.0 / 120.0)) + z2 * (1.0 / 720.0));
    e_z * f32::from_bits(((whole + 127) as u32) << 23)
}

/// `x^p` by [`fast_pow`] when `FAST`, else by `f32::powf`.
#[inline(always)]
fn pow_f32<const FAST: bool>(x: f32, p: f32) -> f32 {
    if FAST { fast_pow(x, p) } else { x.powf(p) }
}

impl Layout {
    pub(super) fn new(edges: Edges, emb: Vec<[f32; 2]>, a: f32, b: f32, fast_pow: bool) -> Self {
        let epochs_per_negative: Vec<f64> = edges
            .epochs_per_sample
            .iter()
            .map(|&e| e / NEGATIVE_SAMPLE_RATE)
            .collect();
        Self {
            next_sample: edges.epochs_per_sample.clone(),
            next_negative: epochs_per_negative.clone(),
            epochs_per_negative,
            edges,
            emb,
            a,
            b,
            epoch: 0,
            fast_pow,
        }
    }

    /// One epoch of umap-learn's `optimize_layout_euclidean` (single-threaded).
    pub(super) fn run_epoch(&mut self, n_epochs: usize, rng: &mut SplitMix64) {
        if self.fast_pow {
            self.epoch_with::<true>(n_epochs, rng);
        } else {
            self.epoch_with::<false>(n_epochs, rng);
        }
    }

    fn epoch_with<const FAST: bool>(&mut self, n_epochs: usize, rng: &mut SplitMix64) {
        self.epoch += 1;
        let now = self.epoch as f64;
        let alpha = LEARNING_RATE * (1.0 - (self.epoch - 1) as f32 / n_epochs.max(1) as f32);
        let (a, b) = (self.a, self.b);
        let n_vertices = self.emb.len();
        let edges = &self.edges;
        let schedule = edges
            .head
            .iter()
            .zip(&edges.tail)
            .zip(&edges.epochs_per_sample)
            .zip(self.next_sample.iter_mut())
            .zip(
                self.epochs_per_negative
                    .iter()
                    .zip(self.next_negative.iter_mut()),
            );
        for ((((&j, &k), &every), next), (&every_neg, next_neg)) in schedule {
            if *next > now {
                continue;
            }
            let (Some(&start), Some(&partner)) = (self.emb.get(j), self.emb.get(k)) else {
                continue;
            };
            let (mut cur, mut other) = (start, partner);
            // Attraction along the edge.
            let (dx, dy) = (cur[0] - other[0], cur[1] - other[1]);
            let d2 = dx * dx + dy * dy;
            if d2 > 0.0 {
                let pb = pow_f32::<FAST>(d2, b);
                let coeff = -2.0 * a * b * (pb / d2) / (a * pb + 1.0);
                if coeff.is_finite() {
                    let (gx, gy) = (clip(coeff * dx) * alpha, clip(coeff * dy) * alpha);
                    cur[0] += gx;
                    cur[1] += gy;
                    other[0] -= gx;
                    other[1] -= gy;
                }
            }
            if let Some(slot) = self.emb.get_mut(k) {
                *slot = other;
            }
            *next += every;
            // Repulsion from random points.
            let n_neg = ((now - *next_neg) / every_neg).max(0.0) as usize;
            for _ in 0..n_neg {
                let s = rng.below(n_vertices);
                if s == j {
                    continue;
                }
                let Some(&o) = self.emb.get(s) else {
                    continue;
                };
                let (dx, dy) = (cur[0] - o[0], cur[1] - o[1]);
                let d2 = dx * dx + dy * dy;
                if d2 > 0.0 {
                    let coeff = 2.0 * REPULSION_STRENGTH * b
                        / ((0.001 + d2) * (a * pow_f32::<FAST>(d2, b) + 1.0));
                    if coeff.is_finite() && coeff > 0.0 {
                        cur[0] += clip(coeff * dx) * alpha;
                        cur[1] += clip(coeff * dy) * alpha;
                    }
                }
            }
            if let Some(slot) = self.emb.get_mut(j) {
                *slot = cur;
            }
            *next_neg += n_neg as f64 * every_neg;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_pow_is_accurate() {
        for &p in &[0.5f32, 0.79, 0.8951, 1.0, 1.33, 2.0] {
            let mut x = 1e-20f32;
            while x < 1e20 {
                let (got, want) = (fast_pow(x, p), f64::from(x).powf(f64::from(p)));
                if (1e-37..1e37).contains(&want) {
                    let rel = ((f64::from(got) - want) / want).abs();
                    assert!(rel < 5e-7, "{x}^{p}: {got} vs {want}");
                } else {
                    // Saturates instead of reaching subnormals or infinity.
                    assert!(got.is_normal(), "{x}^{p}: {got}");
                }
                x *= 1.37;
            }
        }
        assert_eq!(fast_pow(1.0, 0.9), 1.0);
        assert!(fast_pow(0.0, 0.9) > 0.0 && fast_pow(0.0, 0.9).is_finite());
        assert!(fast_pow(f32::MAX, 2.0).is_finite());
    }
}
