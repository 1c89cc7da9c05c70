//! Training: batches, losses, the loop every chapter shares, and heads on cached
//! features.

pub mod batcher;
pub mod checkpoint;
pub mod clip_grad;
pub mod control;
pub mod engine;
pub mod head;
pub mod losses;
pub mod readback;
pub mod snapshot;
pub mod source;

pub use batcher::{Batch, View};
pub use control::{Control, RunControl, TrainError};
pub use engine::{Hooks, TrainConfig, TrainEvent, Trainer};
pub use source::{BatchSource, Features, Images};
