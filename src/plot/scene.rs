//! Backend-independent drawing primitives.
//!
//! Every coordinate in a [`Scene`] is in CSS pixels with the origin at the
//! top-left corner and `y` growing downwards, exactly like a 2D canvas. A
//! backend only has to know how to draw five kinds of [`Prim`]; all layout
//! decisions have already been made by the chart builders.

use std::fmt::Write as _;

/// An sRGB colour with straight (not premultiplied) alpha, each channel 0–255.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Rgba(pub u8, pub u8, pub u8, pub u8);

impl Rgba {
    /// Opaque white.
    pub const WHITE: Rgba = Rgba(255, 255, 255, 255);
    /// Opaque black.
    pub const BLACK: Rgba = Rgba(0, 0, 0, 255);
    /// Fully transparent black.
    pub const TRANSPARENT: Rgba = Rgba(0, 0, 0, 0);

    /// An opaque colour from its red, green and blue channels.
    pub const fn rgb(r: u8, g: u8, b: u8) -> Rgba {
        Rgba(r, g, b, 255)
    }

    /// An opaque colour from a `0xRRGGBB` literal.
    pub const fn hex(rgb: u32) -> Rgba {
        Rgba((rgb >> 16) as u8, (rgb >> 8) as u8, rgb as u8, 255)
    }

    /// The same colour with its alpha channel replaced.
    pub const fn with_alpha(self, alpha: u8) -> Rgba {
        Rgba(self.0, self.1, self.2, alpha)
    }

    /// The alpha channel as a fraction in `0.0..=1.0`.
    pub fn alpha_f32(&self) -> f32 {
        f32::from(self.3) / 255.0
    }

    /// The colour as a CSS string such as `rgba(12,34,56,0.5)`, ready for a
    /// canvas `fillStyle` or `strokeStyle`.
    pub fn css(&self) -> String {
        let mut alpha = format!("{:.3}", self.alpha_f32());
        while alpha.ends_with('0') {
            alpha.pop();
        }
        if alpha.ends_with('.') {
            alpha.pop();
        }
        let mut out = String::with_capacity(24);
        // Writing into a String cannot fail.
        let _ = write!(out, "rgba({},{},{},{})", self.0, self.1, self.2, alpha);
        out
    }
}

/// Horizontal placement of a text run relative to its anchor point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Anchor {
    /// The text starts at the anchor (canvas `textAlign = "left"`).
    #[default]
    Start,
    /// The text is centred on the anchor (canvas `"center"`).
    Middle,
    /// The text ends at the anchor (canvas `"right"`).
    End,
}

impl Anchor {
    /// The matching value for a canvas `textAlign`.
    pub fn canvas_align(&self) -> &'static str {
        match self {
            Anchor::Start => "left",
            Anchor::Middle => "center",
            Anchor::End => "right",
        }
    }
}

/// Vertical placement of a text run relative to its anchor point.
///
/// These follow the canvas em-box baselines: `Top` puts the top of the em box
/// at the anchor, `Bottom` its bottom, `Middle` its centre.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Baseline {
    /// The anchor is at the top of the text.
    Top,
    /// The anchor is at the vertical centre of the text.
    #[default]
    Middle,
    /// The anchor is at the bottom of the text.
    Bottom,
}

impl Baseline {
    /// The matching value for a canvas `textBaseline`.
    pub fn canvas_baseline(&self) -> &'static str {
        match self {
            Baseline::Top => "top",
            Baseline::Middle => "middle",
            Baseline::Bottom => "bottom",
        }
    }
}

/// Dash pattern for dashed lines, in pixels: `[on, off]`. Backends should
/// use this for `setLineDash` so the browser and PNG output look alike.
pub const DASH_PATTERN: [f32; 2] = [6.0, 4.0];

/// Font family the charts are designed for. The PNG renderer embeds this
/// font; a browser backend can load the same file with `@font-face` and fall
/// back to a generic sans-serif face.
pub const FONT_FAMILY: &str = "'Noto Sans', sans-serif";

/// The canvas `font` shorthand for text of `size` pixels.
pub fn canvas_font(size: f32) -> String {
    format!("{size}px {FONT_FAMILY}")
}

/// One drawing primitive. Shapes are drawn in list order, later ones on top.
#[derive(Debug, Clone, PartialEq)]
pub enum Prim {
    /// An open polyline with butt caps and round joins. Fewer than two
    /// points draws nothing; a non-finite point breaks the line.
    Line {
        /// Vertices in pixel coordinates.
        points: Vec<[f32; 2]>,
        /// Stroke colour.
        color: Rgba,
        /// Stroke width in pixels.
        width: f32,
        /// Draw with [`DASH_PATTERN`] instead of a solid stroke.
        dashed: bool,
    },
    /// An axis-aligned rectangle with an optional fill and a 1 px outline.
    Rect {
        /// Left edge.
        x: f32,
        /// Top edge.
        y: f32,
        /// Width.
        w: f32,
        /// Height.
        h: f32,
        /// Interior colour, if filled.
        fill: Option<Rgba>,
        /// Outline colour, if outlined (1 px wide).
        stroke: Option<Rgba>,
    },
    /// A filled circle with an optional 1.5 px outline.
    Circle {
        /// Centre x.
        cx: f32,
        /// Centre y.
        cy: f32,
        /// Radius.
        r: f32,
        /// Interior colour.
        fill: Rgba,
        /// Outline colour, if outlined (1.5 px wide).
        stroke: Option<Rgba>,
    },
    /// A single line of text in [`FONT_FAMILY`].
    Text {
        /// Anchor x.
        x: f32,
        /// Anchor y.
        y: f32,
        /// The text itself; line breaks are not interpreted.
        text: String,
        /// Font size in pixels.
        size: f32,
        /// Fill colour.
        color: Rgba,
        /// Horizontal alignment relative to the anchor, along the text.
        anchor: Anchor,
        /// Vertical alignment relative to the anchor, across the text.
        baseline: Baseline,
        /// Rotate the text by -90° about the anchor so that it reads from
        /// bottom to top (y-axis titles). `anchor` and `baseline` then apply
        /// in the rotated frame.
        rotate: bool,
    },
    /// A raster image stretched onto a rectangle with nearest-neighbour
    /// sampling, so small images (28×28 scans) stay crisp when enlarged.
    Image {
        /// Left edge of the destination rectangle.
        x: f32,
        /// Top edge of the destination rectangle.
        y: f32,
        /// Destination width.
        w: f32,
        /// Destination height.
        h: f32,
        /// Source width in pixels.
        width: u32,
        /// Source height in pixels.
        height: u32,
        /// Row-major, straight-alpha RGBA bytes; `width * height * 4` long.
        rgba: Vec<u8>,
    },
}

