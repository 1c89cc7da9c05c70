//! The CLIP weight converter and reader on tiny synthetic checkpoints in all
//! three source layouts (open_clip, Hugging Face, timm).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by unwrapping

use replab::model::clip::weights::{
    ClipManifest, ClipWeights, ClipWeightsError, ConvertOptions, FORMAT, QUANT_INT8, QUANT_NONE,
    SourceLayout, canonical_names, convert, quantized_axis, sha256_hex,
};
use replab::model::clip::{Activation, ClipVisionConfig};
use replab::model::safetensors::{Dtype, SafeTensors, SafeTensorsWriter};

/// Width 64, 2 blocks, 32-pixel patches on a 64-pixel image (5 tokens).
fn tiny() -> ClipVisionConfig {
    ClipVisionConfig {
        image_size: 64,
        patch_size: 32,
        width: 64,
        layers: 2,
        heads: 1,
        mlp_dim: 256,
        output_dim: 32,
        activation: Activation::QuickGelu,
        ln_eps: 1e-5,
    }
}

/// A 64-bit LCG (Knuth's MMIX constants); values uniform in [-1, 1).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}

type Tensors = Vec<(String, Vec<usize>, Vec<f32>)>;

/// Canonical tensors with pseudo-random values. One output channel of a
/// matrix is all zeros, so the quantiser's zero-channel rule is exercised.
fn canonical_tensors(c: &ClipVisionConfig, seed: u64) -> Tensors {
    let mut rng = Lcg(seed);
    canonical_names(c)
        .into_iter()
        .enumerate()
        .map(|(k, (name, shape))| {
            let n: usize = shape.iter().product();
            let spread = 0.02 * (1 + k % 7) as f32;
            let mut values: Vec<f32> = (0..n).map(|_| rng.next() * spread).collect();
            if name == "transformer.resblocks.1.mlp.c_fc.weight" {
                values[..c.width].fill(0.0);
            }
            (name, shape, values)
        })
        .collect()
}

fn get<'t>(t: &'t Tensors, name: &str) -> &'t [f32] {
    &t.iter().find(|(n, _, _)| n == name).unwrap().2
}

fn transpose(v: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; v.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = v[r * cols + c];
        }
    }
    out
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Src {
    F32,
    F16,
    Bf16,
}

fn add(w: &mut SafeTensorsWriter, dtype: Src, name: &str, shape: &[usize], v: &[f32]) {
    match dtype {
        Src::F32 => w.add_f32(name, shape, v),
        Src::F16 => w.add_f16(name, shape, v),
        Src::Bf16 => w.add_bf16(name, shape, v),
    }
    .unwrap();
}

/// Adds the canonical tensor `canon` under the name `to`, with its canonical shape.
fn add_as(w: &mut SafeTensorsWriter, t: &Tensors, dtype: Src, canon: &str, to: &str) {
    let (_, shape, v) = t.iter().find(|(n, _, _)| n == canon).unwrap();
    add(w, dtype, to, shape, v);
}

/// Adds the class token and the positional embedding (with `shapes`) and the
/// patch embedding, under `names`.
fn add_embeddings(
    w: &mut SafeTensorsWriter,
    t: &Tensors,
    c: &ClipVisionConfig,
    dtype: Src,
    names: [&str; 3],
    shapes: [&[usize]; 2],
) {
    let patch = [c.width, 3, c.patch_size, c.patch_size];
    let canon = ["class_embedding", "positional_embedding", "conv1.weight"];
    for ((canon, name), shape) in canon
        .into_iter()
        .zip(names)
        .zip([shapes[0], shapes[1], &patch])
    {
        add(w, dtype, name, shape, get(t, canon));
    }
}

/// Adds `ln_pre` and `ln_post` (width `wd`) under the prefixes `to`.
fn add_outer_norms(w: &mut SafeTensorsWriter, t: &Tensors, dtype: Src, wd: usize, to: [&str; 2]) {
    for (canon, to) in ["ln_pre", "ln_post"].into_iter().zip(to) {
        for p in ["weight", "bias"] {
            add(
                w,
                dtype,
                &format!("{to}.{p}"),
                &[wd],
                get(t, &format!("{canon}.{p}")),
            );
        }
    }
}

/// A few tensors of a CLIP text tower in open_clip's layout.
fn open_clip_text(w: &mut SafeTensorsWriter) {
    let z = vec![0.5f32; 32 * 8];
    w.add_f32("token_embedding.weight", &[8, 32], &z).unwrap();
    w.add_f32("positional_embedding", &[8, 32], &z).unwrap();
    w.add_f32("transformer.resblocks.0.ln_1.weight", &[32], &z[..32])
        .unwrap();
    w.add_f32("ln_final.weight", &[32], &z[..32]).unwrap();
    w.add_f32("text_projection", &[32, 8], &z).unwrap();
    w.add_f32("logit_scale", &[], &[4.6]).unwrap();
}

