//! `replab run CHAPTER...`: the same chapters the page runs, with flags made from
//! the lab's parameter table, writing `results.json` and every chart as PNG.

use super::load_dataset;
use anyhow::{Context, Result, anyhow};
use clap::{Arg, ArgMatches, Args, FromArgMatches};
use indicatif::{ProgressBar, ProgressStyle};
use replab::lab::clip::Clip;
use replab::lab::params::PARAMS;
use replab::lab::{self, ChapterResult, LabEvent, LabParams};
use replab::model::clip::weights::MAX_FILE_BYTES as MAX_CLIP_BYTES;
use replab::platform::{self, BackendPref};
use replab::train::{RunControl, TrainEvent};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

/// The parameters given on the command line, as `(name, text)`; each is checked
/// by the same code that checks a URL.
#[derive(Clone, Debug, Default)]
pub struct ParamArgs(Vec<(&'static str, String)>);

impl FromArgMatches for ParamArgs {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        Ok(Self(
            PARAMS
                .iter()
                .filter_map(|p| m.get_one::<String>(p.name).map(|v| (p.name, v.clone())))
                .collect(),
        ))
    }
    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}

impl Args for ParamArgs {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        PARAMS.iter().fold(cmd, |cmd, p| {
            cmd.arg(
                Arg::new(p.name)
                    .long(p.flag)
                    .help(p.help)
                    .value_name("VALUE"),
            )
        })
    }
    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

#[derive(Args)]
pub struct RunArgs {
    /// Chapters to run, in order.
    #[arg(required = true)]
    chapters: Vec<String>,
    #[command(flatten)]
    params: ParamArgs,
    /// Where bundles live.
    #[arg(long, default_value = "public/data")]
    data_dir: PathBuf,
    /// Output directory.
    #[arg(long, default_value = "out")]
    out: PathBuf,
    /// Converted CLIP weights, for the clip chapter.
    #[arg(long)]
    clip_weights: Option<PathBuf>,
    /// After each chapter, run every one of its exercises (a fresh model for each
    /// setting) and write one entry per exercise under `exercises` in its result.
    #[arg(long)]
    exercises: bool,
    /// Save the trained chapter to FILE (safetensors; one chapter only). The page's
    /// saved-runs panel imports it; `scripts/load_in_pytorch.py` loads its encoder.
    #[arg(long, value_name = "FILE")]
    save: Option<PathBuf>,
    /// Start from a saved run (from the page or `--save`): its parameters, unless
    /// flags change them. Without --epochs it analyses the saved model without
    /// training; with --epochs N it trains N more epochs.
    #[arg(long, value_name = "FILE")]
    load: Option<PathBuf>,
}

/// Largest saved run read: the biggest chapter's model with its optimiser state is
/// a few tens of megabytes.
const MAX_SAVED_RUN_BYTES: u64 = 512 << 20;

#[derive(Serialize)]
struct Results {
    dataset: String,
    backend: String,
    adapter: String,
    held_out_labels: Vec<u8>,
    params: BTreeMap<String, LabParams>,
    chapters: BTreeMap<String, ChapterResult>,
}

fn params_for(slug: &str, given: &ParamArgs) -> Result<LabParams> {
    params_over(LabParams::for_chapter(slug), given)
}

/// `base` with the flags given on the command line applied and checked.
fn params_over(base: LabParams, given: &ParamArgs) -> Result<LabParams> {
    let mut p = base;
    for (k, v) in &given.0 {
        p.set(k, v)
            .map_err(|e| anyhow!("--{}: {e}", k.replace('_', "-")))?;
    }
    p.validate().map_err(|e| anyhow!(e))?;
    Ok(p)
}

pub fn cmd_run(args: RunArgs) -> Result<()> {
    // Everything that can be refused is refused before any work starts.
    let mut chapters = Vec::new();
    for slug in &args.chapters {
        let chapter = lab::make_chapter(slug)?;
        chapters.push((slug.clone(), chapter, params_for(slug, &args.params)?));
    }
    if (args.save.is_some() || args.load.is_some()) && chapters.len() != 1 {
        return Err(anyhow!(
            "--save and --load take one chapter, not {}",
            chapters.len()
        ));
    }
    if let Some((slug, chapter, _)) = chapters.first()
        && (args.save.is_some() || args.load.is_some())
        && !chapter.info().params.contains(&"epochs")
    {
        return Err(anyhow!(
            "{slug}: this chapter trains no model to save or load (--save/--load are for the chapters that train)"
        ));
    }
    let loaded = match &args.load {
        Some(path) => {
            let bytes = super::read_capped(path, MAX_SAVED_RUN_BYTES, "saved run")?;
            let info =
                lab::saved::describe(&bytes).map_err(|e| anyhow!("{}: {e}", path.display()))?;
            if let Some((slug, _, params)) = chapters.first_mut() {
                if info.chapter != *slug {
                    return Err(anyhow!(
                        "{}: this run was saved from the {} chapter, not {slug}",
                        path.display(),
                        info.chapter
                    ));
                }
                *params = params_over(info.params.clone(), &args.params)?;
            }
            Some((bytes, info))
        }
        None => None,
    };
    let shared = match &loaded {
        Some((_, info)) => params_over(info.params.clone(), &args.params)?,
        None => params_for("data", &args.params)?,
    };
    let dataset = Arc::new(load_dataset(&args.data_dir, &shared.dataset)?);
    for (slug, chapter, params) in chapters.iter_mut() {
        // CLIP's own checks need its weights, loaded onto the device below.
        if chapter.as_any_mut().is::<Clip>() {
            continue;
        }
        lab::plan(chapter.as_ref(), dataset.clone(), params).map_err(|e| anyhow!("{slug}: {e}"))?;
    }
    let pref: BackendPref = shared.backend;
    let compute = platform::block_on(platform::select_compute(pref)).map_err(|e| anyhow!(e))?;
    eprintln!(
        "backend: {} ({}) - {}",
        compute.kind.as_str(),
        compute.adapter,
        compute.reason
    );
    let control = RunControl::default();
    for (slug, chapter, params) in chapters.iter_mut() {
        if let Some(clip) = chapter.as_any_mut().downcast_mut::<Clip>() {
            let path = args.clip_weights.as_deref().ok_or_else(|| {
                anyhow!("the clip chapter needs --clip-weights FILE (make one with `replab convert-clip`)")
            })?;
            let bytes = super::read_capped(path, MAX_CLIP_BYTES, "CLIP weights file")?;
            let model =
                platform::block_on(lab::clip::load(&bytes, &compute, &control, &mut |_| {}))
                    .map_err(|e| anyhow!("{}: {e}", path.display()))?;
            clip.set_model(Rc::new(model));
            lab::plan(chapter.as_ref(), dataset.clone(), params)
                .map_err(|e| anyhow!("{slug}: {e}"))?;
        }
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let prepared = lab::prepare(dataset.clone(), &shared)?;
    let mut results = Results {
        dataset: shared.dataset.clone(),
        backend: compute.kind.as_str().to_string(),
        adapter: compute.adapter.clone(),
        held_out_labels: prepared.split.held_out_labels.clone(),
        params: BTreeMap::new(),
        chapters: BTreeMap::new(),
    };
    if let (Some((bytes, info)), Some((slug, chapter, _))) = (&loaded, chapters.first_mut()) {
        let evaluate = !args.params.0.iter().any(|(k, _)| *k == "epochs");
        lab::saved::load(chapter.as_mut(), bytes, dataset.clone(), &compute, evaluate)
            .map_err(|e| anyhow!("{slug}: {e}"))?;
        eprintln!(
            "{slug}: loaded a run of {} epoch(s) on {}{}",
            info.epochs,
            info.dataset,
            if evaluate {
                "; analysing it without training"
            } else {
                "; training on"
            }
        );
    }
    for (slug, chapter, params) in chapters.iter_mut() {
        let bar = ProgressBar::new(1000);
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {percent:>3}% eta {eta} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_prefix(slug.clone());
        let mut observer = |e: LabEvent| report(&bar, slug, e);
        let out = platform::block_on(lab::run(
            chapter.as_mut(),
            dataset.clone(),
            params,
            &compute,
            &control,
            &mut observer,
        ))
        .map_err(|e| anyhow!("{slug}: {e}"))?;
        bar.finish_and_clear();
        let r = &out.result;
        let f = |v: Option<f64>| v.map(|a| format!("{a:.3}")).unwrap_or_else(|| "-".into());
        eprintln!(
            "{slug}: dev-A acc {}, probe before {} after {}, fine-tune {}, converged dev-B {:.3} test-B {:.3}, untrained test-B {}, {:.1}s/epoch",
            f(r.dev_a_accuracy),
            f(r.probe.before),
            f(r.probe.after),
            f(r.probe.finetune_after),
            r.probe.converged_dev_b,
            r.probe.converged_test_b,
            f(r.probe.random_init_test_b),
            r.seconds_per_epoch
        );
        for (k, v) in &r.extra {
            match v {
                serde_json::Value::Number(n) => eprintln!("{slug}: {k} {n}"),
                serde_json::Value::Object(o) if o.contains_key("converged_test_b") => eprintln!(
                    "{slug}: {k}: converged dev-B {} test-B {}",
                    o["converged_dev_b"], o["converged_test_b"]
                ),
                _ => {}
            }
        }
        for note in &r.notes {
            eprintln!("{slug}: note: {note}");
        }
        let info = chapter.info();
        for c in lab::charts::chapter_charts(info.loss_title, &out, &dataset.manifest.class_names) {
            write_png(&args.out, slug, &c.name, &c.scene)?;
        }
        if let Some(path) = &args.save {
            let at = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_millis() as f64);
            let bytes = platform::block_on(lab::saved::save(
                chapter.as_ref(),
                params,
                Some(&out.result),
                &compute,
                at,
            ))
            .map_err(|e| anyhow!("{slug}: saving: {e}"))?
            .ok_or_else(|| anyhow!("{slug}: this chapter trains no model to save"))?;
            std::fs::write(path, &bytes)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!(
                "{slug}: saved the run to {} ({} bytes)",
                path.display(),
                bytes.len()
            );
        }
        let mut result = out.result;
        if args.exercises {
            let sweep = run_exercises(slug, params, &dataset, &compute, &control)?;
            result.extra.insert("exercises".into(), sweep);
        }
        results.params.insert(slug.clone(), params.clone());
        results.chapters.insert(slug.clone(), result);
    }
    let path = args.out.join("results.json");
    std::fs::write(&path, serde_json::to_string_pretty(&results)?)?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

/// Every exercise of `slug` as its own run from a fresh model: `{label: {set, result}}`.
fn run_exercises(
    slug: &str,
    params: &LabParams,
    dataset: &Arc<replab::data::Dataset>,
    compute: &platform::Compute,
    control: &RunControl,
) -> Result<serde_json::Value> {
    let info = lab::registry::chapter(slug)?;
    let mut sweep = serde_json::Map::new();
    for e in info.exercises {
        let mut p = params.clone();
        for (k, v) in e.set {
            p.set(k, v)
                .map_err(|err| anyhow!("exercise '{}': {err}", e.label))?;
        }
        let mut chapter = lab::make_chapter(slug)?;
        let bar = ProgressBar::new(1000);
        bar.set_prefix(format!("{slug}: {}", e.label));
        let mut observer = |ev: LabEvent| report(&bar, slug, ev);
        let out = platform::block_on(lab::run(
            chapter.as_mut(),
            dataset.clone(),
            &p,
            compute,
            control,
            &mut observer,
        ))
        .map_err(|err| anyhow!("{slug}, exercise '{}': {err}", e.label))?;
        bar.finish_and_clear();
        eprintln!(
            "{slug}: exercise '{}': converged test-B {:.3}",
            e.label, out.result.probe.converged_test_b
        );
        let set: serde_json::Map<String, serde_json::Value> = e
            .set
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::json!(v)))
            .collect();
        sweep.insert(
            e.label.to_string(),
            serde_json::json!({ "set": set, "result": out.result }),
        );
    }
    Ok(serde_json::Value::Object(sweep))
}

fn report(bar: &ProgressBar, slug: &str, e: LabEvent) {
    match e {
        LabEvent::Stage { name, fraction } => {
            bar.set_position((fraction * 1000.0) as u64);
            bar.set_message(name.to_string());
        }
        LabEvent::Train { phase, event } => match event {
            TrainEvent::Step { .. } => bar.set_message(event.describe(phase)),
            // `suspend` prints even when the bar is hidden (output is not a terminal).
            TrainEvent::Epoch(_) => bar.suspend(|| eprintln!("{slug} {}", event.describe(phase))),
        },
    }
}

fn write_png(out: &Path, chapter: &str, name: &str, scene: &replab::plot::Scene) -> Result<()> {
    let png = replab::plot::png::render(scene).map_err(|e| anyhow!("rendering {name}: {e}"))?;
    let path = out.join(format!("{chapter}_{name}.png"));
    std::fs::write(&path, png).with_context(|| format!("cannot write {}", path.display()))
}
