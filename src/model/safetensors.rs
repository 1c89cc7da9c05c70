//! The safetensors container, read from and written to bytes.
//!
//! A file is an 8-byte little-endian header length `N`, then `N` bytes of UTF-8
//! JSON, then the tensor data. The JSON object maps each tensor's name to its
//! `dtype`, `shape` and `data_offsets` (a `[begin, end)` byte range relative to
//! the start of the data), plus an optional `__metadata__` object of strings.
//!
//! [`SafeTensors::parse`] borrows the bytes and copies no tensor data; it checks
//! everything the format promises (the header fits, offsets are in range,
//! ordered, contiguous and match each shape) so that later accessors cannot
//! fail on a malformed file. [`SafeTensorsWriter`] produces files that
//! Python's `safetensors` package reads: keys are sorted, the header is padded
//! with spaces so the data starts on an 8-byte boundary, and tensors are laid
//! out widest dtype first so each one is aligned to its element size.
//!
//! Unlike [`crate::model::state::TensorMap`], which reads F32 only and copies
//! everything up front, this reader handles several dtypes and converts one
//! tensor at a time.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;

/// Why a safetensors file could not be read or written. Messages name the
/// tensor at fault where there is one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SafetensorsError {
    /// Fewer than the 8 bytes that hold the header length.
    #[error(
        "the file is {len} bytes long, too short to hold the 8-byte header length: not a safetensors file"
    )]
    TooShort {
        /// Length of the input in bytes.
        len: usize,
    },
    /// The header length points past the end of the input.
    #[error(
        "the header claims {header_len} bytes but only {available} follow the length prefix: not a safetensors file, or truncated"
    )]
    HeaderLength {
        /// The header length the file declares.
        header_len: u64,
        /// Bytes actually present after the 8-byte prefix.
        available: usize,
    },
    /// The header is not the JSON the format requires.
    #[error("invalid safetensors header: {0}")]
    Header(String),
    /// One tensor's entry is malformed or its data is out of place.
    #[error("tensor '{name}' {problem}")]
    Tensor {
        /// The tensor.
        name: String,
        /// What is wrong with it, as a phrase following its name.
        problem: String,
    },
    /// No tensor has this name.
    #[error("no tensor named '{0}' in the file")]
    Missing(String),
    /// The tensor exists but its dtype cannot be converted as asked.
    #[error(
        "tensor '{name}' has unsupported dtype {dtype} (readable as f32: F32, F64, F16, BF16, I8)"
    )]
    UnsupportedDtype {
        /// The tensor.
        name: String,
        /// Its dtype.
        dtype: Dtype,
    },
    /// The writer was given inconsistent input.
    #[error("cannot write tensor '{name}': {problem}")]
    Write {
        /// The tensor being added.
        name: String,
        /// What is wrong.
        problem: String,
    },
}

/// Element types the format defines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dtype {
    /// Boolean, one byte each.
    Bool,
    /// 4-bit float (E2M1), two per byte.
    F4,
    /// 6-bit float (E2M3), packed.
    F6E2M3,
    /// 6-bit float (E3M2), packed.
    F6E3M2,
    /// Unsigned 8-bit integer.
    U8,
    /// Signed 8-bit integer.
    I8,
    /// 8-bit float, E5M2.
    F8E5M2,
    /// 8-bit float, E4M3.
    F8E4M3,
    /// 8-bit exponent-only scale, E8M0.
    F8E8M0,
    /// Signed 16-bit integer.
    I16,
    /// Unsigned 16-bit integer.
    U16,
    /// IEEE half precision.
    F16,
    /// bfloat16.
    BF16,
    /// Signed 32-bit integer.
    I32,
    /// Unsigned 32-bit integer.
    U32,
    /// IEEE single precision.
    F32,
    /// Complex number of two f32.
    C64,
    /// IEEE double precision.
    F64,
    /// Signed 64-bit integer.
    I64,
    /// Unsigned 64-bit integer.
    U64,
}

