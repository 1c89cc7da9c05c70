#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by unwrapping

use super::*;
use crate::data::rng::NumpyRng;
use crate::platform::{block_on, cpu_device};
use std::f64::consts::{FRAC_PI_2, FRAC_PI_6};

/// `n × d` data of rank `r` with singular values decaying like `0.7^i`, plus
/// isotropic noise of size `noise`, shifted away from the origin.
fn low_rank(n: usize, d: usize, r: usize, noise: f64, seed: u64) -> Vec<f32> {
    let mut rng = NumpyRng::new(seed);
    let mut normal = move || {
        let radius = (-2.0 * (1.0 - rng.random()).ln()).sqrt();
        radius * (std::f64::consts::TAU * rng.random()).cos()
    };
    let left: Vec<f64> = (0..n * r).map(|_| normal()).collect();
    let right: Vec<f64> = (0..r * d).map(|_| normal()).collect();
    let offset: Vec<f64> = (0..d).map(|j| 0.5 + 0.01 * j as f64).collect();
    let mut x = Vec::with_capacity(n * d);
    for i in 0..n {
        for (j, off) in offset.iter().enumerate() {
            let mut v = off + noise * normal();
            for t in 0..r {
                v += 0.7f64.powi(t as i32) * left[i * r + t] * right[t * d + j];
            }
            x.push(v as f32);
        }
    }
    x
}

fn randomized(x: &[f32], n: usize, d: usize, cfg: &PcaConfig) -> Pca {
    block_on(fit(x, n, d, cfg, &cpu_device())).unwrap()
}

fn max_gram_error(rows: &[f32], d: usize) -> f64 {
    let k = rows.len() / d;
    let mut worst = 0.0f64;
    for i in 0..k {
        for j in 0..k {
            let dot: f64 = rows[i * d..(i + 1) * d]
                .iter()
                .zip(&rows[j * d..(j + 1) * d])
                .map(|(a, b)| f64::from(*a) * f64::from(*b))
                .sum();
            let want = if i == j { 1.0 } else { 0.0 };
            worst = worst.max((dot - want).abs());
        }
    }
    worst
}

#[test]
fn randomized_matches_exact_on_low_rank_plus_noise() {
    let (n, d, k) = (300, 80, 8);
    let x = low_rank(n, d, 20, 0.01, 1);
    let exact = fit_exact(&x, n, d, k).unwrap();
    let fast = randomized(&x, n, d, &PcaConfig::new(k));
    assert_eq!(fast.k(), k);
    assert!((fast.total_variance - exact.total_variance).abs() < 1e-12 * exact.total_variance);
    for (i, (a, b)) in fast
        .explained_variance
        .iter()
        .zip(&exact.explained_variance)
        .enumerate()
    {
        assert!((a - b).abs() <= 1e-3 * b, "component {i}: {a} vs {b}");
    }
    let angles = principal_angles(&fast.components, k, &exact.components, k, d).unwrap();
    let worst = angles.last().copied().unwrap();
    assert!(worst < 1e-2, "largest angle {worst}");
    // Components come out one by one too (well separated spectrum), with the same sign.
    for i in 0..k {
        let cos: f64 = fast
            .component(i)
            .unwrap()
            .iter()
            .zip(exact.component(i).unwrap())
            .map(|(a, b)| f64::from(*a) * f64::from(*b))
            .sum();
        assert!(cos > 0.999, "component {i}: cosine {cos}");
    }
    for (a, b) in fast.mean.iter().zip(&exact.mean) {
        assert_eq!(a, b);
    }
}

#[test]
fn components_are_orthonormal_and_sign_normalised() {
    let (n, d, k) = (120, 50, 12);
    let x = low_rank(n, d, 30, 0.05, 2);
    for pca in [
        randomized(&x, n, d, &PcaConfig::new(k)),
        fit_exact(&x, n, d, k).unwrap(),
    ] {
        assert!(max_gram_error(&pca.components, d) < 1e-5);
        for i in 0..k {
            let c = pca.component(i).unwrap();
            let lead = c
                .iter()
                .fold(0.0f32, |m, v| if v.abs() > m.abs() { *v } else { m });
            assert!(lead > 0.0, "component {i} leads with {lead}");
        }
        let ev = &pca.explained_variance;
        assert!(ev.windows(2).all(|w| w[0] >= w[1]), "{ev:?}");
        let cum = pca.cumulative();
        assert!(cum.windows(2).all(|w| w[0] <= w[1]));
        assert!(*cum.last().unwrap() <= 1.0 + 1e-9);
    }
}

