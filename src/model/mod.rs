//! Models as burn modules: each is a `Config` plus a `Module`, with shape comments.

pub mod autoencoder;
pub mod batchnorm;
pub mod clip;
pub mod contrastive;
pub mod convnet;
pub mod dino;
pub mod ema;
pub mod safetensors;
pub mod simclr;
pub mod state;
pub(crate) mod torch_load;