impl Dtype {
    const ALL: [Dtype; 20] = [
        Dtype::Bool,
        Dtype::F4,
        Dtype::F6E2M3,
        Dtype::F6E3M2,
        Dtype::U8,
        Dtype::I8,
        Dtype::F8E5M2,
        Dtype::F8E4M3,
        Dtype::F8E8M0,
        Dtype::I16,
        Dtype::U16,
        Dtype::F16,
        Dtype::BF16,
        Dtype::I32,
        Dtype::U32,
        Dtype::F32,
        Dtype::C64,
        Dtype::F64,
        Dtype::I64,
        Dtype::U64,
    ];

    /// The name used in the header, such as `"F32"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Dtype::Bool => "BOOL",
            Dtype::F4 => "F4",
            Dtype::F6E2M3 => "F6_E2M3",
            Dtype::F6E3M2 => "F6_E3M2",
            Dtype::U8 => "U8",
            Dtype::I8 => "I8",
            Dtype::F8E5M2 => "F8_E5M2",
            Dtype::F8E4M3 => "F8_E4M3",
            Dtype::F8E8M0 => "F8_E8M0",
            Dtype::I16 => "I16",
            Dtype::U16 => "U16",
            Dtype::F16 => "F16",
            Dtype::BF16 => "BF16",
            Dtype::I32 => "I32",
            Dtype::U32 => "U32",
            Dtype::F32 => "F32",
            Dtype::C64 => "C64",
            Dtype::F64 => "F64",
            Dtype::I64 => "I64",
            Dtype::U64 => "U64",
        }
    }

    /// The dtype a header names, if the format defines it.
    pub fn from_name(name: &str) -> Option<Dtype> {
        Self::ALL.into_iter().find(|d| d.as_str() == name)
    }

    /// Bits per element (sub-byte types are packed).
    pub fn bits(self) -> usize {
        match self {
            Dtype::F4 => 4,
            Dtype::F6E2M3 | Dtype::F6E3M2 => 6,
            Dtype::Bool | Dtype::U8 | Dtype::I8 => 8,
            Dtype::F8E5M2 | Dtype::F8E4M3 | Dtype::F8E8M0 => 8,
            Dtype::I16 | Dtype::U16 | Dtype::F16 | Dtype::BF16 => 16,
            Dtype::I32 | Dtype::U32 | Dtype::F32 => 32,
            Dtype::C64 | Dtype::F64 | Dtype::I64 | Dtype::U64 => 64,
        }
    }
}

impl fmt::Display for Dtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the header says about one tensor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    /// Element type.
    pub dtype: Dtype,
    /// Dimensions, outermost first; empty for a scalar.
    pub shape: Vec<usize>,
}

impl TensorInfo {
    /// Number of elements (1 for a scalar). Parsing has checked it does not overflow.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

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

/// The header's top-level entries in file order, so duplicates can be caught.
struct HeaderEntries(Vec<(String, serde_json::Value)>);

impl<'de> serde::Deserialize<'de> for HeaderEntries {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = HeaderEntries;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<HeaderEntries, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry::<String, serde_json::Value>()? {
                    out.push(entry);
                }
                Ok(HeaderEntries(out))
            }
        }
        deserializer.deserialize_map(Visit)
    }
}

fn tensor_err(name: &str, problem: impl Into<String>) -> SafetensorsError {
    SafetensorsError::Tensor {
        name: name.to_string(),
        problem: problem.into(),
    }
}

