//! Runs belong to the app, not to a page: one run at a time in the whole app (they
//! share one device), with its status, live chart and output kept in signals that
//! outlive any page view, and one control handle that Cancel reaches from anywhere.

use super::state::AppState;
use crate::lab::features::Embedding2d;
use crate::lab::{self, Chapter, ChapterOutput, ChapterResult, LabEvent, LabParams};
use crate::lab::{Control, RunControl, TrainEvent};
use crate::platform::{self, BackendKind, BackendPref, Compute};
use leptos::prelude::*;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

thread_local! {
    /// The chapters' runners with their trained models, by slug. A running
    /// chapter is taken out while it runs and put back when it stops.
    static RUNNERS: RefCell<HashMap<&'static str, Box<dyn Chapter>>> = RefCell::new(HashMap::new());
}

/// Call `f` with the runner of `slug` (made on first use), if it is not running.
pub fn with_runner<T>(slug: &'static str, f: impl FnOnce(&mut dyn Chapter) -> T) -> Option<T> {
    RUNNERS.with(|r| {
        let mut r = r.borrow_mut();
        if !r.contains_key(slug) {
            r.insert(slug, lab::make_chapter(slug).ok()?);
        }
        r.get_mut(slug).map(|c| f(c.as_mut()))
    })
}

pub(super) fn take_runner(slug: &'static str) -> Option<Box<dyn Chapter>> {
    with_runner(slug, |_| ())?;
    RUNNERS.with(|r| r.borrow_mut().remove(slug))
}

pub(super) fn put_runner(slug: &'static str, c: Box<dyn Chapter>) {
    RUNNERS.with(|r| {
        r.borrow_mut().insert(slug, c);
    });
}

/// Live training curves.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Live {
    /// (epoch-fraction, loss) per step.
    pub steps: Vec<[f64; 2]>,
    /// (epoch, loss) per epoch.
    pub train: Vec<[f64; 2]>,
    /// (epoch, loss) per epoch.
    pub dev: Vec<[f64; 2]>,
    /// (epoch-fraction, values) per step, for chapters that monitor more than the loss.
    pub monitors: Vec<(f64, Vec<f64>)>,
}

/// One finished run, for the exercise table.
#[derive(Clone, Debug, PartialEq)]
pub struct RunSummary {
    /// The parameters, as a query string.
    pub query: String,
    /// Headline numbers.
    pub result: ChapterResult,
    /// One UMAP, for side-by-side thumbnails.
    pub umap: Option<Embedding2d>,
    /// The dataset's class names.
    pub class_names: Vec<String>,
    /// The run's reconstructions, for the autoencoders' side-by-side sweeps.
    pub reconstructions: Option<crate::plot::Scene>,
}

/// What the app knows about one chapter's runs; survives navigation.
#[derive(Clone, Copy)]
pub struct Slot {
    /// `idle`, `waiting: …`, `running`, `paused`, `done`, `cancelled` or `error: …`.
    pub status: RwSignal<String>,
    /// What is happening now.
    pub stage: RwSignal<String>,
    /// Overall progress in [0, 1].
    pub progress: RwSignal<f64>,
    /// Seconds of training left, when known.
    pub eta: RwSignal<f64>,
    /// Live curves.
    pub live: RwSignal<Live>,
    /// The latest finished output.
    pub output: RwSignal<Option<Arc<ChapterOutput>>>,
    /// Parameters of the model being trained or last trained.
    pub run_params: RwSignal<Option<LabParams>>,
    /// Finished runs.
    pub runs: RwSignal<Vec<RunSummary>>,
}

impl Slot {
    fn new() -> Self {
        Self {
            status: RwSignal::new("idle".into()),
            stage: RwSignal::new(String::new()),
            progress: RwSignal::new(0.0),
            eta: RwSignal::new(0.0),
            live: RwSignal::new(Live::default()),
            output: RwSignal::new(None),
            run_params: RwSignal::new(None),
            runs: RwSignal::new(Vec::new()),
        }
    }

    pub(super) fn clear(&self) {
        self.live.set(Live::default());
        self.output.set(None);
        self.run_params.set(None);
        self.stage.set(String::new());
        self.progress.set(0.0);
        self.eta.set(0.0);
    }
}

/// The app's runs: a slot per chapter, the active run and its control.
#[derive(Clone, Copy)]
pub struct Runs {
    slots: StoredValue<HashMap<&'static str, Slot>>,
    /// The chapter running now, if any.
    pub active: RwSignal<Option<&'static str>>,
    control: StoredValue<RunControl>,
}

