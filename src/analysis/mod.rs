//! Analysis on plain arrays: the converged linear probe, classification metrics,
//! PCA and UMAP layouts. Only the randomized PCA touches a device (for its
//! products with the data); everything else runs on the host, the same everywhere.

pub mod metrics;
pub mod pca;
pub mod probe;
pub mod umap;
