//! Limited-memory BFGS with a strong Wolfe line search.

use super::ProbeConfig;
use super::objective::{Objective, axpy, dot, max_abs};

/// The last `m` curvature pairs `(s, y)` of L-BFGS.
struct History {
    capacity: usize,
    s: Vec<Vec<f64>>,
    y: Vec<Vec<f64>>,
    rho: Vec<f64>,
    /// Index of the oldest pair once the buffer is full.
    start: usize,
    alpha: Vec<f64>,
}

impl History {
    fn new(capacity: usize) -> Self {
        Self {
            capacity,
            s: Vec::with_capacity(capacity),
            y: Vec::with_capacity(capacity),
            rho: Vec::with_capacity(capacity),
            start: 0,
            alpha: vec![0.0; capacity],
        }
    }

    fn len(&self) -> usize {
        self.s.len()
    }

    fn clear(&mut self) {
        self.s.clear();
        self.y.clear();
        self.rho.clear();
        self.start = 0;
    }

    /// Stores a pair; returns false (and stores nothing) when `s·y` is not
    /// safely positive, which would break positive definiteness.
    fn push(&mut self, s: &[f64], y: &[f64]) -> bool {
        let sy = dot(s, y);
        let yy = dot(y, y);
        let safe = sy.is_finite() && sy > f64::EPSILON * yy;
        if !safe {
            return false;
        }
        if self.s.len() < self.capacity {
            self.s.push(s.to_vec());
            self.y.push(y.to_vec());
            self.rho.push(1.0 / sy);
        } else {
            let i = self.start;
            self.s[i].copy_from_slice(s);
            self.y[i].copy_from_slice(y);
            self.rho[i] = 1.0 / sy;
            self.start = (self.start + 1) % self.capacity;
        }
        true
    }

    /// Storage index of the `j`-th oldest pair.
    fn idx(&self, j: usize) -> usize {
        (self.start + j) % self.len()
    }

    /// Writes the quasi-Newton direction `-H·g` into `dir` (two-loop
    /// recursion, with the usual `s·y / y·y` scaling of the initial matrix).
    fn direction(&mut self, g: &[f64], dir: &mut [f64]) {
        for (d, gv) in dir.iter_mut().zip(g) {
            *d = -gv;
        }
        let m = self.len();
        if m == 0 {
            return;
        }
        for j in (0..m).rev() {
            let i = self.idx(j);
            let a = self.rho[i] * dot(&self.s[i], dir);
            self.alpha[i] = a;
            axpy(dir, -a, &self.y[i]);
        }
        let newest = self.idx(m - 1);
        let gamma = 1.0 / (self.rho[newest] * dot(&self.y[newest], &self.y[newest]));
        for d in dir.iter_mut() {
            *d *= gamma;
        }
        for j in 0..m {
            let i = self.idx(j);
            let beta = self.rho[i] * dot(&self.y[i], dir);
            axpy(dir, self.alpha[i] - beta, &self.s[i]);
        }
    }
}

/// One point on the search line: step, objective value, directional
/// derivative.
#[derive(Clone, Copy)]
struct LinePoint {
    alpha: f64,
    f: f64,
    dphi: f64,
}

/// Strong Wolfe line search along `dir` from `theta` (bracketing then zoom,
/// after Nocedal & Wright, algorithms 3.5 and 3.6).
///
/// Near the optimum the decrease in `Φ` per step falls below the rounding
/// error of `Φ` itself, and a test on function values alone becomes a coin
/// flip. There the sufficient-decrease test falls back to the "approximate
/// Wolfe" test of Hager and Zhang, which reads the decrease off the
/// directional derivatives (accurate to many more digits): accept when
/// `Φ` has not measurably increased and `φ'(α) ≤ (2δ - 1)·φ'(0)`.
struct LineSearch<'a, 'b> {
    obj: &'a Objective<'b>,
    theta: &'a [f64],
    dir: &'a [f64],
    trial: &'a mut [f64],
    trial_grad: &'a mut [f64],
    evaluations: &'a mut usize,
    f0: f64,
    dphi0: f64,
    /// Objective differences below this are treated as rounding noise.
    f_noise: f64,
}

