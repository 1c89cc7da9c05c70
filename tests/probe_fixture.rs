//! Checks the linear probe against scikit-learn on the problems recorded by
//! `scripts/make_probe_fixtures.py` (regenerate the fixture with that script).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by unwrapping

use replab::analysis::metrics;
use replab::analysis::probe::{
    LogisticModel, ProbeConfig, ProbeError, Standardizer, fit_logistic, linear_probe,
};
use serde::Deserialize;

const FIXTURE: &str = include_str!("fixtures/probe.json");

#[derive(Deserialize)]
struct Fixture {
    feature_divisor: u32,
    problems: Vec<Problem>,
}

#[derive(Deserialize)]
struct Split {
    x_int: Vec<i32>,
    y: Vec<usize>,
}

#[derive(Deserialize)]
struct Problem {
    name: String,
    n_classes: usize,
    d: usize,
    c: f64,
    train: Split,
    test: Split,
    scaler_mean: Vec<f64>,
    scaler_scale: Vec<f64>,
    coef: Vec<Vec<f64>>,
    intercept: Vec<f64>,
    objective: f64,
    train_accuracy: f64,
    test_accuracy: f64,
    train_pred: Vec<usize>,
    test_pred: Vec<usize>,
}

fn load() -> Fixture {
    serde_json::from_str(FIXTURE).expect("fixture parses")
}

/// The exact float32 features the fixture script fed to scikit-learn.
fn features(split: &Split, divisor: u32) -> Vec<f32> {
    split
        .x_int
        .iter()
        .map(|&q| q as f32 / divisor as f32)
        .collect()
}

/// The model's coefficients and intercepts in scikit-learn's layout: one row
/// per class, or a single row `w` for a binary problem.
fn sklearn_layout(model: &LogisticModel) -> (Vec<Vec<f64>>, Vec<f64>) {
    if model.n_classes == 2 {
        let w = model
            .row(1)
            .unwrap()
            .iter()
            .zip(model.row(0).unwrap())
            .map(|(hi, lo)| hi - lo)
            .collect();
        (vec![w], vec![model.bias[1] - model.bias[0]])
    } else {
        let rows = (0..model.n_classes)
            .map(|k| model.row(k).unwrap().to_vec())
            .collect();
        (rows, model.bias.clone())
    }
}

fn centred(v: &[f64]) -> Vec<f64> {
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    v.iter().map(|x| x - mean).collect()
}

#[test]
fn matches_scikit_learn() {
    let fixture = load();
    assert_eq!(fixture.problems.len(), 3);
    let mut worst_rel = 0.0f64;
    for p in &fixture.problems {
        let xtr = features(&p.train, fixture.feature_divisor);
        let xte = features(&p.test, fixture.feature_divisor);
        let cfg = ProbeConfig {
            c: p.c,
            ..ProbeConfig::default()
        };
        let report = linear_probe(
            &xtr,
            &p.train.y,
            p.d,
            p.n_classes,
            &[(&xte, &p.test.y)],
            &cfg,
        )
        .unwrap();
        let model = &report.model;
        assert!(model.converged, "{}: {model:?}", p.name);
        assert!(model.grad_norm < cfg.gtol);

        // Standardisation statistics.
        for (name, ours, theirs) in [
            ("mean", report.standardizer.mean(), &p.scaler_mean),
            ("scale", report.standardizer.scale(), &p.scaler_scale),
        ] {
            for (j, (a, b)) in ours.iter().zip(theirs).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-12 * b.abs().max(1.0),
                    "{} {name}[{j}]: {a} vs {b}",
                    p.name
                );
            }
        }

        // Coefficients and intercepts, relative to the largest coefficient.
        let (coef, intercept) = sklearn_layout(model);
        assert_eq!(coef.len(), p.coef.len());
        let scale = p
            .coef
            .iter()
            .flatten()
            .chain(&p.intercept)
            .fold(0.0f64, |m, v| m.max(v.abs()));
        let mut max_diff = 0.0f64;
        for (ours, theirs) in coef.iter().zip(&p.coef) {
            assert_eq!(ours.len(), p.d);
            for (a, b) in ours.iter().zip(theirs) {
                max_diff = max_diff.max((a - b).abs());
            }
        }
        // Intercepts of a multinomial model are only defined up to a common
        // shift; compare both centred.
        let (ib, ia) = if p.n_classes == 2 {
            (p.intercept.clone(), intercept)
        } else {
            (centred(&p.intercept), centred(&intercept))
        };
        for (a, b) in ia.iter().zip(&ib) {
            max_diff = max_diff.max((a - b).abs());
        }
        let rel = max_diff / scale;
        worst_rel = worst_rel.max(rel);
        println!(
            "{}: {} iterations, {} evaluations, max |coef diff| = {max_diff:.3e} \
             (relative {rel:.3e}), objective {} vs sklearn {}",
            p.name, model.iterations, model.evaluations, model.final_loss, p.objective
        );
        assert!(rel < 1e-4, "{}: relative coefficient error {rel}", p.name);

        // Same objective value (ours may be marginally lower: sklearn stops
        // on a relative-decrease test a little before its gradient test).
        assert!(
            (model.final_loss - p.objective).abs() <= 1e-9 * p.objective,
            "{}: objective {} vs {}",
            p.name,
            model.final_loss,
            p.objective
        );

        // Identical predictions and accuracies.
        assert_eq!(report.train.predictions, p.train_pred, "{}", p.name);
        assert_eq!(report.test[0].predictions, p.test_pred, "{}", p.name);
        assert!((report.train.accuracy - p.train_accuracy).abs() < 1e-12);
        assert!((report.test[0].accuracy - p.test_accuracy).abs() < 1e-12);
        let cm = metrics::confusion_matrix(&report.test[0].predictions, &p.test.y, p.n_classes);
        assert_eq!(cm, report.test[0].confusion);
    }
    println!("worst relative coefficient difference: {worst_rel:.3e}");
}

