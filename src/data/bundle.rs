//! replab's dataset bundle: a `manifest.json` plus one deflated blob per array.
//!
//! Images are stored planar (channel-first, `[n, c, 28, 28]`, one byte per pixel), which
//! is both what the network eats and what deflate compresses best. Every blob carries
//! its sha256 in the manifest, so a browser can tell a corrupt or truncated download
//! from a good one before decoding it. Loaders take bytes, never paths.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};

/// The format tag written into every manifest.
pub const FORMAT: &str = "replab-bundle/1";

/// The three official MedMNIST splits.
pub const SPLITS: [&str; 3] = ["train", "val", "test"];

/// Why a bundle could not be used.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// manifest.json does not parse or has the wrong format.
    #[error("manifest.json is invalid: {0}")]
    Manifest(String),
    /// A blob's bytes do not hash to the manifest's sha256.
    #[error(
        "{file} failed its checksum (expected sha256 {expected}, got {actual}); the download is corrupt or truncated"
    )]
    Checksum {
        /// The blob's file name.
        file: String,
        /// The manifest's hash.
        expected: String,
        /// The hash of what arrived.
        actual: String,
    },
    /// A blob decodes to the wrong size or has invalid content.
    #[error("{file}: {why}")]
    Content {
        /// The blob's file name.
        file: String,
        /// What is wrong.
        why: String,
    },
}

/// One stored array.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Blob {
    /// File name next to the manifest.
    pub file: String,
    /// Hex sha256 of the file's bytes.
    pub sha256: String,
    /// The file's size in bytes.
    pub bytes: u64,
}

/// One split's arrays and counts.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SplitEntry {
    /// Number of images.
    pub count: usize,
    /// Images per class.
    pub class_counts: Vec<usize>,
    /// The images blob (`[count, channels, size, size]` bytes, deflated).
    pub images: Blob,
    /// The labels blob (`[count]` bytes, deflated).
    pub labels: Blob,
}

/// Where the data came from.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Source {
    /// The source file name.
    pub file: String,
    /// MD5 of the source file (MedMNIST publishes these).
    pub md5: String,
    /// A description of any subset taken, or `None` for the whole dataset.
    pub subset: Option<String>,
}

/// `manifest.json`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// Dataset name, e.g. `bloodmnist`.
    pub name: String,
    /// Display title, e.g. `BloodMNIST`.
    pub title: String,
    /// What the images show.
    pub description: String,
    /// Class names indexed by label.
    pub class_names: Vec<String>,
    /// 1 or 3.
    pub channels: usize,
    /// Image side in pixels (28).
    pub size: usize,
    /// The train split.
    pub train: SplitEntry,
    /// The val split (the lab's "dev").
    pub val: SplitEntry,
    /// The test split.
    pub test: SplitEntry,
    /// Provenance.
    pub source: Source,
    /// Licence of the images.
    pub licence: String,
    /// Required credit.
    pub credit: String,
}

impl Manifest {
    /// Parse and sanity-check a manifest.
    pub fn from_json(bytes: &[u8]) -> Result<Self, BundleError> {
        let m: Manifest =
            serde_json::from_slice(bytes).map_err(|e| BundleError::Manifest(e.to_string()))?;
        if m.format != FORMAT {
            return Err(BundleError::Manifest(format!(
                "format is '{}', expected '{FORMAT}'",
                m.format
            )));
        }
        if !(m.channels == 1 || m.channels == 3) || m.size == 0 || m.size > 512 {
            return Err(BundleError::Manifest(format!(
                "unsupported image shape {}x{}x{}",
                m.channels, m.size, m.size
            )));
        }
        if m.class_names.len() < 2 || m.class_names.len() > 255 {
            return Err(BundleError::Manifest(format!(
                "{} classes; between 2 and 255 are supported",
                m.class_names.len()
            )));
        }
        Ok(m)
    }

    /// The entry for a split name.
    pub fn split(&self, name: &str) -> Option<&SplitEntry> {
        match name {
            "train" => Some(&self.train),
            "val" => Some(&self.val),
            "test" => Some(&self.test),
            _ => None,
        }
    }

    /// Bytes per image.
    pub fn image_len(&self) -> usize {
        self.channels * self.size * self.size
    }
}

/// Hex sha256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Deflate bytes at the best compression.
pub fn deflate(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(bytes);
    enc.finish().unwrap_or_default()
}

