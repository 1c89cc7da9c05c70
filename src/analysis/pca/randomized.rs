//! The randomized solver ([`fit`]) and the exact reference ([`fit_exact`]).

use burn::prelude::*;

use super::host::{self, orthonormalise, read, upload};
use super::{Pca, PcaError, assemble, check_fit_input, mean_and_total_variance};
use crate::data::rng::NumpyRng;

/// Settings of the randomized solver.
#[derive(Clone, Debug, PartialEq)]
pub struct PcaConfig {
    /// Components to keep (`k`), between 1 and `min(n − 1, d)`.
    pub n_components: usize,
    /// Extra sketch columns beyond `k` (scikit-learn: 10). The sketch has
    /// `l = min(k + oversample, n, d)` columns.
    pub oversample: usize,
    /// Power iterations; `None` takes scikit-learn's rule ([`auto_power_iters`]).
    pub power_iters: Option<usize>,
    /// Seed of the Gaussian test matrix.
    pub seed: u64,
}

impl PcaConfig {
    /// `k` components with scikit-learn's defaults (oversampling 10, automatic
    /// power iterations) and seed 0.
    pub fn new(n_components: usize) -> Self {
        Self {
            n_components,
            oversample: 10,
            power_iters: None,
            seed: 0,
        }
    }

    /// The power iterations this configuration runs on `n × d` data.
    pub fn power_iters_for(&self, n: usize, d: usize) -> usize {
        self.power_iters
            .unwrap_or_else(|| auto_power_iters(self.n_components, n, d))
    }
}

/// scikit-learn's choice of power iterations for `PCA(svd_solver="randomized")`:
/// 7 when `k < 0.1 · min(n, d)` (a thin slice of a large spectrum, where the
/// sketch needs more help), else 4.
pub fn auto_power_iters(k: usize, n: usize, d: usize) -> usize {
    if (k as f64) < 0.1 * n.min(d) as f64 {
        7
    } else {
        4
    }
}

/// At most this many power iterations are accepted (each costs two passes
/// over the data; far fewer already converge).
const MAX_POWER_ITERS: usize = 100;

/// Fit PCA with the randomized solver (Halko, Martinsson and Tropp 2011,
/// algorithms 4.4 and 5.1; scikit-learn's `randomized_svd`).
///
/// `x` holds `n` samples of `d` features, row-major. On the host: the mean and
/// the total variance (in `f64`), and the centred data, uploaded in row blocks
/// of at most 64 MiB. On `device`: the sketch `Y = Xc Ω` of a seeded Gaussian
/// `d × l` matrix `Ω`, then `power_iters` rounds of `Q ← orth(Xc orth(Xcᵀ Q))`,
/// each product re-orthonormalised (SVQB through the `l × l` Gram matrix, see
/// `host::orthonormalise`), and finally `B = Qᵀ Xc` (`l × d`). `B` is read
/// back and its SVD (burn-linalg, host, `f32`) gives the components (`Vᵀ`) and
/// singular values. Every product with the data runs on the device; the host
/// sees only `l × l` Gram matrices and `B`, always through asynchronous
/// readback, and the loop yields to the event loop once per power iteration.
///
/// The result depends only on the data and `cfg` (the seed fixes `Ω`), up to
/// the device's rounding.
pub async fn fit(
    x: &[f32],
    n: usize,
    d: usize,
    cfg: &PcaConfig,
    device: &Device,
) -> Result<Pca, PcaError> {
    fit_in_blocks(x, n, d, cfg, device, BLOCK_VALUES).await
}

/// [`fit`] with the data uploaded in blocks of at most `block_values` values.
pub(super) async fn fit_in_blocks(
    x: &[f32],
    n: usize,
    d: usize,
    cfg: &PcaConfig,
    device: &Device,
    block_values: usize,
) -> Result<Pca, PcaError> {
    let k = cfg.n_components;
    check_fit_input(x, n, d, k)?;
    let iters = cfg.power_iters_for(n, d);
    if iters > MAX_POWER_ITERS {
        return Err(PcaError::InvalidConfig(format!(
            "power_iters is {iters}; at most {MAX_POWER_ITERS} are allowed"
        )));
    }
    let (mean, total_variance) = mean_and_total_variance(x, n, d);
    if total_variance.is_nan() || total_variance <= 0.0 {
        return Err(PcaError::NoVariance { n });
    }
    let l = k.saturating_add(cfg.oversample).min(n.min(d));

    let xc = Blocks::upload(x, d, &mean, device, block_values);
    let omega = upload(gaussian(d * l, cfg.seed), d, l, device);

    // The final basis gets a second orthonormalisation pass (see `orthonormalise`).
    let passes = |last: bool| if last { 2 } else { 1 };
    let mut q = orthonormalise(xc.times(&omega), l, passes(iters == 0)).await?;
    for it in 0..iters {
        let p = orthonormalise(vec![xc.transpose_times(&q)?], l, 1).await?;
        let p = p.into_iter().next().ok_or_else(empty)?;
        q = orthonormalise(xc.times(&p), l, passes(it + 1 == iters)).await?;
        crate::platform::yield_now().await;
    }
    // B = Qᵀ Xc, read back as (Xcᵀ Q)ᵀ.
    let bt = read(xc.transpose_times(&q)?).await?;
    let mut b = vec![0.0f64; l * d];
    for (j, row) in bt.chunks_exact(l).enumerate() {
        for (i, &v) in row.iter().enumerate() {
            b[i * d + j] = f64::from(v);
        }
    }
    let svd = host::svd(&b, l, d)?;
    Ok(assemble(n, d, &mean, total_variance, &svd.s, svd.vt, k))
}

