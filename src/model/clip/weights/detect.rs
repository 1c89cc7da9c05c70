//! Telling which layout a checkpoint uses, or what it is instead (a ResNet,
//! a text tower, replab's own ConvNet, ...).

use super::layouts::Layout;
use super::{ClipWeightsError, SourceLayout};
use crate::model::safetensors::SafeTensors;

fn some_names(st: &SafeTensors<'_>, pred: impl Fn(&str) -> bool, n: usize) -> String {
    let names: Vec<&str> = st.names().into_iter().filter(|s| pred(s)).take(n).collect();
    names.join("', '")
}

/// Work out which layout a checkpoint uses, or say what it is instead.
pub(super) fn detect(st: &SafeTensors<'_>) -> Result<Layout, ClipWeightsError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::safetensors::SafeTensorsWriter;

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
