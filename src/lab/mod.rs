//! The chapters of the walkthrough, one module each: a config, an async `run` that
//! reports to an observer, and a result with the same shape in the browser and in
//! `results.json`. The UI and the CLI are thin layers over this module.

pub mod charts;
pub mod clip;
pub mod common;
pub mod data;
pub mod params;
pub mod supcon;
pub mod supervised;

pub use common::{LabError, LabEvent, Prepared, prepare};
pub use params::LabParams;

/// A chapter of the walkthrough, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chapter {
    /// The route and CLI name, e.g. `supervised`.
    pub slug: &'static str,
    /// The sidebar title.
    pub title: &'static str,
    /// Whether replab implements it yet.
    pub built: bool,
}

/// Every chapter, in the order of the notebook.
pub const CHAPTERS: &[Chapter] = &[
    Chapter {
        slug: "data",
        title: "The data and the lab's splits",
        built: true,
    },
    Chapter {
        slug: "supervised",
        title: "Supervised representations",
        built: true,
    },
    Chapter {
        slug: "supcon",
        title: "Supervised contrastive learning",
        built: true,
    },
    Chapter {
        slug: "pca",
        title: "PCA",
        built: false,
    },
    Chapter {
        slug: "linear-ae",
        title: "A linear autoencoder against PCA",
        built: false,
    },
    Chapter {
        slug: "autoencoder",
        title: "MLP autoencoder",
        built: false,
    },
    Chapter {
        slug: "conv-ae",
        title: "Convolutional autoencoder",
        built: false,
    },
    Chapter {
        slug: "simclr",
        title: "SimCLR",
        built: false,
    },
    Chapter {
        slug: "dino",
        title: "DINO",
        built: false,
    },
    Chapter {
        slug: "clip",
        title: "CLIP ViT-B/32, frozen",
        built: true,
    },
    Chapter {
        slug: "board",
        title: "Comparison board",
        built: false,
    },
];

/// Look a chapter up by slug.
pub fn chapter(slug: &str) -> Option<&'static Chapter> {
    CHAPTERS.iter().find(|c| c.slug == slug)
}
