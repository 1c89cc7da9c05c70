//! Scatter plots of 2-D embeddings, with hover look-up.

use std::collections::BTreeSet;

use super::super::axes::{LinearScale, finite_range};
use super::super::palette::categorical;
use super::super::scene::{Anchor, Baseline, Prim, Scene, text_width, truncate_to_width};
use super::{
    BACKGROUND, Frame, INK, LABEL_SIZE, LEGEND_SIZE, MUTED, PAD, Size, TICK_LEN, TICK_SIZE,
    draw_axes, draw_title, widest_label, x_ticks, y_ticks,
};

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
#[cfg(test)]
mod tests {
    use super::super::super::palette::CATEGORICAL;
    use super::super::test_support::{assert_finite, names};
    use super::*;

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
}