/// open_clip: a full CLIP state dict (`visual.` + text tower) or a bare visual one.
fn open_clip_writer(t: &Tensors, full: bool, dtype: Src) -> SafeTensorsWriter {
    let mut w = SafeTensorsWriter::new();
    let prefix = if full { "visual." } else { "" };
    for (name, shape, v) in t {
        add(&mut w, dtype, &format!("{prefix}{name}"), shape, v);
    }
    if full {
        open_clip_text(&mut w);
    }
    w
}

/// Hugging Face `CLIPModel` (with text tower) or `CLIPVisionModelWithProjection`.
fn hf_writer(t: &Tensors, c: &ClipVisionConfig, full: bool, dtype: Src) -> SafeTensorsWriter {
    let (wd, tok) = (c.width, c.tokens());
    let mut w = SafeTensorsWriter::new();
    w.metadata("format", "pt");
    let e = "vision_model.embeddings.";
    add_embeddings(
        &mut w,
        t,
        c,
        dtype,
        [
            &format!("{e}class_embedding"),
            &format!("{e}position_embedding.weight"),
            &format!("{e}patch_embedding.weight"),
        ],
        [&[wd], &[tok, wd]],
    );
    let ids: Vec<u8> = (0..tok as i64).flat_map(|i| i.to_le_bytes()).collect();
    w.add_raw(&format!("{e}position_ids"), Dtype::I64, &[1, tok], ids)
        .unwrap();
    add_outer_norms(
        &mut w,
        t,
        dtype,
        wd,
        ["vision_model.pre_layrnorm", "vision_model.post_layernorm"],
    );
    for i in 0..c.layers {
        let b = format!("transformer.resblocks.{i}.");
        let h = format!("vision_model.encoder.layers.{i}.");
        let qkv_w = get(t, &format!("{b}attn.in_proj_weight"));
        let qkv_b = get(t, &format!("{b}attn.in_proj_bias"));
        for (k, x) in ["q", "k", "v"].iter().enumerate() {
            add(
                &mut w,
                dtype,
                &format!("{h}self_attn.{x}_proj.weight"),
                &[wd, wd],
                &qkv_w[k * wd * wd..(k + 1) * wd * wd],
            );
            add(
                &mut w,
                dtype,
                &format!("{h}self_attn.{x}_proj.bias"),
                &[wd],
                &qkv_b[k * wd..(k + 1) * wd],
            );
        }
        for (canon, hf) in [
            ("ln_1", "layer_norm1"),
            ("ln_2", "layer_norm2"),
            ("attn.out_proj", "self_attn.out_proj"),
            ("mlp.c_fc", "mlp.fc1"),
            ("mlp.c_proj", "mlp.fc2"),
        ] {
            for p in ["weight", "bias"] {
                add_as(
                    &mut w,
                    t,
                    dtype,
                    &format!("{b}{canon}.{p}"),
                    &format!("{h}{hf}.{p}"),
                );
            }
        }
    }
    let proj = transpose(get(t, "proj"), wd, c.output_dim);
    add(
        &mut w,
        dtype,
        "visual_projection.weight",
        &[c.output_dim, wd],
        &proj,
    );
    if full {
        w.add_f32(
            "text_model.embeddings.token_embedding.weight",
            &[4, 8],
            &[0.1; 32],
        )
        .unwrap();
        w.add_f32("text_model.final_layer_norm.weight", &[8], &[1.0; 8])
            .unwrap();
        w.add_f32("text_projection.weight", &[32, 8], &[0.2; 256])
            .unwrap();
        w.add_f32("logit_scale", &[], &[2.0]).unwrap();
    }
    w
}

/// timm `vit_*_clip_*`, with the zero `head.bias` timm's OpenAI conversion adds.
fn timm_writer(t: &Tensors, c: &ClipVisionConfig, dtype: Src) -> SafeTensorsWriter {
    let (wd, tok) = (c.width, c.tokens());
    let mut w = SafeTensorsWriter::new();
    add_embeddings(
        &mut w,
        t,
        c,
        dtype,
        ["cls_token", "pos_embed", "patch_embed.proj.weight"],
        [&[1, 1, wd], &[1, tok, wd]],
    );
    add_outer_norms(&mut w, t, dtype, wd, ["norm_pre", "norm"]);
    for i in 0..c.layers {
        let b = format!("transformer.resblocks.{i}.");
        for (canon, timm) in [
            ("ln_1.weight", "norm1.weight"),
            ("ln_1.bias", "norm1.bias"),
            ("attn.in_proj_weight", "attn.qkv.weight"),
            ("attn.in_proj_bias", "attn.qkv.bias"),
            ("attn.out_proj.weight", "attn.proj.weight"),
            ("attn.out_proj.bias", "attn.proj.bias"),
            ("ln_2.weight", "norm2.weight"),
            ("ln_2.bias", "norm2.bias"),
            ("mlp.c_fc.weight", "mlp.fc1.weight"),
            ("mlp.c_fc.bias", "mlp.fc1.bias"),
            ("mlp.c_proj.weight", "mlp.fc2.weight"),
            ("mlp.c_proj.bias", "mlp.fc2.bias"),
        ] {
            add_as(
                &mut w,
                t,
                dtype,
                &format!("{b}{canon}"),
                &format!("blocks.{i}.{timm}"),
            );
        }
    }
    let proj = transpose(get(t, "proj"), wd, c.output_dim);
    add(&mut w, dtype, "head.weight", &[c.output_dim, wd], &proj);
    w.add_f32("head.bias", &[c.output_dim], &vec![0.0; c.output_dim])
        .unwrap();
    w
}

