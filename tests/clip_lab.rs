//! The CLIP chapter natively on the CPU: a tiny converted tower loads block by
//! block, embeds a sample, and both heads run; a cancel stops it cleanly; a file
//! that does not fit is refused with a message.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by unwrapping

use replab::lab::clip::Clip;
use replab::lab::{self, LabEvent, LabParams};
use replab::model::clip::weights::{ConvertOptions, convert};
use replab::platform::{self, BackendPref};
use replab::train::{Control, RunControl};
use std::path::Path;
use std::rc::Rc;

mod common;
use common::blood;

fn tiny_int8() -> Vec<u8> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/clip");
    let src = std::fs::read(dir.join("openclip_tiny.safetensors")).unwrap();
    convert(&src, &ConvertOptions::default()).unwrap().bytes
}

#[test]
fn clip_chapter_runs_end_to_end_on_cpu() {
    let compute = platform::block_on(platform::select_compute(BackendPref::Cpu)).unwrap();
    let control = RunControl::default();
    let bytes = tiny_int8();
    let mut stages = Vec::new();
    let model = platform::block_on(lab::clip::load(&bytes, &compute, &control, &mut |e| {
        if let LabEvent::Stage { name, .. } = e {
            stages.push(name.to_string());
        }
    }))
    .unwrap();
    assert!(
        stages.iter().any(|s| s.contains("block 2 of 2")),
        "{stages:?}"
    );
    assert_eq!(model.config().width, 64);
    let params = LabParams {
        epochs: 2,
        limit: Some(16),
        ..LabParams::default()
    };
    let mut chapter = Clip::default();
    // Without weights the run is refused before any work.
    let e = lab::plan(&chapter, blood(), &params)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("load the CLIP weights"), "{e}");
    chapter.set_model(Rc::new(model));
    let out = platform::block_on(lab::run(
        &mut chapter,
        blood(),
        &params,
        &compute,
        &control,
        &mut |_| {},
    ))
    .unwrap();
    let r = &out.result;
    assert_eq!(r.extra["images"], serde_json::json!([16, 16, 16]));
    assert!(r.extra["images_per_second"].as_f64().unwrap() > 0.0);
    let p = &r.probe;
    for v in [
        p.before.unwrap(),
        p.after.unwrap(),
        p.converged_dev_b,
        p.converged_test_b,
    ] {
        assert!((0.0..=1.0).contains(&v), "{r:?}");
    }
    assert_eq!(r.train_loss.len(), 2);
    assert!(
        r.train_loss
            .iter()
            .chain(&r.dev_loss)
            .all(|l| l.is_finite())
    );
    assert_eq!(p.confusion_after.len(), 3);
    let umap = &out.umaps[0];
    assert_eq!(umap.points.len(), 16);
    assert!(
        umap.points
            .iter()
            .all(|p| p[0].is_finite() && p[1].is_finite())
    );
    assert_eq!(r.extra["weights_sha256"].as_str().unwrap().len(), 64);
}

#[test]
fn cancel_during_embedding_stops_with_cancelled() {
    let compute = platform::block_on(platform::select_compute(BackendPref::Cpu)).unwrap();
    let control = RunControl::default();
    let bytes = tiny_int8();
    let model =
        platform::block_on(lab::clip::load(&bytes, &compute, &control, &mut |_| {})).unwrap();
    let params = LabParams {
        limit: Some(64),
        ..LabParams::default()
    };
    let mut chapter = Clip::default();
    chapter.set_model(Rc::new(model));
    let ctl = control.clone();
    let err = platform::block_on(lab::run(
        &mut chapter,
        blood(),
        &params,
        &compute,
        &control,
        &mut |e| {
            if let LabEvent::Stage { name, .. } = e
                && name.starts_with("embedding")
            {
                ctl.set(Control::Cancel);
            }
        },
    ))
    .expect_err("cancelled");
    assert!(err.is_cancel(), "{err}");
}

#[test]
fn files_that_do_not_fit_are_refused_with_a_message() {
    let compute = platform::block_on(platform::select_compute(BackendPref::Cpu)).unwrap();
    let control = RunControl::default();
    let good = tiny_int8();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/clip");
    let raw = std::fs::read(dir.join("openclip_tiny.safetensors")).unwrap();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (good[..good.len() - 100].to_vec(), "truncated"),
        (raw, "convert it first"),
        (b"<!doctype html><html></html>".to_vec(), "safetensors"),
        (Vec::new(), "safetensors"),
    ];
    for (bytes, needle) in cases {
        let err = platform::block_on(lab::clip::load(&bytes, &compute, &control, &mut |_| {}))
            .err()
            .expect("refused");
        assert!(err.to_string().contains(needle), "{err}");
    }
}
