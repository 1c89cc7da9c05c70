//! One section of `replab bench`, measured in a process of its own (`replab
//! bench-measure SECTION`), so that its thread count (`RAYON_NUM_THREADS`) and its
//! peak resident memory belong to it alone. Prints one JSON line,
//! `{value, unit, peak_rss_mb, detail}`, as `bench/reference.py` does.

use super::load_dataset;
use anyhow::{Context, Result, anyhow, bail};
use burn::prelude::*;
use clap::Args;
use replab::analysis::pca::{PcaConfig, fit};
use replab::analysis::probe::{ProbeConfig, linear_probe};
use replab::analysis::umap::{UmapConfig, umap_2d};
use replab::data::Dataset;
use replab::lab::{self, LabEvent, LabParams, features};
use replab::model::convnet::Encoder;
use replab::platform::{self, BackendKind, BackendPref, Compute};
use replab::train::{Control, RunControl, TrainEvent, View};
use serde::Serialize;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// Points in the UMAP section (the 2,400 × 128).
pub const UMAP_POINTS: usize = 2400;

#[derive(Args)]
pub struct MeasureArgs {
    /// A training chapter, probe, umap or pca (clip is timed by `clip-bench`).
    section: String,
    /// cpu or wgpu.
    #[arg(long, default_value = "cpu")]
    backend: String,
    /// Where probe and umap write the features the reference reads.
    #[arg(long)]
    work: PathBuf,
    /// Time a few steps in the first epoch instead of the whole second epoch.
    #[arg(long)]
    quick: bool,
    /// Repeats for probe and pca.
    #[arg(long, default_value_t = 3)]
    iters: usize,
    #[command(flatten)]
    data: super::DataArgs,
}

/// What a measurement prints.
#[derive(Serialize)]
struct Measured {
    value: f64,
    unit: &'static str,
    peak_rss_mb: Option<f64>,
    detail: Value,
}

/// This process's peak resident memory in MB (`VmHWM`), where the OS reports it.
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

pub fn cmd_measure(args: MeasureArgs) -> Result<()> {
    let pref: BackendPref = args.backend.parse().map_err(|e: String| anyhow!(e))?;
    let compute = platform::block_on(platform::select_compute(pref)).map_err(|e| anyhow!(e))?;
    let dataset = Arc::new(load_dataset(&args.data.data_dir, &args.data.dataset)?);
    let (value, unit, detail) = match args.section.as_str() {
        "probe" => probe(&dataset, &compute, &args)?,
        "umap" => umap(&dataset, &compute, &args)?,
        "pca" => pca(&dataset, &compute, args.iters)?,
        slug => chapter(slug, &dataset, &compute, args.quick)?,
    };
    let out = Measured {
        value,
        unit,
        peak_rss_mb: peak_rss_mb(),
        detail,
    };
    println!("{}", serde_json::to_string(&out)?);
    Ok(())
}

