//! Colours: a categorical palette for classes, sequential and diverging maps
//! for heatmaps and images, and a text-contrast helper.

use super::scene::Rgba;

/// Fourteen categorical colours for class labels.
///
/// The first eight start from the Okabe–Ito set (safe for the common forms
/// of colour blindness) with a deeper yellow that stays visible on white;
/// the rest were added by checking CIELAB distances against the earlier
/// entries under normal vision and simulated deuteranopia and protanopia.
/// Grey is kept late so the 11 OrganAMNIST classes never need it.
pub const CATEGORICAL: [Rgba; 14] = [
    Rgba::hex(0x0072B2), // blue
    Rgba::hex(0xE69F00), // orange
    Rgba::hex(0x009E73), // bluish green
    Rgba::hex(0xD55E00), // vermilion
    Rgba::hex(0x56B4E9), // sky blue
    Rgba::hex(0xCC79A7), // reddish purple
    Rgba::hex(0x332288), // indigo
    Rgba::hex(0xE3D94B), // yellow
    Rgba::hex(0x882255), // wine
    Rgba::hex(0x5E3C1E), // brown
    Rgba::hex(0x9ADFC4), // mint
    Rgba::hex(0xA05FD0), // violet
    Rgba::hex(0x8A8A8A), // grey
    Rgba::hex(0x1F4E2C), // forest green
];

/// Colour for class (or series) `index`; wraps around after
/// [`CATEGORICAL`]'s length.
pub fn categorical(index: usize) -> Rgba {
    CATEGORICAL[index % CATEGORICAL.len()]
}

/// Stops of the sequential blue map, from near-white to dark navy.
const BLUES: [(u8, u8, u8); 9] = [
    (0xF7, 0xFB, 0xFF),
    (0xDE, 0xEB, 0xF7),
    (0xC6, 0xDB, 0xEF),
    (0x9E, 0xCA, 0xE1),
    (0x6B, 0xAE, 0xD6),
    (0x42, 0x92, 0xC6),
    (0x21, 0x71, 0xB5),
    (0x08, 0x51, 0x9C),
    (0x08, 0x30, 0x6B),
];

/// Stops of the diverging map: blue for negative, white at zero, red for
/// positive.
const DIVERGING: [(u8, u8, u8); 7] = [
    (0x21, 0x66, 0xAC),
    (0x67, 0xA9, 0xCF),
    (0xD1, 0xE5, 0xF0),
    (0xF7, 0xF7, 0xF7),
    (0xFD, 0xDB, 0xC7),
    (0xEF, 0x8A, 0x62),
    (0xB2, 0x18, 0x2B),
];

