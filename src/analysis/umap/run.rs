//! [`UmapRun`]: the whole pipeline, advanced in slices of work.

use super::curve::fit_ab;
use super::error::{validate_config, validate_features, validate_neighbours};
use super::fuzzy::{Edges, fuzzy_edges};
use super::knn::{KnnSearch, normalise_rows};
use super::layout::Layout;
use super::pca::{PCA_MAX_ITERS, Pca, pca_iter_macs};
use super::rng::SplitMix64;
use super::{Knn, UmapConfig, UmapError};

/// One unit of work for [`UmapRun::step`], in multiply-adds; a layout epoch counts
/// as one unit.
const UNIT_MACS: u64 = 1 << 22;

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
            fast_pow: cfg.fast_pow,
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

#[cfg(test)]
mod tests {
    use super::super::test_support::blobs;
    use super::super::{MAX_SPREAD, MIN_SPREAD, umap_2d};
    use super::*;

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

    fn cfg(seed: u64) -> UmapConfig {
        UmapConfig {
            seed,
            n_epochs: Some(200),
            ..UmapConfig::default()
        }
    }

    #[test]
    fn separates_gaussian_blobs() {
        let (x, y) = blobs(100, 32, 11);
        // Both ways of computing powers.
        for fast_pow in [false, true] {
            let c = UmapConfig { fast_pow, ..cfg(5) };
            let mut run = UmapRun::new(&x, y.len(), 32, &c).unwrap();
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
        // The power function is the configured one (the default is the fast one).
        assert!(UmapConfig::default().fast_pow);
        let exact = UmapConfig {
            fast_pow: false,
            ..cfg(9)
        };
        assert_ne!(one, umap_2d(&x, n, 16, &exact).unwrap());

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
                let c = UmapConfig { fast_pow, ..*cfg };
                let mut run = UmapRun::new(x, n, d, &c).unwrap();
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
}
