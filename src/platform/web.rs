//! Browser implementations: WebGPU through `navigator.gpu`, `performance.now()`,
//! `setTimeout`-based yielding and fetch with progress and the Cache API.

use super::{BackendKind, BackendPref, Compute};
use js_sys::{Promise, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

fn js_err(context: &str, e: JsValue) -> String {
    let text = e
        .as_string()
        .or_else(|| {
            Reflect::get(&e, &JsValue::from_str("message"))
                .ok()
                .and_then(|m| m.as_string())
        })
        .unwrap_or_else(|| format!("{e:?}"));
    format!("{context}: {text}")
}

fn get_str(obj: &JsValue, key: &str) -> Option<String> {
    Reflect::get(obj, &JsValue::from_str(key))
        .ok()
        .and_then(|v| v.as_string())
        .filter(|s| !s.is_empty())
}

/// Ask the browser for a WebGPU adapter and describe it; `Err` says why there is none.
async fn probe_adapter() -> Result<String, String> {
    let window = web_sys::window().ok_or("no window")?;
    let navigator = window.navigator();
    let gpu = Reflect::get(&navigator, &JsValue::from_str("gpu")).unwrap_or(JsValue::UNDEFINED);
    if gpu.is_undefined() || gpu.is_null() {
        return Err("this browser exposes no WebGPU (navigator.gpu is missing)".into());
    }
    let request = Reflect::get(&gpu, &JsValue::from_str("requestAdapter"))
        .map_err(|e| js_err("navigator.gpu.requestAdapter", e))?
        .dyn_into::<js_sys::Function>()
        .map_err(|_| "navigator.gpu.requestAdapter is not a function".to_string())?;
    let promise = request
        .call0(&gpu)
        .map_err(|e| js_err("requestAdapter", e))?
        .dyn_into::<Promise>()
        .map_err(|_| "requestAdapter did not return a promise".to_string())?;
    let adapter = JsFuture::from(promise)
        .await
        .map_err(|e| js_err("requestAdapter", e))?;
    if adapter.is_null() || adapter.is_undefined() {
        return Err("WebGPU is present but the browser offered no adapter".into());
    }
    let info = Reflect::get(&adapter, &JsValue::from_str("info")).unwrap_or(JsValue::UNDEFINED);
    let mut parts: Vec<String> = ["vendor", "architecture", "description"]
        .iter()
        .filter_map(|k| get_str(&info, k))
        .collect();
    if Reflect::get(&info, &JsValue::from_str("isFallbackAdapter"))
        .ok()
        .and_then(|v| v.as_bool())
        .unwrap_or(false)
    {
        parts.push("software fallback".into());
    }
    if parts.is_empty() {
        parts.push("WebGPU adapter".into());
    }
    Ok(parts.join(" / "))
}

/// Choose the compute device in the browser: WebGPU when an adapter exists, otherwise the CPU.
pub async fn select_compute(pref: BackendPref) -> Result<Compute, String> {
    if pref == BackendPref::Cpu {
        return Ok(Compute::cpu("the CPU backend was requested"));
    }
    let adapter = match probe_adapter().await {
        Ok(a) => a,
        Err(why) if pref == BackendPref::Auto => return Ok(Compute::cpu(why)),
        Err(why) => return Err(why),
    };
    match burn::tensor::Device::wgpu_options().init_async().await {
        Ok(device) => {
            WEBGPU_READY.store(true, std::sync::atomic::Ordering::Relaxed);
            Ok(Compute {
                device,
                kind: BackendKind::Webgpu,
                adapter,
                reason: "a WebGPU adapter was found".into(),
            })
        }
        Err(e) if pref == BackendPref::Auto => Ok(Compute::cpu(format!(
            "WebGPU adapter '{adapter}' could not be initialised ({e})"
        ))),
        Err(e) => Err(format!("WebGPU initialisation failed: {e}")),
    }
}

/// Whether burn's default device (WebGPU, in the browser) has been initialised.
static WEBGPU_READY: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether a saved optimiser state can be restored: burn materialises it on its
/// default device, which in the browser is WebGPU, usable only once initialised.
pub fn optimizer_state_restorable() -> Result<(), String> {
    if WEBGPU_READY.load(std::sync::atomic::Ordering::Relaxed) {
        Ok(())
    } else {
        Err("not restored: burn restores AdamW's state on its default device, WebGPU, which this browser does not offer; continuing restarts the moments".into())
    }
}

/// Let the browser paint and handle input before continuing.
///
/// A timer task, not `scheduler.yield()`: its continuations are queued ahead of
/// other tasks, and a training loop yielding through it after every step kept
/// the page's other work (automation included) waiting. Timers nested more than
/// four deep wait at least 4 ms, which a step of the fast chapters pays.
pub async fn yield_now() {
    sleep_ms(0).await;
}

/// Wait `ms` milliseconds without blocking the page.
pub async fn sleep_ms(ms: u32) {
    let promise = Promise::new(&mut |resolve, _reject| {
        let scheduled = web_sys::window().and_then(|w| {
            w.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms as i32)
                .ok()
        });
        if scheduled.is_none() {
            let _ = resolve.call0(&JsValue::UNDEFINED);
        }
    });
    let _ = JsFuture::from(promise).await;
}

