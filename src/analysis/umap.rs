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
//! them. Native and wasm results for one seed are both valid but not bitwise equal:
//! their maths libraries differ, and wasm uses a faster power function
//! (`fast_pow`).
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

use std::collections::BTreeMap;

use thiserror::Error;

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

/// Negative samples drawn per positive edge sample.
const NEGATIVE_SAMPLE_RATE: f64 = 5.0;
/// Initial SGD learning rate (`alpha` in umap-learn).
const LEARNING_RATE: f32 = 1.0;
/// Weight of the repulsive term (`gamma`).
const REPULSION_STRENGTH: f32 = 1.0;
/// Gradient components are clipped to this magnitude.
const GRAD_CLIP: f32 = 4.0;
/// Rows per tile in the kNN search.
const TILE: usize = 32;
/// One unit of work for [`UmapRun::step`], in multiply-adds; a layout epoch counts
/// as one unit.
const UNIT_MACS: u64 = 1 << 22;
/// Upper bound on power iterations for the PCA initialisation.
const PCA_MAX_ITERS: usize = 50;
/// The PCA subspace is considered converged when both basis vectors move less than
/// this (as `1 - |cos|` between successive iterates).
const PCA_TOLERANCE: f64 = 1e-6;
/// The initial layout is scaled so that its largest coordinate is this.
const INIT_SCALE: f32 = 10.0;
/// Size of the jitter added to the initial layout (breaks ties between duplicates).
const INIT_JITTER: f32 = 1e-4;

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
}

impl Default for UmapConfig {
    fn default() -> Self {
        Self {
            n_neighbors: 15,
            min_dist: 0.1,
            spread: 1.0,
            n_epochs: None,
            seed: 0,
        }
    }
}

/// Everything that can be wrong with the inputs. All checks run before any work.
#[derive(Clone, Debug, Error, PartialEq)]
pub enum UmapError {
    /// Not enough points for the requested neighbourhood size.
    #[error(
        "{k} neighbours per point need at least {needed} points (each point plus {k} others), but got {n}"
    )]
    TooFewPoints {
        /// Points supplied.
        n: usize,
        /// Points required.
        needed: usize,
        /// Neighbours requested.
        k: usize,
    },
    /// The neighbourhood size is outside `[min, MAX_NEIGHBOURS]`.
    #[error("the number of neighbours must be between {min} and {MAX_NEIGHBOURS}, got {k}")]
    InvalidNeighbours {
        /// Neighbours requested.
        k: usize,
        /// Smallest accepted value (2 for UMAP, 1 for a plain kNN search).
        min: usize,
    },
    /// `n × k` neighbour entries would not fit in memory on this platform.
    #[error("{n} points × {k} neighbours is too large to address on this platform")]
    TooManyEntries {
        /// Points supplied.
        n: usize,
        /// Neighbours requested.
        k: usize,
    },
    /// The feature dimension is zero.
    #[error("the feature dimension d must be at least 1, got 0")]
    ZeroDimension,
    /// `n × d` does not fit in `usize`.
    #[error("n × d = {n} × {d} overflows")]
    ShapeOverflow {
        /// Points claimed.
        n: usize,
        /// Dimension claimed.
        d: usize,
    },
    /// The feature slice length disagrees with `n × d`.
    #[error("features has {len} values but n × d = {n} × {d} = {expected}")]
    ShapeMismatch {
        /// Length of the slice.
        len: usize,
        /// Points claimed.
        n: usize,
        /// Dimension claimed.
        d: usize,
        /// `n × d`.
        expected: usize,
    },
    /// A feature is NaN or infinite.
    #[error("feature at row {row}, column {col} is not finite ({value})")]
    NonFinite {
        /// Row (point) of the bad value.
        row: usize,
        /// Column (dimension) of the bad value.
        col: usize,
        /// The value itself.
        value: f32,
    },
    /// `spread` is not finite or outside the supported range.
    #[error("spread must be a finite number in [{MIN_SPREAD}, {MAX_SPREAD}], got {0}")]
    InvalidSpread(f32),
    /// `min_dist` is not in `[0, spread]`.
    #[error("min_dist must lie in [0, spread] = [0, {spread}], got {min_dist}")]
    InvalidMinDist {
        /// The value given.
        min_dist: f32,
        /// The spread it was checked against.
        spread: f32,
    },
    /// `n_epochs` is zero or absurdly large.
    #[error("n_epochs must be between 1 and {MAX_EPOCHS}, got {0}")]
    InvalidEpochs(usize),
    /// The curve fit for `a`, `b` did not give usable numbers.
    #[error("could not fit the layout curve for min_dist = {min_dist}, spread = {spread}")]
    CurveFit {
        /// The value given.
        min_dist: f32,
        /// The value given.
        spread: f32,
    },
}

/// Exact k-nearest-neighbour lists, row-major: row `i` holds the `k` neighbours of
/// point `i` (never `i` itself), nearest first, ties by lower index.
#[derive(Clone, Debug, PartialEq)]
pub struct Knn {
    n: usize,
    k: usize,
    indices: Vec<usize>,
    distances: Vec<f32>,
}

impl Knn {
    /// Number of points.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Neighbours per point.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Neighbour indices of point `i`, nearest first (empty if `i` is out of range).
    pub fn indices(&self, i: usize) -> &[usize] {
        self.row(&self.indices, i)
    }

    /// Cosine distances of point `i` to its neighbours, ascending (empty if `i` is
    /// out of range).
    pub fn distances(&self, i: usize) -> &[f32] {
        self.row(&self.distances, i)
    }

    /// All neighbour indices, `n × k`, row-major.
    pub fn all_indices(&self) -> &[usize] {
        &self.indices
    }

