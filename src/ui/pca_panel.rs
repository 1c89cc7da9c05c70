//! The PCA chapter's own views: the 2-D demo with its "New sample" button, and,
//! once a fit exists, reconstructions that follow a k slider live, on train, dev or
//! test images, beside the cumulative explained-variance curve (hover it to read a
//! value, click it to move the slider there).

use super::canvas;
use super::chapters::Panel;
use super::state::AppState;
use crate::lab::figures::{reconstruction_grid, variance_curve};
use crate::lab::pca::PcaView;
use crate::lab::pca_demo;
use leptos::html;
use leptos::prelude::*;
use std::sync::Arc;

/// The panel; nothing blocks a run.
pub fn panel() -> Panel {
    Panel {
        view: view! { <PcaViews/> }.into_any(),
        blocker: Signal::derive(|| None),
    }
}

/// The fitted basis of the latest PCA run, if any.
fn fitted(state: AppState) -> Signal<Option<Arc<PcaView>>> {
    let slot = state.runs.slot("pca");
    Signal::derive(move || {
        let out = slot?.output.get()?;
        let v = out.attachment.as_ref()?.get::<PcaView>()?.clone();
        Some(Arc::new(v))
    })
}

#[component]
fn PcaViews() -> impl IntoView {
    let state = expect_context::<AppState>();
    let seed = RwSignal::new(1u64);
    let demo = NodeRef::<html::Canvas>::new();
    Effect::new(move |_| {
        let points = pca_demo::sample(seed.get());
        if let Some(el) = demo.get() {
            canvas::draw(&el, &pca_demo::scene(&points));
        }
    });

    let fit = fitted(state);
    let k = RwSignal::new(0usize);
    let split = RwSignal::new(1usize);
    let hover = RwSignal::new(None::<usize>);
    // A new fit starts the slider where 90% of the variance is kept.
    Effect::new(move |_| {
        if let Some(f) = fit.get() {
            let cum = f.pca.cumulative();
            let k90 = crate::lab::pca::components_for(&cum, crate::lab::pca::TARGET_VARIANCE);
            k.set(k90.unwrap_or(f.pca.k()).clamp(1, f.pca.k().max(1)));
        }
    });
    let recon_ref = NodeRef::<html::Canvas>::new();
    Effect::new(move |_| {
        let (Some(f), Some(el)) = (fit.get(), recon_ref.get()) else {
            return;
        };
        let kk = k.get().clamp(1, f.pca.k().max(1));
        let Some((_, x)) = f.samples.get(split.get()) else {
            return;
        };
        let d = f.pca.d.max(1);
        let n = x.len() / d;
        let r = f.pca.reconstruct(x, n, kk);
        canvas::draw(
            &el,
            &reconstruction_grid(&r, x, n, f.channels, f.size, &format!("k = {kk}")),
        );
    });
    let scale = StoredValue::new(None::<crate::plot::axes::LinearScale>);
    let curve_ref = NodeRef::<html::Canvas>::new();
    Effect::new(move |_| {
        let (Some(f), Some(el)) = (fit.get(), curve_ref.get()) else {
            return;
        };
        let cum = f.pca.cumulative();
        let (scene, xs) = variance_curve(&cum, hover.get().unwrap_or(k.get()));
        scale.set_value(Some(xs));
        canvas::draw(&el, &scene);
    });
    let k_at = move |x: f64| -> Option<usize> {
        let f = fit.get_untracked()?;
        let xs = scale.get_value()?;
        let v = xs.invert(x as f32).round();
        (v >= 1.0).then(|| (v as usize).min(f.pca.k()))
    };
    let readout = move || {
        let f = fit.get()?;
        let cum = f.pca.cumulative();
        let kk = hover.get().unwrap_or(k.get());
        let share = cum.get(kk.saturating_sub(1))?;
        Some(format!(
            "k = {kk} of {}: {:.1}% of the variance",
            f.pca.k(),
            share * 100.0
        ))
    };

    view! {
        <h3>"PCA in two dimensions"</h3>
        <canvas node_ref=demo data-testid="pca-demo" role="img" width="10" height="10"
            aria-label="Two hundred correlated points with their principal components as arrows, the same points in PC coordinates, and their projections on each component"></canvas>
        <div class="buttons">
            <button data-testid="pca-demo-new" on:click=move |_| seed.update(|s| *s += 1)>"New sample"</button>
        </div>
        {move || match fit.get() {
            None => view! {
                <p class="notice" data-testid="pca-nofit">"Run the chapter to fit PCA on the images; the components, the reconstruction slider and the variance curve appear here."</p>
            }.into_any(),
            Some(f) => {
                let max = f.pca.k();
                let names: Vec<String> = f.samples.iter().map(|(n, _)| n.clone()).collect();
                view! {
                    <h3>"Reconstructions from the first k components"</h3>
                    <div class="controls">
                        <label>"k " <input type="range" min="1" max=max.to_string() data-testid="pca-k"
                            prop:value=move || k.get().to_string()
                            on:input=move |ev| { if let Ok(v) = event_target_value(&ev).parse::<usize>() { k.set(v) } }/></label>
                        " "
                        <label>"images from " <select data-testid="pca-split"
                            on:change=move |ev| { if let Ok(v) = event_target_value(&ev).parse::<usize>() { split.set(v) } }>
                            {names.into_iter().enumerate().map(|(i, n)| view! {
                                <option value=i.to_string() selected=i == 1>{n}</option>
                            }).collect_view()}
                        </select></label>
                        " " <span data-testid="pca-k-readout">{readout}</span>
                    </div>
                    <canvas node_ref=recon_ref data-testid="pca-recon" role="img" width="10" height="10"
                        aria-label="Reconstructions from the first k principal components (top) and the original images (bottom)"></canvas>
                    <canvas node_ref=curve_ref data-testid="pca-variance" role="img" width="10" height="10"
                        aria-label="Cumulative explained variance against k; hover to read a value, click to set the slider"
                        on:mousemove=move |ev| hover.set(k_at(ev.offset_x() as f64))
                        on:mouseleave=move |_| hover.set(None)
                        on:click=move |ev| { if let Some(v) = k_at(ev.offset_x() as f64) { k.set(v) } }></canvas>
                }.into_any()
            }
        }}
    }
}
