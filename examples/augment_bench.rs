//! Seconds replab spends augmenting one epoch of SimCLR or DINO views on BloodMNIST,
//! for `bench/ssl_bench.sh`: every full batch of 256 unlabelled training images
//! (the notebook's split) becomes the chapter's views (2 for SimCLR; 2 global and 4
//! local crops for DINO) on the chosen device, and each batch is read back so the
//! time includes the device work. Prints one JSON line. Usage:
//!
//! ```text
//! cargo run --release --example augment_bench -- [simclr|dino] [cpu|wgpu]
//! ```

use replab::data::augment::Pipeline;
use replab::data::rng::NumpyRng;
use replab::data::splits::{SplitConfig, make_split};
use replab::data::{Dataset, Manifest};
use replab::lab::ssl::views;
use replab::platform::{self, BackendPref};
use replab::train::batcher::{View, make_batch};
use replab::train::engine::read_floats;
use std::path::Path;
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let chapter = args.first().map_or("simclr", String::as_str).to_string();
    let pref: BackendPref = args
        .get(1)
        .map_or(Ok(BackendPref::Cpu), |s| s.parse())
        .map_err(anyhow::Error::msg)?;
    let pipelines = match chapter.as_str() {
        "simclr" => vec![Pipeline::SIMCLR; 2],
        "dino" => {
            let (g, l) = (Pipeline::DINO_GLOBAL, Pipeline::DINO_LOCAL);
            vec![g, g, l, l, l, l]
        }
        other => anyhow::bail!("no augmentations for '{other}': simclr or dino"),
    };
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
    let rows = split.train_unlabeled.clone();
    let view = View {
        labels: vec![0; rows.len()],
        indices: rows,
    };
    let compute = platform::block_on(platform::select_compute(pref)).map_err(anyhow::Error::msg)?;
    let mut rng = NumpyRng::new(0);
    let batch = 256;
    let mut seconds = 0.0;
    let mut batches = 0;
    for start in (0..view.len()).step_by(batch) {
        if start + batch > view.len() {
            break;
        }
        let positions: Vec<usize> = (start..start + batch).collect();
        let b = make_batch(&data.train, &view, &positions, &compute.device);
        let t0 = Instant::now();
        let out = views(b, &pipelines, &mut rng);
        let one = out.images.slice([0..1, 0..1, 0..1, 0..1]).reshape([1]);
        platform::block_on(read_floats(one))?;
        seconds += t0.elapsed().as_secs_f64();
        batches += 1;
    }
    println!(
        "{{\"chapter\": \"{chapter}\", \"backend\": \"{}\", \"adapter\": \"{}\", \"batches\": {batches}, \
         \"views_per_image\": {}, \"augment_seconds_per_epoch\": {seconds:.3}}}",
        compute.kind.as_str(),
        compute.adapter,
        pipelines.len()
    );
    Ok(())
}