/// Seconds per epoch of a chapter's first training phase. Quick: the steps after a
/// warm-up in the first epoch, scaled to the epoch (on a GPU, whole readback
/// windows, so each timed event is a real completion). Otherwise the engine's own
/// timing of the second epoch's training part, the first being the warm-up.
fn chapter(
    slug: &str,
    dataset: &Arc<Dataset>,
    compute: &Compute,
    quick: bool,
) -> Result<(f64, &'static str, Value)> {
    let info = lab::registry::chapter(slug)?;
    if !info.runnable() || !info.params.contains(&"epochs") || slug == "clip" {
        bail!(
            "'{slug}' is not a training chapter; sections are the training chapters, clip, probe, umap and pca"
        );
    }
    let mut chapter = lab::make_chapter(slug)?;
    let mut params = LabParams::for_chapter(slug);
    params
        .set("epochs", if quick { "1" } else { "2" })
        .map_err(|e| anyhow!(e))?;
    let gpu = compute.kind == BackendKind::Wgpu;
    let (warmup, timed) = if gpu { (8, 16) } else { (2, 6) };
    let control = RunControl::default();
    let stop = control.clone();
    let mut phase_seen: Option<String> = None;
    let mut marks: Vec<(usize, Instant)> = Vec::new(); // (step, time), epoch 1
    let mut steps_per_epoch = 0;
    let mut second_epoch: Option<f64> = None;
    let mut observer = |e: LabEvent| {
        let LabEvent::Train { phase, event } = e else {
            return;
        };
        if phase_seen.get_or_insert_with(|| phase.to_string()) != phase {
            return;
        }
        match event {
            &TrainEvent::Step {
                epoch, step, steps, ..
            } => {
                steps_per_epoch = steps;
                if epoch == 1 {
                    marks.push((step, Instant::now()));
                    if quick && step >= (warmup + timed).min(steps) {
                        stop.set(Control::Cancel);
                    }
                }
            }
            TrainEvent::Epoch(stats) => {
                if !quick && stats.epoch == 2 {
                    second_epoch = Some(stats.seconds);
                    stop.set(Control::Cancel);
                }
            }
        }
    };
    let outcome = platform::block_on(lab::run(
        chapter.as_mut(),
        dataset.clone(),
        &params,
        compute,
        &control,
        &mut observer,
    ));
    if control.get() != Control::Cancel {
        outcome.map_err(|e| anyhow!("{slug}: {e}"))?;
    }
    let mut detail =
        json!({ "steps_per_epoch": steps_per_epoch, "backend": compute.kind.as_str() });
    if !quick {
        let s = second_epoch.ok_or_else(|| anyhow!("{slug}: no second epoch was reported"))?;
        return Ok((s, "s/epoch", detail));
    }
    let at = |step: usize| marks.iter().find(|(s, _)| *s == step).map(|(_, t)| *t);
    let end = (warmup + timed).min(steps_per_epoch);
    let (Some(t0), Some(t1)) = (at(warmup), at(end)) else {
        bail!(
            "{slug}: the first epoch has {steps_per_epoch} steps, too few to time after {warmup} warm-up steps"
        );
    };
    if end <= warmup {
        bail!(
            "{slug}: the first epoch has {steps_per_epoch} steps, too few to time after {warmup} warm-up steps"
        );
    }
    let per_step = (t1 - t0).as_secs_f64() / (end - warmup) as f64;
    detail["warmup"] = json!(warmup);
    detail["timed_steps"] = json!(end - warmup);
    detail["seconds_per_step"] = json!(per_step);
    Ok((per_step * steps_per_epoch as f64, "s/epoch", detail))
}

/// An untrained, seeded encoder's 128-d features of `view`: what the probe and
/// UMAP sections fit, on both sides.
fn encoder_features(
    dataset: &Dataset,
    compute: &Compute,
    split: &replab::data::SplitData,
    view: &View,
) -> Result<Vec<f32>> {
    compute.device.seed(0);
    let encoder = Encoder::new(dataset.manifest.channels, 128, &compute.device);
    let control = RunControl::default();
    let set = platform::block_on(features::extract(
        &encoder,
        compute,
        split,
        view,
        &control,
        &["encoded"],
        &|m: &Encoder, x: Tensor<4>| vec![m.forward(x)],
    ))?;
    set.sets
        .into_iter()
        .next()
        .map(|(_, _, rows)| rows)
        .ok_or_else(|| anyhow!("no features were extracted"))
}