    /// All distances, `n × k`, row-major.
    pub fn all_distances(&self) -> &[f32] {
        &self.distances
    }

    fn row<'a, T>(&self, data: &'a [T], i: usize) -> &'a [T] {
        let start = i.saturating_mul(self.k);
        data.get(start..start.saturating_add(self.k)).unwrap_or(&[])
    }
}

/// Exact kNN by cosine distance, excluding each point itself.
///
/// `features` is `n × d`, row-major. Zero rows are at distance 1 from everything.
/// Runs in one go; [`UmapRun`] performs the same search in slices.
pub fn knn_cosine(features: &[f32], n: usize, d: usize, k: usize) -> Result<Knn, UmapError> {
    validate_features(features, n, d)?;
    validate_neighbours(n, k, 1)?;
    let mut search = KnnSearch::new(normalise_rows(features, d), n, d, k);
    while !search.is_done() {
        search.step_tile();
    }
    Ok(search.finish().0)
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

/// Which part of the pipeline a [`UmapRun`] is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UmapPhase {
    /// Exact kNN search.
    Neighbours,
    /// PCA initialisation of the layout.
    Init,
    /// SGD epochs.
    Layout,
    /// Finished; the embedding is final.
    Done,
}

/// A UMAP computation that advances in slices, so a single-threaded caller (the
/// browser) can yield between them and show progress.
///
/// ```ignore
/// let mut run = UmapRun::new(&features, n, d, &UmapConfig::default())?;
/// while !run.step(20) {
///     show_progress(run.progress());
///     yield_to_event_loop().await;
/// }
/// let points = run.into_embedding();
/// ```
///
/// The result does not depend on how the work is sliced.
#[derive(Clone, Debug)]
pub struct UmapRun {
    n: usize,
    d: usize,
    a: f32,
    b: f32,
    n_epochs: usize,
    rng: SplitMix64,
    search: Option<KnnSearch>,
    knn: Option<Knn>,
    pca: Option<Pca>,
    edges: Option<Edges>,
    layout: Option<Layout>,
    work_done: u64,
    work_total: u64,
    fast_pow: bool,
}

impl UmapRun {
    /// Checks every input and prepares the run. This only validates and normalises
    /// the rows (linear in the input size); the expensive work happens in
    /// [`step`](Self::step).
    pub fn new(features: &[f32], n: usize, d: usize, cfg: &UmapConfig) -> Result<Self, UmapError> {
        validate_config(cfg)?;
        validate_features(features, n, d)?;
        validate_neighbours(n, cfg.n_neighbors, 2)?;
        let (a, b) = fit_ab(cfg.spread, cfg.min_dist)?;
        let n_epochs = cfg.n_epochs.unwrap_or(if n <= 10_000 { 500 } else { 200 });
        let search = KnnSearch::new(normalise_rows(features, d), n, d, cfg.n_neighbors);
        let work_total = search
            .total_macs()
            .saturating_add(UNIT_MACS)
            .saturating_add(pca_iter_macs(n, d).saturating_mul(PCA_MAX_ITERS as u64))
            .saturating_add(UNIT_MACS.saturating_mul(n_epochs as u64));
        Ok(Self {
            n,
            d,
            a,
            b,
            n_epochs,
            rng: SplitMix64::new(cfg.seed),
            search: Some(search),
            knn: None,
            pca: None,
            edges: None,
            layout: None,
            work_done: 0,
            work_total,
            fast_pow: cfg!(target_arch = "wasm32"),
        })
    }

    /// Does about `units` units of work and reports whether the run is finished.
    ///
    /// One unit is one SGD epoch, or, before the layout starts, about 4 million
    /// multiply-adds of kNN or PCA work (roughly the cost of an epoch on a few
    /// thousand points). At least one indivisible piece is done when `units > 0`;
    /// `step(usize::MAX)` runs to the end.
    pub fn step(&mut self, units: usize) -> bool {
        let budget = (units as u64).saturating_mul(UNIT_MACS);
        let mut spent = 0u64;
        while spent < budget && !self.is_done() {
            let cost = self.advance().max(1);
            spent = spent.saturating_add(cost);
            self.work_done = self.work_done.saturating_add(cost);
        }
        self.is_done()
    }

    /// Fraction of the estimated total work done, in `[0, 1]`; exactly 1 when done.
    pub fn progress(&self) -> f32 {
        if self.is_done() {
            1.0
        } else if self.work_total == 0 {
            0.0
        } else {
            (self.work_done as f64 / self.work_total as f64).min(0.999) as f32
        }
    }

    /// The current phase.
    pub fn phase(&self) -> UmapPhase {
        if self.search.is_some() {
            UmapPhase::Neighbours
        } else if self.pca.is_some() {
            UmapPhase::Init
        } else if self.is_done() {
            UmapPhase::Done
        } else {
            UmapPhase::Layout
        }
    }

    /// Whether all epochs have run.
    pub fn is_done(&self) -> bool {
        self.layout
            .as_ref()
            .is_some_and(|layout| layout.epoch >= self.n_epochs)
    }

    /// The layout so far, one `[x, y]` per input row: empty until the
    /// initialisation has finished, then updated by every epoch.
    pub fn embedding(&self) -> &[[f32; 2]] {
        self.layout.as_ref().map_or(&[], |layout| &layout.emb)
    }

    /// Consumes the run and returns the layout (empty if it never got that far).
    pub fn into_embedding(self) -> Vec<[f32; 2]> {
        self.layout.map(|layout| layout.emb).unwrap_or_default()
    }

