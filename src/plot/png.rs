//! Software rasteriser: draws a [`Scene`] into an RGBA buffer and encodes it
//! as PNG.
//!
//! Shapes are filled and stroked with `tiny-skia` (anti-aliased), text is
//! drawn from the glyph outlines of the embedded Noto Sans font, and the
//! result is encoded with the `png` crate. Everything is pure Rust, so this
//! also works in the browser (e.g. for a "download PNG" button).

use ab_glyph::{Font, FontRef, OutlineCurve};
use tiny_skia::{
    FillRule, FilterQuality, IntSize, LineCap, LineJoin, Paint, PathBuilder, Pattern, Pixmap, Rect,
    SpreadMode, Stroke, StrokeDash, Transform,
};

use super::PlotError;
use super::scene::{Anchor, Baseline, DASH_PATTERN, Prim, Rgba, Scene};

/// Largest side, in device pixels, that [`render`] accepts.
pub const MAX_SIDE_PX: u32 = 16_384;

/// Outline width of [`Prim::Rect`] strokes, in scene pixels.
const RECT_STROKE: f32 = 1.0;
/// Outline width of [`Prim::Circle`] strokes, in scene pixels.
const CIRCLE_STROKE: f32 = 1.5;

/// A decoded, straight-alpha RGBA raster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgbaImage {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Row-major RGBA bytes, `width * height * 4` long.
    pub data: Vec<u8>,
}

/// Renders `scene` at its own size and returns the PNG file bytes.
pub fn render(scene: &Scene) -> Result<Vec<u8>, PlotError> {
    render_scaled(scene, 1.0)
}

/// Renders `scene` enlarged by `scale` (2.0 for a sharp high-DPI image) and
/// returns the PNG file bytes.
pub fn render_scaled(scene: &Scene, scale: f32) -> Result<Vec<u8>, PlotError> {
    let image = rasterize(scene, scale)?;
    encode_png(&image)
}

/// Draws `scene` enlarged by `scale` into an RGBA buffer.
pub fn rasterize(scene: &Scene, scale: f32) -> Result<RgbaImage, PlotError> {
    let invalid = || PlotError::InvalidSize {
        width: scene.width * scale,
        height: scene.height * scale,
    };
    let side = |v: f32| {
        let px = (v * scale).ceil();
        (px.is_finite() && px >= 1.0 && px <= MAX_SIDE_PX as f32).then_some(px as u32)
    };
    let (Some(width), Some(height)) = (side(scene.width), side(scene.height)) else {
        return Err(invalid());
    };
    let mut pixmap = Pixmap::new(width, height).ok_or_else(invalid)?;
    pixmap.fill(color(scene.background));

    let font = TextRenderer::new()?;
    let root = Transform::from_scale(scale, scale);
    for prim in &scene.prims {
        draw_prim(&mut pixmap, &font, root, prim)?;
    }
    Ok(RgbaImage {
        width,
        height,
        data: pixmap.take_demultiplied(),
    })
}

/// Encodes an RGBA buffer as an 8-bit RGBA PNG.
pub fn encode_png(image: &RgbaImage) -> Result<Vec<u8>, PlotError> {
    let mut out = Vec::new();
    let mut encoder = ::png::Encoder::new(&mut out, image.width, image.height);
    encoder.set_color(::png::ColorType::Rgba);
    encoder.set_depth(::png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&image.data)?;
    writer.finish()?;
    Ok(out)
}

/// Advance width of `text` at `size` pixels in the embedded font, exactly as
/// the renderer lays it out.
pub fn measure_text(text: &str, size: f32) -> Result<f32, PlotError> {
    Ok(TextRenderer::new()?.advance(text, size))
}

fn color(c: Rgba) -> tiny_skia::Color {
    tiny_skia::Color::from_rgba8(c.0, c.1, c.2, c.3)
}

fn solid(c: Rgba) -> Paint<'static> {
    let mut paint = Paint::default();
    paint.set_color_rgba8(c.0, c.1, c.2, c.3);
    paint.anti_alias = true;
    paint
}

