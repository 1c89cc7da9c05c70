//! `#/clip`: load converted CLIP weights (deployed, picked or dropped), embed a
//! sample, look at it, and probe the held-out classes.

use super::canvas;
use super::state::{AppState, current_params, page_params};
use super::text;
use crate::lab::clip::{self as clip_lab, ClipModel, ClipOutput};
use crate::lab::{self, LabEvent, charts};
use crate::platform;
use crate::train::engine::Control;
use crate::train::{RunControl, TrainEvent};
use leptos::html;
use leptos::prelude::*;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::{JsCast, JsValue};

/// The loaded encoder and the latest output, kept while the page is open.
#[derive(Default)]
struct Session {
    model: Option<Rc<ClipModel>>,
    source: String,
    output: Option<ClipOutput>,
    checked_deployed: bool,
}

thread_local! {
    static SESSION: RefCell<Session> = RefCell::new(Session::default());
}

/// Where the app keeps a file the user chose, so a reload does not lose it.
const PICKED_KEY: &str = "models/chosen-clip-weights.safetensors";

/// Where loaded bytes came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Origin {
    /// The deployed file (cached by the download itself).
    Deployed,
    /// Chosen or dropped by the user now.
    Picked,
    /// A chosen file remembered from an earlier visit.
    Remembered,
}

/// Where the weights are.
#[derive(Clone, Debug, PartialEq)]
enum Weights {
    /// Looking for a deployed file.
    Checking,
    /// Downloading or loading: what is happening.
    Busy(String),
    /// Nothing deployed; the user can supply a file.
    Missing,
    /// Loaded from the named source.
    Ready(String),
    /// A file was rejected: why.
    Failed(String),
}

/// What the browser handed over in a file input or a drop: a `FileList`.
async fn first_file(files: JsValue) -> Result<(String, Vec<u8>), String> {
    let file = js_sys::Reflect::get(&files, &JsValue::from_f64(0.0))
        .ok()
        .filter(|f| !f.is_undefined() && !f.is_null())
        .ok_or("no file was chosen")?;
    let name = js_sys::Reflect::get(&file, &JsValue::from_str("name"))
        .ok()
        .and_then(|n| n.as_string())
        .unwrap_or_else(|| "the chosen file".into());
    // A File is a Blob.
    let blob: web_sys::Blob = file.unchecked_into();
    let buffer = wasm_bindgen_futures::JsFuture::from(blob.array_buffer())
        .await
        .map_err(|e| format!("cannot read {name}: {e:?}"))?;
    Ok((name, js_sys::Uint8Array::new(&buffer).to_vec()))
}