/// Linear interpolation through evenly spaced colour stops; `t` is clamped
/// to `0..=1` and NaN counts as 0.
fn ramp(stops: &[(u8, u8, u8)], t: f64) -> Rgba {
    let Some(&last) = stops.last() else {
        return Rgba::BLACK;
    };
    let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
    let segments = stops.len().saturating_sub(1);
    if segments == 0 {
        return Rgba::rgb(last.0, last.1, last.2);
    }
    let pos = t * segments as f64;
    let i = (pos.floor() as usize).min(segments - 1);
    let f = pos - i as f64;
    let (a, b) = (stops[i], stops[i + 1]);
    let mix = |x: u8, y: u8| (f64::from(x) + (f64::from(y) - f64::from(x)) * f).round() as u8;
    Rgba::rgb(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Sequential white-to-navy colour map for values in `0..=1` (confusion
/// matrices, densities). Out-of-range values are clamped; NaN maps to the
/// lightest colour.
pub fn blues(t: f64) -> Rgba {
    ramp(&BLUES, t)
}

/// Diverging blue–white–red map for values in `-1..=1` (signed images such
/// as PCA components). Out-of-range values are clamped; NaN maps to white.
pub fn diverging(t: f64) -> Rgba {
    if t.is_nan() {
        return ramp(&DIVERGING, 0.5);
    }
    ramp(&DIVERGING, (t + 1.0) / 2.0)
}

/// WCAG relative luminance of an opaque colour, in `0..=1`.
pub fn luminance(c: Rgba) -> f64 {
    fn lin(v: u8) -> f64 {
        let s = f64::from(v) / 255.0;
        if s <= 0.04045 {
            s / 12.92
        } else {
            ((s + 0.055) / 1.055).powf(2.4)
        }
    }
    0.2126 * lin(c.0) + 0.7152 * lin(c.1) + 0.0722 * lin(c.2)
}

/// WCAG contrast ratio between two opaque colours, from 1 to 21.
pub fn contrast_ratio(a: Rgba, b: Rgba) -> f64 {
    let (la, lb) = (luminance(a), luminance(b));
    let (hi, lo) = if la >= lb { (la, lb) } else { (lb, la) };
    (hi + 0.05) / (lo + 0.05)
}

/// Black or white, whichever reads better on `background` (used for the
/// numbers written inside heatmap cells).
pub fn contrast_text(background: Rgba) -> Rgba {
    if contrast_ratio(background, Rgba::BLACK) >= contrast_ratio(background, Rgba::WHITE) {
        Rgba::BLACK
    } else {
        Rgba::WHITE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CIELAB coordinates of an sRGB colour (D65 white).
    fn lab(c: Rgba) -> [f64; 3] {
        fn lin(v: u8) -> f64 {
            let s = f64::from(v) / 255.0;
            if s <= 0.04045 {
                s / 12.92
            } else {
                ((s + 0.055) / 1.055).powf(2.4)
            }
        }
        let (r, g, b) = (lin(c.0), lin(c.1), lin(c.2));
        let x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047;
        let y = 0.2126 * r + 0.7152 * g + 0.0722 * b;
        let z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883;
        let f = |t: f64| {
            if t > 0.008856 {
                t.cbrt()
            } else {
                7.787 * t + 16.0 / 116.0
            }
        };
        [
            116.0 * f(y) - 16.0,
            500.0 * (f(x) - f(y)),
            200.0 * (f(y) - f(z)),
        ]
    }

    #[test]
    fn categorical_colours_are_clearly_distinct() {
        assert!(CATEGORICAL.len() >= 12);
        for (i, &a) in CATEGORICAL.iter().enumerate() {
            for &b in &CATEGORICAL[i + 1..] {
                let (la, lb) = (lab(a), lab(b));
                let d = la
                    .iter()
                    .zip(lb.iter())
                    .map(|(p, q)| (p - q).powi(2))
                    .sum::<f64>()
                    .sqrt();
                assert!(d > 20.0, "{a:?} and {b:?} are only {d:.1} apart");
            }
        }
        assert_eq!(categorical(0), categorical(CATEGORICAL.len()));
    }

    #[test]
    fn blues_goes_from_light_to_dark_and_clamps() {
        assert_eq!(blues(0.0), Rgba::rgb(0xF7, 0xFB, 0xFF));
        assert_eq!(blues(1.0), Rgba::rgb(0x08, 0x30, 0x6B));
        assert_eq!(blues(-3.0), blues(0.0));
        assert_eq!(blues(7.0), blues(1.0));
        assert_eq!(blues(f64::NAN), blues(0.0));
        let mut prev = f64::INFINITY;
        for i in 0..=20 {
            let l = luminance(blues(f64::from(i) / 20.0));
            assert!(l <= prev, "blues must darken monotonically");
            prev = l;
        }
    }

    #[test]
    fn diverging_is_white_in_the_middle() {
        assert_eq!(diverging(0.0), Rgba::rgb(0xF7, 0xF7, 0xF7));
        assert_eq!(diverging(f64::NAN), diverging(0.0));
        assert!(diverging(-1.0).2 > diverging(-1.0).0, "negative is blue");
        assert!(diverging(1.0).0 > diverging(1.0).2, "positive is red");
    }

    #[test]
    fn heatmap_text_has_contrast() {
        assert_eq!(contrast_text(blues(0.0)), Rgba::BLACK);
        assert_eq!(contrast_text(blues(1.0)), Rgba::WHITE);
        for i in 0..=100 {
            let bg = blues(f64::from(i) / 100.0);
            let fg = contrast_text(bg);
            assert!(
                contrast_ratio(bg, fg) >= 4.5,
                "text on {bg:?} has too little contrast"
            );
        }
        assert_eq!(contrast_text(Rgba::hex(0xE3D94B)), Rgba::BLACK);
        assert_eq!(contrast_text(Rgba::hex(0x332288)), Rgba::WHITE);
    }
}
