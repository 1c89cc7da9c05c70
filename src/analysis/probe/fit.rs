//! Fitting the L2-regularised logistic regression.

use super::lbfgs::minimize;
use super::model::with_capacity;
use super::objective::Objective;
use super::{Feature, LogisticModel, ProbeError, check_features, check_labels};

/// Optimisation settings for [`fit_logistic`].
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeConfig {
    /// Inverse regularisation strength, as scikit-learn's `C`: larger means a
    /// weaker L2 penalty. Must be finite and positive. Default `1.0`.
    pub c: f64,
    /// Maximum number of L-BFGS iterations. Default `1000`.
    pub max_iter: usize,
    /// Stop once every component of the gradient of
    /// `C·Σ_i loss_i + ½||W||²` is below this in absolute value. Default `1e-6`.
    ///
    /// That objective is `n·C` times scikit-learn's `F` (same minimiser), and
    /// is at least 1-strongly convex in `W`. Measuring the gradient there
    /// keeps the meaning of `gtol` independent of the sample count: it bounds
    /// how far the weights can still be from the exact solution, roughly
    /// `gtol` per component. scikit-learn's `tol` corresponds to
    /// `gtol / (n·C)`.
    pub gtol: f64,
    /// Number of curvature pairs L-BFGS remembers. Default `10`.
    pub history: usize,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        Self {
            c: 1.0,
            max_iter: 1000,
            gtol: 1e-6,
            history: 10,
        }
    }
}

impl ProbeConfig {
    pub(super) fn validate(&self) -> Result<(), ProbeError> {
        if !(self.c.is_finite() && self.c > 0.0) {
            return Err(ProbeError::InvalidConfig(format!(
                "c must be finite and positive, got {}",
                self.c
            )));
        }
        if !(self.gtol.is_finite() && self.gtol >= 0.0) {
            return Err(ProbeError::InvalidConfig(format!(
                "gtol must be finite and non-negative, got {}",
                self.gtol
            )));
        }
        if self.history == 0 {
            return Err(ProbeError::InvalidConfig(
                "history must be at least 1".to_string(),
            ));
        }
        Ok(())
    }
}

/// Fits an L2-regularised logistic regression on `n` rows of `d` features
/// (row-major `x`) with labels `y` in `0..n_classes`.
///
/// This is the optimiser only: standardise the features first (or use
/// [`linear_probe`](super::linear_probe), which does). It minimises scikit-learn's objective for
/// `LogisticRegression(C=cfg.c, solver="lbfgs")`, multinomial for three or
/// more classes present and binomial for two, starting from all-zero
/// parameters. Classes in `0..n_classes` without training samples get a bias
/// of `-inf` (see [`LogisticModel`]).
///
/// Hitting `max_iter` is not an error: the model is returned with
/// `converged == false` so the caller can decide what to do.
pub fn fit_logistic<T: Feature>(
    x: &[T],
    n: usize,
    d: usize,
    y: &[usize],
    n_classes: usize,
    cfg: &ProbeConfig,
) -> Result<LogisticModel, ProbeError> {
    cfg.validate()?;
    if n == 0 || d == 0 {
        return Err(ProbeError::EmptyInput {
            what: format!("training features ({n} rows x {d} columns)"),
        });
    }
    check_features("training features", x, n, d)?;
    if y.len() != n {
        return Err(ProbeError::ShapeMismatch {
            what: "training labels".to_string(),
            expected: n,
            found: y.len(),
        });
    }
    check_labels("training labels", y, n_classes)?;

    // Renumber the classes that occur to 0..k, keeping their order.
    let mut present = y.to_vec();
    present.sort_unstable();
    present.dedup();
    if present.len() < 2 {
        return Err(ProbeError::TooFewClasses {
            present: present.len(),
        });
    }
    let y_compact: Vec<usize> = y
        .iter()
        .map(|label| present.binary_search(label).unwrap_or(0))
        .collect();

    let xf = T::widen_slice(x);
    let obj = Objective {
        x: &xf,
        d,
        y: &y_compact,
        k: present.len(),
        c: cfg.c,
    };
    let sol = minimize(&obj, cfg);

    let mut weights = with_capacity(n_classes.checked_mul(d), "model weights")?;
    weights.resize(n_classes * d, 0.0f64);
    let mut bias = with_capacity(Some(n_classes), "model bias")?;
    bias.resize(n_classes, f64::NEG_INFINITY);
    let (w, b) = sol.theta.split_at(obj.outputs() * d);
    if obj.outputs() == 1 {
        // Binomial: p(hi) = sigmoid(w·x + b) = softmax of (±(w·x + b)/2).
        let (lo, hi) = (present[0], present[1]);
        for (j, &wv) in w.iter().enumerate() {
            weights[hi * d + j] = 0.5 * wv;
            weights[lo * d + j] = -0.5 * wv;
        }
        bias[hi] = 0.5 * b[0];
        bias[lo] = -0.5 * b[0];
    } else {
        let mean_b = b.iter().sum::<f64>() / b.len() as f64;
        for ((&c, wk), &bk) in present.iter().zip(w.chunks_exact(d)).zip(b) {
            weights[c * d..(c + 1) * d].copy_from_slice(wk);
            bias[c] = bk - mean_b;
        }
    }

    Ok(LogisticModel {
        n_classes,
        dim: d,
        weights,
        bias,
        iterations: sol.iterations,
        evaluations: sol.evaluations,
        converged: sol.converged,
        final_loss: sol.f / (n as f64 * cfg.c),
        grad_norm: sol.grad_norm,
    })
}
#[cfg(test)]
mod tests {
    use super::super::metrics;
    use super::super::objective::sigmoid;
    use super::super::test_support::blobs;
    use super::*;

