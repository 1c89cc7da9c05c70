//! Closed-form PCA of a 2-D point cloud, for the chapter's interactive demo.

use super::PcaError;

/// The principal axes of a 2-D point cloud.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pca2d {
    /// Mean of the points.
    pub mean: [f64; 2],
    /// Unit eigenvectors of the covariance, by decreasing variance; each has
    /// its larger-magnitude coordinate positive (the first on ties), and the
    /// second is the first turned a quarter turn either way.
    pub axes: [[f64; 2]; 2],
    /// Variance along each axis (eigenvalues of the covariance, `n − 1`).
    pub variance: [f64; 2],
    /// Standard deviation along each axis (`√variance`).
    pub std: [f64; 2],
}

impl Pca2d {
    /// Share of the total variance along each axis (`[0, 0]` for a single
    /// repeated point).
    pub fn ratio(&self) -> [f64; 2] {
        let total = self.variance[0] + self.variance[1];
        if total > 0.0 {
            [self.variance[0] / total, self.variance[1] / total]
        } else {
            [0.0, 0.0]
        }
    }
}

/// PCA of `points` in closed form: the covariance `[[a, b], [b, c]]` (with
/// `n − 1`) has its major axis at angle `½ atan2(2b, a − c)`, and the variances
/// are the covariance's quadratic form along the two axes. Needs at least two
/// finite points; identical points give zero variances and the coordinate axes.
pub fn pca_2d(points: &[[f64; 2]]) -> Result<Pca2d, PcaError> {
    let n = points.len();
    if n < 2 {
        return Err(PcaError::TooFewSamples { n });
    }
    if let Some((row, p)) = points
        .iter()
        .enumerate()
        .find(|(_, p)| !(p[0].is_finite() && p[1].is_finite()))
    {
        let col = usize::from(p[0].is_finite());
        return Err(PcaError::NonFinite {
            what: "points",
            row,
            col,
            value: p[col],
        });
    }
    let mean = points
        .iter()
        .fold([0.0, 0.0], |m, p| [m[0] + p[0], m[1] + p[1]])
        .map(|s| s / n as f64);
    let (mut a, mut b, mut c) = (0.0, 0.0, 0.0);
    for p in points {
        let (x, y) = (p[0] - mean[0], p[1] - mean[1]);
        a += x * x;
        b += x * y;
        c += y * y;
    }
    let dof = (n - 1) as f64;
    let (a, b, c) = (a / dof, b / dof, c / dof);
    let theta = 0.5 * (2.0 * b).atan2(a - c);
    let major = canonical([theta.cos(), theta.sin()]);
    let minor = canonical([-major[1], major[0]]);
    let along = |u: [f64; 2]| (a * u[0] * u[0] + 2.0 * b * u[0] * u[1] + c * u[1] * u[1]).max(0.0);
    let variance = [along(major), along(minor)];
    Ok(Pca2d {
        mean,
        axes: [major, minor],
        variance,
        std: variance.map(f64::sqrt),
    })
}

/// `u` or `−u`, whichever has its larger-magnitude coordinate positive.
fn canonical(u: [f64; 2]) -> [f64; 2] {
    let lead = if u[1].abs() > u[0].abs() { u[1] } else { u[0] };
    if lead < 0.0 { [-u[0], -u[1]] } else { u }
}