/// Parse one tensor's header entry into its info and relative byte range.
fn parse_entry(
    name: &str,
    value: &serde_json::Value,
) -> Result<(TensorInfo, usize, usize), SafetensorsError> {
    let obj = value
        .as_object()
        .ok_or_else(|| tensor_err(name, "has a header entry that is not a JSON object"))?;
    let dtype_name = obj
        .get("dtype")
        .and_then(|d| d.as_str())
        .ok_or_else(|| tensor_err(name, "has no \"dtype\" string"))?;
    let dtype = Dtype::from_name(dtype_name)
        .ok_or_else(|| tensor_err(name, format!("has unknown dtype '{dtype_name}'")))?;
    let shape = obj
        .get("shape")
        .and_then(|s| s.as_array())
        .ok_or_else(|| tensor_err(name, "has no \"shape\" array"))?
        .iter()
        .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
        .collect::<Option<Vec<usize>>>()
        .ok_or_else(|| {
            tensor_err(
                name,
                "has a shape that is not a list of non-negative integers",
            )
        })?;
    let offsets = obj
        .get("data_offsets")
        .and_then(|s| s.as_array())
        .ok_or_else(|| tensor_err(name, "has no \"data_offsets\" array"))?
        .iter()
        .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
        .collect::<Option<Vec<usize>>>()
        .ok_or_else(|| tensor_err(name, "has data offsets that are not non-negative integers"))?;
    let &[begin, end] = offsets.as_slice() else {
        return Err(tensor_err(
            name,
            format!("has {} data offsets instead of 2", offsets.len()),
        ));
    };
    if end < begin {
        return Err(tensor_err(
            name,
            format!("has data offsets [{begin}, {end}] that end before they begin"),
        ));
    }
    let numel = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| tensor_err(name, format!("has shape {shape:?} whose size overflows")))?;
    let bits = numel
        .checked_mul(dtype.bits())
        .ok_or_else(|| tensor_err(name, format!("has shape {shape:?} whose size overflows")))?;
    if bits % 8 != 0 {
        return Err(tensor_err(
            name,
            format!("has {numel} elements of {dtype}, which do not fill a whole number of bytes"),
        ));
    }
    let want = bits / 8;
    if end - begin != want {
        return Err(tensor_err(
            name,
            format!(
                "holds {} bytes but its shape {shape:?} of {dtype} needs {want}",
                end - begin
            ),
        ));
    }
    Ok((TensorInfo { dtype, shape }, begin, end))
}

fn parse_metadata(value: &serde_json::Value) -> Result<BTreeMap<String, String>, SafetensorsError> {
    let obj = value
        .as_object()
        .ok_or_else(|| SafetensorsError::Header("__metadata__ is not a JSON object".into()))?;
    obj.iter()
        .map(|(k, v)| match v.as_str() {
            Some(s) => Ok((k.clone(), s.to_string())),
            None => Err(SafetensorsError::Header(format!(
                "__metadata__ entry '{k}' is not a string"
            ))),
        })
        .collect()
}

impl<'a> SafeTensors<'a> {
    /// Parse and validate a whole file, borrowing `bytes`.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, SafetensorsError> {
        let prefix: [u8; 8] = bytes
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .ok_or(SafetensorsError::TooShort { len: bytes.len() })?;
        let header_len = u64::from_le_bytes(prefix);
        let available = bytes.len().saturating_sub(8);
        let data_start = usize::try_from(header_len)
            .ok()
            .and_then(|n| n.checked_add(8))
            .filter(|&end| end <= bytes.len())
            .ok_or(SafetensorsError::HeaderLength {
                header_len,
                available,
            })?;
        let header = bytes
            .get(8..data_start)
            .ok_or(SafetensorsError::HeaderLength {
                header_len,
                available,
            })?;
        let header = std::str::from_utf8(header)
            .map_err(|e| SafetensorsError::Header(format!("not UTF-8: {e}")))?;
        if !header.trim_start().starts_with('{') {
            return Err(SafetensorsError::Header(
                "not a JSON object (a safetensors header starts with '{')".into(),
            ));
        }
        let entries: HeaderEntries = serde_json::from_str(header)
            .map_err(|e| SafetensorsError::Header(format!("not valid JSON: {e}")))?;
        let data_len = bytes.len() - data_start;

        let mut metadata = BTreeMap::new();
        let mut seen = BTreeSet::new();
        let mut spans: Vec<(usize, usize, String)> = Vec::new();
        let mut tensors = BTreeMap::new();
        for (name, value) in &entries.0 {
            if !seen.insert(name.as_str()) {
                return Err(SafetensorsError::Header(format!(
                    "the key '{name}' appears twice"
                )));
            }
            if name == "__metadata__" {
                metadata = parse_metadata(value)?;
                continue;
            }
            let (info, begin, end) = parse_entry(name, value)?;
            if end > data_len {
                return Err(tensor_err(
                    name,
                    format!(
                        "runs past the end of the file (truncated?): its data ends at byte {end} of a {data_len}-byte data section"
                    ),
                ));
            }
            spans.push((begin, end, name.clone()));
            let range = (data_start + begin)..(data_start + end);
            tensors.insert(name.clone(), Entry { info, range });
        }

