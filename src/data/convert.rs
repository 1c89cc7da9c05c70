//! Turning an official MedMNIST `.npz` into a replab bundle.

use super::bundle::{self, Blob, Dataset, Manifest, Source, SplitData, SplitEntry};
use super::medmnist::{self, DatasetInfo};
use super::npz::{NpyArray, NpzError, read_npz};
pub use super::subset::{SubsetSpec, stratified_subset};
use std::collections::BTreeMap;

/// Why a conversion failed. Each message names the array or setting at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// The dataset name is not a MedMNIST 2-D dataset.
    #[error("unknown dataset '{0}'; known MedMNIST 2-D datasets: {known}", known = medmnist::known_names())]
    UnknownDataset(String),
    /// The archive could not be read.
    #[error(transparent)]
    Npz(#[from] NpzError),
    /// A required array is absent.
    #[error(
        "missing key '{key}' (the split '{split}' is incomplete); an official MedMNIST npz has {{train,val,test}}_{{images,labels}}"
    )]
    MissingKey {
        /// The absent key.
        key: String,
        /// Its split.
        split: String,
    },
    /// An array has the wrong dtype or shape, or the values are invalid.
    #[error("{key}: {why}")]
    Invalid {
        /// The array.
        key: String,
        /// What is wrong.
        why: String,
    },
    /// The file is larger than any official MedMNIST 2-D npz; it was not read.
    #[error(
        "{file} is {:.2} GB, larger than any MedMNIST 2-D npz ({:.2} GB at most); it was not read: is it the right file?",
        *bytes as f64 / 1e9,
        MAX_NPZ_BYTES as f64 / 1e9
    )]
    TooLarge {
        /// The file's name.
        file: String,
        /// Its size.
        bytes: u64,
    },
    /// The subset specification does not parse or asks for too much.
    #[error("bad --subset '{spec}': {why}")]
    Subset {
        /// The spec as given.
        spec: String,
        /// What is wrong.
        why: String,
    },
}

/// The largest `.npz` accepted, checked before it is read: the biggest official
/// MedMNIST 2-D file at 28×28 (TissueMNIST) is about 180 MB.
pub const MAX_NPZ_BYTES: u64 = 1 << 30;

/// The output of a conversion: a manifest and the blob files to write beside it.
pub struct Converted {
    /// The manifest.
    pub manifest: Manifest,
    /// `(file name, bytes)` for every blob.
    pub files: Vec<(String, Vec<u8>)>,
    /// What was accepted but is worth saying (arrays that were ignored).
    pub notes: Vec<String>,
}

fn get<'a>(
    arrays: &'a BTreeMap<String, NpyArray>,
    split: &str,
    what: &str,
) -> Result<&'a NpyArray, ConvertError> {
    let key = format!("{split}_{what}");
    arrays.get(&key).ok_or(ConvertError::MissingKey {
        key,
        split: split.to_string(),
    })
}

/// Validate and convert one split to planar images and u8 labels.
fn split_arrays(
    arrays: &BTreeMap<String, NpyArray>,
    split: &str,
    info: &DatasetInfo,
) -> Result<(Vec<u8>, Vec<u8>), ConvertError> {
    let images = get(arrays, split, "images")?;
    let labels = get(arrays, split, "labels")?;
    let ikey = format!("{split}_images");
    let lkey = format!("{split}_labels");
    let invalid = |key: &str, why: String| ConvertError::Invalid {
        key: key.to_string(),
        why,
    };
    if !images.is_u8() {
        return Err(invalid(
            &ikey,
            format!("dtype is {}, expected uint8 (|u1)", images.descr),
        ));
    }
    let (n, channels) = match images.shape.as_slice() {
        [n, 28, 28] => (*n, 1),
        [n, 28, 28, 3] => (*n, 3),
        [_, 28, 28, 28] | [_, 28, 28, 28, 1] => {
            return Err(invalid(
                &ikey,
                "holds 28×28×28 volumes (MedMNIST 3-D); the lab needs a 2-D dataset's 28×28 file"
                    .into(),
            ));
        }
        [_, s, t] | [_, s, t, 3] if s == t && [64, 128, 224].contains(s) => {
            return Err(invalid(
                &ikey,
                format!(
                    "holds {s}×{s} images (MedMNIST+); the lab needs the 28×28 file of the same dataset"
                ),
            ));
        }
        s => {
            return Err(invalid(
                &ikey,
                format!("shape {s:?}, expected (N, 28, 28) or (N, 28, 28, 3)"),
            ));
        }
    };
    if channels != info.channels {
        return Err(invalid(
            &ikey,
            format!(
                "has {channels} channel(s) but {} images have {}",
                info.title, info.channels
            ),
        ));
    }
    if n == 0 {
        return Err(invalid(
            &ikey,
            format!("the {split} split is empty; every split needs images"),
        ));
    }
    if images.data.len() != images.len() {
        return Err(invalid(&ikey, "byte count does not match the shape".into()));
    }
    let label_n = match labels.shape.as_slice() {
        [m] | [m, 1] => *m,
        s => {
            return Err(invalid(
                &lkey,
                format!("shape {s:?}, expected (N,) or (N, 1) (multi-label data is not supported)"),
            ));
        }
    };
    if label_n != n {
        return Err(invalid(
            &lkey,
            format!("{label_n} labels for {n} images in {ikey}"),
        ));
    }
    let n_classes = info.labels.len() as i64;
    let values = labels.to_i64(&lkey)?;
    let mut out_labels = Vec::with_capacity(n);
    for (i, v) in values.iter().enumerate() {
        if !(0..n_classes).contains(v) {
            return Err(invalid(
                &lkey,
                format!("label {v} at index {i} is outside 0..{n_classes}"),
            ));
        }
        out_labels.push(*v as u8);
    }
    // Interleaved HWC → planar CHW.
    let plane = 28 * 28;
    let mut planar = vec![0u8; images.data.len()];
    if channels == 1 {
        planar.copy_from_slice(&images.data);
    } else {
        for (img_in, img_out) in images
            .data
            .chunks_exact(plane * 3)
            .zip(planar.chunks_exact_mut(plane * 3))
        {
            for p in 0..plane {
                for c in 0..3 {
                    img_out[c * plane + p] = img_in[p * 3 + c];
                }
            }
        }
    }
    Ok((planar, out_labels))
}

