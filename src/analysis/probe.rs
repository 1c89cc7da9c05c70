//! Linear probes: how much class information a frozen representation exposes
//! to a linear read-out.
//!
//! # The protocol
//!
//! 1. **Freeze the encoder** and compute one feature vector per image for the
//!    training and the evaluation splits. Nothing in this module touches the
//!    network; it only sees those vectors.
//! 2. **Standardise** every feature column to zero mean and unit variance,
//!    using statistics of the *training* split only ([`Standardizer`]).
//!    The L2 penalty below is not scale invariant: without standardising, an
//!    encoder whose features happen to be large would be penalised less than
//!    one whose features are small, and the probe would measure feature scale
//!    instead of information. Standardising also makes the optimisation far
//!    better conditioned. Evaluation splits reuse the training statistics so
//!    no information about them leaks into the probe.
//! 3. **Fit an L2-regularised multinomial logistic regression**
//!    ([`fit_logistic`]) to convergence. The objective is the one minimised by
//!    scikit-learn's `LogisticRegression(C, solver="lbfgs")`:
//!
//!    ```text
//!    F(W, b) = (1/n) Σ_i loss_i(W, b) + ||W||² / (2 C n)
//!    ```
//!
//!    where `loss_i` is the softmax cross-entropy of sample `i` and the
//!    intercepts `b` are not penalised. With exactly two classes scikit-learn
//!    fits a single weight vector with the logistic (binomial) loss instead,
//!    and so does this module, so that results agree in that case too.
//!    The objective is strictly convex in `W`, so it has a single minimiser.
//!    Running the optimiser until the gradient vanishes, rather than for a
//!    fixed budget, makes the probe a property of the representation alone:
//!    an early-stopped probe's accuracy also depends on the step size and on
//!    how many steps were taken, which would confound comparisons between
//!    encoders and make numbers irreproducible.
//! 4. **Report accuracy** (and predictions, for confusion matrices) on each
//!    evaluation split. [`linear_probe`] runs all four steps.
//!
//! The optimiser is a limited-memory BFGS (two-loop recursion) with a line
//! search that enforces the strong Wolfe conditions, all in `f64`. It is plain
//! `std` Rust so that it runs unchanged in the browser (wasm32).

use std::borrow::Cow;

use thiserror::Error;

use super::metrics;

/// Everything that can go wrong when fitting or applying a probe.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ProbeError {
    /// A buffer does not have the length its shape implies.
    #[error("{what}: expected {expected} values, found {found}")]
    ShapeMismatch {
        what: String,
        expected: usize,
        found: usize,
    },
    /// There are no samples or no feature columns to work with.
    #[error("{what} is empty")]
    EmptyInput { what: String },
    /// A label is not a valid class index.
    #[error("{what}: label {label} at position {index} is not below the class count {n_classes}")]
    LabelOutOfRange {
        what: String,
        index: usize,
        label: usize,
        n_classes: usize,
    },
    /// A classifier needs at least two distinct classes to separate.
    #[error("training labels contain {present} distinct class(es); a probe needs at least 2")]
    TooFewClasses { present: usize },
    /// A feature is NaN or infinite.
    #[error("{what}: non-finite value {value} at row {row}, column {col}")]
    NonFiniteFeature {
        what: String,
        row: usize,
        col: usize,
        value: f64,
    },
    /// A result would need more memory than can be allocated.
    #[error("{what}: cannot allocate {len} elements")]
    TooLarge { what: String, len: usize },
    /// A [`ProbeConfig`] field is outside its valid range.
    #[error("invalid probe configuration: {0}")]
    InvalidConfig(String),
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// Feature element types accepted by this module: `f32` (how embeddings are
/// usually stored) and `f64` (what [`Standardizer::transform`] returns).
/// All arithmetic is done in `f64` either way.
pub trait Feature: Copy + sealed::Sealed {
    /// The value as `f64` (exact for both implementors).
    fn widen(self) -> f64;
    /// The slice as `f64`, borrowed when it already is.
    fn widen_slice(x: &[Self]) -> Cow<'_, [f64]>;
}

impl Feature for f32 {
    fn widen(self) -> f64 {
        f64::from(self)
    }
    fn widen_slice(x: &[Self]) -> Cow<'_, [f64]> {
        Cow::Owned(x.iter().map(|&v| f64::from(v)).collect())
    }
}

