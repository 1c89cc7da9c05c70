//! `#/supervised` and `#/supcon`: train, watch the loss, look at the features,
//! transfer to the held-out classes.

use super::canvas;
use super::state::{AppState, current_params, page_params};
use super::text;
use crate::lab::charts;
use crate::lab::supcon::SupConState;
use crate::lab::supervised::{ChapterOutput, SupervisedState};
use crate::lab::{self, LabEvent, LabParams};
use crate::train::engine::Control;
use crate::train::{RunControl, TrainEvent};
use leptos::html;
use leptos::prelude::*;
use std::cell::RefCell;
use std::collections::HashMap;

/// Models, optimiser state and latest outputs, kept for the session.
#[derive(Default)]
struct Session {
    supervised: SupervisedState,
    supcon: SupConState,
    /// The parameters the current models were trained with (minus `epochs`).
    keys: HashMap<String, String>,
    outputs: HashMap<String, ChapterOutput>,
    runs: HashMap<String, Vec<RunSummary>>,
}

thread_local! {
    static SESSION: RefCell<Session> = RefCell::new(Session::default());
}

/// One finished run, for the exercise table.
#[derive(Clone, Debug, PartialEq)]
pub struct RunSummary {
    /// The parameters, as a query string.
    pub query: String,
    /// Headline numbers.
    pub result: lab::supervised::ChapterResult,
    /// The encoder-feature UMAP, for side-by-side thumbnails.
    pub umap: Option<lab::common::Embedding2d>,
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
}

fn key_of(p: &LabParams) -> String {
    let mut k = p.clone();
    k.epochs = 0;
    k.to_query()
}

fn reset_session(slug: &str) {
    SESSION.with(|s| {
        let mut s = s.borrow_mut();
        match slug {
            "supervised" => s.supervised = SupervisedState::new(),
            _ => s.supcon = SupConState::default(),
        }
        s.keys.remove(slug);
        s.outputs.remove(slug);
    });
}