fn human(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// The CLIP chapter page.
#[component]
pub fn ClipPage() -> impl IntoView {
    let state = expect_context::<AppState>();
    let params = page_params(state);
    let current = move || current_params(params);
    let initial = SESSION.with(|s| {
        let s = s.borrow();
        match &s.model {
            Some(_) => Weights::Ready(s.source.clone()),
            None if s.checked_deployed => Weights::Missing,
            None => Weights::Checking,
        }
    });
    let weights = RwSignal::new(initial);
    let info = RwSignal::new(SESSION.with(|s| s.borrow().model.as_ref().map(|m| model_info(m))));
    let status = RwSignal::new("idle".to_string());
    let stage = RwSignal::new(String::new());
    let progress = RwSignal::new(0.0f64);
    let output = RwSignal::new(SESSION.with(|s| s.borrow().output.clone()));
    let control = StoredValue::new(RunControl::default());

    // Load bytes into the session's model, whatever their source.
    let load_bytes = move |source: String, bytes: Vec<u8>, origin: Origin| {
        let Some(compute) = state.compute.get_untracked() else {
            weights.set(Weights::Failed(
                "the compute device is still being probed; try again in a moment".into(),
            ));
            return;
        };
        weights.set(Weights::Busy(format!("checking {source}")));
        leptos::task::spawn_local(async move {
            let ctl = RunControl::default();
            let mut observer = |e: LabEvent| {
                if let LabEvent::Stage { name, .. } = e {
                    weights.try_set(Weights::Busy(name.to_string()));
                }
            };
            match clip_lab::load(&bytes, &compute, &ctl, &mut observer).await {
                Ok(model) => {
                    if origin == Origin::Picked {
                        // Remember the user's file for the next visit.
                        platform::cache_put(PICKED_KEY, &bytes).await;
                    }
                    info.try_set(Some(model_info(&model)));
                    SESSION.with(|s| {
                        let mut s = s.borrow_mut();
                        s.model = Some(Rc::new(model));
                        s.source = source.clone();
                        s.output = None;
                    });
                    output.try_set(None);
                    weights.try_set(Weights::Ready(source));
                }
                Err(e) => {
                    if origin == Origin::Remembered {
                        platform::cache_delete(PICKED_KEY).await;
                    }
                    weights.try_set(Weights::Failed(format!("{source}: {e}")));
                }
            }
        });
    };

    // Look for deployed weights once the device is known.
    Effect::new(move |_| {
        if state.compute.try_get().flatten().is_none()
            || weights.get_untracked() != Weights::Checking
        {
            return;
        }
        weights.set(Weights::Busy("looking for deployed weights".into()));
        leptos::task::spawn_local(async move {
            let fetched = platform::fetch_bytes(clip_lab::WEIGHTS_URL, |got, total| {
                let msg = match total {
                    Some(t) => format!("downloading the weights: {} of {}", human(got), human(t)),
                    None => format!("downloading the weights: {}", human(got)),
                };
                weights.try_set(Weights::Busy(msg));
            })
            .await;
            SESSION.with(|s| s.borrow_mut().checked_deployed = true);
            let deployed = match fetched {
                // A static server may answer a missing file with the app's own page.
                Ok(bytes) if !bytes.starts_with(b"<") && !bytes.is_empty() => {
                    load_bytes(clip_lab::WEIGHTS_URL.to_string(), bytes, Origin::Deployed);
                    true
                }
                Ok(_) => false,
                Err(e) if e.contains("HTTP 404") => false,
                Err(e) => {
                    weights.try_set(Weights::Failed(format!(
                        "could not download the deployed weights ({e}); you can still choose a file below"
                    )));
                    true
                }
            };
            if !deployed {
                match platform::cache_get(PICKED_KEY).await {
                    Some(bytes) => load_bytes(
                        "your file from an earlier visit".into(),
                        bytes,
                        Origin::Remembered,
                    ),
                    None => {
                        weights.try_set(Weights::Missing);
                    }
                }
            }
        });
    });

    let on_pick = move |ev: leptos::ev::Event| {
        let Some(files) = ev
            .target()
            .and_then(|t| js_sys::Reflect::get(&t, &JsValue::from_str("files")).ok())
        else {
            return;
        };
        leptos::task::spawn_local(async move {
            match first_file(files).await {
                Ok((name, bytes)) => load_bytes(name, bytes, Origin::Picked),
                Err(e) => {
                    weights.try_set(Weights::Failed(e));
                }
            }
        });
    };
    let on_drop = move |ev: leptos::ev::DragEvent| {
        ev.prevent_default();
        let files = js_sys::Reflect::get(&ev, &JsValue::from_str("dataTransfer"))
            .ok()
            .and_then(|dt| js_sys::Reflect::get(&dt, &JsValue::from_str("files")).ok());
        let Some(files) = files else { return };
        leptos::task::spawn_local(async move {
            match first_file(files).await {
                Ok((name, bytes)) => load_bytes(name, bytes, Origin::Picked),
                Err(e) => {
                    weights.try_set(Weights::Failed(e));
                }
            }
        });
    };

    let sample = move || {
        let kind = state
            .compute
            .with(|c| c.as_ref().map(|c| c.kind))
            .unwrap_or(platform::BackendKind::Cpu);
        current()
            .limit
            .unwrap_or_else(|| clip_lab::default_sample(kind))
    };
    let quote = move || {
        let p = current();
        let ds = state.dataset(&p.dataset)?;
        let kind = state.compute.with(|c| c.as_ref().map(|c| c.kind))?;
        let cfg = info.with(|i| i.as_ref().map(|i| i.config.clone()))?;
        let mut q = p.clone();
        q.limit = None;
        let prepared = lab::prepare(ds, &q).ok()?;
        let views = clip_lab::sample_views(&prepared, sample());
        let n: usize = views.iter().map(|v| v.len()).sum();
        let secs = clip_lab::quote_seconds(n, &cfg, kind, None);
        Some(format!(
            "{n} images ({} train B, {} dev B, {} test) × {:.1} GFLOP ≈ {:.0} GFLOP; at a typical {:.0} GFLOP/s on this backend that is about {:.0} s.",
            views[0].len(),
            views[1].len(),
            views[2].len(),
            cfg.flops_per_image() / 1e9,
            n as f64 * cfg.flops_per_image() / 1e9,
            clip_lab::assumed_gflops(kind),
            secs
        ))
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
        let Some(model) = SESSION.with(|s| s.borrow().model.clone()) else {
            status.set("error: load the CLIP weights first".into());
            return;
        };
        let n = sample();
        let ctl = RunControl::default();
        control.set_value(ctl.clone());
        status.set("running".into());
        progress.set(0.0);
        leptos::task::spawn_local(async move {
            let mut q = p.clone();
            q.limit = None;
            let prepared = match lab::prepare(ds, &q) {
                Ok(pr) => pr,
                Err(e) => {
                    status.try_set(format!("error: {e}"));
                    return;
                }
            };
            let mut observer = |e: LabEvent| match e {
                LabEvent::Stage { name, fraction } => {
                    stage.try_set(name.to_string());
                    progress.try_set(fraction);
                }
                LabEvent::Train { event, .. } => {
                    if let TrainEvent::Epoch(s) = event {
                        stage.try_set(format!("the notebook's head: epoch {}", s.epoch));
                    }
                }
            };
            match clip_lab::run(&model, &prepared, &p, n, &compute, &ctl, &mut observer).await {
                Ok(out) => {
                    SESSION.with(|s| s.borrow_mut().output = Some(out.clone()));
                    output.try_set(Some(out));
                    progress.try_set(1.0);
                    stage.try_set("finished".into());
                    status.try_set("done".into());
                }
                Err(e) if e.is_cancel() => {
                    stage.try_set("cancelled".into());
                    status.try_set("cancelled".into());
                }
                Err(e) => {
                    status.try_set(format!("error: {e}"));
                }
            }
        });
    };
    let cancel = move || control.with_value(|c| c.set(Control::Cancel));
    let update =
        move |key: &'static str, value: String| state.update_param("clip", current(), key, &value);

    // Charts.
    let umap_ref = NodeRef::<html::Canvas>::new();
    let loss_ref = NodeRef::<html::Canvas>::new();
    let cm_refs = [
        NodeRef::<html::Canvas>::new(),
        NodeRef::<html::Canvas>::new(),
        NodeRef::<html::Canvas>::new(),
    ];
    let layout = StoredValue::new(None::<crate::plot::charts::ScatterLayout>);
    let hover = RwSignal::new(String::new());
    let hover_row = RwSignal::new(None::<usize>);
    let hover_ref = NodeRef::<html::Canvas>::new();
    Effect::new(move |_| {
        let Some(Some(out)) = output.try_get() else {
            return;
        };
        let Some(ds) = state.dataset(&current().dataset) else {
            return;
        };
        let names = &ds.manifest.class_names;
        if let Some(el) = umap_ref.try_get().flatten() {
            let (scene, l) = charts::umap(&out.umap, names, &out.held_out_labels);
            canvas::draw(&el, &scene);
            layout.try_set_value(Some(l));
        }
        if let Some(el) = loss_ref.try_get().flatten() {
            canvas::draw(
                &el,
                &charts::history_chart(&out.history, "The notebook's head on CLIP features"),
            );
        }
        let r = &out.result;
        for (node, m, title) in [
            (
                cm_refs[0],
                &r.confusion_before,
                "Dev B before training the head",
            ),
            (
                cm_refs[1],
                &r.confusion_after,
                "Dev B after training the head",
            ),
            (
                cm_refs[2],
                &r.confusion_converged,
                "Test B, converged probe",
            ),
        ] {
            if let Some(el) = node.try_get().flatten() {
                canvas::draw(&el, &charts::confusion(m, &out.names_b, title));
            }
        }
    });
    Effect::new(move |_| {
        let (Some(Some(row)), Some(el)) = (hover_row.try_get(), hover_ref.try_get().flatten())
        else {
            return;
        };
        if let Some(ds) = state.dataset(&current().dataset) {
            canvas::draw(&el, &charts::thumbnail(&ds, row));
        }
    });
    let on_hover = move |ev: leptos::ev::MouseEvent| {
        let (x, y) = (ev.offset_x() as f32, ev.offset_y() as f32);
        let Some(picked) = layout.try_with_value(|l| l.as_ref().and_then(|l| l.nearest(x, y, 8.0)))
        else {
            return;
        };
        let Some(ds) = state.dataset(&current().dataset) else {
            return;
        };
        let hit = output
            .try_with_untracked(|o| {
                let e = &o.as_ref()?.umap;
                let k = picked?;
                Some((*e.rows.get(k)?, *e.labels.get(k)?))
            })
            .flatten();
        hover_row.set(hit.map(|(row, _)| row));
        hover.set(match hit {
            Some((row, label)) => format!(
                "test image #{row}: {}",
                ds.manifest
                    .class_names
                    .get(label)
                    .cloned()
                    .unwrap_or_default()
            ),
            None => String::new(),
        });
    };

    let weights_view = move || {
        match weights.get() {
        Weights::Checking | Weights::Busy(_) => {
            let msg = match weights.get() {
                Weights::Busy(m) => m,
                _ => "waiting for the compute device".into(),
            };
            view! { <p data-testid="clip-weights-status" class="status">{msg}</p> }.into_any()
        }
        Weights::Ready(source) => view! {
            <p data-testid="clip-weights-status" class="ok">{format!("loaded from {source}")}</p>
        }
        .into_any(),
        Weights::Missing => view! {
            <p data-testid="clip-weights-status">"not bundled"</p>
            <div class="notice" data-testid="clip-weights-missing" inner_html=text::CLIP_WEIGHTS_MISSING></div>
        }
        .into_any(),
        Weights::Failed(e) => view! {
            <p data-testid="clip-weights-status" class="error">{e}</p>
        }
        .into_any(),
    }
    };
    let result_json = move || {
        output
            .get()
            .map(|o| serde_json::to_string_pretty(&o.result).unwrap_or_default())
            .unwrap_or_default()
    };

    view! {
        <section class="chapter">
            <h2>"CLIP: a frozen encoder from the internet"</h2>
            <div class="prose" inner_html=text::CLIP_INTRO></div>
            <h3>"The weights"</h3>
            {weights_view}
            <div class="dropzone" data-testid="clip-drop"
                on:dragover=move |ev: leptos::ev::DragEvent| ev.prevent_default()
                on:drop=on_drop>
                "Drop a converted weights file here, or "
                <input type="file" accept=".safetensors" data-testid="clip-file" on:change=on_pick/>
            </div>
            {move || info.get().map(|i| view! {
                <table class="headline" data-testid="clip-info">
                    <tr><th>"sha256"</th><td><code data-testid="clip-sha256">{i.sha256.clone()}</code></td></tr>
                    <tr><th>"declared config"</th><td><code data-testid="clip-config">{i.config_json.clone()}</code></td></tr>
                    <tr><th>"quantisation"</th><td>{i.quantization.clone()}</td></tr>
                    <tr><th>"file"</th><td>{format!("{}, {} parameters", human(i.file_bytes as u64), i.config.parameters())}</td></tr>
                    <tr><th>"weights on the device"</th><td data-testid="clip-store">{i.store.clone()}</td></tr>
                    <tr><th>"device memory after loading"</th><td>{i.device_bytes.map(human).unwrap_or_else(|| "not reported by this backend".into())}</td></tr>
                </table>
            })}
            <h3>"Embed and probe"</h3>
            <div class="prose" inner_html=text::CLIP_PROBE></div>
            {move || params.get().err().map(|e| view! { <p class="error">"Bad URL parameter: " {e}</p> })}
            <div class="controls">
                <label>"Images per split "
                    <input type="number" step="1" min="16" data-testid="param-limit"
                        prop:value=move || sample().to_string()
                        on:change=move |ev| update("limit", event_target_value(&ev))/>
                </label>
                <label>"Epochs of the notebook's head "
                    <input type="number" step="1" min="1" data-testid="param-epochs"
                        prop:value=move || current().epochs.to_string()
                        on:change=move |ev| update("epochs", event_target_value(&ev))/>
                </label>
            </div>
            <p class="quote" data-testid="clip-quote">{move || quote().unwrap_or_else(|| "Load the weights and the dataset to see how long this takes.".into())}</p>
            <div class="buttons">
                <button data-testid="run" on:click=move |_| start()
                    disabled=move || status.get() == "running" || !matches!(weights.get(), Weights::Ready(_))>"Embed and probe"</button>
                <button data-testid="cancel" on:click=move |_| cancel() disabled=move || status.get() != "running">"Cancel"</button>
                <span class="status">"Status: " <span data-testid="status">{move || status.get()}</span></span>
            </div>
            <div class="progress">
                <progress max="1" prop:value=move || progress.get()></progress>
                <span data-testid="stage">{move || stage.get()}</span>
            </div>
            <div class="umaps">
                <canvas node_ref=umap_ref data-testid="umap-0" width="10" height="10" on:mousemove=on_hover></canvas>
            </div>
            <div class="hover">
                <canvas node_ref=hover_ref data-testid="hover-image" width="10" height="10"></canvas>
                <span data-testid="hover">{move || hover.get()}</span>
            </div>
            <canvas node_ref=loss_ref data-testid="loss-chart" width="10" height="10"></canvas>
            <div class="cms">
                <canvas node_ref=cm_refs[0] data-testid="confusion-before" width="10" height="10"></canvas>
                <canvas node_ref=cm_refs[1] data-testid="confusion-after" width="10" height="10"></canvas>
                <canvas node_ref=cm_refs[2] data-testid="confusion-converged" width="10" height="10"></canvas>
            </div>
            {move || output.get().map(|o| {
                let r = o.result.clone();
                view! {
                    <table class="headline" data-testid="headline">
                        <tr><th>"images embedded (train B / dev B / test)"</th><td>{format!("{} / {} / {}", r.images[0], r.images[1], r.images[2])}</td></tr>
                        <tr><th>"throughput"</th><td>{format!("{:.1} images/s", r.images_per_second)}</td></tr>
                        <tr><th>"notebook head, dev B: before / after"</th><td>{format!("{:.3} / {:.3}", r.before, r.after)}</td></tr>
                        <tr><th>"converged probe: dev B / test B"</th><td>{format!("{:.3} / {:.3}", r.converged_dev_b, r.converged_test_b)}</td></tr>
                    </table>
                }
            })}
            <h3>"Result (the same object as results.json's clip)"</h3>
            <pre class="json" data-testid="result">{result_json}</pre>
        </section>
    }
}

/// What the page shows about a loaded file.
#[derive(Clone, Debug, PartialEq)]
struct ModelInfo {
    sha256: String,
    config: crate::model::clip::ClipVisionConfig,
    config_json: String,
    quantization: String,
    file_bytes: usize,
    device_bytes: Option<u64>,
    store: String,
}

fn model_info(m: &ClipModel) -> ModelInfo {
    ModelInfo {
        sha256: m.sha256.clone(),
        config: m.config().clone(),
        config_json: serde_json::to_string(m.config()).unwrap_or_default(),
        quantization: m.manifest.quantization.clone(),
        file_bytes: m.file_bytes,
        device_bytes: m.device_bytes,
        store: match m.store {
            crate::model::clip::vit::WeightStore::F16 => "f16 matrices, widened per layer".into(),
            crate::model::clip::vit::WeightStore::F32 => "f32".into(),
        },
    }
}
