//! The PCA initialisation of the layout (block power iteration).

use super::knn::dot;
use super::rng::SplitMix64;

/// Upper bound on power iterations for the PCA initialisation.
pub(super) const PCA_MAX_ITERS: usize = 50;
/// The PCA subspace is considered converged when both basis vectors move less than
/// this (as `1 - |cos|` between successive iterates).
const PCA_TOLERANCE: f64 = 1e-6;
/// The initial layout is scaled so that its largest coordinate is this.
const INIT_SCALE: f32 = 10.0;
/// Size of the jitter added to the initial layout (breaks ties between duplicates).
const INIT_JITTER: f32 = 1e-4;

pub(super) fn pca_iter_macs(n: usize, d: usize) -> u64 {
    (n as u64).saturating_mul(d as u64).saturating_mul(4)
}

/// Block power iteration for the top two principal directions of the centred
/// unit rows. One iteration is a single pass over the rows.
#[derive(Clone, Debug)]
pub(super) struct Pca {
    n: usize,
    d: usize,
    unit: Vec<f32>,
    mean: Vec<f32>,
    basis: [Vec<f32>; 2],
    pub(super) iters: usize,
    converged: bool,
    /// The data has no spread at all (every row the same direction, or all zero).
    degenerate: bool,
}

impl Pca {
    pub(super) fn new(unit: Vec<f32>, n: usize, d: usize, rng: &mut SplitMix64) -> Self {
        let mut mean = vec![0.0f64; d];
        for row in unit.chunks_exact(d) {
            for (m, &v) in mean.iter_mut().zip(row) {
                *m += f64::from(v);
            }
        }
        let inv_n = 1.0 / n.max(1) as f64;
        let mean = mean.iter().map(|&m| (m * inv_n) as f32).collect();
        let mut basis = [
            (0..d).map(|_| rng.symmetric()).collect::<Vec<f32>>(),
            (0..d).map(|_| rng.symmetric()).collect::<Vec<f32>>(),
        ];
        let degenerate = !orthonormalise(&mut basis, rng);
        Self {
            n,
            d,
            unit,
            mean,
            basis,
            iters: 0,
            converged: false,
            degenerate,
        }
    }

    pub(super) fn is_done(&self) -> bool {
        self.converged || self.degenerate || self.iters >= PCA_MAX_ITERS
    }

    /// One multiplication by the covariance, then re-orthonormalisation.
    pub(super) fn iterate(&mut self) -> u64 {
        let d = self.d;
        let [v0, v1] = &self.basis;
        let (m0, m1) = (dot(&self.mean, v0), dot(&self.mean, v1));
        let mut w = [vec![0.0f32; d], vec![0.0f32; d]];
        let (mut s0, mut s1) = (0.0f64, 0.0f64);
        for row in self.unit.chunks_exact(d) {
            let p0 = dot(row, v0) - m0;
            let p1 = dot(row, v1) - m1;
            s0 += f64::from(p0);
            s1 += f64::from(p1);
            let [w0, w1] = &mut w;
            for ((a, b), &x) in w0.iter_mut().zip(w1.iter_mut()).zip(row) {
                *a += p0 * x;
                *b += p1 * x;
            }
        }
        // Subtract the mean's share: Yᵀp = Xᵀp − mean·Σp.
        let [w0, w1] = &mut w;
        for ((a, b), &m) in w0.iter_mut().zip(w1.iter_mut()).zip(&self.mean) {
            *a -= m * s0 as f32;
            *b -= m * s1 as f32;
        }
        let mut spare = SplitMix64::new(self.iters as u64 ^ 0xA076_1D64_78BD_642F);
        if !orthonormalise(&mut w, &mut spare) {
            self.degenerate = true;
        } else {
            let change = |old: &[f32], new: &[f32]| 1.0 - f64::from(dot(old, new)).abs();
            self.converged = change(&self.basis[0], &w[0]) < PCA_TOLERANCE
                && change(&self.basis[1], &w[1]) < PCA_TOLERANCE;
            self.basis = w;
        }
        self.iters += 1;
        pca_iter_macs(self.n, self.d)
    }

    /// Projects onto the two directions, scales to ±[`INIT_SCALE`] and adds jitter.
    /// Falls back to a uniform random layout when the data has no spread, and
    /// fills an axis randomly when it carries no spread of its own.
    pub(super) fn embedding(&self, rng: &mut SplitMix64) -> Vec<[f32; 2]> {
        let mut emb: Vec<[f32; 2]> = if self.degenerate {
            vec![[0.0; 2]; self.n]
        } else {
            let [v0, v1] = &self.basis;
            let (m0, m1) = (dot(&self.mean, v0), dot(&self.mean, v1));
            self.unit
                .chunks_exact(self.d)
                .map(|row| [dot(row, v0) - m0, dot(row, v1) - m1])
                .collect()
        };
        let max_abs = |axis: usize, e: &[[f32; 2]]| {
            e.iter()
                .map(|p| p.get(axis).map_or(0.0, |v| v.abs()))
                .fold(0.0f32, f32::max)
        };
        let (r0, r1) = (max_abs(0, &emb), max_abs(1, &emb));
        let overall = r0.max(r1);
        let scale = if overall > 0.0 {
            INIT_SCALE / overall
        } else {
            0.0
        };
        let random0 = r0 <= overall * 1e-4 || overall == 0.0;
        let random1 = r1 <= overall * 1e-4 || overall == 0.0;
        for p in &mut emb {
            for (axis, random) in [(0, random0), (1, random1)] {
                if let Some(v) = p.get_mut(axis) {
                    *v = if random {
                        rng.symmetric() * INIT_SCALE
                    } else {
                        *v * scale + rng.symmetric() * INIT_JITTER
                    };
                }
            }
        }
        emb
    }
}

/// Gram–Schmidt on two vectors. A vector that vanishes is replaced by a random one
/// (from `rng`), which matters for rank-one data. Returns `false` if the first one
/// vanished, meaning the operator has no range at all.
fn orthonormalise(v: &mut [Vec<f32>; 2], rng: &mut SplitMix64) -> bool {
    const TINY: f64 = 1e-12;
    let [v0, v1] = v;
    let norm0 = f64::from(dot(v0, v0)).sqrt();
    if !(norm0 > TINY && norm0.is_finite()) {
        return false;
    }
    let inv0 = (1.0 / norm0) as f32;
    v0.iter_mut().for_each(|x| *x *= inv0);
    for attempt in 0..2 {
        let proj = dot(v1, v0);
        for (x, &y) in v1.iter_mut().zip(v0.iter()) {
            *x -= proj * y;
        }
        let norm1 = f64::from(dot(v1, v1)).sqrt();
        if norm1 > TINY && norm1.is_finite() {
            let inv1 = (1.0 / norm1) as f32;
            v1.iter_mut().for_each(|x| *x *= inv1);
            return true;
        }
        if attempt == 0 {
            v1.iter_mut().for_each(|x| *x = rng.symmetric());
        }
    }
    // One-dimensional features: no second direction exists. Leave it zero; the
    // embedding step then fills that axis randomly.
    v1.iter_mut().for_each(|x| *x = 0.0);
    true
}