    /// The kNN graph, once the search has finished.
    pub fn knn(&self) -> Option<&Knn> {
        self.knn.as_ref()
    }

    /// Epochs completed so far.
    pub fn epoch(&self) -> usize {
        self.layout.as_ref().map_or(0, |layout| layout.epoch)
    }

    /// Total epochs this run will perform.
    pub fn n_epochs(&self) -> usize {
        self.n_epochs
    }

    /// Performs one indivisible piece of work and returns its cost in multiply-adds.
    fn advance(&mut self) -> u64 {
        if let Some(search) = self.search.as_mut() {
            if !search.is_done() {
                return search.step_tile();
            }
            if let Some(search) = self.search.take() {
                let (knn, unit) = search.finish();
                self.edges = Some(fuzzy_edges(&knn, self.n_epochs));
                self.pca = Some(Pca::new(unit, self.n, self.d, &mut self.rng));
                self.knn = Some(knn);
            }
            return UNIT_MACS;
        }
        if let Some(pca) = self.pca.as_mut() {
            if !pca.is_done() {
                return pca.iterate();
            }
            let unused = pca_iter_macs(self.n, self.d)
                .saturating_mul(PCA_MAX_ITERS.saturating_sub(pca.iters) as u64);
            self.work_total = self.work_total.saturating_sub(unused);
            if let Some(pca) = self.pca.take() {
                let emb = pca.embedding(&mut self.rng);
                let edges = self.edges.take().unwrap_or_default();
                self.layout = Some(Layout::new(edges, emb, self.a, self.b, self.fast_pow));
            }
            return 1;
        }
        if let Some(layout) = self.layout.as_mut()
            && layout.epoch < self.n_epochs
        {
            layout.run_epoch(self.n_epochs, &mut self.rng);
        }
        UNIT_MACS
    }
}

// ---------------------------------------------------------------------------
// Validation

fn validate_config(cfg: &UmapConfig) -> Result<(), UmapError> {
    if !(cfg.spread.is_finite() && (MIN_SPREAD..=MAX_SPREAD).contains(&cfg.spread)) {
        return Err(UmapError::InvalidSpread(cfg.spread));
    }
    if !(cfg.min_dist.is_finite() && (0.0..=cfg.spread).contains(&cfg.min_dist)) {
        return Err(UmapError::InvalidMinDist {
            min_dist: cfg.min_dist,
            spread: cfg.spread,
        });
    }
    if let Some(epochs) = cfg.n_epochs
        && !(1..=MAX_EPOCHS).contains(&epochs)
    {
        return Err(UmapError::InvalidEpochs(epochs));
    }
    Ok(())
}

fn validate_features(features: &[f32], n: usize, d: usize) -> Result<(), UmapError> {
    if d == 0 {
        return Err(UmapError::ZeroDimension);
    }
    let expected = n.checked_mul(d).ok_or(UmapError::ShapeOverflow { n, d })?;
    if features.len() != expected {
        return Err(UmapError::ShapeMismatch {
            len: features.len(),
            n,
            d,
            expected,
        });
    }
    if let Some(pos) = features.iter().position(|v| !v.is_finite()) {
        return Err(UmapError::NonFinite {
            row: pos / d,
            col: pos % d,
            value: features.get(pos).copied().unwrap_or(f32::NAN),
        });
    }
    Ok(())
}

fn validate_neighbours(n: usize, k: usize, min: usize) -> Result<(), UmapError> {
    if !(min..=MAX_NEIGHBOURS).contains(&k) {
        return Err(UmapError::InvalidNeighbours { k, min });
    }
    if n <= k {
        return Err(UmapError::TooFewPoints {
            n,
            needed: k.saturating_add(1),
            k,
        });
    }
    // The graph stage briefly holds 2·n·k entries of up to 24 bytes; make sure every
    // size derived from n·k is representable (this matters on 32-bit wasm).
    if n.checked_mul(k).and_then(|nk| nk.checked_mul(64)).is_none() {
        return Err(UmapError::TooManyEntries { n, k });
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Small deterministic PRNG

/// SplitMix64 (Steele, Lea & Flood 2014): tiny, fast, and good enough for sampling.
#[derive(Clone, Debug)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform integer in `0..n` (0 when `n == 0`), by multiply-and-shift.
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// Uniform in `[-1, 1)`.
    fn symmetric(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32) * (2.0 / (1u64 << 24) as f32) - 1.0
    }
}

// ---------------------------------------------------------------------------
// kNN search

/// Scales every row to unit length (zero rows stay zero). Sums in f64, so no
/// finite input can overflow.
fn normalise_rows(features: &[f32], d: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; features.len()];
    for (src, dst) in features.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
        let sq: f64 = src.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
        if sq > 0.0 {
            let inv = 1.0 / sq.sqrt();
            for (o, &v) in dst.iter_mut().zip(src) {
                *o = (f64::from(v) * inv) as f32;
            }
        }
    }
    out
}

/// Dot product with eight independent accumulators (vectorises well and fixes
/// the summation order, so the result is the same on every platform).
#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let (ca, ra) = a.as_chunks::<8>();
    let (cb, rb) = b.as_chunks::<8>();
    let mut acc = [0.0f32; 8];
    for (x, y) in ca.iter().zip(cb) {
        for ((s, p), q) in acc.iter_mut().zip(x).zip(y) {
            *s += p * q;
        }
    }
    reduce8(&acc) + ra.iter().zip(rb).map(|(p, q)| p * q).sum::<f32>()
}

