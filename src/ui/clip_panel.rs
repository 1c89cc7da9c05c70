//! The CLIP chapter's own view: load converted weights (deployed, picked or
//! dropped, remembered across visits), show what they are, and quote the time a
//! run will take. Running, charts and results are the shared shell's.

use super::chapters::Panel;
use super::runs::with_runner;
use super::state::{AppState, current_params};
use super::text;
use crate::lab::RunControl;
use crate::lab::clip::{self as clip_lab, Clip, ClipModel};
use crate::lab::{self, LabEvent};
use crate::platform;
use leptos::prelude::*;
use std::cell::RefCell;
use std::rc::Rc;

/// The loaded encoder, kept for the session.
#[derive(Default)]
struct Session {
    model: Option<Rc<ClipModel>>,
    source: String,
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

fn human(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// The weights panel of the CLIP chapter.
pub fn panel() -> Panel {
    let state = expect_context::<AppState>();
    let params = state.page_params("clip");
    let current = move || current_params("clip", params);
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

    // Load bytes into the session's model, whatever their source.
    let load_bytes = move |source: String, bytes: Vec<u8>, origin: Origin| {
        if state.runs.active.get_untracked() == Some("clip") {
            weights.set(Weights::Failed(
                "a CLIP run is using the loaded weights; cancel it before loading others".into(),
            ));
            return;
        }
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
                    let model = Rc::new(model);
                    with_runner("clip", |c| {
                        if let Some(clip) = c.as_any_mut().downcast_mut::<Clip>() {
                            clip.set_model(model.clone());
                        }
                    });
                    SESSION.with(|s| {
                        let mut s = s.borrow_mut();
                        s.model = Some(model);
                        s.source = source.clone();
                    });
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

    // A picked or dropped file: its size is checked before it is read.
    let take = move |ev: &web_sys::Event| {
        let Some(file) = platform::event_file(ev) else {
            return;
        };
        leptos::task::spawn_local(async move {
            match super::read_capped(&file, clip_lab::MAX_FILE_BYTES, "CLIP weights file").await {
                Ok((name, bytes)) => load_bytes(name, bytes, Origin::Picked),
                Err(e) => {
                    weights.try_set(Weights::Failed(e));
                }
            }
        });
    };
    let on_pick = move |ev: leptos::ev::Event| take(&ev);
    let on_drop = move |ev: leptos::ev::DragEvent| {
        ev.prevent_default();
        take(&ev);
    };

    let quote = move || {
        let p = current();
        let ds = state.dataset(&p.dataset)?;
        let kind = state.compute.with(|c| c.as_ref().map(|c| c.kind))?;
        let cfg = info.with(|i| i.as_ref().map(|i| i.config.clone()))?;
        let prepared = lab::prepare(ds, &p).ok()?;
        let views = clip_lab::sample_views(&prepared, clip_lab::sample_size(&p, kind));
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

    let view = view! {
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
        <p class="quote" data-testid="clip-quote">{move || quote().unwrap_or_else(|| "Load the weights and the dataset to see how long this takes.".into())}</p>
    }
    .into_any();
    let blocker = Signal::derive(move || {
        (!matches!(weights.get(), Weights::Ready(_))).then(|| {
            "Load the CLIP weights first: Run is enabled once they are in place.".to_string()
        })
    });
    Panel { view, blocker }
}

/// What the page shows about a loaded file.
#[derive(Clone, Debug, PartialEq)]
struct ModelInfo {
    sha256: String,
    config: clip_lab::ClipVisionConfig,
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
            clip_lab::WeightStore::F16 => "f16 matrices, widened per layer".into(),
            clip_lab::WeightStore::F32 => "f32".into(),
        },
    }
}