/// Milliseconds from `performance.now()`.
pub fn now_ms() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map(|p| p.now())
        .unwrap_or(0.0)
}

const CACHE_NAME: &str = "replab-v1";

async fn open_cache() -> Option<web_sys::Cache> {
    let caches = web_sys::window()?.caches().ok()?;
    let cache = JsFuture::from(caches.open(CACHE_NAME)).await.ok()?;
    cache.dyn_into::<web_sys::Cache>().ok()
}

/// Forget a cached response, e.g. after it failed its checksum: in every cache of
/// this origin, the app's own and the service worker's (`sw.js`), so that the next
/// fetch of `url` reaches the network rather than a stored copy.
pub async fn cache_delete(url: &str) {
    let Some(caches) = web_sys::window().and_then(|w| w.caches().ok()) else {
        return;
    };
    let Ok(names) = JsFuture::from(caches.keys()).await else {
        return;
    };
    for name in js_sys::Array::from(&names).iter() {
        let Some(name) = name.as_string() else {
            continue;
        };
        if let Ok(cache) = JsFuture::from(caches.open(&name)).await
            && let Ok(cache) = cache.dyn_into::<web_sys::Cache>()
        {
            let _ = JsFuture::from(cache.delete_with_str(url)).await;
        }
    }
}

/// Register the service worker that the build writes (`sw.js`, see
/// `scripts/sw.mjs`): it keeps the app, its fonts and bundles for offline use
/// after a first visit. Best effort: where the browser offers none (an insecure
/// origin), or the registration fails, the app works online as before.
pub fn register_service_worker() {
    let Some(window) = web_sys::window() else {
        return;
    };
    let navigator = window.navigator();
    if !Reflect::has(&navigator, &JsValue::from_str("serviceWorker")).unwrap_or(false) {
        return;
    }
    let promise = navigator.service_worker().register("sw.js");
    wasm_bindgen_futures::spawn_local(async move {
        if let Err(e) = JsFuture::from(promise).await {
            web_sys::console::warn_1(&JsValue::from_str(&js_err(
                "no offline copy (service worker not registered)",
                e,
            )));
        }
    });
}

/// The wasm linear memory in bytes (it grows, and never shrinks).
pub fn wasm_memory_bytes() -> Option<u64> {
    Some(core::arch::wasm32::memory_size(0) as u64 * 65536)
}