/// Fit PCA exactly: the full SVD of the centred data (burn-linalg, on the host,
/// in `f32`; centring and variances in `f64`), like scikit-learn's `svd_solver="full"`.
///
/// It costs `O(n · d · min(n, d))` scalar operations on one core, so it is
/// meant for small data (hundreds of samples and features) and for checking
/// [`fit`]; it needs no device.
pub fn fit_exact(x: &[f32], n: usize, d: usize, k: usize) -> Result<Pca, PcaError> {
    check_fit_input(x, n, d, k)?;
    let (mean, total_variance) = mean_and_total_variance(x, n, d);
    if total_variance.is_nan() || total_variance <= 0.0 {
        return Err(PcaError::NoVariance { n });
    }
    let centred: Vec<f64> = x
        .chunks_exact(d)
        .flat_map(|row| row.iter().zip(&mean).map(|(&v, &m)| f64::from(v) - m))
        .collect();
    let svd = host::svd(&centred, n, d)?;
    Ok(assemble(n, d, &mean, total_variance, &svd.s, svd.vt, k))
}

/// Largest number of `f32` values in one device block of the data: 64 MiB,
/// well inside WebGPU's default limit on one storage buffer binding (128 MiB).
const BLOCK_VALUES: usize = 1 << 24;

/// The centred data on the device as consecutive blocks of rows, so that a
/// large data set (the 64 × 64 bundles, say) never needs one oversized buffer.
struct Blocks {
    blocks: Vec<Tensor<2>>,
}

impl Blocks {
    /// `x − mean` (`n × d`), rounded to `f32` and uploaded in blocks of at
    /// most `block_values` values (at least one row).
    fn upload(x: &[f32], d: usize, mean: &[f64], device: &Device, block_values: usize) -> Self {
        let rows_per_block = (block_values / d).max(1);
        let blocks = x
            .chunks(rows_per_block * d)
            .map(|chunk| {
                let centred: Vec<f32> = chunk
                    .chunks_exact(d)
                    .flat_map(|row| {
                        row.iter()
                            .zip(mean)
                            .map(|(&v, &m)| (f64::from(v) - m) as f32)
                    })
                    .collect();
                upload(centred, chunk.len() / d, d, device)
            })
            .collect();
        Self { blocks }
    }

    /// `Xc P` for a `d × l` matrix `P`, as row blocks.
    fn times(&self, p: &Tensor<2>) -> Vec<Tensor<2>> {
        self.blocks
            .iter()
            .map(|b| b.clone().matmul(p.clone()))
            .collect()
    }

    /// `Xcᵀ Q = Σ_b Xc_bᵀ Q_b` for `Q` given as matching row blocks (`d × l`).
    fn transpose_times(&self, q: &[Tensor<2>]) -> Result<Tensor<2>, PcaError> {
        self.blocks
            .iter()
            .zip(q)
            .map(|(x, q)| x.clone().transpose().matmul(q.clone()))
            .reduce(|a, b| a + b)
            .ok_or_else(empty)
    }
}

/// The error for a block list that came out empty (cannot happen for `n ≥ 2`).
fn empty() -> PcaError {
    PcaError::Numerical("the data produced no device blocks".into())
}

/// `len` standard normal values from `NumpyRng(seed)` by the Box–Muller
/// transform (deterministic on every target; not numpy's ziggurat stream).
fn gaussian(len: usize, seed: u64) -> Vec<f32> {
    let mut rng = NumpyRng::new(seed);
    let mut out = Vec::with_capacity(len + 1);
    while out.len() < len {
        // 1 − u lies in (0, 1], so the logarithm is finite.
        let radius = (-2.0 * (1.0 - rng.random()).ln()).sqrt();
        let angle = std::f64::consts::TAU * rng.random();
        out.push((radius * angle.cos()) as f32);
        out.push((radius * angle.sin()) as f32);
    }
    out.truncate(len);
    out
}