fn stroke(width: f32, dashed: bool) -> Stroke {
    Stroke {
        width,
        line_cap: LineCap::Butt,
        line_join: LineJoin::Round,
        dash: if dashed {
            StrokeDash::new(DASH_PATTERN.to_vec(), 0.0)
        } else {
            None
        },
        ..Stroke::default()
    }
}

fn draw_prim(
    pixmap: &mut Pixmap,
    font: &TextRenderer<'_>,
    root: Transform,
    prim: &Prim,
) -> Result<(), PlotError> {
    match prim {
        Prim::Line {
            points,
            color,
            width,
            dashed,
        } => {
            if !(width.is_finite() && *width > 0.0) {
                return Ok(());
            }
            let mut pb = PathBuilder::new();
            let mut pen_down = false;
            for &[x, y] in points {
                if !(x.is_finite() && y.is_finite()) {
                    pen_down = false;
                } else if pen_down {
                    pb.line_to(x, y);
                } else {
                    pb.move_to(x, y);
                    pen_down = true;
                }
            }
            if let Some(path) = pb.finish() {
                pixmap.stroke_path(&path, &solid(*color), &stroke(*width, *dashed), root, None);
            }
        }
        Prim::Rect {
            x,
            y,
            w,
            h,
            fill,
            stroke: outline,
        } => {
            let Some(rect) = Rect::from_xywh(*x, *y, *w, *h) else {
                return Ok(());
            };
            if let Some(fill) = fill {
                pixmap.fill_rect(rect, &solid(*fill), root, None);
            }
            if let Some(outline) = outline {
                let path = PathBuilder::from_rect(rect);
                pixmap.stroke_path(
                    &path,
                    &solid(*outline),
                    &stroke(RECT_STROKE, false),
                    root,
                    None,
                );
            }
        }
        Prim::Circle {
            cx,
            cy,
            r,
            fill,
            stroke: outline,
        } => {
            let Some(path) = PathBuilder::from_circle(*cx, *cy, *r) else {
                return Ok(());
            };
            pixmap.fill_path(&path, &solid(*fill), FillRule::Winding, root, None);
            if let Some(outline) = outline {
                pixmap.stroke_path(
                    &path,
                    &solid(*outline),
                    &stroke(CIRCLE_STROKE, false),
                    root,
                    None,
                );
            }
        }
        Prim::Text {
            x,
            y,
            text,
            size,
            color,
            anchor,
            baseline,
            rotate,
        } => font.draw(
            pixmap,
            root,
            TextSpec {
                x: *x,
                y: *y,
                text,
                size: *size,
                color: *color,
                anchor: *anchor,
                baseline: *baseline,
                rotate: *rotate,
            },
        ),
        Prim::Image {
            x,
            y,
            w,
            h,
            width,
            height,
            rgba,
        } => draw_image(pixmap, root, [*x, *y, *w, *h], *width, *height, rgba)?,
    }
    Ok(())
}

/// Stretches an RGBA image onto `dest` (`[x, y, w, h]`) with
/// nearest-neighbour sampling.
fn draw_image(
    pixmap: &mut Pixmap,
    root: Transform,
    dest: [f32; 4],
    width: u32,
    height: u32,
    rgba: &[u8],
) -> Result<(), PlotError> {
    let expected = (width as usize)
        .checked_mul(height as usize)
        .and_then(|n| n.checked_mul(4));
    if expected != Some(rgba.len()) || width == 0 || height == 0 {
        return Err(PlotError::InvalidImage {
            width,
            height,
            expected: expected.unwrap_or(usize::MAX),
            actual: rgba.len(),
        });
    }
    let [x, y, w, h] = dest;
    let Some(rect) = Rect::from_xywh(x, y, w, h) else {
        return Ok(());
    };
    // tiny-skia stores premultiplied alpha.
    let premultiplied: Vec<u8> = rgba
        .chunks_exact(4)
        .flat_map(|p| {
            let a = u16::from(p[3]);
            let mul = |c: u8| ((u16::from(c) * a + 127) / 255) as u8;
            [mul(p[0]), mul(p[1]), mul(p[2]), p[3]]
        })
        .collect();
    let source = IntSize::from_wh(width, height)
        .and_then(|size| Pixmap::from_vec(premultiplied, size))
        .ok_or(PlotError::InvalidImage {
            width,
            height,
            expected: rgba.len(),
            actual: rgba.len(),
        })?;
    let placement = Transform::from_row(w / width as f32, 0.0, 0.0, h / height as f32, x, y);
    let paint = Paint {
        shader: Pattern::new(
            source.as_ref(),
            SpreadMode::Pad,
            FilterQuality::Nearest,
            1.0,
            placement,
        ),
        anti_alias: false,
        ..Paint::default()
    };
    pixmap.fill_rect(rect, &paint, root, None);
    Ok(())
}

