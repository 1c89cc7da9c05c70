//! `replab bench`: replab (this release binary) against the notebook's libraries
//! (`bench/reference.py`: PyTorch, scikit-learn, umap-learn) on the same data and
//! machine, section by section and thread count by thread count, one right after
//! the other. Prints a table and writes `bench.json`. Not a test: the numbers
//! depend on the machine and on what else it is doing.

use super::DataArgs;
use super::measure::peak_rss_mb;
use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[derive(Args)]
pub struct BenchArgs {
    /// Time a few steps per chapter after a warm-up instead of whole epochs, and
    /// fewer repeats elsewhere: a few minutes in all.
    #[arg(long)]
    quick: bool,
    /// Sections, comma-separated (default: every training chapter, then clip,
    /// probe, umap and pca).
    #[arg(long, value_delimiter = ',')]
    sections: Vec<String>,
    /// Thread counts, comma-separated; each pits replab with that many threads
    /// against the reference with as many (default: 1 and all cores; with --quick,
    /// all cores).
    #[arg(long, value_delimiter = ',')]
    threads: Vec<usize>,
    /// replab's backend: cpu or wgpu.
    #[arg(long, default_value = "cpu")]
    backend: String,
    /// The reference's device for supervised, supcon and clip: cpu or cuda.
    #[arg(long, default_value = "cpu")]
    reference_device: String,
    /// The Python that has bench/requirements.txt (default: $PYTHON, else python3).
    #[arg(long)]
    python: Option<PathBuf>,
    /// Where to write the results.
    #[arg(long, default_value = "bench.json")]
    out: PathBuf,
    #[command(flatten)]
    data: DataArgs,
}

/// One measurement of one side.
#[derive(Clone, Debug)]
struct Side {
    value: f64,
    unit: String,
    peak_rss_mb: Option<f64>,
    detail: Value,
}

/// One row of the table and one entry of `bench.json`.
#[derive(Serialize)]
struct Entry {
    replab: Option<f64>,
    reference: Option<f64>,
    /// replab / reference.
    ratio: Option<f64>,
    unit: String,
    /// What the issue asks of the ratio.
    target: String,
    met: Option<bool>,
    threads: usize,
    replab_peak_rss_mb: Option<f64>,
    reference_peak_rss_mb: Option<f64>,
    detail: Value,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<String>,
}

/// The training chapters, in the registry's order (CLIP only probes a frozen tower:
/// its section times the tower instead).
fn training_chapters() -> Vec<&'static str> {
    replab::lab::CHAPTERS
        .iter()
        .filter(|c| c.runnable() && c.params.contains(&"epochs") && c.slug != "clip")
        .map(|c| c.slug)
        .collect()
}

/// `(at most, or at least, the bound)` the issue sets for a section's ratio.
fn target(section: &str) -> (bool, f64) {
    match section {
        "clip" => (false, 1.0),
        "umap" => (true, 0.2),
        _ => (true, 1.0),
    }
}

fn parse_side(stdout: &[u8]) -> Result<Side> {
    let text = String::from_utf8_lossy(stdout);
    let line = text
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .ok_or_else(|| anyhow!("printed no JSON line"))?;
    let v: Value = serde_json::from_str(line)?;
    // `clip-bench` prints its own keys; the measurements print {value, unit, ...}.
    let (value, unit) = match v.get("images_per_second") {
        Some(ips) => (ips.as_f64(), "images/s".to_string()),
        None => (
            v["value"].as_f64(),
            v["unit"].as_str().unwrap_or("").to_string(),
        ),
    };
    Ok(Side {
        value: value.ok_or_else(|| anyhow!("no value in {line}"))?,
        unit,
        peak_rss_mb: v["peak_rss_mb"].as_f64(),
        detail: v.get("detail").cloned().unwrap_or(v),
    })
}

/// Run a measuring process with `threads` threads and read its JSON line.
fn spawn(program: &Path, args: &[String], threads: usize) -> Result<Side> {
    let t = threads.to_string();
    let out = Command::new(program)
        .args(args)
        .env("RAYON_NUM_THREADS", &t)
        .env("OMP_NUM_THREADS", &t)
        .env("OPENBLAS_NUM_THREADS", &t)
        .env("MKL_NUM_THREADS", &t)
        .env("NUMBA_NUM_THREADS", &t)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot start {}", program.display()))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(3).collect();
        bail!(
            "{} {} failed ({}): {}",
            program.display(),
            args.first().map(String::as_str).unwrap_or(""),
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        );
    }
    parse_side(&out.stdout)
}

