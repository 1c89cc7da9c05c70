//! Turning an official MedMNIST `.npz` into a replab bundle.

use super::bundle::{self, Blob, Manifest, Source, SplitEntry};
use super::medmnist::{self, DatasetInfo};
use super::npz::{NpyArray, NpzError, read_npz};
use super::rng::NumpyRng;
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

/// How many images to keep from each split.
#[derive(Clone, Debug, PartialEq)]
pub enum SubsetSpec {
    /// The same fraction of every split, e.g. `0.2`.
    Fraction(f64),
    /// Exact counts, e.g. `train=4000,val=800,test=2000`; missing splits are kept whole.
    Counts(BTreeMap<String, usize>),
}

impl SubsetSpec {
    /// Parse `0.2` or `train=4000,val=800,test=2000`.
    pub fn parse(spec: &str) -> Result<Self, ConvertError> {
        let err = |why: &str| ConvertError::Subset {
            spec: spec.to_string(),
            why: why.to_string(),
        };
        if let Ok(f) = spec.trim().parse::<f64>() {
            return if f > 0.0 && f <= 1.0 {
                Ok(Self::Fraction(f))
            } else {
                Err(err("a fraction must be in (0, 1]"))
            };
        }
        let mut counts = BTreeMap::new();
        for part in spec.split(',') {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| err("expected a fraction or split=count pairs"))?;
            let k = k.trim();
            if !bundle::SPLITS.contains(&k) {
                return Err(err(&format!("unknown split '{k}' (train, val, test)")));
            }
            let v: usize = v
                .trim()
                .parse()
                .map_err(|_| err(&format!("'{v}' is not a count")))?;
            if v == 0 {
                return Err(err("a count must be positive"));
            }
            counts.insert(k.to_string(), v);
        }
        Ok(Self::Counts(counts))
    }

    fn target(&self, split: &str, available: usize) -> usize {
        match self {
            Self::Fraction(f) => ((available as f64 * f).round() as usize).clamp(1, available),
            Self::Counts(c) => c.get(split).copied().unwrap_or(available),
        }
    }
}

/// Stratified subset of `labels` with `target` members: each class keeps its share
/// (largest remainder rounding), members are drawn with a seeded generator and
/// returned in their original order, so official split membership and order survive.
pub fn stratified_subset(labels: &[u8], n_classes: usize, target: usize, seed: u64) -> Vec<usize> {
    let total = labels.len();
    if target >= total {
        return (0..total).collect();
    }
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); n_classes];
    for (i, &l) in labels.iter().enumerate() {
        if let Some(v) = by_class.get_mut(l as usize) {
            v.push(i);
        }
    }
    let exact: Vec<f64> = by_class
        .iter()
        .map(|v| v.len() as f64 * target as f64 / total as f64)
        .collect();
    let mut take: Vec<usize> = exact.iter().map(|e| e.floor() as usize).collect();
    let mut order: Vec<usize> = (0..n_classes).collect();
    order.sort_by(|&a, &b| {
        let ra = exact[a] - exact[a].floor();
        let rb = exact[b] - exact[b].floor();
        rb.total_cmp(&ra).then(a.cmp(&b))
    });
    let mut missing = target.saturating_sub(take.iter().sum());
    for &c in order.iter().cycle().take(n_classes * 2) {
        if missing == 0 {
            break;
        }
        if take[c] < by_class[c].len() {
            take[c] += 1;
            missing -= 1;
        }
    }
    let mut rng = NumpyRng::new(seed);
    let mut keep: Vec<usize> = Vec::with_capacity(target);
    for (c, members) in by_class.iter().enumerate() {
        let picks = rng.choice_indices(members.len(), take[c].min(members.len()));
        keep.extend(picks.into_iter().map(|p| members[p]));
    }
    keep.sort_unstable();
    keep
}

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

/// Convert the bytes of an official MedMNIST npz into a bundle.
pub fn convert(
    npz_bytes: &[u8],
    source_file: &str,
    name: &str,
    subset: Option<&SubsetSpec>,
    subset_text: Option<&str>,
) -> Result<Converted, ConvertError> {
    let info = medmnist::find(name).ok_or_else(|| ConvertError::UnknownDataset(name.into()))?;
    if info.multi_label {
        return Err(ConvertError::Invalid {
            key: name.to_string(),
            why: "is multi-label; the lab needs one class per image".into(),
        });
    }
    let arrays = read_npz(npz_bytes)?;
    let known: Vec<String> = bundle::SPLITS
        .iter()
        .flat_map(|s| [format!("{s}_images"), format!("{s}_labels")])
        .collect();
    let notes = arrays
        .keys()
        .filter(|k| !known.contains(k))
        .map(|k| format!("ignored the array '{k}', which an official MedMNIST npz does not have"))
        .collect();
    let n_classes = info.labels.len();
    let mut files = Vec::new();
    let mut entries = Vec::new();
    for split in bundle::SPLITS {
        let (images, labels) = split_arrays(&arrays, split, info)?;
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
        let mut class_counts = vec![0usize; n_classes];
        for &l in &labels {
            class_counts[l as usize] += 1;
        }
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
    let mut it = entries.into_iter();
    let (Some(train), Some(val), Some(test)) = (it.next(), it.next(), it.next()) else {
        return Err(ConvertError::Invalid {
            key: name.to_string(),
            why: "internal: splits missing".into(),
        });
    };
    use md5::Digest;
    let md5 = md5::Md5::digest(npz_bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let manifest = Manifest {
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
        source: Source {
            file: source_file.to_string(),
            md5,
            subset: subset_text
                .map(|s| format!("stratified per class within each official split, seed 0: {s}")),
        },
        licence: medmnist::LICENCE.to_string(),
        credit: medmnist::CREDIT.to_string(),
    };
    Ok(Converted {
        manifest,
        files,
        notes,
    })
}
