//! Training: batches, losses and the shared async loop.

pub mod batcher;
pub mod engine;
pub mod losses;

pub use batcher::{Batch, View};
pub use engine::{RunControl, TrainConfig, TrainError, TrainEvent, Trainer};