    #[test]
    fn binary_fit_matches_closed_form_solution() {
        // x = +1 with label 1 and x = -1 with label 0, m times each. By
        // symmetry b = 0 and the stationarity condition is
        // w = 2 m C (1 - sigmoid(w)).
        let m = 25;
        let c = 0.3;
        let mut x = Vec::new();
        let mut y = Vec::new();
        for _ in 0..m {
            x.extend([1.0f32, -1.0]);
            y.extend([1usize, 0]);
        }
        let cfg = ProbeConfig {
            c,
            gtol: 1e-10,
            ..ProbeConfig::default()
        };
        let model = fit_logistic(&x, 2 * m, 1, &y, 2, &cfg).unwrap();
        assert!(model.converged);
        let (mut lo, mut hi) = (0.0f64, 100.0f64);
        for _ in 0..200 {
            let mid = 0.5 * (lo + hi);
            if mid < 2.0 * m as f64 * c * (1.0 - sigmoid(mid)) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let w = model.weights[1] - model.weights[0];
        assert!((w - lo).abs() < 1e-9, "w = {w}, expected {lo}");
        assert!(model.bias[1].abs() < 1e-9 && model.bias[0].abs() < 1e-9);
        // Symmetric storage.
        assert_eq!(model.weights[0], -model.weights[1]);
    }

    #[test]
    fn multinomial_fit_converges_and_is_stationary() {
        let (n, d, k) = (600, 12, 4);
        let (x, y) = blobs(n, d, k, 1.5, 11);
        let cfg = ProbeConfig::default();
        let model = fit_logistic(&x, n, d, &y, k, &cfg).unwrap();
        assert!(model.converged, "{model:?}");
        assert!(model.grad_norm < cfg.gtol);
        assert!(model.iterations > 0 && model.iterations < 200);
        // Penalty makes the weights of each feature sum to zero across
        // classes; the intercepts are centred explicitly.
        for j in 0..d {
            let s: f64 = (0..k).map(|c| model.weights[c * d + j]).sum();
            assert!(s.abs() < 1e-8, "feature {j}: {s}");
        }
        assert!(model.bias.iter().sum::<f64>().abs() < 1e-12);
        // Loss below the uniform-prediction loss ln(k).
        assert!(model.final_loss < (k as f64).ln());
        let acc = metrics::accuracy(&model.predict(&x, n).unwrap(), &y);
        assert!(acc > 0.8, "accuracy {acc}");
    }

    #[test]
    fn row_order_does_not_change_the_solution() {
        let (n, d, k) = (200, 6, 3);
        let (x, y) = blobs(n, d, k, 1.0, 5);
        let cfg = ProbeConfig {
            gtol: 1e-9,
            ..ProbeConfig::default()
        };
        let a = fit_logistic(&x, n, d, &y, k, &cfg).unwrap();
        let mut xr = Vec::with_capacity(x.len());
        let mut yr = Vec::with_capacity(n);
        for i in (0..n).rev() {
            xr.extend_from_slice(&x[i * d..(i + 1) * d]);
            yr.push(y[i]);
        }
        let b = fit_logistic(&xr, n, d, &yr, k, &cfg).unwrap();
        for (wa, wb) in a.weights.iter().zip(&b.weights) {
            assert!((wa - wb).abs() < 1e-7);
        }
    }

    #[test]
    fn absent_class_is_never_predicted() {
        let (n, d) = (90, 4);
        let (x, y3) = blobs(n, d, 3, 2.0, 9);
        // Relabel 0,1,2 as 0,2,3: class 1 has no samples out of 4.
        let y: Vec<usize> = y3.iter().map(|&c| if c == 0 { 0 } else { c + 1 }).collect();
        let model = fit_logistic(&x, n, d, &y, 4, &ProbeConfig::default()).unwrap();
        assert!(model.converged);
        assert_eq!(model.bias[1], f64::NEG_INFINITY);
        assert!(model.row(1).unwrap().iter().all(|&w| w == 0.0));
        let pred = model.predict(&x, n).unwrap();
        assert!(pred.iter().all(|&p| p != 1));
        let proba = model.predict_proba(&x, n).unwrap();
        for row in proba.chunks_exact(4) {
            assert_eq!(row[1], 0.0);
            assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            assert!(row.iter().all(|p| p.is_finite()));
        }
        // Two present classes out of five use the binomial fit.
        let y2: Vec<usize> = y3.iter().map(|&c| if c == 0 { 1 } else { 4 }).collect();
        let m2 = fit_logistic(&x, n, d, &y2, 5, &ProbeConfig::default()).unwrap();
        assert!(m2.converged);
        let pred2 = m2.predict(&x, n).unwrap();
        assert!(pred2.iter().all(|&p| p == 1 || p == 4));
    }

    #[test]
    fn max_iter_is_reported_not_an_error() {
        let (x, y) = blobs(100, 4, 3, 1.0, 4);
        let cfg = ProbeConfig {
            max_iter: 2,
            ..ProbeConfig::default()
        };
        let model = fit_logistic(&x, 100, 4, &y, 3, &cfg).unwrap();
        assert!(!model.converged);
        assert_eq!(model.iterations, 2);
        let cfg0 = ProbeConfig {
            max_iter: 0,
            ..ProbeConfig::default()
        };
        let m0 = fit_logistic(&x, 100, 4, &y, 3, &cfg0).unwrap();
        assert_eq!(m0.iterations, 0);
        assert!((m0.final_loss - 3f64.ln()).abs() < 1e-12);
    }
}
