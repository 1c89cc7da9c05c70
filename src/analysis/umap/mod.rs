//! UMAP projection of learned features to 2-D, with an exact cosine kNN graph.
//!
//! This is a from-scratch implementation of the algorithm of McInnes, Healy and
//! Melville (2018, arXiv:1802.03426), following the reference `umap-learn` code for
//! the numerical details:
//!
//! 1. exact k nearest neighbours by cosine distance (brute force over unit-length
//!    rows, tiled so that each pair is computed once and stays in cache);
//! 2. the fuzzy simplicial set: per point, `rho` (distance to the nearest distinct
//!    neighbour) and `sigma` (found by bisection so that the memberships sum to
//!    `log2(k)`), then the fuzzy union `a + b - a·b` to make the graph symmetric;
//! 3. a PCA initialisation (block power iteration on the centred unit rows),
//!    scaled to ±10 with a tiny seeded jitter;
//! 4. stochastic gradient descent on the cross-entropy between the graph and the
//!    low-dimensional curve `1 / (1 + a·d^(2b))`, with edge sampling proportional to
//!    membership, 5 negative samples per positive one, gradient clipping at ±4 and a
//!    linearly decaying learning rate. `a` and `b` are fitted to `min_dist` and
//!    `spread` by Levenberg–Marquardt, as `umap-learn` does with `curve_fit`.
//!
//! # Why not the `umap-rs` crate
//!
//! The brief suggested `umap-rs` (v0.4.5, BSD-3-Clause, the maintained UMAP crate
//! that takes a precomputed kNN graph). It was built and measured, and rejected:
//!
//! - **Not deterministic.** Its SGD draws negative samples from `rand::rng()` (the
//!   thread-local, OS-seeded generator) and has no seed parameter; it also runs SGD
//!   "Hogwild" over rayon with unsynchronised writes through raw pointers. Two runs
//!   on identical input gave different layouts. We need "same seed, same picture".
//! - **Traps in the browser.** It times every phase with `std::time::Instant::now()`,
//!   which panics on `wasm32-unknown-unknown`: a wasm build of its `fit` ends in an
//!   `unreachable` trap under node, exactly like a bare `Instant::now()`. (It only
//!   compiles for wasm because replab's `.cargo/config.toml` sets
//!   `getrandom_backend="wasm_js"`; without it `getrandom 0.3` refuses to build.)
//! - **Panics on bad input by design** (its README: "No input validation",
//!   "Panics on invalid input"); with `panic = "abort"` in wasm, `catch_unwind`
//!   could not contain those.
//! - **Poor layouts in our measurement.** Three Gaussian blobs, n = 2400, d = 32,
//!   exact cosine kNN with k = 15, 500 epochs, uniform random init: the share of
//!   2-D 10-nearest neighbours with the same label was 0.53–0.56 for umap-rs
//!   (0.67–0.68 when started from two data columns) and 1.00 for this module, with
//!   the same kind of random init as well as with its PCA init.
//! - **Weight and blocking.** 64 crates in its normal dependency tree (ndarray,
//!   sprs, dashmap, rayon, indicatif, itertools, typed-builder, tracing, rand, …),
//!   and graph construction is one blocking call (only epochs can be chunked).
//!
//! Other crates were not better fits: `fast-umap` is a parametric (neural) UMAP on
//! burn/GPU whose CPU path is umap-rs itself, and `annembed` brings HNSW and LAPACK
//! bindings.
//!
//! This module depends on nothing but `thiserror`, is single-threaded by design
//! (the browser build has no threads), is bit-for-bit reproducible for a given seed
//! on a given platform, and can be advanced in small slices of work
//! ([`UmapRun::step`], including the kNN search) so the page can yield between
//! them. The optimiser's power function is chosen by [`UmapConfig::fast_pow`], not
//! by the target, so the browser and the command line run the same algorithm for
//! the same configuration. Their layouts are still not bitwise equal: the kNN lists
//! and the curve fit agree to the bit, but the `f64` `exp` and `log2` behind the
//! graph memberships come from different maths libraries (glibc natively, a port
//! of musl's in wasm), and SGD amplifies those last-bit differences.
//!
//! Timings (release, on a shared and busy 2-core machine, so read them as rough):
//!
//! | n × d        | kNN graph | whole run, native | whole run, wasm in node |
//! |--------------|-----------|-------------------|-------------------------|
//! | 2400 × 128   | ~0.1 s    | ~1.6 s            | ~2.5–3.4 s (kNN 0.3 s)  |
//! | 3300 × 1152  | ~1.1 s    | ~3.3 s            | ~7–9 s (kNN 3.9 s)      |
//!
//! The wasm kNN is scalar; building with `-C target-feature=+simd128` roughly
//! halves it (0.16 s and 2.1 s). `step(10)` slices took at most ~50 ms natively.
//!
//! # Cosine distance and zero rows
//!
//! The distance is `1 - cos(x, y)`, clamped to `[0, 2]`. A row whose entries are
//! all zero has no direction; it is defined to be at distance exactly 1 from every
//! other row (zero rows included), which is what a dot product with the zero vector
//! gives. Ties are broken by the lower index, so neighbour lists are deterministic.
//!
//! # Layout of the code
//!
//! - `knn`: row normalisation, dot-product kernels and the tiled exact search;
//! - `fuzzy`: `rho`/`sigma` per point and the fuzzy union into an edge list;
//! - `curve`: the Levenberg–Marquardt fit of the curve parameters `a`, `b`;
//! - `pca`: the power-iteration initialisation;
//! - `layout`: the SGD epochs and the fast power function;
//! - `run`: [`UmapRun`], which drives the phases in slices;
//! - `error`: [`UmapError`] and the input checks.