/// Fetch `url` as bytes, from the Cache API when present, reporting `(received, total)`
/// as it streams. Fresh downloads are stored in the cache.
pub async fn fetch_bytes(
    url: &str,
    mut progress: impl FnMut(u64, Option<u64>),
) -> Result<Vec<u8>, String> {
    if let Some(bytes) = cached(url, &mut progress).await {
        return Ok(bytes);
    }
    let window = web_sys::window().ok_or("no window")?;
    let resp = JsFuture::from(window.fetch_with_str(url))
        .await
        .map_err(|e| js_err(&format!("fetching {url}"), e))?
        .dyn_into::<web_sys::Response>()
        .map_err(|_| format!("fetching {url}: not a Response"))?;
    if !resp.ok() {
        return Err(format!("fetching {url}: HTTP {}", resp.status()));
    }
    let bytes = read_body(&resp, url, &mut progress).await?;
    cache_put(url, &bytes).await;
    Ok(bytes)
}

async fn cached(url: &str, progress: &mut impl FnMut(u64, Option<u64>)) -> Option<Vec<u8>> {
    let cache = open_cache().await?;
    let hit = JsFuture::from(cache.match_with_str(url)).await.ok()?;
    let resp = hit.dyn_into::<web_sys::Response>().ok()?;
    read_body(&resp, url, progress).await.ok()
}

/// The bytes cached under `url`, without touching the network.
pub async fn cache_get(url: &str) -> Option<Vec<u8>> {
    cached(url, &mut |_, _| {}).await
}

/// Keep `bytes` in the Cache API under `url` (best effort: a full or missing
/// cache only means the next visit downloads or asks again).
pub async fn cache_put(url: &str, bytes: &[u8]) {
    if let Some(cache) = open_cache().await {
        let array = Uint8Array::from(bytes);
        if let Ok(stored) = web_sys::Response::new_with_opt_buffer_source(Some(&array)) {
            let _ = JsFuture::from(cache.put_with_str(url, &stored)).await;
        }
    }
}

async fn read_body(
    resp: &web_sys::Response,
    url: &str,
    progress: &mut impl FnMut(u64, Option<u64>),
) -> Result<Vec<u8>, String> {
    let total = resp
        .headers()
        .get("content-length")
        .ok()
        .flatten()
        .and_then(|v| v.parse::<u64>().ok());
    let body = resp.body().ok_or_else(|| format!("{url}: empty body"))?;
    let reader = body
        .get_reader()
        .dyn_into::<web_sys::ReadableStreamDefaultReader>()
        .map_err(|_| format!("{url}: body is not readable"))?;
    let mut out = Vec::with_capacity(total.unwrap_or(0) as usize);
    loop {
        let chunk = JsFuture::from(reader.read())
            .await
            .map_err(|e| js_err(&format!("reading {url}"), e))?;
        let done = Reflect::get(&chunk, &JsValue::from_str("done"))
            .ok()
            .and_then(|v| v.as_bool())
            .unwrap_or(true);
        if done {
            break;
        }
        let value = Reflect::get(&chunk, &JsValue::from_str("value"))
            .map_err(|e| js_err(&format!("reading {url}"), e))?;
        let array = Uint8Array::new(&value);
        let start = out.len();
        out.resize(start + array.length() as usize, 0);
        array.copy_to(&mut out[start..]);
        progress(out.len() as u64, total);
    }
    Ok(out)
}

/// Offer `bytes` to the user as a downloaded file called `name`.
pub fn save_file(name: &str, bytes: &[u8], mime: &str) -> Result<(), String> {
    let array = js_sys::Array::of1(&Uint8Array::from(bytes));
    let opts = web_sys::BlobPropertyBag::new();
    opts.set_type(mime);
    let blob = web_sys::Blob::new_with_u8_array_sequence_and_options(&array, &opts)
        .map_err(|e| js_err("making the file", e))?;
    let url = web_sys::Url::create_object_url_with_blob(&blob)
        .map_err(|e| js_err("making the file", e))?;
    let document = web_sys::window()
        .and_then(|w| w.document())
        .ok_or("no document")?;
    let a = document
        .create_element("a")
        .map_err(|e| js_err("making the link", e))?
        .dyn_into::<web_sys::HtmlAnchorElement>()
        .map_err(|_| "not an anchor".to_string())?;
    a.set_href(&url);
    a.set_download(name);
    a.click();
    let _ = web_sys::Url::revoke_object_url(&url);
    Ok(())
}