fn write_features(args: &MeasureArgs, key: &str, value: Value) -> Result<()> {
    std::fs::create_dir_all(&args.work)?;
    let path = args.work.join("features.json");
    std::fs::write(&path, serde_json::to_vec(&json!({ key: value }))?)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// The converged probe's fit (standardise, then L-BFGS logistic regression with
/// C = 1) on train B's features, median of `iters`.
fn probe(
    dataset: &Arc<Dataset>,
    compute: &Compute,
    args: &MeasureArgs,
) -> Result<(f64, &'static str, Value)> {
    let prepared = lab::prepare(dataset.clone(), &LabParams::for_chapter("supervised"))?;
    let view = &prepared.train_b;
    let x = encoder_features(dataset, compute, &dataset.train, view)?;
    let (n, d) = (view.len(), 128);
    let classes = prepared.names_b.len();
    write_features(
        args,
        "probe",
        json!({ "n": n, "d": d, "x": x, "y": view.labels }),
    )?;
    let cfg = ProbeConfig::default();
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..args.iters.max(1) {
        let t0 = Instant::now();
        let report = linear_probe(&x, &view.labels, d, classes, &[], &cfg)?;
        times.push(t0.elapsed().as_secs_f64());
        last = Some(report);
    }
    let report = last.ok_or_else(|| anyhow!("no probe was fitted"))?;
    times.sort_by(f64::total_cmp);
    // The lab stops far later than scikit-learn (see ProbeConfig::gtol): the same fit
    // stopped by scikit-learn's rule (tol 1e-4 on its scaled gradient), for comparison.
    let loose = ProbeConfig {
        gtol: 1e-4 * n as f64 * cfg.c,
        ..cfg.clone()
    };
    let t0 = Instant::now();
    let at_tol = linear_probe(&x, &view.labels, d, classes, &[], &loose)?;
    let detail = json!({
        "rows": n, "dim": d,
        "train_accuracy": report.train.accuracy,
        "iterations": report.model.iterations,
        "seconds_at_sklearn_tol": t0.elapsed().as_secs_f64(),
        "iterations_at_sklearn_tol": at_tol.model.iterations,
        "train_accuracy_at_sklearn_tol": at_tol.train.accuracy,
    });
    Ok((times[times.len() / 2], "s", detail))
}

/// UMAP (the lab's settings) of the first 2,400 test images' features.
fn umap(
    dataset: &Arc<Dataset>,
    compute: &Compute,
    args: &MeasureArgs,
) -> Result<(f64, &'static str, Value)> {
    let n = UMAP_POINTS.min(dataset.test.labels.len());
    let view = View {
        indices: (0..n).collect(),
        labels: dataset.test.labels[..n]
            .iter()
            .map(|&l| l as usize)
            .collect(),
    };
    let x = encoder_features(dataset, compute, &dataset.test, &view)?;
    let d = 128;
    let t0 = Instant::now();
    let layout = umap_2d(&x, n, d, &UmapConfig::default())?;
    let seconds = t0.elapsed().as_secs_f64();
    let flat: Vec<f32> = layout.iter().flatten().copied().collect();
    write_features(
        args,
        "umap",
        json!({ "n": n, "d": d, "x": x, "layout": flat }),
    )?;
    Ok((seconds, "s", json!({ "points": n, "dim": d })))
}

/// Randomized PCA(128) of the unlabelled train images (as the PCA chapter fits
/// it), best of `iters`.
fn pca(
    dataset: &Arc<Dataset>,
    compute: &Compute,
    iters: usize,
) -> Result<(f64, &'static str, Value)> {
    let prepared = lab::prepare(dataset.clone(), &LabParams::for_chapter("pca"))?;
    let rows = &prepared.train_unlabeled.indices;
    let d = dataset.train.image_len();
    let mut x = Vec::with_capacity(rows.len() * d);
    for &i in rows {
        let img = dataset
            .train
            .image(i)
            .ok_or_else(|| anyhow!("no train image {i}"))?;
        x.extend(img.iter().map(|&v| f32::from(v) / 255.0));
    }
    let cfg = PcaConfig::new(128);
    let mut best = f64::INFINITY;
    let mut cumulative = 0.0;
    for _ in 0..iters.max(1) {
        let t0 = Instant::now();
        let pca = platform::block_on(fit(&x, rows.len(), d, &cfg, &compute.device))?;
        best = best.min(t0.elapsed().as_secs_f64());
        cumulative = pca.cumulative().last().copied().unwrap_or(0.0);
    }
    let detail = json!({ "rows": rows.len(), "dim": d, "cumulative_128": cumulative });
    Ok((best, "s", detail))
}
