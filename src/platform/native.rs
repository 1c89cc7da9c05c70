//! Native implementations: wgpu through Vulkan/Metal/DX12, a monotonic clock,
//! and a yield that does nothing (the CLI owns its thread).

use super::{BackendKind, BackendPref, Compute};
use std::sync::OnceLock;
use std::time::Instant;

/// Choose the compute device for a native run.
pub async fn select_compute(pref: BackendPref) -> Result<Compute, String> {
    match pref {
        BackendPref::Cpu => Ok(Compute::cpu("--backend cpu was requested")),
        BackendPref::Wgpu => init_wgpu().map_err(|e| format!("wgpu is not available: {e}")),
        BackendPref::Auto => Ok(init_wgpu().unwrap_or_else(|e| {
            Compute::cpu(format!("no usable wgpu adapter ({e}); using the CPU"))
        })),
    }
}

fn init_wgpu() -> Result<Compute, String> {
    // wgpu may panic inside driver discovery on broken installations; keep that away
    // from the user and report it as an unavailable adapter instead.
    let device = std::panic::catch_unwind(|| burn::tensor::Device::wgpu_options().init())
        .map_err(|_| "the wgpu runtime panicked while looking for an adapter".to_string())?
        .map_err(|e| e.to_string())?;
    Ok(Compute {
        device,
        kind: BackendKind::Wgpu,
        adapter: "wgpu (native)".to_string(),
        reason: "a wgpu adapter was found".to_string(),
    })
}

/// Give the event loop a chance to run. Natively there is none to give to.
pub async fn yield_now() {}

/// Wait `ms` milliseconds (blocking the thread natively).
pub async fn sleep_ms(ms: u32) {
    std::thread::sleep(std::time::Duration::from_millis(ms as u64));
}

/// Milliseconds since the first call, from a monotonic clock.
pub fn now_ms() -> f64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_secs_f64() * 1000.0
}

/// Run a future to completion on the current thread.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    pollster::block_on(future)
}

/// Read what the web app would fetch from `url`: natively the app's assets are the
/// files under `public/` (relative to the working directory), so `data/x/manifest.json`
/// reads `public/data/x/manifest.json`. Progress is reported once, at the end.
pub async fn fetch_bytes(
    url: &str,
    mut progress: impl FnMut(u64, Option<u64>),
) -> Result<Vec<u8>, String> {
    let path = std::path::Path::new("public").join(url.trim_start_matches('/'));
    let bytes = std::fs::read(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    progress(bytes.len() as u64, Some(bytes.len() as u64));
    Ok(bytes)
}

/// Natively there is no service worker: the CLI needs no offline copy.
pub fn register_service_worker() {}

/// The wasm linear memory in bytes; natively there is none.
pub fn wasm_memory_bytes() -> Option<u64> {
    None
}

/// Natively nothing is cached, so there is nothing to forget.
pub async fn cache_delete(_url: &str) {}

/// Natively there is no cache: nothing is ever found.
pub async fn cache_get(_url: &str) -> Option<Vec<u8>> {
    None
}

/// Natively there is no cache: nothing is stored.
pub async fn cache_put(_url: &str, _bytes: &[u8]) {}

/// Natively a "download" is a file in the working directory.
pub fn save_file(name: &str, bytes: &[u8], _mime: &str) -> Result<(), String> {
    std::fs::write(name, bytes).map_err(|e| format!("writing {name}: {e}"))
}

/// The chart font (Noto Sans Regular, SIL Open Font License 1.1), built into the binary.
pub fn font_bytes() -> Option<&'static [u8]> {
    Some(include_bytes!("../../public/fonts/NotoSans-Regular.ttf"))
}

/// Natively the font is built in; nothing to load.
pub async fn load_font() -> Result<(), String> {
    Ok(())
}

/// Whether a saved optimiser state can be restored: natively burn's default device
/// is always available (the CLI makes it the CPU; see `main.rs`).
pub fn optimizer_state_restorable() -> Result<(), String> {
    Ok(())
}

/// A file chosen by the user: natively, a path.
pub struct LocalFile {
    name: String,
    size: u64,
    path: std::path::PathBuf,
}

impl LocalFile {
    /// The file at `path`, with its size, without reading it.
    pub fn open(path: &std::path::Path) -> Result<Self, String> {
        let size = std::fs::metadata(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?
            .len();
        let name = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(Self {
            name,
            size,
            path: path.to_path_buf(),
        })
    }

    /// The file's name, without any folder.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file's size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Read the whole file; progress is reported once, at the end.
    pub async fn read(&self, mut progress: impl FnMut(u64)) -> Result<Vec<u8>, String> {
        let bytes = std::fs::read(&self.path)
            .map_err(|e| format!("cannot read {}: {e}", self.path.display()))?;
        progress(bytes.len() as u64);
        Ok(bytes)
    }
}

/// Natively no page hands over files: there is never one in an event.
pub fn event_file(_ev: &web_sys::Event) -> Option<LocalFile> {
    None
}
