//! The penalised training objective and the numeric kernels it is built from.

/// Dot product with eight independent accumulators so the compiler can keep
/// several SIMD lanes busy (a single running sum forces strict ordering).
#[inline]
pub(super) fn dot(a: &[f64], b: &[f64]) -> f64 {
    let ca = a.chunks_exact(8);
    let cb = b.chunks_exact(8);
    let tail: f64 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    let mut acc = [0.0f64; 8];
    for (xa, xb) in ca.zip(cb) {
        for ((s, x), y) in acc.iter_mut().zip(xa).zip(xb) {
            *s += x * y;
        }
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// `y += a * x`.
#[inline]
pub(super) fn axpy(y: &mut [f64], a: f64, x: &[f64]) {
    for (yv, xv) in y.iter_mut().zip(x) {
        *yv += a * xv;
    }
}

/// `log(1 + exp(s))` without overflow or loss of precision.
#[inline]
fn softplus(s: f64) -> f64 {
    if s > 0.0 {
        s + (-s).exp().ln_1p()
    } else {
        s.exp().ln_1p()
    }
}

/// `1 / (1 + exp(-s))` without overflow.
#[inline]
pub(super) fn sigmoid(s: f64) -> f64 {
    if s >= 0.0 {
        1.0 / (1.0 + (-s).exp())
    } else {
        let e = s.exp();
        e / (1.0 + e)
    }
}

/// Number of rows the objective processes together.
const ROWS: usize = 4;

/// Turns the score `s` of a binary sample with label `y` into the residual
/// `p(1 | x) - y` and returns its loss `-log p(y | x)`, where
/// `p(1 | x) = sigmoid(s)`.
#[inline]
fn binomial_residual(s: &mut f64, y: usize) -> f64 {
    let loss = if y == 1 { softplus(-*s) } else { softplus(*s) };
    *s = sigmoid(*s) - y as f64;
    loss
}

/// Turns the class scores of a sample with label `y` into the residuals
/// `softmax(s) - onehot(y)` and returns its loss `-log softmax(s)_y`.
#[inline]
fn softmax_residual(s: &mut [f64], y: usize) -> f64 {
    // logsumexp(s) - s_y, with the max factored out so that exp never
    // overflows; then z >= 1 and its log is well conditioned.
    let max = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let s_true = s[y];
    let mut z = 0.0;
    for v in s.iter_mut() {
        *v = (*v - max).exp();
        z += *v;
    }
    for v in s.iter_mut() {
        *v /= z;
    }
    s[y] -= 1.0;
    (max - s_true) + z.ln()
}

/// Dot products of `w` with each of `ROWS` rows, sharing every load of `w`.
#[inline]
fn dot_rows(w: &[f64], x: [&[f64]; ROWS]) -> [f64; ROWS] {
    const LANES: usize = 4;
    let mut acc = [[0.0f64; LANES]; ROWS];
    let [x0, x1, x2, x3] = x;
    let chunks = w
        .chunks_exact(LANES)
        .zip(x0.chunks_exact(LANES))
        .zip(x1.chunks_exact(LANES))
        .zip(x2.chunks_exact(LANES))
        .zip(x3.chunks_exact(LANES));
    for ((((wc, c0), c1), c2), c3) in chunks {
        for (acc_r, xc) in acc.iter_mut().zip([c0, c1, c2, c3]) {
            for ((a, wv), xv) in acc_r.iter_mut().zip(wc).zip(xc) {
                *a += wv * xv;
            }
        }
    }
    let tail = w.len() - w.len() % LANES;
    std::array::from_fn(|r| {
        let a = acc[r];
        let rest: f64 = w[tail..]
            .iter()
            .zip(&x[r][tail..])
            .map(|(wv, xv)| wv * xv)
            .sum();
        ((a[0] + a[2]) + (a[1] + a[3])) + rest
    })
}

/// `g += Σ_r a[r] * x[r]`, reading and writing `g` once for all rows.
#[inline]
fn axpy_rows(g: &mut [f64], a: [f64; ROWS], x: [&[f64]; ROWS]) {
    let [x0, x1, x2, x3] = x;
    let [a0, a1, a2, a3] = a;
    for ((((gv, v0), v1), v2), v3) in g.iter_mut().zip(x0).zip(x1).zip(x2).zip(x3) {
        *gv += (a0 * v0 + a1 * v1) + (a2 * v2 + a3 * v3);
    }
}

/// Neumaier-compensated running sum, so the objective value stays accurate
/// to a few ulps even over tens of thousands of samples. The line search
/// compares objective values near the optimum, where that matters.
#[derive(Default)]
struct CompensatedSum {
    sum: f64,
    comp: f64,
}

impl CompensatedSum {
    #[inline]
    fn add(&mut self, v: f64) {
        let t = self.sum + v;
        if self.sum.abs() >= v.abs() {
            self.comp += (self.sum - t) + v;
        } else {
            self.comp += (v - t) + self.sum;
        }
        self.sum = t;
    }

    fn total(&self) -> f64 {
        self.sum + self.comp
    }
}

/// The penalised training objective in the sum form
/// `Φ(θ) = C·Σ_i loss_i + ½||W||²` over parameters `θ = [W (row-major), b]`.
///
/// With two classes `W` is a single row and the loss is binomial; with more
/// it has one row per class and the loss is the softmax cross-entropy.
pub(super) struct Objective<'a> {
    pub(super) x: &'a [f64],
    pub(super) d: usize,
    /// Labels renumbered to `0..k`.
    pub(super) y: &'a [usize],
    pub(super) k: usize,
    pub(super) c: f64,
}

impl Objective<'_> {
    pub(super) fn outputs(&self) -> usize {
        if self.k == 2 { 1 } else { self.k }
    }

    pub(super) fn n_params(&self) -> usize {
        self.outputs() * (self.d + 1)
    }

    /// Returns `Φ(θ)` and writes `∇Φ(θ)` into `grad`.
    pub(super) fn eval(&self, theta: &[f64], grad: &mut [f64]) -> f64 {
        let d = self.d;
        let nw = self.outputs() * d;
        let (w, b) = theta.split_at(nw);
        grad.fill(0.0);
        let (gw, gb) = grad.split_at_mut(nw);
        let mut loss = CompensatedSum::default();

        // Rows are processed ROWS at a time so that every weight loaded from
        // memory serves several rows, in both the scores and the gradient.
        // A short last block is padded with zero rows whose residuals are
        // zeroed, so they contribute nothing.
        let outs = self.outputs();
        let zero_row = vec![0.0f64; d];
        let mut s = vec![0.0f64; ROWS * outs];
        for (xb, yb) in self.x.chunks(ROWS * d).zip(self.y.chunks(ROWS)) {
            let rows: [&[f64]; ROWS] =
                std::array::from_fn(|r| xb.get(r * d..(r + 1) * d).unwrap_or(&zero_row));
            for (o, (wo, bo)) in w.chunks_exact(d).zip(b).enumerate() {
                for (r, dr) in dot_rows(wo, rows).into_iter().enumerate() {
                    s[r * outs + o] = bo + dr;
                }
            }
            for (r, sr) in s.chunks_exact_mut(outs).enumerate() {
                match yb.get(r) {
                    Some(&yi) if outs == 1 => loss.add(binomial_residual(&mut sr[0], yi)),
                    Some(&yi) => loss.add(softmax_residual(sr, yi)),
                    None => sr.fill(0.0),
                }
            }
            for (o, (gwo, gbo)) in gw.chunks_exact_mut(d).zip(gb.iter_mut()).enumerate() {
                let res: [f64; ROWS] = std::array::from_fn(|r| s[r * outs + o]);
                *gbo += res.iter().sum::<f64>();
                axpy_rows(gwo, res, rows);
            }
        }

        for g in gb.iter_mut() {
            *g *= self.c;
        }
        let mut penalty = 0.0;
        for (g, &wv) in gw.iter_mut().zip(w) {
            *g = *g * self.c + wv;
            penalty += wv * wv;
        }
        self.c * loss.total() + 0.5 * penalty
    }
}

