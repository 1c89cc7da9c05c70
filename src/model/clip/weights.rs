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

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use super::config::{Activation, ClipVisionConfig};
use crate::model::safetensors::{Dtype, SafeTensors, SafeTensorsWriter, SafetensorsError};

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

/// (channels along `axis`, elements after `axis` per index of it).
fn channel_geometry(shape: &[usize], axis: usize) -> (usize, usize) {
    let channels = shape.get(axis).copied().unwrap_or(1);
    let inner = shape.iter().skip(axis + 1).product::<usize>();
    (channels, inner.max(1))
}

/// Symmetric per-channel int8: `scale = max|w| / 127` over each channel along
/// `axis` (1.0 for an all-zero channel), `q = round(w / scale)` in [-127, 127].
fn quantize(values: &[f32], shape: &[usize], axis: usize) -> (Vec<i8>, Vec<f32>) {
    let (channels, inner) = channel_geometry(shape, axis);
    let channel = |i: usize| (i / inner) % channels.max(1);
    let mut max = vec![0f32; channels];
    for (i, v) in values.iter().enumerate() {
        if let Some(m) = max.get_mut(channel(i)) {
            *m = m.max(v.abs());
        }
    }
    let scales: Vec<f32> = max
        .iter()
        .map(|&m| if m > 0.0 { m / 127.0 } else { 1.0 })
        .collect();
    let q = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let s = scales.get(channel(i)).copied().unwrap_or(1.0);
            (v / s).round().clamp(-127.0, 127.0) as i8
        })
        .collect();
    (q, scales)
}

/// `q × scale`, with the scale varying along `axis`.
fn dequantize(q: &[i8], shape: &[usize], axis: usize, scales: &[f32]) -> Vec<f32> {
    let (channels, inner) = channel_geometry(shape, axis);
    q.iter()
        .enumerate()
        .map(|(i, &v)| {
            let s = scales
                .get((i / inner) % channels.max(1))
                .copied()
                .unwrap_or(1.0);
            f32::from(v) * s
        })
        .collect()
}

/// Where a source layout keeps its tensors.
#[derive(Clone, Debug)]
struct Layout {
    kind: SourceLayout,
    /// open_clip only: `"visual."` for a full CLIP state dict, `""` for a bare one.
    prefix: &'static str,
}

impl Layout {
    fn patch(&self) -> String {
        match self.kind {
            SourceLayout::OpenClip => format!("{}conv1.weight", self.prefix),
            SourceLayout::Hf => "vision_model.embeddings.patch_embedding.weight".into(),
            SourceLayout::Timm => "patch_embed.proj.weight".into(),
        }
    }

    fn positions(&self) -> String {
        match self.kind {
            SourceLayout::OpenClip => format!("{}positional_embedding", self.prefix),
            SourceLayout::Hf => "vision_model.embeddings.position_embedding.weight".into(),
            SourceLayout::Timm => "pos_embed".into(),
        }
    }

    fn block(&self, i: usize) -> String {
        match self.kind {
            SourceLayout::OpenClip => format!("{}transformer.resblocks.{i}.", self.prefix),
            SourceLayout::Hf => format!("vision_model.encoder.layers.{i}."),
            SourceLayout::Timm => format!("blocks.{i}."),
        }
    }

    /// A block's first LayerNorm weight, named when no block is found.
    fn first_block_tensor(&self) -> String {
        let suffix = match self.kind {
            SourceLayout::OpenClip => "ln_1.weight",
            SourceLayout::Hf => "layer_norm1.weight",
            SourceLayout::Timm => "norm1.weight",
        };
        format!("{}{suffix}", self.block(0))
    }

    fn fc(&self, i: usize) -> String {
        let suffix = match self.kind {
            SourceLayout::OpenClip => "mlp.c_fc.weight",
            SourceLayout::Hf | SourceLayout::Timm => "mlp.fc1.weight",
        };
        format!("{}{suffix}", self.block(i))
    }

    /// The projection and whether it is stored `[out, in]` (so must be transposed).
    fn projection(&self) -> (String, bool) {
        match self.kind {
            SourceLayout::OpenClip => (format!("{}proj", self.prefix), false),
            SourceLayout::Hf => ("visual_projection.weight".into(), true),
            SourceLayout::Timm => ("head.weight".into(), true),
        }
    }

