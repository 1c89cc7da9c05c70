//! Models as burn modules: each is a `Config` plus a `Module`, with shape comments.

pub mod batchnorm;
pub mod contrastive;
pub mod convnet;
pub mod state;
