//! Converting CLIP vision-tower checkpoints to replab's canonical file, and
//! reading that file back one tensor at a time.
//!
//! Three source layouts are recognised, all as safetensors:
//!
//! * **open_clip**: `visual.<name>` in a full CLIP state dict (the text tower
//!   is ignored), or bare `<name>` in a visual-only one;
//! * **hf**: Hugging Face `CLIPVisionModelWithProjection` / `CLIPModel`
//!   (`vision_model.*` and `visual_projection.weight`);
//! * **timm**: `vit_*_clip_*` models (`patch_embed`, `blocks.{i}`, `head`).
//!
//! The converted file uses open_clip's visual names without the `visual.`
//! prefix (see [`canonical_names`]) and carries a manifest in its
//! `__metadata__`: `format` = [`FORMAT`], `config` (the [`ClipVisionConfig`]
//! as JSON), `source_sha256`, `source_layout` and `quantization`.
//!
//! With quantisation the six matrix kinds (`conv1.weight`, `in_proj_weight`,
//! `out_proj.weight`, `c_fc.weight`, `c_proj.weight`, `proj`) are stored as
//! I8 with a symmetric per-output-channel F32 scale in `<name>.scale`, shaped
//! to broadcast against the weight. Everything else stays F32.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::config::{Activation, ClipVisionConfig};
use crate::model::safetensors::{Dtype, SafetensorsError};

mod convert;
mod detect;
mod layouts;
mod load;
mod quantize;

pub use convert::convert;
pub use detect::detect_layout;
pub use load::ClipWeights;

/// The `format` metadata value of a converted file this version reads and writes.
pub const FORMAT: &str = "replab-clip-visual/1";
/// The `quantization` metadata value for int8 weights with per-output-channel scales.
pub const QUANT_INT8: &str = "int8-symmetric-per-output-channel";
/// The `quantization` metadata value for an all-F32 file.
pub const QUANT_NONE: &str = "none";
/// Suffix of the scale tensor that goes with each int8 weight.
pub const SCALE_SUFFIX: &str = ".scale";
/// LayerNorm epsilon written into converted configs: OpenAI's CLIP, open_clip,
/// Hugging Face and timm all use 1e-5 for CLIP towers.
pub const LN_EPS: f64 = 1e-5;

