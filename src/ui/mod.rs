//! The web app: Leptos views, kept thin over [`crate::lab`]. The routes, the
//! sidebar and the not-built page all come from the chapter registry.

pub mod canvas;
pub mod chapters;
pub mod clip_panel;
pub mod data_page;
pub mod npz_drop;
pub mod pca_panel;
pub mod runs;
pub mod saved;
pub mod saved_panel;
pub mod shell;
pub mod ssl_panel;
pub mod state;
pub mod text;
pub mod text_ssl;
pub mod text_unsup;
pub mod widgets;

use crate::lab::{self, CHAPTERS};
use crate::platform::{self, BackendPref};
use leptos::prelude::*;
use state::{AppState, Route};

/// Start the app in `<body>`.
pub fn mount() {
    console_error_panic_hook::set_once();
    platform::register_service_worker();
    leptos::mount::mount_to_body(App);
}

/// A picked or dropped file's name and bytes, refused from its size alone, before
/// anything is read, when it is larger than any `what` can be (`max` bytes).
pub async fn read_capped(
    file: &crate::platform::LocalFile,
    max: u64,
    what: &str,
) -> Result<(String, Vec<u8>), String> {
    let name = file.name().to_string();
    if file.size() > max {
        return Err(format!(
            "{name} is {:.1} GB, larger than any {what} ({:.1} GB at most); is it the right file? It was not read",
            file.size() as f64 / 1e9,
            max as f64 / 1e9
        ));
    }
    Ok((name, file.read(|_| {}).await?))
}

/// Ask the user a yes/no question (a native dialog); `false` when it cannot be asked.
pub fn confirm(message: &str) -> bool {
    web_sys::window()
        .and_then(|w| w.confirm_with_message(message).ok())
        .unwrap_or(false)
}

/// The whole page: sidebar, header with the device and the active run, and the
/// current chapter.
#[component]
pub fn App() -> impl IntoView {
    let state = AppState {
        runs: runs::Runs::new(),
        compute: RwSignal::new(None),
        datasets: RwSignal::new(Default::default()),
        route: RwSignal::new(Route::current()),
    };
    provide_context(state);
    let _listener = window_event_listener(leptos::ev::hashchange, move |_| {
        state.route.set(Route::current());
    });
    leptos::task::spawn_local(async move {
        // Auto: WebGPU when the browser offers an adapter, the CPU otherwise.
        match platform::select_compute(BackendPref::Auto).await {
            Ok(c) => state.compute.set(Some(c)),
            Err(e) => state.compute.set(Some(platform::Compute::cpu(format!(
                "device selection failed: {e}"
            )))),
        }
    });
    // Only a change of chapter re-renders the page; a change of parameters does not.
    let slug = Memo::new(move |_| state.route.with(|r| r.slug.clone()));
    view! {
        <div class="layout">
            <Sidebar/>
            <main>
                <header class="topbar">
                    <h1>"replab"</h1>
                    <RunIndicator/>
                    <DeviceBadge/>
                    <MemoryReadout/>
                </header>
                {move || {
                    let slug = slug.get();
                    if slug == "data" {
                        return view! { <data_page::DataPage/> }.into_any();
                    }
                    match shell::is_shell_chapter(&slug) {
                        Some(info) => view! { <shell::ChapterShell info=info/> }.into_any(),
                        None => view! { <NotBuilt slug=slug/> }.into_any(),
                    }
                }}
            </main>
        </div>
    }
}

#[component]
fn Sidebar() -> impl IntoView {
    let state = expect_context::<AppState>();
    view! {
        <nav class="sidebar" aria-label="Chapters">
            <p class="brand">"Representation learning, step by step"</p>
            <ol>
                {CHAPTERS
                    .iter()
                    .map(|c| {
                        let slug = c.slug;
                        let class = move || {
                            let mut cls = String::new();
                            if state.route.with(|r| r.slug == slug) {
                                cls.push_str("active ");
                            }
                            if !c.built {
                                cls.push_str("unbuilt");
                            }
                            cls
                        };
                        let href = move || {
                            let q = state.carried_query();
                            if q.is_empty() { format!("#/{slug}") } else { format!("#/{slug}?{q}") }
                        };
                        view! {
                            <li class=class>
                                <a href=href data-testid=format!("nav-{slug}")>{c.title}</a>
                                {(!c.built).then(|| view! { <span class="soon">" (not built yet)"</span> })}
                            </li>
                        }
                    })
                    .collect_view()}
            </ol>
        </nav>
    }
}

/// The active run, on every page: its chapter, stage, progress and a Cancel.
#[component]
fn RunIndicator() -> impl IntoView {
    let state = expect_context::<AppState>();
    let runs = state.runs;
    view! {
        <div class="run-indicator" role="status" aria-live="polite" data-testid="run-indicator">
            {move || runs.active.get().and_then(|slug| {
                let slot = runs.slot(slug)?;
                let title = lab::chapter(slug).map(|c| c.title).unwrap_or(slug);
                Some(view! {
                    <a href=format!("#/{slug}")>{format!("Running: {title}")}</a>
                    " " <progress max="1" prop:value=move || slot.progress.get()></progress>
                    " " <span class="stage">{move || slot.stage.get()}</span>
                    " " <button data-testid="indicator-cancel" on:click=move |_| runs.cancel()>"Cancel"</button>
                })
            })}
        </div>
    }
}

#[component]
fn DeviceBadge() -> impl IntoView {
    let state = expect_context::<AppState>();
    view! {
        <div class="badge" title=move || state.compute.with(|c| c.as_ref().map(|c| c.reason.clone()).unwrap_or_default())>
            {move || match state.compute.get() {
                None => view! { <span data-testid="backend">"probing"</span> }.into_any(),
                Some(c) => view! {
                    <span data-testid="backend" class=c.kind.as_str()>{c.kind.as_str()}</span>
                    <span class="adapter">{format!(" {} ", c.adapter)}</span>
                    <span class="reason" data-testid="backend-reason">{c.reason.clone()}</span>
                }.into_any(),
            }}
        </div>
    }
}

/// Memory figures for the browser tests, read again whenever a run starts or
/// stops: the wasm linear memory and, where the backend reports it, the compute
/// device's allocator. Hidden: they are diagnostics, not part of the lesson.
#[component]
fn MemoryReadout() -> impl IntoView {
    let state = expect_context::<AppState>();
    let figures = move || {
        state.runs.active.track();
        let pool = state
            .compute
            .with_untracked(|c| c.as_ref().and_then(|c| c.device.memory_pool_usage()));
        serde_json::json!({
            "wasm_bytes": platform::wasm_memory_bytes(),
            "device_in_use": pool.as_ref().map(|u| u.bytes_in_use),
            "device_reserved": pool.as_ref().map(|u| u.bytes_reserved),
        })
        .to_string()
    };
    view! { <span hidden data-testid="memory">{figures}</span> }
}

/// A chapter that is planned but not built, or a route that names no chapter.
#[component]
fn NotBuilt(slug: String) -> impl IntoView {
    let known = lab::chapter(&slug);
    let (title, message) = match &known {
        Ok(c) => (
            c.title.to_string(),
            "This chapter is not built yet. It is part of the plan (the sidebar shows the order of the walkthrough); there is nothing to run here today.".to_string(),
        ),
        Err(e) => (format!("No chapter called '{slug}'"), format!("{e}.")),
    };
    let class = if known.is_ok() {
        "notice not-built"
    } else {
        "notice unknown"
    };
    view! {
        <section class="chapter">
            <h2>{title}</h2>
            <p class=class data-testid="route-notice">{message}</p>
        </section>
    }
}
