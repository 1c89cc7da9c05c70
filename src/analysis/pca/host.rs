//! Moving matrices between the host and a device, the host SVD, and
//! orthonormalisation (of tall device matrices and of host row bases).
//!
//! burn-linalg's SVD reads its input back synchronously, which a browser cannot
//! do with a WebGPU tensor. So every SVD here runs on burn's pure-Rust CPU
//! backend (`flex`), whose readback completes immediately on every target.
//! Device matrices reach it through [`read`], which is asynchronous.
//!
//! The SVD runs in `f32`. burn-linalg 0.22.1's bidiagonal QR iteration takes its
//! shift from the trailing 2 × 2 block through a formula that cancels when the
//! two singular values nearly coincide, leaving the shift accurate to about
//! `1e-8` relative. That is above `f64`'s deflation tolerance (`2e-15`), so in
//! `f64` a matrix whose singular values agree to between ~`1e-14` and `1e-8`
//! (a near-identity Gram matrix, two nearly identical subspaces) never
//! converges and the SVD panics; in `f32` the tolerance (`1.2e-6`) lies above
//! the shift's error and it converges. Where `f32` would limit accuracy, the
//! callers refine in `f64` without another SVD (see [`orthonormal_rows`]).

use burn::prelude::*;
use burn::tensor::DType;

use super::PcaError;

/// Upper bound on QR sweeps per singular value in burn-linalg's SVD (LAPACK
/// uses 6; converged problems stop long before the bound).
const SVD_SWEEPS: usize = 64;

/// Eigenvalues of a Gram matrix below this fraction of the largest are treated
/// as rounding noise when orthonormalising: the matching direction is scaled
/// as if its eigenvalue were this floor, so it stays small instead of being
/// blown up to unit length. It only matters for (numerically) rank-deficient
/// blocks: an `f32` Gram matrix does not resolve much smaller eigenvalue ratios.
const GRAM_FLOOR: f64 = 1e-6;

/// A reduced SVD `A = U diag(s) Vᵀ` of an `m × n` matrix on the host, `r = min(m, n)`.
pub(super) struct HostSvd {
    /// `m × r`, row-major.
    pub(super) u: Vec<f64>,
    /// `r` singular values, descending.
    pub(super) s: Vec<f64>,
    /// `r × n`, row-major.
    pub(super) vt: Vec<f64>,
}

/// The reduced SVD of the `rows × cols` row-major matrix `a`, computed by
/// burn-linalg on the CPU backend in `f32` (see the module docs for why). The
/// matrix is scaled to a largest magnitude of 1 first, so that nothing
/// overflows or turns subnormal in `f32`.
pub(super) fn svd(a: &[f64], rows: usize, cols: usize) -> Result<HostSvd, PcaError> {
    if let Some(v) = a.iter().find(|v| !v.is_finite()) {
        return Err(PcaError::Numerical(format!(
            "a {rows} x {cols} matrix to decompose holds {v}"
        )));
    }
    let peak = a.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let scale = if peak > 0.0 { peak } else { 1.0 };
    let values: Vec<f32> = a.iter().map(|&v| (v / scale) as f32).collect();
    let cpu = Device::flex();
    let t = Tensor::<2>::from_data(TensorData::new(values, [rows, cols]), (&cpu, DType::F32));
    let (u, s, vt) = burn::linalg::svd::<2, 1>(t, SVD_SWEEPS);
    let mut s = host_vec(s.into_data())?;
    for v in &mut s {
        *v *= scale;
    }
    Ok(HostSvd {
        u: host_vec(u.into_data())?,
        s,
        vt: host_vec(vt.into_data())?,
    })
}

/// The values of host tensor data as `f64`.
fn host_vec(data: TensorData) -> Result<Vec<f64>, PcaError> {
    Ok(data
        .try_into_vec_as::<f32>()
        .map_err(|e| PcaError::Device(format!("{e:?}")))?
        .into_iter()
        .map(f64::from)
        .collect())
}