/// Every source layout of the same tensors, with the layout each should report.
fn all_sources(t: &Tensors, c: &ClipVisionConfig, dtype: Src) -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("open_clip", open_clip_writer(t, true, dtype).to_bytes()),
        ("open_clip", open_clip_writer(t, false, dtype).to_bytes()),
        ("hf", hf_writer(t, c, true, dtype).to_bytes()),
        ("hf", hf_writer(t, c, false, dtype).to_bytes()),
        ("timm", timm_writer(t, c, dtype).to_bytes()),
    ]
}

fn f32_opts() -> ConvertOptions {
    ConvertOptions {
        quantize: false,
        ..ConvertOptions::default()
    }
}

fn all_tensors(w: &ClipWeights<'_>) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    canonical_names(w.config())
        .into_iter()
        .map(|(name, _)| {
            let (shape, values) = w.tensor(&name).unwrap();
            (name, shape, values)
        })
        .collect()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn every_layout_converts_to_the_same_f32_tensors() {
    let c = tiny();
    let t = canonical_tensors(&c, 1);
    for (layout, src) in all_sources(&t, &c, Src::F32) {
        let out = convert(&src, &f32_opts()).unwrap();
        assert_eq!(out.manifest.source_layout, layout);
        assert_eq!(out.manifest.quantization, QUANT_NONE);
        assert_eq!(out.manifest.config, c, "{layout}");
        let w = ClipWeights::parse(&out.bytes).unwrap();
        assert!(!w.is_quantized());
        let got = all_tensors(&w);
        assert_eq!(got.len(), t.len());
        for ((name, shape, values), (want_name, want_shape, want)) in got.iter().zip(&t) {
            assert_eq!(name, want_name);
            assert_eq!(shape, want_shape, "{layout} {name}");
            assert_eq!(bits(values), bits(want), "{layout} {name}");
        }
        // No scale tensors and every tensor is F32.
        let st = SafeTensors::parse(&out.bytes).unwrap();
        assert_eq!(st.len(), t.len());
        assert!(
            st.names()
                .iter()
                .all(|n| st.info(n).unwrap().dtype == Dtype::F32)
        );
    }
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

#[test]
fn int8_conversion_is_identical_across_layouts_and_close_to_the_original() {
    let c = tiny();
    let t = canonical_tensors(&c, 2);
    let mut first: Option<Vec<(String, Vec<u8>)>> = None;
    for (layout, src) in all_sources(&t, &c, Src::F32) {
        let out = convert(&src, &ConvertOptions::default()).unwrap();
        assert_eq!(out.manifest.quantization, QUANT_INT8);
        let st = SafeTensors::parse(&out.bytes).unwrap();
        // Stored bytes of every tensor (int8 values and scales included) match across layouts.
        let stored: Vec<(String, Vec<u8>)> = st
            .names()
            .iter()
            .map(|n| (n.to_string(), st.raw(n).unwrap().to_vec()))
            .collect();
        match &first {
            None => first = Some(stored),
            Some(f) => assert!(f == &stored, "{layout} differs"),
        }

        let w = ClipWeights::parse(&out.bytes).unwrap();
        assert!(w.is_quantized());
        for (name, shape, original) in &t {
            let (got_shape, got) = w.tensor(name).unwrap();
            assert_eq!(&got_shape, shape);
            let Some(axis) = quantized_axis(name) else {
                assert_eq!(bits(&got), bits(original), "{name} should stay F32");
                assert_eq!(st.info(name).unwrap().dtype, Dtype::F32);
                continue;
            };
            let info = st.info(name).unwrap();
            assert_eq!(info.dtype, Dtype::I8, "{name}");
            assert_eq!(&info.shape, shape);
            let scale_name = format!("{name}.scale");
            let scale_info = st.info(&scale_name).unwrap();
            assert_eq!(scale_info.dtype, Dtype::F32);
            let want_scale_shape: Vec<usize> = match (name.as_str(), shape.len()) {
                ("conv1.weight", _) => vec![c.width, 1, 1, 1],
                ("proj", _) => vec![1, c.output_dim],
                (_, 2) => vec![shape[0], 1],
                _ => unreachable!(),
            };
            assert_eq!(scale_info.shape, want_scale_shape, "{name}");
            let scales = st.to_f32(&scale_name).unwrap();
            let q = st.to_i8(name).unwrap();
            assert!(q.iter().all(|v| (-127..=127).contains(v)));
            let inner: usize = shape[axis + 1..].iter().product();
            for (i, (g, o)) in got.iter().zip(original).enumerate() {
                let s = scales[(i / inner) % shape[axis]];
                assert!(
                    (g - o).abs() <= s * 0.5 * (1.0 + 1e-5),
                    "{name}[{i}]: {g} vs {o}, scale {s}"
                );
            }
            let cos = cosine(&got, original);
            assert!(cos >= 0.9999, "{name}: cosine {cos}");
        }
        // The all-zero channel got scale 1.0 and stays exactly zero.
        let zero = "transformer.resblocks.1.mlp.c_fc.weight";
        assert_eq!(st.to_f32(&format!("{zero}.scale")).unwrap()[0], 1.0);
        assert!(
            w.tensor(zero).unwrap().1[..c.width]
                .iter()
                .all(|v| *v == 0.0)
        );
        // Every channel's largest weight maps to ±127.
        let q = st.to_i8("proj").unwrap();
        for col in 0..c.output_dim {
            let m = (0..c.width)
                .map(|r| q[r * c.output_dim + col].unsigned_abs())
                .max();
            assert_eq!(m, Some(127), "proj column {col}");
        }
    }
}

#[test]
fn manifest_round_trips_and_records_the_source() {
    let c = tiny();
    let t = canonical_tensors(&c, 3);
    let src = hf_writer(&t, &c, true, Src::F32).to_bytes();
    let opts = ConvertOptions {
        activation: Activation::Gelu,
        ..ConvertOptions::default()
    };
    let out = convert(&src, &opts).unwrap();
    let w = ClipWeights::parse(&out.bytes).unwrap();
    assert_eq!(w.manifest(), &out.manifest);
    assert_eq!(w.config().activation, Activation::Gelu);
    assert_eq!(out.manifest.source_sha256, sha256_hex(&src));
    assert_eq!(out.manifest.source_sha256.len(), 64);
    let st = SafeTensors::parse(&out.bytes).unwrap();
    let meta = st.metadata();
    assert_eq!(meta.get("format").unwrap(), FORMAT);
    assert_eq!(meta.get("source_layout").unwrap(), "hf");
    assert_eq!(meta.get("quantization").unwrap(), QUANT_INT8);
    let config: ClipVisionConfig = serde_json::from_str(meta.get("config").unwrap()).unwrap();
    assert_eq!(config, w.config().clone());
    assert_eq!(ClipManifest::from_metadata(meta).unwrap(), out.manifest);
    // The manifest is itself serde-able.
    let json = serde_json::to_string(&out.manifest).unwrap();
    assert_eq!(
        serde_json::from_str::<ClipManifest>(&json).unwrap(),
        out.manifest
    );
    // Converting is deterministic.
    assert_eq!(convert(&src, &opts).unwrap().bytes, out.bytes);
}

#[test]
fn heads_default_to_width_over_64_and_can_be_overridden() {
    let c = tiny();
    let t = canonical_tensors(&c, 4);
    let src = open_clip_writer(&t, true, Src::F32).to_bytes();
    assert_eq!(convert(&src, &f32_opts()).unwrap().manifest.config.heads, 1);
    let opts = ConvertOptions {
        heads: Some(4),
        ..f32_opts()
    };
    assert_eq!(convert(&src, &opts).unwrap().manifest.config.heads, 4);
    for heads in [0, 3] {
        let opts = ConvertOptions {
            heads: Some(heads),
            ..f32_opts()
        };
        let err = convert(&src, &opts).unwrap_err();
        assert!(matches!(err, ClipWeightsError::Config(_)), "{err}");
    }
    // Width 96 is not a multiple of 64: the heads must be given.
    let c96 = ClipVisionConfig {
        width: 96,
        heads: 2,
        ..tiny()
    };
    let src = open_clip_writer(&canonical_tensors(&c96, 5), false, Src::F32).to_bytes();
    let err = convert(&src, &f32_opts()).unwrap_err();
    assert!(
        matches!(err, ClipWeightsError::Config(_)) && err.to_string().contains("--heads"),
        "{err}"
    );
    let opts = ConvertOptions {
        heads: Some(2),
        ..f32_opts()
    };
    assert_eq!(convert(&src, &opts).unwrap().manifest.config, c96);
}

#[test]
fn half_precision_sources_convert() {
    let c = tiny();
    let t = canonical_tensors(&c, 6);
    for (dtype, round) in [
        (
            Src::F16,
            (|v: f32| half::f16::from_f32(v).to_f32()) as fn(f32) -> f32,
        ),
        (Src::Bf16, |v: f32| half::bf16::from_f32(v).to_f32()),
    ] {
        let rounded: Tensors = t
            .iter()
            .map(|(n, s, v)| (n.clone(), s.clone(), v.iter().map(|x| round(*x)).collect()))
            .collect();
        for (layout, src) in all_sources(&t, &c, dtype) {
            let out = convert(&src, &f32_opts()).unwrap();
            let w = ClipWeights::parse(&out.bytes).unwrap();
            for (name, _, want) in &rounded {
                let got = w.tensor(name).unwrap().1;
                assert_eq!(bits(&got), bits(want), "{dtype:?} {layout} {name}");
            }
            // Quantising a half-precision source works too.
            let q = convert(&src, &ConvertOptions::default()).unwrap();
            assert!(ClipWeights::parse(&q.bytes).unwrap().is_quantized());
        }
    }
}

/// A file's metadata entries.
type Meta = Vec<(String, String)>;
/// A file's tensors: name, dtype, shape, raw bytes.
type Raw = Vec<(String, Dtype, Vec<usize>, Vec<u8>)>;

/// Rebuild a safetensors file, letting `edit` change its metadata and tensors.
/// The tensor of `t` named `name`.
fn entry<'t>(t: &'t mut Raw, name: &str) -> &'t mut (String, Dtype, Vec<usize>, Vec<u8>) {
    t.iter_mut().find(|(n, ..)| n == name).unwrap()
}

