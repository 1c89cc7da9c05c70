//! Chart builders: each turns data into a ready-to-draw [`Scene`].
//!
//! The builders do all layout themselves (margins, tick density, legend
//! placement, label truncation) using the estimated text metrics from
//! [`text_width`], so the same Scene looks the same in the browser and in a
//! PNG. They accept messy input — NaN, infinities, empty slices, mismatched
//! lengths — and always produce finite coordinates.
//!
//! - `lines`: [`line_chart`] and the [`smooth_ema`] helper;
//! - `scatter`: [`scatter`] plots with hover look-up ([`ScatterLayout`]);
//! - `heatmap`: the [`confusion_heatmap`];
//! - `images`: [`image_grid`] of [`ImageTile`]s.
//!
//! This file holds what they share: sizes, colours, margins and axes.

use super::axes::{LinearScale, Ticks, nice_ticks};
use super::scene::{Anchor, Baseline, Rgba, Scene, text_width, truncate_to_width};

mod heatmap;
mod images;
mod lines;
mod scatter;
#[cfg(test)]
mod test_support;

pub use heatmap::confusion_heatmap;
pub use images::{ImageTile, image_grid};
pub use lines::{Series, line_chart, line_chart_scaled, smooth_ema};
pub use scatter::{ScatterLayout, nearest_point, scatter};

/// Pixel size of a chart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Size {
    /// Width in pixels.
    pub width: f32,
    /// Height in pixels.
    pub height: f32,
}

impl Size {
    /// A size of `width` × `height` pixels.
    pub const fn new(width: f32, height: f32) -> Size {
        Size { width, height }
    }

    /// The size with each side made finite and kept between 64 and 8192
    /// pixels, so layout arithmetic never sees nonsense.
    fn sanitized(self) -> Size {
        let fix = |v: f32| {
            if v.is_finite() {
                v.clamp(MIN_SIDE, MAX_SIDE)
            } else {
                MIN_SIDE
            }
        };
        Size::new(fix(self.width), fix(self.height))
    }
}

const MIN_SIDE: f32 = 64.0;
const MAX_SIDE: f32 = 8192.0;

/// Page colour behind every chart.
pub const BACKGROUND: Rgba = Rgba::WHITE;
const INK: Rgba = Rgba::hex(0x1F2328);
const MUTED: Rgba = Rgba::hex(0x57606A);
const GRID: Rgba = Rgba::hex(0xE8EAED);
const AXIS: Rgba = Rgba::hex(0x8C959F);
const EMPTY_CELL: Rgba = Rgba::hex(0xE0E0E0);

const TITLE_SIZE: f32 = 15.0;
const LABEL_SIZE: f32 = 12.5;
const TICK_SIZE: f32 = 11.0;
const LEGEND_SIZE: f32 = 12.0;
const CAPTION_SIZE: f32 = 11.0;
const PAD: f32 = 10.0;
const TICK_LEN: f32 = 4.0;

/// Centre of the pixel row or column containing `v`, so 1 px lines are sharp.
fn crisp(v: f32) -> f32 {
    v.floor() + 0.5
}

/// The inner rectangle where data is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Frame {
    left: f32,
    top: f32,
    right: f32,
    bottom: f32,
}

impl Frame {
    fn width(&self) -> f32 {
        self.right - self.left
    }
    fn height(&self) -> f32 {
        self.bottom - self.top
    }
}

/// Adds the chart title centred at the top; returns the y below it.
fn draw_title(scene: &mut Scene, title: &str, width: f32) -> f32 {
    if title.trim().is_empty() {
        return PAD;
    }
    let text = truncate_to_width(title, TITLE_SIZE, width - 2.0 * PAD);
    scene.text(
        width / 2.0,
        PAD,
        text,
        TITLE_SIZE,
        INK,
        Anchor::Middle,
        Baseline::Top,
    );
    PAD + TITLE_SIZE * 1.3 + 4.0
}

/// Ticks whose labels fit side by side along `length` pixels.
fn x_ticks(lo: f64, hi: f64, length: f32) -> Ticks {
    let mut n = ((length / 70.0) as usize).clamp(2, 12);
    loop {
        let ticks = nice_ticks(lo, hi, n);
        let widest = ticks
            .labels()
            .iter()
            .map(|l| text_width(l, TICK_SIZE))
            .fold(0.0f32, f32::max);
        let needed = ticks.values.len() as f32 * (widest + 12.0);
        if needed <= length || n <= 2 {
            return ticks;
        }
        n -= 1;
    }
}

/// Ticks for a vertical axis of `length` pixels.
fn y_ticks(lo: f64, hi: f64, length: f32) -> Ticks {
    nice_ticks(lo, hi, ((length / 45.0) as usize).clamp(2, 10))
}

/// Width of the widest tick label.
fn widest_label(ticks: &Ticks) -> f32 {
    ticks
        .labels()
        .iter()
        .map(|l| text_width(l, TICK_SIZE))
        .fold(0.0, f32::max)
}

/// Grid lines, frame, tick marks and tick labels for a 2D plot.
fn draw_axes(
    scene: &mut Scene,
    frame: Frame,
    xt: &Ticks,
    yt: &Ticks,
    xs: &LinearScale,
    ys: &LinearScale,
) {
    for (&v, label) in xt.values.iter().zip(xt.labels()) {
        let x = crisp(xs.map(v));
        scene.line(vec![[x, frame.top], [x, frame.bottom]], GRID, 1.0, false);
        scene.line(
            vec![[x, frame.bottom], [x, frame.bottom + TICK_LEN]],
            AXIS,
            1.0,
            false,
        );
        scene.text(
            x,
            frame.bottom + TICK_LEN + 2.0,
            label,
            TICK_SIZE,
            MUTED,
            Anchor::Middle,
            Baseline::Top,
        );
    }
    for (&v, label) in yt.values.iter().zip(yt.labels()) {
        let y = crisp(ys.map(v));
        scene.line(vec![[frame.left, y], [frame.right, y]], GRID, 1.0, false);
        scene.line(
            vec![[frame.left - TICK_LEN, y], [frame.left, y]],
            AXIS,
            1.0,
            false,
        );
        scene.text(
            frame.left - TICK_LEN - 3.0,
            y,
            label,
            TICK_SIZE,
            MUTED,
            Anchor::End,
            Baseline::Middle,
        );
    }
    let (l, b) = (crisp(frame.left), crisp(frame.bottom));
    scene.line(
        vec![[l, frame.top], [l, b], [frame.right, b]],
        AXIS,
        1.0,
        false,
    );
}
