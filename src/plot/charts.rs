//! Chart builders: each turns data into a ready-to-draw [`Scene`].
//!
//! The builders do all layout themselves (margins, tick density, legend
//! placement, label truncation) using the estimated text metrics from
//! [`text_width`], so the same Scene looks the same in the browser and in a
//! PNG. They accept messy input — NaN, infinities, empty slices, mismatched
//! lengths — and always produce finite coordinates.

use std::collections::BTreeSet;

use super::axes::{LinearScale, Ticks, finite_range, nice_ticks};
use super::palette::{blues, categorical, contrast_text, diverging};
use super::scene::{Anchor, Baseline, Prim, Rgba, Scene, text_width, truncate_to_width};

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

// ---------------------------------------------------------------------------
// Line chart
// ---------------------------------------------------------------------------

/// One curve of a [`line_chart`].
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// `[x, y]` data points, drawn in the given order.
    pub points: Vec<[f64; 2]>,
    /// Line colour.
    pub color: Rgba,
    /// Draw the line dashed (e.g. for a validation curve).
    pub dashed: bool,
}

impl Series {
    /// A solid series.
    pub fn new(name: impl Into<String>, points: Vec<[f64; 2]>, color: Rgba) -> Series {
        Series {
            name: name.into(),
            points,
            color,
            dashed: false,
        }
    }

    /// The same series drawn dashed.
    pub fn dashed(mut self) -> Series {
        self.dashed = true;
        self
    }
}

/// Exponential moving average of the `y` values, with the start-up bias
/// corrected (as TensorBoard does), for smoothing noisy per-step losses.
///
/// `weight` is the share kept from the previous average, clamped to
/// `0..=0.999`; 0 returns the input unchanged. Points whose `y` is not finite
/// are dropped.
pub fn smooth_ema(points: &[[f64; 2]], weight: f64) -> Vec<[f64; 2]> {
    let w = if weight.is_finite() {
        weight.clamp(0.0, 0.999)
    } else {
        0.0
    };
    let mut avg = 0.0;
    let mut correction = 1.0;
    points
        .iter()
        .filter(|p| p[1].is_finite())
        .map(|&[x, y]| {
            avg = w * avg + (1.0 - w) * y;
            correction *= w;
            let debiased = if correction < 1.0 {
                avg / (1.0 - correction)
            } else {
                y
            };
            [x, debiased]
        })
        .collect()
}

/// Legend entry geometry for the horizontal legend of a line chart.
struct LegendItem {
    x: f32,
    y: f32,
    text: String,
}

const SWATCH_LEN: f32 = 22.0;
const LEGEND_GAP: f32 = 18.0;

/// Flows legend entries left to right, wrapping at `max_width`. Returns the
/// positions (relative to the block's top-left) and the block height.
fn flow_legend(names: &[&str], max_width: f32) -> (Vec<LegendItem>, f32) {
    let row_h = LEGEND_SIZE * 1.6;
    let mut items = Vec::with_capacity(names.len());
    let (mut x, mut y) = (0.0f32, 0.0f32);
    for name in names {
        let text = truncate_to_width(name, LEGEND_SIZE, (max_width - SWATCH_LEN - 6.0).max(0.0));
        let w = SWATCH_LEN + 6.0 + text_width(&text, LEGEND_SIZE);
        if x > 0.0 && x + w > max_width {
            x = 0.0;
            y += row_h;
        }
        items.push(LegendItem { x, y, text });
        x += w + LEGEND_GAP;
    }
    let height = if items.is_empty() { 0.0 } else { y + row_h };
    (items, height)
}

