//! Per-column standardisation with training-split statistics.

use super::{Feature, ProbeError, check_features};

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
#[cfg(test)]
mod tests {
    use super::*;

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
}
