//! The one page every runnable chapter uses: its text, its own views, the dataset
//! and parameters, Run / Continue / Pause / Cancel / Reset, status and progress,
//! the live loss, the charts, exercises, the runs table, downloads and the JSON.
//! A chapter adds only what is its own (see [`super::chapters`]).

use super::canvas;
use super::chapters;
use super::state::{AppState, current_params};
use super::text;
use super::widgets::{ChartCanvas, DatasetPicker, Downloads, ParamsForm, PickedImage, RunsTable};
use crate::lab::charts::{chapter_charts, live_loss_chart, monitor_chart};
use crate::lab::{self, ChapterInfo};
use leptos::html;
use leptos::prelude::*;

/// A runnable chapter's page.
#[component]
pub fn ChapterShell(
    /// The chapter's registry entry.
    info: &'static ChapterInfo,
) -> impl IntoView {
    let state = expect_context::<AppState>();
    let slug = info.slug;
    let runs = state.runs;
    let Some(slot) = runs.slot(slug) else {
        return view! { <p class="error">"This chapter cannot run."</p> }.into_any();
    };
    let params = state.page_params(slug);
    let current = move || current_params(slug, params);
    let panel = chapters::panel(slug);
    let blocker = panel.as_ref().map(|p| p.blocker);
    let panel_view = panel.map(|p| p.view);
    let running_here = move || runs.active.get() == Some(slug);
    let busy = move || {
        let s = slot.status.get();
        running_here() || s.starts_with("waiting")
    };
    let blocked = move || blocker.and_then(|b| b.get());
    let start = move |resume: bool| {
        if let Ok(p) = params.get_untracked() {
            runs.start(state, slug, p, resume);
        }
    };
    let exercise = move |set: &'static [(&'static str, &'static str)]| {
        let Ok(mut p) = params.get_untracked() else {
            return;
        };
        for (k, v) in set {
            let _ = p.set(k, v);
        }
        if let Some(active) = runs.active.get_untracked()
            && !super::confirm(&format!(
                "A {active} run is in progress. Cancel it and start this exercise?"
            ))
        {
            return;
        }
        for (k, v) in set {
            let _ = state.update_param(slug, k, v);
        }
        runs.start(state, slug, p, false);
    };
    // Parameters edited during a run, or since the kept model was trained.
    let pending = move || {
        let run = slot.run_params.get()?;
        let page = params.get().ok()?;
        (run != page).then(|| {
            if running_here() {
                "The run in progress keeps the parameters it started with; your changes apply to the next run."
            } else {
                "The results below were made with other parameters; press Run to use yours."
            }
        })
    };
    let trains = info.params.contains(&"epochs");
    let can_continue = move || {
        trains
            && slot.status.get() == "done"
            && slot
                .run_params
                .get()
                .zip(params.get().ok())
                .is_some_and(|(r, p)| r.same_model(&p))
    };

    let loss_ref = NodeRef::<html::Canvas>::new();
    Effect::new(move |_| {
        let l = slot.live.get();
        if let Some(el) = loss_ref.get() {
            canvas::draw(
                &el,
                &live_loss_chart(&l.steps, &l.train, &l.dev, info.loss_title),
            );
        }
    });
    let dataset_of_run = Signal::derive(move || slot.run_params.get().map(|p| p.dataset));
    let charts = move || {
        let out = slot.output.get()?;
        let ds = state.dataset_untracked(&dataset_of_run.get()?)?;
        Some((
            out.clone(),
            chapter_charts(info.loss_title, &out, &ds.manifest.class_names),
        ))
    };
    let pick = RwSignal::new(None::<(usize, usize)>);
    let t = text::chapter(slug);

    view! {
        <section class="chapter">
            <h2>{info.title}</h2>
            <div class="prose" inner_html=t.intro></div>
            {panel_view}
            <DatasetPicker slug=slug params=params/>
            {move || params.get().err().map(|e| view! { <p class="error" data-testid="url-error">"Bad URL parameter: " {e}</p> })}
            <ParamsForm slug=slug names=info.params params=params/>
            {move || pending().map(|m| view! { <p class="notice" data-testid="pending">{m}</p> })}
            <div class="buttons">
                <button data-testid="run" on:click=move |_| start(false)
                    disabled=move || busy() || params.get().is_err() || blocked().is_some()>"Run"</button>
                {move || can_continue().then(|| view! {
                    <button data-testid="continue" on:click=move |_| start(true)>
                        {format!("Continue training (+{} epochs)", current().epochs)}
                    </button>
                })}
                <button data-testid="pause" on:click=move |_| runs.toggle_pause() disabled=move || !running_here()>
                    {move || if matches!(slot.status.get().as_str(), "paused" | "pausing") { "Resume" } else { "Pause" }}
                </button>
                <button data-testid="cancel" on:click=move |_| runs.cancel() disabled=move || !running_here()>"Cancel"</button>
                <button data-testid="reset" on:click=move |_| runs.reset(slug)>"Reset"</button>
            </div>
            {move || blocked().map(|b| view! { <p class="notice" data-testid="blocked">{b}</p> })}
            {trains.then(|| view! { <super::saved_panel::SavedRunsPanel slug=slug/> })}
            <div class="progress" role="status" aria-live="polite">
                <span class="status">"Status: " <span data-testid="status">{move || slot.status.get()}</span></span>
                " "
                <progress max="1" prop:value=move || slot.progress.get()></progress>
                " " <span data-testid="stage">{move || slot.stage.get()}</span>
                <span class="eta">{move || (busy() && slot.eta.get() > 0.0).then(|| format!(" training ETA {:.0} s", slot.eta.get()))}</span>
            </div>
            {trains.then(|| view! {
                <canvas node_ref=loss_ref data-testid="loss-chart" role="img"
                    aria-label=format!("{}: live loss per step and per epoch", info.loss_title) width="10" height="10"></canvas>
            })}
            {info.monitors.iter().enumerate().map(|(i, name)| view! { <MonitorCanvas run=slot index=i name=name/> }).collect_view()}
            <div class="prose" inner_html=t.features></div>
            {move || charts().map(|(out, charts)| {
                let shown: Vec<_> = charts.iter().filter(|c| c.name != "loss").cloned().collect();
                let r = out.result.clone();
                let f = |v: Option<f64>| v.map(|a| format!("{a:.3}")).unwrap_or_else(|| "-".into());
                view! {
                    <div class="charts">
                        {shown.into_iter().map(|c| view! { <ChartCanvas chart=c pick=pick/> }).collect_view()}
                    </div>
                    <PickedImage pick=pick dataset=dataset_of_run/>
                    <table class="headline" data-testid="headline">
                        {r.dev_a_accuracy.map(|a| view! { <tr><th>"dev-A accuracy"</th><td>{format!("{a:.3}")}</td></tr> })}
                        {r.probe.after.map(|_| view! { <tr><th>"notebook probe, dev B: before / after"</th><td>{format!("{} / {}", f(r.probe.before), f(r.probe.after))}</td></tr> })}
                        {r.probe.finetune_after.map(|a| view! { <tr><th>"fine-tune, dev B"</th><td>{format!("{a:.3}")}</td></tr> })}
                        <tr><th>"converged probe: dev B / test B"</th><td>{format!("{:.3} / {:.3}", r.probe.converged_dev_b, r.probe.converged_test_b)}</td></tr>
                        {r.probe.random_init_test_b.map(|a| view! { <tr><th>"converged probe on an untrained encoder, test B"</th><td>{format!("{a:.3}")}</td></tr> })}
                        {headline_extras(&r).into_iter().map(|(k, v)| view! { <tr><th>{k}</th><td>{v}</td></tr> }).collect_view()}
                        {r.notes.iter().map(|n| view! { <tr><th>"note"</th><td>{n.clone()}</td></tr> }).collect_view()}
                    </table>
                    <Downloads slug=slug output=out charts=charts/>
                }
            })}
            <div class="prose" inner_html=t.transfer></div>
            {(!info.exercises.is_empty()).then(|| view! {
                <h3>"Exercises"</h3>
                <div class="prose" inner_html=t.exercises></div>
                <div class="buttons">
                    {info.exercises.iter().enumerate().map(|(i, e)| view! {
                        <button data-testid=format!("exercise-{i}") on:click=move |_| exercise(e.set)>{e.label}</button>
                    }).collect_view()}
                </div>
            })}
            <RunsTable runs=slot.runs/>
            <h3>"Result (the same object as results.json)"</h3>
            <pre class="json" data-testid="result">{move || slot.output.get().map(|o| serde_json::to_string_pretty(&o.result).unwrap_or_default()).unwrap_or_default()}</pre>
        </section>
    }
    .into_any()
}

