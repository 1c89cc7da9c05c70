//! Cancel anywhere, then run again: the second run must end with the same numbers
//! as a run that was never interrupted (within 1e-6 on the CPU). The cancel points
//! are drawn from a seeded generator over every progress report of a whole run, so
//! they land in training, the dev loss, feature extraction, UMAP, the probes and
//! the fine-tuning alike.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by unwrapping

use replab::data::rng::NumpyRng;
use replab::lab::{self, ChapterOutput, LabEvent, LabParams};
use replab::platform::{self, BackendPref};
use replab::train::{Control, RunControl};

mod common;

fn params(slug: &str) -> LabParams {
    let mut p = LabParams::for_chapter(slug);
    p.epochs = 2;
    p.limit = Some(256);
    p.batch_size = 64;
    p.seed = 5;
    p.backend = BackendPref::Cpu;
    p
}

/// Run `chapter`, cancelling at progress report `cancel_at` (1-based) when given;
/// returns the output (if it finished) and what each report was about: the stage's
/// name, or `training (phase)` for a training step.
fn run(
    chapter: &mut dyn lab::Chapter,
    slug: &str,
    cancel_at: Option<usize>,
) -> (Option<ChapterOutput>, Vec<String>) {
    let compute = platform::block_on(platform::select_compute(BackendPref::Cpu)).unwrap();
    let control = RunControl::default();
    let stop = control.clone();
    let mut labels = Vec::new();
    let mut observer = |e: LabEvent| {
        labels.push(match e {
            LabEvent::Stage { name, .. } => name.to_string(),
            LabEvent::Train { phase, .. } => format!("training ({phase})"),
        });
        if Some(labels.len()) == cancel_at {
            stop.set(Control::Cancel);
        }
    };
    let out = platform::block_on(lab::run(
        chapter,
        common::blood(),
        &params(slug),
        &compute,
        &control,
        &mut observer,
    ));
    match out {
        Ok(o) => (Some(o), labels),
        Err(e) => {
            assert!(e.to_string().contains("cancelled"), "{slug}: {e}");
            (None, labels)
        }
    }
}

#[test]
fn a_cancelled_run_run_again_ends_like_an_uninterrupted_one() {
    let _serial = common::serial();
    let mut rng = NumpyRng::new(14);
    for slug in ["supervised", "linear-ae"] {
        let mut fresh = lab::make_chapter(slug).unwrap();
        let (reference, labels) = run(fresh.as_mut(), slug, None);
        let reference = reference.unwrap();
        // The stages in order of appearance; the main training and three others
        // drawn at random, each cancelled at a random report within it.
        let mut stages: Vec<&String> = Vec::new();
        for l in &labels {
            if !stages.contains(&l) {
                stages.push(l);
            }
        }
        let mut picked = vec![stages[1]];
        let mut others: Vec<&String> = stages.iter().skip(2).copied().collect();
        rng.shuffle(&mut others);
        picked.extend(others.into_iter().take(3));
        let mut where_ = Vec::new();
        for stage in picked {
            let reports: Vec<usize> = (0..labels.len()).filter(|&i| &labels[i] == stage).collect();
            let at = 1 + reports[(rng.random() * reports.len() as f64) as usize];
            let mut chapter = lab::make_chapter(slug).unwrap();
            let (first, _) = run(chapter.as_mut(), slug, Some(at));
            where_.push(format!("report {at} of {} ({stage})", labels.len()));
            let again = match first {
                Some(done) => done, // cancelled after the last checkpoint: it finished
                None => run(chapter.as_mut(), slug, None).0.unwrap(),
            };
            common::compare::assert_same(
                &format!("{slug}, cancelled at report {at}"),
                &reference,
                &again,
                1e-6,
            );
        }
        println!("{slug}: cancelled at {}", where_.join("; "));
    }
}

/// CLIP: cancel while the weights load (block by block) and while the chapter embeds,
/// lays out and probes; loading and running again give the uninterrupted numbers.
#[test]
fn clip_cancelled_while_loading_or_embedding_ends_like_an_uninterrupted_run() {
    let _serial = common::serial();
    use replab::lab::clip::Clip;
    use replab::model::clip::weights::{ConvertOptions, convert};
    use std::rc::Rc;

    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/clip");
    let src = std::fs::read(dir.join("openclip_tiny.safetensors")).unwrap();
    let bytes = convert(&src, &ConvertOptions::default()).unwrap().bytes;
    let compute = platform::block_on(platform::select_compute(BackendPref::Cpu)).unwrap();
    let mut params = params("clip");
    params.limit = Some(24);
    // Load, cancelling at load report `load_at`; then run, cancelling at `run_at`.
    let attempt = |load_at: Option<usize>, run_at: Option<usize>, chapter: &mut Clip| {
        let control = RunControl::default();
        let stop = control.clone();
        let mut reports = 0;
        let loaded = platform::block_on(lab::clip::load(&bytes, &compute, &control, &mut |_| {
            reports += 1;
            if Some(reports) == load_at {
                stop.set(Control::Cancel);
            }
        }));
        let model = match loaded {
            Ok(m) => m,
            Err(e) => {
                assert!(e.to_string().contains("cancel"), "load: {e}");
                return (None, reports, 0);
            }
        };
        chapter.set_model(Rc::new(model));
        let mut run_reports = 0;
        let stop = control.clone();
        let out = platform::block_on(lab::run(
            chapter,
            common::blood(),
            &params,
            &compute,
            &control,
            &mut |_| {
                run_reports += 1;
                if Some(run_reports) == run_at {
                    stop.set(Control::Cancel);
                }
            },
        ));
        match out {
            Ok(o) => (Some(o), reports, run_reports),
            Err(e) => {
                assert!(e.is_cancel(), "run: {e}");
                (None, reports, run_reports)
            }
        }
    };
    let (reference, load_reports, run_reports) = attempt(None, None, &mut Clip::default());
    let reference = reference.unwrap();
    let mut rng = NumpyRng::new(32);
    let mut where_ = Vec::new();
    for _ in 0..2 {
        let at = 1 + (rng.random() * load_reports as f64) as usize;
        let mut chapter = Clip::default();
        let (first, _, _) = attempt(Some(at), None, &mut chapter);
        assert!(
            first.is_none() || at >= load_reports,
            "the load at report {at} was not cancelled"
        );
        let again = attempt(None, None, &mut chapter).0.unwrap();
        common::compare::assert_same(
            &format!("clip, load cancelled at {at}"),
            &reference,
            &again,
            1e-6,
        );
        where_.push(format!("load report {at} of {load_reports}"));
    }
    for _ in 0..3 {
        let at = 1 + (rng.random() * run_reports as f64) as usize;
        let mut chapter = Clip::default();
        let (first, _, _) = attempt(None, Some(at), &mut chapter);
        let again = match first {
            Some(done) => done,
            None => attempt(None, None, &mut chapter).0.unwrap(),
        };
        common::compare::assert_same(
            &format!("clip, run cancelled at {at}"),
            &reference,
            &again,
            1e-6,
        );
        where_.push(format!("run report {at} of {run_reports}"));
    }
    println!("clip: cancelled at {}", where_.join("; "));
}
