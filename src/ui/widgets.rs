//! Pieces every chapter page shares: the dataset picker, the parameter form, the
//! charts with hover, click and keyboard picking, downloads and the runs table.

use super::canvas;
use super::runs::RunSummary;
use super::state::{AppState, BUNDLED, DataState, current_params, is_local};
use crate::lab::charts::{Chart, umap_thumbnail};
use crate::lab::params::{Kind, spec};
use crate::lab::{ChapterOutput, LabParams};
use crate::platform;
use leptos::html;
use leptos::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;

/// The dataset selector, kept in the URL, with download progress and Retry.
#[component]
pub fn DatasetPicker(
    /// The chapter.
    slug: &'static str,
    /// The page's parameters, from the URL.
    params: Memo<Result<LabParams, String>>,
) -> impl IntoView {
    let state = expect_context::<AppState>();
    let current = move || current_params(slug, params);
    let status = move || {
        let name = current().dataset;
        match state.datasets.with(|d| d.get(&name).cloned()) {
            None => view! { <span class="loading" data-testid="dataset-status">"starting"</span> }.into_any(),
            Some(DataState::Loading(msg)) => view! {
                <span class="loading" data-testid="dataset-status"><progress/>" " {msg}</span>
            }.into_any(),
            Some(DataState::Ready(ds)) => view! {
                <span class="ok" data-testid="dataset-status">{format!("ready: {} images", ds.train.len() + ds.val.len() + ds.test.len())}</span>
            }.into_any(),
            Some(DataState::Failed(e)) if is_local(&name) => view! {
                <span class="error" data-testid="dataset-status">{e}</span>
            }.into_any(),
            Some(DataState::Failed(e)) => view! {
                <span class="error" data-testid="dataset-status">{format!("could not be loaded: {e} ")}
                    <button data-testid="dataset-retry" on:click=move |_| state.retry_dataset(&name)>"Retry"</button>
                </span>
            }.into_any(),
        }
    };
    // The bundles, the datasets converted from the user's files, and the URL's choice.
    let names = Memo::new(move |_| {
        let mut v: Vec<String> = BUNDLED.iter().map(|n| n.to_string()).collect();
        state.datasets.with(|d| {
            let mut local: Vec<String> = d.keys().filter(|k| is_local(k)).cloned().collect();
            local.sort();
            v.extend(local);
        });
        let cur = current().dataset;
        if !v.contains(&cur) {
            v.push(cur);
        }
        v
    });
    view! {
        <div class="dataset">
            <label>"Dataset "
                <select data-testid="dataset" on:change=move |ev| { let _ = state.update_param(slug, "dataset", &event_target_value(&ev)); }>
                    {move || names.get().into_iter().map(|n| {
                        let selected = { let n = n.clone(); move || current().dataset == n };
                        view! { <option value=n.clone() selected=selected>{n.clone()}</option> }
                    }).collect_view()}
                </select>
            </label>
            " " {status}
        </div>
    }
}

/// The form for `names`, from the parameter table. A value that does not parse or
/// is out of range is refused with a message naming it; the run keeps the old one.
#[component]
pub fn ParamsForm(
    /// The chapter.
    slug: &'static str,
    /// The parameters to show.
    names: &'static [&'static str],
    /// The page's parameters, from the URL.
    params: Memo<Result<LabParams, String>>,
) -> impl IntoView {
    let state = expect_context::<AppState>();
    let errors = RwSignal::new(HashMap::<&'static str, String>::new());
    let current = move || current_params(slug, params);
    let field = move |name: &'static str| {
        let spec = spec(name)?;
        let on_change = move |ev: leptos::ev::Event| {
            let v = event_target_value(&ev);
            match state.update_param(slug, name, &v) {
                Ok(()) => errors.update(|e| {
                    e.remove(name);
                }),
                Err(msg) => errors.update(|e| {
                    e.insert(
                        name,
                        format!("{msg}; the run keeps {name}={}", current().get(name)),
                    );
                }),
            }
        };
        let input = match spec.kind {
            Kind::Choice(words) => view! {
                <select data-testid=format!("param-{name}") on:change=on_change>
                    {words.iter().map(|w| {
                        let selected = move || current().get(name) == *w;
                        view! { <option value=*w selected=selected>{*w}</option> }
                    }).collect_view()}
                </select>
            }.into_any(),
            _ => view! {
                <input type="text" inputmode="decimal" size="8" data-testid=format!("param-{name}") title=spec.help
                    prop:value=move || current().get(name) on:change=on_change/>
            }.into_any(),
        };
        Some(view! {
            <label title=spec.help>{spec.label}" " {input}
                {move || errors.with(|e| e.get(name).cloned()).map(|m| view! {
                    <span class="error" role="alert" data-testid=format!("param-error-{name}")>{m}</span>
                })}
            </label>
        })
    };
    view! {
        <div class="controls">
            {names.iter().map(|n| field(n)).collect_view()}
        </div>
    }
}