fn rewrite(bytes: &[u8], edit: impl Fn(&mut Meta, &mut Raw)) -> Vec<u8> {
    let st = SafeTensors::parse(bytes).unwrap();
    let mut meta: Meta = st
        .metadata()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut tensors: Raw = st
        .names()
        .iter()
        .map(|n| {
            let info = st.info(n).unwrap();
            (
                n.to_string(),
                info.dtype,
                info.shape.clone(),
                st.raw(n).unwrap().to_vec(),
            )
        })
        .collect();
    edit(&mut meta, &mut tensors);
    let mut w = SafeTensorsWriter::new();
    for (k, v) in meta {
        w.metadata(k, v);
    }
    for (n, d, s, b) in tensors {
        w.add_raw(&n, d, &s, b).unwrap();
    }
    w.to_bytes()
}

fn remove(name: &'static str) -> impl Fn(&mut Meta, &mut Raw) {
    move |_, t| t.retain(|(n, ..)| n != name)
}

fn convert_err(bytes: &[u8]) -> (ClipWeightsError, String) {
    let err = convert(bytes, &ConvertOptions::default()).unwrap_err();
    let msg = err.to_string();
    (err, msg)
}

#[test]
fn broken_sources_give_clear_errors() {
    let c = tiny();
    let t = canonical_tensors(&c, 7);
    let open_clip = open_clip_writer(&t, true, Src::F32).to_bytes();
    let hf = hf_writer(&t, &c, true, Src::F32).to_bytes();
    let timm = timm_writer(&t, &c, Src::F32).to_bytes();

    // Not safetensors at all, or truncated.
    let (err, msg) = convert_err(b"this is not a checkpoint");
    assert!(matches!(err, ClipWeightsError::Container(_)), "{msg}");
    eprintln!("MSG {msg}");
    let (err, msg) = convert_err(&hf[..hf.len() - 100]);
    assert!(
        matches!(err, ClipWeightsError::Container(_)) && msg.contains("truncated"),
        "{msg}"
    );

    // Only a text tower.
    let mut w = SafeTensorsWriter::new();
    open_clip_text(&mut w);
    let (err, msg) = convert_err(&w.to_bytes());
    assert!(matches!(err, ClipWeightsError::TextOnly { .. }), "{msg}");
    eprintln!("MSG {msg}");
    assert!(msg.contains("only CLIP's text tower"), "{msg}");
    eprintln!("MSG {msg}");
    let hf_text = rewrite(&hf, |_, t| {
        t.retain(|(n, ..)| !n.starts_with("vision_model.") && n != "visual_projection.weight")
    });
    let (err, msg) = convert_err(&hf_text);
    assert!(matches!(err, ClipWeightsError::TextOnly { .. }), "{msg}");
    eprintln!("MSG {msg}");

    // A ResNet CLIP.
    let mut w = SafeTensorsWriter::new();
    w.add_f32("visual.conv1.weight", &[32, 3, 3, 3], &[0.1; 864])
        .unwrap();
    w.add_f32(
        "visual.layer1.0.conv1.weight",
        &[32, 32, 1, 1],
        &[0.1; 1024],
    )
    .unwrap();
    w.add_f32(
        "visual.attnpool.positional_embedding",
        &[50, 64],
        &[0.1; 3200],
    )
    .unwrap();
    let (err, msg) = convert_err(&w.to_bytes());
    assert!(
        matches!(err, ClipWeightsError::WrongArchitecture { .. }) && msg.contains("ResNet"),
        "{msg}"
    );
    assert!(msg.contains("visual.attnpool.positional_embedding") || msg.contains("visual.layer1"));

    // replab's own ConvNet.
    let mut w = SafeTensorsWriter::new();
    w.add_f32(
        "model.conv_blocks.0.block.0.weight",
        &[32, 3, 3, 3],
        &[0.1; 864],
    )
    .unwrap();
    w.add_f32("model.classifier.weight", &[9, 128], &[0.0; 1152])
        .unwrap();
    let (err, msg) = convert_err(&w.to_bytes());
    assert!(
        matches!(err, ClipWeightsError::WrongArchitecture { .. })
            && msg.contains("ConvNet")
            && msg.contains("model.conv_blocks.0.block.0.weight"),
        "{msg}"
    );

    // Something else entirely: the error names what was found.
    let mut w = SafeTensorsWriter::new();
    w.add_f32("encoder.fc.weight", &[2, 2], &[0.0; 4]).unwrap();
    let (err, msg) = convert_err(&w.to_bytes());
    assert!(
        matches!(err, ClipWeightsError::WrongArchitecture { .. })
            && msg.contains("encoder.fc.weight")
            && msg.contains("patch embedding"),
        "{msg}"
    );

    // Missing tensors, named as in the source.
    for (src, name) in [
        (&open_clip, "visual.transformer.resblocks.1.mlp.c_proj.bias"),
        (&open_clip, "visual.ln_post.weight"),
        (&hf, "vision_model.encoder.layers.0.self_attn.k_proj.weight"),
        (&hf, "vision_model.pre_layrnorm.bias"),
        (&timm, "blocks.1.attn.qkv.bias"),
        (&timm, "norm_pre.weight"),
    ] {
        let broken = rewrite(src, remove(name));
        let (err, msg) = convert_err(&broken);
        assert!(
            matches!(err, ClipWeightsError::Missing { .. }) && msg.contains(name),
            "{name}: {msg}"
        );
    }
    let (_, msg) = convert_err(&rewrite(&hf, remove("visual_projection.weight")));
    assert!(msg.contains("CLIPVisionModelWithProjection"), "{msg}");
    eprintln!("MSG {msg}");
    let (_, msg) = convert_err(&rewrite(&timm, remove("head.weight")));
    assert!(msg.contains("num_classes=0"), "{msg}");
    eprintln!("MSG {msg}");

    // Wrong shapes: the message names the tensor and both shapes.
    let bad_fc2 = rewrite(&hf, |_, t| {
        let e = entry(t, "vision_model.encoder.layers.1.mlp.fc2.weight");
        e.2 = vec![64, 128];
        e.3.truncate(64 * 128 * 4);
    });
    let (err, msg) = convert_err(&bad_fc2);
    assert!(matches!(err, ClipWeightsError::Shape { .. }), "{msg}");
    eprintln!("MSG {msg}");
    assert!(
        msg.contains("vision_model.encoder.layers.1.mlp.fc2.weight")
            && msg.contains("[64, 128]")
            && msg.contains("[64, 256]"),
        "{msg}"
    );
    // Five patches do not make a square grid.
    let bad_pos = rewrite(&timm, |_, t| {
        let e = entry(t, "pos_embed");
        e.2 = vec![1, 6, 64];
        e.3.resize(6 * 64 * 4, 0);
    });
    let (err, msg) = convert_err(&bad_pos);
    assert!(
        matches!(err, ClipWeightsError::ShapeRule { .. }) && msg.contains("pos_embed"),
        "{msg}"
    );
    // A rectangular patch.
    let bad_patch = rewrite(&open_clip, |_, t| {
        let e = entry(t, "visual.conv1.weight");
        e.2 = vec![64, 3, 16, 64];
    });
    let (err, msg) = convert_err(&bad_patch);
    assert!(
        matches!(err, ClipWeightsError::ShapeRule { .. }) && msg.contains("visual.conv1.weight"),
        "{msg}"
    );

    // Unsupported dtypes.
    let int_weight = rewrite(&open_clip, |_, t| {
        let e = entry(t, "visual.ln_pre.bias");
        e.1 = Dtype::I32;
    });
    let (err, msg) = convert_err(&int_weight);
    assert!(
        matches!(err, ClipWeightsError::UnsupportedDtype { .. })
            && msg.contains("visual.ln_pre.bias")
            && msg.contains("I32"),
        "{msg}"
    );

    // Tensors replab's ViT has no place for.
    let layer_scale = rewrite(&open_clip, |_, t| {
        t.push((
            "visual.transformer.resblocks.0.ls_1.gamma".into(),
            Dtype::F32,
            vec![64],
            vec![0; 256],
        ))
    });
    let (err, msg) = convert_err(&layer_scale);
    assert!(
        matches!(err, ClipWeightsError::Unexpected { .. }) && msg.contains("ls_1.gamma"),
        "{msg}"
    );
    let gap = rewrite(&timm, |_, t| {
        t.retain(|(n, ..)| !n.starts_with("blocks.0."));
    });
    let (err, msg) = convert_err(&gap);
    assert!(
        matches!(err, ClipWeightsError::Missing { .. }) && msg.contains("blocks.0.norm1.weight"),
        "{msg}"
    );
    let skipped = rewrite(&timm, |_, t| {
        for e in t.iter_mut() {
            if let Some(rest) = e.0.strip_prefix("blocks.1.") {
                e.0 = format!("blocks.3.{rest}");
            }
        }
    });
    let (err, msg) = convert_err(&skipped);
    assert!(
        matches!(err, ClipWeightsError::Unexpected { .. })
            && msg.contains("blocks.3.")
            && msg.contains("out of sequence"),
        "{msg}"
    );
    let classifier = rewrite(&timm, |_, t| {
        let e = entry(t, "head.bias");
        e.3 = 0.5f32.to_le_bytes().repeat(32);
    });
    let (err, msg) = convert_err(&classifier);
    assert!(
        matches!(err, ClipWeightsError::Unexpected { .. }) && msg.contains("head.bias"),
        "{msg}"
    );

    // A NaN in the weights.
    let nan = rewrite(&hf, |_, t| {
        let e = entry(t, "vision_model.post_layernorm.bias");
        e.3[8..12].copy_from_slice(&f32::NAN.to_le_bytes());
    });
    let (err, msg) = convert_err(&nan);
    assert!(
        matches!(err, ClipWeightsError::NonFinite { .. })
            && msg.contains("vision_model.post_layernorm.bias"),
        "{msg}"
    );

    // A converted file is not converted again.
    let converted = convert(&timm, &ConvertOptions::default()).unwrap().bytes;
    let (err, _) = convert_err(&converted);
    assert!(matches!(err, ClipWeightsError::AlreadyConverted { .. }));
}