    /// Hints for a missing tensor.
    fn missing_context(&self, name: &str) -> String {
        let base = format!("a CLIP vision tower in the {} layout needs it", self.kind);
        let (proj, _) = self.projection();
        if name != proj {
            return base;
        }
        let hint = match self.kind {
            SourceLayout::OpenClip => "this tower has no output projection",
            SourceLayout::Hf => {
                "a CLIPVisionModel has no projection; convert a CLIPVisionModelWithProjection or CLIPModel checkpoint"
            }
            SourceLayout::Timm => {
                "a timm model created with num_classes=0 has no projection head; save it with its CLIP head"
            }
        };
        format!("{base} ({hint})")
    }

    /// Whether a name belongs to the vision tower (and so must be used).
    fn in_tower(&self, name: &str) -> bool {
        match (self.kind, self.prefix) {
            (SourceLayout::OpenClip, "") => !matches!(
                name,
                "logit_scale"
                    | "logit_bias"
                    | "token_embedding.weight"
                    | "text_projection"
                    | "ln_final.weight"
                    | "ln_final.bias"
                    | "attn_mask"
            ),
            (SourceLayout::OpenClip, prefix) => name.starts_with(prefix),
            (SourceLayout::Hf, _) => {
                (name.starts_with("vision_model.") || name.starts_with("visual_projection."))
                    && name != "vision_model.embeddings.position_ids"
            }
            (SourceLayout::Timm, _) => true,
        }
    }
}

/// How one canonical tensor is made from the source.
#[derive(Clone, Debug)]
enum Recipe {
    /// Same data; `shape` is the source's (it may differ by leading 1s).
    Copy { src: String, shape: Vec<usize> },
    /// Source `[rows, cols]` transposed to `[cols, rows]`.
    Transpose {
        src: String,
        rows: usize,
        cols: usize,
    },
    /// Sources of the given shapes concatenated along dimension 0.
    Concat { srcs: Vec<(String, Vec<usize>)> },
}

impl Recipe {
    fn sources(&self) -> Vec<(&str, Vec<usize>)> {
        match self {
            Recipe::Copy { src, shape } => vec![(src.as_str(), shape.clone())],
            Recipe::Transpose { src, rows, cols } => vec![(src.as_str(), vec![*rows, *cols])],
            Recipe::Concat { srcs } => srcs
                .iter()
                .map(|(s, sh)| (s.as_str(), sh.clone()))
                .collect(),
        }
    }
}

/// Split `transformer.resblocks.{i}.rest` into `(i, rest)`.
fn split_block(name: &str) -> Option<(usize, &str)> {
    let tail = name.strip_prefix("transformer.resblocks.")?;
    let (index, rest) = tail.split_once('.')?;
    Some((index.parse().ok()?, rest))
}

/// Rename `rest` by the first matching prefix pair.
fn rename(rest: &str, table: &[(&str, &str)]) -> String {
    for (from, to) in table {
        if let Some(tail) = rest.strip_prefix(from) {
            return format!("{to}{tail}");
        }
    }
    rest.to_string()
}

const HF_BLOCK: [(&str, &str); 5] = [
    ("ln_1.", "layer_norm1."),
    ("ln_2.", "layer_norm2."),
    ("attn.out_proj.", "self_attn.out_proj."),
    ("mlp.c_fc.", "mlp.fc1."),
    ("mlp.c_proj.", "mlp.fc2."),
];

const TIMM_BLOCK: [(&str, &str); 7] = [
    ("ln_1.", "norm1."),
    ("ln_2.", "norm2."),
    ("attn.in_proj_weight", "attn.qkv.weight"),
    ("attn.in_proj_bias", "attn.qkv.bias"),
    ("attn.out_proj.", "attn.proj."),
    ("mlp.c_fc.", "mlp.fc1."),
    ("mlp.c_proj.", "mlp.fc2."),
];