/// The chart font, once [`load_font`] has fetched it. The page serves it as a file
/// rather than carrying it inside the wasm (a quarter of a megabyte gzipped).
static FONT: std::sync::OnceLock<&'static [u8]> = std::sync::OnceLock::new();

/// The chart font, when loaded.
pub fn font_bytes() -> Option<&'static [u8]> {
    FONT.get().copied()
}

/// Fetch the chart font once (through the same cache as the bundles).
pub async fn load_font() -> Result<(), String> {
    if FONT.get().is_some() {
        return Ok(());
    }
    let bytes = fetch_bytes("fonts/NotoSans-Regular.ttf", |_, _| {}).await?;
    let _ = FONT.set(Box::leak(bytes.into_boxed_slice()));
    Ok(())
}

/// A file the user picked or dropped. It is read here, in the page; nothing is
/// uploaded.
pub struct LocalFile {
    name: String,
    size: u64,
    blob: web_sys::Blob,
}

/// How much of a file one read takes; the page is given back between reads.
const READ_CHUNK: u64 = 4 << 20;

impl LocalFile {
    /// The file's name, without any folder.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file's size in bytes, as the browser reports it before anything is read.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Read the whole file a chunk at a time, reporting the bytes read so far and
    /// letting the page paint between chunks.
    pub async fn read(&self, mut progress: impl FnMut(u64)) -> Result<Vec<u8>, String> {
        let size = usize::try_from(self.size)
            .map_err(|_| format!("{} is too large to read here", self.name))?;
        let mut out = Vec::new();
        out.try_reserve_exact(size).map_err(|_| {
            format!(
                "not enough memory in this tab to read {} ({:.1} MB)",
                self.name,
                self.size as f64 / 1e6
            )
        })?;
        let mut at = 0u64;
        while at < self.size {
            let end = (at + READ_CHUNK).min(self.size);
            let part = self
                .blob
                .slice_with_f64_and_f64(at as f64, end as f64)
                .map_err(|e| js_err(&format!("reading {}", self.name), e))?;
            let buffer = JsFuture::from(part.array_buffer())
                .await
                .map_err(|e| js_err(&format!("reading {}", self.name), e))?;
            let array = Uint8Array::new(&buffer);
            let start = out.len();
            let len = array.length() as usize;
            if len == 0 || start + len > size {
                return Err(format!(
                    "{} changed while it was being read; choose it again",
                    self.name
                ));
            }
            out.resize(start + len, 0);
            array.copy_to(&mut out[start..]);
            at += len as u64;
            progress(at);
        }
        Ok(out)
    }
}

/// The first file of a drop (its `dataTransfer`) or of a file input's change event.
pub fn event_file(ev: &web_sys::Event) -> Option<LocalFile> {
    let present = |v: &JsValue| !v.is_undefined() && !v.is_null();
    let from_drop = Reflect::get(ev, &JsValue::from_str("dataTransfer"))
        .ok()
        .filter(present)
        .and_then(|dt| Reflect::get(&dt, &JsValue::from_str("files")).ok());
    let from_input = || {
        ev.target()
            .and_then(|t| Reflect::get(&t, &JsValue::from_str("files")).ok())
    };
    let files = from_drop.filter(present).or_else(from_input)?;
    let file = Reflect::get(&files, &JsValue::from_f64(0.0))
        .ok()
        .filter(present)?;
    let name = get_str(&file, "name").unwrap_or_else(|| "the chosen file".into());
    let size = Reflect::get(&file, &JsValue::from_str("size"))
        .ok()
        .and_then(|s| s.as_f64())
        .filter(|s| s.is_finite() && *s >= 0.0)? as u64;
    // A File is a Blob.
    let blob: web_sys::Blob = file.unchecked_into();
    Some(LocalFile { name, size, blob })
}
