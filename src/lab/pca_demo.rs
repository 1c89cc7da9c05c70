//! The PCA chapter's 2-D demo: 200 points from a correlated Gaussian, their
//! principal axes drawn as arrows scaled by the standard deviation along them, the
//! same points in PC coordinates, and their 1-D projections on each component.
//! Axes keep equal scales, so orthogonal components look orthogonal.

use crate::analysis::pca::pca_2d;
use crate::data::rng::NumpyRng;
use crate::plot::palette::categorical;
use crate::plot::scene::{Anchor, Baseline, Prim, Rgba, Scene};

/// Points in a demo sample.
pub const POINTS: usize = 200;
/// The demo's covariance (the notebook's intent: strongly correlated, not axis-aligned).
pub const COVARIANCE: [[f64; 2]; 2] = [[3.0, 1.6], [1.6, 1.2]];

const SIDE: f32 = 320.0;
const BG: Rgba = Rgba(255, 255, 255, 255);
const INK: Rgba = Rgba(40, 40, 40, 255);
const GRID: Rgba = Rgba(200, 200, 200, 255);

/// A standard normal draw (Box–Muller on the generator's uniform doubles).
fn normal(rng: &mut NumpyRng) -> f64 {
    let u1 = rng.random().max(1e-300);
    let u2 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// `POINTS` draws from N(0, [`COVARIANCE`]) for `seed` (Cholesky factor times
/// independent normals).
pub fn sample(seed: u64) -> Vec<[f64; 2]> {
    let [[a, b], [_, c]] = COVARIANCE;
    let l11 = a.sqrt();
    let l21 = b / l11;
    let l22 = (c - l21 * l21).max(0.0).sqrt();
    let mut rng = NumpyRng::new(seed);
    (0..POINTS)
        .map(|_| {
            let (z1, z2) = (normal(&mut rng), normal(&mut rng));
            [l11 * z1, l21 * z1 + l22 * z2]
        })
        .collect()
}

/// Maps data coordinates to a square panel with equal scales on both axes.
struct Panel {
    x0: f32,
    y0: f32,
    side: f32,
    range: f64,
}

impl Panel {
    fn at(&self, p: [f64; 2]) -> [f32; 2] {
        let s = self.side as f64 / (2.0 * self.range);
        [
            self.x0 + (self.side as f64 / 2.0 + p[0] * s) as f32,
            self.y0 + (self.side as f64 / 2.0 - p[1] * s) as f32,
        ]
    }
}

fn frame(scene: &mut Scene, panel: &Panel, title: &str, x: &str, y: &str) {
    let (x0, y0, s) = (panel.x0, panel.y0, panel.side);
    scene.push(Prim::Rect {
        x: x0,
        y: y0,
        w: s,
        h: s,
        fill: None,
        stroke: Some(GRID),
    });
    scene.line(
        vec![[x0, y0 + s / 2.0], [x0 + s, y0 + s / 2.0]],
        GRID,
        1.0,
        false,
    );
    scene.line(
        vec![[x0 + s / 2.0, y0], [x0 + s / 2.0, y0 + s]],
        GRID,
        1.0,
        false,
    );
    scene.text(
        x0 + s / 2.0,
        y0 - 18.0,
        title,
        14.0,
        INK,
        Anchor::Middle,
        Baseline::Middle,
    );
    scene.text(
        x0 + s / 2.0,
        y0 + s + 12.0,
        x,
        11.0,
        INK,
        Anchor::Middle,
        Baseline::Middle,
    );
    scene.text(
        x0 - 10.0,
        y0 + s / 2.0,
        y,
        11.0,
        INK,
        Anchor::End,
        Baseline::Middle,
    );
}

fn dots(scene: &mut Scene, panel: &Panel, points: &[[f64; 2]], color: Rgba) {
    for p in points {
        let [cx, cy] = panel.at(*p);
        scene.push(Prim::Circle {
            cx,
            cy,
            r: 2.5,
            fill: Rgba(color.0, color.1, color.2, 150),
            stroke: None,
        });
    }
}

fn arrow(scene: &mut Scene, from: [f32; 2], to: [f32; 2], color: Rgba, label: &str) {
    scene.line(vec![from, to], color, 3.0, false);
    let (dx, dy) = (to[0] - from[0], to[1] - from[1]);
    let len = (dx * dx + dy * dy).sqrt().max(1e-6);
    let (ux, uy) = (dx / len, dy / len);
    let head = 10.0;
    let left = [
        to[0] - head * ux + 0.5 * head * uy,
        to[1] - head * uy - 0.5 * head * ux,
    ];
    let right = [
        to[0] - head * ux - 0.5 * head * uy,
        to[1] - head * uy + 0.5 * head * ux,
    ];
    scene.line(vec![left, to, right], color, 3.0, false);
    scene.text(
        to[0] + 8.0 * ux,
        to[1] + 8.0 * uy - 6.0,
        label,
        13.0,
        color,
        Anchor::Start,
        Baseline::Middle,
    );
}

/// The demo's picture: the data with its principal axes, the data in PC
/// coordinates, and the projections on PC1 and PC2.
pub fn scene(points: &[[f64; 2]]) -> Scene {
    let Ok(fit) = pca_2d(points) else {
        return Scene::new(SIDE, SIDE, BG);
    };
    let range = points
        .iter()
        .flat_map(|p| [p[0].abs(), p[1].abs()])
        .fold(1.0f64, f64::max)
        * 1.1;
    let gap = 70.0;
    let mut scene = Scene::new(3.0 * SIDE + 4.0 * gap, SIDE + 2.0 * gap + 40.0, BG);
    let (c1, c2) = (categorical(3), categorical(1));

    let data = Panel {
        x0: gap,
        y0: gap,
        side: SIDE,
        range,
    };
    frame(
        &mut scene,
        &data,
        "Data with its principal components",
        "x1",
        "x2",
    );
    dots(&mut scene, &data, points, categorical(0));
    let centre = data.at(fit.mean);
    for (i, (axis, sd)) in fit.axes.iter().zip(fit.std).enumerate() {
        let tip = [
            fit.mean[0] + 2.0 * sd * axis[0],
            fit.mean[1] + 2.0 * sd * axis[1],
        ];
        let (colour, name) = if i == 0 { (c1, "PC1") } else { (c2, "PC2") };
        arrow(&mut scene, centre, data.at(tip), colour, name);
    }

    let proj: Vec<[f64; 2]> = points
        .iter()
        .map(|p| {
            let (dx, dy) = (p[0] - fit.mean[0], p[1] - fit.mean[1]);
            let pc = |k: usize| dx * fit.axes[k][0] + dy * fit.axes[k][1];
            [pc(0), pc(1)]
        })
        .collect();
    let rotated = Panel {
        x0: 2.0 * gap + SIDE,
        y0: gap,
        side: SIDE,
        range,
    };
    frame(
        &mut scene,
        &rotated,
        "The same data in PC coordinates",
        "PC1",
        "PC2",
    );
    dots(&mut scene, &rotated, &proj, categorical(0));

    let x0 = 3.0 * gap + 2.0 * SIDE;
    scene.text(
        x0 + SIDE / 2.0,
        gap - 18.0,
        "Projections on each component",
        14.0,
        INK,
        Anchor::Middle,
        Baseline::Middle,
    );
    let s = SIDE as f64 / (2.0 * range);
    for (k, (colour, name)) in [(c1, "PC1"), (c2, "PC2")].into_iter().enumerate() {
        let y = gap + SIDE * (0.3 + 0.4 * k as f32);
        scene.line(vec![[x0, y], [x0 + SIDE, y]], GRID, 1.0, false);
        scene.text(
            x0 - 10.0,
            y,
            name,
            12.0,
            colour,
            Anchor::End,
            Baseline::Middle,
        );
        for p in &proj {
            let cx = x0 + (SIDE as f64 / 2.0 + p[k] * s) as f32;
            scene.push(Prim::Circle {
                cx,
                cy: y,
                r: 3.0,
                fill: Rgba(colour.0, colour.1, colour.2, 90),
                stroke: None,
            });
        }
        scene.text(
            x0 + SIDE / 2.0,
            y + 22.0,
            format!("standard deviation {:.2}", fit.std[k]),
            11.0,
            INK,
            Anchor::Middle,
            Baseline::Middle,
        );
    }
    scene
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_has_the_demo_covariance() {
        let p = sample(3);
        let n = p.len() as f64;
        let m = [
            p.iter().map(|q| q[0]).sum::<f64>() / n,
            p.iter().map(|q| q[1]).sum::<f64>() / n,
        ];
        let cov = |i: usize, j: usize| {
            p.iter().map(|q| (q[i] - m[i]) * (q[j] - m[j])).sum::<f64>() / (n - 1.0)
        };
        // 200 draws: the sample covariance is within a few standard errors.
        assert!((cov(0, 0) - 3.0).abs() < 0.8, "{}", cov(0, 0));
        assert!((cov(0, 1) - 1.6).abs() < 0.5, "{}", cov(0, 1));
        assert!((cov(1, 1) - 1.2).abs() < 0.35, "{}", cov(1, 1));
        assert_ne!(sample(3), sample(4));
    }
}
