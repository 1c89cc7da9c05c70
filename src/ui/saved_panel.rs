//! The saved-runs panel on every chapter page that trains: save the finished run,
//! export it as a file, import one, and the list of runs kept in this browser.

use super::saved::{self, MAX_IMPORT_BYTES, SavedEntry};
use super::state::AppState;
use crate::platform;
use leptos::prelude::*;

const MIME: &str = "application/octet-stream";

/// Save, export and import runs of `slug`, and the runs kept in this browser.
#[component]
pub fn SavedRunsPanel(
    /// The chapter whose page shows the panel.
    slug: &'static str,
) -> impl IntoView {
    let state = expect_context::<AppState>();
    let Some(slot) = state.runs.slot(slug) else {
        return ().into_any();
    };
    let version = RwSignal::new(0u32);
    let message = RwSignal::new(String::new());
    let list = LocalResource::new(move || {
        version.track();
        saved::entries()
    });
    let finished = move || slot.status.get() == "done";
    let save = Action::new_local(move |_: &()| async move {
        message.set("saving…".into());
        let outcome = match saved::save_run(state, slug).await {
            Ok(bytes) => saved::keep(&bytes).await,
            Err(e) => Err(e),
        };
        message.set(match outcome {
            Ok(e) => format!(
                "saved in this browser: {} after {} epoch(s), {:.1} MB",
                e.title(),
                e.epochs,
                e.bytes as f64 / 1e6
            ),
            Err(e) => format!("not saved: {e}"),
        });
        version.update(|v| *v += 1);
    });
    let export = Action::new_local(move |_: &()| async move {
        let outcome = saved::save_run(state, slug).await.and_then(|bytes| {
            let epochs = slot
                .output
                .get_untracked()
                .map_or(0, |o| o.result.epochs_trained);
            platform::save_file(
                &format!("replab-{slug}-{epochs}ep.safetensors"),
                &bytes,
                MIME,
            )
        });
        if let Err(e) = outcome {
            message.set(format!("not exported: {e}"));
        }
    });
    let import = Action::new_local(move |file: &std::rc::Rc<platform::LocalFile>| {
        let file = file.clone();
        async move {
            message.set("reading the file…".into());
            let outcome = async {
                let (name, bytes) =
                    super::read_capped(&file, MAX_IMPORT_BYTES, "saved run").await?;
                saved::keep(&bytes)
                    .await
                    .map_err(|e| format!("{name}: {e}"))?;
                version.update(|v| *v += 1);
                message.set(format!("imported {name}; loading it…"));
                saved::load_run(state, bytes).await
            }
            .await;
            message.set(outcome.unwrap_or_else(|e| format!("not imported: {e}")));
        }
    });
    let act = move |entry: SavedEntry, what: &'static str| {
        leptos::task::spawn_local(async move {
            let outcome = match what {
                "load" => match saved::read(&entry).await {
                    Ok(bytes) => saved::load_run(state, bytes).await,
                    Err(e) => Err(e),
                },
                "export" => saved::read(&entry).await.and_then(|bytes| {
                    platform::save_file(&entry.file, &bytes, MIME).map(|_| "exported".into())
                }),
                _ => {
                    if !super::confirm(&format!(
                        "Delete the saved {} run of {}?",
                        entry.title(),
                        entry.date()
                    )) {
                        return;
                    }
                    let r = saved::delete(&entry).await.map(|_| "deleted".to_string());
                    version.update(|v| *v += 1);
                    r
                }
            };
            message.set(outcome.unwrap_or_else(|e| format!("{what} failed: {e}")));
        });
    };
    view! {
        <details class="saved-runs" data-testid="saved-runs">
            <summary>"Saved runs"</summary>
            <div class="buttons">
                <button data-testid="save-run" on:click=move |_| { save.dispatch(()); }
                    disabled=move || !finished()>"Save this run in the browser"</button>
                <button data-testid="export-run" on:click=move |_| { export.dispatch(()); }
                    disabled=move || !finished()>"Export as a file"</button>
                <label class="file">"Import a saved run… "
                    <input type="file" accept=".safetensors" data-testid="import-run"
                        on:change=move |ev| {
                            if let Some(file) = platform::event_file(&ev) {
                                import.dispatch_local(std::rc::Rc::new(file));
                            }
                        }/>
                </label>
            </div>
            <p class="notice" data-testid="saved-message">{move || message.get()}</p>
            <Suspense fallback=|| view! { <p>"reading saved runs…"</p> }>
                {move || list.get().map(|r| match r {
                    Err(e) => view! { <p class="error" data-testid="saved-error">{e}</p> }.into_any(),
                    Ok(entries) if entries.is_empty() => view! { <p data-testid="saved-empty">"No run saved in this browser yet."</p> }.into_any(),
                    Ok(entries) => view! {
                        <table class="saved" data-testid="saved-list">
                            <tr><th>"chapter"</th><th>"dataset"</th><th>"epochs"</th><th>"test B"</th><th>"saved (UTC)"</th><th>"size"</th><th></th></tr>
                            {entries.into_iter().map(|e| {
                                let (a, b, c) = (e.clone(), e.clone(), e.clone());
                                view! {
                                    <tr data-testid="saved-row">
                                        <td>{e.title()}</td><td>{e.dataset.clone()}</td><td>{e.epochs}</td>
                                        <td>{e.test_b.map(|t| format!("{t:.3}")).unwrap_or_else(|| "-".into())}</td>
                                        <td>{e.date()}</td><td>{format!("{:.1} MB", e.bytes as f64 / 1e6)}</td>
                                        <td>
                                            <button data-testid="saved-load" on:click=move |_| act(a.clone(), "load")>"Load"</button>
                                            <button data-testid="saved-export" on:click=move |_| act(b.clone(), "export")>"Export"</button>
                                            <button data-testid="saved-delete" on:click=move |_| act(c.clone(), "delete")>"Delete"</button>
                                        </td>
                                    </tr>
                                }
                            }).collect_view()}
                        </table>
                    }.into_any(),
                })}
            </Suspense>
        </details>
    }
    .into_any()
}