/// The recipe for one canonical tensor in a layout.
fn recipe(layout: &Layout, name: &str, shape: &[usize], c: &ClipVisionConfig) -> Recipe {
    let copy = |src: String, shape: Vec<usize>| Recipe::Copy { src, shape };
    let (w, t) = (c.width, checked_tokens(c).unwrap_or(usize::MAX));
    let (proj, _) = layout.projection();
    match layout.kind {
        SourceLayout::OpenClip => copy(format!("{}{name}", layout.prefix), shape.to_vec()),
        SourceLayout::Hf | SourceLayout::Timm => {
            let hf = matches!(layout.kind, SourceLayout::Hf);
            if let Some((i, rest)) = split_block(name) {
                let b = layout.block(i);
                if hf && matches!(rest, "attn.in_proj_weight" | "attn.in_proj_bias") {
                    let (kind, part_shape) = if rest.ends_with("weight") {
                        ("weight", vec![w, w])
                    } else {
                        ("bias", vec![w])
                    };
                    return Recipe::Concat {
                        srcs: ["q", "k", "v"]
                            .iter()
                            .map(|x| (format!("{b}self_attn.{x}_proj.{kind}"), part_shape.clone()))
                            .collect(),
                    };
                }
                let table: &[(&str, &str)] = if hf { &HF_BLOCK } else { &TIMM_BLOCK };
                return copy(format!("{b}{}", rename(rest, table)), shape.to_vec());
            }
            // timm keeps the class token and positions with leading unit axes.
            let (class_src, class_shape, positions_shape, norms): (&str, _, _, &[(&str, &str)]) =
                if hf {
                    (
                        "vision_model.embeddings.class_embedding",
                        vec![w],
                        vec![t, w],
                        &[
                            ("ln_pre.", "vision_model.pre_layrnorm."),
                            ("ln_post.", "vision_model.post_layernorm."),
                        ],
                    )
                } else {
                    (
                        "cls_token",
                        vec![1, 1, w],
                        vec![1, t, w],
                        &[("ln_pre.", "norm_pre."), ("ln_post.", "norm.")],
                    )
                };
            match name {
                "class_embedding" => copy(class_src.into(), class_shape),
                "positional_embedding" => copy(layout.positions(), positions_shape),
                "conv1.weight" => copy(layout.patch(), shape.to_vec()),
                "proj" => Recipe::Transpose {
                    src: proj,
                    rows: c.output_dim,
                    cols: w,
                },
                _ => copy(rename(name, norms), shape.to_vec()),
            }
        }
    }
}

fn some_names(st: &SafeTensors<'_>, pred: impl Fn(&str) -> bool, n: usize) -> String {
    let names: Vec<&str> = st.names().into_iter().filter(|s| pred(s)).take(n).collect();
    names.join("', '")
}

/// Work out which layout a checkpoint uses, or say what it is instead.
fn detect(st: &SafeTensors<'_>) -> Result<Layout, ClipWeightsError> {
    let names = st.names();
    let any = |pred: &dyn Fn(&str) -> bool| names.iter().copied().find(|n| pred(n));
    let open_clip = |prefix| Layout {
        kind: SourceLayout::OpenClip,
        prefix,
    };

    if let Some(found) = any(&|n| {
        ["visual.layer1.", "visual.attnpool.", "layer1.", "attnpool."]
            .iter()
            .any(|p| n.starts_with(p))
    }) {
        return Err(ClipWeightsError::WrongArchitecture {
            what: "this is a ResNet image tower (such as a ResNet CLIP), not a ViT".into(),
            found: found.to_string(),
        });
    }
    if st.contains("visual.conv1.weight") {
        return Ok(open_clip("visual."));
    }
    if st.contains("vision_model.embeddings.patch_embedding.weight")
        || any(&|n| n.starts_with("vision_model.")).is_some()
    {
        return Ok(Layout {
            kind: SourceLayout::Hf,
            prefix: "",
        });
    }
    if ["patch_embed.proj.weight", "cls_token", "pos_embed"]
        .iter()
        .any(|n| st.contains(n))
    {
        return Ok(Layout {
            kind: SourceLayout::Timm,
            prefix: "",
        });
    }
    if st.contains("conv1.weight") || st.contains("class_embedding") {
        return Ok(open_clip(""));
    }
    if let Some(found) = any(&|n| n.starts_with("visual.")) {
        let what = if found.starts_with("visual.trunk.") {
            "this open_clip image tower wraps a timm trunk (visual.trunk.*), which replab does not read"
        } else {
            "this open_clip image tower has no 'visual.conv1.weight' patch embedding"
        };
        return Err(ClipWeightsError::WrongArchitecture {
            what: what.into(),
            found: found.to_string(),
        });
    }
    if let Some(found) = any(&|n| n.contains("conv_blocks.")) {
        return Err(ClipWeightsError::WrongArchitecture {
            what: "these are replab's own ConvNet weights, not a CLIP checkpoint".into(),
            found: found.to_string(),
        });
    }
    if let Some(found) = any(&|n| {
        n.starts_with("text_model.")
            || matches!(
                n,
                "token_embedding.weight"
                    | "text_projection"
                    | "text_projection.weight"
                    | "ln_final.weight"
            )
    }) {
        return Err(ClipWeightsError::TextOnly {
            found: found.to_string(),
        });
    }
    if names.is_empty() {
        return Err(ClipWeightsError::WrongArchitecture {
            what: "the file holds no tensors".into(),
            found: String::new(),
        });
    }
    Err(ClipWeightsError::WrongArchitecture {
        what: "no CLIP patch embedding ('visual.conv1.weight', 'conv1.weight', 'vision_model.embeddings.patch_embedding.weight' or 'patch_embed.proj.weight') in this file".into(),
        found: some_names(st, |_| true, 4),
    })
}

