//! Messages for headers the `safetensors` crate rejects. Its errors do not
//! always say which tensor is at fault ("invalid shape, data type, or offset
//! for tensor"), so a rejected header is read again, entry by entry, to find
//! the first one that breaks a rule and say how.

use std::collections::BTreeSet;
use std::fmt;

use safetensors::tensor::TensorInfo as RawInfo;
use serde::Deserialize;
use serde_json::Value;

use super::{Dtype, SafetensorsError, tensor_err};

/// Why `header` was rejected with `err`, naming the tensor or metadata entry
/// at fault where it can be found.
pub(super) fn rejected(header: &str, err: &serde_json::Error) -> SafetensorsError {
    if !header.trim_start().starts_with('{') {
        return SafetensorsError::Header(
            "not a JSON object (a safetensors header starts with '{')".into(),
        );
    }
    if err.is_syntax() || err.is_eof() {
        return SafetensorsError::Header(format!("not valid JSON: {err}"));
    }
    culprit(header).unwrap_or_else(|| SafetensorsError::Header(err.to_string()))
}

/// The header's top-level entries in file order, so duplicates can be caught.
struct HeaderEntries(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for HeaderEntries {
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
                while let Some(entry) = map.next_entry::<String, Value>()? {
                    out.push(entry);
                }
                Ok(HeaderEntries(out))
            }
        }
        deserializer.deserialize_map(Visit)
    }
}

/// The first problem in a header, if one is found.
fn culprit(header: &str) -> Option<SafetensorsError> {
    let entries: HeaderEntries = serde_json::from_str(header).ok()?;
    let mut seen = BTreeSet::new();
    let mut spans = Vec::new();
    for (name, value) in &entries.0 {
        if !seen.insert(name.as_str()) {
            return Some(SafetensorsError::Header(format!(
                "the key '{name}' appears twice"
            )));
        }
        if name == "__metadata__" {
            match metadata_problem(value) {
                Some(problem) => return Some(SafetensorsError::Header(problem)),
                None => continue,
            }
        }
        match entry(name, value) {
            Ok((begin, end)) => spans.push((begin, end, name.as_str())),
            Err(e) => return Some(e),
        }
    }
    // The data must be covered exactly once, in order.
    spans.sort();
    let mut cursor = 0;
    for (begin, end, name) in spans {
        if begin < cursor {
            return Some(tensor_err(
                name,
                format!("overlaps the previous tensor (starts at {begin}, before {cursor})"),
            ));
        }
        if begin > cursor {
            return Some(tensor_err(
                name,
                format!("starts at {begin}, leaving a gap after byte {cursor} of the data"),
            ));
        }
        cursor = end;
    }
    None
}

fn metadata_problem(value: &Value) -> Option<String> {
    let Some(obj) = value.as_object() else {
        return Some("__metadata__ is not a JSON object".into());
    };
    obj.iter()
        .find(|(_, v)| !v.is_string())
        .map(|(k, _)| format!("__metadata__ entry '{k}' is not a string"))
}

/// One tensor's entry checked on its own: its relative byte range if its
/// dtype, shape and offsets agree.
fn entry(name: &str, value: &Value) -> Result<(usize, usize), SafetensorsError> {
    if let Some(dtype) = value.get("dtype").and_then(Value::as_str)
        && Dtype::deserialize(&Value::from(dtype)).is_err()
    {
        return Err(tensor_err(name, format!("has unknown dtype '{dtype}'")));
    }
    let info = RawInfo::deserialize(value)
        .map_err(|e| tensor_err(name, format!("has a malformed header entry: {e}")))?;
    let (begin, end) = info.data_offsets;
    if end < begin {
        return Err(tensor_err(
            name,
            format!("has data offsets [{begin}, {end}] that end before they begin"),
        ));
    }
    let (shape, dtype) = (&info.shape, info.dtype);
    let overflow = || tensor_err(name, format!("has shape {shape:?} whose size overflows"));
    let numel = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(overflow)?;
    let bits = numel.checked_mul(dtype.bitsize()).ok_or_else(overflow)?;
    if bits % 8 != 0 {
        return Err(tensor_err(
            name,
            format!("has {numel} elements of {dtype}, which do not fill a whole number of bytes"),
        ));
    }
    if end - begin != bits / 8 {
        return Err(tensor_err(
            name,
            format!(
                "holds {} bytes but its shape {shape:?} of {dtype} needs {}",
                end - begin,
                bits / 8
            ),
        ));
    }
    Ok((begin, end))
}
