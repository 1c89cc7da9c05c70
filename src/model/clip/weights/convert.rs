//! Converting a raw checkpoint into replab's canonical file: reading the
//! tower's shape off its tensors, checking every source tensor, then
//! gathering (and optionally quantising) each canonical one.

use std::collections::BTreeSet;

use super::detect::detect;
use super::layouts::{Layout, Recipe, recipe};
use super::quantize::quantize;
use super::{
    ClipManifest, ClipWeightsError, ConvertOptions, Converted, LN_EPS, QUANT_INT8, QUANT_NONE,
    SCALE_SUFFIX, SourceLayout, canonical_names, quantized_axis, scale_shape, sha256_hex,
};
use crate::model::clip::config::ClipVisionConfig;
use crate::model::safetensors::{Dtype, SafeTensors, SafeTensorsWriter, TensorInfo};

fn info_of<'s>(
    st: &'s SafeTensors<'_>,
    layout: &Layout,
    name: &str,
) -> Result<&'s TensorInfo, ClipWeightsError> {
    st.info(name).ok_or_else(|| ClipWeightsError::Missing {
        name: name.to_string(),
        context: layout.missing_context(name),
    })
}

/// Read the tower's shape off its tensors.
fn infer_config(
    st: &SafeTensors<'_>,
    layout: &Layout,
    opts: &ConvertOptions,
) -> Result<ClipVisionConfig, ClipWeightsError> {
    let shape_err = |name: &str, got: &[usize], rule: String| ClipWeightsError::ShapeRule {
        name: name.to_string(),
        got: got.to_vec(),
        rule,
    };

    let patch_name = layout.patch();
    let patch = &info_of(st, layout, &patch_name)?.shape;
    let (width, patch_size) = match patch.as_slice() {
        &[w, 3, p, q] if w > 0 && p > 0 && p == q => (w, p),
        _ => {
            return Err(shape_err(
                &patch_name,
                patch,
                "[width, 3, patch, patch]: a square patch convolution over 3 input channels".into(),
            ));
        }
    };

    let pos_name = layout.positions();
    let pos = &info_of(st, layout, &pos_name)?.shape;
    let want_pos = if layout.kind == SourceLayout::Timm {
        format!("[1, tokens, {width}]")
    } else {
        format!("[tokens, {width}]")
    };
    let tokens = match (layout.kind, pos.as_slice()) {
        (SourceLayout::Timm, &[1, t, w]) | (SourceLayout::OpenClip | SourceLayout::Hf, &[t, w])
            if w == width =>
        {
            t
        }
        _ => return Err(shape_err(&pos_name, pos, want_pos)),
    };
    let patches = tokens.saturating_sub(1);
    let grid = (0..=patches)
        .take_while(|g| g.saturating_mul(*g) <= patches)
        .last()
        .unwrap_or(0);
    if grid == 0 || grid.saturating_mul(grid) != patches {
        return Err(shape_err(
            &pos_name,
            pos,
            format!(
                "1 + grid² positions (the class token and a square grid of patches); {patches} patches is not a square"
            ),
        ));
    }
    let image_size = grid.checked_mul(patch_size).ok_or_else(|| {
        shape_err(
            &patch_name,
            patch,
            "a patch size whose image side fits in memory".into(),
        )
    })?;

    let names = st.names();
    let layers = (0..)
        .take_while(|&i| {
            let prefix = layout.block(i);
            names.iter().any(|n| n.starts_with(&prefix))
        })
        .count();
    if layers == 0 {
        let name = layout.first_block_tensor();
        return Err(ClipWeightsError::Missing {
            context: format!(
                "no transformer blocks found ({})",
                layout.missing_context(&name)
            ),
            name,
        });
    }

    let fc_name = layout.fc(0);
    let fc = &info_of(st, layout, &fc_name)?.shape;
    let mlp_dim = match fc.as_slice() {
        &[m, w] if w == width && m > 0 => m,
        _ => return Err(shape_err(&fc_name, fc, format!("[mlp, {width}]"))),
    };

    let (proj_name, transposed) = layout.projection();
    let proj = &info_of(st, layout, &proj_name)?.shape;
    let output_dim = match (transposed, proj.as_slice()) {
        (false, &[w, d]) | (true, &[d, w]) if w == width && d > 0 => d,
        (false, _) => return Err(shape_err(&proj_name, proj, format!("[{width}, output]"))),
        (true, _) => return Err(shape_err(&proj_name, proj, format!("[output, {width}]"))),
    };

    let heads = match opts.heads {
        Some(h) => h,
        None if width.is_multiple_of(64) => width / 64,
        None => {
            return Err(ClipWeightsError::Config(format!(
                "width {width} is not a multiple of 64, so the number of attention heads cannot be guessed; pass it with --heads"
            )));
        }
    };
    let config = ClipVisionConfig {
        image_size,
        patch_size,
        width,
        layers,
        heads,
        mlp_dim,
        output_dim,
        activation: opts.activation,
        ln_eps: LN_EPS,
    };
    config.validate().map_err(ClipWeightsError::Config)?;
    Ok(config)
}