impl Runs {
    /// A slot for every runnable chapter of the registry.
    pub fn new() -> Self {
        let slots = lab::CHAPTERS
            .iter()
            .filter(|c| c.runnable())
            .map(|c| (c.slug, Slot::new()))
            .collect();
        Self {
            slots: StoredValue::new(slots),
            active: RwSignal::new(None),
            control: StoredValue::new(RunControl::default()),
        }
    }

    /// The slot of a runnable chapter.
    pub fn slot(&self, slug: &str) -> Option<Slot> {
        self.slots.with_value(|s| s.get(slug).copied())
    }

    /// Cancel the active run, wherever it is.
    pub fn cancel(&self) {
        self.control.with_value(|c| c.set(Control::Cancel));
    }

    /// Pause the active run, or resume it.
    pub fn toggle_pause(&self) {
        let Some(slug) = self.active.get_untracked() else {
            return;
        };
        let Some(slot) = self.slot(slug) else { return };
        self.control.with_value(|c| {
            if c.get() == Control::Pause {
                c.set(Control::Run);
                slot.status.set("running".into());
            } else if c.get() == Control::Run {
                // "pausing" until the run reaches its next checkpoint (on a GPU it
                // first reports the steps it had queued), then "paused".
                c.set(Control::Pause);
                slot.status.set("pausing".into());
                let c = c.clone();
                leptos::task::spawn_local(async move {
                    while c.get() == Control::Pause && !c.is_parked() {
                        platform::sleep_ms(50).await;
                    }
                    if c.is_parked() && slot.status.get_untracked() == "pausing" {
                        slot.status.set("paused".into());
                    }
                });
            }
        });
    }

    /// Forget a chapter's model and results; a running one is cancelled first.
    pub fn reset(&self, slug: &'static str) {
        let Some(slot) = self.slot(slug) else { return };
        if self.active.get_untracked() == Some(slug) {
            self.cancel();
        }
        let this = *self;
        leptos::task::spawn_local(async move {
            while this.active.get_untracked() == Some(slug) {
                platform::sleep_ms(30).await;
            }
            with_runner(slug, |c| c.reset());
            slot.clear();
            slot.status.set("idle".into());
        });
    }

    /// Start a run of `slug` with `params`: a fresh one from the seed, or (when
    /// `resume`) continuing the kept model. Another chapter's run is cancelled
    /// first, after asking.
    pub fn start(&self, state: AppState, slug: &'static str, params: LabParams, resume: bool) {
        let Some(slot) = self.slot(slug) else { return };
        if let Some(other) = self.active.get_untracked() {
            let msg = if other == slug {
                "This chapter is already running. Cancel that run and start a new one?".to_string()
            } else {
                format!(
                    "A {other} run is in progress (one run at a time: they share the device). Cancel it and start this one?"
                )
            };
            if !super::confirm(&msg) {
                return;
            }
            self.cancel();
        }
        let this = *self;
        slot.status
            .set("waiting: for the previous run to stop".into());
        leptos::task::spawn_local(async move {
            while this.active.get_untracked().is_some() {
                platform::sleep_ms(30).await;
            }
            this.active.set(Some(slug));
            let control = RunControl::default();
            this.control.set_value(control.clone());
            let outcome = this.run(state, slug, slot, params, resume, &control).await;
            match outcome {
                Ok(()) => {}
                Err(e) if e == "cancelled" => {
                    slot.stage
                        .set("cancelled; Run starts again from the seed".into());
                    slot.status.set("cancelled".into());
                }
                Err(e) => slot.status.set(format!("error: {e}")),
            }
            this.active.set(None);
        });
    }