        // The data must be covered exactly once, in order, as the format requires.
        spans.sort();
        let mut cursor = 0usize;
        for (begin, end, name) in &spans {
            if *begin < cursor {
                return Err(tensor_err(
                    name,
                    format!("overlaps the previous tensor (starts at {begin}, before {cursor})"),
                ));
            }
            if *begin > cursor {
                return Err(tensor_err(
                    name,
                    format!("starts at {begin}, leaving a gap after byte {cursor} of the data"),
                ));
            }
            cursor = *end;
        }
        if cursor != data_len {
            return Err(SafetensorsError::Header(format!(
                "the tensors cover {cursor} bytes of data but {data_len} follow the header"
            )));
        }
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

/// Builds a safetensors file in memory.
#[derive(Clone, Debug, Default)]
pub struct SafeTensorsWriter {
    metadata: BTreeMap<String, String>,
    tensors: BTreeMap<String, (TensorInfo, Vec<u8>)>,
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
            .and_then(|n| n.checked_mul(dtype.bits()))
            .ok_or_else(|| err(format!("shape {shape:?} overflows")))?;
        if bits % 8 != 0 || bits / 8 != bytes.len() {
            return Err(err(format!(
                "shape {shape:?} of {dtype} needs {} bits but {} bytes were given",
                bits,
                bytes.len()
            )));
        }
        let info = TensorInfo {
            dtype,
            shape: shape.to_vec(),
        };
        self.tensors.insert(name.to_string(), (info, bytes));
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

    /// The tensors in data order (widest dtype first, then by name, as Python's
    /// `safetensors` does, so every tensor starts aligned to its element size)
    /// with their relative offsets, and the header with its padding.
    fn layout(&self) -> (Vec<&str>, String) {
        let mut order: Vec<&str> = self.tensors.keys().map(String::as_str).collect();
        order.sort_by(|a, b| {
            let bits = |n: &str| self.tensors.get(n).map_or(0, |(i, _)| i.dtype.bits());
            bits(b).cmp(&bits(a)).then_with(|| a.cmp(b))
        });
        let mut offsets = BTreeMap::new();
        let mut cursor = 0usize;
        for name in &order {
            let len = self.tensors.get(*name).map_or(0, |(_, b)| b.len());
            offsets.insert(*name, (cursor, cursor + len));
            cursor += len;
        }

        let mut header = String::from("{");
        let mut first = true;
        if !self.metadata.is_empty() {
            header.push_str("\"__metadata__\":{");
            for (i, (k, v)) in self.metadata.iter().enumerate() {
                if i > 0 {
                    header.push(',');
                }
                push_json_string(&mut header, k);
                header.push(':');
                push_json_string(&mut header, v);
            }
            header.push('}');
            first = false;
        }
        for (name, (info, _)) in &self.tensors {
            if !first {
                header.push(',');
            }
            first = false;
            let (begin, end) = offsets.get(name.as_str()).copied().unwrap_or((0, 0));
            push_json_string(&mut header, name);
            header.push_str(":{\"dtype\":\"");
            header.push_str(info.dtype.as_str());
            header.push_str("\",\"shape\":[");
            let dims: Vec<String> = info.shape.iter().map(|d| d.to_string()).collect();
            header.push_str(&dims.join(","));
            header.push_str(&format!("],\"data_offsets\":[{begin},{end}]}}"));
        }
        header.push('}');
        while (8 + header.len()) % 8 != 0 {
            header.push(' ');
        }
        (order, header)
    }

