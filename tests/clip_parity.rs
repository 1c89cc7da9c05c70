//! The CLIP image encoder against open_clip and transformers, with the random tiny
//! towers from `scripts/make_clip_fixtures.py`: convert, load, preprocess, embed.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by unwrapping

use burn::prelude::*;
use replab::model::clip::preprocess::clip_preprocess;
use replab::model::clip::vit::{ClipVision, WeightStore};
use replab::model::clip::weights::{ClipWeights, ConvertOptions, convert};
use replab::model::state::TensorMap;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/clip");

fn read(name: &str) -> Vec<u8> {
    std::fs::read(format!("{DIR}/{name}")).expect("fixture")
}

fn reference() -> TensorMap {
    TensorMap::from_safetensors(&read("reference.safetensors")).expect("reference")
}

/// Embed the reference's preprocessed pixels with a converted file.
fn embed(converted: &[u8], pixels: &[f32], shape: &[usize]) -> Vec<f32> {
    let device = Device::flex();
    let weights = ClipWeights::parse(converted).expect("parse");
    let store = if weights.is_quantized() {
        WeightStore::F16
    } else {
        WeightStore::F32
    };
    let model = ClipVision::load(&weights, weights.config(), store, &device).expect("load");
    let x: Tensor<4> = Tensor::from_data(
        TensorData::new(pixels.to_vec(), [shape[0], shape[1], shape[2], shape[3]]),
        &device,
    );
    model
        .forward(x)
        .into_data()
        .try_to_vec::<f32>()
        .expect("read")
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// The smallest cosine similarity between corresponding rows.
fn min_cosine(a: &[f32], b: &[f32], d: usize) -> f64 {
    a.chunks(d)
        .zip(b.chunks(d))
        .map(|(x, y)| {
            let dot: f64 = x.iter().zip(y).map(|(p, q)| *p as f64 * *q as f64).sum();
            let nx: f64 = x.iter().map(|p| (*p as f64).powi(2)).sum::<f64>().sqrt();
            let ny: f64 = y.iter().map(|p| (*p as f64).powi(2)).sum::<f64>().sqrt();
            dot / (nx * ny)
        })
        .fold(1.0, f64::min)
}

fn check(source: &str, want_key: &str, heads: Option<usize>, d: usize) {
    let src = read(source);
    let r = reference();
    let (shape, pixels) = r.raw("pixels").expect("pixels");
    let (_, want) = r.raw(want_key).expect("embedding");

    let f32_file = convert(
        &src,
        &ConvertOptions {
            quantize: false,
            heads,
            ..ConvertOptions::default()
        },
    )
    .expect("convert f32");
    let got = embed(&f32_file.bytes, pixels, shape);
    let diff = max_diff(&got, want);
    eprintln!("{source}: f32 max |diff| = {diff:e}");
    assert!(diff < 1e-4, "{source}: f32 max |diff| = {diff}");

    let int8_file = convert(
        &src,
        &ConvertOptions {
            heads,
            ..ConvertOptions::default()
        },
    )
    .expect("convert int8");
    let got = embed(&int8_file.bytes, pixels, shape);
    let cos = min_cosine(&got, want, d);
    eprintln!("{source}: int8 min cosine = {cos:.6}");
    assert!(cos >= 0.999, "{source}: int8 cosine {cos}");
}

#[test]
fn open_clip_tower_matches_in_f32_and_int8() {
    check("openclip_tiny.safetensors", "embedding_openclip", None, 32);
}

#[test]
fn hugging_face_tower_matches_in_f32_and_int8() {
    check("hf_tiny.safetensors", "embedding_hf", Some(2), 24);
}

/// Decode one of the fixture PNGs to planar uint8.
fn png_planar(name: &str) -> (Vec<u8>, usize, usize, usize) {
    let bytes = read(&format!("images/{name}"));
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().expect("png");
    let mut buf = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut buf).expect("frame");
    let (w, h) = (info.width as usize, info.height as usize);
    let c = match info.color_type {
        png::ColorType::Grayscale => 1,
        png::ColorType::Rgb => 3,
        other => panic!("unexpected {other:?}"),
    };
    let mut planar = vec![0; c * h * w];
    for i in 0..h * w {
        for ch in 0..c {
            planar[ch * h * w + i] = buf[i * c + ch];
        }
    }
    (planar, c, h, w)
}

#[test]
fn preprocessing_of_the_pngs_matches_open_clip_input() {
    let r = reference();
    let (shape, pixels) = r.raw("pixels").expect("pixels");
    let per = shape[1] * shape[2] * shape[3];
    let order = String::from_utf8(read("images/order.txt")).expect("order");
    let mut worst = 0.0f32;
    for (k, name) in order.lines().enumerate() {
        let (planar, c, h, w) = png_planar(name);
        let got = clip_preprocess(&planar, c, h, w, 224).expect("preprocess");
        worst = worst.max(max_diff(&got, &pixels[k * per..(k + 1) * per]));
    }
    eprintln!("preprocessing max |diff| = {worst:e}");
    // Within 1/255 per pixel before normalisation; in practice identical.
    assert!(worst < 1e-5, "preprocessing differs by {worst}");
}