/// The layout of a raw checkpoint, or the reason it is not a usable CLIP ViT.
pub fn detect_layout(st: &SafeTensors<'_>) -> Result<SourceLayout, ClipWeightsError> {
    detect(st).map(|l| l.kind)
}

fn info_of<'s>(
    st: &'s SafeTensors<'_>,
    layout: &Layout,
    name: &str,
) -> Result<&'s crate::model::safetensors::TensorInfo, ClipWeightsError> {
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
        bytes: writer.into_bytes(),
        manifest,
    })
}

/// A converted file, checked and ready to hand out tensors one at a time.
#[derive(Clone, Debug)]
pub struct ClipWeights<'a> {
    st: SafeTensors<'a>,
    manifest: ClipManifest,
    shapes: BTreeMap<String, Vec<usize>>,
}

impl<'a> ClipWeights<'a> {
    /// Parse a converted file, checking its manifest and that every canonical
    /// tensor (and each int8 weight's scale) is present with the right shape
    /// and dtype. Nothing is dequantised yet.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ClipWeightsError> {
        let st = SafeTensors::parse(bytes)?;
        match st.metadata().get("format") {
            Some(f) if f == FORMAT => {}
            Some(f) if f.starts_with("replab-") => {
                return Err(ClipWeightsError::UnknownFormat { found: f.clone() });
            }
            _ => {
                let layout = detect_layout(&st)?;
                return Err(ClipWeightsError::RawCheckpoint {
                    layout: layout.as_str().to_string(),
                });
            }
        }
        let manifest = ClipManifest::from_metadata(st.metadata())?;
        let config = &manifest.config;
        config.validate().map_err(ClipWeightsError::Config)?;
        if checked_tokens(config).is_none() {
            return Err(ClipWeightsError::Config(format!(
                "image size {} and patch size {} give too many tokens",
                config.image_size, config.patch_size
            )));
        }

        // Each block has 12 tensors; a config claiming more than the file holds is
        // rejected before anything is allocated per block.
        let needed = config.layers.checked_mul(12).and_then(|n| n.checked_add(8));
        if needed.is_none_or(|n| n > st.len()) {
            return Err(ClipWeightsError::Manifest(format!(
                "the config's {} layers need more tensors than the file's {}",
                config.layers,
                st.len()
            )));
        }