/// A training chapter page.
#[component]
pub fn ChapterPage(slug: String) -> impl IntoView {
    let state = expect_context::<AppState>();
    let slug = StoredValue::new(slug);
    let params = page_params(state);
    let current = move || current_params(params);
    let status = RwSignal::new("idle".to_string());
    let stage = RwSignal::new(String::new());
    let progress = RwSignal::new(0.0f64);
    let eta = RwSignal::new(0.0f64);
    let live = RwSignal::new(Live::default());
    let initial = SESSION.with(|s| s.borrow().outputs.get(&slug.get_value()).cloned());
    let output = RwSignal::new(initial);
    let runs = RwSignal::new(SESSION.with(|s| {
        s.borrow()
            .runs
            .get(&slug.get_value())
            .cloned()
            .unwrap_or_default()
    }));
    let control = StoredValue::new(RunControl::default());
    let reset_after = StoredValue::new(false);

    let update = move |key: &'static str, value: String| {
        state.update_param(&slug.get_value(), current(), key, &value)
    };

    let start = move || {
        if status.get_untracked() == "running" {
            return;
        }
        let (p, compute, ds) = match state.run_inputs(params.get_untracked()) {
            Ok(inputs) => inputs,
            Err(e) => {
                status.set(format!("error: {e}"));
                return;
            }
        };
        let ctl = RunControl::default();
        control.set_value(ctl.clone());
        status.set("running".into());
        progress.set(0.0);
        let s = slug.get_value();
        // A run with different data or hyper-parameters starts afresh.
        let key = key_of(&p);
        let same = SESSION.with(|x| x.borrow().keys.get(&s) == Some(&key));
        if !same {
            reset_session(&s);
            live.set(Live::default());
        }
        let first_epoch = live.with_untracked(|l| l.train.len()) as f64;
        leptos::task::spawn_local(async move {
            let prepared = match lab::prepare(ds, &p) {
                Ok(pr) => pr,
                Err(e) => {
                    status.set(format!("error: {e}"));
                    return;
                }
            };
            let mut observer = |e: LabEvent| match e {
                LabEvent::Stage { name, fraction } => {
                    stage.set(name.to_string());
                    progress.set(fraction);
                }
                LabEvent::Train { phase, event } => {
                    if phase != "train" {
                        if let TrainEvent::Step {
                            epoch, step, steps, ..
                        } = event
                        {
                            stage.set(format!(
                                "transfer ({phase}): epoch {epoch}, step {step}/{steps}"
                            ));
                        }
                        return;
                    }
                    match event {
                        TrainEvent::Step {
                            epoch,
                            step,
                            steps,
                            loss,
                            eta_seconds,
                        } => {
                            let x = (*epoch - 1) as f64 + *step as f64 / (*steps).max(1) as f64;
                            live.update(|l| l.steps.push([x, *loss]));
                            eta.set(*eta_seconds);
                            stage.set(format!(
                                "training: epoch {epoch}, step {step}/{steps}, loss {loss:.4}"
                            ));
                            progress.set(
                                0.45 * ((x - first_epoch) / p.epochs.max(1) as f64).clamp(0.0, 1.0),
                            );
                        }
                        TrainEvent::Epoch(st) => live.update(|l| {
                            l.train.push([st.epoch as f64, st.train_loss]);
                            if let Some(d) = st.dev_loss {
                                l.dev.push([st.epoch as f64, d]);
                            }
                        }),
                    }
                }
            };
            let result = if s == "supervised" {
                let mut st = SESSION.with(|x| std::mem::take(&mut x.borrow_mut().supervised));
                let r = lab::supervised::run(&mut st, &prepared, &p, &compute, &ctl, &mut observer)
                    .await;
                SESSION.with(|x| x.borrow_mut().supervised = st);
                r
            } else {
                let mut st = SESSION.with(|x| std::mem::take(&mut x.borrow_mut().supcon));
                let r =
                    lab::supcon::run(&mut st, &prepared, &p, &compute, &ctl, &mut observer).await;
                SESSION.with(|x| x.borrow_mut().supcon = st);
                r
            };
            SESSION.with(|x| {
                x.borrow_mut().keys.insert(s.clone(), key);
            });
            match result {
                Ok(out) => {
                    let summary = RunSummary {
                        query: p.to_query(),
                        result: out.result.clone(),
                        umap: out.umaps.get(1).cloned(),
                    };
                    SESSION.with(|x| {
                        let mut x = x.borrow_mut();
                        x.outputs.insert(s.clone(), out.clone());
                        x.runs.entry(s.clone()).or_default().push(summary.clone());
                    });
                    runs.update(|r| r.push(summary));
                    output.set(Some(out));
                    progress.set(1.0);
                    stage.set("finished".into());
                    status.set("done".into());
                }
                Err(e) if e.is_cancel() => {
                    stage.set("cancelled; the weights trained so far are kept".into());
                    status.set("cancelled".into());
                }
                Err(e) => status.set(format!("error: {e}")),
            }
            if reset_after.try_get_value().unwrap_or(false) {
                reset_after.try_set_value(false);
                reset_session(&s);
                live.set(Live::default());
                output.set(None);
            }
        });
    };

    let cancel = move || control.with_value(|c| c.set(Control::Cancel));
    let pause = move || {
        control.with_value(|c| {
            let next = if c.get() == Control::Pause {
                Control::Run
            } else {
                Control::Pause
            };
            c.set(next)
        })
    };
    let reset = move || {
        if status.get_untracked() == "running" {
            reset_after.set_value(true);
            control.with_value(|c| c.set(Control::Cancel));
        } else {
            reset_session(&slug.get_value());
            live.set(Live::default());
            output.set(None);
            status.set("idle".into());
            stage.set(String::new());
            progress.set(0.0);
        }
    };
    let exercise = move |key: &'static str, value: &'static str| {
        if status.get_untracked() == "running" {
            return;
        }
        update(key, value.to_string());
        start();
    };

    // Charts.
    let loss_ref = NodeRef::<html::Canvas>::new();
    Effect::new(move |_| {
        let Some(l) = live.try_get() else { return };
        if let Some(el) = loss_ref.try_get().flatten() {
            canvas::draw(
                &el,
                &charts::live_loss_chart(
                    &l.steps,
                    &l.train,
                    &l.dev,
                    "Loss while training (mean per example)",
                ),
            );
        }
    });
    let transfer_ref = NodeRef::<html::Canvas>::new();
    let cm_before_ref = NodeRef::<html::Canvas>::new();
    let cm_after_ref = NodeRef::<html::Canvas>::new();
    let cm_conv_ref = NodeRef::<html::Canvas>::new();
    let umap_refs = [
        NodeRef::<html::Canvas>::new(),
        NodeRef::<html::Canvas>::new(),
        NodeRef::<html::Canvas>::new(),
    ];
    let hover = RwSignal::new(String::new());
    let umap_layouts = StoredValue::new(Vec::<crate::plot::charts::ScatterLayout>::new());
    // The hovered test image: (row in the test split).
    let hover_row = RwSignal::new(None::<usize>);
    let hover_ref = NodeRef::<html::Canvas>::new();
    Effect::new(move |_| {
        let (Some(Some(row)), Some(el)) = (hover_row.try_get(), hover_ref.try_get().flatten())
        else {
            return;
        };
        let Some(ds) = state.dataset(&current().dataset) else {
            return;
        };
        canvas::draw(&el, &charts::thumbnail(&ds, row));
    });
    Effect::new(move |_| {
        let Some(Some(out)) = output.try_get() else {
            return;
        };
        let p = current();
        let Some(ds) = state.dataset(&p.dataset) else {
            return;
        };
        if let Some(el) = transfer_ref.try_get().flatten() {
            canvas::draw(&el, &charts::transfer_chart(&out.curves));
        }
        let r = &out.result.probe;
        for (node, m, title) in [
            (
                cm_before_ref,
                &r.confusion_before,
                "Dev B before training the head",
            ),
            (
                cm_after_ref,
                &r.confusion_after,
                "Dev B after training the head",
            ),
            (
                cm_conv_ref,
                &r.confusion_converged,
                "Test B, converged probe",
            ),
        ] {
            if let Some(el) = node.try_get().flatten() {
                canvas::draw(&el, &charts::confusion(m, &out.names_b, title));
            }
        }
        // Keep the layouts so hovering looks points up without rebuilding the scenes.
        let mut layouts = Vec::new();
        for (i, node) in umap_refs.iter().enumerate() {
            if let (Some(el), Some(e)) = (node.try_get().flatten(), out.umaps.get(i)) {
                let (scene, layout) =
                    charts::umap(e, &ds.manifest.class_names, &out.held_out_labels);
                canvas::draw(&el, &scene);
                layouts.push(layout);
            }
        }
        umap_layouts.try_set_value(layouts);
    });
    let on_hover = move |i: usize, ev: leptos::ev::MouseEvent| {
        let (x, y) = (ev.offset_x() as f32, ev.offset_y() as f32);
        let Some(picked) = umap_layouts.try_with_value(|l| l.get(i).map(|l| l.nearest(x, y, 8.0)))
        else {
            return;
        };
        let Some(ds) = state.dataset(&current().dataset) else {
            return;
        };
        let picked = picked.flatten();
        let Some(hit) = output.try_with_untracked(|o| {
            let e = o.as_ref()?.umaps.get(i)?;
            let k = picked?;
            Some((*e.rows.get(k)?, *e.labels.get(k)?))
        }) else {
            return;
        };
        hover_row.set(hit.map(|(row, _)| row));
        hover.set(match hit {
            Some((row, label)) => {
                let name = ds
                    .manifest
                    .class_names
                    .get(label)
                    .cloned()
                    .unwrap_or_default();
                format!("test image #{row}: {name}")
            }
            None => String::new(),
        });
    };

    let is_sup = move || slug.get_value() == "supervised";
    let result_json = move || {
        output
            .get()
            .map(|o| serde_json::to_string_pretty(&o.result).unwrap_or_default())
            .unwrap_or_default()
    };
    let num_input =
        move |label: &'static str,
              key: &'static str,
              step: &'static str,
              value: Box<dyn Fn(&LabParams) -> String + Send + Sync>| {
            view! {
                <label>{label}" "
                    <input type="number" step=step data-testid=format!("param-{key}")
                        prop:value=move || value(&current())
                        on:change=move |ev| update(key, event_target_value(&ev))/>
                </label>
            }
        };

    view! {
        <section class="chapter">
            <h2>{move || if is_sup() { "Supervised representations" } else { "Supervised contrastive learning (SupCon)" }}</h2>
            <div class="prose" inner_html=move || if is_sup() { text::SUPERVISED_INTRO } else { text::SUPCON_INTRO }></div>
            {move || params.get().err().map(|e| view! { <p class="error">"Bad URL parameter: " {e}</p> })}
            <div class="controls">
                {num_input("Epochs", "epochs", "1", Box::new(|p| p.epochs.to_string()))}
                {num_input("Limit per split (blank = all)", "limit", "1", Box::new(|p| p.limit.map(|l| l.to_string()).unwrap_or_default()))}
                {num_input("Seed", "seed", "1", Box::new(|p| p.seed.to_string()))}
                {num_input("Batch size", "batch_size", "1", Box::new(|p| p.batch_size.to_string()))}
                {num_input("Learning rate", "lr", "0.0001", Box::new(|p| p.lr.to_string()))}
                {num_input("Labelled ratio", "labeled_ratio", "0.05", Box::new(|p| p.labeled_ratio.to_string()))}
                {move || (!is_sup()).then(|| num_input("Temperature", "temperature", "0.01", Box::new(|p| p.temperature.to_string())))}
            </div>
            <div class="buttons">
                <button data-testid="run" on:click=move |_| start() disabled=move || status.get() == "running">
                    {move || if output.get().is_some() || !live.get().train.is_empty() { "Run again (continues training)" } else { "Run" }}
                </button>
                <button data-testid="pause" on:click=move |_| pause() disabled=move || status.get() != "running">"Pause / resume"</button>
                <button data-testid="cancel" on:click=move |_| cancel() disabled=move || status.get() != "running">"Cancel"</button>
                <button data-testid="reset" on:click=move |_| reset()>"Reset"</button>
                <span class="status">"Status: " <span data-testid="status">{move || status.get()}</span></span>
            </div>
            <div class="progress">
                <progress max="1" prop:value=move || progress.get()></progress>
                <span data-testid="stage">{move || stage.get()}</span>
                <span class="eta">{move || if status.get() == "running" && eta.get() > 0.0 { format!(" training ETA {:.0} s", eta.get()) } else { String::new() }}</span>
            </div>
            <canvas node_ref=loss_ref data-testid="loss-chart" width="10" height="10"></canvas>
            <div class="prose" inner_html=text::FEATURES></div>
            <div class="umaps">
                {(0..3).map(|i| view! {
                    <canvas node_ref=umap_refs[i] data-testid=format!("umap-{i}") width="10" height="10"
                        on:mousemove=move |ev| on_hover(i, ev)></canvas>
                }).collect_view()}
            </div>
            <div class="hover">
                <canvas node_ref=hover_ref data-testid="hover-image" width="10" height="10"></canvas>
                <span data-testid="hover">{move || hover.get()}</span>
            </div>
            <div class="prose" inner_html=text::TRANSFER></div>
            <div class="cms">
                <canvas node_ref=cm_before_ref data-testid="confusion-before" width="10" height="10"></canvas>
                <canvas node_ref=cm_after_ref data-testid="confusion-after" width="10" height="10"></canvas>
                <canvas node_ref=cm_conv_ref data-testid="confusion-converged" width="10" height="10"></canvas>
            </div>
            <canvas node_ref=transfer_ref data-testid="transfer-chart" width="10" height="10"></canvas>
            {move || output.get().map(|o| {
                let r = o.result.probe.clone();
                view! {
                    <table class="headline" data-testid="headline">
                        <tr><th>"dev-A accuracy"</th><td>{o.result.dev_a_accuracy.map(|a| format!("{a:.3}")).unwrap_or_else(|| "-".into())}</td></tr>
                        <tr><th>"notebook probe, dev B: before / after"</th><td>{format!("{:.3} / {:.3}", r.before, r.after)}</td></tr>
                        <tr><th>"fine-tune, dev B"</th><td>{format!("{:.3}", r.finetune_after)}</td></tr>
                        <tr><th>"converged probe: dev B / test B"</th><td>{format!("{:.3} / {:.3}", r.converged_dev_b, r.converged_test_b)}</td></tr>
                        <tr><th>"converged probe on an untrained encoder, test B"</th><td>{format!("{:.3}", r.random_init_test_b)}</td></tr>
                    </table>
                }
            })}
            <h3>"Exercises"</h3>
            <div class="prose" inner_html=move || if is_sup() { text::SUPERVISED_EXERCISES } else { text::SUPCON_EXERCISES }></div>
            <div class="buttons">
                {move || if is_sup() {
                    view! {
                        <button data-testid="ex-ratio-0.05" on:click=move |_| exercise("labeled_ratio", "0.05")>"Labelled ratio 0.05"</button>
                        <button data-testid="ex-ratio-0.2" on:click=move |_| exercise("labeled_ratio", "0.2")>"Labelled ratio 0.2"</button>
                        <button data-testid="ex-ratio-1" on:click=move |_| exercise("labeled_ratio", "1")>"Labelled ratio 1.0"</button>
                    }.into_any()
                } else {
                    view! {
                        <button on:click=move |_| exercise("temperature", "0.01")>"Temperature 0.01"</button>
                        <button on:click=move |_| exercise("temperature", "0.07")>"Temperature 0.07"</button>
                        <button on:click=move |_| exercise("temperature", "0.5")>"Temperature 0.5"</button>
                        <button on:click=move |_| exercise("batch_size", "32")>"Batch 32"</button>
                        <button on:click=move |_| exercise("batch_size", "512")>"Batch 512"</button>
                    }.into_any()
                }}
            </div>
            <RunsTable runs=runs/>
            <h3>"Result (the same object as results.json)"</h3>
            <pre class="json" data-testid="result">{result_json}</pre>
        </section>
    }
}