    /// The complete file.
    pub fn to_bytes(&self) -> Vec<u8> {
        let (order, header) = self.layout();
        let data_len: usize = self.tensors.values().map(|(_, b)| b.len()).sum();
        let mut out = Vec::with_capacity(8 + header.len() + data_len);
        out.extend_from_slice(&(header.len() as u64).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        for name in order {
            if let Some((_, bytes)) = self.tensors.get(name) {
                out.extend_from_slice(bytes);
            }
        }
        out
    }

    /// The complete file, releasing each tensor's buffer as it is copied so a
    /// large file is not held twice.
    pub fn into_bytes(mut self) -> Vec<u8> {
        let (order, header) = self.layout();
        let order: Vec<String> = order.into_iter().map(str::to_string).collect();
        let data_len: usize = self.tensors.values().map(|(_, b)| b.len()).sum();
        let mut out = Vec::with_capacity(8 + header.len() + data_len);
        out.extend_from_slice(&(header.len() as u64).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        for name in order {
            if let Some((_, bytes)) = self.tensors.remove(&name) {
                out.extend_from_slice(&bytes);
            }
        }
        out
    }
}

/// Append `s` as a JSON string literal.
fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut w = SafeTensorsWriter::new();
        w.metadata("format", "test")
            .metadata("quote\"d", "line\nbreak");
        w.add_f32("b.weight", &[2, 3], &[1.0, -2.0, 3.5, 0.0, 1e-3, -7.25])
            .unwrap();
        w.add_i8("a.q", &[3], &[-127, 0, 127]).unwrap();
        w.add_f16("c.half", &[2], &[0.5, -1.25]).unwrap();
        w.add_bf16("d.bf", &[1, 2], &[2.0, -0.375]).unwrap();
        w.add_f32("scalar", &[], &[42.0]).unwrap();
        w.add_f32("empty", &[0, 4], &[]).unwrap();
        w.to_bytes()
    }

    #[test]
    fn round_trip() {
        let bytes = sample();
        let st = SafeTensors::parse(&bytes).unwrap();
        assert_eq!(
            st.names(),
            vec!["a.q", "b.weight", "c.half", "d.bf", "empty", "scalar"]
        );
        assert_eq!(st.metadata().get("format").unwrap(), "test");
        assert_eq!(st.metadata().get("quote\"d").unwrap(), "line\nbreak");
        assert_eq!(
            st.to_f32("b.weight").unwrap(),
            vec![1.0, -2.0, 3.5, 0.0, 1e-3, -7.25]
        );
        assert_eq!(st.info("b.weight").unwrap().shape, vec![2, 3]);
        assert_eq!(st.to_f32("a.q").unwrap(), vec![-127.0, 0.0, 127.0]);
        assert_eq!(st.to_i8("a.q").unwrap(), vec![-127, 0, 127]);
        assert_eq!(st.to_f32("c.half").unwrap(), vec![0.5, -1.25]);
        assert_eq!(st.to_f32("d.bf").unwrap(), vec![2.0, -0.375]);
        assert_eq!(st.info("d.bf").unwrap().dtype, Dtype::BF16);
        assert_eq!(st.to_f32("scalar").unwrap(), vec![42.0]);
        assert_eq!(st.info("scalar").unwrap().numel(), 1);
        assert!(st.to_f32("empty").unwrap().is_empty());
        assert_eq!(st.raw("a.q").unwrap(), &[0x81, 0, 127]);
        assert!(matches!(
            st.to_i8("b.weight"),
            Err(SafetensorsError::UnsupportedDtype { .. })
        ));
        assert!(matches!(
            st.to_f32("nope"),
            Err(SafetensorsError::Missing(_))
        ));
        // Data starts on an 8-byte boundary and every tensor is aligned to its element size.
        let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        assert_eq!((8 + header_len) % 8, 0);
        for name in st.names() {
            let range = st.byte_range(name).unwrap();
            let size = st.info(name).unwrap().dtype.bits() / 8;
            assert_eq!((range.start - 8 - header_len) % size, 0, "{name}");
        }
        // to_bytes and into_bytes agree.
        let mut w = SafeTensorsWriter::new();
        w.add_f32("x", &[1], &[1.0]).unwrap();
        assert_eq!(w.to_bytes(), w.clone().into_bytes());
    }

