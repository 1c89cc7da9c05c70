//! The chapters of the walkthrough, one module each, and what they share: the
//! registry, the chapter interface, preparing the data, feature views, transfer and
//! the charts. The UI and the CLI are thin layers over this module.

pub mod autoencoding;
pub mod chapter;
pub mod charts;
pub mod clip;
pub mod conv_ae;
pub mod data;
pub mod dino;
pub mod error;
pub mod features;
pub mod figures;
pub mod linear_ae;
pub mod mlp_ae;
pub mod params;
pub mod pca;
pub mod pca_demo;
pub mod pipeline;
pub mod prepare;
pub mod registry;
pub mod saved;
pub mod simclr;
pub mod ssl;
pub mod supcon;
pub mod supervised;
pub mod transfer;

pub use chapter::{Chapter, ChapterOutput, ChapterResult, RunCtx};
pub use error::{LabError, LabEvent};
pub use params::LabParams;
pub use prepare::{Prepared, prepare};
pub use registry::{CHAPTERS, ChapterInfo, chapter, make_chapter};
// What the views need from the layers below, so `ui` depends on `lab` alone.
pub use crate::data::splits::SplitConfig;
pub use crate::data::{Dataset, Manifest};
pub use crate::train::{Control, RunControl, TrainEvent};

use crate::platform::Compute;
use std::sync::Arc;

/// Prepare the data for a chapter and run every check that can fail before any
/// work starts; the error names the parameter or file at fault.
pub fn plan(
    chapter: &dyn Chapter,
    dataset: Arc<Dataset>,
    params: &LabParams,
) -> Result<Prepared, LabError> {
    params.validate().map_err(LabError::Params)?;
    let prepared = prepare(dataset, params)?;
    chapter.validate(params, &prepared)?;
    Ok(prepared)
}

/// Check, then run a chapter: what both the page and `replab run` call.
pub async fn run(
    chapter: &mut dyn Chapter,
    dataset: Arc<Dataset>,
    params: &LabParams,
    compute: &Compute,
    control: &RunControl,
    observer: &mut dyn FnMut(LabEvent),
) -> Result<ChapterOutput, LabError> {
    let prepared = plan(chapter, dataset, params)?;
    chapter
        .run(RunCtx {
            prepared: &prepared,
            params,
            compute,
            control,
            observer,
        })
        .await
}
