//! Charts as data.
//!
//! A chart is built as a [`Scene`]: a flat list of drawing primitives
//! ([`Prim`]) in pixel coordinates with all layout already decided. The
//! scene knows nothing about where it will be shown. In the browser a small
//! adapter replays it onto a `CanvasRenderingContext2d`; natively
//! [`png::render`] rasterises it to PNG bytes. Because both backends draw the
//! same scene, the lab's charts look the same in both places, and the chart
//! logic can be unit-tested without a browser.
//!
//! - [`scene`]: the primitive types and a text-width estimate for layout.
//! - [`palette`]: class colours, the `blues` heatmap map, text contrast.
//! - [`axes`]: "nice" 1-2-5 ticks and linear scales.
//! - [`charts`]: line chart, scatter plot (with hover look-up), confusion
//!   heatmap and image grid builders.
//! - [`png`]: the software rasteriser and PNG encoder.
//!
//! # Drawing rules for backends
//!
//! - Primitives are drawn in order over a canvas filled with
//!   [`Scene::background`].
//! - Lines use butt caps, round joins, and [`DASH_PATTERN`] when dashed.
//!   Rectangle outlines are 1 px wide, circle outlines 1.5 px.
//! - Text uses [`FONT_FAMILY`] at the given pixel size; `anchor` maps to
//!   `textAlign` ([`Anchor::canvas_align`]) and `baseline` to `textBaseline`
//!   ([`Baseline::canvas_baseline`]). Rotated text is drawn after
//!   `translate(x, y); rotate(-PI / 2)` at the origin.
//! - Images are drawn with smoothing disabled (nearest neighbour).

pub mod axes;
pub mod charts;
pub mod palette;
pub mod png;
pub mod scene;

pub use axes::{LinearScale, Ticks, format_tick, nice_ticks};
pub use charts::{
    ImageTile, ScatterLayout, Series, Size, confusion_heatmap, image_grid, line_chart,
    nearest_point, scatter, smooth_ema,
};
pub use palette::{blues, categorical, contrast_text, diverging};
pub use scene::{Anchor, Baseline, DASH_PATTERN, FONT_FAMILY, Prim, Rgba, Scene, canvas_font};

/// Why a scene could not be turned into an image.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// The scene (times the scale factor) is empty, not finite, or larger
    /// than [`png::MAX_SIDE_PX`] on a side.
    #[error("cannot render a {width}x{height} pixel image (each side must be 1 to 16384 pixels)")]
    InvalidSize {
        /// Requested width in device pixels.
        width: f32,
        /// Requested height in device pixels.
        height: f32,
    },
    /// An image primitive's pixel buffer does not match its dimensions.
    #[error("a {width}x{height} image needs {expected} bytes of RGBA data but has {actual}")]
    InvalidImage {
        /// Stated image width.
        width: u32,
        /// Stated image height.
        height: u32,
        /// Bytes that the dimensions call for.
        expected: usize,
        /// Bytes actually supplied.
        actual: usize,
    },
    /// The font is not loaded (the page fetches it) or could not be read.
    #[error(
        "the font for chart labels is not loaded or could not be parsed (check that fonts/NotoSans-Regular.ttf is served)"
    )]
    Font,
    /// The PNG encoder failed.
    #[error("PNG encoding failed: {0}")]
    Encode(#[from] ::png::EncodingError),
}