#[test]
fn the_reader_rejects_raw_and_altered_files() {
    let c = tiny();
    let t = canonical_tensors(&c, 8);
    let sources = all_sources(&t, &c, Src::F32);
    for (layout, src) in &sources {
        let err = ClipWeights::parse(src).unwrap_err();
        assert!(
            matches!(&err, ClipWeightsError::RawCheckpoint { layout: l } if l == layout),
            "{err}"
        );
        assert!(err.to_string().contains("replab convert-clip"), "{err}");
        assert!(
            err.to_string().contains(&format!("the {layout} layout")),
            "{err}"
        );
    }
    let layouts = [SourceLayout::OpenClip, SourceLayout::Hf, SourceLayout::Timm];
    assert_eq!(layouts.map(|l| l.as_str()), ["open_clip", "hf", "timm"]);

    // A raw file that is not a CLIP ViT keeps its own explanation.
    let mut w = SafeTensorsWriter::new();
    open_clip_text(&mut w);
    assert!(matches!(
        ClipWeights::parse(&w.to_bytes()),
        Err(ClipWeightsError::TextOnly { .. })
    ));

    let good = convert(&sources[0].1, &ConvertOptions::default())
        .unwrap()
        .bytes;
    let set_meta = |key: &'static str, value: &'static str| {
        rewrite(&good, move |m, _| {
            m.retain(|(k, _)| k != key);
            m.push((key.into(), value.into()));
        })
    };
    let err = ClipWeights::parse(&set_meta("format", "replab-clip-visual/2")).unwrap_err();
    assert!(
        matches!(err, ClipWeightsError::UnknownFormat { .. })
            && err.to_string().contains("replab-clip-visual/2"),
        "{err}"
    );
    let err = ClipWeights::parse(&set_meta("quantization", "int4-grouped")).unwrap_err();
    assert!(
        matches!(err, ClipWeightsError::Manifest(_)) && err.to_string().contains("int4-grouped"),
        "{err}"
    );
    let err = ClipWeights::parse(&set_meta("config", "{\"width\": 64}")).unwrap_err();
    assert!(matches!(err, ClipWeightsError::Manifest(_)), "{err}");
    let mut bad_heads = c.clone();
    bad_heads.heads = 3;
    let bad_heads_json: &'static str = serde_json::to_string(&bad_heads).unwrap().leak();
    let err = ClipWeights::parse(&set_meta("config", bad_heads_json)).unwrap_err();
    assert!(matches!(err, ClipWeightsError::Config(_)), "{err}");
    // A config that disagrees with the tensors.
    let mut wider = c.clone();
    wider.mlp_dim = 512;
    let wider_json: &'static str = serde_json::to_string(&wider).unwrap().leak();
    let err = ClipWeights::parse(&set_meta("config", wider_json)).unwrap_err();
    assert!(
        matches!(err, ClipWeightsError::Shape { .. })
            && err
                .to_string()
                .contains("transformer.resblocks.0.mlp.c_fc.weight"),
        "{err}"
    );

    // A config claiming absurdly many blocks fails fast instead of allocating for them.
    let mut deep = c.clone();
    deep.layers = usize::MAX / 2;
    let deep_json: &'static str = serde_json::to_string(&deep).unwrap().leak();
    let err = ClipWeights::parse(&set_meta("config", deep_json)).unwrap_err();
    assert!(matches!(err, ClipWeightsError::Manifest(_)), "{err}");

    let err = ClipWeights::parse(&rewrite(&good, remove("proj.scale"))).unwrap_err();
    assert!(
        matches!(err, ClipWeightsError::Missing { .. }) && err.to_string().contains("proj.scale"),
        "{err}"
    );
    let err = ClipWeights::parse(&rewrite(&good, remove("ln_post.bias"))).unwrap_err();
    assert!(err.to_string().contains("ln_post.bias"), "{err}");
    let as_f16 = rewrite(&good, |_, t| {
        let e = entry(t, "ln_pre.weight");
        e.1 = Dtype::F16;
        e.3.truncate(128);
    });
    let err = ClipWeights::parse(&as_f16).unwrap_err();
    assert!(
        matches!(err, ClipWeightsError::UnsupportedDtype { .. })
            && err.to_string().contains("ln_pre.weight"),
        "{err}"
    );
    let extra = rewrite(&good, |_, t| {
        t.push((
            "transformer.resblocks.2.ln_1.weight".into(),
            Dtype::F32,
            vec![64],
            vec![0; 256],
        ))
    });
    let err = ClipWeights::parse(&extra).unwrap_err();
    assert!(
        matches!(err, ClipWeightsError::Unexpected { .. })
            && err.to_string().contains("resblocks.2"),
        "{err}"
    );

    let w = ClipWeights::parse(&good).unwrap();
    let err = w.tensor("proj.scale").unwrap_err();
    assert!(matches!(err, ClipWeightsError::Missing { .. }), "{err}");
}

