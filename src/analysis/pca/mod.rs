//! Principal component analysis for the lab's PCA chapter.
//!
//! # What is computed
//!
//! For `n` samples of `d` features (images flattened channel-first, pixels in
//! `[0, 1]` exactly as the data pipeline feeds them), PCA centres the data with
//! the per-feature mean and finds the orthonormal directions of largest
//! variance. With the centred data `Xc = U S Vᵀ`, the components are the rows of
//! `Vᵀ`, the variance along component `i` is `S_i² / (n − 1)` and its share of
//! the total is that divided by the sum of the per-feature variances (also with
//! `n − 1`). These are scikit-learn's `PCA` conventions, including the sign of
//! each component (`svd_flip` with `u_based_decision=False`: the entry of
//! largest magnitude is positive).
//!
//! # Two solvers
//!
//! - [`fit`] is the randomized solver of Halko, Martinsson and Tropp (2011), as
//!   in scikit-learn's `svd_solver="randomized"`: a Gaussian sketch of the
//!   range, refined by power iterations that re-orthonormalise after every
//!   product, then an exact SVD of the small projected matrix. Every product
//!   with the data runs as a burn tensor on the given device (WebGPU in the
//!   browser), and results come back with asynchronous readback, so the browser
//!   never blocks.
//! - [`fit_exact`] takes the full SVD of the centred data on the host. It is
//!   the reference for checks on small data.
//!
//! Both use burn's `linalg` crate for the decompositions (its reference SVD,
//! run on the host in `f32`: see `host` for why not `f64`); nothing here
//! implements an eigensolver. burn-linalg's Householder `qr` is not used for
//! the tall blocks of the randomized solver: it forms a full `rows × rows`
//! factor (16 s for 3000 × 138 on two cores), so those blocks are
//! orthonormalised through their small Gram matrices instead (SVQB).
//!
//! On the first 3000 BloodMNIST training images (`tests/pca_fixture.rs`),
//! [`fit`] with scikit-learn's settings reproduces scikit-learn's exact
//! cumulative explained variance ratios for `k = 1..128` to within `1e-4`.
//!
//! [`principal_angles`] compares two subspaces (for example the components of
//! two fits), and [`pca_2d`] is the closed-form PCA of a 2-D point cloud for the
//! chapter's interactive demo.
//!
//! # Layout of the code
//!
//! - `randomized`: [`PcaConfig`], [`fit`] and [`fit_exact`];
//! - `host`: upload, readback, the host SVD, and orthonormalisation (of tall
//!   device matrices and of host row bases);
//! - `angles`: [`principal_angles`];
//! - `planar`: [`pca_2d`].

use thiserror::Error;

mod angles;
mod host;
mod planar;
mod randomized;
#[cfg(test)]
mod tests;

pub use angles::principal_angles;
pub use planar::{Pca2d, pca_2d};
pub use randomized::{PcaConfig, auto_power_iters, fit, fit_exact};

/// Why a PCA could not be computed.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum PcaError {
    /// A buffer does not have the length its shape implies.
    #[error("{what}: expected {expected} values ({shape}), found {found}")]
    ShapeMismatch {
        /// Which buffer.
        what: &'static str,
        /// The shape it was given, e.g. `3000 x 2352`.
        shape: String,
        /// Length the shape implies.
        expected: usize,
        /// Actual length.
        found: usize,
    },
    /// PCA needs at least two samples to measure a variance.
    #[error("PCA needs at least 2 samples, got {n}")]
    TooFewSamples {
        /// Samples given.
        n: usize,
    },
    /// The feature dimension is zero.
    #[error("the samples have no features (d = 0)")]
    NoFeatures,
    /// More components were asked for than the data can have.
    #[error(
        "{k} components asked for, but {n} samples of {d} features have at most {max} \
         (min(n - 1, d)); ask for between 1 and {max}"
    )]
    TooManyComponents {
        /// Components asked for.
        k: usize,
        /// Samples.
        n: usize,
        /// Features.
        d: usize,
        /// The largest valid `k`.
        max: usize,
    },
    /// Zero components were asked for.
    #[error("ask for at least one component")]
    NoComponents,
    /// A value is NaN or infinite.
    #[error("{what}: non-finite value {value} at row {row}, column {col}")]
    NonFinite {
        /// Which buffer.
        what: &'static str,
        /// Row of the bad value.
        row: usize,
        /// Column of the bad value.
        col: usize,
        /// The value itself.
        value: f64,
    },
    /// Every sample is the same, so there is no variance to explain.
    #[error("all {n} samples are identical: there is no variance to explain")]
    NoVariance {
        /// Samples given.
        n: usize,
    },
    /// A [`PcaConfig`] field is out of range.
    #[error("invalid PCA configuration: {0}")]
    InvalidConfig(String),
    /// The device failed (allocation, readback).
    #[error("device error: {0}")]
    Device(String),
    /// A numerical step produced a non-finite or degenerate result.
    #[error("numerical failure: {0}")]
    Numerical(String),
}