impl Feature for f64 {
    fn widen(self) -> f64 {
        self
    }
    fn widen_slice(x: &[Self]) -> Cow<'_, [f64]> {
        Cow::Borrowed(x)
    }
}

/// Checks that `x` holds `n` rows of `d` finite values.
fn check_features<T: Feature>(what: &str, x: &[T], n: usize, d: usize) -> Result<(), ProbeError> {
    // Saturate instead of overflowing (relevant on 32-bit wasm): a product
    // that does not fit in usize can never match a real buffer length.
    let expected = n.saturating_mul(d);
    if x.len() != expected {
        return Err(ProbeError::ShapeMismatch {
            what: format!("{what} ({n} rows x {d} columns)"),
            expected,
            found: x.len(),
        });
    }
    if d == 0 {
        return Ok(());
    }
    for (row, values) in x.chunks_exact(d).enumerate() {
        if let Some((col, v)) = values
            .iter()
            .enumerate()
            .find(|(_, v)| !v.widen().is_finite())
        {
            return Err(ProbeError::NonFiniteFeature {
                what: what.to_string(),
                row,
                col,
                value: v.widen(),
            });
        }
    }
    Ok(())
}

/// Checks that every label is below `n_classes`.
fn check_labels(what: &str, y: &[usize], n_classes: usize) -> Result<(), ProbeError> {
    match y.iter().enumerate().find(|&(_, &label)| label >= n_classes) {
        Some((index, &label)) => Err(ProbeError::LabelOutOfRange {
            what: what.to_string(),
            index,
            label,
            n_classes,
        }),
        None => Ok(()),
    }
}

/// Per-column standardisation `(x - mean) / std`, fitted on training data.
///
/// The standard deviation is the population one (divide by `n`, as
/// scikit-learn's `StandardScaler` does). A column that is constant, or whose
/// variance is indistinguishable from rounding error, gets a scale of `1.0`,
/// so it maps to (essentially) zero instead of dividing by ~0; the test used
/// is the same as scikit-learn's.
#[derive(Debug, Clone, PartialEq)]
pub struct Standardizer {
    mean: Vec<f64>,
    std: Vec<f64>,
}

impl Standardizer {
    /// Computes column means and standard deviations of `n` rows of `d`
    /// columns stored row-major in `x`.
    pub fn fit<T: Feature>(x: &[T], n: usize, d: usize) -> Result<Self, ProbeError> {
        if n == 0 || d == 0 {
            return Err(ProbeError::EmptyInput {
                what: format!("features to standardise ({n} rows x {d} columns)"),
            });
        }
        check_features("features", x, n, d)?;
        let nf = n as f64;

        let mut mean = vec![0.0f64; d];
        for row in x.chunks_exact(d) {
            for (m, v) in mean.iter_mut().zip(row) {
                *m += v.widen();
            }
        }
        for m in &mut mean {
            *m /= nf;
        }

        // Two-pass variance with the Chan-Golub-LeVeque correction term,
        // which removes most of the error left in the computed mean.
        let mut sq = vec![0.0f64; d];
        let mut corr = vec![0.0f64; d];
        for row in x.chunks_exact(d) {
            for (((s, c), m), v) in sq.iter_mut().zip(&mut corr).zip(&mean).zip(row) {
                let dev = v.widen() - m;
                *s += dev * dev;
                *c += dev;
            }
        }
        let std = sq
            .iter()
            .zip(&corr)
            .zip(&mean)
            .map(|((&s, &c), &m)| {
                let var = ((s - c * c / nf) / nf).max(0.0);
                // A variance this small cannot be told apart from the rounding
                // error of computing it for a constant column.
                let bound = nf * f64::EPSILON * var + (nf * m * f64::EPSILON).powi(2);
                if var <= bound { 1.0 } else { var.sqrt() }
            })
            .collect();
        Ok(Self { mean, std })
    }

    /// Number of feature columns.
    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// Column means of the training data.
    pub fn mean(&self) -> &[f64] {
        &self.mean
    }

    /// Column scales: the population standard deviation, or `1.0` for
    /// (near-)constant columns.
    pub fn scale(&self) -> &[f64] {
        &self.std
    }

