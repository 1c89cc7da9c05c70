//! `replab convert` on good and bad inputs: bad input gives exit code ≠ 0 and one
//! clear `error: ...` line, never a panic. The .npz files are written here.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by unwrapping

use std::path::{Path, PathBuf};
use std::process::Command;

/// A minimal stored (uncompressed) zip writer, enough for NumPy's .npz.
fn write_zip(path: &Path, members: &[(&str, Vec<u8>)]) {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in members {
        let mut crc = flate2::Crc::new();
        crc.update(data);
        let offset = out.len() as u32;
        let local = |buf: &mut Vec<u8>, sig: u32| buf.extend_from_slice(&sig.to_le_bytes());
        local(&mut out, 0x0403_4b50);
        out.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        out.extend_from_slice(&crc.sum().to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);
        local(&mut central, 0x0201_4b50);
        central.extend_from_slice(&[20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        central.extend_from_slice(&crc.sum().to_le_bytes());
        central.extend_from_slice(&(data.len() as u32).to_le_bytes());
        central.extend_from_slice(&(data.len() as u32).to_le_bytes());
        central.extend_from_slice(&(name.len() as u16).to_le_bytes());
        central.extend_from_slice(&[0; 12]);
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let cd_offset = out.len() as u32;
    let cd_len = central.len() as u32;
    out.extend(central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&(members.len() as u16).to_le_bytes());
    out.extend_from_slice(&(members.len() as u16).to_le_bytes());
    out.extend_from_slice(&cd_len.to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    std::fs::write(path, out).unwrap();
}

fn npy(descr: &str, shape: &[usize], data: Vec<u8>) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text = if shape.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_text}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend(data);
    out
}

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
