//! Checks the CLIP preprocessing against open_clip's eval transform, recorded
//! by `scripts/make_clip_preprocess_fixtures.py` in
//! `tests/fixtures/clip_preprocess.json`: the 8-bit resized and cropped image
//! must match PIL exactly, and the normalised output must match open_clip.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by unwrapping

use replab::model::clip::preprocess::{CLIP_MEAN, CLIP_STD, clip_preprocess, resize_and_crop};
use serde::Deserialize;

const FIXTURE: &str = include_str!("fixtures/clip_preprocess.json");

#[derive(Deserialize)]
struct Fixture {
    pillow: String,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    channels: usize,
    height: usize,
    width: usize,
    size: usize,
    /// Planar (CHW) input pixels.
    input: Vec<u8>,
    /// 1 for grayscale inputs (the plane is copied to R, G and B), else 3.
    expected_planes: usize,
    expected_u8_hex: String,
    /// (flat planar index, open_clip's value).
    spots: Vec<(usize, f64)>,
}

/// A preprocessing stage: `(planar, channels, height, width, size)` to its output.
type Stage<T, E> = fn(&[u8], usize, usize, usize, usize) -> Result<Vec<T>, E>;

impl Case {
    /// Runs one stage of the preprocessing on this case's input.
    fn run<T, E: std::fmt::Debug>(&self, stage: Stage<T, E>) -> Vec<T> {
        stage(
            &self.input,
            self.channels,
            self.height,
            self.width,
            self.size,
        )
        .expect("valid input")
    }
}

fn from_hex(hex: &str) -> Vec<u8> {
    assert!(hex.len().is_multiple_of(2), "odd-length hex");
    hex.as_bytes()
        .chunks(2)
        .map(|pair| {
            let text = std::str::from_utf8(pair).expect("ascii hex");
            u8::from_str_radix(text, 16).expect("hex digit")
        })
        .collect()
}

fn load() -> Fixture {
    let fixture: Fixture = serde_json::from_str(FIXTURE).expect("fixture parses");
    assert!(!fixture.cases.is_empty());
    fixture
}

/// The planar RGB 8-bit image open_clip's ToTensor sees, from the fixture.
fn expected_rgb(case: &Case) -> Vec<u8> {
    let stored = from_hex(&case.expected_u8_hex);
    let plane = case.size * case.size;
    assert_eq!(stored.len(), case.expected_planes * plane, "{}", case.name);
    match case.expected_planes {
        3 => stored,
        1 => stored.repeat(3),
        n => panic!("{}: {n} expected planes", case.name),
    }
}

#[test]
fn resize_and_crop_matches_pil_exactly() {
    let fixture = load();
    for case in &fixture.cases {
        assert_eq!(
            case.input.len(),
            case.channels * case.height * case.width,
            "{}",
            case.name
        );
        let got = case.run(resize_and_crop);
        let want = expected_rgb(case);
        assert_eq!(got.len(), want.len(), "{}", case.name);
        let mismatches = got.iter().zip(&want).filter(|(a, b)| a != b).count();
        assert_eq!(
            mismatches,
            0,
            "{}: {mismatches} of {} 8-bit values differ from Pillow {}",
            case.name,
            want.len(),
            fixture.pillow
        );
    }
}

#[test]
fn normalised_output_matches_open_clip() {
    let fixture = load();
    let mut max_spot_diff = 0.0f64;
    let mut max_pixel_diff = 0.0f64;
    let mut spots_bit_equal = 0usize;
    let mut spots_total = 0usize;
    for case in &fixture.cases {
        let out = case.run(clip_preprocess);
        let plane = case.size * case.size;
        assert_eq!(out.len(), 3 * plane, "{}", case.name);

        // Spot values recorded from open_clip's transform.
        for &(index, want) in &case.spots {
            // The value is an f32 printed by Python; compare in f32, since
            // serde_json may be one f64 ulp off when it parses it.
            let got = out[index];
            let want = want as f32;
            let diff = f64::from((got - want).abs());
            assert!(
                diff <= 1e-6,
                "{}[{index}]: got {got}, open_clip {want}",
                case.name
            );
            max_spot_diff = max_spot_diff.max(diff);
            spots_bit_equal += usize::from(got.to_bits() == want.to_bits());
            spots_total += 1;
        }

        // Every value against ToTensor + Normalize of the reference 8-bit
        // image, evaluated in f64.
        let rgb = expected_rgb(case);
        for (i, (&got, &v)) in out.iter().zip(&rgb).enumerate() {
            let c = i / plane;
            let want = (f64::from(v) / 255.0 - f64::from(CLIP_MEAN[c])) / f64::from(CLIP_STD[c]);
            let diff = (f64::from(got) - want).abs();
            assert!(
                diff < 1.0 / 255.0,
                "{}[{i}]: got {got}, reference {want}",
                case.name
            );
            max_pixel_diff = max_pixel_diff.max(diff);
        }
    }
    println!(
        "max |diff| vs open_clip spot values: {max_spot_diff:e} ({spots_bit_equal}/{spots_total} bit-identical); \
         max |diff| vs f64 normalisation of PIL's 8-bit image: {max_pixel_diff:e}"
    );
    // f32 rounding only: far below one 8-bit step (~0.015 after normalising).
    assert!(max_pixel_diff < 1e-6);
}
