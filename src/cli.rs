//! `replab` on the command line: convert MedMNIST, print the lab's splits, and run
//! chapters with the same code the browser runs.

use anyhow::{Context, Result, anyhow};
use clap::{Args, Parser, Subcommand};

use replab::data::convert::{SubsetSpec, convert};
use replab::data::splits::SplitConfig;
use replab::data::{Dataset, Manifest};
use replab::lab;
use std::path::{Path, PathBuf};

mod bench;
mod clip;
mod measure;
mod run;

#[derive(Parser)]
#[command(
    name = "replab",
    version,
    about = "A representation-learning lab on MedMNIST"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Convert an official MedMNIST 2-D .npz into a replab bundle.
    Convert {
        /// The .npz file.
        npz: PathBuf,
        /// The MedMNIST dataset name, e.g. bloodmnist.
        #[arg(long)]
        name: String,
        /// Output directory (the bundle's files go directly in it).
        #[arg(long)]
        out: PathBuf,
        /// Keep a stratified subset: a fraction (0.2) or counts (train=4000,val=800,test=2000).
        #[arg(long)]
        subset: Option<String>,
    },
    /// Print the lab's split of a bundled dataset.
    Splits {
        #[command(flatten)]
        data: DataArgs,
        /// Share of each class treated as labelled.
        #[arg(long, default_value_t = 0.2)]
        labeled_ratio: f64,
        /// Share of classes held out.
        #[arg(long, default_value_t = 0.3)]
        held_out_ratio: f64,
        /// The split's seed.
        #[arg(long, default_value_t = 42)]
        split_seed: u64,
        /// Print JSON (the default and only format).
        #[arg(long)]
        json: bool,
    },
    /// Run chapters (see `replab run --help` for the list) and write results.json and charts.
    Run(run::RunArgs),
    /// Convert a CLIP checkpoint (open_clip, timm or Hugging Face layout, safetensors)
    /// into replab's int8 vision-tower file.
    ConvertClip {
        /// The source .safetensors.
        src: PathBuf,
        /// The converted file to write.
        #[arg(long)]
        out: PathBuf,
        /// Keep every tensor in f32.
        #[arg(long)]
        no_quantize: bool,
        /// Attention heads (default: width / 64, as in open_clip).
        #[arg(long)]
        heads: Option<usize>,
        /// The checkpoint uses exact GELU rather than OpenAI's QuickGELU.
        #[arg(long)]
        gelu: bool,
    },
    /// Embed PNG images with converted CLIP weights: one JSON array per image.
    ClipEmbed {
        /// The converted weights.
        #[arg(long)]
        weights: PathBuf,
        /// PNG files (grayscale or RGB, any size).
        #[arg(required = true)]
        images: Vec<PathBuf>,
        /// auto, wgpu or cpu.
        #[arg(long, default_value = "cpu")]
        backend: String,
    },
    /// Time replab against the notebook's libraries (bench/reference.py) on this
    /// machine, section by section; print a table and write bench.json.
    Bench(bench::BenchArgs),
    /// One section of `replab bench`, in a process of its own.
    #[command(hide = true)]
    BenchMeasure(measure::MeasureArgs),
    /// Time the CLIP image encoder (random ViT-B/32 weights unless --weights).
    ClipBench {
        /// auto, wgpu or cpu.
        #[arg(long, default_value = "cpu")]
        backend: String,
        /// Images per batch.
        #[arg(long, default_value_t = 8)]
        batch: usize,
        /// Timed batches after one warm-up.
        #[arg(long, default_value_t = 5)]
        iters: usize,
        /// Converted weights to time instead of a random tower; `random-int8` converts
        /// a random ViT-B/32 to int8 in memory and loads it the way the app does.
        #[arg(long)]
        weights: Option<PathBuf>,
    },
}

