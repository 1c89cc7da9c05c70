//! A small reader for NumPy `.npz` archives: a zip container of `.npy` arrays.
//!
//! Only what MedMNIST needs is supported (stored or deflated members, zip64 size
//! fields, little-endian integer arrays in C order), and everything else is
//! reported as a readable error instead of a panic.

use std::collections::BTreeMap;
use std::io::Read;

/// Why an archive could not be read.
#[derive(Debug, thiserror::Error)]
pub enum NpzError {
    /// The bytes are not a zip archive at all, or are cut short.
    #[error("not a valid .npz (zip) file: {0}")]
    NotZip(String),
    /// A member failed its CRC or could not be inflated.
    #[error("member '{name}' is corrupt: {why}")]
    Corrupt {
        /// The member's name.
        name: String,
        /// What went wrong.
        why: String,
    },
    /// A member is not a `.npy` array we understand.
    #[error("array '{name}': {why}")]
    BadArray {
        /// The array's name.
        name: String,
        /// What went wrong.
        why: String,
    },
}

/// One decoded `.npy` array: its dtype string, shape and raw little-endian bytes.
#[derive(Clone, Debug)]
pub struct NpyArray {
    /// The NumPy dtype descriptor, e.g. `|u1` or `<i8`.
    pub descr: String,
    /// The array's shape.
    pub shape: Vec<usize>,
    /// The raw element bytes in C order.
    pub data: Vec<u8>,
}

impl NpyArray {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the elements are unsigned bytes.
    pub fn is_u8(&self) -> bool {
        matches!(self.descr.as_str(), "|u1" | "<u1" | "u1" | "=u1")
    }

