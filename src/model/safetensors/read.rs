//! Reading a file: [`SafeTensors`].

use std::collections::BTreeMap;
use std::ops::Range;

use safetensors::tensor::Metadata;

use super::{Dtype, MAX_HEADER_LEN, SafetensorsError, TensorInfo, explain, tensor_err};

#[derive(Clone, Debug)]
struct Entry {
    info: TensorInfo,
    /// Absolute byte range within the file.
    range: Range<usize>,
}

/// A parsed safetensors file borrowing its bytes.
#[derive(Clone, Debug)]
pub struct SafeTensors<'a> {
    bytes: &'a [u8],
    tensors: BTreeMap<String, Entry>,
    metadata: BTreeMap<String, String>,
}

/// The header's text and the offset where the data starts, checked against
/// the input's length.
fn split_header(bytes: &[u8]) -> Result<(&str, usize), SafetensorsError> {
    let prefix: [u8; 8] = bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or(SafetensorsError::TooShort { len: bytes.len() })?;
    let header_len = u64::from_le_bytes(prefix);
    let too_long = SafetensorsError::HeaderLength {
        header_len,
        available: bytes.len().saturating_sub(8),
    };
    let data_start = usize::try_from(header_len)
        .ok()
        .and_then(|n| n.checked_add(8))
        .filter(|&end| end <= bytes.len())
        .ok_or_else(|| too_long.clone())?;
    if header_len > MAX_HEADER_LEN {
        return Err(SafetensorsError::Header(format!(
            "the header claims {header_len} bytes, more than the {MAX_HEADER_LEN} the format allows"
        )));
    }
    let header = bytes.get(8..data_start).ok_or(too_long)?;
    let header = std::str::from_utf8(header)
        .map_err(|e| SafetensorsError::Header(format!("not UTF-8: {e}")))?;
    Ok((header, data_start))
}

impl<'a> SafeTensors<'a> {
    /// Parse and validate a whole file, borrowing `bytes`.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, SafetensorsError> {
        let (header, data_start) = split_header(bytes)?;
        // The crate's `SafeTensors::read_metadata` checks the data length by
        // adding it to the header's last offset unchecked, which overflows (a
        // panic in debug builds) on a hostile header. Deserialising its
        // `Metadata` runs the same validation of the header without that sum;
        // the data length is checked below instead.
        let meta: Metadata =
            serde_json::from_str(header).map_err(|e| explain::rejected(header, &e))?;
        let data_len = bytes.len().saturating_sub(data_start);

        let mut by_offset: Vec<_> = meta.tensors().into_iter().collect();
        by_offset.sort_by_key(|(_, info)| info.data_offsets);
        let mut tensors = BTreeMap::new();
        for (name, info) in by_offset {
            let (begin, end) = info.data_offsets;
            if end > data_len {
                return Err(tensor_err(
                    &name,
                    format!(
                        "runs past the end of the file (truncated?): its data ends at byte {end} of a {data_len}-byte data section"
                    ),
                ));
            }
            let entry = Entry {
                info: TensorInfo {
                    dtype: info.dtype,
                    shape: info.shape.clone(),
                },
                range: (data_start + begin)..(data_start + end),
            };
            tensors.insert(name, entry);
        }
        if meta.data_len() != data_len {
            return Err(SafetensorsError::Header(format!(
                "the tensors cover {} bytes of data but {data_len} follow the header",
                meta.data_len()
            )));
        }
        let metadata = meta
            .metadata()
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(Self {
            bytes,
            tensors,
            metadata,
        })
    }

    /// Tensor names, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.tensors.keys().map(String::as_str).collect()
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// Whether the file holds no tensors.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// Whether a tensor with this name exists.
    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// A tensor's dtype and shape.
    pub fn info(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.get(name).map(|e| &e.info)
    }

    /// The `__metadata__` strings (empty if the file has none).
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }

    /// A tensor's bytes, exactly as stored (little-endian).
    pub fn raw(&self, name: &str) -> Option<&'a [u8]> {
        let bytes = self.bytes;
        self.tensors
            .get(name)
            .and_then(|e| bytes.get(e.range.clone()))
    }

    /// A tensor's absolute byte range within the file.
    pub fn byte_range(&self, name: &str) -> Option<Range<usize>> {
        self.tensors.get(name).map(|e| e.range.clone())
    }

    fn entry(&self, name: &str) -> Result<(&TensorInfo, &'a [u8]), SafetensorsError> {
        let bytes = self.bytes;
        let e = self
            .tensors
            .get(name)
            .ok_or_else(|| SafetensorsError::Missing(name.to_string()))?;
        let raw = bytes
            .get(e.range.clone())
            .ok_or_else(|| tensor_err(name, "runs past the end of the file (truncated?)"))?;
        Ok((&e.info, raw))
    }

    /// A tensor's values widened to f32, from F32, F64, F16, BF16 or I8.
    pub fn to_f32(&self, name: &str) -> Result<Vec<f32>, SafetensorsError> {
        let (info, raw) = self.entry(name)?;
        Ok(match info.dtype {
            Dtype::F32 => raw
                .as_chunks::<4>()
                .0
                .iter()
                .map(|c| f32::from_le_bytes(*c))
                .collect(),
            Dtype::F64 => raw
                .as_chunks::<8>()
                .0
                .iter()
                .map(|c| f64::from_le_bytes(*c) as f32)
                .collect(),
            Dtype::F16 => raw
                .as_chunks::<2>()
                .0
                .iter()
                .map(|c| half::f16::from_le_bytes(*c).to_f32())
                .collect(),
            Dtype::BF16 => raw
                .as_chunks::<2>()
                .0
                .iter()
                .map(|c| half::bf16::from_le_bytes(*c).to_f32())
                .collect(),
            Dtype::I8 => raw.iter().map(|&b| f32::from(b as i8)).collect(),
            dtype => {
                return Err(SafetensorsError::UnsupportedDtype {
                    name: name.to_string(),
                    dtype,
                });
            }
        })
    }

    /// An I8 tensor's values.
    pub fn to_i8(&self, name: &str) -> Result<Vec<i8>, SafetensorsError> {
        let (info, raw) = self.entry(name)?;
        if info.dtype != Dtype::I8 {
            return Err(SafetensorsError::UnsupportedDtype {
                name: name.to_string(),
                dtype: info.dtype,
            });
        }
        Ok(raw.iter().map(|&b| b as i8).collect())
    }
}