/// Why a checkpoint could not be converted or a converted file not read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClipWeightsError {
    /// The bytes are not a valid safetensors file (or are truncated).
    #[error(transparent)]
    Container(#[from] SafetensorsError),
    /// Only CLIP's text tower is present.
    #[error(
        "this file holds only CLIP's text tower (found '{found}') and no image encoder; convert a full CLIP checkpoint or a vision-tower one"
    )]
    TextOnly {
        /// A text-tower tensor that was found.
        found: String,
    },
    /// The file holds some other network.
    #[error(
        "{what} (found '{found}'); replab loads CLIP ViT image towers (open_clip, Hugging Face or timm layout), which start with a patch embedding"
    )]
    WrongArchitecture {
        /// What the file appears to be.
        what: String,
        /// Tensor names that gave it away.
        found: String,
    },
    /// A tensor the tower needs is absent.
    #[error("missing tensor '{name}': {context}")]
    Missing {
        /// The tensor, as named in the file being read.
        name: String,
        /// Where it was expected and what to do.
        context: String,
    },
    /// A tensor has the wrong shape.
    #[error("tensor '{name}' has shape {got:?}, expected {want:?}")]
    Shape {
        /// The tensor, as named in the file being read.
        name: String,
        /// Its shape in the file.
        got: Vec<usize>,
        /// The shape required.
        want: Vec<usize>,
    },
    /// A tensor the configuration is read from breaks a rule of the architecture
    /// (a non-square patch, a position table that is not 1 + a square grid, ...).
    #[error("tensor '{name}' has shape {got:?}, expected {rule}")]
    ShapeRule {
        /// The tensor, as named in the file being read.
        name: String,
        /// Its shape in the file.
        got: Vec<usize>,
        /// The rule it breaks, e.g. `[width, 3, patch, patch]`.
        rule: String,
    },
    /// A tensor's dtype cannot be used here.
    #[error("tensor '{name}' has unsupported dtype {dtype}; {expected}")]
    UnsupportedDtype {
        /// The tensor.
        name: String,
        /// Its dtype.
        dtype: Dtype,
        /// What is accepted.
        expected: String,
    },
    /// A vision-tower tensor that replab's ViT has no place for.
    #[error("unexpected tensor '{name}' in the vision tower: {hint}")]
    Unexpected {
        /// The tensor.
        name: String,
        /// Why it cannot be used.
        hint: String,
    },
    /// A source weight is NaN or infinite.
    #[error(
        "tensor '{name}' holds a non-finite value (NaN or infinity); the checkpoint is damaged"
    )]
    NonFinite {
        /// The tensor.
        name: String,
    },
    /// A converted file from an unknown format or version.
    #[error(
        "unknown converted-weights format '{found}': this replab reads '{FORMAT}'; re-convert the original checkpoint with this version's `replab convert-clip`"
    )]
    UnknownFormat {
        /// The `format` metadata value.
        found: String,
    },
    /// A converted file's manifest is incomplete or malformed.
    #[error("invalid manifest in a converted CLIP file: {0}; re-convert the original checkpoint")]
    Manifest(String),
    /// A raw checkpoint was given where a converted file is needed.
    #[error(
        "this is a raw checkpoint in the {layout} layout; convert it first with `replab convert-clip SRC --out FILE`"
    )]
    RawCheckpoint {
        /// `open_clip`, `hf` or `timm`.
        layout: String,
    },
    /// A converted file was given to the converter.
    #[error("this file is already converted by replab (format '{format}'); load it directly")]
    AlreadyConverted {
        /// Its `format` metadata value.
        format: String,
    },
    /// The inferred or stored configuration cannot be built.
    #[error("invalid CLIP vision configuration: {0}")]
    Config(String),
}

/// Which family of checkpoint a file came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SourceLayout {
    /// open_clip's state dict (`visual.*` or bare).
    OpenClip,
    /// Hugging Face transformers (`vision_model.*`, `visual_projection.weight`).
    Hf,
    /// timm's `vit_*_clip_*` models.
    Timm,
}

impl SourceLayout {
    /// The manifest's name for it: `open_clip`, `hf` or `timm`.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceLayout::OpenClip => "open_clip",
            SourceLayout::Hf => "hf",
            SourceLayout::Timm => "timm",
        }
    }
}

impl fmt::Display for SourceLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How to convert.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvertOptions {
    /// Store the six matrix kinds as int8 with per-output-channel scales.
    pub quantize: bool,
    /// Attention heads; `None` means `width / 64`, right for every CLIP ViT.
    pub heads: Option<usize>,
    /// The MLP non-linearity to record (weights cannot tell): QuickGELU for
    /// OpenAI's checkpoints, GELU for most others (e.g. LAION's).
    pub activation: Activation,
}

impl Default for ConvertOptions {
    fn default() -> Self {
        Self {
            quantize: true,
            heads: None,
            activation: Activation::QuickGelu,
        }
    }
}

/// What a converted file says about itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClipManifest {
    /// The tower's shape.
    pub config: ClipVisionConfig,
    /// Lower-case hex SHA-256 of the source checkpoint's bytes.
    pub source_sha256: String,
    /// `open_clip`, `hf` or `timm`.
    pub source_layout: String,
    /// [`QUANT_INT8`] or [`QUANT_NONE`].
    pub quantization: String,
}

impl ClipManifest {
    /// Whether the matrix weights are int8 with scales.
    pub fn is_quantized(&self) -> bool {
        self.quantization == QUANT_INT8
    }

    /// The `__metadata__` entries of a converted file, `format` included.
    pub fn to_metadata(&self) -> Result<BTreeMap<String, String>, ClipWeightsError> {
        let config = serde_json::to_string(&self.config)
            .map_err(|e| ClipWeightsError::Manifest(format!("config does not serialise: {e}")))?;
        Ok(BTreeMap::from([
            ("format".to_string(), FORMAT.to_string()),
            ("config".to_string(), config),
            ("source_sha256".to_string(), self.source_sha256.clone()),
            ("source_layout".to_string(), self.source_layout.clone()),
            ("quantization".to_string(), self.quantization.clone()),
        ]))
    }