/// Four dot products of `a` with `b0..b3`, sharing the loads of `a`. Each result is
/// bit-identical to [`dot`] of the same pair.
#[inline]
fn dot4(a: &[f32], b0: &[f32], b1: &[f32], b2: &[f32], b3: &[f32]) -> [f32; 4] {
    let (ca, ra) = a.as_chunks::<8>();
    let (c0, r0) = b0.as_chunks::<8>();
    let (c1, r1) = b1.as_chunks::<8>();
    let (c2, r2) = b2.as_chunks::<8>();
    let (c3, r3) = b3.as_chunks::<8>();
    let mut acc = [[0.0f32; 8]; 4];
    for ((((x, y0), y1), y2), y3) in ca.iter().zip(c0).zip(c1).zip(c2).zip(c3) {
        for (l, &p) in x.iter().enumerate() {
            acc[0][l] += p * y0[l];
            acc[1][l] += p * y1[l];
            acc[2][l] += p * y2[l];
            acc[3][l] += p * y3[l];
        }
    }
    let tail = |r: &[f32]| ra.iter().zip(r).map(|(p, q)| p * q).sum::<f32>();
    [
        reduce8(&acc[0]) + tail(r0),
        reduce8(&acc[1]) + tail(r1),
        reduce8(&acc[2]) + tail(r2),
        reduce8(&acc[3]) + tail(r3),
    ]
}

/// Pairwise sum of eight lanes, in a fixed order.
#[inline]
fn reduce8(acc: &[f32; 8]) -> f32 {
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))
}

/// Per-row bounded lists of the best candidates, kept sorted by (distance, index).
#[derive(Clone, Debug)]
struct TopK {
    k: usize,
    len: Vec<usize>,
    idx: Vec<usize>,
    dist: Vec<f32>,
}

impl TopK {
    fn new(n: usize, k: usize) -> Self {
        Self {
            k,
            len: vec![0; n],
            idx: vec![0; n * k],
            dist: vec![f32::INFINITY; n * k],
        }
    }

    #[inline]
    fn offer(&mut self, row: usize, cand: usize, dist: f32) {
        let k = self.k;
        let base = row * k;
        let (Some(len), Some(ids), Some(ds)) = (
            self.len.get_mut(row),
            self.idx.get_mut(base..base + k),
            self.dist.get_mut(base..base + k),
        ) else {
            return;
        };
        let before = |d1: f32, i1: usize, d2: f32, i2: usize| d1 < d2 || (d1 == d2 && i1 < i2);
        let mut pos = if *len < k {
            *len += 1;
            *len - 1
        } else if before(dist, cand, ds[k - 1], ids[k - 1]) {
            k - 1
        } else {
            return;
        };
        while pos > 0 && before(dist, cand, ds[pos - 1], ids[pos - 1]) {
            ds[pos] = ds[pos - 1];
            ids[pos] = ids[pos - 1];
            pos -= 1;
        }
        ds[pos] = dist;
        ids[pos] = cand;
    }
}

/// Brute-force cosine kNN over unit rows, one pair of row tiles at a time. Only
/// tiles on or above the diagonal are visited; each dot product updates both rows.
#[derive(Clone, Debug)]
struct KnnSearch {
    n: usize,
    d: usize,
    unit: Vec<f32>,
    top: TopK,
    blocks: usize,
    bi: usize,
    bj: usize,
}

impl KnnSearch {
    fn new(unit: Vec<f32>, n: usize, d: usize, k: usize) -> Self {
        Self {
            n,
            d,
            unit,
            top: TopK::new(n, k),
            blocks: n.div_ceil(TILE),
            bi: 0,
            bj: 0,
        }
    }

    fn total_macs(&self) -> u64 {
        let n = self.n as u64;
        (n.saturating_mul(n.saturating_sub(1)) / 2).saturating_mul(self.d as u64)
    }

    fn is_done(&self) -> bool {
        self.bi >= self.blocks
    }

    /// Processes the next tile pair and returns its cost in multiply-adds.
    fn step_tile(&mut self) -> u64 {
        let (n, d) = (self.n, self.d);
        let rows_i = self.bi * TILE..((self.bi + 1) * TILE).min(n);
        let cols_j = self.bj * TILE..((self.bj + 1) * TILE).min(n);
        let mut pairs = 0u64;
        for i in rows_i {
            let Some(xi) = self.unit.get(i * d..(i + 1) * d) else {
                continue;
            };
            let mut j = cols_j.start.max(i + 1);
            let row = |r: usize| self.unit.get(r * d..(r + 1) * d).unwrap_or(&[]);
            while j + 4 <= cols_j.end {
                let dots = dot4(xi, row(j), row(j + 1), row(j + 2), row(j + 3));
                for (offset, dot) in dots.into_iter().enumerate() {
                    let dist = (1.0 - dot).clamp(0.0, 2.0);
                    self.top.offer(i, j + offset, dist);
                    self.top.offer(j + offset, i, dist);
                }
                j += 4;
            }
            for j in j..cols_j.end {
                let dist = (1.0 - dot(xi, row(j))).clamp(0.0, 2.0);
                self.top.offer(i, j, dist);
                self.top.offer(j, i, dist);
            }
            pairs += cols_j.end.saturating_sub(cols_j.start.max(i + 1)) as u64;
        }
        self.bj += 1;
        if self.bj >= self.blocks {
            self.bi += 1;
            self.bj = self.bi;
        }
        pairs.saturating_mul(d as u64).max(1)
    }

    /// The finished lists, plus the unit rows (reused for the PCA initialisation).
    fn finish(self) -> (Knn, Vec<f32>) {
        let knn = Knn {
            n: self.n,
            k: self.top.k,
            indices: self.top.idx,
            distances: self.top.dist,
        };
        (knn, self.unit)
    }
}

// ---------------------------------------------------------------------------
// Fuzzy simplicial set