#[test]
fn variance_of_the_coordinates_is_the_explained_variance() {
    let (n, d, k) = (200, 40, 5);
    let x = low_rank(n, d, 10, 0.02, 3);
    let pca = randomized(&x, n, d, &PcaConfig::new(k));
    let z = pca.transform(&x, n);
    assert_eq!(z.len(), n * k);
    for i in 0..k {
        let mean: f64 = (0..n).map(|r| f64::from(z[r * k + i])).sum::<f64>() / n as f64;
        assert!(mean.abs() < 1e-4, "coordinate {i} has mean {mean}");
        let var: f64 = (0..n)
            .map(|r| (f64::from(z[r * k + i]) - mean).powi(2))
            .sum::<f64>()
            / (n - 1) as f64;
        let ev = pca.explained_variance[i];
        assert!((var - ev).abs() < 1e-4 * ev, "component {i}: {var} vs {ev}");
    }
}

#[test]
fn full_rank_reconstruction_returns_the_data() {
    let (n, d) = (40, 12);
    let x = low_rank(n, d, 12, 0.1, 4);
    for pca in [
        fit_exact(&x, n, d, d).unwrap(),
        randomized(&x, n, d, &PcaConfig::new(d)),
    ] {
        let back = pca.reconstruct(&x, n, d);
        let worst = x
            .iter()
            .zip(&back)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-5, "worst difference {worst}");
        assert!((pca.cumulative()[d - 1] - 1.0).abs() < 1e-6);
        // k = 0 is the mean; fewer components reconstruct worse.
        let mean_only = pca.reconstruct(&x[..d], 1, 0);
        assert_eq!(mean_only, pca.mean);
        let err = |k: usize| -> f64 {
            let r = pca.reconstruct(&x, n, k);
            x.iter()
                .zip(&r)
                .map(|(a, b)| f64::from(a - b).powi(2))
                .sum()
        };
        assert!(err(2) > err(6) && err(6) > err(10));
    }
}

#[test]
fn reconstruction_error_is_the_unexplained_variance() {
    let (n, d, k) = (150, 30, 4);
    let x = low_rank(n, d, 8, 0.05, 5);
    let pca = fit_exact(&x, n, d, d).unwrap();
    let r = pca.reconstruct(&x, n, k);
    let sse: f64 = x
        .iter()
        .zip(&r)
        .map(|(a, b)| f64::from(a - b).powi(2))
        .sum();
    let unexplained = (1.0 - pca.cumulative()[k - 1]) * pca.total_variance * (n - 1) as f64;
    assert!(
        (sse - unexplained).abs() < 1e-3 * unexplained,
        "{sse} vs {unexplained}"
    );
}

#[test]
fn angles_between_known_subspaces() {
    let d = 6;
    let e = |i: usize| -> Vec<f32> { (0..d).map(|j| f32::from(u8::from(i == j))).collect() };
    let a = [e(0), e(1)].concat();
    let b = [e(2), e(3)].concat();
    let same = principal_angles(&a, 2, &a, 2, d).unwrap();
    assert!(same.iter().all(|t| t.abs() < 1e-7), "{same:?}");
    let orth = principal_angles(&a, 2, &b, 2, d).unwrap();
    assert!(
        orth.iter().all(|t| (t - FRAC_PI_2).abs() < 1e-7),
        "{orth:?}"
    );

    // span{e0, e1} against span{2 e0, e0 + cos30 e1 + sin30 e2} = span{e0, cos30 e1 + sin30 e2}:
    // angles 0 and 30°, from rows that are neither unit nor orthogonal.
    let (s, c) = FRAC_PI_6.sin_cos();
    let mut tilted = vec![0.0f32; 2 * d];
    tilted[0] = 2.0;
    tilted[d] = 1.0;
    tilted[d + 1] = c as f32;
    tilted[d + 2] = s as f32;
    let got = principal_angles(&a, 2, &tilted, 2, d).unwrap();
    assert!(
        got[0].abs() < 1e-7 && (got[1] - FRAC_PI_6).abs() < 1e-6,
        "{got:?}"
    );

    // Equal angles (a cluster of cosines, which burn-linalg's f64 SVD cannot
    // resolve) and a mix of near-zero and right angles.
    let (s, c) = (0.3f64.sin() as f32, 0.3f64.cos() as f32);
    let mut turned = vec![0.0f32; 2 * d];
    turned[0] = c;
    turned[2] = s;
    turned[d + 1] = c;
    turned[d + 3] = s;
    let got = principal_angles(&a, 2, &turned, 2, d).unwrap();
    assert!(got.iter().all(|t| (t - 0.3).abs() < 1e-6), "{got:?}");
    let four = [e(0), e(1), e(2), e(3)].concat();
    let mixed = [e(0), e(1), e(4), e(5)].concat();
    let got = principal_angles(&four, 4, &mixed, 4, d).unwrap();
    assert!(got[..2].iter().all(|t| t.abs() < 1e-7), "{got:?}");
    assert!(
        got[2..].iter().all(|t| (t - FRAC_PI_2).abs() < 1e-6),
        "{got:?}"
    );

    // Unequal dimensions: one angle per row of the smaller basis.
    let one = principal_angles(&e(1), 1, &a, 2, d).unwrap();
    assert_eq!(one.len(), 1);
    assert!(one[0].abs() < 1e-7);

    // A self-comparison of PCA components is exact too, and dependent rows are refused.
    let x = low_rank(60, 20, 5, 0.1, 6);
    let pca = fit_exact(&x, 60, 20, 5).unwrap();
    let own = principal_angles(&pca.components, 5, &pca.components, 5, 20).unwrap();
    assert!(own.iter().all(|t| *t < 1e-3), "{own:?}");
    let dependent = [e(0), e(0)].concat();
    assert!(matches!(
        principal_angles(&dependent, 2, &a, 2, d),
        Err(PcaError::Numerical(_))
    ));
}

