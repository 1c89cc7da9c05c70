//! replab: a representation-learning lab on MedMNIST that trains real networks in
//! the browser (WebGPU, or the CPU when there is none) and natively.
//!
//! Dependencies point one way: `ui`/`cli` → `lab` → `train`/`analysis`/`plot` →
//! `model`/`data` → `platform`. Only `platform` (and `main.rs`, which holds the
//! native CLI) know which target they are compiled for.

pub mod analysis;
pub mod data;
pub mod lab;
pub mod model;
pub mod platform;
pub mod plot;
pub mod train;

pub mod ui;