    /// Read a manifest back from `__metadata__`, checking the format and quantisation.
    pub fn from_metadata(meta: &BTreeMap<String, String>) -> Result<Self, ClipWeightsError> {
        let get = |key: &str| {
            meta.get(key)
                .ok_or_else(|| ClipWeightsError::Manifest(format!("no '{key}' entry")))
        };
        let format = get("format")?;
        if format != FORMAT {
            return Err(ClipWeightsError::UnknownFormat {
                found: format.clone(),
            });
        }
        let config: ClipVisionConfig = serde_json::from_str(get("config")?).map_err(|e| {
            ClipWeightsError::Manifest(format!("'config' is not a CLIP config: {e}"))
        })?;
        let quantization = get("quantization")?.clone();
        if quantization != QUANT_INT8 && quantization != QUANT_NONE {
            return Err(ClipWeightsError::Manifest(format!(
                "unknown quantization '{quantization}' (expected '{QUANT_INT8}' or '{QUANT_NONE}')"
            )));
        }
        Ok(Self {
            config,
            source_sha256: get("source_sha256")?.clone(),
            source_layout: get("source_layout")?.clone(),
            quantization,
        })
    }
}

/// A converted file and its manifest.
#[derive(Clone, Debug)]
pub struct Converted {
    /// The safetensors file.
    pub bytes: Vec<u8>,
    /// What its metadata says.
    pub manifest: ClipManifest,
}

pub use crate::data::bundle::sha256_hex;

/// The largest CLIP file accepted, checked before it is read: an open_clip
/// ViT-B/32 checkpoint with its text tower is 605 MB in f32, a converted int8
/// vision tower 89 MB.
pub const MAX_FILE_BYTES: u64 = 1 << 30;

/// Tokens per image, or `None` if the config's numbers overflow.
fn checked_tokens(c: &ClipVisionConfig) -> Option<usize> {
    let grid = c.image_size.checked_div(c.patch_size)?;
    grid.checked_mul(grid)?.checked_add(1)
}

/// Every canonical tensor of a tower with its shape, in a fixed order:
/// embeddings, `ln_pre`, each block, `ln_post`, `proj`. Scale tensors are not listed.
pub fn canonical_names(config: &ClipVisionConfig) -> Vec<(String, Vec<usize>)> {
    let w = config.width;
    let p = config.patch_size;
    let m = config.mlp_dim;
    let t = checked_tokens(config).unwrap_or(usize::MAX);
    let w3 = w.saturating_mul(3);
    let mut out: Vec<(String, Vec<usize>)> = vec![
        ("class_embedding".into(), vec![w]),
        ("positional_embedding".into(), vec![t, w]),
        ("conv1.weight".into(), vec![w, 3, p, p]),
        ("ln_pre.weight".into(), vec![w]),
        ("ln_pre.bias".into(), vec![w]),
    ];
    for i in 0..config.layers {
        let b = format!("transformer.resblocks.{i}.");
        out.extend([
            (format!("{b}ln_1.weight"), vec![w]),
            (format!("{b}ln_1.bias"), vec![w]),
            (format!("{b}attn.in_proj_weight"), vec![w3, w]),
            (format!("{b}attn.in_proj_bias"), vec![w3]),
            (format!("{b}attn.out_proj.weight"), vec![w, w]),
            (format!("{b}attn.out_proj.bias"), vec![w]),
            (format!("{b}ln_2.weight"), vec![w]),
            (format!("{b}ln_2.bias"), vec![w]),
            (format!("{b}mlp.c_fc.weight"), vec![m, w]),
            (format!("{b}mlp.c_fc.bias"), vec![m]),
            (format!("{b}mlp.c_proj.weight"), vec![w, m]),
            (format!("{b}mlp.c_proj.bias"), vec![w]),
        ]);
    }
    out.extend([
        ("ln_post.weight".into(), vec![w]),
        ("ln_post.bias".into(), vec![w]),
        ("proj".into(), vec![w, config.output_dim]),
    ]);
    out
}

