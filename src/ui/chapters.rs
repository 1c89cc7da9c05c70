//! The views that belong to one chapter alone, by slug. A chapter without any uses
//! the shell as it is.

use leptos::prelude::*;

/// A chapter's own view, shown above its parameters, and what (if anything)
/// stops it from running yet.
pub struct Panel {
    /// The view.
    pub view: AnyView,
    /// Why Run is disabled, while something is missing.
    pub blocker: Signal<Option<String>>,
}

/// The chapter's own panel, if it has one.
pub fn panel(slug: &str) -> Option<Panel> {
    match slug {
        "clip" => Some(super::clip_panel::panel()),
        "pca" => Some(super::pca_panel::panel()),
        "simclr" => Some(super::ssl_panel::panel("simclr")),
        "dino" => Some(super::ssl_panel::panel("dino")),
        _ => None,
    }
}
