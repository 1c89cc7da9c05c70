//! Saved runs: a trained chapter as one safetensors file that the page and
//! `replab` both read and write.
//!
//! The tensors are the chapter's trainer (see [`crate::train::checkpoint`]); the
//! metadata says what it is: the chapter, its parameters as a URL query, the
//! dataset, the epochs trained, when it was saved, whether the optimiser's state
//! is in it, and the run's numbers. `scripts/load_in_pytorch.py` loads the
//! encoder of such a file into the notebook's own PyTorch architecture.

use super::chapter::{Chapter, ChapterResult, RunCtx};
use super::error::LabError;
use super::params::LabParams;
use super::registry;
use crate::data::Dataset;
use crate::model::safetensors::{SafeTensors, SafeTensorsWriter};
use crate::platform::{BackendKind, Compute};
use crate::train::RunControl;
use std::sync::Arc;

/// The format tag every saved run carries.
pub const FORMAT: &str = "replab-saved-run/1";
const KEY_FORMAT: &str = "replab.format";
const KEY_CHAPTER: &str = "replab.chapter";
const KEY_PARAMS: &str = "replab.params";
const KEY_DATASET: &str = "replab.dataset";
const KEY_EPOCHS: &str = "replab.epochs";
const KEY_SAVED_AT: &str = "replab.saved_at_ms";
const KEY_OPTIMIZER: &str = "replab.optimizer";
const KEY_RESULT: &str = "replab.result";

/// What a saved run is, read from its header alone.
#[derive(Clone, Debug, PartialEq)]
pub struct SavedRun {
    /// The chapter's slug.
    pub chapter: String,
    /// The parameters it was trained with.
    pub params: LabParams,
    /// The dataset it was trained on.
    pub dataset: String,
    /// Epochs trained.
    pub epochs: usize,
    /// When it was saved, in milliseconds since 1970.
    pub saved_at_ms: f64,
    /// Whether the optimiser's state is in the file (else continuing starts
    /// AdamW's moments afresh), or why not.
    pub optimizer: Result<(), String>,
    /// The run's numbers, when it finished.
    pub result: Option<ChapterResult>,
}

/// Whether the optimiser's state can be read on this device: burn reads it back
/// synchronously, which a browser cannot do from WebGPU.
pub fn optimizer_readable(compute: &Compute) -> Result<(), String> {
    if cfg!(target_arch = "wasm32") && compute.kind == BackendKind::Webgpu {
        Err("not saved: the browser cannot read AdamW's state back from WebGPU synchronously, so continuing starts its moments afresh".into())
    } else {
        Ok(())
    }
}

/// Save `chapter`'s trained state with its parameters and numbers; `Ok(None)` when
/// it has nothing trained.
pub async fn save(
    chapter: &dyn Chapter,
    params: &LabParams,
    result: Option<&ChapterResult>,
    compute: &Compute,
    saved_at_ms: f64,
) -> Result<Option<Vec<u8>>, LabError> {
    let slug = chapter.info().slug;
    let optimizer = optimizer_readable(compute);
    let mut w = SafeTensorsWriter::new();
    if !chapter.save_into(&mut w, optimizer.is_ok()).await? {
        return Ok(None);
    }
    let epochs = result.map_or(0, |r| r.epochs_trained);
    w.metadata(KEY_FORMAT, FORMAT)
        .metadata(KEY_CHAPTER, slug)
        .metadata(KEY_PARAMS, params.to_query(slug))
        .metadata(KEY_DATASET, params.dataset.clone())
        .metadata(KEY_EPOCHS, epochs.to_string())
        .metadata(KEY_SAVED_AT, format!("{saved_at_ms:.0}"))
        .metadata(
            KEY_OPTIMIZER,
            optimizer.err().unwrap_or_else(|| "saved".into()),
        );
    if let Some(r) = result {
        w.metadata(
            KEY_RESULT,
            serde_json::to_string(r).map_err(|e| LabError::Weights(e.to_string()))?,
        );
    }
    w.try_into_bytes()
        .map(Some)
        .map_err(|e| LabError::Weights(e.to_string()))
}