/// The symmetric graph as a directed edge list holding both `(i, j)` and `(j, i)`,
/// with the sampling schedule SGD needs.
#[derive(Clone, Debug, Default)]
struct Edges {
    head: Vec<usize>,
    tail: Vec<usize>,
    /// Epochs between samples of each edge (`max weight / weight`).
    epochs_per_sample: Vec<f64>,
}

/// Finds `(rho, sigma)` for one point from its ascending neighbour distances, as in
/// umap-learn's `smooth_knn_dist` with `local_connectivity = 1`.
fn smooth_dist(dists: &[f32], mean_all: f64) -> (f64, f64) {
    const ITERATIONS: usize = 64;
    const TOLERANCE: f64 = 1e-5;
    const MIN_SCALE: f64 = 1e-3;
    let target = (dists.len() as f64).log2();
    let rho = dists
        .iter()
        .map(|&v| f64::from(v))
        .find(|&v| v > 0.0)
        .unwrap_or(0.0);
    let (mut lo, mut hi, mut mid) = (0.0f64, f64::INFINITY, 1.0f64);
    for _ in 0..ITERATIONS {
        let psum: f64 = dists
            .iter()
            .map(|&v| {
                let excess = f64::from(v) - rho;
                if excess > 0.0 {
                    (-excess / mid).exp()
                } else {
                    1.0
                }
            })
            .sum();
        if (psum - target).abs() < TOLERANCE {
            break;
        }
        if psum > target {
            hi = mid;
            mid = (lo + hi) / 2.0;
        } else {
            lo = mid;
            mid = if hi.is_finite() {
                (lo + hi) / 2.0
            } else {
                mid * 2.0
            };
        }
    }
    let mean_row = dists.iter().map(|&v| f64::from(v)).sum::<f64>() / dists.len().max(1) as f64;
    let floor = if rho > 0.0 { mean_row } else { mean_all } * MIN_SCALE;
    (rho, mid.max(floor))
}

/// Builds the fuzzy union of the kNN memberships and the edge sampling schedule.
/// Edges weaker than `max / n_epochs` would never be sampled and are dropped.
fn fuzzy_edges(knn: &Knn, n_epochs: usize) -> Edges {
    let k = knn.k;
    let count = knn.distances.len();
    let mean_all = knn.distances.iter().map(|&v| f64::from(v)).sum::<f64>() / count.max(1) as f64;
    // Directed memberships, entered under both orientations so that sorting by
    // (row, column) brings w(i→j) and w(j→i) together.
    let mut entries: Vec<(usize, usize, f64)> = Vec::with_capacity(2 * count);
    for i in 0..knn.n {
        let (ids, ds) = (knn.indices(i), knn.distances(i));
        let (rho, sigma) = smooth_dist(ds, mean_all);
        for (&j, &dist) in ids.iter().zip(ds) {
            let excess = f64::from(dist) - rho;
            let w = if excess <= 0.0 || sigma <= 0.0 {
                1.0
            } else {
                (-excess / sigma).exp()
            };
            entries.push((i, j, w));
            entries.push((j, i, w));
        }
    }
    entries.sort_by_key(|&(i, j, _)| (i, j));
    let mut merged: Vec<(usize, usize, f64)> = Vec::with_capacity(entries.len() / 2 + k);
    for (i, j, w) in entries {
        match merged.last_mut() {
            Some(last) if last.0 == i && last.1 == j => last.2 = last.2 + w - last.2 * w,
            _ => merged.push((i, j, w)),
        }
    }
    let max_w = merged.iter().map(|e| e.2).fold(0.0f64, f64::max);
    let mut edges = Edges::default();
    if max_w <= 0.0 {
        return edges;
    }
    let threshold = max_w / n_epochs.max(1) as f64;
    for (i, j, w) in merged {
        if w > 0.0 && w >= threshold {
            edges.head.push(i);
            edges.tail.push(j);
            edges.epochs_per_sample.push(max_w / w);
        }
    }
    edges
}

// ---------------------------------------------------------------------------
// a, b curve fit

/// Fits `1 / (1 + a·x^(2b))` to the target membership curve (1 up to `min_dist`,
/// then `exp(-(x - min_dist) / spread)`) on 300 points of `[0, 3·spread]`, by
/// Levenberg–Marquardt. The fit runs in units of `spread` and `a` is rescaled at
/// the end, so it is equally well conditioned for any spread.
fn fit_ab(spread: f32, min_dist: f32) -> Result<(f32, f32), UmapError> {
    const POINTS: usize = 300;
    let fail = UmapError::CurveFit { min_dist, spread };
    let m = f64::from(min_dist) / f64::from(spread);
    let xs: Vec<f64> = (0..POINTS)
        .map(|i| 3.0 * i as f64 / (POINTS - 1) as f64)
        .collect();
    let ys: Vec<f64> = xs
        .iter()
        .map(|&x| if x < m { 1.0 } else { (-(x - m)).exp() })
        .collect();
    let cost = |a: f64, b: f64| -> f64 {
        xs.iter()
            .zip(&ys)
            .map(|(&x, &y)| {
                let r = 1.0 / (1.0 + a * x.powf(2.0 * b)) - y;
                r * r
            })
            .sum()
    };
    let (mut a, mut b) = (1.0f64, 1.0f64);
    let mut c = cost(a, b);
    let mut lambda = 1e-3f64;
    for _ in 0..500 {
        // Normal equations J^T J and gradient J^T r at the current point.
        let (mut jaa, mut jab, mut jbb, mut ga, mut gb) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for (&x, &y) in xs.iter().zip(&ys) {
            if x <= 0.0 {
                continue;
            }
            let u = x.powf(2.0 * b);
            let g = 1.0 / (1.0 + a * u);
            let r = g - y;
            let da = -u * g * g;
            let db = -a * u * 2.0 * x.ln() * g * g;
            jaa += da * da;
            jab += da * db;
            jbb += db * db;
            ga += da * r;
            gb += db * r;
        }
        let mut improved = false;
        for _ in 0..30 {
            let (m00, m11) = (jaa * (1.0 + lambda), jbb * (1.0 + lambda));
            let det = m00 * m11 - jab * jab;
            if det > 0.0 && det.is_finite() {
                let step_a = -(m11 * ga - jab * gb) / det;
                let step_b = -(m00 * gb - jab * ga) / det;
                let (na, nb) = (a + step_a, b + step_b);
                if na > 0.0 && nb > 0.0 && na.is_finite() && nb.is_finite() {
                    let nc = cost(na, nb);
                    if nc < c {
                        let tiny = step_a.abs() < 1e-12 * a && step_b.abs() < 1e-12 * b;
                        (a, b, c) = (na, nb, nc);
                        lambda = (lambda / 10.0).max(1e-12);
                        improved = !tiny;
                        break;
                    }
                }
            }
            lambda *= 10.0;
        }
        if !improved {
            break;
        }
    }
    let a_scaled = a / f64::from(spread).powf(2.0 * b);
    let (a32, b32) = (a_scaled as f32, b as f32);
    if a32.is_finite() && b32.is_finite() && a32 > 0.0 && b32 > 0.0 {
        Ok((a32, b32))
    } else {
        Err(fail)
    }
}

