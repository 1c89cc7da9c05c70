//! `replab convert-clip` and `replab clip-embed` from the shell: the embeddings of
//! the fixture PNGs match open_clip's, and bad files get one clear line.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by unwrapping

use std::path::PathBuf;
use std::process::Command;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/clip");

fn replab(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_replab"))
        .args(args)
        .output()
        .expect("run replab");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("replab-clip-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}

#[test]
fn convert_then_embed_matches_open_clip() {
    let out = scratch("tiny_f32.safetensors");
    let (ok, stdout, stderr) = replab(&[
        "convert-clip",
        &format!("{DIR}/openclip_tiny.safetensors"),
        "--out",
        out.to_str().expect("path"),
        "--no-quantize",
    ]);
    assert!(ok, "{stderr}");
    let manifest: serde_json::Value = serde_json::from_str(stdout.trim()).expect("manifest JSON");
    assert_eq!(manifest["config"]["width"], 64);
    assert_eq!(manifest["source_layout"], "open_clip");
    assert_eq!(manifest["quantization"], "none");

    let order = std::fs::read_to_string(format!("{DIR}/images/order.txt")).expect("order");
    let mut args = vec![
        "clip-embed".to_string(),
        "--weights".to_string(),
        out.to_string_lossy().into_owned(),
    ];
    args.extend(order.lines().map(|n| format!("{DIR}/images/{n}")));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, stdout, stderr) = replab(&args);
    assert!(ok, "{stderr}");
    let got: Vec<Vec<f32>> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON array per line"))
        .collect();
    let reference = std::fs::read(format!("{DIR}/reference.safetensors")).expect("reference");
    let map = replab::model::state::TensorMap::from_safetensors(&reference).expect("reference");
    let (shape, want) = map.raw("embedding_openclip").expect("embedding");
    assert_eq!(got.len(), shape[0]);
    let max = got
        .iter()
        .flatten()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(max < 1e-4, "max |diff| {max}");
}

#[test]
fn bad_weights_get_one_clear_line() {
    let truncated = scratch("truncated.safetensors");
    let bytes = std::fs::read(format!("{DIR}/openclip_tiny.safetensors")).expect("fixture");
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).expect("write");
    let t = truncated.to_str().expect("path");
    let out = scratch("never.safetensors");
    let o = out.to_str().expect("path");
    let png = format!("{DIR}/images/bloodmnist_0.png");
    let raw = format!("{DIR}/openclip_tiny.safetensors");
    let cases: [(Vec<&str>, &str); 3] = [
        (vec!["convert-clip", t, "--out", o], "truncated"),
        // A raw checkpoint must be converted before it can be used.
        (
            vec!["clip-embed", "--weights", &raw, &png],
            "convert it first",
        ),
        (vec!["clip-embed", "--weights", t, &png], "truncated"),
    ];
    for (args, needle) in cases {
        let (ok, _, stderr) = replab(&args);
        assert!(!ok, "{args:?} succeeded");
        let errors = stderr.lines().filter(|l| l.starts_with("error: ")).count();
        assert_eq!(errors, 1, "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    assert!(!out.exists(), "a failed conversion wrote a file");
}