/// Verify a blob's checksum and inflate it to exactly `expected_len` bytes.
pub fn open_blob(blob: &Blob, bytes: &[u8], expected_len: usize) -> Result<Vec<u8>, BundleError> {
    let actual = sha256_hex(bytes);
    if actual != blob.sha256 {
        return Err(BundleError::Checksum {
            file: blob.file.clone(),
            expected: blob.sha256.clone(),
            actual,
        });
    }
    let mut out = Vec::with_capacity(expected_len);
    flate2::read::DeflateDecoder::new(bytes)
        .take(expected_len as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| BundleError::Content {
            file: blob.file.clone(),
            why: format!("cannot inflate: {e}"),
        })?;
    if out.len() != expected_len {
        return Err(BundleError::Content {
            file: blob.file.clone(),
            why: format!(
                "holds {} bytes, the manifest implies {expected_len}",
                out.len()
            ),
        });
    }
    Ok(out)
}

/// One decoded split held in memory.
#[derive(Clone, Debug, Default)]
pub struct SplitData {
    /// `[n, channels, size, size]` bytes.
    pub images: Vec<u8>,
    /// `[n]` labels.
    pub labels: Vec<u8>,
    /// Channels per image.
    pub channels: usize,
    /// Side length.
    pub size: usize,
}

impl SplitData {
    /// Decode a split from its two blobs, checking hashes, sizes and label range.
    pub fn decode(
        manifest: &Manifest,
        split: &str,
        images: &[u8],
        labels: &[u8],
    ) -> Result<Self, BundleError> {
        let entry = manifest
            .split(split)
            .ok_or_else(|| BundleError::Manifest(format!("no split named '{split}'")))?;
        let images = open_blob(&entry.images, images, entry.count * manifest.image_len())?;
        let labels = open_blob(&entry.labels, labels, entry.count)?;
        let n_classes = manifest.class_names.len();
        if let Some((i, l)) = labels
            .iter()
            .enumerate()
            .find(|(_, l)| **l as usize >= n_classes)
        {
            return Err(BundleError::Content {
                file: entry.labels.file.clone(),
                why: format!("label {l} at index {i} is outside 0..{n_classes}"),
            });
        }
        Ok(Self {
            images,
            labels,
            channels: manifest.channels,
            size: manifest.size,
        })
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the split is empty.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Bytes per image.
    pub fn image_len(&self) -> usize {
        self.channels * self.size * self.size
    }

    /// The planar bytes of image `i`, if it exists.
    pub fn image(&self, i: usize) -> Option<&[u8]> {
        let len = self.image_len();
        self.images.get(i * len..(i + 1) * len)
    }

    /// Image `i` as interleaved RGBA, for drawing.
    pub fn rgba(&self, i: usize) -> Option<Vec<u8>> {
        let img = self.image(i)?;
        let plane = self.size * self.size;
        let mut out = Vec::with_capacity(plane * 4);
        for p in 0..plane {
            let (r, g, b) = if self.channels == 3 {
                (img[p], img[plane + p], img[2 * plane + p])
            } else {
                (img[p], img[p], img[p])
            };
            out.extend_from_slice(&[r, g, b, 255]);
        }
        Some(out)
    }
}

/// A whole decoded bundle.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// Its manifest.
    pub manifest: Manifest,
    /// The official train split.
    pub train: SplitData,
    /// The official val split (the lab's dev split).
    pub val: SplitData,
    /// The official test split.
    pub test: SplitData,
}

impl Dataset {
    /// Decode a bundle given a function that returns each blob's bytes by file name.
    pub fn from_blobs(
        manifest: Manifest,
        mut blob: impl FnMut(&str) -> Result<Vec<u8>, String>,
    ) -> Result<Self, BundleError> {
        let mut load = |split: &str| -> Result<SplitData, BundleError> {
            let entry = manifest
                .split(split)
                .ok_or_else(|| BundleError::Manifest(format!("no split named '{split}'")))?;
            let read = |b: &mut dyn FnMut(&str) -> Result<Vec<u8>, String>, f: &str| {
                b(f).map_err(|why| BundleError::Content {
                    file: f.to_string(),
                    why,
                })
            };
            let images = read(&mut blob, &entry.images.file)?;
            let labels = read(&mut blob, &entry.labels.file)?;
            SplitData::decode(&manifest, split, &images, &labels)
        };
        let train = load("train")?;
        let val = load("val")?;
        let test = load("test")?;
        Ok(Self {
            manifest,
            train,
            val,
            test,
        })
    }

    /// Number of classes.
    pub fn n_classes(&self) -> usize {
        self.manifest.class_names.len()
    }
}