/// A picked point of a scatter: the test row and its class.
pub type Pick = Option<(usize, usize)>;

/// One chart on a canvas. Scatters answer the mouse (hover and click) and the
/// keyboard (arrow keys step through the points) by naming the image.
#[component]
pub fn ChartCanvas(
    /// What to draw.
    chart: Chart,
    /// The picked point, shared with [`PickedImage`].
    pick: RwSignal<Pick>,
) -> impl IntoView {
    let node = NodeRef::<html::Canvas>::new();
    let scene = chart.scene.clone();
    Effect::new(move |_| {
        if let Some(el) = node.get() {
            canvas::draw(&el, &scene);
        }
    });
    let hover = chart.hover.map(Arc::new);
    let focus = StoredValue::new(0usize);
    let h1 = hover.clone();
    let at = move |x: f32, y: f32| {
        let Some(h) = h1.as_ref() else { return };
        let k = h.layout.nearest(x, y, 8.0);
        pick.set(k.and_then(|k| Some((*h.rows.get(k)?, *h.labels.get(k)?))));
    };
    let at2 = at.clone();
    let h2 = hover.clone();
    let on_key = move |ev: leptos::ev::KeyboardEvent| {
        let Some(h) = h2.as_ref() else { return };
        let n = h.rows.len();
        if n == 0 {
            return;
        }
        let step: isize = match ev.key().as_str() {
            "ArrowRight" | "ArrowDown" => 1,
            "ArrowLeft" | "ArrowUp" => -1,
            _ => return,
        };
        ev.prevent_default();
        let k = (focus.get_value() as isize + step).rem_euclid(n as isize) as usize;
        focus.set_value(k);
        pick.set(h.rows.get(k).copied().zip(h.labels.get(k).copied()));
    };
    let interactive = hover.is_some();
    let label = if interactive {
        format!(
            "{}. Hover or click a point, or focus and use the arrow keys, to name its image.",
            chart.label
        )
    } else {
        chart.label.clone()
    };
    view! {
        <canvas node_ref=node data-testid=format!("chart-{}", chart.name) role="img" aria-label=label
            tabindex=if interactive { "0" } else { "-1" } width="10" height="10"
            on:mousemove=move |ev| at(ev.offset_x() as f32, ev.offset_y() as f32)
            on:click=move |ev| at2(ev.offset_x() as f32, ev.offset_y() as f32)
            on:keydown=on_key></canvas>
    }
}

/// The image under the pointer: its enlarged picture and its name.
#[component]
pub fn PickedImage(
    /// The picked point, shared with [`PickedImage`].
    pick: RwSignal<Pick>,
    /// The dataset the picked rows belong to.
    dataset: Signal<Option<String>>,
) -> impl IntoView {
    let state = expect_context::<AppState>();
    let node = NodeRef::<html::Canvas>::new();
    Effect::new(move |_| {
        let (Some((row, _)), Some(el), Some(name)) = (pick.get(), node.get(), dataset.get()) else {
            return;
        };
        if let Some(ds) = state.dataset_untracked(&name) {
            canvas::draw(&el, &crate::lab::charts::thumbnail(&ds, row));
        }
    });
    let text = move || {
        let (row, label) = pick.get()?;
        let ds = state.dataset_untracked(&dataset.get()?)?;
        let name = ds
            .manifest
            .class_names
            .get(label)
            .cloned()
            .unwrap_or_default();
        Some(format!("test image #{row}: {name}"))
    };
    view! {
        <div class="hover" aria-live="polite">
            <canvas node_ref=node data-testid="hover-image" role="img" aria-label="The picked test image" width="10" height="10"></canvas>
            <span data-testid="hover">{move || text().unwrap_or_default()}</span>
        </div>
    }
}

