//! Saved runs: a run saved after one epoch, loaded into a fresh chapter and
//! continued for one more ends with the numbers of an uninterrupted two-epoch run
//! (weights, AdamW's moments, BatchNorm statistics, the generators and the history
//! all travel); a loaded run analysed without training gives the saved numbers; and
//! a file that does not fit is refused with a message naming why.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by unwrapping

use replab::lab::saved::{self, SavedRun};
use replab::lab::{self, ChapterOutput, LabParams};
use replab::platform::{self, BackendPref, Compute};
use replab::train::RunControl;

mod common;

fn params(slug: &str, epochs: usize) -> LabParams {
    let mut p = LabParams::for_chapter(slug);
    p.epochs = epochs;
    p.limit = Some(256);
    p.batch_size = 64;
    p.seed = 11;
    p.backend = BackendPref::Cpu;
    p
}

fn cpu() -> Compute {
    platform::block_on(platform::select_compute(BackendPref::Cpu)).unwrap()
}

fn run(chapter: &mut dyn lab::Chapter, p: &LabParams) -> ChapterOutput {
    platform::block_on(lab::run(
        chapter,
        common::blood(),
        p,
        &cpu(),
        &RunControl::default(),
        &mut |_| {},
    ))
    .unwrap()
}

fn save(chapter: &dyn lab::Chapter, p: &LabParams, out: &ChapterOutput) -> Vec<u8> {
    platform::block_on(saved::save(chapter, p, Some(&out.result), &cpu(), 1.7e12))
        .unwrap()
        .expect("a trained chapter has something to save")
}

fn load(slug: &str, bytes: &[u8], evaluate: bool) -> (Box<dyn lab::Chapter>, SavedRun) {
    let mut chapter = lab::make_chapter(slug).unwrap();
    let info = saved::load(chapter.as_mut(), bytes, common::blood(), &cpu(), evaluate).unwrap();
    (chapter, info)
}

#[test]
fn a_saved_run_continues_exactly_and_evaluates_to_its_numbers() {
    let _serial = common::serial();
    // linear-ae also carries its per-epoch snapshots; dino a teacher and a centre.
    for slug in ["supervised", "linear-ae", "dino"] {
        let mut whole = lab::make_chapter(slug).unwrap();
        let reference = run(whole.as_mut(), &params(slug, 2));

        let mut first = lab::make_chapter(slug).unwrap();
        let one = run(first.as_mut(), &params(slug, 1));
        let bytes = save(first.as_ref(), &params(slug, 1), &one);
        let info = saved::describe(&bytes).unwrap();
        assert_eq!(info.chapter, slug);
        assert_eq!(info.epochs, 1);
        assert_eq!(info.dataset, "bloodmnist");
        assert_eq!(info.params, params(slug, 1));
        assert_eq!(info.optimizer, Ok(()));
        // JSON keeps the numbers to the last bit or so.
        let kept = info.result.as_ref().expect("the result is saved");
        assert!((kept.train_loss[0] - one.result.train_loss[0]).abs() < 1e-12);
        assert!((kept.probe.converged_test_b - one.result.probe.converged_test_b).abs() < 1e-12);

        // Analysed without training: the saved numbers again.
        let (mut evaluated, _) = load(slug, &bytes, true);
        let again = run(evaluated.as_mut(), &params(slug, 1));
        common::compare::assert_same(&format!("{slug}: evaluated"), &one, &again, 1e-6);

        // Continued for one more epoch: the uninterrupted two-epoch run.
        let (mut continued, _) = load(slug, &bytes, false);
        let two = run(continued.as_mut(), &params(slug, 1));
        common::compare::assert_same(&format!("{slug}: continued"), &reference, &two, 1e-6);
        println!(
            "{slug}: saved run {} bytes, test-B after continuing {:.4}",
            bytes.len(),
            two.result.probe.converged_test_b
        );
    }
}