/// A line chart with axes, grid, tick labels, axis titles and a legend
/// above the plot (so it never covers a curve).
///
/// Non-finite points are skipped: a curve breaks at them and continues
/// after. Curves with at most 40 points also get a dot at every point, and
/// isolated points are always shown as dots. With no finite data at all the
/// axes span 0–1 and a "No data yet" note is shown.
pub fn line_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    size: Size,
) -> Scene {
    let size = size.sanitized();
    let mut scene = Scene::new(size.width, size.height, BACKGROUND);
    let mut top = draw_title(&mut scene, title, size.width);

    // Legend block under the title.
    let names: Vec<&str> = series.iter().map(|s| s.name.as_str()).collect();
    let (items, legend_h) = flow_legend(&names, size.width - 2.0 * PAD);
    let legend_w = items
        .iter()
        .map(|i| i.x + SWATCH_LEN + 6.0 + text_width(&i.text, LEGEND_SIZE))
        .fold(0.0, f32::max);
    let legend_left = ((size.width - legend_w) / 2.0).max(PAD);
    for (item, s) in items.iter().zip(series) {
        let cy = top + item.y + LEGEND_SIZE * 0.8;
        let x0 = legend_left + item.x;
        scene.line(
            vec![[x0, cy], [x0 + SWATCH_LEN, cy]],
            s.color,
            2.5,
            s.dashed,
        );
        scene.text(
            x0 + SWATCH_LEN + 6.0,
            cy,
            item.text.clone(),
            LEGEND_SIZE,
            INK,
            Anchor::Start,
            Baseline::Middle,
        );
    }
    if legend_h > 0.0 {
        top += legend_h + 6.0;
    }
    top += 4.0;

    // Data ranges over finite points only.
    let finite = || {
        series
            .iter()
            .flat_map(|s| s.points.iter())
            .filter(|p| p[0].is_finite() && p[1].is_finite())
    };
    let x_range = finite_range(finite().map(|p| p[0]));
    let y_range = finite_range(finite().map(|p| p[1]));
    let has_data = x_range.is_some();
    let (x0, x1) = x_range.unwrap_or((0.0, 1.0));
    let (y0, y1) = y_range.unwrap_or((0.0, 1.0));

    // Vertical layout first: it fixes the plot height, which fixes the y
    // ticks, whose label width then fixes the left margin.
    let x_title_h = if x_label.trim().is_empty() {
        0.0
    } else {
        LABEL_SIZE * 1.4
    };
    let bottom = size.height - PAD - x_title_h - TICK_LEN - TICK_SIZE * 1.4;
    let bottom = bottom.max(top + 10.0);
    let yt = y_ticks(y0, y1, bottom - top);
    let y_title_w = if y_label.trim().is_empty() {
        0.0
    } else {
        LABEL_SIZE * 1.4
    };
    let left = PAD + y_title_w + widest_label(&yt) + TICK_LEN + 5.0;
    // Leave room for half of the last x tick label.
    let right = size.width - PAD - 12.0;
    let frame = Frame {
        left: left.min(right - 10.0),
        top,
        right,
        bottom,
    };
    let xt = x_ticks(x0, x1, frame.width());
    let xs = LinearScale::new((xt.min, xt.max), (frame.left, frame.right));
    let ys = LinearScale::new((yt.min, yt.max), (frame.bottom, frame.top));
    draw_axes(&mut scene, frame, &xt, &yt, &xs, &ys);

    if !x_label.trim().is_empty() {
        scene.text(
            (frame.left + frame.right) / 2.0,
            size.height - PAD,
            truncate_to_width(x_label, LABEL_SIZE, frame.width()),
            LABEL_SIZE,
            INK,
            Anchor::Middle,
            Baseline::Bottom,
        );
    }
    if !y_label.trim().is_empty() {
        scene.push(Prim::Text {
            x: PAD,
            y: (frame.top + frame.bottom) / 2.0,
            text: truncate_to_width(y_label, LABEL_SIZE, frame.height()),
            size: LABEL_SIZE,
            color: INK,
            anchor: Anchor::Middle,
            baseline: Baseline::Top,
            rotate: true,
        });
    }

    if !has_data {
        scene.text(
            (frame.left + frame.right) / 2.0,
            (frame.top + frame.bottom) / 2.0,
            "No data yet",
            LABEL_SIZE,
            MUTED,
            Anchor::Middle,
            Baseline::Middle,
        );
        return scene;
    }

    for s in series {
        let finite_count = s
            .points
            .iter()
            .filter(|p| p[0].is_finite() && p[1].is_finite())
            .count();
        let dots = finite_count <= 40;
        let mut segment: Vec<[f32; 2]> = Vec::new();
        let mut segments: Vec<Vec<[f32; 2]>> = Vec::new();
        for p in &s.points {
            if p[0].is_finite() && p[1].is_finite() {
                segment.push([xs.map(p[0]), ys.map(p[1])]);
            } else if !segment.is_empty() {
                segments.push(std::mem::take(&mut segment));
            }
        }
        if !segment.is_empty() {
            segments.push(segment);
        }
        for seg in segments {
            if dots || seg.len() == 1 {
                for &[cx, cy] in &seg {
                    scene.push(Prim::Circle {
                        cx,
                        cy,
                        r: 2.5,
                        fill: s.color,
                        stroke: None,
                    });
                }
            }
            if seg.len() >= 2 {
                scene.line(seg, s.color, 2.0, s.dashed);
            }
        }
    }
    scene
}

// ---------------------------------------------------------------------------
// Scatter plot
// ---------------------------------------------------------------------------

/// Where each point of a [`scatter`] plot landed, for hover look-ups.
#[derive(Debug, Clone, PartialEq)]
pub struct ScatterLayout {
    /// Pixel centre of each input point; `None` for points that were not
    /// drawn (non-finite coordinates or no label).
    pub positions: Vec<Option<[f32; 2]>>,
    /// The plotting area as `[x, y, width, height]`.
    pub plot_area: [f32; 4],
    /// How far from a point's centre, in pixels, a hover still selects it.
    pub pick_radius: f32,
}

impl ScatterLayout {
    /// Index of the drawn point closest to `(px, py)` within `max_dist`
    /// pixels; ties go to the lower index.
    pub fn nearest(&self, px: f32, py: f32, max_dist: f32) -> Option<usize> {
        if !(px.is_finite() && py.is_finite()) {
            return None;
        }
        let limit = if max_dist.is_finite() {
            max_dist.max(0.0)
        } else {
            f32::MAX.sqrt()
        };
        let mut best: Option<(usize, f32)> = None;
        for (i, pos) in self.positions.iter().enumerate() {
            let Some([x, y]) = *pos else { continue };
            let d2 = (x - px).powi(2) + (y - py).powi(2);
            if d2 <= limit * limit && best.is_none_or(|(_, b)| d2 < b) {
                best = Some((i, d2));
            }
        }
        best.map(|(i, _)| i)
    }
}

/// Index of the point under the mouse at `(px, py)`, using the layout's
/// [`ScatterLayout::pick_radius`].
pub fn nearest_point(layout: &ScatterLayout, px: f32, py: f32) -> Option<usize> {
    layout.nearest(px, py, layout.pick_radius)
}

/// Legend text for class `k`.
fn class_name(class_names: &[String], k: usize) -> String {
    match class_names.get(k) {
        Some(name) if !name.trim().is_empty() => name.clone(),
        _ => format!("class {k}"),
    }
}

