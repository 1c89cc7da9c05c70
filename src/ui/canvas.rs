//! Replaying a [`Scene`](crate::plot::Scene) onto a 2-D canvas.

use crate::plot::scene::{DASH_PATTERN, Prim, Scene, canvas_font};
use wasm_bindgen::{Clamped, JsCast, JsValue};
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement, ImageData};

/// Draw `scene` on `canvas`, sizing it for the device pixel ratio. Failures (no 2-D
/// context) leave the canvas blank rather than panicking.
pub fn draw(canvas: &HtmlCanvasElement, scene: &Scene) {
    let ratio = web_sys::window()
        .map(|w| w.device_pixel_ratio())
        .unwrap_or(1.0)
        .max(1.0);
    canvas.set_width((scene.width as f64 * ratio) as u32);
    canvas.set_height((scene.height as f64 * ratio) as u32);
    let style = canvas.style();
    let _ = style.set_property("width", &format!("{}px", scene.width));
    let _ = style.set_property("height", &format!("{}px", scene.height));
    let Some(ctx) = canvas
        .get_context("2d")
        .ok()
        .flatten()
        .and_then(|c| c.dyn_into::<CanvasRenderingContext2d>().ok())
    else {
        return;
    };
    let _ = ctx.set_transform(ratio, 0.0, 0.0, ratio, 0.0, 0.0);
    ctx.set_fill_style_str(&scene.background.css());
    ctx.fill_rect(0.0, 0.0, scene.width as f64, scene.height as f64);
    for prim in &scene.prims {
        draw_prim(&ctx, prim);
    }
}

fn draw_prim(ctx: &CanvasRenderingContext2d, prim: &Prim) {
    match prim {
        Prim::Line {
            points,
            color,
            width,
            dashed,
        } => {
            if points.len() < 2 {
                return;
            }
            ctx.begin_path();
            ctx.set_stroke_style_str(&color.css());
            ctx.set_line_width(*width as f64);
            ctx.set_line_cap("butt");
            ctx.set_line_join("round");
            let dash = js_sys::Array::new();
            if *dashed {
                for d in DASH_PATTERN {
                    dash.push(&JsValue::from_f64(d as f64));
                }
            }
            let _ = ctx.set_line_dash(&dash);
            ctx.move_to(points[0][0] as f64, points[0][1] as f64);
            for p in &points[1..] {
                ctx.line_to(p[0] as f64, p[1] as f64);
            }
            ctx.stroke();
        }
        Prim::Rect {
            x,
            y,
            w,
            h,
            fill,
            stroke,
        } => {
            if let Some(f) = fill {
                ctx.set_fill_style_str(&f.css());
                ctx.fill_rect(*x as f64, *y as f64, *w as f64, *h as f64);
            }
            if let Some(s) = stroke {
                ctx.set_stroke_style_str(&s.css());
                ctx.set_line_width(1.0);
                let _ = ctx.set_line_dash(&js_sys::Array::new());
                ctx.stroke_rect(*x as f64, *y as f64, *w as f64, *h as f64);
            }
        }
        Prim::Circle {
            cx,
            cy,
            r,
            fill,
            stroke,
        } => {
            ctx.begin_path();
            let _ = ctx.arc(
                *cx as f64,
                *cy as f64,
                *r as f64,
                0.0,
                std::f64::consts::TAU,
            );
            ctx.set_fill_style_str(&fill.css());
            ctx.fill();
            if let Some(s) = stroke {
                ctx.set_stroke_style_str(&s.css());
                ctx.set_line_width(1.5);
                let _ = ctx.set_line_dash(&js_sys::Array::new());
                ctx.stroke();
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
        } => {
            ctx.save();
            ctx.set_font(&canvas_font(*size));
            ctx.set_fill_style_str(&color.css());
            ctx.set_text_align(anchor.canvas_align());
            ctx.set_text_baseline(baseline.canvas_baseline());
            let _ = ctx.translate(*x as f64, *y as f64);
            if *rotate {
                let _ = ctx.rotate(-std::f64::consts::FRAC_PI_2);
            }
            let _ = ctx.fill_text(text, 0.0, 0.0);
            ctx.restore();
        }
        Prim::Image {
            x,
            y,
            w,
            h,
            width,
            height,
            rgba,
        } => {
            if rgba.len() != (*width as usize) * (*height as usize) * 4 || *width == 0 {
                return;
            }
            let Ok(data) =
                ImageData::new_with_u8_clamped_array_and_sh(Clamped(rgba), *width, *height)
            else {
                return;
            };
            // Draw at native size on a scratch canvas, then scale with smoothing off.
            let Some(doc) = web_sys::window().and_then(|w| w.document()) else {
                return;
            };
            let Some(scratch) = doc
                .create_element("canvas")
                .ok()
                .and_then(|e| e.dyn_into::<HtmlCanvasElement>().ok())
            else {
                return;
            };
            scratch.set_width(*width);
            scratch.set_height(*height);
            if let Some(sctx) = scratch
                .get_context("2d")
                .ok()
                .flatten()
                .and_then(|c| c.dyn_into::<CanvasRenderingContext2d>().ok())
            {
                let _ = sctx.put_image_data(&data, 0.0, 0.0);
                ctx.set_image_smoothing_enabled(false);
                let _ = ctx.draw_image_with_html_canvas_element_and_dw_and_dh(
                    &scratch, *x as f64, *y as f64, *w as f64, *h as f64,
                );
            }
        }
    }
}