/// For a canonical name that is stored as int8 when quantising, the axis of
/// its output channels: 0 for `conv1.weight` and the Linear weights (PyTorch's
/// `[out, in]`), 1 for `proj` (used as `x @ proj`, so `[in, out]`).
pub fn quantized_axis(name: &str) -> Option<usize> {
    if name == "proj" {
        return Some(1);
    }
    let block_matrix = name.starts_with("transformer.resblocks.")
        && (name.ends_with(".attn.in_proj_weight")
            || name.ends_with(".attn.out_proj.weight")
            || name.ends_with(".mlp.c_fc.weight")
            || name.ends_with(".mlp.c_proj.weight"));
    (name == "conv1.weight" || block_matrix).then_some(0)
}

/// The shape of the scale that goes with an int8 weight: the weight's shape
/// with every dimension but the output axis set to 1, so it broadcasts.
pub fn scale_shape(shape: &[usize], axis: usize) -> Vec<usize> {
    shape
        .iter()
        .enumerate()
        .map(|(i, &d)| if i == axis { d } else { 1 })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ViT-B/32 shrunk to 2 blocks of width 64 on a 64-pixel image.
    fn tiny() -> ClipVisionConfig {
        ClipVisionConfig {
            image_size: 64,
            width: 64,
            layers: 2,
            heads: 1,
            mlp_dim: 256,
            output_dim: 32,
            ..ClipVisionConfig::vit_b32()
        }
    }

    #[test]
    fn canonical_names_cover_every_parameter() {
        for c in [tiny(), ClipVisionConfig::vit_b32()] {
            let names = canonical_names(&c);
            assert_eq!(names.len(), 5 + 12 * c.layers + 3);
            let total: usize = names.iter().map(|(_, s)| s.iter().product::<usize>()).sum();
            assert_eq!(total, c.parameters());
            let quantized = names
                .iter()
                .filter(|(n, _)| quantized_axis(n).is_some())
                .count();
            assert_eq!(quantized, 2 + 4 * c.layers);
        }
        assert_eq!(quantized_axis("proj"), Some(1));
        assert_eq!(quantized_axis("conv1.weight"), Some(0));
        assert_eq!(
            quantized_axis("transformer.resblocks.3.attn.in_proj_weight"),
            Some(0)
        );
        assert_eq!(
            quantized_axis("transformer.resblocks.3.attn.in_proj_bias"),
            None
        );
        assert_eq!(
            quantized_axis("transformer.resblocks.3.mlp.c_fc.bias"),
            None
        );
        assert_eq!(quantized_axis("ln_post.weight"), None);
        assert_eq!(scale_shape(&[64, 3, 32, 32], 0), vec![64, 1, 1, 1]);
        assert_eq!(scale_shape(&[192, 64], 0), vec![192, 1]);
        assert_eq!(scale_shape(&[64, 32], 1), vec![1, 32]);
    }

    #[test]
    fn manifest_round_trips_through_metadata() {
        let m = ClipManifest {
            config: tiny(),
            source_sha256: sha256_hex(b"abc"),
            source_layout: "hf".into(),
            quantization: QUANT_INT8.into(),
        };
        assert_eq!(
            m.source_sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let meta = m.to_metadata().unwrap();
        assert_eq!(meta.get("format").unwrap(), FORMAT);
        assert_eq!(ClipManifest::from_metadata(&meta).unwrap(), m);
        let mut bad = meta.clone();
        bad.insert("format".into(), "replab-clip-visual/2".into());
        assert!(matches!(
            ClipManifest::from_metadata(&bad),
            Err(ClipWeightsError::UnknownFormat { .. })
        ));
        let mut bad = meta.clone();
        bad.insert("quantization".into(), "int4".into());
        assert!(matches!(
            ClipManifest::from_metadata(&bad),
            Err(ClipWeightsError::Manifest(_))
        ));
        let mut bad = meta;
        bad.remove("config");
        let err = ClipManifest::from_metadata(&bad).unwrap_err();
        assert!(err.to_string().contains("'config'"), "{err}");
    }
}
