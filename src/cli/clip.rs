//! The CLIP commands: convert a checkpoint, embed PNGs, and time the encoder.

use anyhow::{Context, Result, anyhow, bail};
use burn::prelude::*;
use replab::model::clip::preprocess::clip_preprocess;
use replab::model::clip::vit::ClipVision;
use replab::model::clip::weights::MAX_FILE_BYTES as MAX_CLIP_BYTES;
use replab::model::clip::weights::{ConvertOptions, canonical_names, convert};
use replab::model::clip::{Activation, ClipVisionConfig};
use replab::model::safetensors::SafeTensorsWriter;
use replab::platform::{self, BackendPref, Compute};
use std::path::{Path, PathBuf};

/// `replab convert-clip SRC --out FILE`.
pub fn cmd_convert(
    src: &Path,
    out: &Path,
    no_quantize: bool,
    heads: Option<usize>,
    gelu: bool,
) -> Result<()> {
    let bytes = super::read_capped(src, MAX_CLIP_BYTES, "CLIP weights file")?;
    let opts = ConvertOptions {
        quantize: !no_quantize,
        heads,
        activation: if gelu {
            Activation::Gelu
        } else {
            Activation::QuickGelu
        },
    };
    let converted = convert(&bytes, &opts).map_err(|e| anyhow!("{}: {e}", src.display()))?;
    std::fs::write(out, &converted.bytes)
        .with_context(|| format!("cannot write {}", out.display()))?;
    let m = &converted.manifest;
    let c = &m.config;
    eprintln!(
        "wrote {} ({:.1} MB): {} layout, {}; image {} patch {} width {} layers {} heads {} mlp {} output {}",
        out.display(),
        converted.bytes.len() as f64 / 1e6,
        m.source_layout,
        m.quantization,
        c.image_size,
        c.patch_size,
        c.width,
        c.layers,
        c.heads,
        c.mlp_dim,
        c.output_dim
    );
    println!("{}", serde_json::to_string(m)?);
    Ok(())
}

/// A PNG as planar (CHW) uint8 with 1 or 3 channels.
fn read_png(path: &Path) -> Result<(Vec<u8>, usize, usize, usize)> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder
        .read_info()
        .with_context(|| format!("{} is not a PNG", path.display()))?;
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| anyhow!("{}: image too large", path.display()))?;
    let mut buf = vec![0u8; size];
    let info = reader
        .next_frame(&mut buf)
        .with_context(|| format!("cannot decode {}", path.display()))?;
    let (w, h) = (info.width as usize, info.height as usize);
    let src_c = match info.color_type {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        png::ColorType::Indexed => bail!("{}: palette PNGs are not supported", path.display()),
    };
    let c = if src_c <= 2 { 1 } else { 3 };
    let mut planar = vec![0u8; c * h * w];
    for (i, px) in buf.chunks_exact(src_c).take(h * w).enumerate() {
        for (ch, &v) in px.iter().take(c).enumerate() {
            if let Some(slot) = planar.get_mut(ch * h * w + i) {
                *slot = v;
            }
        }
    }
    Ok((planar, c, h, w))
}

fn compute(backend: &str) -> Result<Compute> {
    let pref: BackendPref = backend.parse().map_err(|e: String| anyhow!(e))?;
    let compute = platform::block_on(platform::select_compute(pref)).map_err(|e| anyhow!(e))?;
    eprintln!("backend: {} ({})", compute.kind.as_str(), compute.adapter);
    Ok(compute)
}

/// `replab clip-embed --weights FILE IMAGE...`: one JSON array per image.
pub fn cmd_embed(weights: &Path, images: &[PathBuf], backend: &str) -> Result<()> {
    let bytes = super::read_capped(weights, MAX_CLIP_BYTES, "CLIP weights file")?;
    let compute = compute(backend)?;
    let control = replab::train::RunControl::default();
    let model = platform::block_on(replab::lab::clip::load(
        &bytes,
        &compute,
        &control,
        &mut |_| {},
    ))
    .map_err(|e| anyhow!("{}: {e}", weights.display()))?;
    let size = model.config().image_size;
    for path in images {
        let (planar, c, h, w) = read_png(path)?;
        let pixels = clip_preprocess(&planar, c, h, w, size)
            .map_err(|e| anyhow!("{}: {e}", path.display()))?;
        let x: Tensor<4> =
            Tensor::from_data(TensorData::new(pixels, [1, 3, size, size]), &compute.device);
        let emb = model
            .vision
            .forward(x)
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .map_err(|e| anyhow!("reading the embedding back: {e:?}"))?;
        println!("{}", serde_json::to_string(&emb)?);
    }
    Ok(())
}

