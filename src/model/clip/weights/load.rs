//! Reading a converted file back: [`ClipWeights`].

use std::collections::{BTreeMap, BTreeSet};

use super::detect::detect_layout;
use super::quantize::dequantize;
use super::{
    ClipManifest, ClipWeightsError, FORMAT, SCALE_SUFFIX, canonical_names, checked_tokens,
    quantized_axis, scale_shape,
};
use crate::model::clip::config::ClipVisionConfig;
use crate::model::safetensors::{Dtype, SafeTensors};

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