pub fn cmd_bench(args: BenchArgs) -> Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = match (&args.threads[..], args.quick) {
        ([], true) => vec![cores],
        ([], false) => {
            let mut t = vec![1, cores];
            t.dedup();
            t
        }
        (given, _) => given.to_vec(),
    };
    if threads.contains(&0) {
        bail!("--threads: a thread count must be at least 1");
    }
    let chapters = training_chapters();
    let mut sections: Vec<String> = if args.sections.is_empty() {
        chapters.iter().map(|s| s.to_string()).collect()
    } else {
        args.sections.clone()
    };
    if args.sections.is_empty() {
        sections.extend(["clip", "probe", "umap", "pca"].map(String::from));
    }
    for s in &sections {
        if !chapters.contains(&s.as_str())
            && !["clip", "probe", "umap", "pca"].contains(&s.as_str())
        {
            bail!(
                "unknown section '{s}'; sections are {}, clip, probe, umap and pca",
                chapters.join(", ")
            );
        }
    }
    let me = std::env::current_exe().context("cannot find this program's path")?;
    let python = args.python.clone().unwrap_or_else(|| {
        PathBuf::from(std::env::var("PYTHON").unwrap_or_else(|_| "python3".into()))
    });
    let script = Path::new("bench/reference.py");
    if !script.exists() {
        bail!("run `replab bench` from the repository's root: bench/reference.py is not here");
    }
    let bundle = args.data.data_dir.join(&args.data.dataset);
    let work = std::env::temp_dir().join(format!("replab-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let iters = if args.quick { 2 } else { 5 };
    let common: Vec<String> = [
        "--dataset",
        &args.data.dataset,
        "--data-dir",
        &args.data.data_dir.to_string_lossy(),
    ]
    .map(String::from)
    .to_vec();

    let mut entries: BTreeMap<String, Entry> = BTreeMap::new();
    let mut order = Vec::new();
    for section in &sections {
        for &t in &threads {
            eprintln!("== {section}, {t} thread(s)");
            let mut errors = Vec::new();
            let ours_args: Vec<String> = if section == "clip" {
                [
                    "clip-bench",
                    "--backend",
                    &args.backend,
                    "--batch",
                    "8",
                    "--iters",
                ]
                .map(String::from)
                .into_iter()
                .chain([iters.to_string()])
                .collect()
            } else {
                let mut a: Vec<String> = ["bench-measure", section, "--backend", &args.backend]
                    .map(String::from)
                    .to_vec();
                a.extend(["--work".into(), work.to_string_lossy().into_owned()]);
                a.extend(["--iters".into(), iters.to_string()]);
                a.extend(common.iter().cloned());
                if args.quick {
                    a.push("--quick".into());
                }
                a
            };
            let ours = spawn(&me, &ours_args, t)
                .map_err(|e| errors.push(format!("replab: {e:#}")))
                .ok();
            let mut ref_args: Vec<String> = vec![
                script.to_string_lossy().into_owned(),
                section.clone(),
                "--threads".into(),
                t.to_string(),
                "--bundle".into(),
                bundle.to_string_lossy().into_owned(),
                "--device".into(),
                args.reference_device.clone(),
                "--work".into(),
                work.to_string_lossy().into_owned(),
                "--iters".into(),
                iters.to_string(),
            ];
            if args.quick && chapters.contains(&section.as_str()) {
                let d = ours.as_ref().map(|o| &o.detail);
                let get = |k: &str| d.and_then(|d| d[k].as_u64()).unwrap_or(0).to_string();
                ref_args.push("--quick".into());
                // The reference runs on the CPU: time it like replab's CPU path.
                ref_args.extend(["--warmup".into(), "2".into(), "--steps".into(), "6".into()]);
                ref_args.extend(["--steps-per-epoch".into(), get("steps_per_epoch")]);
            }
            let theirs = if ours.is_some() || !chapters.contains(&section.as_str()) || !args.quick {
                spawn(&python, &ref_args, t)
                    .map_err(|e| errors.push(format!("reference: {e:#}")))
                    .ok()
            } else {
                None
            };
            for e in &errors {
                eprintln!("   {e}");
            }
            let key = format!("{section}/{t}t");
            order.push(key.clone());
            entries.insert(key, entry(section, t, ours, theirs, errors));
        }
    }
    // Peak resident memory over the chapters, each side.
    let peak = |f: fn(&Entry) -> Option<f64>| {
        entries
            .iter()
            .filter(|(k, _)| chapters.iter().any(|c| k.starts_with(&format!("{c}/"))))
            .filter_map(|(_, e)| f(e))
            .reduce(f64::max)
    };
    let (ours_mem, theirs_mem) = (
        peak(|e| e.replab_peak_rss_mb),
        peak(|e| e.reference_peak_rss_mb),
    );
    entries.insert(
        "peak_memory".into(),
        Entry {
            replab: ours_mem,
            reference: theirs_mem,
            ratio: ours_mem.zip(theirs_mem).map(|(a, b)| a / b),
            unit: "MB".into(),
            target: "report".into(),
            met: None,
            threads: 0,
            replab_peak_rss_mb: ours_mem,
            reference_peak_rss_mb: theirs_mem,
            detail: json!({ "what": "largest resident set of one chapter's process, each side" }),
            errors: Vec::new(),
        },
    );
    order.push("peak_memory".into());
    print_table(&order, &entries, &args);
    let doc = json!({
        "quick": args.quick,
        "backend": args.backend,
        "reference_device": args.reference_device,
        "cores": cores,
        "dataset": args.data.dataset,
        "bench_peak_rss_mb": peak_rss_mb(),
        "sections": entries,
    });
    std::fs::write(&args.out, serde_json::to_string_pretty(&doc)?)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    eprintln!("wrote {}", args.out.display());
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

fn entry(
    section: &str,
    threads: usize,
    ours: Option<Side>,
    theirs: Option<Side>,
    errors: Vec<String>,
) -> Entry {
    let (at_most, bound) = target(section);
    let ratio = match (&ours, &theirs) {
        (Some(a), Some(b)) if b.value > 0.0 => Some(a.value / b.value),
        _ => None,
    };
    let mut met = ratio.map(|r| if at_most { r <= bound } else { r >= bound });
    let mut target = format!("{} {bound}", if at_most { "<=" } else { ">=" });
    if section == "umap" {
        // The layout must be as good: trustworthiness no more than 0.01 below umap-learn's.
        let d = theirs.as_ref().map(|t| &t.detail);
        let (ours_t, theirs_t) = (
            d.and_then(|d| d["trustworthiness_replab"].as_f64()),
            d.and_then(|d| d["trustworthiness_reference"].as_f64()),
        );
        target.push_str(", trustworthiness >= umap-learn's - 0.01");
        if let (Some(m), Some(a), Some(b)) = (met, ours_t, theirs_t) {
            met = Some(m && a >= b - 0.01);
        }
    }
    let unit = ours
        .as_ref()
        .or(theirs.as_ref())
        .map_or_else(String::new, |s| s.unit.clone());
    Entry {
        replab: ours.as_ref().map(|s| s.value),
        reference: theirs.as_ref().map(|s| s.value),
        ratio,
        unit,
        target,
        met,
        threads,
        replab_peak_rss_mb: ours.as_ref().and_then(|s| s.peak_rss_mb),
        reference_peak_rss_mb: theirs.as_ref().and_then(|s| s.peak_rss_mb),
        detail: json!({
            "replab": ours.map(|s| s.detail),
            "reference": theirs.map(|s| s.detail),
        }),
        errors,
    }
}

fn print_table(order: &[String], entries: &BTreeMap<String, Entry>, args: &BenchArgs) {
    let f = |v: Option<f64>| v.map_or_else(|| "-".into(), |x| format!("{x:.3}"));
    println!(
        "replab ({}) against the reference ({}){}; ratio = replab / reference",
        args.backend,
        args.reference_device,
        if args.quick { ", quick" } else { "" }
    );
    println!(
        "| section | replab | reference | unit | ratio | target | met | peak MB replab / ref |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for key in order {
        let Some(e) = entries.get(key) else { continue };
        println!(
            "| {key} | {} | {} | {} | {} | {} | {} | {} / {} |",
            f(e.replab),
            f(e.reference),
            e.unit,
            e.ratio.map_or_else(|| "-".into(), |r| format!("{r:.2}x")),
            e.target,
            e.met.map_or("-", |m| if m { "yes" } else { "no" }),
            e.replab_peak_rss_mb
                .map_or_else(|| "-".into(), |m| format!("{m:.0}")),
            e.reference_peak_rss_mb
                .map_or_else(|| "-".into(), |m| format!("{m:.0}")),
        );
    }
}