/// A fitted PCA: the mean, the first `k` components and their variances.
#[derive(Clone, Debug, PartialEq)]
pub struct Pca {
    /// Features per sample.
    pub d: usize,
    /// Samples the fit saw.
    pub n_samples: usize,
    /// Per-feature mean (`d`).
    pub mean: Vec<f32>,
    /// `k × d` row-major: orthonormal rows, by decreasing variance, each with its
    /// largest-magnitude entry positive.
    pub components: Vec<f32>,
    /// Variance of the data along each component (`S² / (n − 1)`).
    pub explained_variance: Vec<f64>,
    /// `explained_variance / total_variance`.
    pub explained_variance_ratio: Vec<f64>,
    /// Sum of the per-feature variances (with `n − 1`), computed exactly.
    pub total_variance: f64,
}

impl Pca {
    /// Number of components kept.
    pub fn k(&self) -> usize {
        self.explained_variance.len()
    }

    /// Running sum of [`Pca::explained_variance_ratio`]: entry `i` is the share of
    /// the variance the first `i + 1` components explain.
    pub fn cumulative(&self) -> Vec<f64> {
        self.explained_variance_ratio
            .iter()
            .scan(0.0, |acc, r| {
                *acc += r;
                Some(*acc)
            })
            .collect()
    }

    /// The first `k` components (`k × d`, clamped to [`Pca::k`]).
    pub fn components_for(&self, k: usize) -> &[f32] {
        let k = k.min(self.k());
        &self.components[..k * self.d]
    }

    /// Component `i` (`d` values), if it exists.
    pub fn component(&self, i: usize) -> Option<&[f32]> {
        self.components.get(i * self.d..(i + 1) * self.d)
    }

    /// Coordinates of `n` samples (`n × d`) along every component: `n × k`.
    /// Rows beyond what `x` holds are skipped.
    pub fn transform(&self, x: &[f32], n: usize) -> Vec<f32> {
        let k = self.k();
        let mut out = Vec::with_capacity(n * k);
        let mut centred = vec![0.0f32; self.d];
        for row in x.chunks_exact(self.d).take(n) {
            for ((c, &v), &m) in centred.iter_mut().zip(row).zip(&self.mean) {
                *c = v - m;
            }
            for comp in self.components.chunks_exact(self.d) {
                out.push(dot(&centred, comp));
            }
        }
        out
    }

    /// `n` samples (`n × d`) rebuilt from their first `k` components:
    /// `mean + Σ_{i<k} ((x − mean) · c_i) c_i`, `n × d`. With `k = 0` every row is
    /// the mean; `k` is clamped to [`Pca::k`]. Costs `2 n k d` multiply-adds
    /// (about 5 M for 8 RGB 28 × 28 images at `k = 128`), cheap enough for a
    /// slider.
    pub fn reconstruct(&self, x: &[f32], n: usize, k: usize) -> Vec<f32> {
        let comps = self.components_for(k);
        let mut out = Vec::with_capacity(n * self.d);
        let mut centred = vec![0.0f32; self.d];
        let mut rebuilt = vec![0.0f32; self.d];
        for row in x.chunks_exact(self.d).take(n) {
            for ((c, &v), &m) in centred.iter_mut().zip(row).zip(&self.mean) {
                *c = v - m;
            }
            rebuilt.copy_from_slice(&self.mean);
            for comp in comps.chunks_exact(self.d) {
                let coord = dot(&centred, comp);
                for (r, &c) in rebuilt.iter_mut().zip(comp) {
                    *r += coord * c;
                }
            }
            out.extend_from_slice(&rebuilt);
        }
        out
    }
}