    async fn run(
        &self,
        state: AppState,
        slug: &'static str,
        slot: Slot,
        params: LabParams,
        resume: bool,
        control: &RunControl,
    ) -> Result<(), String> {
        slot.status.set("waiting: for the compute device".into());
        let compute = compute_for(state, params.backend, control).await?;
        slot.status
            .set(format!("waiting: for the dataset {}", params.dataset));
        let dataset = state.wait_dataset(&params.dataset, control).await?;
        let mut runner = take_runner(slug).ok_or("this chapter cannot run")?;
        let resume = resume
            && runner.epochs_trained() > 0
            && slot
                .run_params
                .get_untracked()
                .is_some_and(|p| p.same_model(&params));
        if !resume {
            runner.reset();
            slot.clear();
        }
        slot.run_params.set(Some(params.clone()));
        slot.status.set("running".into());
        let span = Span {
            before: runner.epochs_trained(),
            epochs: params.epochs,
        };
        let mut observer = |e: LabEvent| observe(slot, span, e);
        let result = lab::run(
            runner.as_mut(),
            dataset.clone(),
            &params,
            &compute,
            control,
            &mut observer,
        )
        .await;
        put_runner(slug, runner);
        match result {
            Ok(out) => {
                let summary = RunSummary {
                    query: params.to_query(slug),
                    result: out.result.clone(),
                    umap: out.umaps.get(1).or(out.umaps.first()).cloned(),
                    class_names: dataset.manifest.class_names.clone(),
                    reconstructions: out
                        .figures
                        .iter()
                        .find(|c| c.name == "reconstructions")
                        .map(|c| c.scene.clone()),
                };
                slot.runs.update(|r| r.push(summary));
                slot.output.set(Some(Arc::new(out)));
                slot.progress.set(1.0);
                slot.stage.set("finished".into());
                slot.status.set("done".into());
                Ok(())
            }
            Err(e) if e.is_cancel() => Err("cancelled".into()),
            Err(e) if compute.kind == BackendKind::Webgpu && device_lost(&e) => {
                // The model lived on the lost device; from now on `auto` means the CPU.
                with_runner(slug, |c| c.reset());
                slot.run_params.set(None);
                state.compute.set(Some(Compute::cpu(
                    "the WebGPU device was lost, so the lab switched to the CPU",
                )));
                Err(format!(
                    "the GPU (WebGPU device) was lost or failed during the run, and the model trained on it with it ({e}). The lab has switched to the CPU: press Run to train there"
                ))
            }
            Err(e) => Err(e.to_string()),
        }
    }
}

impl Default for Runs {
    fn default() -> Self {
        Self::new()
    }
}

/// The device a run asked for: the probed one for `auto`, the CPU for `cpu`, and
/// WebGPU only when the browser has it.
pub(super) async fn compute_for(
    state: AppState,
    pref: BackendPref,
    control: &RunControl,
) -> Result<Compute, String> {
    if pref == BackendPref::Cpu {
        return Ok(Compute::cpu("backend=cpu was requested"));
    }
    let probed = loop {
        if let Some(c) = state.compute.get_untracked() {
            break c;
        }
        control.checkpoint().await.map_err(|e| e.to_string())?;
        platform::sleep_ms(50).await;
    };
    if pref == BackendPref::Wgpu && probed.kind == BackendKind::Cpu {
        return Err(format!(
            "backend=webgpu, but this browser offers no WebGPU ({}); choose auto or cpu",
            probed.reason
        ));
    }
    Ok(probed)
}

/// Whether an error says the GPU device failed: a read from it failed (after a
/// loss, a buffer can no longer be mapped), or cubecl marked it poisoned.
fn device_lost(e: &lab::LabError) -> bool {
    let m = e.to_string().to_lowercase();
    matches!(e, lab::LabError::Train(crate::train::TrainError::Device(_)))
        || m.contains("poison")
        || m.contains("device was lost")
}

/// Epochs trained before this run, and epochs this run trains.
#[derive(Clone, Copy)]
struct Span {
    before: usize,
    epochs: usize,
}

/// Share of the overall progress bar that the main training takes.
const TRAINING_SHARE: f64 = 0.45;

fn observe(slot: Slot, span: Span, e: LabEvent) {
    match e {
        LabEvent::Stage { name, fraction } => {
            slot.stage.set(name.to_string());
            slot.progress.set(fraction);
        }
        LabEvent::Train { phase, event } => match event {
            TrainEvent::Step {
                epoch,
                step,
                steps,
                loss,
                monitors,
                eta_seconds,
            } => {
                slot.stage.set(event.describe(phase));
                if phase == "train" {
                    let x = (*epoch - 1) as f64 + *step as f64 / (*steps).max(1) as f64;
                    slot.live.update(|l| {
                        l.steps.push([x, *loss]);
                        if !monitors.is_empty() {
                            l.monitors.push((x, monitors.clone()));
                        }
                    });
                    slot.eta.set(*eta_seconds);
                    let done = (x - span.before as f64) / span.epochs.max(1) as f64;
                    slot.progress.set(TRAINING_SHARE * done.clamp(0.0, 1.0));
                }
            }
            TrainEvent::Epoch(s) => {
                if phase == "train" {
                    slot.live.update(|l| {
                        l.train.push([s.epoch as f64, s.train_loss]);
                        if let Some(d) = s.dev_loss {
                            l.dev.push([s.epoch as f64, d]);
                        }
                    });
                }
            }
        },
    }
}
