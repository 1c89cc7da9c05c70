//! Confusion-matrix heatmaps.

use super::super::palette::{blues, contrast_text};
use super::super::scene::{Anchor, Baseline, Prim, Scene, text_width, truncate_to_width};
use super::{
    AXIS, BACKGROUND, EMPTY_CELL, INK, LABEL_SIZE, MUTED, PAD, Size, TICK_SIZE, draw_title,
};

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
#[cfg(test)]
mod tests {
    use super::super::super::palette::contrast_ratio;
    use super::super::super::scene::Rgba;
    use super::super::test_support::{assert_finite, names};
    use super::*;

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
}
