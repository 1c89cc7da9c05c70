//! Exact k nearest neighbours by cosine distance, computed tile by tile.

use super::UmapError;
use super::error::{validate_features, validate_neighbours};

/// Rows per tile in the kNN search.
const TILE: usize = 32;

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
/// Runs in one go; [`UmapRun`](super::UmapRun) performs the same search in slices.
pub fn knn_cosine(features: &[f32], n: usize, d: usize, k: usize) -> Result<Knn, UmapError> {
    validate_features(features, n, d)?;
    validate_neighbours(n, k, 1)?;
    let mut search = KnnSearch::new(normalise_rows(features, d), n, d, k);
    while !search.is_done() {
        search.step_tile();
    }
    Ok(search.finish().0)
}

/// Scales every row to unit length (zero rows stay zero). Sums in f64, so no
/// finite input can overflow.
pub(super) fn normalise_rows(features: &[f32], d: usize) -> Vec<f32> {
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
pub(super) fn dot(a: &[f32], b: &[f32]) -> f32 {
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
pub(super) struct KnnSearch {
    n: usize,
    d: usize,
    unit: Vec<f32>,
    top: TopK,
    blocks: usize,
    bi: usize,
    bj: usize,
}

impl KnnSearch {
    pub(super) fn new(unit: Vec<f32>, n: usize, d: usize, k: usize) -> Self {
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

    pub(super) fn total_macs(&self) -> u64 {
        let n = self.n as u64;
        (n.saturating_mul(n.saturating_sub(1)) / 2).saturating_mul(self.d as u64)
    }

    pub(super) fn is_done(&self) -> bool {
        self.bi >= self.blocks
    }

    /// Processes the next tile pair and returns its cost in multiply-adds.
    pub(super) fn step_tile(&mut self) -> u64 {
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
    pub(super) fn finish(self) -> (Knn, Vec<f32>) {
        let knn = Knn {
            n: self.n,
            k: self.top.k,
            indices: self.top.idx,
            distances: self.top.dist,
        };
        (knn, self.unit)
    }
}

#[cfg(test)]
mod tests {
    use super::super::rng::SplitMix64;
    use super::super::test_support::gauss;
    use super::*;

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
}
