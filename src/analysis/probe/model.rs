//! The fitted linear classifier and its predictions.

use super::objective::dot;
use super::{Feature, ProbeError, check_features};

/// A fitted linear classifier: `score_k(x) = weights[k]·x + bias[k]`, and the
/// predicted class is the one with the largest score.
///
/// The model applies to features in the space it was fitted in; for a model
/// from [`linear_probe`](super::linear_probe) that is the standardised space
/// (use [`ProbeReport::predict`](super::ProbeReport::predict) for raw features).
///
/// Two representation details:
/// * With two classes the fit has one weight vector `w` and intercept `b`
///   (scikit-learn's `coef_[0]`, `intercept_[0]`). It is stored as row
///   `+w/2, +b/2` for the higher class and `-w/2, -b/2` for the lower one,
///   which gives exactly the same probabilities through the softmax. So
///   `row(hi) - row(lo)` is scikit-learn's coefficient vector.
/// * A class index below `n_classes` with no training samples cannot be
///   predicted: its weights are zero and its bias is `-inf` (the limit the
///   unpenalised intercept tends to), so its probability is exactly 0.
///
/// With more than two classes the intercepts are shifted to sum to zero
/// (softmax is unchanged by a common shift), as the penalty already makes the
/// weights of each feature sum to zero across classes.
#[derive(Debug, Clone, PartialEq)]
pub struct LogisticModel {
    /// Number of classes (rows of `weights`).
    pub n_classes: usize,
    /// Number of features (columns of `weights`).
    pub dim: usize,
    /// Row-major `n_classes x dim` weight matrix.
    pub weights: Vec<f64>,
    /// One intercept per class.
    pub bias: Vec<f64>,
    /// L-BFGS iterations performed.
    pub iterations: usize,
    /// Objective and gradient evaluations performed (including line search).
    pub evaluations: usize,
    /// Whether the gradient test (`grad_norm < gtol`) was met.
    pub converged: bool,
    /// Final value of scikit-learn's objective
    /// `(1/n) Σ_i loss_i + ||W||²/(2Cn)` (comparable to `opt_res.fun`).
    pub final_loss: f64,
    /// Final max-abs gradient of `C·Σ_i loss_i + ½||W||²`, the quantity
    /// compared with [`ProbeConfig::gtol`](super::ProbeConfig::gtol).
    pub grad_norm: f64,
}

impl LogisticModel {
    /// Weights of class `k`, or `None` if `k` is not a class.
    pub fn row(&self, k: usize) -> Option<&[f64]> {
        let start = k.checked_mul(self.dim)?;
        self.weights.get(start..start.checked_add(self.dim)?)
    }

    /// Validates the model's own shape and the `n x dim` input.
    fn check_input<T: Feature>(&self, x: &[T], n: usize) -> Result<(), ProbeError> {
        if self.dim == 0 || self.n_classes == 0 {
            return Err(ProbeError::EmptyInput {
                what: format!("model ({} classes x {} features)", self.n_classes, self.dim),
            });
        }
        let expected = self.n_classes.saturating_mul(self.dim);
        if self.weights.len() != expected {
            return Err(ProbeError::ShapeMismatch {
                what: "model weights".to_string(),
                expected,
                found: self.weights.len(),
            });
        }
        if self.bias.len() != self.n_classes {
            return Err(ProbeError::ShapeMismatch {
                what: "model bias".to_string(),
                expected: self.n_classes,
                found: self.bias.len(),
            });
        }
        check_features("features", x, n, self.dim)
    }

    /// Calls `f(scores)` with the class scores of each row of `x`, which
    /// must have passed [`Self::check_input`].
    fn for_each_score<T: Feature>(&self, x: &[T], mut f: impl FnMut(&[f64])) {
        let mut row = Vec::with_capacity(self.dim);
        let mut scores = vec![0.0f64; self.n_classes];
        for values in x.chunks_exact(self.dim) {
            row.clear();
            row.extend(values.iter().map(|v| v.widen()));
            for ((s, w), b) in scores
                .iter_mut()
                .zip(self.weights.chunks_exact(self.dim))
                .zip(&self.bias)
            {
                *s = b + dot(w, &row);
            }
            f(&scores);
        }
    }

    /// Raw class scores (logits), row-major `n x n_classes`.
    pub fn decision_function<T: Feature>(&self, x: &[T], n: usize) -> Result<Vec<f64>, ProbeError> {
        self.check_input(x, n)?;
        let mut out = with_capacity(n.checked_mul(self.n_classes), "class scores")?;
        self.for_each_score(x, |s| out.extend_from_slice(s));
        Ok(out)
    }

    /// Most likely class for each of the `n` rows of `x` (ties go to the
    /// lower class index).
    pub fn predict<T: Feature>(&self, x: &[T], n: usize) -> Result<Vec<usize>, ProbeError> {
        self.check_input(x, n)?;
        let mut out = Vec::with_capacity(n);
        self.for_each_score(x, |s| out.push(argmax(s)));
        Ok(out)
    }

    /// Class probabilities (softmax of the scores), row-major
    /// `n x n_classes`; each row sums to one.
    pub fn predict_proba<T: Feature>(&self, x: &[T], n: usize) -> Result<Vec<f64>, ProbeError> {
        self.check_input(x, n)?;
        let mut out = with_capacity(n.checked_mul(self.n_classes), "class probabilities")?;
        self.for_each_score(x, |s| {
            let max = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let start = out.len();
            out.extend(s.iter().map(|&v| (v - max).exp()));
            let total: f64 = out[start..].iter().sum();
            for p in &mut out[start..] {
                *p /= total;
            }
        });
        Ok(out)
    }
}

/// An empty vector with room for `len` elements, or an error instead of a
/// panic when that is more than can be allocated (or `len` overflowed).
pub(super) fn with_capacity<T>(len: Option<usize>, what: &str) -> Result<Vec<T>, ProbeError> {
    let too_large = || ProbeError::TooLarge {
        what: what.to_string(),
        len: len.unwrap_or(usize::MAX),
    };
    let len = len.ok_or_else(too_large)?;
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| too_large())?;
    Ok(v)
}

/// Index of the largest value; the first one on ties.
fn argmax(s: &[f64]) -> usize {
    let mut best = 0;
    for (k, &v) in s.iter().enumerate().skip(1) {
        if v > s[best] {
            best = k;
        }
    }
    best
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflowing_shape_is_an_error_not_a_panic() {
        let model = LogisticModel {
            n_classes: 2,
            dim: 2,
            weights: vec![0.0; 4],
            bias: vec![0.0; 2],
            iterations: 0,
            evaluations: 0,
            converged: true,
            final_loss: 0.0,
            grad_norm: 0.0,
        };
        assert!(matches!(
            model.predict(&[0.0f32; 4], usize::MAX),
            Err(ProbeError::ShapeMismatch { .. })
        ));
    }
}
