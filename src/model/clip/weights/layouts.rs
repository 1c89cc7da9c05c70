//! Where each source layout (open_clip, Hugging Face, timm) keeps a tower's
//! tensors, and the recipe that makes each canonical tensor from them.

use super::{SourceLayout, checked_tokens};
use crate::model::clip::config::ClipVisionConfig;

/// Where a source layout keeps its tensors.
#[derive(Clone, Debug)]
pub(super) struct Layout {
    pub(super) kind: SourceLayout,
    /// open_clip only: `"visual."` for a full CLIP state dict, `""` for a bare one.
    pub(super) prefix: &'static str,
}

impl Layout {
    pub(super) fn patch(&self) -> String {
        match self.kind {
            SourceLayout::OpenClip => format!("{}conv1.weight", self.prefix),
            SourceLayout::Hf => "vision_model.embeddings.patch_embedding.weight".into(),
            SourceLayout::Timm => "patch_embed.proj.weight".into(),
        }
    }

    pub(super) fn positions(&self) -> String {
        match self.kind {
            SourceLayout::OpenClip => format!("{}positional_embedding", self.prefix),
            SourceLayout::Hf => "vision_model.embeddings.position_embedding.weight".into(),
            SourceLayout::Timm => "pos_embed".into(),
        }
    }

    pub(super) fn block(&self, i: usize) -> String {
        match self.kind {
            SourceLayout::OpenClip => format!("{}transformer.resblocks.{i}.", self.prefix),
            SourceLayout::Hf => format!("vision_model.encoder.layers.{i}."),
            SourceLayout::Timm => format!("blocks.{i}."),
        }
    }

    /// A block's first LayerNorm weight, named when no block is found.
    pub(super) fn first_block_tensor(&self) -> String {
        let suffix = match self.kind {
            SourceLayout::OpenClip => "ln_1.weight",
            SourceLayout::Hf => "layer_norm1.weight",
            SourceLayout::Timm => "norm1.weight",
        };
        format!("{}{suffix}", self.block(0))
    }

    pub(super) fn fc(&self, i: usize) -> String {
        let suffix = match self.kind {
            SourceLayout::OpenClip => "mlp.c_fc.weight",
            SourceLayout::Hf | SourceLayout::Timm => "mlp.fc1.weight",
        };
        format!("{}{suffix}", self.block(i))
    }

    /// The projection and whether it is stored `[out, in]` (so must be transposed).
    pub(super) fn projection(&self) -> (String, bool) {
        match self.kind {
            SourceLayout::OpenClip => (format!("{}proj", self.prefix), false),
            SourceLayout::Hf => ("visual_projection.weight".into(), true),
            SourceLayout::Timm => ("head.weight".into(), true),
        }
    }

    /// Hints for a missing tensor.
    pub(super) fn missing_context(&self, name: &str) -> String {
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
    pub(super) fn in_tower(&self, name: &str) -> bool {
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
pub(super) enum Recipe {
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
    pub(super) fn sources(&self) -> Vec<(&str, Vec<usize>)> {
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
pub(super) fn recipe(layout: &Layout, name: &str, shape: &[usize], c: &ClipVisionConfig) -> Recipe {
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