/// Buttons that save `results.json` and every chart as PNG, the files `replab run`
/// writes.
#[component]
pub fn Downloads(
    /// The chapter.
    slug: &'static str,
    /// The finished run.
    output: Arc<ChapterOutput>,
    /// Its charts.
    charts: Vec<Chart>,
) -> impl IntoView {
    let json = serde_json::to_string_pretty(&output.result).unwrap_or_default();
    let save_json = move |_| {
        let _ = platform::save_file(
            &format!("{slug}_results.json"),
            json.as_bytes(),
            "application/json",
        );
    };
    view! {
        <div class="downloads">
            "Download: "
            <button data-testid="download-json" on:click=save_json>"results.json"</button>
            {charts.into_iter().map(|c| {
                let name = format!("{slug}_{}.png", c.name);
                let label = format!("{}.png", c.name);
                let save = move |_| {
                    let (name, scene) = (name.clone(), c.scene.clone());
                    leptos::task::spawn_local(async move {
                        let _ = platform::load_font().await;
                        if let Ok(png) = crate::plot::png::render(&scene) {
                            let _ = platform::save_file(&name, &png, "image/png");
                        }
                    });
                };
                view! { <button data-testid=format!("download-{}", c.name) on:click=save>{label}</button> }
            }).collect_view()}
        </div>
    }
}

/// Finished runs side by side, with a small UMAP each.
#[component]
pub fn RunsTable(
    /// The finished runs.
    runs: RwSignal<Vec<RunSummary>>,
) -> impl IntoView {
    let f = |v: Option<f64>| v.map(|a| format!("{a:.3}")).unwrap_or_else(|| "-".into());
    let any_recon = move || runs.with(|r| r.iter().any(|x| x.reconstructions.is_some()));
    view! {
        <table class="runs" data-testid="runs">
            <tr><th>"parameters"</th><th>"epochs"</th><th>"dev-A acc"</th><th>"probe after"</th><th>"fine-tune"</th><th>"converged test B"</th><th>"UMAP"</th>
                {move || any_recon().then(|| view! { <th>"reconstructions (top) of dev images (bottom)"</th> })}</tr>
            {move || runs.get().into_iter().enumerate().map(|(i, r)| {
                let thumb = NodeRef::<html::Canvas>::new();
                let emb = r.umap.clone();
                let names = r.class_names.clone();
                Effect::new(move |_| {
                    if let (Some(el), Some(e)) = (thumb.get(), emb.as_ref()) {
                        canvas::draw(&el, &umap_thumbnail(e, &names));
                    }
                });
                let recon_ref = NodeRef::<html::Canvas>::new();
                let recon = r.reconstructions.clone();
                let has_recon = recon.is_some();
                Effect::new(move |_| {
                    if let (Some(el), Some(scene)) = (recon_ref.get(), recon.as_ref()) {
                        canvas::draw(&el, scene);
                        // Half size: the table compares runs, the chart above shows detail.
                        let style = web_sys::HtmlElement::style(&el);
                        let _ = style.set_property("width", &format!("{}px", scene.width / 2.0));
                        let _ = style.set_property("height", &format!("{}px", scene.height / 2.0));
                    }
                });
                let p = &r.result.probe;
                view! {
                    <tr>
                        <td>{if r.query.is_empty() { "defaults".to_string() } else { r.query.clone() }}</td>
                        <td>{r.result.epochs_trained}</td>
                        <td>{f(r.result.dev_a_accuracy)}</td>
                        <td>{f(p.after)}</td>
                        <td>{f(p.finetune_after)}</td>
                        <td>{format!("{:.3}", p.converged_test_b)}</td>
                        <td><canvas node_ref=thumb role="img" aria-label="UMAP of this run" width="10" height="10"></canvas></td>
                        {has_recon.then(|| view! {
                            <td><canvas node_ref=recon_ref data-testid=format!("run-recon-{i}") role="img"
                                aria-label="Reconstructions of this run" width="10" height="10"></canvas></td>
                        })}
                    </tr>
                }
            }).collect_view()}
        </table>
    }
}
