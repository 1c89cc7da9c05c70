//! Writing a file: [`SafeTensorsWriter`].

use std::borrow::Cow;
use std::collections::BTreeMap;

use safetensors::View;

use super::{Dtype, MAX_HEADER_LEN, SafetensorsError};

/// A tensor waiting to be written: its little-endian bytes, checked against
/// its dtype and shape.
#[derive(Clone, Debug)]
struct Pending {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl View for &Pending {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

impl View for Pending {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

/// More than the bytes a tensor's header entry takes besides its name and
/// shape: quotes, keys, the longest dtype name and two 20-digit offsets.
const ENTRY_OVERHEAD: usize = 128;

/// Builds a safetensors file in memory.
#[derive(Clone, Debug, Default)]
pub struct SafeTensorsWriter {
    metadata: BTreeMap<String, String>,
    tensors: BTreeMap<String, Pending>,
    /// An upper bound on the length of the tensors' header entries.
    header_bound: usize,
}

impl SafeTensorsWriter {
    /// An empty file: no metadata, no tensors.
    pub fn new() -> Self {
        Self::default()
    }

    /// Set a `__metadata__` entry (replacing an earlier one with the same key).
    pub fn metadata(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// Add a tensor from its little-endian bytes, checking they match the shape.
    ///
    /// This checks everything the `safetensors` crate checks when it writes
    /// the file (including its limit on the header's size), so that
    /// [`Self::to_bytes`] and [`Self::into_bytes`] cannot fail.
    pub fn add_raw(
        &mut self,
        name: &str,
        dtype: Dtype,
        shape: &[usize],
        bytes: Vec<u8>,
    ) -> Result<&mut Self, SafetensorsError> {
        let err = |problem: String| SafetensorsError::Write {
            name: name.to_string(),
            problem,
        };
        if name == "__metadata__" {
            return Err(err("the name is reserved for the metadata".into()));
        }
        if self.tensors.contains_key(name) {
            return Err(err("a tensor with this name was already added".into()));
        }
        let bits = shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .and_then(|n| n.checked_mul(dtype.bitsize()))
            .ok_or_else(|| err(format!("shape {shape:?} overflows")))?;
        if bits % 8 != 0 || bits / 8 != bytes.len() {
            return Err(err(format!(
                "shape {shape:?} of {dtype} needs {} bits but {} bytes were given",
                bits,
                bytes.len()
            )));
        }
        // JSON escaping at most sextuples a name; a dimension takes at most 21 bytes.
        let entry_bound = name
            .len()
            .saturating_mul(6)
            .saturating_add(shape.len().saturating_mul(21))
            .saturating_add(ENTRY_OVERHEAD);
        let header_bound = self.header_bound.saturating_add(entry_bound);
        if !u64::try_from(header_bound).is_ok_and(|n| n <= MAX_HEADER_LEN) {
            return Err(err(format!(
                "the header would exceed the {MAX_HEADER_LEN} bytes the format allows"
            )));
        }
        self.header_bound = header_bound;
        let pending = Pending {
            dtype,
            shape: shape.to_vec(),
            bytes,
        };
        self.tensors.insert(name.to_string(), pending);
        Ok(self)
    }

    fn check_len(name: &str, shape: &[usize], len: usize) -> Result<(), SafetensorsError> {
        let numel = shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
        if numel != Some(len) {
            return Err(SafetensorsError::Write {
                name: name.to_string(),
                problem: format!("shape {shape:?} does not hold {len} values"),
            });
        }
        Ok(())
    }

    /// Add an F32 tensor.
    pub fn add_f32(
        &mut self,
        name: &str,
        shape: &[usize],
        values: &[f32],
    ) -> Result<&mut Self, SafetensorsError> {
        Self::check_len(name, shape, values.len())?;
        let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.add_raw(name, Dtype::F32, shape, bytes)
    }

    /// Add an I8 tensor.
    pub fn add_i8(
        &mut self,
        name: &str,
        shape: &[usize],
        values: &[i8],
    ) -> Result<&mut Self, SafetensorsError> {
        Self::check_len(name, shape, values.len())?;
        let bytes = values.iter().map(|&v| v as u8).collect();
        self.add_raw(name, Dtype::I8, shape, bytes)
    }

    /// Add an F16 tensor, rounding each f32 to the nearest half.
    pub fn add_f16(
        &mut self,
        name: &str,
        shape: &[usize],
        values: &[f32],
    ) -> Result<&mut Self, SafetensorsError> {
        Self::check_len(name, shape, values.len())?;
        let bytes = values
            .iter()
            .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
            .collect();
        self.add_raw(name, Dtype::F16, shape, bytes)
    }

    /// Add a BF16 tensor, rounding each f32 to the nearest bfloat16.
    pub fn add_bf16(
        &mut self,
        name: &str,
        shape: &[usize],
        values: &[f32],
    ) -> Result<&mut Self, SafetensorsError> {
        Self::check_len(name, shape, values.len())?;
        let bytes = values
            .iter()
            .flat_map(|&v| half::bf16::from_f32(v).to_le_bytes())
            .collect();
        self.add_raw(name, Dtype::BF16, shape, bytes)
    }

    /// The complete file, or why the `safetensors` crate could not write it.
    pub fn try_to_bytes(&self) -> Result<Vec<u8>, SafetensorsError> {
        let file = safetensors::serialize(self.tensors.iter(), None).map_err(encode_err)?;
        with_metadata(file, &self.metadata)
    }

    /// The complete file, releasing each tensor's buffer as it is copied so a
    /// large file is not held twice; or why it could not be written.
    pub fn try_into_bytes(self) -> Result<Vec<u8>, SafetensorsError> {
        let file = safetensors::serialize(self.tensors, None).map_err(encode_err)?;
        with_metadata(file, &self.metadata)
    }

    /// The complete file. [`Self::add_raw`] has checked everything that could
    /// make writing it fail; should it fail anyway the result is empty, which
    /// every reader rejects. [`Self::try_to_bytes`] keeps the error.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.try_to_bytes().unwrap_or_default()
    }

