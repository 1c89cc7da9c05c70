//! Data: MedMNIST label tables, the `.npz` reader, the converter, replab's bundle
//! format, numpy's random stream and the lab's splits.

pub mod augment;
pub mod bundle;
pub mod convert;
pub mod medmnist;
pub mod npz;
pub mod rng;
pub mod splits;
pub mod subset;

pub use bundle::{Dataset, Manifest, SplitData};
