//! `replab convert` on good and bad inputs: bad input gives exit code ≠ 0 and one
//! clear `error: ...` line, never a panic. The .npz files are written here.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by unwrapping

mod common;

use common::npz::{npy, write_zip};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A valid grayscale dataset with 2 classes and n images per split.
fn members(n: usize) -> Vec<(String, Vec<u8>)> {
    let mut m = Vec::new();
    for split in ["train", "val", "test"] {
        let images: Vec<u8> = (0..n * 784).map(|i| (i % 251) as u8).collect();
        let labels: Vec<u8> = (0..n).map(|i| (i % 2) as u8).collect();
        m.push((
            format!("{split}_images.npy"),
            npy("|u1", &[n, 28, 28], images),
        ));
        m.push((format!("{split}_labels.npy"), npy("|u1", &[n, 1], labels)));
    }
    m
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("replab-convert-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn convert(npz: &Path, name: &str, out: &Path) -> (i32, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_replab"))
        .args([
            "convert",
            npz.to_str().unwrap(),
            "--name",
            name,
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn with(
    mut m: Vec<(String, Vec<u8>)>,
    f: impl FnOnce(&mut Vec<(String, Vec<u8>)>),
) -> Vec<(String, Vec<u8>)> {
    f(&mut m);
    m
}

fn expect_error(case: &str, m: Vec<(String, Vec<u8>)>, name: &str, needle: &str) {
    let dir = tmp(case);
    let npz = dir.join("in.npz");
    let refs: Vec<(&str, Vec<u8>)> = m.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    write_zip(&npz, &refs);
    let (code, err) = convert(&npz, name, &dir.join("out"));
    assert_ne!(code, 0, "{case}: should fail");
    assert!(!err.contains("panicked"), "{case}: panicked: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{case}: expected one line, got {err:?}");
    assert!(lines[0].starts_with("error: "), "{case}: {err}");
    assert!(
        lines[0].contains(needle),
        "{case}: '{}' lacks '{needle}'",
        lines[0]
    );
}

#[test]
fn a_valid_npz_converts_and_loads_back() {
    let dir = tmp("valid");
    let npz = dir.join("breast.npz");
    let m = members(6);
    let refs: Vec<(&str, Vec<u8>)> = m.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    write_zip(&npz, &refs);
    let (code, err) = convert(&npz, "breastmnist", &dir.join("out"));
    assert_eq!(code, 0, "{err}");
    let manifest = std::fs::read(dir.join("out/manifest.json")).unwrap();
    let manifest = replab::data::Manifest::from_json(&manifest).unwrap();
    assert_eq!(manifest.class_names, vec!["malignant", "normal, benign"]);
    let out = dir.join("out");
    let ds = replab::data::Dataset::from_blobs(manifest, |f| {
        std::fs::read(out.join(f)).map_err(|e| e.to_string())
    })
    .unwrap();
    assert_eq!(ds.train.len(), 6);
    assert_eq!(ds.test.labels, vec![0, 1, 0, 1, 0, 1]);
    assert_eq!(ds.train.image(1).unwrap()[0], (784 % 251) as u8);
}

#[test]
fn bad_inputs_give_one_clear_error_line() {
    let good = members(4);
    expect_error(
        "unknown-name",
        good.clone(),
        "mnist",
        "known MedMNIST 2-D datasets: pathmnist",
    );
    expect_error(
        "missing-key",
        with(good.clone(), |m| m.retain(|(k, _)| k != "val_labels.npy")),
        "breastmnist",
        "missing key 'val_labels'",
    );
    expect_error(
        "missing-split",
        with(good.clone(), |m| m.retain(|(k, _)| !k.starts_with("test_"))),
        "breastmnist",
        "test",
    );
    expect_error(
        "wrong-dtype",
        with(good.clone(), |m| {
            m[0].1 = npy("<f4", &[4, 28, 28], vec![0; 4 * 784 * 4])
        }),
        "breastmnist",
        "expected uint8",
    );
    expect_error(
        "wrong-shape",
        with(good.clone(), |m| {
            m[0].1 = npy("|u1", &[4, 32, 32], vec![0; 4 * 1024])
        }),
        "breastmnist",
        "expected (N, 28, 28)",
    );
    expect_error(
        "wrong-channels",
        with(good.clone(), |m| {
            m[0].1 = npy("|u1", &[4, 28, 28, 3], vec![0; 4 * 784 * 3])
        }),
        "breastmnist",
        "channel",
    );
    expect_error(
        "label-out-of-range",
        with(good.clone(), |m| {
            m[1].1 = npy("|u1", &[4, 1], vec![0, 1, 7, 0])
        }),
        "breastmnist",
        "label 7 at index 2",
    );
    expect_error(
        "count-mismatch",
        with(good.clone(), |m| m[1].1 = npy("|u1", &[3], vec![0, 1, 0])),
        "breastmnist",
        "3 labels for 4 images",
    );

    let dir = tmp("broken-files");
    let not_zip = dir.join("not.npz");
    std::fs::write(
        &not_zip,
        b"this is not a zip archive at all, just some text",
    )
    .unwrap();
    let (code, err) = convert(&not_zip, "breastmnist", &dir.join("o1"));
    assert_ne!(code, 0);
    assert!(
        err.starts_with("error: ") && err.contains("not a valid .npz"),
        "{err}"
    );

    let whole = dir.join("whole.npz");
    let refs: Vec<(&str, Vec<u8>)> = good.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    write_zip(&whole, &refs);
    let bytes = std::fs::read(&whole).unwrap();
    let truncated = dir.join("truncated.npz");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let (code, err) = convert(&truncated, "breastmnist", &dir.join("o2"));
    assert_ne!(code, 0);
    assert!(
        err.starts_with("error: ") && err.lines().count() == 1,
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");

    let (code, err) = convert(&dir.join("absent.npz"), "breastmnist", &dir.join("o3"));
    assert_ne!(code, 0);
    assert!(err.contains("cannot read"), "{err}");
}
