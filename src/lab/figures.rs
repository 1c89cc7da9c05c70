//! Figures the unsupervised chapters share: images made from vectors (reconstructions,
//! components), a signed matrix as a picture, and the curves PCA and the linear
//! autoencoder are compared with. Every builder returns a backend-free scene, so the
//! page and the CLI draw the same thing.

use super::charts::{Chart, chart};
use crate::plot::axes::LinearScale;
use crate::plot::charts::{ImageTile, Series, Size, image_grid, line_chart, line_chart_scaled};
use crate::plot::palette::{categorical, diverging};
use crate::plot::scene::Scene;

const WIDE: Size = Size::new(720.0, 320.0);

/// How a vector's values become grey levels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scale {
    /// Values are pixels in `[0, 1]`; anything outside is clipped.
    Clip,
    /// Stretch the vector's own minimum to black and maximum to white (the
    /// notebook's way of showing components, whose values are not pixels).
    MinMax,
}

/// A `channels × size × size` planar vector as an image tile.
pub fn tile(
    v: &[f32],
    channels: usize,
    size: usize,
    scale: Scale,
    caption: Option<String>,
) -> ImageTile {
    let plane = size * size;
    let (lo, hi) = match scale {
        Scale::Clip => (0.0, 1.0),
        Scale::MinMax => {
            let lo = v.iter().copied().fold(f32::INFINITY, f32::min);
            let hi = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            (lo, hi)
        }
    };
    let span = if hi - lo > 1e-12 { hi - lo } else { 1.0 };
    let level = |x: f32| -> u8 {
        let t = ((x - lo) / span).clamp(0.0, 1.0);
        if t.is_finite() {
            (t * 255.0).round() as u8
        } else {
            0
        }
    };
    let ok = v.len() == channels * plane && (channels == 1 || channels == 3);
    let mut rgba = Vec::with_capacity(if ok { plane * 4 } else { 0 });
    if ok {
        for p in 0..plane {
            let (r, g, b) = if channels == 3 {
                (level(v[p]), level(v[plane + p]), level(v[2 * plane + p]))
            } else {
                let g = level(v[p]);
                (g, g, g)
            };
            rgba.extend_from_slice(&[r, g, b, 255]);
        }
    }
    ImageTile {
        rgba,
        width: if ok { size as u32 } else { 0 },
        height: if ok { size as u32 } else { 0 },
        caption,
    }
}

/// Reconstructions above their originals, one column per image (the notebook's
/// layout). Both are `n × (channels·size²)` row-major in `[0, 1]`.
pub fn reconstruction_grid(
    recon: &[f32],
    original: &[f32],
    n: usize,
    channels: usize,
    size: usize,
    caption: &str,
) -> Scene {
    let d = channels * size * size;
    let mut tiles = Vec::with_capacity(2 * n);
    for i in 0..n {
        let r = recon.get(i * d..(i + 1) * d).unwrap_or(&[]);
        tiles.push(tile(
            r,
            channels,
            size,
            Scale::Clip,
            (i == 0).then(|| caption.to_string()),
        ));
    }
    for i in 0..n {
        let o = original.get(i * d..(i + 1) * d).unwrap_or(&[]);
        tiles.push(tile(
            o,
            channels,
            size,
            Scale::Clip,
            (i == 0).then(|| "original".to_string()),
        ));
    }
    image_grid(&tiles, n.max(1), 72.0, &[])
}

/// Reconstructions figure as a chart.
pub fn reconstruction_chart(
    name: &str,
    what: &str,
    recon: &[f32],
    original: &[f32],
    n: usize,
    (channels, size): (usize, usize),
) -> Chart {
    chart(
        name,
        format!("{what}: reconstructions (top) and the original images (bottom)"),
        reconstruction_grid(recon, original, n, channels, size, what),
    )
}

/// The first `show` rows of a `k × d` matrix as min-max normalised images in a
/// square-ish grid, captioned "PC 1", "PC 2", … with `prefix`.
pub fn component_grid(
    rows: &[f32],
    k: usize,
    (channels, size): (usize, usize),
    show: usize,
    prefix: &str,
) -> Scene {
    let d = channels * size * size;
    let n = k.min(show);
    let columns = ((n as f64).sqrt().ceil() as usize).max(1);
    let tiles: Vec<ImageTile> = (0..n)
        .map(|i| {
            let r = rows.get(i * d..(i + 1) * d).unwrap_or(&[]);
            tile(
                r,
                channels,
                size,
                Scale::MinMax,
                Some(format!("{prefix} {}", i + 1)),
            )
        })
        .collect();
    image_grid(&tiles, columns, 48.0, &[])
}