/// A live chart of one value the training loss monitors (DINO's collapse signals).
#[component]
fn MonitorCanvas(run: crate::ui::runs::Slot, index: usize, name: &'static str) -> impl IntoView {
    let node = NodeRef::<html::Canvas>::new();
    Effect::new(move |_| {
        let l = run.live.get();
        if let Some(el) = node.get() {
            canvas::draw(&el, &monitor_chart(&l.monitors, index, name));
        }
    });
    view! {
        <canvas node_ref=node data-testid=format!("monitor-chart-{index}") role="img"
            data-points=move || run.live.get().monitors.len().to_string()
            aria-label=format!("live chart: {name}, per step") width="10" height="10"></canvas>
    }
}

/// The chapter's own numbers worth a headline row: plain numbers, and the
/// converged test-B accuracy of any extra probe (PCA's pixel baseline).
fn headline_extras(r: &lab::ChapterResult) -> Vec<(String, String)> {
    let mut rows = Vec::new();
    for (k, v) in &r.extra {
        let name = k.replace('_', " ");
        if let Some(x) = v.as_f64() {
            let text = if x.fract() == 0.0 && x.abs() < 1e9 {
                format!("{x:.0}")
            } else {
                format!("{x:.4}")
            };
            rows.push((name, text));
        } else if let Some(t) = v.get("converged_test_b").and_then(|t| t.as_f64()) {
            let dev = v
                .get("converged_dev_b")
                .and_then(|t| t.as_f64())
                .unwrap_or(f64::NAN);
            rows.push((
                format!("{name}: converged dev B / test B"),
                format!("{dev:.3} / {t:.3}"),
            ));
        }
    }
    rows
}

/// Whether a slug names a chapter the shell can show.
pub fn is_shell_chapter(slug: &str) -> Option<&'static ChapterInfo> {
    lab::chapter(slug).ok().filter(|c| c.runnable())
}