#[derive(Args)]
pub(crate) struct DataArgs {
    /// Dataset bundle name under --data-dir.
    #[arg(long, default_value = "bloodmnist")]
    pub(crate) dataset: String,
    /// Where bundles live.
    #[arg(long, default_value = "public/data")]
    pub(crate) data_dir: PathBuf,
}

/// Entry point; returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    match run(cli) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Convert {
            npz,
            name,
            out,
            subset,
        } => cmd_convert(&npz, &name, &out, subset.as_deref()),
        Command::Splits {
            data,
            labeled_ratio,
            held_out_ratio,
            split_seed,
            json: _,
        } => {
            let dataset = load_dataset(&data.data_dir, &data.dataset)?;
            let cfg = SplitConfig {
                labeled_ratio,
                held_out_ratio,
                split_seed,
            };
            let report = lab::data::split_report(&dataset, &cfg).map_err(|e| anyhow!(e))?;
            println!("{}", serde_json::to_string(&report)?);
            Ok(())
        }
        Command::Run(args) => run::cmd_run(args),
        Command::Bench(args) => bench::cmd_bench(args),
        Command::BenchMeasure(args) => measure::cmd_measure(args),
        Command::ConvertClip {
            src,
            out,
            no_quantize,
            heads,
            gelu,
        } => clip::cmd_convert(&src, &out, no_quantize, heads, gelu),
        Command::ClipEmbed {
            weights,
            images,
            backend,
        } => clip::cmd_embed(&weights, &images, &backend),
        Command::ClipBench {
            backend,
            batch,
            iters,
            weights,
        } => clip::cmd_bench(&backend, batch, iters, weights.as_deref()),
    }
}

fn cmd_convert(npz: &Path, name: &str, out: &Path, subset: Option<&str>) -> Result<()> {
    let bytes = read_capped(
        npz,
        replab::data::convert::MAX_NPZ_BYTES,
        "MedMNIST 2-D npz",
    )?;
    let spec = subset.map(SubsetSpec::parse).transpose()?;
    let file = npz
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let converted = convert(&bytes, &file, name, spec.as_ref(), subset)?;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    for (file, data) in &converted.files {
        std::fs::write(out.join(file), data)
            .with_context(|| format!("cannot write {}", out.join(file).display()))?;
    }
    let manifest = serde_json::to_string_pretty(&converted.manifest)?;
    std::fs::write(out.join("manifest.json"), manifest)?;
    for note in &converted.notes {
        eprintln!("note: {note}");
    }
    let m = &converted.manifest;
    eprintln!(
        "wrote {} ({} classes; train {}, val {}, test {}) to {}",
        m.title,
        m.class_names.len(),
        m.train.count,
        m.val.count,
        m.test.count,
        out.display()
    );
    Ok(())
}

/// Read a whole file, refusing one larger than `max` bytes before reading it.
pub(crate) fn read_capped(path: &Path, max: u64, what: &str) -> Result<Vec<u8>> {
    let len = std::fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .len();
    if len > max {
        return Err(anyhow!(
            "{} is {:.1} GB, larger than any {what} ({:.1} GB at most); is it the right file?",
            path.display(),
            len as f64 / 1e9,
            max as f64 / 1e9
        ));
    }
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Read a bundle from disk (the loader itself only sees bytes).
pub(crate) fn load_dataset(data_dir: &Path, name: &str) -> Result<Dataset> {
    let dir = data_dir.join(name);
    let manifest_path = dir.join("manifest.json");
    let bytes = std::fs::read(&manifest_path).with_context(|| {
        format!(
            "no bundle '{name}' in {} (cannot read {})",
            data_dir.display(),
            manifest_path.display()
        )
    })?;
    let manifest = Manifest::from_json(&bytes)?;
    let dataset = Dataset::from_blobs(manifest, |file| {
        std::fs::read(dir.join(file)).map_err(|e| format!("cannot read: {e}"))
    })?;
    Ok(dataset)
}
