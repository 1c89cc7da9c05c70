//! Files kept in the browser between visits: the origin-private file system
//! (OPFS), one folder per kind of file. Every failure comes back as a sentence; a
//! full disk or a denied quota says so and what to do instead.

use js_sys::Uint8Array;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{FileSystemDirectoryHandle, FileSystemFileHandle, FileSystemWritableFileStream};

/// Milliseconds since 1970 by the browser's clock.
pub fn unix_ms() -> f64 {
    js_sys::Date::now()
}

fn describe(e: &JsValue) -> (String, String) {
    let name = js_sys::Reflect::get(e, &JsValue::from_str("name"))
        .ok()
        .and_then(|n| n.as_string())
        .unwrap_or_default();
    let message = js_sys::Reflect::get(e, &JsValue::from_str("message"))
        .ok()
        .and_then(|n| n.as_string())
        .unwrap_or_else(|| format!("{e:?}"));
    (name, message)
}

/// A sentence for a failed storage call; `what` says what was being done.
fn storage_error(what: &str, e: &JsValue) -> String {
    let (name, message) = describe(e);
    if name == "QuotaExceededError" {
        format!(
            "{what}: the browser's storage for this site is full or its quota was denied ({message}); delete saved runs you no longer need, or use Export to keep this one as a file (nothing was lost)"
        )
    } else if name == "SecurityError" || name == "NotAllowedError" {
        format!(
            "{what}: this browser does not let the page keep files ({message}; a private window often forbids it); use Export to keep runs as files"
        )
    } else {
        format!("{what}: {name} {message}")
    }
}

async fn call(what: &str, promise: js_sys::Promise) -> Result<JsValue, String> {
    JsFuture::from(promise)
        .await
        .map_err(|e| storage_error(what, &e))
}

/// The folder `name` in the origin-private file system, made when missing.
async fn folder(name: &str) -> Result<FileSystemDirectoryHandle, String> {
    let storage = web_sys::window().ok_or("no window")?.navigator().storage();
    let root: FileSystemDirectoryHandle = call(
        "opening the browser's file storage",
        storage.get_directory(),
    )
    .await?
    .dyn_into()
    .map_err(|_| {
        "this browser has no origin-private file system; use Export to keep runs as files"
            .to_string()
    })?;
    let opts = web_sys::FileSystemGetDirectoryOptions::new();
    opts.set_create(true);
    call(
        "opening the saved-runs folder",
        root.get_directory_handle_with_options(name, &opts),
    )
    .await?
    .dyn_into()
    .map_err(|_| "the saved-runs folder is not a folder".to_string())
}

/// Write `bytes` to `file` in `folder`, replacing it; a failed write removes what
/// it had started, so no half file is left.
pub async fn write(folder_name: &str, file: &str, bytes: &[u8]) -> Result<(), String> {
    let dir = folder(folder_name).await?;
    let opts = web_sys::FileSystemGetFileOptions::new();
    opts.set_create(true);
    let what = format!("saving {file} ({:.1} MB)", bytes.len() as f64 / 1e6);
    let handle: FileSystemFileHandle = call(&what, dir.get_file_handle_with_options(file, &opts))
        .await?
        .unchecked_into();
    let stream: FileSystemWritableFileStream = call(&what, handle.create_writable())
        .await?
        .unchecked_into();
    let written = match stream.write_with_js_u8_array(&Uint8Array::from(bytes)) {
        Ok(p) => call(&what, p).await.map(|_| ()),
        Err(e) => Err(storage_error(&what, &e)),
    };
    let closed = match written {
        Ok(()) => call(&what, stream.close()).await.map(|_| ()),
        Err(e) => {
            let _ = JsFuture::from(stream.abort()).await;
            Err(e)
        }
    };
    if closed.is_err() {
        let _ = JsFuture::from(dir.remove_entry(file)).await;
    }
    closed
}

/// The bytes of `file` in `folder`.
pub async fn read(folder_name: &str, file: &str) -> Result<Vec<u8>, String> {
    let dir = folder(folder_name).await?;
    let what = format!("reading {file}");
    let handle: FileSystemFileHandle = call(&what, dir.get_file_handle(file))
        .await?
        .unchecked_into();
    let blob: web_sys::Blob = call(&what, handle.get_file()).await?.unchecked_into();
    let buffer = call(&what, blob.array_buffer()).await?;
    Ok(Uint8Array::new(&buffer).to_vec())
}

/// Remove `file` from `folder`; a file already gone is not an error.
pub async fn remove(folder_name: &str, file: &str) -> Result<(), String> {
    let dir = folder(folder_name).await?;
    match JsFuture::from(dir.remove_entry(file)).await {
        Ok(_) => Ok(()),
        Err(e) if describe(&e).0 == "NotFoundError" => Ok(()),
        Err(e) => Err(storage_error(&format!("deleting {file}"), &e)),
    }
}

/// The names of the files in `folder`.
pub async fn list(folder_name: &str) -> Result<Vec<String>, String> {
    let dir = folder(folder_name).await?;
    let keys = dir.keys();
    let mut names = Vec::new();
    loop {
        let step = call(
            "listing saved runs",
            keys.next()
                .map_err(|e| storage_error("listing saved runs", &e))?,
        )
        .await?;
        let done = js_sys::Reflect::get(&step, &JsValue::from_str("done"))
            .ok()
            .and_then(|d| d.as_bool())
            .unwrap_or(true);
        if done {
            break;
        }
        if let Some(name) = js_sys::Reflect::get(&step, &JsValue::from_str("value"))
            .ok()
            .and_then(|v| v.as_string())
        {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}
