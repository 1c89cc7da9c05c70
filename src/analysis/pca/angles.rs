//! Principal angles between two subspaces.

use super::host::{orthonormal_rows, svd};
use super::{PcaError, check_matrix};

/// Rows of a basis whose Gram eigenvalues fall below this fraction of the
/// largest (squared singular values, so a singular value ratio of `1e-3`) are
/// taken as linearly dependent: the `f32` eigendecomposition resolves Gram
/// eigenvalues only to ~`1e-7` of the largest.
const RANK_TOLERANCE: f64 = 1e-6;

/// The principal angles (radians, ascending, `min(ka, kb)` of them) between
/// the row spaces of `a` (`ka × d`) and `b` (`kb × d`), for example the
/// components of two PCA fits.
///
/// Each matrix is orthonormalised first, in `f64`, so the rows need not be
/// orthonormal, only linearly independent. With `Qs` the basis with fewer rows
/// and `Ql` the other, the cosines of the angles are the singular values of
/// `Qs Qlᵀ` and their sines those of `Qs − (Qs Qlᵀ) Ql` (Björck and Golub
/// 1973). Each angle is taken from its sine when that is below `√½` and from
/// its cosine otherwise (Knyazev and Argentati 2002), so small angles stay
/// accurate: the arccosine of a cosine near 1 would lose half the digits.
/// Angles are accurate to about `1e-7` rad (the SVD runs in `f32`), and to
/// far better than that near zero.
///
/// Runs on the host: the matrices are `k × d` with small `k`.
pub fn principal_angles(
    a: &[f32],
    ka: usize,
    b: &[f32],
    kb: usize,
    d: usize,
) -> Result<Vec<f64>, PcaError> {
    let qa = row_basis("first basis", a, ka, d)?;
    let qb = row_basis("second basis", b, kb, d)?;
    let ((qs, ks), (ql, kl)) = if ka <= kb {
        ((qa, ka), (qb, kb))
    } else {
        ((qb, kb), (qa, ka))
    };
    // M = Qs Qlᵀ (ks × kl) and R = Qs − M Ql (ks × d).
    let mut m = vec![0.0f64; ks * kl];
    for (i, rs) in qs.chunks_exact(d).enumerate() {
        for (j, rl) in ql.chunks_exact(d).enumerate() {
            m[i * kl + j] = rs.iter().zip(rl).map(|(x, y)| x * y).sum();
        }
    }
    let mut r = qs.clone();
    for (i, out) in r.chunks_exact_mut(d).enumerate() {
        for (j, rl) in ql.chunks_exact(d).enumerate() {
            let w = m[i * kl + j];
            for (o, &v) in out.iter_mut().zip(rl) {
                *o -= w * v;
            }
        }
    }
    let cos = svd(&m, ks, kl)?.s; // descending: cosines of ascending angles
    let mut sin = svd(&r, ks, d)?.s; // descending: sines of descending angles
    sin.reverse();
    Ok(cos
        .iter()
        .zip(&sin)
        .map(|(&c, &s)| {
            if s * s < 0.5 {
                s.clamp(0.0, 1.0).asin()
            } else {
                c.clamp(0.0, 1.0).acos()
            }
        })
        .collect())
}

/// An orthonormal basis (`k × d`, `f64`) of the row space of `x` (`k × d`).
fn row_basis(what: &'static str, x: &[f32], k: usize, d: usize) -> Result<Vec<f64>, PcaError> {
    if k == 0 || d == 0 {
        return Err(PcaError::InvalidConfig(format!(
            "{what} is {k} x {d}; it needs at least one row and one column"
        )));
    }
    if k > d {
        return Err(PcaError::InvalidConfig(format!(
            "{what} has {k} rows of length {d}; at most {d} can be independent"
        )));
    }
    check_matrix(what, x, k, d)?;
    let wide: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
    orthonormal_rows(&wide, k, d, RANK_TOLERANCE)?.ok_or_else(|| {
        PcaError::Numerical(format!(
            "the rows of {what} are linearly dependent, so they span fewer than {k} dimensions"
        ))
    })
}
