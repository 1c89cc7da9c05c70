//! Checks and data shared by the chart tests.

use super::super::scene::{Prim, Scene};

/// Every coordinate and size in the scene is finite.
pub(super) fn assert_finite(scene: &Scene) {
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

pub(super) fn names(n: usize) -> Vec<String> {
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
