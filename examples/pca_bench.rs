//! Seconds for replab's randomized PCA on BloodMNIST, for `bench/pca_bench.sh`.
//!
//! Fits `PCA(k)` to the lab's unlabeled train split of the bundled BloodMNIST
//! (the notebook's default split: 20 % labeled, 30 % of classes held out, seed
//! 42), pixels byte / 255, and prints one JSON line with the best of `reps`
//! timings. Usage:
//!
//! ```text
//! cargo run --release --example pca_bench -- [k] [reps] [cpu|wgpu]
//! ```

use replab::analysis::pca::{PcaConfig, fit};
use replab::data::splits::{SplitConfig, make_split};
use replab::data::{Dataset, Manifest};
use replab::platform::{self, BackendPref};
use std::path::Path;
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let k: usize = args.first().map_or(Ok(128), |s| s.parse())?;
    let reps: usize = args.get(1).map_or(Ok(3), |s| s.parse())?;
    let pref: BackendPref = args
        .get(2)
        .map_or(Ok(BackendPref::Cpu), |s| s.parse())
        .map_err(anyhow::Error::msg)?;

    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("public/data/bloodmnist");
    let manifest = Manifest::from_json(&std::fs::read(dir.join("manifest.json"))?)?;
    let data = Dataset::from_blobs(manifest, |f| {
        std::fs::read(dir.join(f)).map_err(|e| e.to_string())
    })?;
    let split = make_split(
        data.n_classes(),
        &data.train.labels,
        &data.val.labels,
        &SplitConfig::default(),
    )?;
    let rows = &split.train_unlabeled;
    let d = data.train.image_len();
    let mut x = Vec::with_capacity(rows.len() * d);
    for &i in rows {
        let img = data
            .train
            .image(i)
            .ok_or_else(|| anyhow::anyhow!("no image {i}"))?;
        x.extend(img.iter().map(|&v| v as f32 / 255.0));
    }
    let n = rows.len();

    let compute = platform::block_on(platform::select_compute(pref)).map_err(anyhow::Error::msg)?;
    let cfg = PcaConfig::new(k);
    let mut best = f64::INFINITY;
    let mut cumulative = 0.0;
    for _ in 0..reps.max(1) {
        let start = Instant::now();
        let pca = platform::block_on(fit(&x, n, d, &cfg, &compute.device))?;
        best = best.min(start.elapsed().as_secs_f64());
        cumulative = pca.cumulative().last().copied().unwrap_or(0.0);
    }
    println!(
        "{{\"n\": {n}, \"d\": {d}, \"k\": {k}, \"power_iters\": {}, \"backend\": \"{}\", \
         \"adapter\": \"{}\", \"seconds\": {best:.3}, \"cumulative_k\": {cumulative:.6}}}",
        cfg.power_iters_for(n, d),
        compute.kind.as_str(),
        compute.adapter
    );
    Ok(())
}