/// A random ViT-B/32 checkpoint in open_clip's layout, converted to int8 by the
/// real converter: loading it measures what loading the official file costs.
fn random_int8_vit_b32() -> Result<Vec<u8>> {
    let cfg = ClipVisionConfig::vit_b32();
    let mut writer = SafeTensorsWriter::new();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for (name, shape) in canonical_names(&cfg) {
        let n: usize = shape.iter().product();
        let fan_in = shape
            .get(1..)
            .map(|s| s.iter().product::<usize>())
            .unwrap_or(1)
            .max(1);
        let std = if shape.len() == 1 {
            0.02
        } else {
            (1.0 / fan_in as f64).sqrt()
        };
        let values: Vec<f32> = (0..n)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                // Uniform on [-√3, √3)·std has the wanted spread.
                let u = (state >> 11) as f64 / (1u64 << 53) as f64;
                ((u * 2.0 - 1.0) * 3f64.sqrt() * std) as f32
            })
            .collect();
        writer
            .add_f32(&format!("visual.{name}"), &shape, &values)
            .map_err(|e| anyhow!("{e}"))?;
    }
    let converted = convert(&writer.try_into_bytes()?, &ConvertOptions::default())?;
    Ok(converted.bytes)
}

/// `replab clip-bench`: images per second of the full ViT-B/32 (random weights
/// unless `--weights`), preprocessing excluded, after one warm-up batch.
pub fn cmd_bench(backend: &str, batch: usize, iters: usize, weights: Option<&Path>) -> Result<()> {
    let compute = compute(backend)?;
    let device = &compute.device;
    let t_load = std::time::Instant::now();
    let (model, cfg) = match weights {
        Some(path) => {
            let bytes = if path.as_os_str() == "random-int8" {
                random_int8_vit_b32()?
            } else {
                super::read_capped(path, MAX_CLIP_BYTES, "CLIP weights file")?
            };
            let control = replab::train::RunControl::default();
            let m = platform::block_on(replab::lab::clip::load(
                &bytes,
                &compute,
                &control,
                &mut |_| {},
            ))
            .map_err(|e| anyhow!("{}: {e}", path.display()))?;
            let cfg = m.config().clone();
            (m.vision, cfg)
        }
        None => {
            let cfg = ClipVisionConfig::vit_b32();
            (ClipVision::random(&cfg, device), cfg)
        }
    };
    let load_seconds = t_load.elapsed().as_secs_f64();
    let after_load = replab::lab::clip::device_bytes(device);
    let reserved_after_load = replab::lab::clip::device_reserved(device);
    let size = cfg.image_size;
    let x: Tensor<4> = Tensor::random(
        [batch.max(1), 3, size, size],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        device,
    );
    let run_once = |x: Tensor<4>| -> Result<f64> {
        let t0 = std::time::Instant::now();
        let v = model
            .forward(x)
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .map_err(|e| anyhow!("{e:?}"))?;
        if v.iter().any(|f| !f.is_finite()) {
            bail!("non-finite output");
        }
        Ok(t0.elapsed().as_secs_f64())
    };
    let warm = run_once(x.clone())?;
    let mut peak = replab::lab::clip::device_bytes(device);
    let mut peak_reserved = replab::lab::clip::device_reserved(device);
    let mut times = Vec::new();
    for _ in 0..iters.max(1) {
        times.push(run_once(x.clone())?);
        peak = peak.max(replab::lab::clip::device_bytes(device));
        peak_reserved = peak_reserved.max(replab::lab::clip::device_reserved(device));
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let ips = batch.max(1) as f64 / median;
    let report = serde_json::json!({
        "backend": compute.kind.as_str(),
        "adapter": compute.adapter,
        "batch": batch,
        "iters": iters,
        "load_seconds": load_seconds,
        "warmup_seconds": warm,
        "median_batch_seconds": median,
        "images_per_second": ips,
        "gflop_per_second": ips * cfg.flops_per_image() / 1e9,
        "device_bytes_after_load": after_load,
        "device_bytes_peak": peak,
        "device_reserved_after_load": reserved_after_load,
        "device_reserved_peak": peak_reserved,
        "parameters": cfg.parameters(),
        "peak_rss_mb": super::measure::peak_rss_mb(),
    });
    println!("{report}");
    Ok(())
}
