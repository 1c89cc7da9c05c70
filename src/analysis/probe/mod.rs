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
//!
//! # Layout of the code
//!
//! - `standardize`: [`Standardizer`];
//! - `fit`: [`ProbeConfig`] and [`fit_logistic`];
//! - `model`: the fitted [`LogisticModel`] and its predictions;
//! - `objective`: the penalised loss, its gradient and the numeric kernels;
//! - `lbfgs`: the L-BFGS optimiser and its strong Wolfe line search.

use std::borrow::Cow;

use thiserror::Error;

use super::metrics;

mod fit;
mod lbfgs;
mod model;
mod objective;
mod standardize;
#[cfg(test)]
mod test_support;

pub use fit::{ProbeConfig, fit_logistic};
pub use model::LogisticModel;
pub use standardize::Standardizer;

/// Everything that can go wrong when fitting or applying a probe.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ProbeError {
    /// A buffer does not have the length its shape implies.
    #[error("{what}: expected {expected} values, found {found}")]
    ShapeMismatch {
        /// Which buffer, with its shape.
        what: String,
        /// Length the shape implies.
        expected: usize,
        /// Actual length.
        found: usize,
    },
    /// There are no samples or no feature columns to work with.
    #[error("{what} is empty")]
    EmptyInput {
        /// Which input, with its shape.
        what: String,
    },
    /// A label is not a valid class index.
    #[error("{what}: label {label} at position {index} is not below the class count {n_classes}")]
    LabelOutOfRange {
        /// Which label list.
        what: String,
        /// Position of the bad label.
        index: usize,
        /// The label itself.
        label: usize,
        /// Number of classes it was checked against.
        n_classes: usize,
    },
    /// A classifier needs at least two distinct classes to separate.
    #[error("training labels contain {present} distinct class(es); a probe needs at least 2")]
    TooFewClasses {
        /// Distinct classes found in the training labels.
        present: usize,
    },
    /// A feature is NaN or infinite.
    #[error("{what}: non-finite value {value} at row {row}, column {col}")]
    NonFiniteFeature {
        /// Which feature buffer.
        what: String,
        /// Row (sample) of the bad value.
        row: usize,
        /// Column (feature) of the bad value.
        col: usize,
        /// The value itself.
        value: f64,
    },
    /// A result would need more memory than can be allocated.
    #[error("{what}: cannot allocate {len} elements")]
    TooLarge {
        /// Which result.
        what: String,
        /// Elements it would need.
        len: usize,
    },
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
pub(super) fn check_features<T: Feature>(
    what: &str,
    x: &[T],
    n: usize,
    d: usize,
) -> Result<(), ProbeError> {
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
pub(super) fn check_labels(what: &str, y: &[usize], n_classes: usize) -> Result<(), ProbeError> {
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
    use super::test_support::blobs;
    use super::*;

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
}