/// An npz whose archive has been read and whose dataset is known: the first half of
/// a conversion. [`convert`] runs it whole; the browser runs it a split at a time,
/// yielding to the page in between.
pub struct OpenedNpz {
    /// The dataset the file is converted as.
    pub info: &'static DatasetInfo,
    arrays: BTreeMap<String, NpyArray>,
    /// What was accepted but is worth saying (arrays that were ignored).
    pub notes: Vec<String>,
    /// Hex MD5 of the file (MedMNIST publishes these).
    pub md5: String,
}

impl OpenedNpz {
    /// Check the dataset name and read every array of the archive; the file's bytes
    /// are not needed afterwards.
    pub fn open(npz_bytes: &[u8], name: &str) -> Result<Self, ConvertError> {
        let info = dataset_info(name)?;
        let arrays = read_npz(npz_bytes)?;
        Ok(Self::from_arrays(info, arrays, md5_hex(npz_bytes)))
    }

    /// The same from arrays read already (e.g. one member at a time with
    /// [`super::npz::NpzMembers`]) and the file's MD5 ([`md5_hex`]).
    pub fn from_arrays(
        info: &'static DatasetInfo,
        arrays: BTreeMap<String, NpyArray>,
        md5: String,
    ) -> Self {
        let known: Vec<String> = bundle::SPLITS
            .iter()
            .flat_map(|s| [format!("{s}_images"), format!("{s}_labels")])
            .collect();
        let notes = arrays
            .keys()
            .filter(|k| !known.contains(k))
            .map(|k| {
                format!("ignored the array '{k}', which an official MedMNIST npz does not have")
            })
            .collect();
        Self {
            info,
            arrays,
            notes,
            md5,
        }
    }

    /// Check one split and return its planar images and labels, releasing its arrays.
    pub fn take_split(&mut self, split: &str) -> Result<(Vec<u8>, Vec<u8>), ConvertError> {
        let out = split_arrays(&self.arrays, split, self.info)?;
        self.arrays.remove(&format!("{split}_images"));
        self.arrays.remove(&format!("{split}_labels"));
        Ok(out)
    }

    /// The manifest for the three split entries (train, val, test).
    fn manifest(&self, splits: [SplitEntry; 3], source: Source) -> Manifest {
        let info = self.info;
        let [train, val, test] = splits;
        Manifest {
            format: bundle::FORMAT.to_string(),
            name: info.name.to_string(),
            title: info.title.to_string(),
            description: info.description.to_string(),
            class_names: info.labels.iter().map(|s| s.to_string()).collect(),
            channels: info.channels,
            size: 28,
            train,
            val,
            test,
            source,
            licence: medmnist::LICENCE.to_string(),
            credit: medmnist::CREDIT.to_string(),
        }
    }

    /// Images per class of `labels`.
    fn class_counts(&self, labels: &[u8]) -> Vec<usize> {
        let mut counts = vec![0usize; self.info.labels.len()];
        for &l in labels {
            if let Some(c) = counts.get_mut(l as usize) {
                *c += 1;
            }
        }
        counts
    }