use std::collections::BTreeMap;

mod curve;
mod error;
mod fuzzy;
mod knn;
mod layout;
mod pca;
mod rng;
mod run;
#[cfg(test)]
mod test_support;

pub use error::UmapError;
pub use knn::{Knn, knn_cosine};
pub use run::{UmapPhase, UmapRun};

use rng::SplitMix64;

/// The largest `n_epochs` accepted; far beyond any useful value, it only guards
/// against absurd requests.
pub const MAX_EPOCHS: usize = 100_000;
/// The largest neighbourhood accepted (umap-learn users rarely go past 200). It
/// bounds the memory of the neighbour lists, which grow as `n × k`.
pub const MAX_NEIGHBOURS: usize = 1_000;
/// Smallest accepted `spread`. Outside `[MIN_SPREAD, MAX_SPREAD]` the fitted curve
/// parameter `a` leaves the range where `f32` arithmetic in the optimiser is safe.
pub const MIN_SPREAD: f32 = 0.01;
/// Largest accepted `spread`.
pub const MAX_SPREAD: f32 = 100.0;

/// Settings for [`umap_2d`] and [`UmapRun`]. Field meanings match `umap-learn`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct UmapConfig {
    /// Neighbours per point in the kNN graph, the point itself not counted
    /// (umap-learn counts it, so its `n_neighbors = 16` matches 15 here). Larger
    /// values favour global structure. Default 15; accepted range 2 to
    /// [`MAX_NEIGHBOURS`], and there must be more points than this.
    pub n_neighbors: usize,
    /// How tightly points may pack in the layout, in `[0, spread]`. Default 0.1.
    pub min_dist: f32,
    /// Scale of the layout, in `[MIN_SPREAD, MAX_SPREAD]`. Default 1.0.
    pub spread: f32,
    /// SGD epochs; `None` picks 500 for up to 10 000 points, else 200.
    pub n_epochs: Option<usize>,
    /// Seed for the initialisation jitter and negative sampling.
    pub seed: u64,
    /// Whether the layout optimiser raises distances to the power `b` with a
    /// portable polynomial approximation (`true`, relative error below 5e-7)
    /// instead of the platform's `f32::powf` (`false`).
    ///
    /// In wasm `f32::powf` is a software routine costing about 50–75 ns a call and
    /// the approximation about 15–25 ns, which matters because the layout loop
    /// spends much of its time there. Natively the system `powf` is the quicker
    /// one (about 6 ns against 14), so `false` speeds up native runs a little.
    /// Both give equally good layouts but not the same bits, so use one value
    /// wherever layouts are compared, e.g. between the browser and the command
    /// line. The choice does not depend on the target. Default `true`.
    pub fast_pow: bool,
}

impl Default for UmapConfig {
    fn default() -> Self {
        Self {
            n_neighbors: 15,
            min_dist: 0.1,
            spread: 1.0,
            n_epochs: None,
            seed: 0,
            fast_pow: true,
        }
    }
}

/// Projects `n × d` features to 2-D with UMAP under the cosine metric.
///
/// Equivalent to running a [`UmapRun`] to completion in one call.
pub fn umap_2d(
    features: &[f32],
    n: usize,
    d: usize,
    cfg: &UmapConfig,
) -> Result<Vec<[f32; 2]>, UmapError> {
    let mut run = UmapRun::new(features, n, d, cfg)?;
    while !run.step(usize::MAX) {}
    Ok(run.into_embedding())
}

/// Picks up to `per_class` indices of each distinct label, reproducibly from
/// `seed`. The result is grouped by ascending label and, within a label, sorted by
/// index. Each label's choice depends only on the seed, the label and which indices
/// carry it, so adding another class does not change the others' samples.
pub fn sample_per_class(labels: &[usize], per_class: usize, seed: u64) -> Vec<usize> {
    let mut by_class: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, &label) in labels.iter().enumerate() {
        by_class.entry(label).or_default().push(i);
    }
    let mut out = Vec::with_capacity(by_class.len().saturating_mul(per_class).min(labels.len()));
    for (label, mut members) in by_class {
        if members.len() > per_class {
            let mut rng =
                SplitMix64::new(seed ^ (label as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93));
            // Partial Fisher–Yates: the first `per_class` slots become a uniform sample.
            for t in 0..per_class {
                let pick = t + rng.below(members.len() - t);
                members.swap(t, pick);
            }
            members.truncate(per_class);
            members.sort_unstable();
        }
        out.extend(members);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_per_class() {
        let labels = [2, 0, 2, 1, 0, 2, 2, 7, 0, 2];
        let s = sample_per_class(&labels, 2, 42);
        assert_eq!(s.len(), 2 + 1 + 2 + 1);
        let classes: Vec<usize> = s.iter().map(|&i| labels[i]).collect();
        assert_eq!(classes, vec![0, 0, 1, 2, 2, 7]);
        assert!(s[0] < s[1] && s[3] < s[4]);
        assert_eq!(s, sample_per_class(&labels, 2, 42));
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..50 {
            seen.insert(sample_per_class(&labels, 2, seed));
        }
        assert!(seen.len() > 3, "seed should change the sample");
        assert_eq!(sample_per_class(&labels, 100, 1), {
            let mut all: Vec<usize> = (0..labels.len()).collect();
            all.sort_by_key(|&i| (labels[i], i));
            all
        });
        assert!(sample_per_class(&labels, 0, 1).is_empty());
        assert!(sample_per_class(&[], 3, 1).is_empty());
    }
}