pub(super) fn max_abs(v: &[f64]) -> f64 {
    v.iter().fold(0.0f64, |m, x| m.max(x.abs()))
}
#[cfg(test)]
mod tests {
    use super::super::test_support::{Rng, blobs};
    use super::*;

    fn fd_check(k: usize) {
        // 41 rows: the last block of the objective is partial; d = 5 leaves
        // a tail after the four-wide chunks.
        let (n, d) = (41, 5);
        let (x, y) = blobs(n, d, k, 1.0, 7);
        let xf: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
        let obj = Objective {
            x: &xf,
            d,
            y: &y,
            k,
            c: 0.7,
        };
        let mut rng = Rng(3);
        let theta: Vec<f64> = (0..obj.n_params()).map(|_| 0.5 * rng.normal()).collect();
        let mut grad = vec![0.0; obj.n_params()];
        obj.eval(&theta, &mut grad);
        let mut scratch = vec![0.0; obj.n_params()];
        for i in 0..theta.len() {
            let h = 1e-6;
            let mut tp = theta.clone();
            tp[i] += h;
            let fp = obj.eval(&tp, &mut scratch);
            tp[i] -= 2.0 * h;
            let fm = obj.eval(&tp, &mut scratch);
            let fd = (fp - fm) / (2.0 * h);
            assert!(
                (fd - grad[i]).abs() <= 1e-6 * (1.0 + fd.abs()),
                "param {i}: analytic {} vs finite difference {fd}",
                grad[i]
            );
        }
    }

    #[test]
    fn gradient_matches_finite_differences_multinomial() {
        fd_check(4);
    }

    #[test]
    fn gradient_matches_finite_differences_binomial() {
        fd_check(2);
    }
}
