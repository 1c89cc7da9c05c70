//! `replab` on the command line: convert MedMNIST, print the lab's splits, and run
//! chapters with the same code the browser runs.

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use replab::data::convert::{SubsetSpec, convert};
use replab::data::splits::SplitConfig;
use replab::data::{Dataset, Manifest};
use replab::lab::supervised::{ChapterOutput, ChapterResult};
use replab::lab::{self, LabEvent, LabParams};
use replab::platform::{self, BackendPref};
use replab::train::{RunControl, TrainEvent};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod clip;

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
    /// Run chapters (supervised, supcon, clip) and write results.json and charts.
    Run(RunArgs),
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
struct DataArgs {
    /// Dataset bundle name under --data-dir.
    #[arg(long, default_value = "bloodmnist")]
    dataset: String,
    /// Where bundles live.
    #[arg(long, default_value = "public/data")]
    data_dir: PathBuf,
}

#[derive(Args)]
struct RunArgs {
    /// Chapters to run, in order.
    #[arg(required = true)]
    chapters: Vec<String>,
    #[command(flatten)]
    data: DataArgs,
    /// Epochs.
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    /// Cap on images per split part.
    #[arg(long)]
    limit: Option<usize>,
    /// Training seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Split seed.
    #[arg(long, default_value_t = 42)]
    split_seed: u64,
    /// Labelled share.
    #[arg(long, default_value_t = 0.2)]
    labeled_ratio: f64,
    /// Held-out share of classes.
    #[arg(long, default_value_t = 0.3)]
    held_out_ratio: f64,
    /// Batch size.
    #[arg(long, default_value_t = 128)]
    batch_size: usize,
    /// Learning rate.
    #[arg(long, default_value_t = 1e-4)]
    lr: f64,
    /// SupCon temperature.
    #[arg(long, default_value_t = 0.07)]
    temperature: f64,
    /// auto, wgpu or cpu.
    #[arg(long, default_value = "auto")]
    backend: String,
    /// Output directory.
    #[arg(long, default_value = "out")]
    out: PathBuf,
    /// Converted CLIP weights, for the clip chapter.
    #[arg(long)]
    clip_weights: Option<PathBuf>,
    /// Images per split the clip chapter embeds (default: 60 on the CPU, 400 on a GPU).
    #[arg(long)]
    clip_sample: Option<usize>,
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
        Command::Run(args) => cmd_run(args),
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
    let bytes = std::fs::read(npz).with_context(|| format!("cannot read {}", npz.display()))?;
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

/// Read a bundle from disk (the loader itself only sees bytes).
fn load_dataset(data_dir: &Path, name: &str) -> Result<Dataset> {
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

#[derive(Serialize)]
struct Results {
    dataset: String,
    backend: String,
    adapter: String,
    seed: u64,
    split_seed: u64,
    held_out_labels: Vec<u8>,
    params: LabParams,
    chapters: BTreeMap<String, ChapterResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    clip: Option<lab::clip::ClipResult>,
}

fn cmd_run(args: RunArgs) -> Result<()> {
    for c in &args.chapters {
        if !matches!(c.as_str(), "supervised" | "supcon" | "clip") {
            bail!("unknown or unbuilt chapter '{c}'; runnable chapters: supervised, supcon, clip");
        }
        if c == "clip" && args.clip_weights.is_none() {
            bail!(
                "the clip chapter needs --clip-weights FILE (make one with `replab convert-clip`)"
            );
        }
    }
    let params = LabParams {
        dataset: args.data.dataset.clone(),
        epochs: args.epochs,
        limit: args.limit,
        seed: args.seed,
        split_seed: args.split_seed,
        labeled_ratio: args.labeled_ratio,
        held_out_ratio: args.held_out_ratio,
        batch_size: args.batch_size,
        lr: args.lr,
        temperature: args.temperature,
    };
    params.validate().map_err(|e| anyhow!(e))?;
    let pref: BackendPref = args.backend.parse().map_err(|e: String| anyhow!(e))?;
    let compute = platform::block_on(platform::select_compute(pref)).map_err(|e| anyhow!(e))?;
    eprintln!(
        "backend: {} ({}) - {}",
        compute.kind.as_str(),
        compute.adapter,
        compute.reason
    );
    let dataset = Arc::new(load_dataset(&args.data.data_dir, &args.data.dataset)?);
    let prepared = lab::prepare(dataset, &params)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let control = RunControl::default();
    let mut results = Results {
        dataset: params.dataset.clone(),
        backend: compute.kind.as_str().to_string(),
        adapter: compute.adapter.clone(),
        seed: params.seed,
        split_seed: params.split_seed,
        held_out_labels: prepared.split.held_out_labels.clone(),
        params: params.clone(),
        chapters: BTreeMap::new(),
        clip: None,
    };
    for chapter in &args.chapters {
        let bar = ProgressBar::new(1000);
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {percent:>3}% eta {eta} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_prefix(chapter.clone());
        let mut observer = |e: LabEvent| match e {
            LabEvent::Stage { name, fraction } => {
                bar.set_position((fraction * 1000.0) as u64);
                bar.set_message(name.to_string());
            }
            LabEvent::Train { phase, event } => match event {
                TrainEvent::Step {
                    epoch,
                    step,
                    steps,
                    loss,
                    ..
                } => bar.set_message(format!(
                    "{phase} epoch {epoch} step {step}/{steps} loss {loss:.4}"
                )),
                // `suspend` prints even when the bar is hidden (output is not a terminal).
                TrainEvent::Epoch(s) => bar.suspend(|| {
                    eprintln!(
                        "{chapter} {phase} epoch {}: train {:.4} dev {} ({:.1}s, {:.0} img/s)",
                        s.epoch,
                        s.train_loss,
                        s.dev_loss
                            .map(|d| format!("{d:.4}"))
                            .unwrap_or_else(|| "-".into()),
                        s.seconds,
                        s.examples_per_second
                    )
                }),
            },
        };
        if chapter == "clip" {
            let path = args.clip_weights.as_deref().unwrap_or(Path::new(""));
            let bytes =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            let model =
                platform::block_on(lab::clip::load(&bytes, &compute, &control, &mut observer))
                    .map_err(|e| anyhow!("{}: {e}", path.display()))?;
            let sample = args
                .clip_sample
                .unwrap_or_else(|| lab::clip::default_sample(compute.kind));
            let out = platform::block_on(lab::clip::run(
                &model,
                &prepared,
                &params,
                sample,
                &compute,
                &control,
                &mut observer,
            ))?;
            bar.finish_and_clear();
            let r = &out.result;
            eprintln!(
                "clip: {} images at {:.1}/s; notebook head before {:.3} after {:.3}; converged dev-B {:.3} test-B {:.3}",
                r.images.iter().sum::<usize>(),
                r.images_per_second,
                r.before,
                r.after,
                r.converged_dev_b,
                r.converged_test_b
            );
            charts::write_scenes(
                &args.out,
                "clip",
                lab::charts::clip_scenes(&out, &prepared.dataset.manifest.class_names),
            )?;
            results.clip = Some(out.result);
            continue;
        }
        let output: ChapterOutput = match chapter.as_str() {
            "supervised" => {
                let mut state = lab::supervised::SupervisedState::new();
                platform::block_on(lab::supervised::run(
                    &mut state,
                    &prepared,
                    &params,
                    &compute,
                    &control,
                    &mut observer,
                ))?
            }
            _ => {
                let mut state = lab::supcon::SupConState::default();
                platform::block_on(lab::supcon::run(
                    &mut state,
                    &prepared,
                    &params,
                    &compute,
                    &control,
                    &mut observer,
                ))?
            }
        };
        bar.finish_and_clear();
        let r = &output.result;
        eprintln!(
            "{chapter}: dev-A acc {}, probe before {:.3} after {:.3}, fine-tune {:.3}, converged dev-B {:.3} test-B {:.3}, untrained test-B {:.3}, {:.1}s/epoch",
            r.dev_a_accuracy
                .map(|a| format!("{a:.3}"))
                .unwrap_or_else(|| "-".into()),
            r.probe.before,
            r.probe.after,
            r.probe.finetune_after,
            r.probe.converged_dev_b,
            r.probe.converged_test_b,
            r.probe.random_init_test_b,
            r.seconds_per_epoch
        );
        charts::write_chapter_pngs(&args.out, chapter, &output, &prepared)?;
        results.chapters.insert(chapter.clone(), output.result);
    }
    let path = args.out.join("results.json");
    std::fs::write(&path, serde_json::to_string_pretty(&results)?)?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

mod charts {
    //! PNGs of every chart a chapter draws in the browser.
    use super::*;
    use replab::lab::Prepared;

    pub fn write_chapter_pngs(
        out: &Path,
        chapter: &str,
        output: &ChapterOutput,
        prepared: &Prepared,
    ) -> Result<()> {
        write_scenes(
            out,
            chapter,
            replab::lab::charts::chapter_scenes(output, prepared),
        )
    }

    pub fn write_scenes(
        out: &Path,
        chapter: &str,
        scenes: Vec<(String, replab::plot::Scene)>,
    ) -> Result<()> {
        for (name, scene) in scenes {
            let png =
                replab::plot::png::render(&scene).map_err(|e| anyhow!("rendering {name}: {e}"))?;
            let path = out.join(format!("{chapter}_{name}.png"));
            std::fs::write(&path, png)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(())
    }
}