/// A `rows × cols` tensor on `device` from row-major values.
pub(super) fn upload(values: Vec<f32>, rows: usize, cols: usize, device: &Device) -> Tensor<2> {
    Tensor::<2>::from_data(TensorData::new(values, [rows, cols]), device)
}

/// Read a tensor back without blocking (the only way a browser can).
pub(super) async fn read<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>, PcaError> {
    let data = t
        .into_data_async()
        .await
        .map_err(|e| PcaError::Device(format!("{e:?}")))?;
    data.try_into_vec_as::<f32>()
        .map_err(|e| PcaError::Device(format!("{e:?}")))
}

/// The SVQB transform of a symmetric positive semi-definite `k × k` Gram
/// matrix `g` (Stathopoulos and Wu 2002). With `D = diag(g)^(-1/2)` and
/// `D G D = V Λ Vᵀ` (burn-linalg's SVD, which for such a matrix is its
/// eigendecomposition), returns `T = D V Λ^(-1/2)` (`k × k`, row-major), so that
/// `Tᵀ G T ≈ I`, with eigenvalues floored at `floor · λ_max`, together with `Λ`.
///
/// The diagonal scaling makes every column count at unit length: a column
/// that the floor left short in an earlier pass is measured afresh instead of
/// shrinking pass after pass towards subnormal numbers.
fn svqb(g: &[f64], k: usize, floor: f64) -> Result<(Vec<f64>, Vec<f64>), PcaError> {
    let diag_max = (0..k).fold(0.0f64, |m, i| m.max(g[i * k + i]));
    if !(diag_max > 0.0 && diag_max.is_finite()) {
        return Err(PcaError::Numerical(format!(
            "a {k}-vector block to orthonormalise has no extent (largest squared norm {diag_max})"
        )));
    }
    // Columns of (numerically) zero length keep the scale of the longest one.
    let dscale: Vec<f64> = (0..k)
        .map(|i| 1.0 / g[i * k + i].max(diag_max * 1e-30).sqrt())
        .collect();
    let mut sym = vec![0.0f64; k * k];
    for i in 0..k {
        for j in 0..k {
            sym[i * k + j] = 0.5 * (g[i * k + j] + g[j * k + i]) * dscale[i] * dscale[j];
        }
    }
    let eig = svd(&sym, k, k)?;
    let top = eig.s.first().copied().unwrap_or(0.0);
    let scale: Vec<f64> = eig
        .s
        .iter()
        .map(|&l| 1.0 / l.max(top * floor).sqrt())
        .collect();
    let mut t = vec![0.0f64; k * k];
    for i in 0..k {
        for j in 0..k {
            t[i * k + j] = dscale[i] * eig.u[i * k + j] * scale[j];
        }
    }
    Ok((t, eig.s))
}

/// Orthonormalise the columns of a tall matrix held on the device as row
/// blocks `y` (stacked, `rows × cols` with `rows ≥ cols`), keeping their span,
/// by `passes` SVQB steps. Returns the blocks of the result.
///
/// One pass forms the small Gram matrix `G = YᵀY = Σ Y_bᵀ Y_b` on the device,
/// reads it back, finds `T` with `Tᵀ G T = I` on the host ([`svqb`]) and returns
/// the blocks `Y_b T`, computed on the device. The columns come out
/// orthonormal up to about `ε · cond(Y)²`, so a second pass restores
/// orthonormality to the accuracy of an `f32` Gram matrix (~`1e-6`) when
/// `cond(Y)` stays well below `1/√ε`, which the power iteration ensures by
/// orthonormalising after every product.
///
/// This replaces a Householder QR: burn-linalg's `qr` builds the full
/// `rows × rows` orthogonal factor and updates it once per column (16 s for a
/// 3000 × 138 matrix on two cores; a 10 000-row one would need a 400 MB
/// factor). Only the span of `Y` matters to the randomized solver, and any
/// orthonormal basis of it serves.
pub(super) async fn orthonormalise(
    mut y: Vec<Tensor<2>>,
    cols: usize,
    passes: usize,
) -> Result<Vec<Tensor<2>>, PcaError> {
    let Some(device) = y.first().map(Tensor::device) else {
        return Ok(y);
    };
    for _ in 0..passes {
        let gram = y
            .iter()
            .map(|b| b.clone().transpose().matmul(b.clone()))
            .reduce(|a, b| a + b);
        let Some(gram) = gram else {
            return Ok(y);
        };
        let g: Vec<f64> = read(gram).await?.into_iter().map(f64::from).collect();
        let (t, _) = svqb(&g, cols, GRAM_FLOOR)?;
        let t = upload(t.iter().map(|&v| v as f32).collect(), cols, cols, &device);
        y = y.into_iter().map(|b| b.matmul(t.clone())).collect();
    }
    Ok(y)
}

