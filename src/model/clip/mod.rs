//! CLIP's ViT image encoder: its configuration, the network, the weight
//! converter and loader, and the preprocessing that turns a MedMNIST image into
//! its input.

pub mod config;
pub mod preprocess;
pub mod weights;

pub use config::{Activation, ClipVisionConfig};
pub mod vit;