/// Read what a saved run is without loading it; the error says why the file is not
/// one.
pub fn describe(bytes: &[u8]) -> Result<SavedRun, LabError> {
    let file = SafeTensors::parse(bytes).map_err(|e| LabError::Weights(e.to_string()))?;
    describe_parsed(&file)
}

fn describe_parsed(file: &SafeTensors<'_>) -> Result<SavedRun, LabError> {
    let m = file.metadata();
    let get = |k: &str| m.get(k).map(String::as_str);
    match get(KEY_FORMAT) {
        Some(FORMAT) => {}
        Some(other) => {
            return Err(LabError::Weights(format!(
                "this saved run has format '{other}'; this replab reads '{FORMAT}'"
            )));
        }
        None => {
            return Err(LabError::Weights(
                "this safetensors file is not a replab saved run (its metadata has no 'replab.format'); CLIP weights go on the CLIP page".into(),
            ));
        }
    }
    let bad =
        |k: &str| LabError::Weights(format!("the saved run's '{k}' is missing or unreadable"));
    let chapter = get(KEY_CHAPTER).ok_or_else(|| bad(KEY_CHAPTER))?;
    let info = registry::chapter(chapter).map_err(|e| LabError::Weights(e.to_string()))?;
    let params = LabParams::from_query(info.slug, get(KEY_PARAMS).ok_or_else(|| bad(KEY_PARAMS))?)
        .map_err(|e| LabError::Weights(format!("the saved run's parameters: {e}")))?;
    let result = match get(KEY_RESULT) {
        Some(r) => Some(serde_json::from_str(r).map_err(|_| bad(KEY_RESULT))?),
        None => None,
    };
    Ok(SavedRun {
        chapter: info.slug.to_string(),
        dataset: get(KEY_DATASET)
            .ok_or_else(|| bad(KEY_DATASET))?
            .to_string(),
        params,
        epochs: get(KEY_EPOCHS)
            .and_then(|e| e.parse().ok())
            .ok_or_else(|| bad(KEY_EPOCHS))?,
        saved_at_ms: get(KEY_SAVED_AT)
            .and_then(|e| e.parse().ok())
            .ok_or_else(|| bad(KEY_SAVED_AT))?,
        optimizer: match get(KEY_OPTIMIZER) {
            Some("saved") => Ok(()),
            Some(why) => Err(why.to_string()),
            None => return Err(bad(KEY_OPTIMIZER)),
        },
        result,
    })
}

/// Load a saved run into `chapter` (which must be the chapter it was saved from),
/// on `dataset` with the saved parameters; returns what it is. With `evaluate`,
/// the next run analyses the saved model without training (see
/// [`Chapter::load_from`]).
pub fn load(
    chapter: &mut dyn Chapter,
    bytes: &[u8],
    dataset: Arc<Dataset>,
    compute: &Compute,
    evaluate: bool,
) -> Result<SavedRun, LabError> {
    let file = SafeTensors::parse(bytes).map_err(|e| LabError::Weights(e.to_string()))?;
    let mut saved = describe_parsed(&file)?;
    let slug = chapter.info().slug;
    if saved.chapter != slug {
        return Err(LabError::Weights(format!(
            "this run was saved from the {} chapter, not {slug}",
            saved.chapter
        )));
    }
    if saved.dataset != dataset.manifest.name {
        return Err(LabError::Weights(format!(
            "this run was trained on {}, not {}; load that dataset first",
            saved.dataset, dataset.manifest.name
        )));
    }
    let prepared = super::plan(chapter, dataset, &saved.params)?;
    let control = RunControl::default();
    let ctx = RunCtx {
        prepared: &prepared,
        params: &saved.params,
        compute,
        control: &control,
        observer: &mut |_| {},
    };
    chapter.load_from(&file, &ctx, evaluate)?;
    if saved.optimizer.is_ok()
        && let Err(why) = crate::platform::optimizer_state_restorable()
    {
        saved.optimizer = Err(why);
    }
    Ok(saved)
}
