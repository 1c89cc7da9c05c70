//! State shared by every page: the compute device, loaded datasets, and the route.

use crate::lab::LabParams;
use crate::lab::RunControl;
use crate::lab::{Dataset, Manifest};
use crate::platform::{self, Compute};
use leptos::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;

/// Bundles shipped under `public/data/`.
pub const BUNDLED: &[&str] = &["bloodmnist", "organamnist"];

/// Marks the name of a dataset converted in the page from the user's own `.npz`
/// (`bloodmnist-file`, then `bloodmnist-file2` for a different file): held by this
/// tab only, never fetched.
pub const LOCAL_SUFFIX: &str = "-file";

/// Whether `name` is a dataset converted from the user's own file.
pub fn is_local(name: &str) -> bool {
    name.rsplit_once(LOCAL_SUFFIX)
        .is_some_and(|(base, n)| !base.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
}

/// The name for a file of dataset `base` with this MD5: the first of `base-file`,
/// `base-file2`, … that is free or holds the same file, so a different file never
/// replaces the data of runs already trained.
pub fn local_key(base: &str, md5: &str, datasets: &HashMap<String, DataState>) -> String {
    let free = |key: &String| match datasets.get(key) {
        Some(DataState::Ready(ds)) => ds.manifest.source.md5 == md5,
        _ => true,
    };
    (1..)
        .map(|k| match k {
            1 => format!("{base}{LOCAL_SUFFIX}"),
            k => format!("{base}{LOCAL_SUFFIX}{k}"),
        })
        .find(free)
        .unwrap_or_else(|| format!("{base}{LOCAL_SUFFIX}"))
}

/// Why a dataset converted from the user's file cannot be used in this tab.
fn local_missing(name: &str) -> String {
    format!(
        "'{name}' is a dataset converted from your own .npz file, and it is not loaded in this tab (such a dataset is not kept across reloads or tabs): drop the file on #/data again"
    )
}

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
    /// Every chapter's runs.
    pub runs: super::runs::Runs,
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
        self.datasets.track();
        self.dataset_untracked(name)
    }

    /// The dataset if ready, without subscribing to the loading state: for views
    /// of a finished run, whose dataset is ready by then, so another bundle's
    /// download progress does not redraw them.
    pub fn dataset_untracked(&self, name: &str) -> Option<Arc<Dataset>> {
        self.datasets.with_untracked(|d| match d.get(name) {
            Some(DataState::Ready(ds)) => Some(ds.clone()),
            _ => None,
        })
    }
}

fn human(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

async fn load_bundle(name: &str, mut report: impl FnMut(String)) -> Result<Dataset, String> {
    if is_local(name) {
        return Err(local_missing(name));
    }
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

impl AppState {
    /// Load the dataset if needed and wait for it; a failed download or a cancel
    /// ends the wait with the reason.
    pub async fn wait_dataset(
        &self,
        name: &str,
        control: &RunControl,
    ) -> Result<Arc<Dataset>, String> {
        self.ensure_dataset(name);
        loop {
            match self.datasets.with_untracked(|d| d.get(name).cloned()) {
                Some(DataState::Ready(ds)) => return Ok(ds),
                Some(DataState::Failed(e)) if is_local(name) => return Err(e),
                Some(DataState::Failed(e)) => {
                    return Err(format!(
                        "dataset {name} could not be loaded: {e} (press Retry)"
                    ));
                }
                _ => {}
            }
            control.checkpoint().await.map_err(|e| e.to_string())?;
            platform::sleep_ms(50).await;
        }
    }

    /// The parameters of page `slug` from the URL, kept in step with it, with the
    /// page's dataset loading in the background.
    pub fn page_params(&self, slug: &'static str) -> Memo<Result<LabParams, String>> {
        let route = self.route;
        let params = Memo::new(move |_| {
            route.with(|r| {
                if r.slug == slug {
                    LabParams::from_query(slug, &r.query)
                } else {
                    Ok(LabParams::for_chapter(slug))
                }
            })
        });
        let this = *self;
        Effect::new(move |_| {
            if let Some(Ok(p)) = params.try_get() {
                this.ensure_dataset(&p.dataset);
            }
        });
        params
    }

    /// Set one parameter of page `slug`, updating the URL; a value that does not
    /// parse or is out of range is refused with a message naming it.
    pub fn update_param(&self, slug: &str, key: &str, value: &str) -> Result<(), String> {
        let query = self.route.with_untracked(|r| r.query.clone());
        let mut p =
            LabParams::from_query(slug, &query).unwrap_or_else(|_| LabParams::for_chapter(slug));
        p.set(key, value)?;
        let q = p.to_query(slug);
        set_query(slug, &q);
        self.route.update(|r| r.query = q);
        Ok(())
    }

    /// The parameters that follow the reader between chapters (dataset, backend).
    pub fn carried_query(&self) -> String {
        self.route.with(|r| {
            LabParams::from_query(&r.slug, &r.query)
                .map(|p| p.carried_query())
                .unwrap_or_default()
        })
    }
}

/// The current parameters, or the chapter's defaults while the URL is invalid.
/// `try_get`: effects can still be queued when a route change disposes the page.
pub fn current_params(slug: &str, params: Memo<Result<LabParams, String>>) -> LabParams {
    params
        .try_get()
        .and_then(Result::ok)
        .unwrap_or_else(|| LabParams::for_chapter(slug))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_names_are_told_apart_from_bundles() {
        for name in ["bloodmnist-file", "bloodmnist-file2", "organamnist-file12"] {
            assert!(is_local(name), "{name}");
        }
        for name in ["bloodmnist", "-file", "bloodmnist-filex", "file"] {
            assert!(!is_local(name), "{name}");
        }
        assert_eq!(
            local_key("bloodmnist", "ab", &HashMap::new()),
            "bloodmnist-file"
        );
        let failed = HashMap::from([(
            "bloodmnist-file".to_string(),
            DataState::Failed("not loaded".into()),
        )]);
        assert_eq!(local_key("bloodmnist", "ab", &failed), "bloodmnist-file");
    }
}