/// A scatter plot of 2D embeddings (UMAP, PCA) coloured by class, with a
/// legend of class names on the right.
///
/// `labels[i]` is the class of `points[i]`; only the first
/// `min(points.len(), labels.len())` points are drawn. `highlight[k]` marks
/// class `k` as held out: its points get a dark ring, are drawn on top, and
/// its legend entry says "(held out)". Returns the scene together with a
/// [`ScatterLayout`] for hover look-ups.
pub fn scatter(
    title: &str,
    points: &[[f32; 2]],
    labels: &[usize],
    class_names: &[String],
    highlight: &[bool],
    size: Size,
) -> (Scene, ScatterLayout) {
    let size = size.sanitized();
    let mut scene = Scene::new(size.width, size.height, BACKGROUND);
    let top = draw_title(&mut scene, title, size.width) + 4.0;
    let n = points.len().min(labels.len());
    let is_held_out = |k: usize| highlight.get(k).copied().unwrap_or(false);

    // Legend entries: every named class, plus any other label that occurs.
    let mut classes: BTreeSet<usize> = (0..class_names.len()).collect();
    classes.extend(labels[..n].iter().copied());
    let entries: Vec<(usize, String)> = classes
        .into_iter()
        .map(|k| {
            let name = class_name(class_names, k);
            let text = if is_held_out(k) {
                format!("{name} (held out)")
            } else {
                name
            };
            (k, text)
        })
        .collect();

    // Legend column on the right, shrinking its font when classes are many.
    let avail_h = size.height - top - PAD;
    let mut font = LEGEND_SIZE;
    let mut row_h = font * 1.55;
    while entries.len() as f32 * row_h > avail_h && font > 9.0 {
        font -= 0.5;
        row_h = font * 1.45;
    }
    let max_rows = ((avail_h / row_h).floor() as usize).max(1);
    let (shown, hidden) = if entries.len() > max_rows {
        (max_rows.saturating_sub(1), entries.len() - max_rows + 1)
    } else {
        (entries.len(), 0)
    };
    let swatch = 14.0;
    let max_text = size.width * 0.36 - swatch - 6.0;
    let texts: Vec<String> = entries[..shown]
        .iter()
        .map(|(_, t)| truncate_to_width(t, font, max_text.max(20.0)))
        .collect();
    let legend_w = texts
        .iter()
        .map(|t| swatch + 6.0 + text_width(t, font))
        .fold(0.0, f32::max);
    let legend_left = size.width - PAD - legend_w;
    let marker = |k: usize, cx: f32, cy: f32, r: f32| Prim::Circle {
        cx,
        cy,
        r,
        fill: categorical(k),
        stroke: is_held_out(k).then_some(INK),
    };
    for (row, ((k, _), text)) in entries.iter().zip(&texts).enumerate() {
        let cy = top + row as f32 * row_h + row_h / 2.0;
        scene.push(marker(*k, legend_left + swatch / 2.0, cy, 5.0));
        scene.text(
            legend_left + swatch + 6.0,
            cy,
            text.clone(),
            font,
            INK,
            Anchor::Start,
            Baseline::Middle,
        );
    }
    if hidden > 0 {
        let cy = top + shown as f32 * row_h + row_h / 2.0;
        scene.text(
            legend_left,
            cy,
            format!("+{hidden} more"),
            font,
            MUTED,
            Anchor::Start,
            Baseline::Middle,
        );
    }

    // Plot area: what is left after the legend.
    let xs_data = (0..n).filter_map(|i| {
        let p = points[i];
        (p[0].is_finite() && p[1].is_finite()).then_some(f64::from(p[0]))
    });
    let ys_data = (0..n).filter_map(|i| {
        let p = points[i];
        (p[0].is_finite() && p[1].is_finite()).then_some(f64::from(p[1]))
    });
    let pad_range = |r: Option<(f64, f64)>| {
        let (lo, hi) = r.unwrap_or((0.0, 1.0));
        let pad = (hi - lo) * 0.03;
        (lo - pad, hi + pad)
    };
    let (x0, x1) = pad_range(finite_range(xs_data));
    let (y0, y1) = pad_range(finite_range(ys_data));
    let bottom = size.height - PAD - TICK_LEN - TICK_SIZE * 1.4;
    let bottom = bottom.max(top + 10.0);
    let yt = y_ticks(y0, y1, bottom - top);
    let left = PAD + widest_label(&yt) + TICK_LEN + 5.0;
    let right = (legend_left - 18.0).max(left + 10.0);
    let frame = Frame {
        left,
        top,
        right,
        bottom,
    };
    let xt = x_ticks(x0, x1, frame.width());
    let xs = LinearScale::new((xt.min, xt.max), (frame.left, frame.right));
    let ys = LinearScale::new((yt.min, yt.max), (frame.bottom, frame.top));
    draw_axes(&mut scene, frame, &xt, &yt, &xs, &ys);

    let radius = match n {
        0..=300 => 4.0,
        301..=2000 => 3.0,
        2001..=10000 => 2.2,
        _ => 1.6,
    };
    let mut positions = vec![None; points.len()];
    // Held-out classes are drawn last so they stay visible.
    for pass_held_out in [false, true] {
        for i in 0..n {
            let (p, k) = (points[i], labels[i]);
            if is_held_out(k) != pass_held_out || !(p[0].is_finite() && p[1].is_finite()) {
                continue;
            }
            let (cx, cy) = (xs.map(f64::from(p[0])), ys.map(f64::from(p[1])));
            positions[i] = Some([cx, cy]);
            let prim = if pass_held_out {
                marker(k, cx, cy, radius + 1.5)
            } else {
                Prim::Circle {
                    cx,
                    cy,
                    r: radius,
                    fill: categorical(k).with_alpha(210),
                    stroke: None,
                }
            };
            scene.push(prim);
        }
    }
    if n == 0 {
        scene.text(
            (frame.left + frame.right) / 2.0,
            (frame.top + frame.bottom) / 2.0,
            "No points",
            LABEL_SIZE,
            MUTED,
            Anchor::Middle,
            Baseline::Middle,
        );
    }
    let layout = ScatterLayout {
        positions,
        plot_area: [frame.left, frame.top, frame.width(), frame.height()],
        pick_radius: (radius * 2.0).max(6.0),
    };
    (scene, layout)
}

