//! Why a chapter could not run or finish, and how it reports progress.

use crate::train::{TrainError, TrainEvent};

/// Why a chapter could not run or finish.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum LabError {
    /// Bad parameters, or data the chapter cannot use; found before any work.
    #[error("{0}")]
    Params(String),
    /// Training stopped.
    #[error(transparent)]
    Train(#[from] TrainError),
    /// An analysis step rejected its input.
    #[error("{0}")]
    Analysis(String),
    /// A weights file could not be used.
    #[error("{0}")]
    Weights(String),
}

impl LabError {
    /// Whether this is a user cancel rather than a failure.
    pub fn is_cancel(&self) -> bool {
        matches!(self, LabError::Train(TrainError::Cancelled))
    }
}

/// Progress of a chapter run.
pub enum LabEvent<'a> {
    /// A named stage began; `fraction` is the chapter's overall progress in [0, 1].
    Stage {
        /// What is happening.
        name: &'a str,
        /// Overall progress.
        fraction: f64,
    },
    /// A training event within the named phase.
    Train {
        /// e.g. `train`, `probe`, `finetune`.
        phase: &'a str,
        /// The event.
        event: &'a TrainEvent,
    },
}