#[test]
fn pca_2d_matches_the_hand_computed_covariance() {
    // q has covariance diag(8/3, 2/3) (ddof 1); rotate it by 30°.
    let q = [[2.0, 0.0], [-2.0, 0.0], [0.0, 1.0], [0.0, -1.0]];
    let (s, c) = FRAC_PI_6.sin_cos();
    let shift = [3.0, -1.0];
    let points: Vec<[f64; 2]> = q
        .iter()
        .map(|p| {
            [
                c * p[0] - s * p[1] + shift[0],
                s * p[0] + c * p[1] + shift[1],
            ]
        })
        .collect();
    let got = pca_2d(&points).unwrap();
    let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
    assert!(close(got.mean[0], 3.0) && close(got.mean[1], -1.0));
    assert!(close(got.variance[0], 8.0 / 3.0) && close(got.variance[1], 2.0 / 3.0));
    assert!(close(got.std[0], (8.0f64 / 3.0).sqrt()));
    assert!(close(got.axes[0][0], c) && close(got.axes[0][1], s));
    // The minor axis (-sin, cos) = (-0.5, 0.866) leads with its positive coordinate.
    assert!(close(got.axes[1][0], -s) && close(got.axes[1][1], c));
    assert!(close(got.ratio()[0], 0.8));

    // Against the covariance written out: [[2, 1], [1, 2]] has axes (1, 1)/√2, (-1, 1)/√2.
    let pts = [[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [1.0, 0.0], [1.0, 2.0]];
    // mean (1, 1); deviations (-1,-1), (0,0), (1,1), (0,-1), (0,1):
    // a = 2/4, b = 2/4, c = 4/4.
    let got = pca_2d(&pts).unwrap();
    let (a, b, cc) = (0.5f64, 0.5f64, 1.0f64);
    let disc = ((a - cc) * (a - cc) / 4.0 + b * b).sqrt();
    let l1 = (a + cc) / 2.0 + disc;
    let l2 = (a + cc) / 2.0 - disc;
    assert!(close(got.variance[0], l1) && close(got.variance[1], l2));
    let v = [b, l1 - a];
    let norm = (v[0] * v[0] + v[1] * v[1]).sqrt();
    assert!(close(got.axes[0][0], v[0] / norm) && close(got.axes[0][1], v[1] / norm));

    assert!(matches!(
        pca_2d(&[[1.0, 2.0]]),
        Err(PcaError::TooFewSamples { n: 1 })
    ));
    assert!(matches!(
        pca_2d(&[[1.0, 2.0], [0.0, f64::NAN]]),
        Err(PcaError::NonFinite { row: 1, col: 1, .. })
    ));
    let still = pca_2d(&[[1.0, 1.0], [1.0, 1.0]]).unwrap();
    assert_eq!(still.variance, [0.0, 0.0]);
}

#[test]
fn bad_input_is_refused() {
    let x = low_rank(10, 4, 2, 0.1, 7);
    let dev = cpu_device();
    let run =
        |x: &[f32], n: usize, d: usize, k: usize| block_on(fit(x, n, d, &PcaConfig::new(k), &dev));
    assert!(matches!(
        run(&x[..4], 1, 4, 1),
        Err(PcaError::TooFewSamples { n: 1 })
    ));
    assert!(matches!(
        run(&x, 10, 4, 5),
        Err(PcaError::TooManyComponents { max: 4, .. })
    ));
    assert!(matches!(
        run(&x[..12], 3, 4, 3),
        Err(PcaError::TooManyComponents { max: 2, .. })
    ));
    assert!(matches!(run(&x, 10, 4, 0), Err(PcaError::NoComponents)));
    assert!(matches!(
        run(&x, 10, 3, 1),
        Err(PcaError::ShapeMismatch { .. })
    ));
    let mut bad = x.clone();
    bad[9] = f32::NAN;
    assert!(matches!(
        run(&bad, 10, 4, 1),
        Err(PcaError::NonFinite { row: 2, col: 1, .. })
    ));
    assert!(matches!(
        fit_exact(&bad, 10, 4, 1),
        Err(PcaError::NonFinite { .. })
    ));
    assert!(matches!(
        run(&[0.5; 40], 10, 4, 1),
        Err(PcaError::NoVariance { n: 10 })
    ));
    let cfg = PcaConfig {
        power_iters: Some(1000),
        ..PcaConfig::new(1)
    };
    assert!(matches!(
        block_on(fit(&x, 10, 4, &cfg, &dev)),
        Err(PcaError::InvalidConfig(_))
    ));
    let msg = run(&x, 10, 4, 5).unwrap_err().to_string();
    assert!(msg.contains("at most 4"), "{msg}");
}

#[test]
fn rank_deficient_data_still_gives_orthonormal_components() {
    // Rank 3 (plus the mean), k = 6: the last components carry no variance.
    let (n, d, k) = (50, 20, 6);
    let x = low_rank(n, d, 3, 0.0, 8);
    let pca = randomized(&x, n, d, &PcaConfig::new(k));
    assert!(max_gram_error(&pca.components, d) < 1e-5);
    assert!(pca.explained_variance_ratio[3..].iter().all(|r| *r < 1e-6));
    assert!((pca.cumulative()[2] - 1.0).abs() < 1e-5);
}

#[test]
fn seeds_change_nothing_that_matters() {
    let (n, d, k) = (200, 60, 6);
    let x = low_rank(n, d, 15, 0.01, 9);
    let a = randomized(&x, n, d, &PcaConfig::new(k));
    let b = randomized(
        &x,
        n,
        d,
        &PcaConfig {
            seed: 17,
            ..PcaConfig::new(k)
        },
    );
    let again = randomized(&x, n, d, &PcaConfig::new(k));
    assert_eq!(a, again);
    for (u, v) in a.explained_variance.iter().zip(&b.explained_variance) {
        assert!((u - v).abs() < 1e-4 * v);
    }
    assert_eq!(auto_power_iters(5, 200, 60), 7);
    assert_eq!(auto_power_iters(6, 200, 60), 4);
}

#[test]
fn a_flat_spectrum_converges() {
    // ±e_i: every direction carries the same variance, so every Gram matrix the
    // solver meets is a multiple of the identity, the case burn-linalg's f64 SVD
    // cannot handle.
    let d = 30;
    let mut x = vec![0.0f32; 2 * d * d];
    for i in 0..d {
        x[2 * i * d + i] = 1.0;
        x[(2 * i + 1) * d + i] = -1.0;
    }
    let (n, k) = (2 * d, 5);
    for pca in [
        randomized(&x, n, d, &PcaConfig::new(k)),
        fit_exact(&x, n, d, k).unwrap(),
    ] {
        assert!(max_gram_error(&pca.components, d) < 1e-5);
        let want = 2.0 / (n - 1) as f64;
        for ev in &pca.explained_variance {
            assert!((ev - want).abs() < 1e-5 * want, "{ev} vs {want}");
        }
        assert!((pca.cumulative()[k - 1] - k as f64 / d as f64).abs() < 1e-6);
    }
}

#[test]
fn data_in_many_device_blocks_gives_the_same_fit() {
    let (n, d, k) = (230, 40, 6);
    let x = low_rank(n, d, 12, 0.02, 10);
    let cfg = PcaConfig::new(k);
    let whole = randomized(&x, n, d, &cfg);
    // 7 rows per block: 33 blocks, the last one short.
    let blocked = block_on(randomized::fit_in_blocks(
        &x,
        n,
        d,
        &cfg,
        &cpu_device(),
        7 * d + 3,
    ))
    .unwrap();
    for (a, b) in whole
        .explained_variance
        .iter()
        .zip(&blocked.explained_variance)
    {
        assert!((a - b).abs() < 1e-5 * b, "{a} vs {b}");
    }
    let angles = principal_angles(&whole.components, k, &blocked.components, k, d).unwrap();
    assert!(angles.iter().all(|t| *t < 1e-4), "{angles:?}");
}