    /// Like [`Self::to_bytes`], releasing each tensor's buffer as it is copied
    /// so a large file is not held twice. [`Self::try_into_bytes`] keeps the
    /// error.
    pub fn into_bytes(self) -> Vec<u8> {
        self.try_into_bytes().unwrap_or_default()
    }
}

fn encode_err(e: impl std::fmt::Display) -> SafetensorsError {
    SafetensorsError::Encode(e.to_string())
}

/// Add the `__metadata__` entries to a file the crate wrote without them. The
/// crate takes them as a `HashMap` and writes them in its random order; here
/// they are written in key order so the same input always gives the same
/// bytes. The data's offsets are relative to its start, so only the header
/// and its length change; the header stays padded to a multiple of 8 bytes.
fn with_metadata(
    mut file: Vec<u8>,
    metadata: &BTreeMap<String, String>,
) -> Result<Vec<u8>, SafetensorsError> {
    if metadata.is_empty() {
        return Ok(file);
    }
    let header_end = file
        .get(..8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .and_then(|b| usize::try_from(u64::from_le_bytes(b)).ok())
        .and_then(|n| n.checked_add(8))
        .filter(|&end| end <= file.len())
        .ok_or_else(|| encode_err("the serialised file has no valid header length"))?;
    let old = file.get(8..header_end).unwrap_or_default();
    let mut header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(old).map_err(encode_err)?;
    let meta = serde_json::to_value(metadata).map_err(encode_err)?;
    header.insert("__metadata__".into(), meta);
    let mut text = serde_json::to_vec(&header).map_err(encode_err)?;
    text.resize(text.len().next_multiple_of(8), b' ');
    let mut head = (text.len() as u64).to_le_bytes().to_vec();
    head.append(&mut text);
    drop(file.splice(..header_end, head));
    Ok(file)
}
