//! The fuzzy simplicial set: per-point memberships and their fuzzy union.

use super::Knn;

/// The symmetric graph as a directed edge list holding both `(i, j)` and `(j, i)`,
/// with the sampling schedule SGD needs.
#[derive(Clone, Debug, Default)]
pub(super) struct Edges {
    pub(super) head: Vec<usize>,
    pub(super) tail: Vec<usize>,
    /// Epochs between samples of each edge (`max weight / weight`).
    pub(super) epochs_per_sample: Vec<f64>,
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
pub(super) fn fuzzy_edges(knn: &Knn, n_epochs: usize) -> Edges {
    let k = knn.k();
    let count = knn.all_distances().len();
    let mean_all = knn
        .all_distances()
        .iter()
        .map(|&v| f64::from(v))
        .sum::<f64>()
        / count.max(1) as f64;
    // Directed memberships, entered under both orientations so that sorting by
    // (row, column) brings w(i→j) and w(j→i) together.
    let mut entries: Vec<(usize, usize, f64)> = Vec::with_capacity(2 * count);
    for i in 0..knn.n() {
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
