//! Everything that differs between the browser and a native process lives here,
//! and only here: choosing the compute device, yielding to the event loop,
//! reading the clock, fetching bytes, and reading a file the user chose.
//!
//! The rest of the crate calls these functions without any `cfg`.

use serde::{Deserialize, Serialize};

#[cfg(not(target_arch = "wasm32"))]
mod native;
#[cfg(not(target_arch = "wasm32"))]
pub use native::*;

/// Browser storage (the origin-private file system); it compiles everywhere, as the
/// UI does, and works in the browser.
pub mod store;
#[cfg(target_arch = "wasm32")]
mod web;
#[cfg(target_arch = "wasm32")]
pub use web::*;

/// Which kind of compute a run ended up on. Serialised as `webgpu`, `wgpu` or `cpu`,
/// which is what `results.json` and the page's `data-testid="backend"` report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// The browser's WebGPU adapter.
    Webgpu,
    /// Native wgpu (Vulkan, Metal, DX12 or GL).
    Wgpu,
    /// burn's pure-Rust CPU backend.
    Cpu,
}

impl BackendKind {
    /// The lowercase name used in results and the page.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Webgpu => "webgpu",
            BackendKind::Wgpu => "wgpu",
            BackendKind::Cpu => "cpu",
        }
    }
}

/// What the user asked for. `Auto` takes a GPU when one is there and says why not otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendPref {
    /// A GPU if one can be initialised, otherwise the CPU.
    #[default]
    Auto,
    /// wgpu (WebGPU in the browser); an error if none is available.
    Wgpu,
    /// The CPU backend.
    Cpu,
}

impl std::str::FromStr for BackendPref {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Self::Auto),
            "wgpu" | "webgpu" | "gpu" => Ok(Self::Wgpu),
            "cpu" => Ok(Self::Cpu),
            other => Err(format!("unknown backend '{other}': use auto, wgpu or cpu")),
        }
    }
}

/// The device a lab runs on, with a human-readable account of how it was chosen.
#[derive(Clone, Debug)]
pub struct Compute {
    /// The plain (inference) device.
    pub device: burn::tensor::Device,
    /// Which backend this is.
    pub kind: BackendKind,
    /// The adapter or CPU description, e.g. "SwiftShader" or "flex (pure Rust)".
    pub adapter: String,
    /// Why this backend was chosen, e.g. "no WebGPU adapter: navigator.gpu is missing".
    pub reason: String,
}

impl Compute {
    /// The CPU backend, with the reason it was chosen.
    pub fn cpu(reason: impl Into<String>) -> Self {
        Self {
            device: cpu_device(),
            kind: BackendKind::Cpu,
            adapter: cpu_backend_name().to_string(),
            reason: reason.into(),
        }
    }

    /// The same device with autodiff enabled, for training.
    pub fn train_device(&self) -> burn::tensor::Device {
        self.device.clone().autodiff()
    }
}

/// The CPU device. `flex` is burn's maintained pure-Rust CPU backend; the deprecated
/// `ndarray` backend is available behind the `ndarray` cargo feature for benchmarks.
pub fn cpu_device() -> burn::tensor::Device {
    #[cfg(feature = "ndarray")]
    if std::env::var("REPLAB_CPU").as_deref() == Ok("ndarray") {
        #[allow(deprecated)]
        return burn::tensor::Device::ndarray();
    }
    burn::tensor::Device::flex()
}

/// Name of the CPU backend in use.
pub fn cpu_backend_name() -> &'static str {
    #[cfg(feature = "ndarray")]
    if std::env::var("REPLAB_CPU").as_deref() == Ok("ndarray") {
        return "ndarray (pure Rust)";
    }
    "flex (pure Rust)"
}