/// An orthonormal basis (`k × d`, row-major, `f64`) of the row space of the
/// `k × d` matrix `a`, or `None` when its rows are numerically dependent
/// (smallest Gram eigenvalue below `rank_tol` times the largest).
///
/// One SVQB step (`f32` eigendecomposition of the `f64` Gram matrix
/// `A Aᵀ`) leaves the rows orthonormal to about `1e-7 · cond(A)²`; two steps of
/// the polar (Newton–Schulz) correction `Q ← (I − E/2 + 3E²/8) Q`, with
/// `E = Q Qᵀ − I`, then bring them to `f64` accuracy without another SVD.
pub(super) fn orthonormal_rows(
    a: &[f64],
    k: usize,
    d: usize,
    rank_tol: f64,
) -> Result<Option<Vec<f64>>, PcaError> {
    let (t, eig) = svqb(&row_gram(a, k, d), k, 0.0)?;
    let (top, low) = (eig[0], eig.last().copied().unwrap_or(0.0));
    if low.is_nan() || low <= rank_tol * top {
        return Ok(None);
    }
    // Q = Tᵀ A.
    let mut q = vec![0.0f64; k * d];
    for i in 0..k {
        let out = &mut q[i * d..(i + 1) * d];
        for (r, row) in a.chunks_exact(d).enumerate() {
            let w = t[r * k + i];
            for (o, &v) in out.iter_mut().zip(row) {
                *o += w * v;
            }
        }
    }
    for _ in 0..2 {
        let e = row_gram(&q, k, d);
        let mut c = vec![0.0f64; k * k];
        for i in 0..k {
            for j in 0..k {
                let eij = e[i * k + j] - f64::from(u8::from(i == j));
                let mut e2 = 0.0;
                for t in 0..k {
                    let eit = e[i * k + t] - f64::from(u8::from(i == t));
                    let etj = e[t * k + j] - f64::from(u8::from(t == j));
                    e2 += eit * etj;
                }
                c[i * k + j] = f64::from(u8::from(i == j)) - 0.5 * eij + 0.375 * e2;
            }
        }
        let mut next = vec![0.0f64; k * d];
        for i in 0..k {
            let out = &mut next[i * d..(i + 1) * d];
            for (r, row) in q.chunks_exact(d).enumerate() {
                let w = c[i * k + r];
                for (o, &v) in out.iter_mut().zip(row) {
                    *o += w * v;
                }
            }
        }
        q = next;
    }
    Ok(Some(q))
}

/// `A Aᵀ` (`k × k`) of the `k × d` row-major matrix `a`.
pub(super) fn row_gram(a: &[f64], k: usize, d: usize) -> Vec<f64> {
    let mut g = vec![0.0f64; k * k];
    for i in 0..k {
        for j in 0..=i {
            let v: f64 = a[i * d..(i + 1) * d]
                .iter()
                .zip(&a[j * d..(j + 1) * d])
                .map(|(x, y)| x * y)
                .sum();
            g[i * k + j] = v;
            g[j * k + i] = v;
        }
    }
    g
}
