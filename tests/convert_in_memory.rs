//! The browser's conversion (an npz held in memory, a split at a time) gives the
//! same dataset as `convert` writing a bundle and the loader decoding it, and
//! refuses a file over the size cap from its size alone.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by unwrapping

mod common;

use common::npz::{npy, zip_bytes};
use replab::data::Dataset;
use replab::data::bundle::SPLITS;
use replab::data::convert::{MAX_NPZ_BYTES, OpenedNpz, check_size, convert};

/// An RGB, 8-class npz with labels shaped (N, 1) in train and (N,) elsewhere, and
/// one array an official file does not have.
fn npz(n: usize) -> Vec<u8> {
    let mut members = Vec::new();
    for split in SPLITS {
        let labels: Vec<u8> = (0..n).map(|i| ((i * 5) % 8) as u8).collect();
        let images: Vec<u8> = (0..n * 784 * 3).map(|i| (i * 7 % 253) as u8).collect();
        let shape: &[usize] = if split == "train" { &[n, 1] } else { &[n] };
        members.push((
            format!("{split}_images.npy"),
            npy("|u1", &[n, 28, 28, 3], images),
        ));
        members.push((format!("{split}_labels.npy"), npy("|u1", shape, labels)));
    }
    members.push(("extra.npy".to_string(), npy("|u1", &[1], vec![0])));
    let refs: Vec<(&str, Vec<u8>)> = members
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    zip_bytes(&refs)
}

#[test]
fn in_memory_conversion_matches_the_bundle() {
    let bytes = npz(20);
    let converted = convert(&bytes, "bloodmnist.npz", "bloodmnist", None, None).unwrap();
    let files = converted.files.clone();
    let from_bundle = Dataset::from_blobs(converted.manifest.clone(), |f| {
        files
            .iter()
            .find(|(name, _)| name == f)
            .map(|(_, b)| b.clone())
            .ok_or_else(|| format!("{f} missing"))
    })
    .unwrap();

    let mut opened = OpenedNpz::open(&bytes, "bloodmnist").unwrap();
    assert_eq!(opened.notes, converted.notes);
    assert!(opened.notes[0].contains("'extra'"), "{:?}", opened.notes);
    let splits = SPLITS.map(|s| opened.take_split(s).unwrap());
    let held = opened.into_dataset(
        splits,
        "bloodmnist.npz",
        "bloodmnist-file",
        "BloodMNIST (your file)",
    );

    assert_eq!(held.manifest.name, "bloodmnist-file");
    assert_eq!(held.manifest.title, "BloodMNIST (your file)");
    assert_eq!(held.manifest.class_names, from_bundle.manifest.class_names);
    assert_eq!(held.manifest.source.md5, from_bundle.manifest.source.md5);
    for (a, b) in [
        (&held.train, &from_bundle.train),
        (&held.val, &from_bundle.val),
        (&held.test, &from_bundle.test),
    ] {
        assert_eq!(a.images, b.images);
        assert_eq!(a.labels, b.labels);
        assert_eq!((a.channels, a.size), (b.channels, b.size));
    }
    assert_eq!(
        held.manifest.train.class_counts,
        from_bundle.manifest.train.class_counts
    );
    assert_eq!(held.manifest.test.count, 20);
}

#[test]
fn a_split_that_fails_is_named_and_the_size_cap_needs_no_bytes() {
    let mut opened = OpenedNpz::open(&npz(4), "dermamnist").unwrap();
    let e = opened.take_split("train").unwrap_err().to_string();
    assert!(
        e.starts_with("train_labels: label 7") && e.contains("outside 0..7"),
        "{e}"
    );
    assert!(check_size("x.npz", MAX_NPZ_BYTES).is_ok());
    let e = check_size("huge.npz", MAX_NPZ_BYTES + 1)
        .unwrap_err()
        .to_string();
    assert!(e.contains("huge.npz") && e.contains("not read"), "{e}");
}
