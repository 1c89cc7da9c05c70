//! Pausing, resuming and cancelling a run from anywhere, and why a run stopped.

use crate::platform;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

/// What the user wants the loop to do; checked before every step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// Keep going.
    Run,
    /// Wait without stepping.
    Pause,
    /// Stop at the next step boundary.
    Cancel,
}

/// A shareable handle to pause, resume or cancel a run.
#[derive(Clone, Debug, Default)]
pub struct RunControl {
    wanted: Arc<AtomicU8>,
    parked: Arc<AtomicBool>,
}

impl RunControl {
    /// Set the wanted state.
    pub fn set(&self, c: Control) {
        self.wanted.store(
            match c {
                Control::Run => 0,
                Control::Pause => 1,
                Control::Cancel => 2,
            },
            Ordering::SeqCst,
        );
    }

    /// The wanted state.
    pub fn get(&self) -> Control {
        match self.wanted.load(Ordering::SeqCst) {
            1 => Control::Pause,
            2 => Control::Cancel,
            _ => Control::Run,
        }
    }

    /// Whether the run has reached a checkpoint and is waiting there: everything
    /// before the pause has been reported, and nothing moves until it resumes.
    pub fn is_parked(&self) -> bool {
        self.parked.load(Ordering::SeqCst)
    }

    /// Wait while paused; `Err(Cancelled)` once cancelled.
    pub async fn checkpoint(&self) -> Result<(), TrainError> {
        loop {
            match self.get() {
                Control::Run => {
                    self.parked.store(false, Ordering::SeqCst);
                    return Ok(());
                }
                Control::Cancel => {
                    self.parked.store(false, Ordering::SeqCst);
                    return Err(TrainError::Cancelled);
                }
                Control::Pause => {
                    self.parked.store(true, Ordering::SeqCst);
                    platform::sleep_ms(50).await
                }
            }
        }
    }
}

/// Why a run stopped early.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum TrainError {
    /// The user cancelled; the weights are those of the last finished step.
    #[error("cancelled")]
    Cancelled,
    /// The loss became NaN or infinite.
    #[error(
        "the loss became {value} at epoch {epoch}, step {step}; training stopped and the weights from before that step are kept (try a lower learning rate)"
    )]
    NonFinite {
        /// 1-based epoch.
        epoch: usize,
        /// 1-based step within the epoch.
        step: usize,
        /// The value read.
        value: f64,
    },
    /// The device failed, e.g. a lost GPU.
    #[error("the compute device failed: {0}")]
    Device(String),
    /// Nothing to train on.
    #[error("{0}")]
    Data(String),
}
