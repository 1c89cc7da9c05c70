//! Line charts.

use super::super::axes::{LinearScale, finite_range};
use super::super::scene::{Anchor, Baseline, Prim, Rgba, Scene, text_width, truncate_to_width};
use super::{
    BACKGROUND, Frame, INK, LABEL_SIZE, LEGEND_SIZE, MUTED, PAD, Size, TICK_LEN, TICK_SIZE,
    draw_axes, draw_title, widest_label, x_ticks, y_ticks,
};

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
    line_chart_scaled(title, x_label, y_label, series, size).0
}

/// [`line_chart`], also returning the x axis's pixel scale, so a page can turn a
/// pointer position back into a data value (hover on a curve).
pub fn line_chart_scaled(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    size: Size,
) -> (Scene, LinearScale) {
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
        return (scene, xs);
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
    (scene, xs)
}
#[cfg(test)]
mod tests {
    use super::super::super::palette::categorical;
    use super::super::GRID;
    use super::super::test_support::assert_finite;
    use super::*;

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
}
