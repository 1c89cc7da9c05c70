//! State shared by every page: the compute device, loaded datasets, and the route.

use crate::data::{Dataset, Manifest};
use crate::lab::LabParams;
use crate::platform::{self, Compute};
use leptos::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;

/// Bundles shipped under `public/data/`.
pub const BUNDLED: &[&str] = &["bloodmnist", "organamnist"];

/// The current route: a chapter slug and its hash query.
#[derive(Clone, Debug, PartialEq)]
pub struct Route {
    /// e.g. `supervised`.
    pub slug: String,
    /// e.g. `epochs=1&limit=512`.
    pub query: String,
}

impl Route {
    /// Parse `#/supervised?epochs=1`.
    pub fn from_hash(hash: &str) -> Self {
        let h = hash.trim_start_matches('#').trim_start_matches('/');
        let (slug, query) = h.split_once('?').unwrap_or((h, ""));
        let slug = if slug.is_empty() { "data" } else { slug };
        Self {
            slug: slug.to_string(),
            query: query.to_string(),
        }
    }

    /// The current `location.hash` as a route.
    pub fn current() -> Self {
        let hash = web_sys::window()
            .and_then(|w| w.location().hash().ok())
            .unwrap_or_default();
        Self::from_hash(&hash)
    }
}

/// Replace the hash query without adding a history entry or reloading.
pub fn set_query(slug: &str, query: &str) {
    let url = if query.is_empty() {
        format!("#/{slug}")
    } else {
        format!("#/{slug}?{query}")
    };
    if let Some(w) = web_sys::window()
        && let Ok(h) = w.history()
    {
        let _ = h.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&url));
    }
}

/// Where a dataset is in its loading.
#[derive(Clone)]
pub enum DataState {
    /// Downloading: bytes received and expected.
    Loading(String),
    /// Ready to use.
    Ready(Arc<Dataset>),
    /// Failed, with the reason.
    Failed(String),
}

/// Shared application state, provided as context.
#[derive(Clone, Copy)]
pub struct AppState {
    /// The chosen compute device, once probed.
    pub compute: RwSignal<Option<Compute>>,
    /// Datasets by name.
    pub datasets: RwSignal<HashMap<String, DataState>>,
    /// The route.
    pub route: RwSignal<Route>,
}

impl AppState {
    /// Fetch, verify and decode a bundle unless it is loaded or loading already.
    pub fn ensure_dataset(&self, name: &str) {
        let known = self.datasets.with_untracked(|d| {
            matches!(
                d.get(name),
                Some(DataState::Ready(_) | DataState::Loading(_))
            )
        });
        if known {
            return;
        }
        let datasets = self.datasets;
        let name = name.to_string();
        datasets.update(|d| {
            d.insert(name.clone(), DataState::Loading("starting".into()));
        });
        leptos::task::spawn_local(async move {
            let result = load_bundle(&name, |msg| {
                datasets.update(|d| {
                    d.insert(name.clone(), DataState::Loading(msg));
                })
            })
            .await;
            datasets.update(|d| {
                d.insert(
                    name.clone(),
                    match result {
                        Ok(ds) => DataState::Ready(Arc::new(ds)),
                        Err(e) => DataState::Failed(e),
                    },
                );
            });
        });
    }

    /// Forget a failed dataset and its cached files, then load it again.
    pub fn retry_dataset(&self, name: &str) {
        let datasets = self.datasets;
        let name = name.to_string();
        let this = *self;
        leptos::task::spawn_local(async move {
            let base = format!("data/{name}/");
            if let Ok(bytes) =
                platform::fetch_bytes(&format!("{base}manifest.json"), |_, _| {}).await
                && let Ok(m) = Manifest::from_json(&bytes)
            {
                for entry in [&m.train, &m.val, &m.test] {
                    platform::cache_delete(&format!("{base}{}", entry.images.file)).await;
                    platform::cache_delete(&format!("{base}{}", entry.labels.file)).await;
                }
            }
            platform::cache_delete(&format!("{base}manifest.json")).await;
            datasets.update(|d| {
                d.remove(&name);
            });
            this.ensure_dataset(&name);
        });
    }

