//! Loading weights exported from PyTorch, from bytes.
//!
//! The container is safetensors, read by [`crate::model::safetensors`]; every
//! tensor must be F32 and is copied out up front. Names follow PyTorch's
//! `state_dict()`, so a notebook model's weights load as is.

use std::collections::HashMap;

use crate::model::safetensors::{Dtype, SafeTensors, SafetensorsError};

/// Why a weights file could not be used. Each message names the tensor at fault.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum StateError {
    /// The container is malformed or truncated.
    #[error("not a valid safetensors file: {0}")]
    Format(String),
    /// A tensor the model needs is absent.
    #[error("missing tensor '{0}'")]
    Missing(String),
    /// A tensor has the wrong shape.
    #[error("tensor '{name}' has shape {got:?}, the model needs {want:?}")]
    Shape {
        /// The tensor.
        name: String,
        /// Its shape in the file.
        got: Vec<usize>,
        /// The shape the model needs.
        want: Vec<usize>,
    },
}

/// Named f32 tensors.
#[derive(Clone, Debug, Default)]
pub struct TensorMap {
    tensors: HashMap<String, (Vec<usize>, Vec<f32>)>,
}

impl TensorMap {
    /// Parse a safetensors file with F32 tensors.
    pub fn from_safetensors(bytes: &[u8]) -> Result<Self, StateError> {
        let format = |e: SafetensorsError| StateError::Format(e.to_string());
        let st = SafeTensors::parse(bytes).map_err(format)?;
        let mut tensors = HashMap::with_capacity(st.len());
        for name in st.names() {
            let Some(info) = st.info(name) else {
                return Err(StateError::Missing(name.to_string()));
            };
            if info.dtype != Dtype::F32 {
                return Err(StateError::Format(format!(
                    "tensor '{name}' has dtype {}; only F32 is read here",
                    info.dtype
                )));
            }
            let values = st.to_f32(name).map_err(format)?;
            tensors.insert(name.to_string(), (info.shape.clone(), values));
        }
        Ok(Self { tensors })
    }

    /// A tensor's values, checking its shape.
    pub fn get(&self, name: &str, want: &[usize]) -> Result<&[f32], StateError> {
        let (shape, values) = self
            .tensors
            .get(name)
            .ok_or_else(|| StateError::Missing(name.to_string()))?;
        if shape != want {
            return Err(StateError::Shape {
                name: name.to_string(),
                got: shape.clone(),
                want: want.to_vec(),
            });
        }
        Ok(values)
    }

    /// A tensor's shape and values, without a shape check.
    pub fn raw(&self, name: &str) -> Option<(&[usize], &[f32])> {
        self.tensors
            .get(name)
            .map(|(s, v)| (s.as_slice(), v.as_slice()))
    }
}