#[test]
fn truncated_files_are_errors_not_panics() {
    let c = tiny();
    let t = canonical_tensors(&c, 9);
    let src = open_clip_writer(&t, true, Src::F32).to_bytes();
    for quantize in [true, false] {
        let opts = ConvertOptions {
            quantize,
            ..ConvertOptions::default()
        };
        let good = convert(&src, &opts).unwrap().bytes;
        let header = 8 + u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
        let mut cuts: Vec<usize> = (0..header + 64).collect();
        cuts.extend((header + 64..good.len()).step_by(997));
        cuts.push(good.len() - 1);
        for cut in cuts {
            let err = ClipWeights::parse(&good[..cut]).unwrap_err();
            assert!(
                matches!(err, ClipWeightsError::Container(_)),
                "cut {cut}: {err}"
            );
        }
    }
    for cut in (0..src.len()).step_by(1009) {
        assert!(convert(&src[..cut], &ConvertOptions::default()).is_err());
    }
}

#[test]
fn corrupted_headers_never_panic() {
    let c = tiny();
    let t = canonical_tensors(&c, 10);
    let src = hf_writer(&t, &c, true, Src::F32).to_bytes();
    let good = convert(&src, &ConvertOptions::default()).unwrap().bytes;
    for (bytes, step) in [(&good, 1), (&src, 5)] {
        let header = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        for i in (0..header).step_by(step) {
            for flip in [0x01u8, 0x20, 0xff] {
                let mut b = bytes.clone();
                b[i] ^= flip;
                if let Ok(w) = ClipWeights::parse(&b) {
                    for (name, _) in canonical_names(w.config()) {
                        let _ = w.tensor(&name);
                    }
                }
                let _ = convert(&b, &ConvertOptions::default());
            }
        }
    }
}

/// The committed fixtures were written by real open_clip and transformers
/// (`scripts/make_clip_fixtures.py`).
#[test]
fn real_library_checkpoints_convert() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/clip/");
    let open_clip = std::fs::read(format!("{dir}openclip_tiny.safetensors")).unwrap();
    let out = convert(&open_clip, &ConvertOptions::default()).unwrap();
    assert_eq!(out.manifest.source_layout, "open_clip");
    let want = ClipVisionConfig {
        image_size: 224,
        output_dim: 32,
        ..tiny()
    };
    assert_eq!(out.manifest.config, want);
    ClipWeights::parse(&out.bytes).unwrap();

    // The transformers tower has two 32-wide heads, which its weights cannot show.
    let hf = std::fs::read(format!("{dir}hf_tiny.safetensors")).unwrap();
    let opts = ConvertOptions {
        heads: Some(2),
        ..ConvertOptions::default()
    };
    let out = convert(&hf, &opts).unwrap();
    assert_eq!(out.manifest.source_layout, "hf");
    assert_eq!(
        out.manifest.config,
        ClipVisionConfig {
            image_size: 224,
            heads: 2,
            output_dim: 24,
            ..tiny()
        }
    );
    ClipWeights::parse(&out.bytes).unwrap();
}