/// A square matrix with values in `[-1, 1]` as a picture: blue −1, white 0, red +1
/// (values outside are clipped), one pixel per cell, shown enlarged.
pub fn signed_matrix(m: &[f32], k: usize, caption: &str) -> Scene {
    let mut rgba = Vec::with_capacity(k * k * 4);
    for v in m.iter().take(k * k) {
        let c = diverging(f64::from(*v)); // clamps to −1..1, NaN white
        rgba.extend_from_slice(&[c.0, c.1, c.2, 255]);
    }
    let ok = rgba.len() == k * k * 4;
    let tile = ImageTile {
        rgba: if ok { rgba } else { Vec::new() },
        width: if ok { k as u32 } else { 0 },
        height: if ok { k as u32 } else { 0 },
        caption: Some(caption.to_string()),
    };
    image_grid(&[tile], 1, 384.0, &[])
}

/// `W Wᵀ` of a `k × d` matrix, row-major `k × k`.
pub fn gram(w: &[f32], k: usize, d: usize) -> Vec<f32> {
    let mut g = vec![0.0f32; k * k];
    for i in 0..k {
        let a = &w[i * d..(i + 1) * d];
        for j in i..k {
            let b = &w[j * d..(j + 1) * d];
            let s: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
            g[i * k + j] = s;
            g[j * k + i] = s;
        }
    }
    g
}

/// Cumulative explained variance against the number of components, with a marker
/// at `k` (the reconstruction slider) and the 90% line; with the x axis's scale,
/// for hover.
pub fn variance_curve(cumulative: &[f64], k: usize) -> (Scene, LinearScale) {
    let curve: Vec<[f64; 2]> = cumulative
        .iter()
        .enumerate()
        .map(|(i, v)| [(i + 1) as f64, *v])
        .collect();
    let top = cumulative.last().copied().unwrap_or(1.0).max(0.9);
    let n = cumulative.len().max(1) as f64;
    let mut series = vec![
        Series::new("cumulative explained variance", curve, categorical(0)),
        Series::new("90%", vec![[1.0, 0.9], [n, 0.9]], categorical(7)).dashed(),
    ];
    if let Some(v) = cumulative.get(k.saturating_sub(1)) {
        series.push(Series::new(
            format!("k = {k}: {:.1}%", v * 100.0),
            vec![[k as f64, 0.0], [k as f64, top.min(1.0)]],
            categorical(3),
        ));
    }
    line_chart_scaled(
        "Cumulative explained variance",
        "components k",
        "share of the variance",
        &series,
        WIDE,
    )
}

/// Principal angles (degrees) between the learned subspace and PCA's, per epoch:
/// the mean angle and the largest.
pub fn angles_chart(per_epoch: &[Vec<f64>]) -> Scene {
    let pick = |f: &dyn Fn(&[f64]) -> f64| -> Vec<[f64; 2]> {
        per_epoch
            .iter()
            .enumerate()
            .map(|(e, a)| [(e + 1) as f64, f(a).to_degrees()])
            .collect()
    };
    let mean = pick(&|a| a.iter().sum::<f64>() / a.len().max(1) as f64);
    let max = pick(&|a| a.iter().copied().fold(0.0, f64::max));
    let median = pick(&|a| {
        let mut v = a.to_vec();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    });
    line_chart(
        "Principal angles between the learned subspace and PCA's",
        "epoch",
        "angle (degrees)",
        &[
            Series::new("mean", mean, categorical(0)),
            Series::new("median", median, categorical(1)),
            Series::new("largest", max, categorical(2)).dashed(),
        ],
        WIDE,
    )
}

/// The augmentation gallery: the original image, then its views, `columns` a row.
/// `views` holds `n` images of `channels · size²` values in `[0, 1]`.
pub fn gallery_grid(original: &[f32], views: &[f32], channels: usize, size: usize) -> Scene {
    let d = channels * size * size;
    let mut tiles = vec![tile(
        original,
        channels,
        size,
        Scale::Clip,
        Some("original".into()),
    )];
    for (i, v) in views.chunks(d.max(1)).enumerate() {
        tiles.push(tile(
            v,
            channels,
            size,
            Scale::Clip,
            Some(format!("view {}", i + 1)),
        ));
    }
    image_grid(&tiles, 9, 64.0, &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_scale_and_refuse_bad_shapes() {
        let t = tile(&[0.0, 0.5, 1.0, 2.0], 1, 2, Scale::Clip, None);
        assert_eq!(
            t.rgba.iter().step_by(4).copied().collect::<Vec<_>>(),
            [0, 128, 255, 255]
        );
        let t = tile(&[-1.0, 0.0, 1.0, 3.0], 1, 2, Scale::MinMax, None);
        assert_eq!(
            t.rgba.iter().step_by(4).copied().collect::<Vec<_>>(),
            [0, 64, 128, 255]
        );
        assert!(tile(&[0.0; 3], 1, 2, Scale::Clip, None).rgba.is_empty());
    }

    #[test]
    fn gram_of_orthonormal_rows_is_identity() {
        let w = [1.0, 0.0, 0.0, 0.0, 0.6, 0.8];
        assert_eq!(gram(&w, 2, 3), vec![1.0, 0.0, 0.0, 1.0]);
    }
}