/// The message for a vision-tower tensor that has no place in the canonical set.
fn unexpected_hint(layout: &Layout, name: &str, layers: usize) -> String {
    let beyond = (layers..layers.saturating_add(1000)).any(|i| name.starts_with(&layout.block(i)));
    if beyond {
        return format!(
            "blocks are read from 0 up to the first missing index ({layers} found), so this one is out of sequence"
        );
    }
    "replab's CLIP ViT has no such parameter, so this checkpoint is a variant replab does not support".into()
}

fn check_finite(name: &str, values: &[f32]) -> Result<(), ClipWeightsError> {
    if values.iter().all(|v| v.is_finite()) {
        Ok(())
    } else {
        Err(ClipWeightsError::NonFinite {
            name: name.to_string(),
        })
    }
}

fn read_source(st: &SafeTensors<'_>, name: &str) -> Result<Vec<f32>, ClipWeightsError> {
    let values = st.to_f32(name)?;
    check_finite(name, &values)?;
    Ok(values)
}

/// Make one canonical tensor's f32 values.
fn gather(st: &SafeTensors<'_>, recipe: &Recipe) -> Result<Vec<f32>, ClipWeightsError> {
    match recipe {
        Recipe::Copy { src, .. } => read_source(st, src),
        Recipe::Transpose { src, rows, cols } => {
            // Source element (r, c) sits at r * cols + c and moves to c * rows + r.
            let values = read_source(st, src)?;
            let mut out = vec![0f32; values.len()];
            for (r, row) in values.chunks((*cols).max(1)).enumerate() {
                for (c, v) in row.iter().enumerate() {
                    if let Some(slot) = out.get_mut(c * rows + r) {
                        *slot = *v;
                    }
                }
            }
            Ok(out)
        }
        Recipe::Concat { srcs } => {
            let mut out = Vec::new();
            for (src, _) in srcs {
                out.extend(read_source(st, src)?);
            }
            Ok(out)
        }
    }
}

const FLOAT_SOURCES: &str = "CLIP weights must be F32, F16, BF16 or F64";

/// Convert a CLIP vision checkpoint (open_clip, Hugging Face or timm, as
/// safetensors) into replab's canonical file.
pub fn convert(src: &[u8], opts: &ConvertOptions) -> Result<Converted, ClipWeightsError> {
    let st = SafeTensors::parse(src)?;
    if let Some(format) = st.metadata().get("format")
        && format.starts_with("replab-")
    {
        return Err(ClipWeightsError::AlreadyConverted {
            format: format.clone(),
        });
    }
    let layout = detect(&st)?;
    let config = infer_config(&st, &layout, opts)?;

    // Check every source tensor before converting any.
    let plans: Vec<(String, Vec<usize>, Recipe)> = canonical_names(&config)
        .into_iter()
        .map(|(name, shape)| {
            let r = recipe(&layout, &name, &shape, &config);
            (name, shape, r)
        })
        .collect();
    let mut used = BTreeSet::new();
    for (_, _, r) in &plans {
        for (src_name, want) in r.sources() {
            let info = info_of(&st, &layout, src_name)?;
            if info.shape != want {
                return Err(ClipWeightsError::Shape {
                    name: src_name.to_string(),
                    got: info.shape.clone(),
                    want: want.clone(),
                });
            }
            if !matches!(
                info.dtype,
                Dtype::F32 | Dtype::F16 | Dtype::BF16 | Dtype::F64
            ) {
                return Err(ClipWeightsError::UnsupportedDtype {
                    name: src_name.to_string(),
                    dtype: info.dtype,
                    expected: FLOAT_SOURCES.into(),
                });
            }
            used.insert(src_name.to_string());
        }
    }
    for name in st.names() {
        if used.contains(name) || !layout.in_tower(name) {
            continue;
        }
        if layout.kind == SourceLayout::Timm && name == "head.bias" {
            let zero = st.to_f32(name).map(|v| v.iter().all(|x| *x == 0.0));
            if matches!(zero, Ok(true)) {
                continue;
            }
            return Err(ClipWeightsError::Unexpected {
                name: name.to_string(),
                hint: "timm's head has a non-zero bias but CLIP's projection has none: this looks like a classifier fine-tuned from CLIP rather than CLIP's own projection".into(),
            });
        }
        return Err(ClipWeightsError::Unexpected {
            name: name.to_string(),
            hint: unexpected_hint(&layout, name, config.layers),
        });
    }

    let manifest = ClipManifest {
        config,
        source_sha256: sha256_hex(src),
        source_layout: layout.kind.as_str().to_string(),
        quantization: if opts.quantize {
            QUANT_INT8
        } else {
            QUANT_NONE
        }
        .to_string(),
    };
    let mut writer = SafeTensorsWriter::new();
    for (key, value) in manifest.to_metadata()? {
        writer.metadata(key, value);
    }
    for (name, shape, r) in &plans {
        let values = gather(&st, r)?;
        match quantized_axis(name).filter(|_| opts.quantize) {
            Some(axis) => {
                let (q, scales) = quantize(&values, shape, axis);
                writer.add_i8(name, shape, &q)?;
                writer.add_f32(
                    &format!("{name}{SCALE_SUFFIX}"),
                    &scale_shape(shape, axis),
                    &scales,
                )?;
            }
            None => {
                writer.add_f32(name, shape, &values)?;
            }
        }
    }
    Ok(Converted {
        bytes: writer.try_into_bytes()?,
        manifest,
    })
}