/// Everything needed to draw one [`Prim::Text`].
struct TextSpec<'a> {
    x: f32,
    y: f32,
    text: &'a str,
    size: f32,
    color: Rgba,
    anchor: Anchor,
    baseline: Baseline,
    rotate: bool,
}

/// Lays out and fills text from the embedded font's outlines.
struct TextRenderer<'f> {
    font: FontRef<'f>,
    units_per_em: f32,
    /// Top of the em box above the baseline, as a fraction of the font size.
    em_ascent: f32,
}

impl TextRenderer<'static> {
    fn new() -> Result<Self, PlotError> {
        // Noto Sans Regular (SIL Open Font License 1.1, see `public/fonts/OFL.txt`):
        // built in natively, fetched once by the page (see `platform::font_bytes`).
        let bytes = crate::platform::font_bytes().ok_or(PlotError::Font)?;
        let font = FontRef::try_from_slice(bytes).map_err(|_| PlotError::Font)?;
        let units_per_em = font
            .units_per_em()
            .filter(|u| *u > 0.0)
            .ok_or(PlotError::Font)?;
        let (ascent, descent) = (font.ascent_unscaled(), font.descent_unscaled());
        let height = ascent - descent;
        // Browsers place the canvas em box by sharing the font size between
        // ascent and descent in proportion; do the same.
        let em_ascent = if height > 0.0 { ascent / height } else { 0.8 };
        Ok(TextRenderer {
            font,
            units_per_em,
            em_ascent,
        })
    }
}