// ---------------------------------------------------------------------------
// Confusion matrix
// ---------------------------------------------------------------------------

/// Label for row or column `k` of a heatmap.
fn axis_name(class_names: &[String], k: usize) -> String {
    match class_names.get(k) {
        Some(name) if !name.trim().is_empty() => name.clone(),
        _ => k.to_string(),
    }
}

/// A confusion-matrix heatmap: true classes down the left ("True"),
/// predicted classes along the bottom ("Predicted"), each cell coloured with
/// [`blues`] and annotated with its value to two decimals in black or white,
/// whichever contrasts more. A colour bar on the right shows the 0–1 scale.
///
/// Rows are expected to be normalised (each summing to 1); values outside
/// 0–1 are clamped for colouring but printed as they are. Missing or
/// non-finite cells are grey with a dash. Long class names are truncated;
/// column names turn vertical when they do not fit under their cell.
pub fn confusion_heatmap(
    title: &str,
    matrix: &[Vec<f64>],
    class_names: &[String],
    size: Size,
) -> Scene {
    let size = size.sanitized();
    let mut scene = Scene::new(size.width, size.height, BACKGROUND);
    let top = draw_title(&mut scene, title, size.width) + 4.0;
    let rows = matrix.len();
    let cols = matrix.iter().map(Vec::len).max().unwrap_or(0);
    if rows == 0 || cols == 0 {
        scene.text(
            size.width / 2.0,
            size.height / 2.0,
            "No data yet",
            LABEL_SIZE,
            MUTED,
            Anchor::Middle,
            Baseline::Middle,
        );
        return scene;
    }

    let row_names: Vec<String> = (0..rows).map(|k| axis_name(class_names, k)).collect();
    let col_names: Vec<String> = (0..cols).map(|k| axis_name(class_names, k)).collect();
    let widest = |names: &[String]| {
        names
            .iter()
            .map(|n| text_width(n, TICK_SIZE))
            .fold(0.0, f32::max)
    };

    // Colour bar and its labels on the right.
    let bar_w = 12.0;
    let bar_labels_w = text_width("0.00", TICK_SIZE) + 6.0;
    let right = size.width - PAD - bar_labels_w - bar_w - 14.0;

    // Left margin: rotated "True", then row names.
    let row_label_w = widest(&row_names).min(size.width * 0.28);
    let left = PAD + LABEL_SIZE * 1.4 + 4.0 + row_label_w + 6.0;

    // Bottom margin: horizontal column names if they fit, else vertical.
    let axis_title_h = LABEL_SIZE * 1.4;
    let cell_for = |bottom_margin: f32| {
        let avail_w = (right - left).max(1.0);
        let avail_h = (size.height - top - bottom_margin).max(1.0);
        (avail_w / cols as f32).min(avail_h / rows as f32)
    };
    let flat_bottom = PAD + axis_title_h + TICK_SIZE * 1.4 + 6.0;
    let mut cell = cell_for(flat_bottom);
    let col_label_w = widest(&col_names);
    let vertical = col_label_w > cell - 4.0;
    let col_label_len = if vertical {
        col_label_w.min(size.height * 0.28)
    } else {
        col_label_w
    };
    if vertical {
        cell = cell_for(PAD + axis_title_h + col_label_len + 8.0);
    }
    let cell = cell.max(1.0);
    let grid_w = cell * cols as f32;
    let grid_h = cell * rows as f32;
    let gx = left + ((right - left - grid_w) / 2.0).max(0.0);
    let gy = top;

    // Cells and annotations.
    let note_size = (cell * 0.3).min(13.0);
    let annotate = note_size >= 7.5;
    for (r, row) in matrix.iter().enumerate() {
        for c in 0..cols {
            let value = row.get(c).copied().filter(|v| v.is_finite());
            let fill = value.map_or(EMPTY_CELL, blues);
            let (x, y) = (gx + c as f32 * cell, gy + r as f32 * cell);
            scene.push(Prim::Rect {
                x,
                y,
                w: cell,
                h: cell,
                fill: Some(fill),
                stroke: Some(BACKGROUND),
            });
            if annotate {
                let text = value.map_or_else(|| "–".to_string(), |v| format!("{v:.2}"));
                scene.text(
                    x + cell / 2.0,
                    y + cell / 2.0,
                    text,
                    note_size,
                    contrast_text(fill),
                    Anchor::Middle,
                    Baseline::Middle,
                );
            }
        }
    }

    // Row names, right-aligned against the grid.
    for (r, name) in row_names.iter().enumerate() {
        scene.text(
            gx - 6.0,
            gy + (r as f32 + 0.5) * cell,
            truncate_to_width(name, TICK_SIZE, row_label_w),
            TICK_SIZE,
            INK,
            Anchor::End,
            Baseline::Middle,
        );
    }
    // Column names under the grid.
    for (c, name) in col_names.iter().enumerate() {
        let x = gx + (c as f32 + 0.5) * cell;
        let text = truncate_to_width(name, TICK_SIZE, col_label_len);
        scene.push(Prim::Text {
            x,
            y: gy + grid_h + 6.0,
            text,
            size: TICK_SIZE,
            color: INK,
            anchor: if vertical {
                Anchor::End
            } else {
                Anchor::Middle
            },
            baseline: if vertical {
                Baseline::Middle
            } else {
                Baseline::Top
            },
            rotate: vertical,
        });
    }
    let names_h = if vertical {
        col_label_len
    } else {
        TICK_SIZE * 1.4
    };
    scene.text(
        gx + grid_w / 2.0,
        gy + grid_h + 6.0 + names_h + 4.0,
        "Predicted",
        LABEL_SIZE,
        INK,
        Anchor::Middle,
        Baseline::Top,
    );
    scene.push(Prim::Text {
        x: gx - 6.0 - row_label_w - 6.0 - LABEL_SIZE * 1.3,
        y: gy + grid_h / 2.0,
        text: "True".to_string(),
        size: LABEL_SIZE,
        color: INK,
        anchor: Anchor::Middle,
        baseline: Baseline::Top,
        rotate: true,
    });

    // Colour bar: a 1-pixel-wide gradient image stretched to the grid height.
    let steps = 64u32;
    let mut gradient = Vec::with_capacity(steps as usize * 4);
    for i in 0..steps {
        let t = 1.0 - f64::from(i) / f64::from(steps - 1);
        let c = blues(t);
        gradient.extend_from_slice(&[c.0, c.1, c.2, 255]);
    }
    let bar_x = gx + grid_w + 14.0;
    scene.push(Prim::Image {
        x: bar_x,
        y: gy,
        w: bar_w,
        h: grid_h,
        width: 1,
        height: steps,
        rgba: gradient,
    });
    scene.push(Prim::Rect {
        x: bar_x,
        y: gy,
        w: bar_w,
        h: grid_h,
        fill: None,
        stroke: Some(AXIS),
    });
    for (t, label) in [(1.0f32, "1.0"), (0.5, "0.5"), (0.0, "0.0")] {
        scene.text(
            bar_x + bar_w + 4.0,
            gy + (1.0 - t) * grid_h,
            label,
            TICK_SIZE,
            MUTED,
            Anchor::Start,
            Baseline::Middle,
        );
    }
    scene
}