const C1: f64 = 1e-4;
const C2: f64 = 0.9;
const MAX_BRACKET: usize = 40;
const MAX_ZOOM: usize = 40;

impl LineSearch<'_, '_> {
    /// Evaluates `φ(α)`; the trial buffers then hold that point.
    fn eval(&mut self, alpha: f64) -> LinePoint {
        for ((t, x), p) in self.trial.iter_mut().zip(self.theta).zip(self.dir) {
            *t = x + alpha * p;
        }
        let f = self.obj.eval(self.trial, self.trial_grad);
        *self.evaluations += 1;
        LinePoint {
            alpha,
            f,
            dphi: dot(self.trial_grad, self.dir),
        }
    }

    fn sufficient_decrease(&self, p: &LinePoint) -> bool {
        if !p.f.is_finite() || !p.dphi.is_finite() {
            return false;
        }
        let armijo = p.f <= self.f0 + C1 * p.alpha * self.dphi0;
        let approximate = p.f <= self.f0 + self.f_noise && p.dphi <= (2.0 * C1 - 1.0) * self.dphi0;
        armijo || approximate
    }

    fn curvature(&self, p: &LinePoint) -> bool {
        p.dphi.abs() <= -C2 * self.dphi0
    }

    /// Runs the search from an initial step `alpha0`. On success the trial
    /// buffers hold the accepted point and its value is returned.
    fn run(&mut self, alpha0: f64) -> Option<f64> {
        let mut prev = LinePoint {
            alpha: 0.0,
            f: self.f0,
            dphi: self.dphi0,
        };
        let mut alpha = alpha0;
        for i in 0..MAX_BRACKET {
            let cur = self.eval(alpha);
            if !self.sufficient_decrease(&cur) || (i > 0 && cur.f > prev.f + self.f_noise) {
                return self.zoom(prev, cur);
            }
            if self.curvature(&cur) {
                return Some(cur.f);
            }
            if cur.dphi >= 0.0 {
                return self.zoom(cur, prev);
            }
            prev = cur;
            alpha *= 4.0;
        }
        None
    }

    /// Narrows `[lo, hi]` (in either order) until a strong Wolfe point is
    /// found. Invariants: `lo` satisfies sufficient decrease and the
    /// minimiser along the line lies between `lo` and `hi`.
    fn zoom(&mut self, mut lo: LinePoint, mut hi: LinePoint) -> Option<f64> {
        for _ in 0..MAX_ZOOM {
            let width = (hi.alpha - lo.alpha).abs();
            if width <= f64::EPSILON * lo.alpha.abs().max(hi.alpha.abs()) {
                break;
            }
            let alpha = self.interpolate(&lo, &hi);
            let cur = self.eval(alpha);
            if !self.sufficient_decrease(&cur) || cur.f > lo.f + self.f_noise {
                hi = cur;
            } else {
                if self.curvature(&cur) {
                    return Some(cur.f);
                }
                if cur.dphi * (hi.alpha - lo.alpha) >= 0.0 {
                    hi = lo;
                }
                lo = cur;
            }
        }
        // No strong Wolfe point within the budget. Settle for the best
        // point with a real decrease, if any; the curvature pair it yields
        // is only stored if it keeps the update positive definite.
        if lo.alpha > 0.0 && lo.f < self.f0 {
            let p = self.eval(lo.alpha);
            return Some(p.f);
        }
        None
    }

