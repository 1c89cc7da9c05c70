//! The safetensors container, read from and written to bytes with the
//! [`safetensors`](https://docs.rs/safetensors) crate.
//!
//! A file is an 8-byte little-endian header length `N`, then `N` bytes of UTF-8
//! JSON, then the tensor data. The JSON object maps each tensor's name to its
//! `dtype`, `shape` and `data_offsets` (a `[begin, end)` byte range relative to
//! the start of the data), plus an optional `__metadata__` object of strings.
//!
//! [`SafeTensors::parse`] borrows the bytes and copies no tensor data. The
//! crate checks the header (offsets ordered, contiguous and matching each
//! shape); this module adds the checks it leaves to its caller (the data
//! section is exactly as long as the tensors say, so a truncated file is caught
//! before any tensor is read) and, when a file is rejected, a message that
//! names the tensor at fault. Later accessors cannot fail on a malformed file.
//!
//! [`SafeTensorsWriter`] builds files that Python's `safetensors` package
//! reads: the crate lays tensors out widest dtype first so each one is aligned
//! to its element size and pads the header so the data starts on an 8-byte
//! boundary; the `__metadata__` entries are written in key order, so the same
//! input always gives the same bytes.
//!
//! Unlike [`crate::model::state::TensorMap`], which reads F32 only and copies
//! everything up front, this reader converts several dtypes, one tensor at a
//! time.

mod explain;
mod read;
mod write;

pub use read::SafeTensors;
/// Element types the format defines (re-exported from the `safetensors` crate).
pub use safetensors::Dtype;
pub use write::SafeTensorsWriter;

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
    /// The `safetensors` crate could not serialise the file.
    #[error("cannot write the safetensors file: {0}")]
    Encode(String),
}

/// The largest header the `safetensors` crate (and so Python's package) accepts.
const MAX_HEADER_LEN: u64 = 100_000_000;

/// What the header says about one tensor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    /// Element type.
    pub dtype: Dtype,
    /// Dimensions, outermost first; empty for a scalar.
    pub shape: Vec<usize>,
}

impl TensorInfo {
    /// Number of elements (1 for a scalar), saturating at `usize::MAX`; parsing
    /// has checked that a file's shapes do not overflow.
    pub fn numel(&self) -> usize {
        self.shape.iter().fold(1, |acc, &d| acc.saturating_mul(d))
    }
}

fn tensor_err(name: &str, problem: impl Into<String>) -> SafetensorsError {
    SafetensorsError::Tensor {
        name: name.to_string(),
        problem: problem.into(),
    }
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
            let size = st.info(name).unwrap().dtype.bitsize() / 8;
            assert_eq!((range.start - 8 - header_len) % size, 0, "{name}");
        }
        // to_bytes and into_bytes agree.
        let mut w = SafeTensorsWriter::new();
        w.add_f32("x", &[1], &[1.0]).unwrap();
        assert_eq!(w.to_bytes(), w.clone().into_bytes());
    }

    #[test]
    fn metadata_is_written_in_key_order() {
        let build = || {
            let mut w = SafeTensorsWriter::new();
            for k in ["zeta", "alpha", "mid", "beta", "omega", "gamma"] {
                w.metadata(k, format!("value of {k}"));
            }
            w.add_f32("t", &[2], &[1.0, 2.0]).unwrap();
            w
        };
        let bytes = build().to_bytes();
        for _ in 0..8 {
            assert_eq!(build().to_bytes(), bytes);
            assert_eq!(build().into_bytes(), bytes);
        }
        let st = SafeTensors::parse(&bytes).unwrap();
        assert_eq!(st.metadata().len(), 6);
        assert_eq!(st.metadata().get("mid").unwrap(), "value of mid");
        assert_eq!(st.to_f32("t").unwrap(), vec![1.0, 2.0]);
        let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        assert_eq!(header_len % 8, 0);
        // Metadata only, no tensors.
        let mut w = SafeTensorsWriter::new();
        w.metadata("k", "v");
        let st_bytes = w.to_bytes();
        let st = SafeTensors::parse(&st_bytes).unwrap();
        assert!(st.is_empty());
        assert_eq!(st.metadata().get("k").unwrap(), "v");
    }

    /// Offsets that sum to nearly `usize::MAX`: the crate's own `read_metadata`
    /// overflows adding the header length to them; `parse` reports a truncated file.
    #[cfg(target_pointer_width = "64")]
    #[test]
    fn offsets_near_usize_max_are_an_error_not_a_panic() {
        let size = (1usize << 61) - 1;
        let entries: Vec<String> = (0..8)
            .map(|k| {
                format!(
                    r#""t{k}":{{"dtype":"F4","shape":[{}],"data_offsets":[{},{}]}}"#,
                    2 * size,
                    k * size,
                    (k + 1) * size
                )
            })
            .collect();
        let bytes = with_header(&format!("{{{}}}", entries.join(",")), &[0; 16]);
        let e = parse_err(&bytes);
        assert!(
            e.contains("tensor 't0' runs past the end of the file (truncated?)"),
            "{e}"
        );
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
