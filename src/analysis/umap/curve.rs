//! The fit of the low-dimensional membership curve `1 / (1 + a·d^(2b))`.

use super::UmapError;

/// Fits `1 / (1 + a·x^(2b))` to the target membership curve (1 up to `min_dist`,
/// then `exp(-(x - min_dist) / spread)`) on 300 points of `[0, 3·spread]`, by
/// Levenberg–Marquardt. The fit runs in units of `spread` and `a` is rescaled at
/// the end, so it is equally well conditioned for any spread.
pub(super) fn fit_ab(spread: f32, min_dist: f32) -> Result<(f32, f32), UmapError> {
    const POINTS: usize = 300;
    let fail = UmapError::CurveFit { min_dist, spread };
    let m = f64::from(min_dist) / f64::from(spread);
    let xs: Vec<f64> = (0..POINTS)
        .map(|i| 3.0 * i as f64 / (POINTS - 1) as f64)
        .collect();
    let ys: Vec<f64> = xs
        .iter()
        .map(|&x| if x < m { 1.0 } else { (-(x - m)).exp() })
        .collect();
    let cost = |a: f64, b: f64| -> f64 {
        xs.iter()
            .zip(&ys)
            .map(|(&x, &y)| {
                let r = 1.0 / (1.0 + a * x.powf(2.0 * b)) - y;
                r * r
            })
            .sum()
    };
    let (mut a, mut b) = (1.0f64, 1.0f64);
    let mut c = cost(a, b);
    let mut lambda = 1e-3f64;
    for _ in 0..500 {
        // Normal equations J^T J and gradient J^T r at the current point.
        let (mut jaa, mut jab, mut jbb, mut ga, mut gb) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for (&x, &y) in xs.iter().zip(&ys) {
            if x <= 0.0 {
                continue;
            }
            let u = x.powf(2.0 * b);
            let g = 1.0 / (1.0 + a * u);
            let r = g - y;
            let da = -u * g * g;
            let db = -a * u * 2.0 * x.ln() * g * g;
            jaa += da * da;
            jab += da * db;
            jbb += db * db;
            ga += da * r;
            gb += db * r;
        }
        let mut improved = false;
        for _ in 0..30 {
            let (m00, m11) = (jaa * (1.0 + lambda), jbb * (1.0 + lambda));
            let det = m00 * m11 - jab * jab;
            if det > 0.0 && det.is_finite() {
                let step_a = -(m11 * ga - jab * gb) / det;
                let step_b = -(m00 * gb - jab * ga) / det;
                let (na, nb) = (a + step_a, b + step_b);
                if na > 0.0 && nb > 0.0 && na.is_finite() && nb.is_finite() {
                    let nc = cost(na, nb);
                    if nc < c {
                        let tiny = step_a.abs() < 1e-12 * a && step_b.abs() < 1e-12 * b;
                        (a, b, c) = (na, nb, nc);
                        lambda = (lambda / 10.0).max(1e-12);
                        improved = !tiny;
                        break;
                    }
                }
            }
            lambda *= 10.0;
        }
        if !improved {
            break;
        }
    }
    let a_scaled = a / f64::from(spread).powf(2.0 * b);
    let (a32, b32) = (a_scaled as f32, b as f32);
    if a32.is_finite() && b32.is_finite() && a32 > 0.0 && b32 > 0.0 {
        Ok((a32, b32))
    } else {
        Err(fail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curve_parameters_match_umap_learn() {
        // umap-learn's find_ab_params(1.0, 0.1) = (1.5769, 0.8951).
        let (a, b) = fit_ab(1.0, 0.1).unwrap();
        assert!(
            (a - 1.577).abs() < 2e-3 && (b - 0.8951).abs() < 2e-3,
            "{a} {b}"
        );
        // Scaling spread and min_dist together rescales x: a' = a / s^(2b).
        let (a2, b2) = fit_ab(2.0, 0.2).unwrap();
        assert!((b2 - b).abs() < 1e-4);
        assert!((a2 - a / 2f32.powf(2.0 * b)).abs() < 1e-3);
    }
}
