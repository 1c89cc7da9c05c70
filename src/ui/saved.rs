//! Saved runs in the browser: a finished run is kept in the origin-private file
//! system with a small description beside it, listed with its size and date, and
//! can be loaded (analysed at once, then continued), exported as the same file
//! `replab run --load` reads, imported from such a file, or deleted.

use super::runs::{compute_for, put_runner, take_runner};
use super::state::{AppState, set_query};
use crate::lab::{self, saved};
use crate::platform::{self, store};
use crate::train::RunControl;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// The OPFS folder of saved runs.
const FOLDER: &str = "saved-runs";
/// Largest saved run imported: the biggest chapter's model with its optimiser
/// state is a few tens of megabytes.
pub const MAX_IMPORT_BYTES: u64 = 512 << 20;

/// What the list shows of a saved run, kept as JSON beside it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SavedEntry {
    /// The run's file in the folder.
    pub file: String,
    /// Chapter slug.
    pub chapter: String,
    /// Dataset name.
    pub dataset: String,
    /// Epochs trained.
    pub epochs: usize,
    /// Milliseconds since 1970.
    pub saved_at_ms: f64,
    /// File size.
    pub bytes: usize,
    /// `saved`, or why the optimiser's state is not in the file.
    pub optimizer: String,
    /// Converged probe accuracy on test B, when the run finished.
    pub test_b: Option<f64>,
}

impl SavedEntry {
    /// `2026-12-04 09:30` (UTC).
    pub fn date(&self) -> String {
        let iso: String = js_sys::Date::new(&self.saved_at_ms.into())
            .to_iso_string()
            .into();
        iso.get(..16).unwrap_or(&iso).replace('T', " ")
    }

    /// The chapter's title.
    pub fn title(&self) -> &'static str {
        lab::chapter(&self.chapter).map_or("?", |c| c.title)
    }
}

fn sidecar(file: &str) -> String {
    format!("{}.json", file.trim_end_matches(".safetensors"))
}

/// Every saved run, newest first.
pub async fn entries() -> Result<Vec<SavedEntry>, String> {
    let mut out = Vec::new();
    for name in store::list(FOLDER).await? {
        if name.ends_with(".json")
            && let Ok(bytes) = store::read(FOLDER, &name).await
            && let Ok(entry) = serde_json::from_slice::<SavedEntry>(&bytes)
        {
            out.push(entry);
        }
    }
    out.sort_by(|a, b| b.saved_at_ms.total_cmp(&a.saved_at_ms));
    Ok(out)
}

/// Keep a saved run's bytes in the browser; the run is checked first.
pub async fn keep(bytes: &[u8]) -> Result<SavedEntry, String> {
    let info = saved::describe(bytes).map_err(|e| e.to_string())?;
    let file = format!("{}-{:.0}.safetensors", info.chapter, info.saved_at_ms);
    let entry = SavedEntry {
        file: file.clone(),
        chapter: info.chapter,
        dataset: info.dataset,
        epochs: info.epochs,
        saved_at_ms: info.saved_at_ms,
        bytes: bytes.len(),
        optimizer: info.optimizer.err().unwrap_or_else(|| "saved".into()),
        test_b: info.result.map(|r| r.probe.converged_test_b),
    };
    store::write(FOLDER, &file, bytes).await?;
    let json = serde_json::to_vec(&entry).map_err(|e| e.to_string())?;
    if let Err(e) = store::write(FOLDER, &sidecar(&file), &json).await {
        let _ = store::remove(FOLDER, &file).await;
        return Err(e);
    }
    Ok(entry)
}

/// The bytes of a kept run.
pub async fn read(entry: &SavedEntry) -> Result<Vec<u8>, String> {
    store::read(FOLDER, &entry.file).await
}

/// Delete a kept run and its description.
pub async fn delete(entry: &SavedEntry) -> Result<(), String> {
    store::remove(FOLDER, &sidecar(&entry.file)).await?;
    store::remove(FOLDER, &entry.file).await
}

/// The finished run of `slug` as a saved-run file.
pub async fn save_run(state: AppState, slug: &'static str) -> Result<Vec<u8>, String> {
    let runs = state.runs;
    let slot = runs.slot(slug).ok_or("this chapter cannot run")?;
    if runs.active.get_untracked() == Some(slug) {
        return Err("this chapter is running; save once it has finished".into());
    }
    let params = slot
        .run_params
        .get_untracked()
        .ok_or("nothing trained to save yet: press Run first")?;
    let output = slot.output.get_untracked();
    let compute = compute_for(state, params.backend, &RunControl::default()).await?;
    let runner = take_runner(slug).ok_or("this chapter cannot run")?;
    let result = output.as_ref().map(|o| &o.result);
    let bytes = saved::save(runner.as_ref(), &params, result, &compute, store::unix_ms()).await;
    put_runner(slug, runner);
    bytes
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "nothing trained to save yet: press Run first".into())
}

/// Load a saved run into its chapter, go to its page with its parameters and
/// analyse it there (Continue then trains on); returns a sentence saying what was
/// loaded. Nothing changes when it fails.
pub async fn load_run(state: AppState, bytes: Vec<u8>) -> Result<String, String> {
    let info = saved::describe(&bytes).map_err(|e| e.to_string())?;
    let slug = lab::chapter(&info.chapter).map_err(|e| e.to_string())?.slug;
    let runs = state.runs;
    let slot = runs.slot(slug).ok_or("this chapter cannot run")?;
    if let Some(active) = runs.active.get_untracked() {
        return Err(format!(
            "a {active} run is in progress; cancel it or let it finish, then load"
        ));
    }
    let control = RunControl::default();
    let compute = compute_for(state, info.params.backend, &control).await?;
    let dataset = state.wait_dataset(&info.params.dataset, &control).await?;
    let mut runner = take_runner(slug).ok_or("this chapter cannot run")?;
    if runner.epochs_trained() > 0
        && !super::confirm(&format!(
            "Loading replaces the {} model trained in this tab ({} epochs). Continue?",
            slug,
            runner.epochs_trained()
        ))
    {
        put_runner(slug, runner);
        return Err("loading was cancelled; the model in this tab is kept".into());
    }
    let loaded = saved::load(runner.as_mut(), &bytes, dataset, &compute, true);
    put_runner(slug, runner);
    let loaded = loaded.map_err(|e| e.to_string())?;
    let query = loaded.params.to_query(slug);
    set_query(slug, &query);
    state.route.set(super::state::Route {
        slug: slug.to_string(),
        query,
    });
    slot.clear();
    slot.run_params.set(Some(loaded.params.clone()));
    platform::yield_now().await;
    let title = lab::chapter(slug).map_or(slug, |c| c.title);
    let mut said = format!(
        "loaded {title} ({} epochs on {})",
        loaded.epochs, loaded.dataset
    );
    if let Err(why) = &loaded.optimizer {
        said.push_str(&format!("; AdamW's state {why}"));
    }
    runs.start(state, slug, loaded.params, true);
    Ok(said)
}
