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
