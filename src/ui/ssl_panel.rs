//! The self-supervised chapters' own view: the augmentation gallery. One training
//! image and 16 random views of it under the chapter's pipeline, with a toggle per
//! transform, so a learner sees what the network must learn to ignore. The views
//! are made by the same batched device code that training uses (on the CPU here:
//! 16 small images).

use super::canvas;
use super::chapters::Panel;
use super::state::AppState;
use crate::data::augment::{Pipeline, Transform};
use crate::lab::figures::gallery_grid;
use crate::lab::ssl::{distinct, gallery};
use crate::platform::cpu_device;
use leptos::html;
use leptos::prelude::*;

/// Views in the gallery.
const VIEWS: usize = 16;

/// The panel; nothing blocks a run.
pub fn panel(slug: &'static str) -> Panel {
    Panel {
        view: view! { <Gallery slug=slug/> }.into_any(),
        blocker: Signal::derive(|| None),
    }
}

#[component]
fn Gallery(slug: &'static str) -> impl IntoView {
    let state = expect_context::<AppState>();
    let params = state.page_params(slug);
    let dino = slug == "dino";
    let local = RwSignal::new(false);
    let index = RwSignal::new(0usize);
    let seed = RwSignal::new(1u64);
    let on = RwSignal::new([true; Transform::ALL.len()]);
    let count = RwSignal::new(None::<usize>);
    let error = RwSignal::new(None::<String>);
    let canvas_ref = NodeRef::<html::Canvas>::new();
    let base = move || match (dino, local.get()) {
        (false, _) => Pipeline::SIMCLR,
        (true, false) => Pipeline::DINO_GLOBAL,
        (true, true) => Pipeline::DINO_LOCAL,
    };
    Effect::new(move |_| {
        let Ok(p) = params.get() else { return };
        let Some(ds) = state.dataset(&p.dataset) else {
            return;
        };
        let base = base();
        let flags = on.get();
        let pipeline = Transform::ALL
            .iter()
            .zip(flags)
            .fold(base, |acc, (t, keep)| acc.with(*t, keep, &base));
        let split = &ds.train;
        let n = split.labels.len().max(1);
        let i = index.get() % n;
        let Some(bytes) = split.image(i) else { return };
        let image: Vec<f32> = bytes.iter().map(|&b| b as f32 / 255.0).collect();
        let (c, size) = (split.channels, split.size);
        let s = seed.get();
        leptos::task::spawn_local(async move {
            match gallery(&image, [c, size, size], &pipeline, VIEWS, s, &cpu_device()).await {
                Ok(views) => {
                    error.set(None);
                    count.set(Some(distinct(&views, c * size * size)));
                    if let Some(el) = canvas_ref.get_untracked() {
                        canvas::draw(&el, &gallery_grid(&image, &views, c, size));
                    }
                }
                Err(e) => error.set(Some(format!("could not make the views: {e}"))),
            }
        });
    });
    let toggles = Transform::ALL
        .iter()
        .enumerate()
        .map(|(k, t)| {
            let id = format!("aug-{}", t.label().replace(' ', "-"));
            view! {
                <label class="toggle">
                    <input type="checkbox" data-testid=id.clone()
                        prop:checked=move || on.get()[k]
                        on:change=move |_| on.update(|f| f[k] = !f[k])/>
                    " " {t.label()}
                </label>
            }
        })
        .collect_view();
    view! {
        <div class="gallery">
            <h3>"Augmentation gallery"</h3>
            <div class="buttons">
                {toggles}
                {dino.then(|| view! {
                    <label>"crops " <select data-testid="aug-crops"
                        on:change=move |ev| local.set(event_target_value(&ev) == "local")>
                        <option value="global">"global (scale 0.4–1, blur)"</option>
                        <option value="local">"local (scale 0.15–0.4, no blur)"</option>
                    </select></label>
                })}
                <button data-testid="aug-new" on:click=move |_| seed.update(|s| *s += 1)>"New views"</button>
                <button data-testid="aug-next" on:click=move |_| index.update(|i| *i += 1)>"Next image"</button>
            </div>
            <canvas node_ref=canvas_ref data-testid="aug-gallery" role="img" width="10" height="10"
                data-distinct=move || count.get().map(|n| n.to_string()).unwrap_or_default()
                aria-label="One training image and sixteen random augmented views of it"></canvas>
            {move || count.get().map(|n| view! {
                <p class="caption" data-testid="aug-distinct">{format!("{n} of {VIEWS} views differ from every other view")}</p>
            })}
            {move || error.get().map(|e| view! { <p class="error" data-testid="aug-error">{e}</p> })}
        </div>
    }
}