// ---------------------------------------------------------------------------
// PCA initialisation

fn pca_iter_macs(n: usize, d: usize) -> u64 {
    (n as u64).saturating_mul(d as u64).saturating_mul(4)
}

/// Block power iteration for the top two principal directions of the centred
/// unit rows. One iteration is a single pass over the rows.
#[derive(Clone, Debug)]
struct Pca {
    n: usize,
    d: usize,
    unit: Vec<f32>,
    mean: Vec<f32>,
    basis: [Vec<f32>; 2],
    iters: usize,
    converged: bool,
    /// The data has no spread at all (every row the same direction, or all zero).
    degenerate: bool,
}

impl Pca {
    fn new(unit: Vec<f32>, n: usize, d: usize, rng: &mut SplitMix64) -> Self {
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

    fn is_done(&self) -> bool {
        self.converged || self.degenerate || self.iters >= PCA_MAX_ITERS
    }

    /// One multiplication by the covariance, then re-orthonormalisation.
    fn iterate(&mut self) -> u64 {
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
    fn embedding(&self, rng: &mut SplitMix64) -> Vec<[f32; 2]> {
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

// ---------------------------------------------------------------------------
// SGD layout

#[derive(Clone, Debug)]
struct Layout {
    edges: Edges,
    next_sample: Vec<f64>,
    epochs_per_negative: Vec<f64>,
    next_negative: Vec<f64>,
    emb: Vec<[f32; 2]>,
    a: f32,
    b: f32,
    epoch: usize,
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
/// 15–25 ns there, so the browser build uses it. Natively the system `powf` is
/// faster (about 6 ns against 14), so native builds keep it. Subnormal, zero or NaN
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
    fn new(edges: Edges, emb: Vec<[f32; 2]>, a: f32, b: f32, fast_pow: bool) -> Self {
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
    fn run_epoch(&mut self, n_epochs: usize, rng: &mut SplitMix64) {
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

    fn gauss(rng: &mut SplitMix64) -> f32 {
        let u = (rng.symmetric() + 1.0) * 0.5;
        let v = (rng.symmetric() + 1.0) * 0.5;
        (-2.0 * (u.max(1e-7)).ln()).sqrt() * (std::f32::consts::TAU * v).cos()
    }

    /// `per` points around each of 3 random centres in `d` dimensions.
    fn blobs(per: usize, d: usize, seed: u64) -> (Vec<f32>, Vec<usize>) {
        let mut rng = SplitMix64::new(seed);
        let centres: Vec<Vec<f32>> = (0..3)
            .map(|_| (0..d).map(|_| gauss(&mut rng) * 3.0).collect())
            .collect();
        let mut x = Vec::with_capacity(3 * per * d);
        let mut y = Vec::with_capacity(3 * per);
        for (label, centre) in centres.iter().enumerate() {
            for _ in 0..per {
                x.extend(centre.iter().map(|c| c + gauss(&mut rng)));
                y.push(label);
            }
        }
        (x, y)
    }

    /// Fraction of 2-D k-nearest neighbours that share the point's label.
    fn label_agreement(emb: &[[f32; 2]], labels: &[usize], k: usize) -> f32 {
        let n = emb.len();
        let mut same = 0;
        for i in 0..n {
            let mut near: Vec<(f32, usize)> = (0..n)
                .filter(|&j| j != i)
                .map(|j| {
                    let (dx, dy) = (emb[i][0] - emb[j][0], emb[i][1] - emb[j][1]);
                    (dx * dx + dy * dy, j)
                })
                .collect();
            near.sort_by(|p, q| p.0.total_cmp(&q.0));
            same += near[..k]
                .iter()
                .filter(|p| labels[p.1] == labels[i])
                .count();
        }
        same as f32 / (n * k) as f32
    }

    fn naive_cosine(x: &[f32], d: usize, i: usize, j: usize) -> f64 {
        let (a, b) = (&x[i * d..(i + 1) * d], &x[j * d..(j + 1) * d]);
        let dot: f64 = a
            .iter()
            .zip(b)
            .map(|(&p, &q)| f64::from(p) * f64::from(q))
            .sum();
        let na: f64 = a.iter().map(|&p| f64::from(p).powi(2)).sum::<f64>().sqrt();
        let nb: f64 = b.iter().map(|&p| f64::from(p).powi(2)).sum::<f64>().sqrt();
        if na == 0.0 || nb == 0.0 {
            1.0
        } else {
            (1.0 - dot / (na * nb)).clamp(0.0, 2.0)
        }
    }

    fn cfg(seed: u64) -> UmapConfig {
        UmapConfig {
            seed,
            n_epochs: Some(200),
            ..UmapConfig::default()
        }
    }

    #[test]
    fn rejects_bad_inputs() {
        let ok = vec![0.5f32; 20 * 4];
        let c = UmapConfig::default();
        assert_eq!(
            umap_2d(
                &ok,
                20,
                4,
                &UmapConfig {
                    n_neighbors: 1,
                    ..c
                }
            ),
            Err(UmapError::InvalidNeighbours { k: 1, min: 2 })
        );
        let err = umap_2d(&ok[..15 * 4], 15, 4, &c).unwrap_err();
        assert_eq!(
            err,
            UmapError::TooFewPoints {
                n: 15,
                needed: 16,
                k: 15
            }
        );
        assert!(err.to_string().contains("at least 16 points"), "{err}");
        assert!(matches!(
            umap_2d(&[], 0, 4, &c),
            Err(UmapError::TooFewPoints { n: 0, .. })
        ));
        assert_eq!(umap_2d(&[], 0, 0, &c), Err(UmapError::ZeroDimension));
        assert!(matches!(
            umap_2d(&ok, 20, 5, &c),
            Err(UmapError::ShapeMismatch {
                len: 80,
                expected: 100,
                ..
            })
        ));
        assert!(matches!(
            umap_2d(&ok, usize::MAX, 2, &c),
            Err(UmapError::ShapeOverflow { .. })
        ));
        let mut bad = ok.clone();
        bad[2 * 4 + 3] = f32::NAN;
        let err = umap_2d(&bad, 20, 4, &c).unwrap_err();
        assert!(matches!(err, UmapError::NonFinite { row: 2, col: 3, .. }));
        assert!(err.to_string().contains("row 2, column 3"), "{err}");
        bad[2 * 4 + 3] = f32::INFINITY;
        assert!(knn_cosine(&bad, 20, 4, 3).is_err());
        for (min_dist, spread) in [(-0.1, 1.0), (1.5, 1.0), (f32::NAN, 1.0)] {
            assert!(matches!(
                umap_2d(
                    &ok,
                    20,
                    4,
                    &UmapConfig {
                        min_dist,
                        spread,
                        ..c
                    }
                ),
                Err(UmapError::InvalidMinDist { .. })
            ));
        }
        for spread in [0.0, -1.0, f32::INFINITY, 1e-6, 1e6] {
            assert!(matches!(
                umap_2d(
                    &ok,
                    20,
                    4,
                    &UmapConfig {
                        spread,
                        min_dist: 0.0,
                        ..c
                    }
                ),
                Err(UmapError::InvalidSpread(_))
            ));
        }
        for epochs in [0, MAX_EPOCHS + 1] {
            assert_eq!(
                umap_2d(
                    &ok,
                    20,
                    4,
                    &UmapConfig {
                        n_epochs: Some(epochs),
                        ..c
                    }
                ),
                Err(UmapError::InvalidEpochs(epochs))
            );
        }
        assert_eq!(
            knn_cosine(&ok, 20, 4, 0),
            Err(UmapError::InvalidNeighbours { k: 0, min: 1 })
        );
        assert!(matches!(
            knn_cosine(&ok, 20, 4, 20),
            Err(UmapError::TooFewPoints { needed: 21, .. })
        ));
        assert!(matches!(
            knn_cosine(&ok, 20, 4, MAX_NEIGHBOURS + 1),
            Err(UmapError::InvalidNeighbours { .. })
        ));
        // Only reachable with more points than a 64-bit test can allocate.
        assert_eq!(
            validate_neighbours(usize::MAX / 8, 15, 2),
            Err(UmapError::TooManyEntries {
                n: usize::MAX / 8,
                k: 15
            })
        );
    }

    #[test]
    fn knn_matches_naive_search() {
        // Odd sizes so that the tiles and the 8-wide dot product both have tails;
        // include a zero row and an exact duplicate.
        let (n, d, k) = (77, 13, 6);
        let mut rng = SplitMix64::new(3);
        let mut x: Vec<f32> = (0..n * d).map(|_| gauss(&mut rng)).collect();
        x[5 * d..6 * d].fill(0.0);
        let dup = x[10 * d..11 * d].to_vec();
        x[11 * d..12 * d].copy_from_slice(&dup);
        let knn = knn_cosine(&x, n, d, k).unwrap();
        assert_eq!((knn.n(), knn.k()), (n, k));
        for i in 0..n {
            let mut all: Vec<(f64, usize)> = (0..n)
                .filter(|&j| j != i)
                .map(|j| (naive_cosine(&x, d, i, j), j))
                .collect();
            all.sort_by(|p, q| p.0.total_cmp(&q.0).then(p.1.cmp(&q.1)));
            let got_ids = knn.indices(i);
            let got_d = knn.distances(i);
            assert!(!got_ids.contains(&i));
            for r in 0..k {
                assert!(
                    (f64::from(got_d[r]) - all[r].0).abs() < 1e-5,
                    "row {i} rank {r}"
                );
                // Same neighbour unless the naive distance is tied within rounding.
                if got_ids[r] != all[r].1 {
                    let naive = naive_cosine(&x, d, i, got_ids[r]);
                    assert!((naive - all[r].0).abs() < 1e-5, "row {i} rank {r}");
                }
            }
        }
        assert!(knn.distances(5).iter().all(|&v| v == 1.0));
        assert_eq!(knn.indices(5), &[0, 1, 2, 3, 4, 6]);
        assert_eq!(knn.indices(10)[0], 11);
        assert_eq!(knn.distances(10)[0], 0.0);
        assert!(knn.indices(n).is_empty());
        // The four-wide kernel agrees bit for bit with the single one.
        let row = |r: usize| &x[r * d..(r + 1) * d];
        let four = dot4(row(0), row(1), row(2), row(3), row(4));
        for (r, v) in four.into_iter().enumerate() {
            assert_eq!(v.to_bits(), dot(row(0), row(r + 1)).to_bits());
        }
    }

    #[test]
    fn separates_gaussian_blobs() {
        let (x, y) = blobs(100, 32, 11);
        // Both ways of computing powers: the native default and the wasm one.
        for fast_pow in [false, true] {
            let mut run = UmapRun::new(&x, y.len(), 32, &cfg(5)).unwrap();
            run.fast_pow = fast_pow;
            assert!(run.step(usize::MAX));
            let emb = run.into_embedding();
            assert_eq!(emb.len(), y.len());
            assert!(emb.iter().all(|p| p[0].is_finite() && p[1].is_finite()));
            let agreement = label_agreement(&emb, &y, 10);
            assert!(
                agreement > 0.95,
                "fast_pow {fast_pow}: 2-D kNN agreement {agreement}"
            );
        }
    }

    #[test]
    fn deterministic_and_independent_of_slicing() {
        let (x, y) = blobs(40, 16, 2);
        let n = y.len();
        let one = umap_2d(&x, n, 16, &cfg(9)).unwrap();
        assert_eq!(one, umap_2d(&x, n, 16, &cfg(9)).unwrap());
        assert_ne!(one, umap_2d(&x, n, 16, &cfg(10)).unwrap());

        let mut run = UmapRun::new(&x, n, 16, &cfg(9)).unwrap();
        assert_eq!(run.phase(), UmapPhase::Neighbours);
        assert!(run.embedding().is_empty());
        let mut last = 0.0;
        let mut phases = vec![run.phase()];
        while !run.step(1) {
            let p = run.progress();
            assert!((last..1.0).contains(&p), "progress {last} -> {p}");
            last = p;
            if phases.last() != Some(&run.phase()) {
                phases.push(run.phase());
            }
        }
        assert_eq!(run.progress(), 1.0);
        assert_eq!(run.phase(), UmapPhase::Done);
        assert_eq!(run.epoch(), run.n_epochs());
        assert!(phases.contains(&UmapPhase::Layout));
        assert_eq!(run.knn().map(Knn::k), Some(15));
        assert!(run.step(3));
        assert_eq!(run.embedding(), one.as_slice());
    }

    #[test]
    fn degenerate_inputs_stay_finite() {
        let c = UmapConfig {
            n_neighbors: 4,
            n_epochs: Some(50),
            ..UmapConfig::default()
        };
        // Every case runs with both power functions and must give finite points.
        let check = |x: &[f32], n: usize, d: usize, cfg: &UmapConfig| {
            for fast_pow in [false, true] {
                let mut run = UmapRun::new(x, n, d, cfg).unwrap();
                run.fast_pow = fast_pow;
                assert!(run.step(usize::MAX));
                let e = run.embedding();
                assert_eq!(e.len(), n);
                assert!(e.iter().flatten().all(|v| v.is_finite()), "{e:?}");
            }
        };
        // All rows zero, all rows identical, one-dimensional, rank one, tiny, huge.
        let zeros = vec![0.0f32; 10 * 3];
        let same = [1.0f32, -2.0, 3.0].repeat(10);
        let one_d: Vec<f32> = (0..10).map(|i| i as f32 - 4.5).collect();
        let rank_one: Vec<f32> = (0..10)
            .flat_map(|i| [i as f32 + 1.0, 2.0 * (i as f32 + 1.0)])
            .collect();
        let tiny = vec![1e-30f32; 10 * 3];
        let huge = vec![f32::MAX; 10 * 3];
        for (x, d) in [
            (&zeros, 3),
            (&same, 3),
            (&one_d, 1),
            (&rank_one, 2),
            (&tiny, 3),
            (&huge, 3),
        ] {
            check(x, 10, d, &c);
        }
        // The ends of the min_dist and spread ranges.
        let (x, y) = blobs(5, 4, 1);
        for (min_dist, spread) in [(0.0, 1.0), (2.0, 2.0), (0.0, MIN_SPREAD), (0.5, MAX_SPREAD)] {
            check(
                &x,
                y.len(),
                4,
                &UmapConfig {
                    min_dist,
                    spread,
                    ..c
                },
            );
        }
    }

    #[test]
    fn curve_parameters_match_umap_learn() {
        // umap-learn's find_ab_params(1.0, 0.1) = (1.5769, 0.8951).
        let (a, b) = fit_ab(1.0, 0.1).unwrap();
        assert!(
            (a - 1.577).abs() < 2e-3 && (b - 0.8951).abs() < 2e-3,
            "{a} {b}"
        );
        // Scaling spread and min_dist together rescales x: a' = a / s^(2b).
        let (a2, b2) = fit_ab(2.0, 0.2).unwrap();
        assert!((b2 - b).abs() < 1e-4);
        assert!((a2 - a / 2f32.powf(2.0 * b)).abs() < 1e-3);
    }

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
