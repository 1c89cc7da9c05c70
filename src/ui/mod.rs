//! The web app: Leptos views, kept thin over [`crate::lab`].

pub mod canvas;
pub mod chapter_page;
pub mod clip_page;
pub mod data_page;
pub mod state;
pub mod text;

use crate::lab::CHAPTERS;
use crate::platform::{self, BackendPref};
use leptos::prelude::*;
use state::{AppState, Route};

/// Start the app in `<body>`.
pub fn mount() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(App);
}

/// The whole page: sidebar, device badge and the current chapter.
#[component]
pub fn App() -> impl IntoView {
    let state = AppState {
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
    view! {
        <div class="layout">
            <Sidebar/>
            <main>
                <header class="topbar">
                    <h1>"replab"</h1>
                    <DeviceBadge/>
                </header>
                {move || {
                    let route = state.route.get();
                    match route.slug.as_str() {
                        "data" => view! { <data_page::DataPage/> }.into_any(),
                        "supervised" | "supcon" => {
                            let slug = route.slug.clone();
                            view! { <chapter_page::ChapterPage slug=slug/> }.into_any()
                        }
                        "clip" => view! { <clip_page::ClipPage/> }.into_any(),
                        other => view! { <NotBuilt slug=other.to_string()/> }.into_any(),
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
        <nav class="sidebar">
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
                        view! {
                            <li class=class>
                                <a href=format!("#/{slug}")>{c.title}</a>
                                {(!c.built).then(|| view! { <span class="soon">" (not built yet)"</span> })}
                            </li>
                        }
                    })
                    .collect_view()}
            </ol>
        </nav>
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

#[component]
fn NotBuilt(slug: String) -> impl IntoView {
    let title = crate::lab::chapter(&slug)
        .map(|c| c.title.to_string())
        .unwrap_or_else(|| format!("No chapter called '{slug}'"));
    view! {
        <section class="chapter">
            <h2>{title}</h2>
            <p data-testid="status">"idle"</p>
            <p class="notice">
                "This chapter is not built yet. It is part of the plan (see the sidebar for the order of the walkthrough), but there is nothing here to run today. The data, supervised, SupCon and CLIP chapters work."
            </p>
        </section>
    }
}
