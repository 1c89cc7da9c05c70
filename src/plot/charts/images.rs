//! Grids of small images (samples, reconstructions, filters).

use super::super::palette::diverging;
use super::super::scene::{Anchor, Baseline, Prim, Rgba, Scene, truncate_to_width};
use super::{AXIS, BACKGROUND, CAPTION_SIZE, GRID, INK, LABEL_SIZE, MAX_SIDE, MUTED, PAD, crisp};

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
    use super::super::test_support::assert_finite;
    use super::*;

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