// ---------------------------------------------------------------------------
// Image grid
// ---------------------------------------------------------------------------

/// One image of an [`image_grid`].
#[derive(Debug, Clone, PartialEq)]
pub struct ImageTile {
    /// Row-major, straight-alpha RGBA bytes, `width * height * 4` long.
    pub rgba: Vec<u8>,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Optional text under the tile (a label, a prediction, an error).
    pub caption: Option<String>,
}

impl ImageTile {
    /// A greyscale tile from intensities in `0..=1` (clamped; NaN is black).
    /// If `values` is shorter than `width * height` the rest is black.
    pub fn from_gray(values: &[f32], width: u32, height: u32) -> ImageTile {
        let count = pixel_count(width, height);
        let mut rgba = Vec::with_capacity(count * 4);
        for i in 0..count {
            let v = values.get(i).copied().unwrap_or(0.0);
            let v = if v.is_nan() { 0.0 } else { v.clamp(0.0, 1.0) };
            let g = (v * 255.0).round() as u8;
            rgba.extend_from_slice(&[g, g, g, 255]);
        }
        ImageTile {
            rgba,
            width,
            height,
            caption: None,
        }
    }

    /// A tile for signed data such as a PCA component: values are divided by
    /// the largest magnitude and drawn with the [`diverging`] map (blue
    /// negative, white zero, red positive).
    pub fn from_signed(values: &[f32], width: u32, height: u32) -> ImageTile {
        let count = pixel_count(width, height);
        let scale = values
            .iter()
            .take(count)
            .filter(|v| v.is_finite())
            .fold(0.0f32, |m, v| m.max(v.abs()));
        let mut rgba = Vec::with_capacity(count * 4);
        for i in 0..count {
            let v = values.get(i).copied().unwrap_or(0.0);
            let t = if scale > 0.0 && v.is_finite() {
                f64::from(v / scale)
            } else {
                0.0
            };
            let c = diverging(t);
            rgba.extend_from_slice(&[c.0, c.1, c.2, 255]);
        }
        ImageTile {
            rgba,
            width,
            height,
            caption: None,
        }
    }

    /// The same tile with a caption.
    pub fn with_caption(mut self, caption: impl Into<String>) -> ImageTile {
        self.caption = Some(caption.into());
        self
    }

    /// Whether the pixel buffer matches the stated dimensions.
    pub fn is_valid(&self) -> bool {
        self.width > 0
            && self.height > 0
            && (self.width as usize)
                .checked_mul(self.height as usize)
                .and_then(|n| n.checked_mul(4))
                == Some(self.rgba.len())
    }
}

/// Largest tile, in pixels, that the `ImageTile` constructors will fill.
const MAX_TILE_PIXELS: usize = 1 << 24;

/// `width * height`, or 0 when that is absurdly large (the tile then comes
/// out empty, i.e. invalid, instead of exhausting memory).
fn pixel_count(width: u32, height: u32) -> usize {
    (width as usize)
        .checked_mul(height as usize)
        .filter(|&n| n <= MAX_TILE_PIXELS)
        .unwrap_or(0)
}