        let context = "a converted CLIP file must hold every canonical tensor of its config; re-convert the original checkpoint";
        let check = |name: &str, dtype: Dtype, shape: &[usize]| -> Result<(), ClipWeightsError> {
            let info = st.info(name).ok_or_else(|| ClipWeightsError::Missing {
                name: name.to_string(),
                context: context.into(),
            })?;
            if info.shape != shape {
                return Err(ClipWeightsError::Shape {
                    name: name.to_string(),
                    got: info.shape.clone(),
                    want: shape.to_vec(),
                });
            }
            if info.dtype != dtype {
                return Err(ClipWeightsError::UnsupportedDtype {
                    name: name.to_string(),
                    dtype: info.dtype,
                    expected: format!("this file's manifest says it is {dtype}"),
                });
            }
            Ok(())
        };
        let mut shapes = BTreeMap::new();
        let mut known = BTreeSet::new();
        for (name, shape) in canonical_names(config) {
            match quantized_axis(&name).filter(|_| manifest.is_quantized()) {
                Some(axis) => {
                    check(&name, Dtype::I8, &shape)?;
                    let scale = format!("{name}{SCALE_SUFFIX}");
                    check(&scale, Dtype::F32, &scale_shape(&shape, axis))?;
                    known.insert(scale);
                }
                None => check(&name, Dtype::F32, &shape)?,
            }
            known.insert(name.clone());
            shapes.insert(name, shape);
        }
        if let Some(extra) = st.names().into_iter().find(|n| !known.contains(*n)) {
            return Err(ClipWeightsError::Unexpected {
                name: extra.to_string(),
                hint: "the manifest's config has no such tensor; the file was altered after conversion".into(),
            });
        }
        Ok(Self {
            st,
            manifest,
            shapes,
        })
    }

    /// The file's manifest.
    pub fn manifest(&self) -> &ClipManifest {
        &self.manifest
    }

    /// The tower's configuration.
    pub fn config(&self) -> &ClipVisionConfig {
        &self.manifest.config
    }

    /// Whether the matrix weights are stored as int8.
    pub fn is_quantized(&self) -> bool {
        self.manifest.is_quantized()
    }

    /// One canonical tensor's shape and f32 values, dequantised (`q × scale`)
    /// if it is stored as int8. Only this tensor is materialised.
    pub fn tensor(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>), ClipWeightsError> {
        let shape = self
            .shapes
            .get(name)
            .ok_or_else(|| ClipWeightsError::Missing {
                name: name.to_string(),
                context: "not a canonical tensor of this configuration (see canonical_names)"
                    .into(),
            })?
            .clone();
        let values = match quantized_axis(name).filter(|_| self.is_quantized()) {
            Some(axis) => {
                let q = self.st.to_i8(name)?;
                let scales = self.st.to_f32(&format!("{name}{SCALE_SUFFIX}"))?;
                dequantize(&q, &shape, axis, &scales)
            }
            None => self.st.to_f32(name)?,
        };
        Ok((shape, values))
    }
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
    fn quantisation_is_per_output_channel_and_round_trips() {
        // [2, 3] with output axis 0: rows are channels.
        let w = [1.0, -0.5, 0.25, 0.0, 0.0, 0.0];
        let (q, s) = quantize(&w, &[2, 3], 0);
        assert_eq!(s, vec![1.0 / 127.0, 1.0]);
        assert_eq!(q, vec![127, -64, 32, 0, 0, 0]);
        // Output axis 1: columns are channels.
        let w = [2.0, -1.0, -4.0, 0.5];
        let (q, s) = quantize(&w, &[2, 2], 1);
        assert_eq!(s, vec![4.0 / 127.0, 1.0 / 127.0]);
        assert_eq!(q, vec![64, -127, -127, 64]);
        let back = dequantize(&q, &[2, 2], 1, &s);
        for (a, b) in back.iter().zip(w) {
            assert!((a - b).abs() <= 4.0 / 127.0 / 2.0 + 1e-6);
        }
        // Conv weights: everything after axis 0 shares a scale.
        let w: Vec<f32> = (0..24).map(|i| i as f32 - 12.0).collect();
        let (q, s) = quantize(&w, &[2, 3, 2, 2], 0);
        assert_eq!(s, vec![12.0 / 127.0, 11.0 / 127.0]);
        assert_eq!(q[0], -127);
        assert_eq!(q[23], 127);
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

    fn file(names: &[&str]) -> Vec<u8> {
        let mut w = SafeTensorsWriter::new();
        for n in names {
            w.add_f32(n, &[1], &[0.0]).unwrap();
        }
        w.to_bytes()
    }

    fn detected(names: &[&str]) -> Result<SourceLayout, ClipWeightsError> {
        let bytes = file(names);
        let st = SafeTensors::parse(&bytes).unwrap();
        detect_layout(&st)
    }

    #[test]
    fn layouts_and_impostors_are_told_apart() {
        assert_eq!(
            detected(&[
                "visual.conv1.weight",
                "token_embedding.weight",
                "transformer.resblocks.0.ln_1.weight"
            ])
            .unwrap(),
            SourceLayout::OpenClip
        );
        assert_eq!(detected(&["conv1.weight"]).unwrap(), SourceLayout::OpenClip);
        assert_eq!(
            detected(&[
                "vision_model.embeddings.patch_embedding.weight",
                "text_model.x"
            ])
            .unwrap(),
            SourceLayout::Hf
        );
        assert_eq!(
            detected(&["patch_embed.proj.weight"]).unwrap(),
            SourceLayout::Timm
        );
        let err = detected(&["visual.conv1.weight", "visual.layer1.0.conv1.weight"]).unwrap_err();
        assert!(matches!(err, ClipWeightsError::WrongArchitecture { .. }));
        assert!(
            err.to_string().contains("visual.layer1.0.conv1.weight"),
            "{err}"
        );
        let err = detected(&["model.conv_blocks.0.block.0.weight"]).unwrap_err();
        assert!(err.to_string().contains("ConvNet"), "{err}");
        let err = detected(&[
            "token_embedding.weight",
            "transformer.resblocks.0.ln_1.weight",
        ])
        .unwrap_err();
        assert!(matches!(err, ClipWeightsError::TextOnly { .. }), "{err}");
        let err = detected(&["text_model.embeddings.token_embedding.weight"]).unwrap_err();
        assert!(err.to_string().contains("text tower"), "{err}");
        let err = detected(&["fc.weight", "fc.bias"]).unwrap_err();
        assert!(err.to_string().contains("fc.bias"), "{err}");
        assert!(detected(&[]).is_err());
    }
}