/// Dot product accumulated in four lanes (vectorises, and is more accurate
/// than one running sum).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 4];
    let (a4, b4) = (a.chunks_exact(4), b.chunks_exact(4));
    let (ra, rb) = (a4.remainder(), b4.remainder());
    for (x, y) in a4.zip(b4) {
        for j in 0..4 {
            acc[j] += x[j] * y[j];
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// Checks that `x` holds `n` rows of `d` finite values.
fn check_matrix(what: &'static str, x: &[f32], n: usize, d: usize) -> Result<(), PcaError> {
    let expected = n.saturating_mul(d);
    if x.len() != expected {
        return Err(PcaError::ShapeMismatch {
            what,
            shape: format!("{n} x {d}"),
            expected,
            found: x.len(),
        });
    }
    if let Some(i) = x.iter().position(|v| !v.is_finite()) {
        return Err(PcaError::NonFinite {
            what,
            row: i / d.max(1),
            col: i % d.max(1),
            value: f64::from(x[i]),
        });
    }
    Ok(())
}

/// Checks the data and `k` against each other: `n ≥ 2`, `d ≥ 1`,
/// `1 ≤ k ≤ min(n − 1, d)`, all values finite.
fn check_fit_input(x: &[f32], n: usize, d: usize, k: usize) -> Result<(), PcaError> {
    if n < 2 {
        return Err(PcaError::TooFewSamples { n });
    }
    if d == 0 {
        return Err(PcaError::NoFeatures);
    }
    check_matrix("data", x, n, d)?;
    let max = (n - 1).min(d);
    if k == 0 {
        return Err(PcaError::NoComponents);
    }
    if k > max {
        return Err(PcaError::TooManyComponents { k, n, d, max });
    }
    Ok(())
}

/// Per-feature mean (accumulated in `f64`) and the exact total variance
/// `Σ_j Σ_i (x_ij − mean_j)² / (n − 1)`.
fn mean_and_total_variance(x: &[f32], n: usize, d: usize) -> (Vec<f64>, f64) {
    let mut mean = vec![0.0f64; d];
    for row in x.chunks_exact(d) {
        for (m, &v) in mean.iter_mut().zip(row) {
            *m += f64::from(v);
        }
    }
    for m in &mut mean {
        *m /= n as f64;
    }
    let mut ss = vec![0.0f64; d];
    for row in x.chunks_exact(d) {
        for ((s, &v), &m) in ss.iter_mut().zip(row).zip(&mean) {
            let c = f64::from(v) - m;
            *s += c * c;
        }
    }
    let total = ss.iter().sum::<f64>() / (n - 1) as f64;
    (mean, total)
}

/// Flip each `d`-long row so that its entry of largest magnitude is positive
/// (the first such entry on ties), as scikit-learn's `svd_flip` does for PCA.
fn flip_signs(rows: &mut [f64], d: usize) {
    for row in rows.chunks_exact_mut(d) {
        let mut best = 0usize;
        for (j, v) in row.iter().enumerate() {
            if v.abs() > row[best].abs() {
                best = j;
            }
        }
        if row[best] < 0.0 {
            for v in row.iter_mut() {
                *v = -*v;
            }
        }
    }
}

/// Assemble a [`Pca`] from the top `k` singular values and right singular
/// vectors (`k × d`, `f64`) of the centred data.
fn assemble(
    n: usize,
    d: usize,
    mean: &[f64],
    total_variance: f64,
    singular: &[f64],
    mut vt: Vec<f64>,
    k: usize,
) -> Pca {
    vt.truncate(k * d);
    flip_signs(&mut vt, d);
    let explained_variance: Vec<f64> = singular
        .iter()
        .take(k)
        .map(|s| s * s / (n - 1) as f64)
        .collect();
    let explained_variance_ratio = explained_variance
        .iter()
        .map(|v| v / total_variance)
        .collect();
    Pca {
        d,
        n_samples: n,
        mean: mean.iter().map(|&m| m as f32).collect(),
        components: vt.iter().map(|&v| v as f32).collect(),
        explained_variance,
        explained_variance_ratio,
        total_variance,
    }
}