/// Lays images out in a grid of `columns` columns, each scaled (keeping its
/// aspect ratio, nearest-neighbour) to fit a `tile_px` square. Non-empty
/// `column_titles` are written above the columns; captions go under their
/// tile. The scene's size follows from the content. Tiles whose pixel data
/// does not match their dimensions are drawn as a crossed-out box.
pub fn image_grid(
    images: &[ImageTile],
    columns: usize,
    tile_px: f32,
    column_titles: &[String],
) -> Scene {
    let tile = if tile_px.is_finite() {
        tile_px.clamp(8.0, 1024.0)
    } else {
        64.0
    };
    let columns = columns.clamp(1, 256);
    let rows = images.len().div_ceil(columns);
    let gap = 8.0;
    let has_titles = column_titles.iter().any(|t| !t.trim().is_empty());
    let has_captions = images
        .iter()
        .any(|i| i.caption.as_ref().is_some_and(|c| !c.trim().is_empty()));
    let title_h = if has_titles { LABEL_SIZE * 1.5 } else { 0.0 };
    let caption_h = if has_captions {
        CAPTION_SIZE * 1.5
    } else {
        0.0
    };
    let cell_w = tile;
    let cell_h = tile + caption_h;
    let width = (2.0 * PAD + columns as f32 * cell_w + (columns as f32 - 1.0) * gap).min(MAX_SIDE);
    let height = (2.0 * PAD + title_h + rows.max(1) as f32 * (cell_h + gap) - gap).min(MAX_SIDE);
    let mut scene = Scene::new(width, height, BACKGROUND);

    for (c, title) in column_titles.iter().take(columns).enumerate() {
        if title.trim().is_empty() {
            continue;
        }
        scene.text(
            PAD + c as f32 * (cell_w + gap) + cell_w / 2.0,
            PAD,
            truncate_to_width(title, LABEL_SIZE, cell_w + gap - 2.0),
            LABEL_SIZE,
            INK,
            Anchor::Middle,
            Baseline::Top,
        );
    }
    if images.is_empty() {
        scene.text(
            width / 2.0,
            PAD + title_h + tile / 2.0,
            "No images",
            LABEL_SIZE,
            MUTED,
            Anchor::Middle,
            Baseline::Middle,
        );
        return scene;
    }

    for (i, img) in images.iter().enumerate() {
        let (r, c) = (i / columns, i % columns);
        let x = PAD + c as f32 * (cell_w + gap);
        let y = PAD + title_h + r as f32 * (cell_h + gap);
        if img.is_valid() {
            let (iw, ih) = (img.width as f32, img.height as f32);
            let s = (tile / iw).min(tile / ih);
            let (w, h) = (iw * s, ih * s);
            let (ix, iy) = (x + (tile - w) / 2.0, y + (tile - h) / 2.0);
            scene.push(Prim::Image {
                x: ix,
                y: iy,
                w,
                h,
                width: img.width,
                height: img.height,
                rgba: img.rgba.clone(),
            });
            scene.push(Prim::Rect {
                x: crisp(ix) - 1.0,
                y: crisp(iy) - 1.0,
                w: w.round() + 1.0,
                h: h.round() + 1.0,
                fill: None,
                stroke: Some(GRID),
            });
        } else {
            scene.push(Prim::Rect {
                x,
                y,
                w: tile,
                h: tile,
                fill: Some(Rgba::hex(0xF4F4F4)),
                stroke: Some(AXIS),
            });
            scene.line(vec![[x, y], [x + tile, y + tile]], AXIS, 1.0, false);
            scene.line(vec![[x + tile, y], [x, y + tile]], AXIS, 1.0, false);
        }
        if let Some(caption) = img.caption.as_ref().filter(|c| !c.trim().is_empty()) {
            scene.text(
                x + tile / 2.0,
                y + tile + 3.0,
                truncate_to_width(caption, CAPTION_SIZE, tile + gap - 2.0),
                CAPTION_SIZE,
                MUTED,
                Anchor::Middle,
                Baseline::Top,
            );
        }
    }
    scene
}

#[cfg(test)]
mod tests {
    use super::super::palette::{CATEGORICAL, contrast_ratio};
    use super::*;

    /// Every coordinate and size in the scene is finite.
    fn assert_finite(scene: &Scene) {
        assert!(scene.width.is_finite() && scene.height.is_finite());
        for p in &scene.prims {
            let ok = match p {
                Prim::Line { points, width, .. } => {
                    width.is_finite() && points.iter().flatten().all(|v| v.is_finite())
                }
                Prim::Rect { x, y, w, h, .. } | Prim::Image { x, y, w, h, .. } => {
                    [x, y, w, h].iter().all(|v| v.is_finite())
                }
                Prim::Circle { cx, cy, r, .. } => [cx, cy, r].iter().all(|v| v.is_finite()),
                Prim::Text { x, y, size, .. } => [x, y, size].iter().all(|v| v.is_finite()),
            };
            assert!(ok, "non-finite primitive {p:?}");
        }
    }

    fn names(n: usize) -> Vec<String> {
        [
            "bladder",
            "femur-left",
            "femur-right",
            "heart",
            "kidney-left",
            "kidney-right",
            "liver",
            "lung-left",
            "lung-right",
            "pancreas",
            "spleen",
        ]
        .iter()
        .cycle()
        .take(n)
        .map(|s| s.to_string())
        .collect()
    }

