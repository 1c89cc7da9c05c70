//! `#/data`: the images, the lab's split, and where the data comes from.

use super::canvas;
use super::npz_drop::NpzDrop;
use super::state::{AppState, DataState, current_params};
use super::text;
use super::widgets::{DatasetPicker, ParamsForm};
use crate::lab::SplitConfig;
use crate::lab::data::{samples_per_class, split_report};

use leptos::html;
use leptos::prelude::*;

/// The data chapter.
#[component]
pub fn DataPage() -> impl IntoView {
    let state = expect_context::<AppState>();
    let params = state.page_params("data");
    let current = move || current_params("data", params);
    let canvas_ref = NodeRef::<html::Canvas>::new();
    Effect::new(move |_| {
        let p = current();
        let Some(ds) = state.dataset(&p.dataset) else {
            return;
        };
        let Some(el) = canvas_ref.try_get().flatten() else {
            return;
        };
        let rows = samples_per_class(&ds, 5);
        let scene = crate::lab::charts::sample_grid(&ds, &rows);
        canvas::draw(&el, &scene);
    });
    let report = move || {
        let p = current();
        let ds = state.dataset(&p.dataset)?;
        let cfg = SplitConfig {
            labeled_ratio: p.labeled_ratio,
            held_out_ratio: p.held_out_ratio,
            split_seed: p.split_seed,
        };
        Some((ds.clone(), split_report(&ds, &cfg)))
    };
    view! {
        <section class="chapter">
            <h2>"The data and the lab's splits"</h2>
            <div class="prose" inner_html=text::DATA_INTRO></div>
            {move || params.get().err().map(|e| view! { <p class="error">"Bad URL parameter: " {e}</p> })}
            <DatasetPicker slug="data" params=params/>
            <ParamsForm slug="data" names=crate::lab::data::INFO.params params=params/>
            <NpzDrop/>
            {move || match state.datasets.with(|d| d.get(&current().dataset).cloned()) {
                Some(DataState::Ready(ds)) => {
                    let m = ds.manifest.clone();
                    Some(view! {
                        <p data-testid="data-ready">
                            {format!("{}: {} ({} classes, {} channel{}, {}×{} px). Official splits: train {}, val {}, test {}.",
                                m.title, m.description, m.class_names.len(), m.channels,
                                if m.channels == 1 { "" } else { "s" }, m.size, m.size,
                                m.train.count, m.val.count, m.test.count)}
                            {m.source.subset.clone().map(|s| format!(" This bundle is a subset: {s}."))}
                        </p>
                    })
                }
                _ => None,
            }}
            <h3>"Five training images per class"</h3>
            <canvas node_ref=canvas_ref data-testid="samples" width="10" height="10"></canvas>
            <h3>"The split"</h3>
            <div class="prose" inner_html=text::DATA_SPLIT></div>
            {move || report().map(|(ds, r)| match r {
                Ok(r) => {
                    let names = |ls: &[u8]| ls.iter().map(|l| ds.manifest.class_names.get(*l as usize).cloned().unwrap_or_default()).collect::<Vec<_>>().join(", ");
                    let json = serde_json::to_string(&r).unwrap_or_default();
                    let s = r.sizes;
                    view! {
                        <p>"Held out (the transfer task): " <strong data-testid="held-out">{names(&r.held_out_labels)}</strong></p>
                        <p>"Kept (the pretraining task): " <strong>{names(&r.kept_labels)}</strong></p>
                        <table class="sizes">
                            <tr><th></th><th>"A: kept classes, labelled"</th><th>"B: held-out classes, labelled"</th><th>"unlabelled"</th></tr>
                            <tr><th>"train"</th><td>{s.train_a}</td><td>{s.train_b}</td><td>{s.train_unlabeled}</td></tr>
                            <tr><th>"dev"</th><td>{s.dev_a}</td><td>{s.dev_b}</td><td>{s.dev_unlabeled}</td></tr>
                        </table>
                        <pre class="json" data-testid="split-sizes">{json}</pre>
                    }.into_any()
                }
                Err(e) => view! { <p class="error" data-testid="split-error">{e}</p> }.into_any(),
            })}
            <h3>"Credits and licence"</h3>
            {move || state.dataset(&current().dataset).map(|ds| view! {
                <p class="credit" data-testid="credit">{ds.manifest.credit.clone()} " Licence: " {ds.manifest.licence.clone()} "."</p>
            })}
        </section>
    }
}
