//! Analysis on plain arrays: the converged linear probe, classification metrics and
//! UMAP layouts. Nothing here touches a device, so it runs the same everywhere.

pub mod metrics;
pub mod probe;
pub mod umap;