    #[test]
    fn line_chart_skips_non_finite_points() {
        let series = [
            Series::new(
                "train",
                vec![[1.0, 2.0], [2.0, f64::NAN], [3.0, 1.0], [4.0, 0.5]],
                categorical(0),
            ),
            Series::new(
                "dev",
                vec![[f64::INFINITY, 1.0], [1.0, 2.5], [2.0, 1.5]],
                categorical(1),
            )
            .dashed(),
        ];
        let scene = line_chart("Loss", "epoch", "loss", &series, Size::new(640.0, 360.0));
        assert_finite(&scene);
        let lines: Vec<_> = scene
            .prims
            .iter()
            .filter_map(|p| match p {
                Prim::Line {
                    points,
                    color,
                    dashed,
                    ..
                } if *color == categorical(0) || *color == categorical(1) => {
                    Some((points.len(), *dashed))
                }
                _ => None,
            })
            .collect();
        // Legend swatches (2 points each), train broken into [1] + [3,4],
        // dev as one segment of two points.
        assert!(lines.contains(&(2, true)));
        assert_eq!(lines.iter().filter(|(n, d)| *n == 2 && !d).count(), 2);
        let texts: Vec<&str> = scene.texts().collect();
        for t in ["Loss", "epoch", "loss", "train", "dev"] {
            assert!(texts.contains(&t), "missing {t}");
        }
    }

    #[test]
    fn line_chart_handles_degenerate_input() {
        let empty = line_chart("", "", "", &[], Size::new(0.0, f32::NAN));
        assert_finite(&empty);
        assert!(empty.texts().any(|t| t == "No data yet"));
        let flat = Series::new("flat", vec![[0.0, 1.0]; 3], categorical(0));
        let nan = Series::new("nan", vec![[f64::NAN, f64::NAN]], categorical(1));
        let scene = line_chart("t", "x", "y", &[flat, nan], Size::new(300.0, 200.0));
        assert_finite(&scene);
    }

    #[test]
    fn line_chart_legend_sits_above_the_plot() {
        let series: Vec<Series> = (0..6)
            .map(|i| {
                Series::new(
                    format!("series number {i}"),
                    vec![[0.0, 0.0], [1.0, f64::from(i)]],
                    categorical(i as usize),
                )
            })
            .collect();
        let scene = line_chart("t", "x", "y", &series, Size::new(400.0, 300.0));
        let legend_bottom = scene
            .prims
            .iter()
            .filter_map(|p| match p {
                Prim::Text { y, text, .. } if text.starts_with("series") => Some(*y + 8.0),
                _ => None,
            })
            .fold(0.0f32, f32::max);
        // The frame's top is where the grid lines start.
        let plot_top = scene
            .prims
            .iter()
            .filter_map(|p| match p {
                Prim::Line { points, color, .. } if *color == GRID => {
                    points.iter().map(|q| q[1]).reduce(f32::min)
                }
                _ => None,
            })
            .fold(f32::MAX, f32::min);
        assert!(legend_bottom <= plot_top, "{legend_bottom} > {plot_top}");
    }

    #[test]
    fn ema_smoothing_is_debiased() {
        let pts = [[0.0, 4.0], [1.0, f64::NAN], [2.0, 4.0], [3.0, 4.0]];
        let s = smooth_ema(&pts, 0.9);
        assert_eq!(s.len(), 3);
        assert!(s.iter().all(|p| (p[1] - 4.0).abs() < 1e-9));
        assert_eq!(smooth_ema(&pts, 0.0).len(), 3);
        assert_eq!(smooth_ema(&[], 0.5), Vec::<[f64; 2]>::new());
    }

    #[test]
    fn scatter_with_11_classes_uses_11_distinct_colours() {
        let classes = names(11);
        let mut points = Vec::new();
        let mut labels = Vec::new();
        for i in 0..220 {
            let k = i % 11;
            let a = i as f32 * 0.37;
            points.push([k as f32 * 3.0 + a.cos(), a.sin() * (k as f32 + 1.0)]);
            labels.push(k);
        }
        let (scene, layout) = scatter(
            "UMAP",
            &points,
            &labels,
            &classes,
            &[],
            Size::new(640.0, 420.0),
        );
        assert_finite(&scene);
        let fills: BTreeSet<(u8, u8, u8)> = scene
            .prims
            .iter()
            .filter_map(|p| match p {
                Prim::Circle { fill, .. } => Some((fill.0, fill.1, fill.2)),
                _ => None,
            })
            .collect();
        assert_eq!(fills.len(), 11);
        assert!(layout.positions.iter().all(Option::is_some));
        for name in &classes {
            assert!(scene.texts().any(|t| t == name), "legend lacks {name}");
        }
        assert!(CATEGORICAL.len() >= 11);
    }

    #[test]
    fn scatter_marks_held_out_classes() {
        let classes = names(3);
        let points = [[0.0, 0.0], [1.0, 1.0], [2.0, 0.5]];
        let labels = [0, 1, 2];
        let (scene, _) = scatter(
            "",
            &points,
            &labels,
            &classes,
            &[false, true],
            Size::new(500.0, 300.0),
        );
        assert!(scene.texts().any(|t| t == "femur-left (held out)"));
        assert!(!scene.texts().any(|t| t == "bladder (held out)"));
        let ringed = scene
            .prims
            .iter()
            .filter(|p| matches!(p, Prim::Circle { stroke: Some(_), fill, .. } if *fill == categorical(1)))
            .count();
        // One legend marker and one data point.
        assert_eq!(ringed, 2);
    }

    #[test]
    fn nearest_point_finds_the_hovered_point() {
        let points = [[0.0, 0.0], [10.0, 10.0], [f32::NAN, 1.0], [5.0, 5.0]];
        let labels = [0, 1, 0, 2];
        let (_, layout) = scatter(
            "",
            &points,
            &labels,
            &names(3),
            &[],
            Size::new(600.0, 400.0),
        );
        assert_eq!(layout.positions[2], None);
        for i in [0, 1, 3] {
            let [x, y] = layout.positions[i].unwrap();
            assert_eq!(nearest_point(&layout, x + 1.0, y - 1.0), Some(i));
        }
        // Far from everything.
        assert_eq!(nearest_point(&layout, -500.0, -500.0), None);
        assert_eq!(nearest_point(&layout, f32::NAN, 0.0), None);
        // Any distance allowed.
        assert!(layout.nearest(-500.0, -500.0, f32::INFINITY).is_some());
        let [ax, ay, aw, ah] = layout.plot_area;
        for [x, y] in layout.positions.iter().flatten() {
            assert!(*x >= ax && *x <= ax + aw && *y >= ay && *y <= ay + ah);
        }
    }