#[test]
fn constant_columns_get_zero_weight() {
    let fixture = load();
    let p = fixture
        .problems
        .iter()
        .find(|p| p.name == "five_class")
        .unwrap();
    let xtr = features(&p.train, fixture.feature_divisor);
    let report = linear_probe(
        &xtr,
        &p.train.y,
        p.d,
        p.n_classes,
        &[],
        &ProbeConfig::default(),
    )
    .unwrap();
    // Column 7 is constant: scale 1, weight exactly 0 in every class.
    assert_eq!(report.standardizer.scale()[7], 1.0);
    for k in 0..p.n_classes {
        assert_eq!(report.model.row(k).unwrap()[7], 0.0);
    }
    // Column 40 is nearly constant but not constant: it is standardised.
    assert!(report.standardizer.scale()[40] < 1e-3);
    assert!(
        report
            .model
            .weights
            .iter()
            .chain(&report.model.bias)
            .all(|v| v.is_finite())
    );
}

#[test]
fn fit_logistic_on_standardised_features_matches_linear_probe() {
    let fixture = load();
    let p = &fixture.problems[0];
    let xtr = features(&p.train, fixture.feature_divisor);
    let n = p.train.y.len();
    let cfg = ProbeConfig::default();
    let report = linear_probe(&xtr, &p.train.y, p.d, p.n_classes, &[], &cfg).unwrap();
    let s = Standardizer::fit(&xtr, n, p.d).unwrap();
    let z = s.transform(&xtr, n).unwrap();
    let model = fit_logistic(&z, n, p.d, &p.train.y, p.n_classes, &cfg).unwrap();
    assert_eq!(model, report.model);
    let proba = model.predict_proba(&z, n).unwrap();
    for (row, &pred) in proba
        .chunks_exact(p.n_classes)
        .zip(&report.train.predictions)
    {
        assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        let best = row
            .iter()
            .enumerate()
            .fold(0, |b, (k, &v)| if v > row[b] { k } else { b });
        assert_eq!(best, pred);
    }
}

#[test]
fn reports_input_errors() {
    let cfg = ProbeConfig::default();
    let x = [0.0f32, 1.0, 2.0, 3.0, 4.0, 5.0];
    let y = [0usize, 1, 0];

    let err = linear_probe(&x[..5], &y, 2, 2, &[], &cfg).unwrap_err();
    assert!(matches!(
        err,
        ProbeError::ShapeMismatch {
            expected: 6,
            found: 5,
            ..
        }
    ));

    let err = linear_probe(&[], &[], 2, 2, &[], &cfg).unwrap_err();
    assert!(matches!(err, ProbeError::EmptyInput { .. }));
    let err = linear_probe(&[], &[0, 1], 0, 2, &[], &cfg).unwrap_err();
    assert!(matches!(err, ProbeError::EmptyInput { .. }));

    let err = linear_probe(&x, &[0, 3, 1], 2, 3, &[], &cfg).unwrap_err();
    assert!(matches!(
        err,
        ProbeError::LabelOutOfRange {
            index: 1,
            label: 3,
            n_classes: 3,
            ..
        }
    ));

    let err = linear_probe(&x, &[2, 2, 2], 2, 3, &[], &cfg).unwrap_err();
    assert!(matches!(err, ProbeError::TooFewClasses { present: 1 }));

    let mut bad = x;
    bad[5] = f32::NAN;
    let err = linear_probe(&bad, &y, 2, 2, &[], &cfg).unwrap_err();
    assert!(matches!(
        err,
        ProbeError::NonFiniteFeature { row: 2, col: 1, .. }
    ));
    assert!(err.to_string().contains("row 2, column 1"), "{err}");

    // Test splits are validated too, before anything is fitted.
    let err = linear_probe(&x, &y, 2, 2, &[(&x[..4], &[0])], &cfg).unwrap_err();
    assert!(matches!(err, ProbeError::ShapeMismatch { .. }));
    let err = linear_probe(&x, &y, 2, 2, &[(&x[..2], &[5])], &cfg).unwrap_err();
    assert!(matches!(err, ProbeError::LabelOutOfRange { label: 5, .. }));
    let err = linear_probe(&x, &y, 2, 2, &[(&[f32::INFINITY, 0.0], &[0])], &cfg).unwrap_err();
    assert!(matches!(
        err,
        ProbeError::NonFiniteFeature { row: 0, col: 0, .. }
    ));

    let bad_cfg = ProbeConfig { c: -1.0, ..cfg };
    let err = linear_probe(&x, &y, 2, 2, &[], &bad_cfg).unwrap_err();
    assert!(matches!(err, ProbeError::InvalidConfig(_)));
}
