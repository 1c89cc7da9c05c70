//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod compare;
pub mod fixture;
pub mod npz;

use replab::data::{Dataset, Manifest};
use std::path::Path;
use std::sync::Arc;

/// The bundled BloodMNIST, read from `public/data`.
pub fn blood() -> Arc<Dataset> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("public/data/bloodmnist");
    let manifest = Manifest::from_json(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    Arc::new(
        Dataset::from_blobs(manifest, |f| {
            std::fs::read(dir.join(f)).map_err(|e| e.to_string())
        })
        .unwrap(),
    )
}

/// Hold this for the whole of a test that trains: burn's device generator is one per
/// device and process, so two tests of one binary training at once (cargo runs them on
/// threads) would draw from it in turn and neither would be reproducible.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
