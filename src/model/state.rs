//! Loading weights exported from PyTorch, from bytes.
//!
//! The container is safetensors: an 8-byte little-endian header length, a JSON
//! header naming each tensor's dtype, shape and byte range, then the raw data.
//! Names follow PyTorch's `state_dict()`, so a notebook model's weights load as is.

use std::collections::HashMap;

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
        let fmt = |s: &str| StateError::Format(s.to_string());
        let len_bytes: [u8; 8] = bytes
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| fmt("shorter than its 8-byte header length"))?;
        let header_len = usize::try_from(u64::from_le_bytes(len_bytes))
            .map_err(|_| fmt("header length overflows"))?;
        let header = bytes
            .get(8..8usize.saturating_add(header_len))
            .ok_or_else(|| fmt("truncated header"))?;
        let data = &bytes[8 + header_len..];
        let json: serde_json::Value =
            serde_json::from_slice(header).map_err(|e| fmt(&format!("header is not JSON: {e}")))?;
        let obj = json
            .as_object()
            .ok_or_else(|| fmt("header is not an object"))?;
        let mut tensors = HashMap::new();
        for (name, info) in obj {
            if name == "__metadata__" {
                continue;
            }
            let dtype = info.get("dtype").and_then(|d| d.as_str()).unwrap_or("");
            if dtype != "F32" {
                return Err(fmt(&format!(
                    "tensor '{name}' has dtype {dtype}; only F32 is read here"
                )));
            }
            let shape: Vec<usize> = info
                .get("shape")
                .and_then(|s| s.as_array())
                .ok_or_else(|| fmt(&format!("tensor '{name}' has no shape")))?
                .iter()
                .map(|d| d.as_u64().map(|d| d as usize))
                .collect::<Option<_>>()
                .ok_or_else(|| fmt(&format!("tensor '{name}' has a bad shape")))?;
            let offsets: Vec<usize> = info
                .get("data_offsets")
                .and_then(|s| s.as_array())
                .and_then(|a| a.iter().map(|d| d.as_u64().map(|d| d as usize)).collect())
                .ok_or_else(|| fmt(&format!("tensor '{name}' has bad offsets")))?;
            let &[begin, end] = offsets.as_slice() else {
                return Err(fmt(&format!("tensor '{name}' has bad offsets")));
            };
            let count = shape.iter().product::<usize>();
            let raw = data.get(begin..end).ok_or_else(|| {
                fmt(&format!(
                    "tensor '{name}' runs past the end of the file (truncated?)"
                ))
            })?;
            if raw.len() != count * 4 {
                return Err(fmt(&format!(
                    "tensor '{name}' byte length does not match its shape"
                )));
            }
            let values = raw
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            tensors.insert(name.clone(), (shape, values));
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