    /// The dataset if ready.
    pub fn dataset(&self, name: &str) -> Option<Arc<Dataset>> {
        self.datasets.with(|d| match d.get(name) {
            Some(DataState::Ready(ds)) => Some(ds.clone()),
            _ => None,
        })
    }
}

fn human(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

async fn load_bundle(name: &str, mut report: impl FnMut(String)) -> Result<Dataset, String> {
    if !BUNDLED.contains(&name) {
        return Err(format!(
            "no bundled dataset '{name}'; bundled: {}",
            BUNDLED.join(", ")
        ));
    }
    let base = format!("data/{name}/");
    let manifest_bytes = platform::fetch_bytes(&format!("{base}manifest.json"), |_, _| {}).await?;
    let manifest = Manifest::from_json(&manifest_bytes).map_err(|e| e.to_string())?;
    let total: u64 = [&manifest.train, &manifest.val, &manifest.test]
        .iter()
        .map(|s| s.images.bytes + s.labels.bytes)
        .sum();
    let mut blobs: HashMap<String, Vec<u8>> = HashMap::new();
    let mut done: u64 = 0;
    for entry in [&manifest.train, &manifest.val, &manifest.test] {
        for blob in [&entry.images, &entry.labels] {
            let url = format!("{base}{}", blob.file);
            let before = done;
            let bytes = platform::fetch_bytes(&url, |got, _| {
                report(format!(
                    "downloading {} of {} ({:.0}%)",
                    human(before + got),
                    human(total),
                    100.0 * (before + got) as f64 / total.max(1) as f64
                ))
            })
            .await?;
            done += bytes.len() as u64;
            blobs.insert(blob.file.clone(), bytes);
        }
    }
    report("checking and decoding".into());
    platform::yield_now().await;
    Dataset::from_blobs(manifest, |f| {
        blobs
            .remove(f)
            .ok_or_else(|| format!("{f} was not downloaded"))
    })
    .map_err(|e| e.to_string())
}

/// Parse the route's query into parameters, reporting errors instead of panicking.
pub fn params_of(route: &Route) -> Result<LabParams, String> {
    LabParams::from_query(&route.query)
}

/// A page's view of the route's parameters: the parsed parameters, kept in step
/// with the URL, and their dataset loading in the background.
pub fn page_params(state: AppState) -> Memo<Result<LabParams, String>> {
    let params = Memo::new(move |_| params_of(&state.route.get()));
    Effect::new(move |_| {
        if let Some(Ok(p)) = params.try_get() {
            state.ensure_dataset(&p.dataset);
        }
    });
    params
}

/// The current parameters, or the defaults while the URL is invalid.
/// `try_get`: effects can still be queued when a route change disposes the page.
pub fn current_params(params: Memo<Result<LabParams, String>>) -> LabParams {
    params.try_get().and_then(Result::ok).unwrap_or_default()
}

impl AppState {
    /// Set one parameter of page `slug` if the result is valid, updating the URL.
    pub fn update_param(&self, slug: &str, mut p: LabParams, key: &str, value: &str) {
        if p.set(key, value).is_ok() && p.validate().is_ok() {
            let q = p.to_query();
            set_query(slug, &q);
            self.route.update(|r| r.query = q);
        }
    }

    /// What a run needs: valid parameters, the chosen device and the loaded dataset,
    /// or the reason it cannot start yet.
    pub fn run_inputs(
        &self,
        params: Result<LabParams, String>,
    ) -> Result<(LabParams, Compute, Arc<Dataset>), String> {
        let p = params?;
        let compute = self
            .compute
            .get_untracked()
            .ok_or("the compute device is still being probed; try again in a moment")?;
        let ds = self
            .dataset(&p.dataset)
            .ok_or("the dataset is not loaded yet")?;
        Ok((p, compute, ds))
    }
}