    /// The elements as `i64`, for any little-endian integer dtype.
    pub fn to_i64(&self, name: &str) -> Result<Vec<i64>, NpzError> {
        let bad = |why: String| NpzError::BadArray {
            name: name.to_string(),
            why,
        };
        let d = self.descr.trim_start_matches(['<', '|', '=']);
        let width = match d {
            "u1" | "i1" | "b1" => 1,
            "u2" | "i2" => 2,
            "u4" | "i4" => 4,
            "u8" | "i8" => 8,
            _ => return Err(bad(format!("dtype {} is not an integer type", self.descr))),
        };
        if self.descr.starts_with('>') {
            return Err(bad("big-endian arrays are not supported".into()));
        }
        if self.data.len() != self.len() * width {
            return Err(bad("data length does not match its shape".into()));
        }
        let signed = d.starts_with('i');
        let out = self
            .data
            .chunks_exact(width)
            .map(|c| {
                let mut buf = [0u8; 8];
                buf[..width].copy_from_slice(c);
                if signed && c[width - 1] & 0x80 != 0 {
                    for b in &mut buf[width..] {
                        *b = 0xff;
                    }
                }
                i64::from_le_bytes(buf)
            })
            .collect();
        Ok(out)
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

struct Entry {
    name: String,
    method: u16,
    crc: u32,
    compressed: u64,
    size: u64,
    local_offset: u64,
}

fn central_directory(bytes: &[u8]) -> Result<Vec<Entry>, NpzError> {
    let short = || NpzError::NotZip("the file is truncated".into());
    if bytes.len() < 22 {
        return Err(NpzError::NotZip(format!("only {} bytes long", bytes.len())));
    }
    let lowest = bytes.len().saturating_sub(22 + 65535);
    let eocd = (lowest..=bytes.len() - 22)
        .rev()
        .find(|&i| u32_at(bytes, i) == Some(0x0605_4b50))
        .ok_or_else(|| {
            NpzError::NotZip("no end-of-central-directory record (truncated or not a zip)".into())
        })?;
    let mut count = u16_at(bytes, eocd + 10).ok_or_else(short)? as u64;
    let mut cd_offset = u32_at(bytes, eocd + 16).ok_or_else(short)? as u64;
    // Zip64: the locator sits just before the classic record.
    if eocd >= 20 && u32_at(bytes, eocd - 20) == Some(0x0706_4b50) {
        let rec = u64_at(bytes, eocd - 20 + 8).ok_or_else(short)? as usize;
        if u32_at(bytes, rec) != Some(0x0606_4b50) {
            return Err(NpzError::NotZip("broken zip64 end record".into()));
        }
        count = u64_at(bytes, rec + 32).ok_or_else(short)?;
        cd_offset = u64_at(bytes, rec + 48).ok_or_else(short)?;
    }
    let mut entries = Vec::new();
    let mut at = usize::try_from(cd_offset).map_err(|_| short())?;
    for _ in 0..count {
        if u32_at(bytes, at) != Some(0x0201_4b50) {
            return Err(NpzError::NotZip(
                "central directory is damaged or the file is truncated".into(),
            ));
        }
        let method = u16_at(bytes, at + 10).ok_or_else(short)?;
        let crc = u32_at(bytes, at + 16).ok_or_else(short)?;
        let mut compressed = u32_at(bytes, at + 20).ok_or_else(short)? as u64;
        let mut size = u32_at(bytes, at + 24).ok_or_else(short)? as u64;
        let name_len = u16_at(bytes, at + 28).ok_or_else(short)? as usize;
        let extra_len = u16_at(bytes, at + 30).ok_or_else(short)? as usize;
        let comment_len = u16_at(bytes, at + 32).ok_or_else(short)? as usize;
        let mut local_offset = u32_at(bytes, at + 42).ok_or_else(short)? as u64;
        let name_bytes = bytes.get(at + 46..at + 46 + name_len).ok_or_else(short)?;
        let name = String::from_utf8_lossy(name_bytes).into_owned();
        let extra = bytes
            .get(at + 46 + name_len..at + 46 + name_len + extra_len)
            .ok_or_else(short)?;
        // Zip64 extended information replaces whichever fields are saturated.
        let mut e = 0;
        while e + 4 <= extra.len() {
            let id = u16_at(extra, e).ok_or_else(short)?;
            let len = u16_at(extra, e + 2).ok_or_else(short)? as usize;
            if id == 0x0001 {
                let mut p = e + 4;
                for field in [&mut size, &mut compressed, &mut local_offset] {
                    if *field == 0xFFFF_FFFF {
                        *field = u64_at(extra, p).ok_or_else(short)?;
                        p += 8;
                    }
                }
            }
            e += 4 + len;
        }
        entries.push(Entry {
            name,
            method,
            crc,
            compressed,
            size,
            local_offset,
        });
        at += 46 + name_len + extra_len + comment_len;
    }
    Ok(entries)
}

fn member_data(bytes: &[u8], entry: &Entry) -> Result<Vec<u8>, NpzError> {
    let corrupt = |why: &str| NpzError::Corrupt {
        name: entry.name.clone(),
        why: why.to_string(),
    };
    let at = usize::try_from(entry.local_offset).map_err(|_| corrupt("bad offset"))?;
    if u32_at(bytes, at) != Some(0x0403_4b50) {
        return Err(corrupt("local header missing (file truncated?)"));
    }
    let name_len = u16_at(bytes, at + 26).ok_or_else(|| corrupt("truncated"))? as usize;
    let extra_len = u16_at(bytes, at + 28).ok_or_else(|| corrupt("truncated"))? as usize;
    let start = at + 30 + name_len + extra_len;
    let end = usize::try_from(entry.compressed)
        .ok()
        .and_then(|c| start.checked_add(c))
        .ok_or_else(|| corrupt("bad size"))?;
    let raw = bytes
        .get(start..end)
        .ok_or_else(|| corrupt("data runs past the end of the file (truncated?)"))?;
    let size = usize::try_from(entry.size).map_err(|_| corrupt("too large"))?;
    let data = match entry.method {
        0 => raw.to_vec(),
        8 => {
            // A directory can declare any size: reserve without aborting (a browser tab
            // has at most 4 GB), and let the inflated length be checked below.
            let mut out = Vec::new();
            out.try_reserve_exact(size).map_err(|_| {
                corrupt(&format!(
                    "declares {size} bytes, more than this process can hold"
                ))
            })?;
            flate2::read::DeflateDecoder::new(raw)
                .take(entry.size)
                .read_to_end(&mut out)
                .map_err(|e| corrupt(&format!("cannot inflate: {e}")))?;
            out
        }
        m => return Err(corrupt(&format!("unsupported compression method {m}"))),
    };
    if data.len() != size {
        return Err(corrupt("inflated size differs from the directory"));
    }
    let mut crc = flate2::Crc::new();
    crc.update(&data);
    if crc.sum() != entry.crc {
        return Err(corrupt("CRC mismatch"));
    }
    Ok(data)
}

/// Parse one `.npy` payload.
pub fn parse_npy(name: &str, bytes: &[u8]) -> Result<NpyArray, NpzError> {
    let bad = |why: &str| NpzError::BadArray {
        name: name.to_string(),
        why: why.to_string(),
    };
    if bytes.get(..6) != Some(b"\x93NUMPY") {
        return Err(bad("missing the .npy magic string"));
    }
    let major = *bytes.get(6).ok_or_else(|| bad("truncated header"))?;
    let (header_len, header_start) = match major {
        1 => (
            u16_at(bytes, 8).ok_or_else(|| bad("truncated header"))? as usize,
            10,
        ),
        2 | 3 => (
            u32_at(bytes, 8).ok_or_else(|| bad("truncated header"))? as usize,
            12,
        ),
        v => return Err(bad(&format!("unsupported .npy version {v}"))),
    };
    let header = bytes
        .get(header_start..header_start + header_len)
        .ok_or_else(|| bad("truncated header"))?;
    let header = std::str::from_utf8(header).map_err(|_| bad("header is not text"))?;
    let descr = dict_value(header, "descr")
        .map(|v| v.trim_matches(['\'', '"']).to_string())
        .ok_or_else(|| bad("header has no descr"))?;
    if dict_value(header, "fortran_order").as_deref() == Some("True") {
        return Err(bad("Fortran-ordered arrays are not supported"));
    }
    let shape_text = dict_value(header, "shape").ok_or_else(|| bad("header has no shape"))?;
    let shape = shape_text
        .trim_matches(['(', ')'])
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|_| bad("shape is not a tuple of integers"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let data = bytes[header_start + header_len..].to_vec();
    Ok(NpyArray { descr, shape, data })
}

/// Find `'key': value` in a Python dict literal, returning the value's text.
fn dict_value(header: &str, key: &str) -> Option<String> {
    let pat_single = format!("'{key}':");
    let start = header.find(&pat_single)? + pat_single.len();
    let rest = header[start..].trim_start();
    let end = if rest.starts_with('(') {
        rest.find(')')? + 1
    } else {
        rest.find([',', '}'])?
    };
    Some(rest[..end].trim().to_string())
}

/// An archive's `.npy` members, listed from its central directory and not yet
/// inflated, so a caller can read them one at a time (the browser yields between).
pub struct NpzMembers {
    entries: Vec<Entry>,
}

impl NpzMembers {
    /// List the `.npy` members of `bytes`; an archive without any is refused.
    pub fn list(bytes: &[u8]) -> Result<Self, NpzError> {
        let entries: Vec<Entry> = central_directory(bytes)?
            .into_iter()
            .filter(|e| e.name.ends_with(".npy"))
            .collect();
        if entries.is_empty() {
            return Err(NpzError::NotZip("the archive holds no .npy arrays".into()));
        }
        Ok(Self { entries })
    }

    /// How many `.npy` members there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none (never, once listed).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Inflate, check and parse member `i` of `bytes` (the archive it was listed
    /// from): its name without `.npy`, and its array. `None` past the end.
    pub fn read(&self, bytes: &[u8], i: usize) -> Option<Result<(String, NpyArray), NpzError>> {
        let entry = self.entries.get(i)?;
        let name = entry.name.strip_suffix(".npy").unwrap_or(&entry.name);
        let read = || {
            let data = member_data(bytes, entry)?;
            let array = parse_npy(name, &data)?;
            // Cheap sanity check now; exact widths are checked on conversion.
            if array.is_u8() && array.data.len() < array.len() {
                return Err(NpzError::BadArray {
                    name: name.to_string(),
                    why: "fewer bytes than its shape needs".into(),
                });
            }
            Ok((name.to_string(), array))
        };
        Some(read())
    }
}

/// Read every array in an `.npz` archive, keyed by name without the `.npy` suffix.
pub fn read_npz(bytes: &[u8]) -> Result<BTreeMap<String, NpyArray>, NpzError> {
    let members = NpzMembers::list(bytes)?;
    (0..members.len())
        .filter_map(|i| members.read(bytes, i))
        .collect()
}