#[test]
fn a_saved_run_that_does_not_fit_is_refused_by_name() {
    let _serial = common::serial();
    let p = params("supervised", 1);
    let mut chapter = lab::make_chapter("supervised").unwrap();
    let out = run(chapter.as_mut(), &p);
    let bytes = save(chapter.as_ref(), &p, &out);
    let refuse = |slug: &str, bytes: &[u8]| {
        let mut c = lab::make_chapter(slug).unwrap();
        saved::load(c.as_mut(), bytes, common::blood(), &cpu(), true)
            .unwrap_err()
            .to_string()
    };
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "another chapter",
            refuse("supcon", &bytes),
            "saved from the supervised chapter",
        ),
        (
            "truncated",
            refuse("supervised", &bytes[..bytes.len() / 2]),
            "truncated",
        ),
        (
            "not safetensors",
            refuse("supervised", b"{\"not\": \"a model\"}"),
            "not a safetensors file",
        ),
        (
            "CLIP weights",
            refuse(
                "supervised",
                &std::fs::read("tests/fixtures/clip/openclip_tiny.safetensors").unwrap(),
            ),
            "not a replab saved run",
        ),
    ];
    for (case, msg, needle) in &cases {
        assert!(msg.contains(needle), "{case}: {msg}");
        println!("{case}: {msg}");
    }
    // Nothing trained: nothing to save.
    let untrained = lab::make_chapter("supervised").unwrap();
    let none = platform::block_on(saved::save(untrained.as_ref(), &p, None, &cpu(), 0.0)).unwrap();
    assert!(none.is_none());
    // A chapter with no trained model refuses to load.
    let mut pca = lab::make_chapter("pca").unwrap();
    let msg = saved::load(pca.as_mut(), &bytes, common::blood(), &cpu(), true)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("saved from the supervised chapter"), "{msg}");
}

#[test]
fn the_notebook_pytorch_convnet_reproduces_a_saved_runs_features() {
    let _serial = common::serial();
    use burn::prelude::*;
    use replab::lab::pipeline::Recipe;
    use replab::lab::supervised::{Supervised, SupervisedRecipe};
    use replab::model::safetensors::SafeTensors;

    // Made by scripts/make_saved_run_fixtures.sh: replab saved the run, and
    // scripts/load_in_pytorch.py loaded it into the notebook's ConvNet.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/saved");
    let bytes = std::fs::read(dir.join("supervised.safetensors")).unwrap();
    let torch_bytes = std::fs::read(dir.join("supervised_torch_features.safetensors")).unwrap();
    let torch = SafeTensors::parse(&torch_bytes).unwrap();
    let (mut chapter, info) = load("supervised", &bytes, true);
    assert_eq!(info.epochs, 1);
    let model = chapter
        .as_any_mut()
        .downcast_mut::<Supervised>()
        .and_then(|c| c.trainer.as_ref())
        .map(|t| t.model.valid())
        .unwrap();
    let blood = common::blood();
    let n = 64;
    let mut pixels = Vec::new();
    for i in 0..n {
        pixels.extend(
            blood
                .test
                .image(i)
                .unwrap()
                .iter()
                .map(|&v| f32::from(v) / 255.0),
        );
    }
    let x = Tensor::<4>::from_data(
        TensorData::new(pixels, [n, 3, 28, 28]),
        &platform::cpu_device(),
    );
    let ours = SupervisedRecipe::features(&model, x);
    for (name, t) in ["flat", "encoder", "normalised"].iter().zip(ours) {
        let mine = t
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .unwrap();
        let theirs = torch.to_f32(name).unwrap();
        assert_eq!(mine.len(), theirs.len(), "{name}");
        let worst = mine
            .iter()
            .zip(&theirs)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        println!(
            "{name}: largest difference from PyTorch {worst:.2e} over {} values",
            mine.len()
        );
        assert!(worst <= 1e-4, "{name}: PyTorch differs by {worst}");
    }
}