#[component]
fn RunsTable(runs: RwSignal<Vec<RunSummary>>) -> impl IntoView {
    let state = expect_context::<AppState>();
    view! {
        <table class="runs" data-testid="runs">
            <tr><th>"parameters"</th><th>"epochs"</th><th>"dev-A acc"</th><th>"probe after"</th><th>"fine-tune"</th><th>"converged test B"</th><th>"encoder UMAP"</th></tr>
            {move || runs.get().into_iter().map(|r| {
                let thumb = NodeRef::<html::Canvas>::new();
                let emb = r.umap.clone();
                let query = r.query.clone();
                Effect::new(move |_| {
                    let (Some(el), Some(e)) = (thumb.try_get().flatten(), emb.as_ref()) else {
                        return;
                    };
                    let p = LabParams::from_query(&query).unwrap_or_default();
                    if let Some(ds) = state.dataset(&p.dataset) {
                        canvas::draw(&el, &charts::umap_thumbnail(e, &ds.manifest.class_names));
                    }
                });
                view! {
                    <tr>
                        <td>{if r.query.is_empty() { "defaults".to_string() } else { r.query.clone() }}</td>
                        <td>{r.result.epochs_trained}</td>
                        <td>{r.result.dev_a_accuracy.map(|a| format!("{a:.3}")).unwrap_or_else(|| "-".into())}</td>
                        <td>{format!("{:.3}", r.result.probe.after)}</td>
                        <td>{format!("{:.3}", r.result.probe.finetune_after)}</td>
                        <td>{format!("{:.3}", r.result.probe.converged_test_b)}</td>
                        <td><canvas node_ref=thumb width="10" height="10"></canvas></td>
                    </tr>
                }
            }).collect_view()}
        </table>
    }
}