    /// Hold the checked splits (train, val, test, from [`Self::take_split`]) as a
    /// dataset in memory, as a bundle would decode them, without writing a bundle.
    /// The manifest is `name` and `title` as given; its blobs name no stored file
    /// (their sha256 is empty).
    pub fn into_dataset(
        self,
        splits: [(Vec<u8>, Vec<u8>); 3],
        source_file: &str,
        name: &str,
        title: &str,
    ) -> Dataset {
        let channels = self.info.channels;
        let held = |split: &str, (images, labels): (Vec<u8>, Vec<u8>)| {
            let blob = |suffix: &str, bytes: usize| Blob {
                file: format!("{split}_{suffix} (in memory)"),
                sha256: String::new(),
                bytes: bytes as u64,
            };
            let entry = SplitEntry {
                count: labels.len(),
                class_counts: self.class_counts(&labels),
                images: blob("images", images.len()),
                labels: blob("labels", labels.len()),
            };
            let data = SplitData {
                images,
                labels,
                channels,
                size: 28,
            };
            (entry, data)
        };
        let [train, val, test] = splits;
        let (train_entry, train) = held("train", train);
        let (val_entry, val) = held("val", val);
        let (test_entry, test) = held("test", test);
        let source = Source {
            file: source_file.to_string(),
            md5: self.md5.clone(),
            subset: None,
        };
        let mut manifest = self.manifest([train_entry, val_entry, test_entry], source);
        manifest.name = name.to_string();
        manifest.title = title.to_string();
        Dataset {
            manifest,
            train,
            val,
            test,
        }
    }
}

/// The MedMNIST 2-D dataset called `name`, refusing an unknown or multi-label one.
pub fn dataset_info(name: &str) -> Result<&'static DatasetInfo, ConvertError> {
    let info = medmnist::find(name).ok_or_else(|| ConvertError::UnknownDataset(name.into()))?;
    if info.multi_label {
        return Err(ConvertError::Invalid {
            key: name.to_string(),
            why: "is multi-label; the lab needs one class per image".into(),
        });
    }
    Ok(info)
}

/// Hex MD5 of a file's bytes (MedMNIST publishes these).
pub fn md5_hex(bytes: &[u8]) -> String {
    use md5::Digest;
    md5::Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Refuse a file larger than [`MAX_NPZ_BYTES`] from its size alone, before reading it.
pub fn check_size(file: &str, bytes: u64) -> Result<(), ConvertError> {
    if bytes > MAX_NPZ_BYTES {
        return Err(ConvertError::TooLarge {
            file: file.to_string(),
            bytes,
        });
    }
    Ok(())
}

/// Convert the bytes of an official MedMNIST npz into a bundle.
pub fn convert(
    npz_bytes: &[u8],
    source_file: &str,
    name: &str,
    subset: Option<&SubsetSpec>,
    subset_text: Option<&str>,
) -> Result<Converted, ConvertError> {
    let mut opened = OpenedNpz::open(npz_bytes, name)?;
    let info = opened.info;
    let n_classes = info.labels.len();
    let mut files = Vec::new();
    let mut entries = Vec::new();
    for split in bundle::SPLITS {
        let (images, labels) = opened.take_split(split)?;
        let (images, labels) = match subset {
            None => (images, labels),
            Some(spec) => {
                let target = spec.target(split, labels.len());
                if target > labels.len() {
                    return Err(ConvertError::Subset {
                        spec: subset_text.unwrap_or_default().to_string(),
                        why: format!("{split} has only {} images", labels.len()),
                    });
                }
                let keep = stratified_subset(&labels, n_classes, target, 0);
                let len = 28 * 28 * info.channels;
                let imgs = keep
                    .iter()
                    .flat_map(|&i| images[i * len..(i + 1) * len].iter().copied())
                    .collect();
                let labs = keep.iter().map(|&i| labels[i]).collect();
                (imgs, labs)
            }
        };
        let class_counts = opened.class_counts(&labels);
        let mut blob = |suffix: &str, raw: &[u8]| {
            let file = format!("{split}_{suffix}.bin");
            let data = bundle::deflate(raw);
            let b = Blob {
                file: file.clone(),
                sha256: bundle::sha256_hex(&data),
                bytes: data.len() as u64,
            };
            files.push((file, data));
            b
        };
        let images_blob = blob("images", &images);
        let labels_blob = blob("labels", &labels);
        entries.push(SplitEntry {
            count: labels.len(),
            class_counts,
            images: images_blob,
            labels: labels_blob,
        });
    }
    let entries = <[SplitEntry; 3]>::try_from(entries).map_err(|_| ConvertError::Invalid {
        key: name.to_string(),
        why: "internal: splits missing".into(),
    })?;
    let source = Source {
        file: source_file.to_string(),
        md5: opened.md5.clone(),
        subset: subset_text
            .map(|s| format!("stratified per class within each official split, seed 0: {s}")),
    };
    let manifest = opened.manifest(entries, source);
    Ok(Converted {
        manifest,
        files,
        notes: opened.notes,
    })
}
