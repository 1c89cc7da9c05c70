//! The bad-input suite, natively: each case goes through the command a user types
//! (`replab convert`, `run`, `convert-clip`, `clip-embed`). A refused case must exit
//! non-zero with one `error:` line naming what is wrong; an accepted one must
//! succeed, with a `note:` where something was adjusted. No case may panic. The
//! broken files are made here, from valid ones, and the table of outcomes is
//! written to `bad-input-table.md` in the temp directory (and printed).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by unwrapping

mod common;

use common::npz::{npy, zip_bytes};
use std::path::{Path, PathBuf};
use std::process::Command;

/// What a case must do.
enum Want {
    /// Exit non-zero with one `error:` line containing this.
    Refused(&'static str),
    /// Exit zero; with `Some(needle)`, a `note:` line containing it.
    Accepted(Option<&'static str>),
}

struct Case {
    name: String,
    args: Vec<String>,
    want: Want,
}

struct Outcome {
    name: String,
    command: String,
    ok: bool,
    accepted: bool,
    message: String,
    problem: Option<String>,
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("replab-bad-input-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

/// A BloodMNIST-shaped npz (RGB, 8 classes) with `n` images per split whose labels
/// cycle through the first `classes` classes. Members can be edited before zipping.
fn blood_members(n: usize, classes: u8) -> Vec<(String, Vec<u8>)> {
    let mut m = Vec::new();
    for split in ["train", "val", "test"] {
        let labels: Vec<u8> = (0..n).map(|i| (i % classes as usize) as u8).collect();
        let images: Vec<u8> = (0..n * 784 * 3)
            .map(|i| {
                let label = labels[i / (784 * 3)];
                (i % 97) as u8 ^ label.wrapping_mul(29)
            })
            .collect();
        m.push((
            format!("{split}_images.npy"),
            npy("|u1", &[n, 28, 28, 3], images),
        ));
        m.push((format!("{split}_labels.npy"), npy("|u1", &[n, 1], labels)));
    }
    m
}

fn zipped(m: &[(String, Vec<u8>)]) -> Vec<u8> {
    let refs: Vec<(&str, Vec<u8>)> = m.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    zip_bytes(&refs)
}

fn replace(mut m: Vec<(String, Vec<u8>)>, key: &str, value: Vec<u8>) -> Vec<(String, Vec<u8>)> {
    let slot = m.iter_mut().find(|(k, _)| k == key).unwrap();
    slot.1 = value;
    m
}

fn i64_bytes(v: &[i64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn run_case(case: &Case) -> Outcome {
    let out = Command::new(env!("CARGO_BIN_EXE_replab"))
        .args(&case.args)
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    let notes: Vec<&str> = stderr.lines().filter(|l| l.contains("note: ")).collect();
    let accepted = out.status.success();
    let mut problem = None;
    if stderr.contains("panicked") {
        problem = Some(format!("panicked: {stderr}"));
    }
    let message = match &case.want {
        Want::Refused(needle) => {
            if accepted {
                problem = Some("was accepted".into());
            } else if errors.len() != 1 {
                problem = Some(format!("{} error lines: {stderr}", errors.len()));
            } else if !errors[0].contains(needle) {
                problem = Some(format!("'{}' lacks '{needle}'", errors[0]));
            }
            errors.first().map(|e| e.to_string()).unwrap_or_default()
        }
        Want::Accepted(note) => {
            if !accepted {
                problem = Some(format!("was refused: {stderr}"));
            } else if let Some(needle) = note
                && !notes.iter().any(|n| n.contains(needle))
            {
                problem = Some(format!("no note containing '{needle}': {stderr}"));
            }
            notes
                .first()
                .map(|n| n.trim().to_string())
                .unwrap_or_default()
        }
    };
    let command = case
        .args
        .iter()
        .take(2)
        .cloned()
        .collect::<Vec<_>>()
        .join(" ");
    Outcome {
        name: case.name.clone(),
        command,
        ok: problem.is_none(),
        accepted,
        message,
        problem,
    }
}

/// `replab convert` cases: (name, npz bytes, dataset name, want).
fn npz_cases(dir: &Path) -> Vec<Case> {
    let good = blood_members(48, 8);
    let whole = zipped(&good);
    let mut cases: Vec<(String, Vec<u8>, &str, Want)> = Vec::new();
    for (pct, what) in [(0, "empty"), (10, "10%"), (50, "50%"), (99, "99%")] {
        let cut = whole.len() * pct / 100;
        cases.push((
            format!("npz truncated at {what}"),
            whole[..cut].to_vec(),
            "bloodmnist",
            Want::Refused("not a valid .npz"),
        ));
    }
    cases.push((
        "not a zip".into(),
        b"train_images,train_labels\n1,2\n".to_vec(),
        "bloodmnist",
        Want::Refused("not a valid .npz"),
    ));
    let mut bad_crc = whole.clone();
    bad_crc[200] ^= 0x5a; // inside the first member's data
    cases.push((
        "zip with a bad CRC".into(),
        bad_crc,
        "bloodmnist",
        Want::Refused("corrupt"),
    ));
    let mut missing = good.clone();
    missing.retain(|(k, _)| k != "val_labels.npy");
    cases.push((
        "missing key".into(),
        zipped(&missing),
        "bloodmnist",
        Want::Refused("missing key 'val_labels'"),
    ));
    let mut extra = good.clone();
    extra.push(("train_masks.npy".into(), npy("|u1", &[2], vec![0, 1])));
    cases.push((
        "extra key".into(),
        zipped(&extra),
        "bloodmnist",
        Want::Accepted(Some("ignored the array 'train_masks'")),
    ));
    let floats = npy("<f4", &[48, 28, 28, 3], vec![0; 48 * 784 * 3 * 4]);
    cases.push((
        "float images".into(),
        zipped(&replace(good.clone(), "train_images.npy", floats)),
        "bloodmnist",
        Want::Refused("expected uint8"),
    ));
    let in_range: Vec<i64> = (0..48).map(|i| i % 8).collect();
    cases.push((
        "int64 labels in range".into(),
        zipped(&replace(
            good.clone(),
            "train_labels.npy",
            npy("<i8", &[48, 1], i64_bytes(&in_range)),
        )),
        "bloodmnist",
        Want::Accepted(None),
    ));
    let mut negative = in_range.clone();
    negative[5] = -1;
    cases.push((
        "negative labels".into(),
        zipped(&replace(
            good.clone(),
            "train_labels.npy",
            npy("<i8", &[48, 1], i64_bytes(&negative)),
        )),
        "bloodmnist",
        Want::Refused("label -1 at index 5"),
    ));
    let flat: Vec<u8> = (0..48).map(|i| (i % 8) as u8).collect();
    cases.push((
        "labels shaped (N,)".into(),
        zipped(&replace(
            good.clone(),
            "val_labels.npy",
            npy("|u1", &[48], flat.clone()),
        )),
        "bloodmnist",
        Want::Accepted(None),
    ));
    cases.push((
        "labels shaped (N, 1)".into(),
        whole.clone(),
        "bloodmnist",
        Want::Accepted(None),
    ));
    let mut high = flat.clone();
    high[3] = 8;
    cases.push((
        "labels out of range".into(),
        zipped(&replace(
            good.clone(),
            "test_labels.npy",
            npy("|u1", &[48, 1], high),
        )),
        "bloodmnist",
        Want::Refused("label 8 at index 3 is outside 0..8"),
    ));
    cases.push((
        "64×64 images (MedMNIST+)".into(),
        zipped(&replace(
            good.clone(),
            "train_images.npy",
            npy("|u1", &[48, 64, 64, 3], vec![0; 48 * 64 * 64 * 3]),
        )),
        "bloodmnist",
        Want::Refused("MedMNIST+"),
    ));
    cases.push((
        "3-D volumes".into(),
        zipped(&replace(
            good.clone(),
            "train_images.npy",
            npy("|u1", &[4, 28, 28, 28], vec![0; 4 * 28 * 28 * 28]),
        )),
        "bloodmnist",
        Want::Refused("MedMNIST 3-D"),
    ));
    let empty = replace(
        replace(
            good.clone(),
            "test_images.npy",
            npy("|u1", &[0, 28, 28, 3], vec![]),
        ),
        "test_labels.npy",
        npy("|u1", &[0, 1], vec![]),
    );
    cases.push((
        "an empty split".into(),
        zipped(&empty),
        "bloodmnist",
        Want::Refused("the test split is empty"),
    ));
    cases.push((
        "a single class".into(),
        zipped(&blood_members(24, 1)),
        "bloodmnist",
        Want::Accepted(None),
    ));
    cases.push((
        "name mismatch: RGB file named breastmnist".into(),
        whole.clone(),
        "breastmnist",
        Want::Refused("BreastMNIST images have 1"),
    ));
    let gray: Vec<(String, Vec<u8>)> = good
        .iter()
        .map(|(k, v)| {
            if k.ends_with("_images.npy") {
                (k.clone(), npy("|u1", &[48, 28, 28], vec![7; 48 * 784]))
            } else {
                (k.clone(), v.clone())
            }
        })
        .collect();
    cases.push((
        "name mismatch: grayscale file named bloodmnist".into(),
        zipped(&gray),
        "bloodmnist",
        Want::Refused("BloodMNIST images have 3"),
    ));
    cases.push((
        "name mismatch: 8 classes named dermamnist (7)".into(),
        whole.clone(),
        "dermamnist",
        Want::Refused("outside 0..7"),
    ));
    cases.push((
        "unknown dataset name".into(),
        whole,
        "mnist",
        Want::Refused("known MedMNIST 2-D datasets"),
    ));
    let mut out = Vec::new();
    for (i, (name, bytes, dataset, want)) in cases.into_iter().enumerate() {
        let path = dir.join(format!("case{i}.npz"));
        std::fs::write(&path, bytes).unwrap();
        out.push(Case {
            name,
            args: vec![
                "convert".into(),
                s(&path),
                "--name".into(),
                dataset.into(),
                "--out".into(),
                s(&dir.join(format!("case{i}-out"))),
            ],
            want,
        });
    }
    out.push(Case {
        name: "npz that does not exist".into(),
        args: [
            "convert",
            &s(&dir.join("absent.npz")),
            "--name",
            "bloodmnist",
            "--out",
        ]
        .map(String::from)
        .into_iter()
        .chain([s(&dir.join("absent-out"))])
        .collect(),
        want: Want::Refused("cannot read"),
    });
    out
}

/// Convert `members` into `<root>/bloodmnist`, which must succeed.
fn make_bundle(root: &Path, members: &[(String, Vec<u8>)]) -> PathBuf {
    let npz = root.with_extension("npz");
    std::fs::write(&npz, zipped(members)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_replab"))
        .args(["convert", &s(&npz), "--name", "bloodmnist", "--out"])
        .arg(root.join("bloodmnist"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    root.to_path_buf()
}

fn copy_bundle(from: &Path, to: &Path) -> PathBuf {
    let dst = to.join("bloodmnist");
    std::fs::create_dir_all(&dst).unwrap();
    for e in std::fs::read_dir(from.join("bloodmnist")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
    }
    to.to_path_buf()
}

fn run_args(data_dir: &Path, out: &Path, chapter: &str, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "run".into(),
        chapter.into(),
        "--data-dir".into(),
        s(data_dir),
        "--dataset".into(),
        "bloodmnist".into(),
        "--out".into(),
        s(out),
    ];
    if !extra.contains(&"--backend") {
        a.extend(["--backend".into(), "cpu".into()]);
    }
    a.extend(extra.iter().map(|x| x.to_string()));
    a
}

/// Served bundles and parameters, through `replab run`.
fn run_cases(dir: &Path) -> Vec<Case> {
    let good = make_bundle(&dir.join("good"), &blood_members(96, 8));
    let single = make_bundle(&dir.join("single"), &blood_members(48, 1));
    let mut cases = Vec::new();
    let mut bundle_case = |name: &str, edit: &dyn Fn(&Path), want: Want| {
        let root = copy_bundle(&good, &dir.join(format!("bundle-{}", cases.len())));
        edit(&root.join("bloodmnist"));
        cases.push(Case {
            name: name.into(),
            args: run_args(&root, &dir.join("o"), "supervised", &["--epochs", "1"]),
            want,
        });
    };
    bundle_case(
        "bundle: manifest missing",
        &|b| std::fs::remove_file(b.join("manifest.json")).unwrap(),
        Want::Refused("no bundle 'bloodmnist'"),
    );
    bundle_case(
        "bundle: manifest is not JSON",
        &|b| std::fs::write(b.join("manifest.json"), "<html>404</html>").unwrap(),
        Want::Refused("manifest"),
    );
    bundle_case(
        "bundle: blob with the wrong SHA-256",
        &|b| {
            let p = b.join("train_labels.bin");
            let mut bytes = std::fs::read(&p).unwrap();
            bytes[0] ^= 1;
            std::fs::write(&p, bytes).unwrap();
        },
        Want::Refused("failed its checksum"),
    );
    bundle_case(
        "bundle: blob truncated",
        &|b| {
            let p = b.join("val_images.bin");
            let bytes = std::fs::read(&p).unwrap();
            std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
        },
        Want::Refused("val_images.bin"),
    );
    bundle_case(
        "bundle: counts disagree with the blobs",
        &|b| {
            let p = b.join("manifest.json");
            let text = std::fs::read_to_string(&p).unwrap();
            let mut m: serde_json::Value = serde_json::from_str(&text).unwrap();
            m["test"]["count"] = serde_json::json!(95);
            std::fs::write(&p, m.to_string()).unwrap();
        },
        Want::Refused("test"),
    );
    let o = dir.join("o");
    let param = |name: &str, chapter: &str, extra: &[&str], want: Want| Case {
        name: name.into(),
        args: run_args(&good, &o, chapter, extra),
        want,
    };
    cases.extend([
        param(
            "epochs NaN",
            "supervised",
            &["--epochs", "NaN"],
            Want::Refused("--epochs"),
        ),
        param(
            "epochs negative",
            "supervised",
            &["--epochs=-3"],
            Want::Refused("--epochs"),
        ),
        param(
            "epochs huge",
            "supervised",
            &["--epochs", "1000000000"],
            Want::Refused("--epochs"),
        ),
        param(
            "batch size 0",
            "supervised",
            &["--batch-size", "0"],
            Want::Refused("--batch-size"),
        ),
        param(
            "a learning rate that makes the loss NaN",
            "autoencoder",
            &["--epochs", "1", "--batch-size", "4", "--lr", "1e6"],
            Want::Refused("weights from before that step are kept"),
        ),
        param(
            "limit larger than the split",
            "linear-ae",
            &["--epochs", "1", "--limit", "100000"],
            Want::Accepted(Some("limit")),
        ),
        param(
            "held-out ratio 0",
            "supervised",
            &["--held-out-ratio", "0"],
            Want::Refused("--held-out-ratio"),
        ),
        param(
            "held-out ratio 1",
            "supervised",
            &["--held-out-ratio", "1"],
            Want::Refused("held"),
        ),
        param(
            "unknown chapter",
            "transformer",
            &[],
            Want::Refused("transformer"),
        ),
        param(
            "unknown backend",
            "supervised",
            &["--backend", "tpu"],
            Want::Refused("--backend"),
        ),
    ]);
    // Saved runs, through `replab run --load/--save`.
    let real = Path::new(env!("CARGO_MANIFEST_DIR")).join("public/data");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let saved_run = fixtures.join("saved/supervised.safetensors");
    let truncated = dir.join("saved-truncated.safetensors");
    let bytes = std::fs::read(&saved_run).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    let clip = s(&fixtures.join("clip/openclip_tiny.safetensors"));
    let saved_case = |name: &str, chapter: &str, extra: &[&str], want: Want| Case {
        name: format!("saved run: {name}"),
        args: run_args(&real, &o, chapter, extra),
        want,
    };
    cases.extend([
        saved_case(
            "CLIP weights given to --load",
            "supervised",
            &["--load", &clip],
            Want::Refused("not a replab saved run"),
        ),
        saved_case(
            "saved from another chapter",
            "supcon",
            &["--load", &s(&saved_run)],
            Want::Refused("saved from the supervised chapter"),
        ),
        saved_case(
            "truncated",
            "supervised",
            &["--load", &s(&truncated)],
            Want::Refused("truncated"),
        ),
        saved_case(
            "--save with two chapters",
            "supervised",
            &["supcon", "--save", &s(&dir.join("x.safetensors"))],
            Want::Refused("one chapter"),
        ),
        saved_case(
            "--save for a chapter that trains no model",
            "pca",
            &["--save", &s(&dir.join("x.safetensors"))],
            Want::Refused("trains no model"),
        ),
        saved_case(
            "a saved run is loaded and analysed",
            "supervised",
            &["--load", &s(&saved_run)],
            Want::Accepted(None),
        ),
    ]);
    cases.push(Case {
        name: "a single-class bundle cannot be run".into(),
        args: run_args(&single, &o, "supervised", &["--epochs", "1"]),
        want: Want::Refused("only 1 class(es)"),
    });
    cases
}

/// CLIP files, through `convert-clip` and `clip-embed`.
fn clip_cases(dir: &Path) -> Vec<Case> {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let tiny = fixtures.join("clip/openclip_tiny.safetensors");
    let png = s(&fixtures.join("clip/images/bloodmnist_0.png"));
    let bytes = std::fs::read(&tiny).unwrap();
    let truncated = dir.join("clip-truncated.safetensors");
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    let text = dir.join("clip-text.safetensors");
    std::fs::write(&text, "this is a README, not weights").unwrap();
    // The same tiny tower stored in f16, as many checkpoints are shipped.
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let halves: Vec<(String, Vec<usize>, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            let data: Vec<u8> = view
                .data()
                .chunks_exact(4)
                .flat_map(|c| {
                    let v = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                    half::f16::from_f32(v).to_le_bytes()
                })
                .collect();
            (name, view.shape().to_vec(), data)
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView)> = halves
        .iter()
        .map(|(n, shape, data)| {
            let v =
                safetensors::tensor::TensorView::new(safetensors::Dtype::F16, shape.clone(), data)
                    .unwrap();
            (n.clone(), v)
        })
        .collect();
    let f16 = dir.join("clip-f16.safetensors");
    std::fs::write(&f16, safetensors::serialize(views, None).unwrap()).unwrap();
    // A 2 GB file (sparse: nothing is written), refused before it is read.
    let huge = dir.join("clip-huge.safetensors");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(2_000_000_000)
        .unwrap();
    let out = |n: &str| s(&dir.join(format!("clip-out-{n}.safetensors")));
    let case = |name: &str, args: Vec<String>, want: Want| Case {
        name: name.into(),
        args,
        want,
    };
    let conv = |src: &Path, o: String| vec!["convert-clip".into(), s(src), "--out".into(), o];
    let embed = |w: &Path| vec!["clip-embed".into(), "--weights".into(), s(w), png.clone()];
    vec![
        case(
            "CLIP: wrong architecture",
            conv(&fixtures.join("ae_parity.safetensors"), out("arch")),
            Want::Refused("CLIP"),
        ),
        case(
            "CLIP: truncated file",
            conv(&truncated, out("trunc")),
            Want::Refused("truncated"),
        ),
        case(
            "CLIP: not safetensors",
            conv(&text, out("text")),
            Want::Refused("safetensors"),
        ),
        case(
            "CLIP: f16 checkpoint",
            conv(&f16, out("f16")),
            Want::Accepted(None),
        ),
        case(
            "CLIP: raw checkpoint given to clip-embed",
            embed(&tiny),
            Want::Refused("convert it first"),
        ),
        case(
            "CLIP: 2 GB file",
            embed(&huge),
            Want::Refused("larger than any CLIP weights file"),
        ),
    ]
}

#[test]
fn every_bad_input_is_refused_or_accepted_clearly() {
    let dir = scratch();
    let mut cases = npz_cases(&dir);
    cases.extend(run_cases(&dir));
    cases.extend(clip_cases(&dir));
    assert!(cases.len() >= 30, "only {} cases", cases.len());
    let outcomes: Vec<Outcome> = cases.iter().map(run_case).collect();
    let mut table = String::from("| case | where | outcome | message |\n|---|---|---|---|\n");
    for o in &outcomes {
        table.push_str(&format!(
            "| {} | `replab {}` | {} | {} |\n",
            o.name,
            o.command,
            if o.accepted { "accepted" } else { "refused" },
            o.message.replace('|', "\\|")
        ));
    }
    std::fs::write(std::env::temp_dir().join("bad-input-table.md"), &table).unwrap();
    println!("{table}");
    let failed: Vec<String> = outcomes
        .iter()
        .filter(|o| !o.ok)
        .map(|o| format!("{}: {}", o.name, o.problem.as_deref().unwrap_or("")))
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} cases failed:\n{}",
        failed.len(),
        outcomes.len(),
        failed.join("\n")
    );
}