    /// A trial step strictly inside the bracket: the minimiser of the cubic
    /// through both end points, or of the secant model of the derivative when
    /// the two function values are indistinguishable, kept at least 10% of
    /// the bracket away from either end.
    fn interpolate(&self, a: &LinePoint, b: &LinePoint) -> f64 {
        let lo = a.alpha.min(b.alpha);
        let hi = a.alpha.max(b.alpha);
        let margin = 0.1 * (hi - lo);
        let candidate = if (a.f - b.f).abs() <= self.f_noise || !b.f.is_finite() {
            if b.dphi.is_finite() && b.dphi != a.dphi {
                a.alpha - a.dphi * (b.alpha - a.alpha) / (b.dphi - a.dphi)
            } else {
                f64::NAN
            }
        } else {
            let d1 = a.dphi + b.dphi - 3.0 * (a.f - b.f) / (a.alpha - b.alpha);
            let disc = d1 * d1 - a.dphi * b.dphi;
            if disc >= 0.0 {
                let d2 = (b.alpha - a.alpha).signum() * disc.sqrt();
                b.alpha - (b.alpha - a.alpha) * (b.dphi + d2 - d1) / (b.dphi - a.dphi + 2.0 * d2)
            } else {
                f64::NAN
            }
        };
        if candidate.is_finite() {
            candidate.clamp(lo + margin, hi - margin)
        } else {
            0.5 * (lo + hi)
        }
    }
}

/// Result of running L-BFGS on an [`Objective`].
pub(super) struct Solution {
    pub(super) theta: Vec<f64>,
    pub(super) f: f64,
    pub(super) grad_norm: f64,
    pub(super) iterations: usize,
    pub(super) evaluations: usize,
    pub(super) converged: bool,
}

pub(super) fn minimize(obj: &Objective<'_>, cfg: &ProbeConfig) -> Solution {
    let np = obj.n_params();
    let mut theta = vec![0.0f64; np];
    let mut grad = vec![0.0f64; np];
    let mut trial = vec![0.0f64; np];
    let mut trial_grad = vec![0.0f64; np];
    let mut dir = vec![0.0f64; np];
    let mut s = vec![0.0f64; np];
    let mut yv = vec![0.0f64; np];
    let mut history = History::new(cfg.history);

    let mut f = obj.eval(&theta, &mut grad);
    let mut evaluations = 1;
    let mut grad_norm = max_abs(&grad);
    let mut iterations = 0;
    let mut converged = grad_norm < cfg.gtol;

    while !converged && iterations < cfg.max_iter {
        history.direction(&grad, &mut dir);
        let mut dphi0 = dot(&grad, &dir);
        let descent = dphi0 < 0.0;
        if !descent {
            // Not a descent direction (only possible through rounding):
            // forget the curvature history and go downhill.
            history.clear();
            history.direction(&grad, &mut dir);
            dphi0 = dot(&grad, &dir);
        }
        // Without curvature information the natural scale of a step is
        // unknown; a first step of unit length is a safe guess. With
        // history, the quasi-Newton step 1 is the natural one.
        let alpha0 = if history.len() == 0 {
            1.0 / dot(&dir, &dir).sqrt()
        } else {
            1.0
        };
        let mut search = LineSearch {
            obj,
            theta: &theta,
            dir: &dir,
            trial: &mut trial,
            trial_grad: &mut trial_grad,
            evaluations: &mut evaluations,
            f0: f,
            dphi0,
            f_noise: 1e-10 * f.abs().max(1.0),
        };
        let Some(f_new) = search.run(alpha0) else {
            if history.len() > 0 {
                // Retry once from steepest descent before giving up.
                history.clear();
                continue;
            }
            break;
        };
        for (((sv, yvv), (t, x)), (tg, g)) in s
            .iter_mut()
            .zip(yv.iter_mut())
            .zip(trial.iter().zip(&theta))
            .zip(trial_grad.iter().zip(&grad))
        {
            *sv = t - x;
            *yvv = tg - g;
        }
        history.push(&s, &yv);
        std::mem::swap(&mut theta, &mut trial);
        std::mem::swap(&mut grad, &mut trial_grad);
        f = f_new;
        iterations += 1;
        grad_norm = max_abs(&grad);
        converged = grad_norm < cfg.gtol;
    }

    Solution {
        theta,
        f,
        grad_norm,
        iterations,
        evaluations,
        converged,
    }
}