impl TextRenderer<'_> {
    /// Advance width of `text` at `size` pixels, including kerning.
    fn advance(&self, text: &str, size: f32) -> f32 {
        let k = size / self.units_per_em;
        let mut pen = 0.0;
        let mut prev = None;
        for c in text.chars() {
            let id = self.font.glyph_id(c);
            if let Some(p) = prev {
                pen += self.font.kern_unscaled(p, id) * k;
            }
            pen += self.font.h_advance_unscaled(id) * k;
            prev = Some(id);
        }
        pen
    }

    fn draw(&self, pixmap: &mut Pixmap, root: Transform, spec: TextSpec<'_>) {
        let size = spec.size;
        if !(size.is_finite() && size > 0.0 && spec.x.is_finite() && spec.y.is_finite()) {
            return;
        }
        let k = size / self.units_per_em;
        let mut pb = PathBuilder::new();
        let mut pen = 0.0f32;
        let mut prev = None;
        for c in spec.text.chars() {
            let id = self.font.glyph_id(c);
            if let Some(p) = prev {
                pen += self.font.kern_unscaled(p, id) * k;
            }
            if let Some(outline) = self.font.outline(id) {
                // Font units have y up; the scene has y down.
                let pt = |p: ab_glyph::Point| (pen + p.x * k, -p.y * k);
                let mut last: Option<ab_glyph::Point> = None;
                for curve in &outline.curves {
                    let start = match curve {
                        OutlineCurve::Line(a, _)
                        | OutlineCurve::Quad(a, _, _)
                        | OutlineCurve::Cubic(a, _, _, _) => *a,
                    };
                    if last != Some(start) {
                        if last.is_some() {
                            pb.close();
                        }
                        let (sx, sy) = pt(start);
                        pb.move_to(sx, sy);
                    }
                    let end = match curve {
                        OutlineCurve::Line(_, b) => {
                            let (bx, by) = pt(*b);
                            pb.line_to(bx, by);
                            *b
                        }
                        OutlineCurve::Quad(_, c1, b) => {
                            let ((cx, cy), (bx, by)) = (pt(*c1), pt(*b));
                            pb.quad_to(cx, cy, bx, by);
                            *b
                        }
                        OutlineCurve::Cubic(_, c1, c2, b) => {
                            let ((ax, ay), (cx, cy), (bx, by)) = (pt(*c1), pt(*c2), pt(*b));
                            pb.cubic_to(ax, ay, cx, cy, bx, by);
                            *b
                        }
                    };
                    last = Some(end);
                }
                if last.is_some() {
                    pb.close();
                }
            }
            pen += self.font.h_advance_unscaled(id) * k;
            prev = Some(id);
        }
        let Some(path) = pb.finish() else {
            return;
        };
        let dx = match spec.anchor {
            Anchor::Start => 0.0,
            Anchor::Middle => -pen / 2.0,
            Anchor::End => -pen,
        };
        let dy = match spec.baseline {
            Baseline::Top => self.em_ascent * size,
            Baseline::Middle => (self.em_ascent - 0.5) * size,
            Baseline::Bottom => (self.em_ascent - 1.0) * size,
        };
        let mut transform = root.pre_translate(spec.x, spec.y);
        if spec.rotate {
            transform = transform.pre_rotate(-90.0);
        }
        let transform = transform.pre_translate(dx, dy);
        pixmap.fill_path(
            &path,
            &solid(spec.color),
            FillRule::Winding,
            transform,
            None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::charts::{
        ImageTile, Series, Size, confusion_heatmap, image_grid, line_chart, scatter, smooth_ema,
    };
    use super::super::palette::categorical;
    use super::super::scene::text_width;
    use super::*;
    use std::collections::HashSet;

    /// Decodes PNG bytes back into `(width, height, rgba)`.
    fn decode(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
        let decoder = ::png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(info.color_type, ::png::ColorType::Rgba);
        buf.truncate(info.buffer_size());
        (info.width, info.height, buf)
    }

    fn distinct_pixels(rgba: &[u8]) -> usize {
        rgba.chunks_exact(4)
            .map(|p| [p[0], p[1], p[2], p[3]])
            .collect::<HashSet<_>>()
            .len()
    }

    /// Writes a sample image when `REPLAB_PLOT_SAMPLES` names a folder, so a
    /// person can look at the output.
    fn save_sample(name: &str, bytes: &[u8]) {
        if let Some(dir) = std::env::var_os("REPLAB_PLOT_SAMPLES") {
            let path = std::path::Path::new(&dir).join(name);
            std::fs::write(&path, bytes).unwrap();
        }
    }

    fn organ_names() -> Vec<String> {
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
        .map(|s| s.to_string())
        .collect()
    }

    fn loss_chart() -> Scene {
        let train: Vec<[f64; 2]> = (1..=20)
            .map(|e| [f64::from(e), 2.3 * (-0.18 * f64::from(e)).exp() + 0.12])
            .collect();
        let dev: Vec<[f64; 2]> = (1..=20)
            .map(|e| [f64::from(e), 2.2 * (-0.15 * f64::from(e)).exp() + 0.25])
            .collect();
        let steps: Vec<[f64; 2]> = (0..400)
            .map(|s| {
                let t = f64::from(s) / 20.0;
                let noise = ((f64::from(s) * 12.9898).sin() * 43758.5453).fract() * 0.6;
                [t, 2.4 * (-0.17 * t).exp() + 0.1 + noise]
            })
            .collect();
        line_chart(
            "Training loss",
            "epoch",
            "cross-entropy",
            &[
                Series::new("train", train, categorical(0)),
                Series::new("dev", dev, categorical(1)).dashed(),
                Series::new("step (smoothed)", smooth_ema(&steps, 0.9), categorical(2)),
            ],
            Size::new(720.0, 400.0),
        )
    }

    fn heatmap() -> Scene {
        let n = 11;
        let matrix: Vec<Vec<f64>> = (0..n)
            .map(|r| {
                let mut row: Vec<f64> = (0..n)
                    .map(|c| {
                        if r == c {
                            6.0 + (r % 4) as f64
                        } else {
                            ((r * 7 + c * 3) % 5) as f64 * 0.3
                        }
                    })
                    .collect();
                let sum: f64 = row.iter().sum();
                row.iter_mut().for_each(|v| *v /= sum);
                row
            })
            .collect();
        confusion_heatmap(
            "OrganAMNIST confusion (test)",
            &matrix,
            &organ_names(),
            Size::new(640.0, 600.0),
        )
    }

    #[test]
    fn line_chart_renders_to_a_valid_png() {
        let scene = loss_chart();
        let bytes = render(&scene).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        save_sample("replab_line_chart.png", &bytes);
        let (w, h, rgba) = decode(&bytes);
        assert_eq!((w, h), (720, 400));
        assert!(distinct_pixels(&rgba) > 50, "image looks blank");
        // The corner is background.
        assert_eq!(&rgba[..4], &[255, 255, 255, 255]);

        let big = render_scaled(&scene, 2.0).unwrap();
        save_sample("replab_line_chart@2x.png", &big);
        assert_eq!(decode(&big).0, 1440);
    }

    #[test]
    fn heatmap_renders_to_a_valid_png() {
        let bytes = render(&heatmap()).unwrap();
        save_sample("replab_heatmap.png", &bytes);
        let (w, h, rgba) = decode(&bytes);
        assert_eq!((w, h), (640, 600));
        assert!(distinct_pixels(&rgba) > 50, "image looks blank");
    }

    #[test]
    fn scatter_and_grid_render() {
        let names = organ_names();
        let mut points = Vec::new();
        let mut labels = Vec::new();
        for i in 0..1100u32 {
            let k = (i % 11) as usize;
            let a = (i as f32) * 2.399;
            let r = ((i / 11) as f32).sqrt() * 0.35;
            let (cx, cy) = (
                (k as f32 * 0.571).cos() * 6.0,
                (k as f32 * 0.571).sin() * 6.0,
            );
            points.push([cx + r * a.cos(), cy + r * a.sin()]);
            labels.push(k);
        }
        let mut held = vec![false; 11];
        held[3] = true;
        held[9] = true;
        let (scene, _) = scatter(
            "UMAP of encoder features",
            &points,
            &labels,
            &names,
            &held,
            Size::new(760.0, 460.0),
        );
        let bytes = render(&scene).unwrap();
        save_sample("replab_scatter.png", &bytes);
        assert!(distinct_pixels(&decode(&bytes).2) > 50);

        let tiles: Vec<ImageTile> = (0..8)
            .map(|i| {
                let px: Vec<f32> = (0..28 * 28)
                    .map(|p| {
                        let (x, y) = ((p % 28) as f32 - 13.5, (p / 28) as f32 - 13.5);
                        let r = (x * x + y * y).sqrt();
                        if i % 2 == 0 {
                            (1.0 - r / (8.0 + i as f32)).max(0.0)
                        } else {
                            (x * 0.3 + i as f32).sin() * (-r / 10.0).exp()
                        }
                    })
                    .collect();
                if i % 2 == 0 {
                    ImageTile::from_gray(&px, 28, 28).with_caption(names[i].clone())
                } else {
                    ImageTile::from_signed(&px, 28, 28).with_caption(format!("PC{i}"))
                }
            })
            .collect();
        let titles = vec!["input".to_string(), "component".to_string()];
        let grid = image_grid(&tiles, 4, 84.0, &titles);
        let bytes = render(&grid).unwrap();
        save_sample("replab_grid.png", &bytes);
        let (w, _, rgba) = decode(&bytes);
        assert_eq!(w as f32, grid.width.ceil());
        assert!(distinct_pixels(&rgba) > 50);
    }

    #[test]
    fn images_use_nearest_neighbour_and_text_is_drawn() {
        // A 2x1 image (red, blue) stretched to 40x20: two flat halves.
        let mut scene = Scene::new(40.0, 20.0, Rgba::WHITE);
        scene.push(Prim::Image {
            x: 0.0,
            y: 0.0,
            w: 40.0,
            h: 20.0,
            width: 2,
            height: 1,
            rgba: vec![255, 0, 0, 255, 0, 0, 255, 255],
        });
        let img = rasterize(&scene, 1.0).unwrap();
        let px = |x: usize, y: usize| &img.data[(y * 40 + x) * 4..(y * 40 + x) * 4 + 4];
        assert_eq!(px(2, 10), &[255, 0, 0, 255]);
        assert_eq!(px(19, 10), &[255, 0, 0, 255]);
        assert_eq!(px(20, 10), &[0, 0, 255, 255]);
        assert_eq!(px(39, 19), &[0, 0, 255, 255]);

        let mut text = Scene::new(80.0, 30.0, Rgba::WHITE);
        text.text(
            40.0,
            15.0,
            "Ag",
            16.0,
            Rgba::BLACK,
            Anchor::Middle,
            Baseline::Middle,
        );
        let img = rasterize(&text, 1.0).unwrap();
        let dark = img.data.chunks_exact(4).filter(|p| p[0] < 128).count();
        assert!(dark > 20, "text left no ink");
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let zero = Scene::new(0.0, 10.0, Rgba::WHITE);
        assert!(matches!(render(&zero), Err(PlotError::InvalidSize { .. })));
        let nan = Scene::new(f32::NAN, 10.0, Rgba::WHITE);
        assert!(render(&nan).is_err());
        let huge = Scene::new(1e9, 10.0, Rgba::WHITE);
        assert!(render(&huge).is_err());
        assert!(render_scaled(&Scene::new(10.0, 10.0, Rgba::WHITE), f32::NAN).is_err());

        let mut scene = Scene::new(10.0, 10.0, Rgba::WHITE);
        scene.push(Prim::Image {
            x: 0.0,
            y: 0.0,
            w: 5.0,
            h: 5.0,
            width: 3,
            height: 3,
            rgba: vec![0; 5],
        });
        assert!(matches!(
            render(&scene),
            Err(PlotError::InvalidImage {
                expected: 36,
                actual: 5,
                ..
            })
        ));

        // Non-finite geometry is skipped quietly.
        let mut scene = Scene::new(10.0, 10.0, Rgba::WHITE);
        scene.line(vec![[f32::NAN, 1.0], [2.0, 2.0]], Rgba::BLACK, 1.0, false);
        scene.push(Prim::Circle {
            cx: f32::INFINITY,
            cy: 0.0,
            r: 2.0,
            fill: Rgba::BLACK,
            stroke: None,
        });
        scene.push(Prim::Rect {
            x: 0.0,
            y: 0.0,
            w: -4.0,
            h: f32::NAN,
            fill: Some(Rgba::BLACK),
            stroke: Some(Rgba::BLACK),
        });
        scene.text(
            f32::NAN,
            1.0,
            "x",
            12.0,
            Rgba::BLACK,
            Anchor::Start,
            Baseline::Top,
        );
        assert!(render(&scene).is_ok());
    }

    #[test]
    fn layout_estimate_tracks_the_real_font() {
        for text in [
            "bladder",
            "kidney-right",
            "Predicted",
            "0.25",
            "cross-entropy",
            "OrganAMNIST confusion (test)",
            "femur-left (held out)",
            "1000",
        ] {
            let real = measure_text(text, 12.0).unwrap();
            let guess = text_width(text, 12.0);
            let ratio = guess / real;
            assert!(
                (0.9..=1.12).contains(&ratio),
                "{text}: estimated {guess:.1}px, real {real:.1}px"
            );
        }
    }
}