/// A complete picture: a canvas size, a background colour and the primitives
/// to draw on top of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Scene {
    /// Width in pixels.
    pub width: f32,
    /// Height in pixels.
    pub height: f32,
    /// Colour that fills the whole canvas before anything is drawn.
    pub background: Rgba,
    /// Primitives, drawn in order.
    pub prims: Vec<Prim>,
}

impl Scene {
    /// An empty scene of the given size.
    pub fn new(width: f32, height: f32, background: Rgba) -> Scene {
        Scene {
            width,
            height,
            background,
            prims: Vec::new(),
        }
    }

    /// Appends a primitive.
    pub fn push(&mut self, prim: Prim) {
        self.prims.push(prim);
    }

    /// Appends a solid or dashed polyline.
    pub fn line(&mut self, points: Vec<[f32; 2]>, color: Rgba, width: f32, dashed: bool) {
        self.push(Prim::Line {
            points,
            color,
            width,
            dashed,
        });
    }

    /// Appends an unrotated text run.
    #[allow(clippy::too_many_arguments)]
    pub fn text(
        &mut self,
        x: f32,
        y: f32,
        text: impl Into<String>,
        size: f32,
        color: Rgba,
        anchor: Anchor,
        baseline: Baseline,
    ) {
        self.push(Prim::Text {
            x,
            y,
            text: text.into(),
            size,
            color,
            anchor,
            baseline,
            rotate: false,
        });
    }

    /// Iterates over the text of every [`Prim::Text`], in drawing order.
    pub fn texts(&self) -> impl Iterator<Item = &str> {
        self.prims.iter().filter_map(|p| match p {
            Prim::Text { text, .. } => Some(text.as_str()),
            _ => None,
        })
    }
}

/// Estimated advance width, in pixels, of `text` set at `size` pixels in
/// [`FONT_FAMILY`].
///
/// Chart layout has to work without access to a font (the browser measures
/// text only inside the canvas), so this uses per-character width classes
/// that approximate Noto Sans. It is meant for sizing margins and deciding
/// when to truncate, not for exact placement.
pub fn text_width(text: &str, size: f32) -> f32 {
    let em: f32 = text.chars().map(char_em).sum();
    em * size.max(0.0)
}

/// Approximate advance of one character, in ems.
fn char_em(c: char) -> f32 {
    match c {
        ' ' => 0.26,
        'i' | 'j' | 'l' | '.' | ',' | ':' | ';' | '!' | '\'' | '|' => 0.26,
        'I' | 'f' | 't' | 'r' | '(' | ')' | '[' | ']' | '/' | '-' => 0.34,
        '0'..='9' => 0.572,
        'm' | 'w' => 0.84,
        'M' | 'W' => 0.9,
        'A'..='Z' => 0.64,
        'a'..='z' => 0.55,
        '_' | '+' | '=' | '<' | '>' | '~' | '*' | '#' | '%' | '&' | '$' => 0.6,
        c if c.is_ascii() => 0.5,
        _ => 0.62,
    }
}

/// Shortens `text` with a trailing ellipsis so that its estimated width at
/// `size` stays within `max_width`. Returns the text unchanged when it fits.
pub fn truncate_to_width(text: &str, size: f32, max_width: f32) -> String {
    if text_width(text, size) <= max_width {
        return text.to_string();
    }
    let ellipsis = '…';
    let budget = max_width - char_em(ellipsis) * size;
    let mut out = String::new();
    let mut used = 0.0;
    for c in text.chars() {
        let w = char_em(c) * size;
        if used + w > budget {
            break;
        }
        used += w;
        out.push(c);
    }
    let trimmed = out.trim_end().len();
    out.truncate(trimmed);
    out.push(ellipsis);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn css_formats_alpha_as_fraction() {
        assert_eq!(Rgba(1, 2, 3, 255).css(), "rgba(1,2,3,1)");
        assert_eq!(Rgba(1, 2, 3, 0).css(), "rgba(1,2,3,0)");
        assert_eq!(Rgba(10, 20, 30, 128).css(), "rgba(10,20,30,0.502)");
        assert_eq!(Rgba::hex(0x0072B2), Rgba(0, 0x72, 0xB2, 255));
    }

    #[test]
    fn truncation_respects_width() {
        let long = "a very long class name that will not fit";
        let short = truncate_to_width(long, 12.0, 80.0);
        assert!(short.ends_with('…'));
        assert!(text_width(&short, 12.0) <= 80.0 + 0.01);
        assert_eq!(truncate_to_width("kidney", 12.0, 80.0), "kidney");
        // Degenerate widths still terminate and produce something short.
        assert_eq!(truncate_to_width(long, 12.0, 0.0), "…");
    }
}