    #[test]
    fn unsupported_dtype_parses_but_does_not_convert() {
        let mut w = SafeTensorsWriter::new();
        w.add_raw("ids", Dtype::I64, &[2], vec![0; 16]).unwrap();
        let bytes = w.to_bytes();
        let st = SafeTensors::parse(&bytes).unwrap();
        let err = st.to_f32("ids").unwrap_err();
        assert!(err.to_string().contains("unsupported dtype I64"), "{err}");
    }

    #[test]
    fn writer_rejects_inconsistent_input() {
        let mut w = SafeTensorsWriter::new();
        assert!(w.add_f32("x", &[2, 2], &[1.0; 3]).is_err());
        assert!(w.add_f32("__metadata__", &[1], &[1.0]).is_err());
        w.add_f32("x", &[1], &[1.0]).unwrap();
        assert!(w.add_f32("x", &[1], &[1.0]).is_err());
        assert!(
            w.add_raw("y", Dtype::F32, &[usize::MAX, 2], vec![])
                .is_err()
        );
    }

    fn with_header(header: &str, data: &[u8]) -> Vec<u8> {
        let mut out = (header.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        out
    }

    fn parse_err(bytes: &[u8]) -> String {
        SafeTensors::parse(bytes).unwrap_err().to_string()
    }

    #[test]
    fn rejects_malformed_files() {
        assert!(parse_err(b"abc").contains("too short"));
        assert!(parse_err(&[255; 16]).contains("header claims"));
        assert!(parse_err(&with_header("[1,2]", &[])).contains("JSON object"));
        assert!(parse_err(&with_header("{\"a\":", &[])).contains("JSON"));
        assert!(parse_err(&with_header(r#"{"__metadata__":{"k":1}}"#, &[])).contains("'k'"));
        // (header, length of the zero-filled data section, substrings the error must contain)
        let cases: &[(&str, usize, &[&str])] = &[
            (
                r#"{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
                4,
                &["tensor 'x' runs past the end of the file (truncated?)"],
            ),
            (
                r#"{"x":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#,
                8,
                &["tensor 'x'", "needs 12"],
            ),
            (
                r#"{"x":{"dtype":"Q7","shape":[3],"data_offsets":[0,3]}}"#,
                3,
                &["unknown dtype 'Q7'"],
            ),
            (
                r#"{"x":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#,
                4,
                &["tensor 'x'"],
            ),
            (
                r#"{"x":{"dtype":"U8","shape":[18446744073709551615,2],"data_offsets":[0,4]}}"#,
                4,
                &["overflows"],
            ),
            (
                r#"{"x":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"y":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}}"#,
                6,
                &["overlaps"],
            ),
            (
                r#"{"x":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}}"#,
                6,
                &["gap"],
            ),
            (
                r#"{"x":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}"#,
                6,
                &["cover 4 bytes"],
            ),
            (
                r#"{"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"x":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}"#,
                2,
                &["twice"],
            ),
            (
                r#"{"x":{"dtype":"U8","shape":[1],"data_offsets":[4,1]}}"#,
                4,
                &["end before"],
            ),
        ];
        for &(header, data_len, needles) in cases {
            let e = parse_err(&with_header(header, &vec![0; data_len]));
            for needle in needles {
                assert!(e.contains(needle), "{header}: expected {needle:?} in {e}");
            }
        }
    }

    #[test]
    fn every_truncation_and_corruption_is_an_error_not_a_panic() {
        let bytes = sample();
        for cut in 0..bytes.len() {
            assert!(SafeTensors::parse(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        // Flip each byte of the header in turn: parse may succeed or fail, but never panics,
        // and whatever it accepts converts without panicking.
        for i in 0..bytes.len().min(400) {
            let mut b = bytes.clone();
            b[i] ^= 0x5a;
            if let Ok(st) = SafeTensors::parse(&b) {
                for name in st.names() {
                    let _ = st.to_f32(name);
                }
            }
        }
    }
}