    /// Standardises `n` rows (row-major, [`Self::dim`] columns) with the
    /// training statistics. The result is `f64` so no precision is lost
    /// before fitting.
    pub fn transform<T: Feature>(&self, x: &[T], n: usize) -> Result<Vec<f64>, ProbeError> {
        let d = self.dim();
        check_features("features", x, n, d)?;
        let mut out = Vec::with_capacity(x.len());
        if d == 0 {
            return Ok(out);
        }
        for row in x.chunks_exact(d) {
            out.extend(
                row.iter()
                    .zip(&self.mean)
                    .zip(&self.std)
                    .map(|((v, m), s)| (v.widen() - m) / s),
            );
        }
        Ok(out)
    }
}

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
    fn validate(&self) -> Result<(), ProbeError> {
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

/// A fitted linear classifier: `score_k(x) = weights[k]·x + bias[k]`, and the
/// predicted class is the one with the largest score.
///
/// The model applies to features in the space it was fitted in; for a model
/// from [`linear_probe`] that is the standardised space (use
/// [`ProbeReport::predict`] for raw features).
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
    /// compared with [`ProbeConfig::gtol`].
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
fn with_capacity<T>(len: Option<usize>, what: &str) -> Result<Vec<T>, ProbeError> {
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

/// Dot product with eight independent accumulators so the compiler can keep
/// several SIMD lanes busy (a single running sum forces strict ordering).
#[inline]
fn dot(a: &[f64], b: &[f64]) -> f64 {
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
fn axpy(y: &mut [f64], a: f64, x: &[f64]) {
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
fn sigmoid(s: f64) -> f64 {
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
struct Objective<'a> {
    x: &'a [f64],
    d: usize,
    /// Labels renumbered to `0..k`.
    y: &'a [usize],
    k: usize,
    c: f64,
}

impl Objective<'_> {
    fn outputs(&self) -> usize {
        if self.k == 2 { 1 } else { self.k }
    }

    fn n_params(&self) -> usize {
        self.outputs() * (self.d + 1)
    }

    /// Returns `Φ(θ)` and writes `∇Φ(θ)` into `grad`.
    fn eval(&self, theta: &[f64], grad: &mut [f64]) -> f64 {
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

fn max_abs(v: &[f64]) -> f64 {
    v.iter().fold(0.0f64, |m, x| m.max(x.abs()))
}

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
struct Solution {
    theta: Vec<f64>,
    f: f64,
    grad_norm: f64,
    iterations: usize,
    evaluations: usize,
    converged: bool,
}

fn minimize(obj: &Objective<'_>, cfg: &ProbeConfig) -> Solution {
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

/// Fits an L2-regularised logistic regression on `n` rows of `d` features
/// (row-major `x`) with labels `y` in `0..n_classes`.
///
/// This is the optimiser only: standardise the features first (or use
/// [`linear_probe`], which does). It minimises scikit-learn's objective for
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

/// Accuracy, predictions and confusion matrix of a probe on one split.
#[derive(Debug, Clone, PartialEq)]
pub struct SplitResult {
    /// Fraction of correctly classified samples (`0.0` for an empty split).
    pub accuracy: f64,
    /// Predicted class per sample, in input order.
    pub predictions: Vec<usize>,
    /// `confusion[truth][pred]` counts (see [`metrics::confusion_matrix`]).
    pub confusion: Vec<Vec<u64>>,
}

/// Everything [`linear_probe`] produces.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeReport {
    /// Training-split statistics used to standardise every split.
    pub standardizer: Standardizer,
    /// The fitted probe, in standardised feature space.
    pub model: LogisticModel,
    /// Results on the training split itself.
    pub train: SplitResult,
    /// Results on each evaluation split, in the order given.
    pub test: Vec<SplitResult>,
}

impl ProbeReport {
    /// Predicts classes for `n` rows of *raw* (unstandardised) features.
    pub fn predict(&self, x: &[f32], n: usize) -> Result<Vec<usize>, ProbeError> {
        let z = self.standardizer.transform(x, n)?;
        self.model.predict(&z, n)
    }
}

/// Runs the full linear-probe protocol (see the module docs).
///
/// * `train_x`: row-major features, `train_y.len()` rows of `d` columns.
/// * `train_y`: labels in `0..n_classes`.
/// * `test_sets`: `(features, labels)` pairs, each laid out like the
///   training data; they are standardised with the training statistics.
///
/// Every input is validated before any work is done. The probe is fitted
/// with `cfg`; check `report.model.converged` before trusting the numbers.
pub fn linear_probe(
    train_x: &[f32],
    train_y: &[usize],
    d: usize,
    n_classes: usize,
    test_sets: &[(&[f32], &[usize])],
    cfg: &ProbeConfig,
) -> Result<ProbeReport, ProbeError> {
    cfg.validate()?;
    let n = train_y.len();
    if n == 0 || d == 0 {
        return Err(ProbeError::EmptyInput {
            what: format!("training split ({n} rows x {d} columns)"),
        });
    }
    check_features("training features", train_x, n, d)?;
    check_labels("training labels", train_y, n_classes)?;
    for (i, (x, y)) in test_sets.iter().enumerate() {
        check_features(&format!("test set {i} features"), x, y.len(), d)?;
        check_labels(&format!("test set {i} labels"), y, n_classes)?;
    }

    let standardizer = Standardizer::fit(train_x, n, d)?;
    let z_train = standardizer.transform(train_x, n)?;
    let model = fit_logistic(&z_train, n, d, train_y, n_classes, cfg)?;

    let evaluate = |z: &[f64], y: &[usize]| -> Result<SplitResult, ProbeError> {
        let predictions = model.predict(z, y.len())?;
        Ok(SplitResult {
            accuracy: metrics::accuracy(&predictions, y),
            confusion: metrics::confusion_matrix(&predictions, y, n_classes),
            predictions,
        })
    };
    let train = evaluate(&z_train, train_y)?;
    drop(z_train);
    let mut test = Vec::with_capacity(test_sets.len());
    for (x, y) in test_sets {
        let z = standardizer.transform(x, y.len())?;
        test.push(evaluate(&z, y)?);
    }

    Ok(ProbeReport {
        standardizer,
        model,
        train,
        test,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small deterministic pseudo-random generator (SplitMix64).
    struct Rng(u64);

    impl Rng {
        fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        fn uniform(&mut self) -> f64 {
            (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
        }

        fn normal(&mut self) -> f64 {
            let u1 = self.uniform().max(1e-300);
            let u2 = self.uniform();
            (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
        }
    }

    /// Gaussian blobs: class `c` is centred at `sep * e_c` (cyclic).
    fn blobs(n: usize, d: usize, k: usize, sep: f64, seed: u64) -> (Vec<f32>, Vec<usize>) {
        let mut rng = Rng(seed);
        let mut x = Vec::with_capacity(n * d);
        let mut y = Vec::with_capacity(n);
        for i in 0..n {
            let c = i % k;
            for j in 0..d {
                let centre = if j % k == c { sep } else { 0.0 };
                x.push((centre + rng.normal()) as f32);
            }
            y.push(c);
        }
        (x, y)
    }

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
    fn standardizer_matches_population_statistics() {
        // Column 0: 1,2,3,4; column 1 constant; column 2 tiny spread.
        let x = [
            1.0f32, 5.0, 0.25, 2.0, 5.0, 0.25, 3.0, 5.0, 0.5, 4.0, 5.0, 0.5,
        ];
        let s = Standardizer::fit(&x, 4, 3).unwrap();
        assert_eq!(s.mean(), &[2.5, 5.0, 0.375]);
        assert!((s.scale()[0] - 1.25f64.sqrt()).abs() < 1e-15);
        assert_eq!(s.scale()[1], 1.0);
        assert!((s.scale()[2] - 0.125).abs() < 1e-15);
        let z = s.transform(&x, 4).unwrap();
        for j in 0..3 {
            let col: Vec<f64> = (0..4).map(|i| z[i * 3 + j]).collect();
            let mean = col.iter().sum::<f64>() / 4.0;
            assert!(mean.abs() < 1e-15);
            assert!(col.iter().all(|v| v.is_finite()));
        }
        // Constant column maps to exactly zero.
        assert!((0..4).all(|i| z[i * 3 + 1] == 0.0));
    }

    #[test]
    fn standardizer_treats_rounding_noise_as_constant() {
        // 0.1 is not exactly representable; the computed variance of a
        // constant 0.1 column is pure rounding error.
        let x = vec![0.1f32; 1000];
        let s = Standardizer::fit(&x, 1000, 1).unwrap();
        assert_eq!(s.scale(), &[1.0]);
        let z = s.transform(&x, 1000).unwrap();
        assert!(z.iter().all(|v| v.abs() < 1e-12));
    }

    #[test]
    fn zero_variance_feature_gets_zero_weight() {
        let (n, d, k) = (150, 5, 3);
        let (mut x, y) = blobs(n, d, k, 1.5, 2);
        for i in 0..n {
            x[i * d + 2] = 3.0;
        }
        let report = linear_probe(&x, &y, d, k, &[], &ProbeConfig::default()).unwrap();
        assert!(report.model.converged);
        for c in 0..k {
            assert_eq!(report.model.weights[c * d + 2], 0.0);
        }
        assert!(report.model.weights.iter().all(|w| w.is_finite()));
    }

    #[test]
    fn linear_probe_reports_every_split() {
        let (d, k) = (8, 3);
        let (xtr, ytr) = blobs(300, d, k, 2.0, 1);
        let (xte, yte) = blobs(90, d, k, 2.0, 2);
        let report = linear_probe(
            &xtr,
            &ytr,
            d,
            k,
            &[(&xte, &yte), (&[], &[])],
            &ProbeConfig::default(),
        )
        .unwrap();
        assert!(report.model.converged);
        assert_eq!(report.train.predictions.len(), 300);
        assert_eq!(report.test.len(), 2);
        assert_eq!(report.test[0].predictions.len(), 90);
        assert_eq!(report.test[1].accuracy, 0.0);
        assert!(report.test[1].predictions.is_empty());
        assert!(report.test[0].accuracy > 0.8);
        let cm_total: u64 = report.test[0].confusion.iter().flatten().sum();
        assert_eq!(cm_total, 90);
        assert_eq!(
            report.predict(&xte, 90).unwrap(),
            report.test[0].predictions
        );
        assert_eq!(
            report.test[0].accuracy,
            metrics::accuracy(&report.test[0].predictions, &yte)
        );
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

    #[test]
    fn input_errors() {
        let cfg = ProbeConfig::default();
        let x = [0.0f32, 1.0, 2.0, 3.0];
        assert!(matches!(
            fit_logistic(&x, 2, 2, &[0, 1, 0], 2, &cfg),
            Err(ProbeError::ShapeMismatch { .. })
        ));
        assert!(matches!(
            fit_logistic(&x, 3, 2, &[0, 1, 0], 2, &cfg),
            Err(ProbeError::ShapeMismatch { .. })
        ));
        assert!(matches!(
            fit_logistic::<f32>(&[], 0, 2, &[], 2, &cfg),
            Err(ProbeError::EmptyInput { .. })
        ));
        assert!(matches!(
            fit_logistic(&x, 2, 2, &[0, 2], 2, &cfg),
            Err(ProbeError::LabelOutOfRange {
                index: 1,
                label: 2,
                ..
            })
        ));
        assert!(matches!(
            fit_logistic(&x, 2, 2, &[1, 1], 3, &cfg),
            Err(ProbeError::TooFewClasses { present: 1 })
        ));
        let bad = [0.0f32, 1.0, f32::NAN, 3.0];
        assert!(matches!(
            fit_logistic(&bad, 2, 2, &[0, 1], 2, &cfg),
            Err(ProbeError::NonFiniteFeature { row: 1, col: 0, .. })
        ));
        for bad_cfg in [
            ProbeConfig {
                c: 0.0,
                ..cfg.clone()
            },
            ProbeConfig {
                c: f64::NAN,
                ..cfg.clone()
            },
            ProbeConfig {
                history: 0,
                ..cfg.clone()
            },
            ProbeConfig {
                gtol: -1.0,
                ..cfg.clone()
            },
        ] {
            assert!(matches!(
                fit_logistic(&x, 2, 2, &[0, 1], 2, &bad_cfg),
                Err(ProbeError::InvalidConfig(_))
            ));
        }
        let model = fit_logistic(&x, 2, 2, &[0, 1], 2, &cfg).unwrap();
        assert!(matches!(
            model.predict(&x[..3], 2),
            Err(ProbeError::ShapeMismatch { .. })
        ));
        assert!(matches!(
            model.predict(&[f32::INFINITY, 0.0], 1),
            Err(ProbeError::NonFiniteFeature { row: 0, col: 0, .. })
        ));
        let mut broken = model.clone();
        broken.weights.pop();
        assert!(broken.predict(&x, 2).is_err());
        assert!(matches!(
            Standardizer::fit(&x, 2, 2).unwrap().transform(&x[..3], 2),
            Err(ProbeError::ShapeMismatch { .. })
        ));
    }

    #[test]
    fn error_messages_name_the_location() {
        let err = linear_probe(
            &[0.0, 1.0, 2.0, 3.0],
            &[0, 1],
            2,
            2,
            &[(&[0.0, f32::NEG_INFINITY], &[0])],
            &ProbeConfig::default(),
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("test set 0"), "{msg}");
        assert!(msg.contains("row 0, column 1"), "{msg}");
    }

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