    #[test]
    fn scatter_handles_degenerate_input() {
        let (scene, layout) = scatter("", &[], &[], &[], &[], Size::new(300.0, 200.0));
        assert_finite(&scene);
        assert!(layout.positions.is_empty());
        let pts = [[1.0, 1.0]; 5];
        let (scene, _) = scatter("", &pts, &[7, 7], &[], &[], Size::new(300.0, 200.0));
        assert_finite(&scene);
        assert!(scene.texts().any(|t| t == "class 7"));
        // Many classes in a small chart: the legend is cut short.
        let labels: Vec<usize> = (0..200).collect();
        let pts: Vec<[f32; 2]> = (0..200).map(|i| [i as f32, 0.0]).collect();
        let (scene, _) = scatter("", &pts, &labels, &[], &[], Size::new(300.0, 200.0));
        assert_finite(&scene);
        assert!(
            scene
                .texts()
                .any(|t| t.starts_with('+') && t.ends_with("more"))
        );
    }

    /// Pairs each heatmap cell with the annotation drawn at its centre.
    fn cells_and_notes(scene: &Scene) -> Vec<(Rgba, Rgba, String)> {
        let mut out = Vec::new();
        let mut last_fill = None;
        for p in &scene.prims {
            match p {
                Prim::Rect {
                    fill: Some(f),
                    stroke: Some(s),
                    ..
                } if *s == BACKGROUND => last_fill = Some(*f),
                Prim::Text { text, color, .. } => {
                    if let Some(f) = last_fill.take() {
                        out.push((f, *color, text.clone()));
                    }
                }
                _ => {}
            }
        }
        out
    }

    #[test]
    fn heatmap_annotations_contrast_with_cells() {
        let n = 11;
        let matrix: Vec<Vec<f64>> = (0..n)
            .map(|r| {
                (0..n)
                    .map(|c| if r == c { 0.9 } else { 0.1 / (n - 1) as f64 })
                    .collect()
            })
            .collect();
        let scene = confusion_heatmap("Confusion", &matrix, &names(n), Size::new(640.0, 560.0));
        assert_finite(&scene);
        let cells = cells_and_notes(&scene);
        assert_eq!(cells.len(), n * n);
        for (fill, text_color, _) in &cells {
            assert_eq!(*text_color, contrast_text(*fill));
            assert!(contrast_ratio(*fill, *text_color) >= 4.5);
        }
        assert!(
            cells
                .iter()
                .any(|(_, c, t)| t == "0.90" && *c == Rgba::WHITE)
        );
        assert!(
            cells
                .iter()
                .any(|(_, c, t)| t == "0.01" && *c == Rgba::BLACK)
        );
        let texts: Vec<&str> = scene.texts().collect();
        assert!(texts.contains(&"True") && texts.contains(&"Predicted"));
        assert!(texts.contains(&"kidney-right"));
    }

    #[test]
    fn heatmap_handles_ragged_and_empty_input() {
        let ragged = vec![vec![1.0], vec![0.25, f64::NAN, 0.75], vec![]];
        let scene = confusion_heatmap("", &ragged, &[], Size::new(300.0, 300.0));
        assert_finite(&scene);
        let cells = cells_and_notes(&scene);
        assert_eq!(cells.len(), 9);
        assert_eq!(cells.iter().filter(|(_, _, t)| t == "–").count(), 6);
        let empty = confusion_heatmap("", &[], &[], Size::new(300.0, 300.0));
        assert!(empty.texts().any(|t| t == "No data yet"));
        // Very long names are shortened.
        let long = vec!["an extremely long organ name for testing".to_string(); 2];
        let scene = confusion_heatmap("", &vec![vec![0.5; 2]; 2], &long, Size::new(300.0, 300.0));
        assert!(scene.texts().any(|t| t.ends_with('…')));
    }

    #[test]
    fn image_grid_sizes_itself_and_rejects_bad_tiles() {
        let gray: Vec<f32> = (0..28 * 28).map(|i| (i % 28) as f32 / 27.0).collect();
        let tiles = vec![
            ImageTile::from_gray(&gray, 28, 28).with_caption("liver"),
            ImageTile::from_signed(&gray, 28, 28),
            ImageTile {
                rgba: vec![0; 10],
                width: 28,
                height: 28,
                caption: None,
            },
        ];
        let titles = vec!["input".to_string(), "reconstruction".to_string()];
        let scene = image_grid(&tiles, 2, 56.0, &titles);
        assert_finite(&scene);
        assert_eq!(scene.width, 2.0 * PAD + 2.0 * 56.0 + 8.0);
        let images = scene
            .prims
            .iter()
            .filter(|p| matches!(p, Prim::Image { .. }))
            .count();
        assert_eq!(images, 2);
        assert!(tiles[0].is_valid() && !tiles[2].is_valid());
        assert!(!ImageTile::from_gray(&[], u32::MAX, u32::MAX).is_valid());
        assert!(scene.texts().any(|t| t == "liver"));
        let empty = image_grid(&[], 0, f32::NAN, &[]);
        assert_finite(&empty);
    }
}
