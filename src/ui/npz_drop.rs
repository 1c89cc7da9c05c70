//! The data page's converter: an official MedMNIST `.npz` dropped or picked here is
//! read in the page (never uploaded), checked and converted as `replab convert`
//! does, and becomes a dataset every chapter of this tab can train on.

use super::state::{AppState, DataState, local_key};
use crate::data::bundle::SPLITS;
use crate::data::convert::{OpenedNpz, check_size, dataset_info, md5_hex};
use crate::data::medmnist::{self, DATASETS, DatasetInfo};
use crate::data::npz::NpzMembers;
use crate::lab::Dataset;
use crate::platform::{self, LocalFile};
use leptos::prelude::*;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Where the converter is.
#[derive(Clone, Debug, PartialEq)]
enum NpzState {
    /// Nothing dropped yet.
    Idle,
    /// Reading or converting: what is happening.
    Busy(String),
    /// The last file was refused: why.
    Failed(String),
    /// The last file became a dataset.
    Done {
        /// What the page says about it.
        summary: String,
        /// The converter's notes.
        notes: Vec<String>,
    },
}

/// A converted file, ready to be registered.
struct Converted {
    key: String,
    dataset: Dataset,
    notes: Vec<String>,
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// Check, read and convert `file` as `chosen` (or the dataset its name says),
/// reporting each stage and giving the page back between them.
async fn convert_file(
    file: &LocalFile,
    chosen: Option<&'static DatasetInfo>,
    state: AppState,
    report: impl Fn(String),
) -> Result<Converted, String> {
    let name = file.name().to_string();
    check_size(&name, file.size()).map_err(|e| e.to_string())?;
    let refused = |e: &dyn std::fmt::Display| format!("{name}: {e}");
    let info = chosen
        .or_else(|| medmnist::from_file_name(&name))
        .ok_or_else(|| {
            format!(
                "{name}: cannot tell which MedMNIST dataset this is from the file's name; choose it under \"Dataset in the file\" (or keep MedMNIST's name, e.g. bloodmnist.npz)"
            )
        })?;
    let info = dataset_info(info.name).map_err(|e| refused(&e))?;
    let total = file.size();
    report(format!("reading {name}: 0 of {}", mb(total)));
    platform::yield_now().await;
    let bytes = file
        .read(|got| {
            report(format!(
                "reading {name}: {} of {} ({:.0}%)",
                mb(got),
                mb(total),
                100.0 * got as f64 / total.max(1) as f64
            ))
        })
        .await?;
    report(format!("checking the archive of {name}"));
    platform::yield_now().await;
    let members = NpzMembers::list(&bytes).map_err(|e| refused(&e))?;
    let mut arrays = BTreeMap::new();
    for i in 0..members.len() {
        report(format!(
            "inflating {name}: array {} of {}",
            i + 1,
            members.len()
        ));
        platform::yield_now().await;
        if let Some(read) = members.read(&bytes, i) {
            let (key, array) = read.map_err(|e| refused(&e))?;
            arrays.insert(key, array);
        }
    }
    report(format!("computing the MD5 of {name}"));
    platform::yield_now().await;
    let md5 = md5_hex(&bytes);
    drop(bytes);
    let mut opened = OpenedNpz::from_arrays(info, arrays, md5);
    let mut parts = Vec::with_capacity(3);
    for split in SPLITS {
        report(format!(
            "checking and converting the {split} split of {name} as {}",
            info.title
        ));
        platform::yield_now().await;
        parts.push(opened.take_split(split).map_err(|e| refused(&e))?);
    }
    let splits: [(Vec<u8>, Vec<u8>); 3] = parts
        .try_into()
        .map_err(|_| format!("{name}: internal: a split is missing"))?;
    let key = state
        .datasets
        .with_untracked(|d| local_key(info.name, &opened.md5, d));
    let title = format!("{} (your file)", info.title);
    let notes = opened.notes.clone();
    let dataset = opened.into_dataset(splits, &name, &key, &title);
    Ok(Converted {
        key,
        dataset,
        notes,
    })
}

/// The drop zone and file input for an official MedMNIST `.npz`, with its progress,
/// refusals and notes.
#[component]
pub fn NpzDrop() -> impl IntoView {
    let state = expect_context::<AppState>();
    let status = RwSignal::new(NpzState::Idle);
    // Empty: the dataset the file's name says.
    let chosen = RwSignal::new(String::new());
    let start = move |file: Option<LocalFile>| {
        if matches!(status.get_untracked(), NpzState::Busy(_)) {
            return;
        }
        let Some(file) = file else {
            status.set(NpzState::Failed("no file was chosen".into()));
            return;
        };
        let choice = medmnist::find(&chosen.get_untracked());
        status.set(NpzState::Busy(format!("starting on {}", file.name())));
        leptos::task::spawn_local(async move {
            let report = |msg: String| {
                status.try_set(NpzState::Busy(msg));
            };
            match convert_file(&file, choice, state, report).await {
                Ok(c) => {
                    let m = &c.dataset.manifest;
                    let summary = format!(
                        "Converted {} as {}: {} classes; train {}, val {}, test {} images. Every chapter of this tab can now use it as the dataset '{}'; it is held in this tab only and is gone after a reload.",
                        m.source.file,
                        m.title,
                        m.class_names.len(),
                        m.train.count,
                        m.val.count,
                        m.test.count,
                        c.key
                    );
                    state.datasets.update(|d| {
                        d.insert(c.key.clone(), DataState::Ready(Arc::new(c.dataset)));
                    });
                    status.try_set(NpzState::Done {
                        summary,
                        notes: c.notes,
                    });
                    let _ = state.update_param("data", "dataset", &c.key);
                }
                Err(e) => {
                    status.try_set(NpzState::Failed(e));
                }
            }
        });
    };
    let on_drop = move |ev: leptos::ev::DragEvent| {
        ev.prevent_default();
        start(platform::event_file(&ev));
    };
    let on_pick = move |ev: leptos::ev::Event| {
        let file = platform::event_file(&ev);
        // Let the same file be picked again after a refusal.
        event_target::<web_sys::HtmlInputElement>(&ev).set_value("");
        start(file);
    };
    let status_view = move || match status.get() {
        NpzState::Idle => None,
        NpzState::Busy(msg) => Some(
            view! { <p class="loading" data-testid="npz-status"><progress/>" " {msg}</p> }
                .into_any(),
        ),
        NpzState::Failed(e) => {
            Some(view! { <p class="error" data-testid="npz-error">{e}</p> }.into_any())
        }
        NpzState::Done { summary, notes } => Some(
            view! {
                <p class="ok" data-testid="npz-ready">{summary}</p>
                <ul data-testid="npz-notes">
                    {notes.into_iter().map(|n| view! { <li>"Note: " {n}</li> }).collect_view()}
                </ul>
            }
            .into_any(),
        ),
    };
    view! {
        <h3>"Your own MedMNIST file"</h3>
        <p>"An official MedMNIST 2-D .npz at 28×28 (from medmnist.com or Zenodo) becomes a dataset here, with the checks of "
            <code>"replab convert"</code>". It is read in this page and never uploaded."</p>
        <label>"Dataset in the file "
            <select data-testid="npz-name" on:change=move |ev| chosen.set(event_target_value(&ev))>
                <option value="" selected=true>"from the file's name"</option>
                {DATASETS.iter().map(|d| view! { <option value=d.name>{d.title}</option> }).collect_view()}
            </select>
        </label>
        <div class="dropzone" data-testid="npz-drop"
            on:dragover=move |ev: leptos::ev::DragEvent| ev.prevent_default()
            on:drop=on_drop>
            "Drop a .npz here, or "
            <input type="file" accept=".npz" data-testid="npz-file" on:change=on_pick
                disabled=move || matches!(status.get(), NpzState::Busy(_))/>
        </div>
        {status_view}
    }
}
