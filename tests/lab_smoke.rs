//! Smoke tests of the training chapters on the bundled BloodMNIST, natively on the
//! CPU backend: tiny runs through the same registry and entry point the page and
//! the CLI use, asserting that learning happened; plus cancel, NaN handling and
//! the refusals that must come before any training.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by unwrapping

use replab::data::Dataset;
use replab::lab::supervised::{Supervised, ce_loss};
use replab::lab::{self, LabError, LabEvent, LabParams};
use replab::model::convnet::{ConvNet, ConvNetConfig};
use replab::platform::{self, BackendPref, Compute};
use replab::train::engine::{LossFn, all_params};
use replab::train::{
    Batch, Control, Hooks, Images, RunControl, TrainConfig, TrainError, TrainEvent, Trainer,
};
use std::sync::Arc;

mod common;
use common::blood;

fn tiny() -> LabParams {
    LabParams {
        epochs: 2,
        limit: Some(256),
        batch_size: 32,
        lr: 1e-3,
        seed: 3,
        backend: BackendPref::Cpu,
        ..LabParams::default()
    }
}

fn cpu() -> Compute {
    platform::block_on(platform::select_compute(BackendPref::Cpu)).unwrap()
}

/// The share of the most frequent class: what always guessing it scores.
fn majority(labels: &[usize]) -> f64 {
    let mut counts = std::collections::HashMap::new();
    for l in labels {
        *counts.entry(l).or_insert(0usize) += 1;
    }
    *counts.values().max().unwrap() as f64 / labels.len() as f64
}

fn run(
    slug: &str,
    chapter: &mut dyn lab::Chapter,
    params: &LabParams,
) -> Result<lab::ChapterOutput, LabError> {
    let mut stages = 0;
    let out = platform::block_on(lab::run(
        chapter,
        blood(),
        params,
        &cpu(),
        &RunControl::default(),
        &mut |_| stages += 1,
    ));
    assert!(
        out.is_err() || stages > 5,
        "{slug}: {stages} progress reports"
    );
    out
}

#[test]
fn supervised_and_supcon_learn_through_the_registry() {
    let params = tiny();
    let prepared = lab::prepare(blood(), &params).unwrap();
    assert_eq!(prepared.split.held_out_labels, vec![7, 0, 5]);
    let floor = majority(&prepared.test_b.labels);
    for slug in ["supervised", "supcon"] {
        let mut chapter = lab::make_chapter(slug).unwrap();
        let out = run(slug, chapter.as_mut(), &params).unwrap();
        let r = &out.result;
        assert_eq!(r.train_loss.len(), 2, "{slug}");
        assert!(
            r.train_loss
                .iter()
                .chain(&r.dev_loss)
                .all(|l| l.is_finite()),
            "{slug}"
        );
        // Learning happened: the loss fell, and the converged probe on the trained
        // encoder beats always guessing the commonest held-out class.
        assert!(
            r.train_loss[1] < r.train_loss[0],
            "{slug}: {:?}",
            r.train_loss
        );
        assert!(
            r.probe.converged_test_b > floor + 0.1,
            "{slug}: {} vs majority {floor}",
            r.probe.converged_test_b
        );
        assert!(r.probe.after.unwrap() > 0.0 && r.probe.finetune_after.unwrap() > 0.0);
        assert_eq!(r.probe.confusion_after.len(), 3);
        assert_eq!(out.umaps.len(), 3);
        assert!(
            out.umaps
                .iter()
                .all(|u| u.points.len() >= 16 && u.points.iter().all(|p| p[0].is_finite()))
        );
        eprintln!(
            "{slug}: converged test B {:.3} (majority {floor:.3}), dev A {:?}, untrained {:?}",
            r.probe.converged_test_b, r.dev_a_accuracy, r.probe.random_init_test_b
        );
        if slug == "supervised" {
            // Two epochs on 256 images leave BatchNorm's running statistics far from
            // converged, so dev-A accuracy in eval mode is not yet a fair measure;
            // it must exist and be a proportion.
            assert!((0.0..=1.0).contains(&r.dev_a_accuracy.unwrap()));
        } else {
            assert!(r.dev_a_accuracy.is_none());
        }
        // Continuing trains the same model further.
        let more = run(
            slug,
            chapter.as_mut(),
            &LabParams {
                epochs: 1,
                ..params.clone()
            },
        )
        .unwrap();
        assert_eq!(more.result.epochs_trained, 3, "{slug}");
        // A reset starts again from the seed and reproduces the first epoch.
        chapter.reset();
        let again = run(slug, chapter.as_mut(), &params).unwrap();
        assert_eq!(
            again.result.train_loss, r.train_loss,
            "{slug}: not reproducible from its seed"
        );
    }
}

#[test]
fn cancel_stops_at_a_step_keeps_finished_epochs_and_rewinds_the_cut_one() {
    let params = tiny();
    let control = RunControl::default();
    let mut chapter = Supervised::default();
    let (mut steps, mut per_epoch) = (0, 0);
    let ctl = control.clone();
    let result = platform::block_on(lab::run(
        &mut chapter,
        blood(),
        &params,
        &cpu(),
        &control,
        &mut |e| {
            if let LabEvent::Train {
                event: TrainEvent::Step { steps: n, .. },
                ..
            } = e
            {
                per_epoch = *n;
                steps += 1;
                // The second step of the second epoch.
                if steps == per_epoch + 2 {
                    ctl.set(Control::Cancel);
                }
            }
        },
    ));
    assert!(result.unwrap_err().is_cancel());
    let trainer = chapter.trainer.as_ref().expect("weights kept after cancel");
    assert_eq!(trainer.epochs_done(), 1);
    assert_eq!(trainer.history.step_loss.len(), per_epoch);
}

#[test]
fn a_nan_loss_stops_the_run_before_the_update() {
    let compute = cpu();
    let ds = blood();
    let prepared = lab::prepare(ds.clone(), &tiny()).unwrap();
    let model = ConvNetConfig::new(3, 5).init(&compute.train_device());
    let mut trainer = Trainer::new(
        model,
        TrainConfig {
            epochs: 1,
            batch_size: 32,
            ..TrainConfig::default()
        },
        all_params::<ConvNet>,
    );
    let before = trainer.model.encoder.clone();
    let nan_loss = |m: &ConvNet, b: &Batch| ce_loss(m, b).mul_scalar(f32::NAN);
    let loss: &LossFn<ConvNet> = &nan_loss;
    let err = platform::block_on(trainer.fit(
        &compute,
        &Images::new(&ds.train, &prepared.train_a),
        None,
        loss,
        &RunControl::default(),
        &mut Hooks::none(),
        &mut |_| {},
    ))
    .unwrap_err();
    assert!(
        matches!(
            err,
            TrainError::NonFinite {
                epoch: 1,
                step: 1,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("NaN") && err.to_string().contains("step 1"),
        "{err}"
    );
    // The weights are those from before the step.
    let a = before.forward(prepared_batch(&ds, &prepared, &compute));
    let b = trainer
        .model
        .encoder
        .forward(prepared_batch(&ds, &prepared, &compute));
    assert_eq!(
        a.into_data().try_to_vec::<f32>().unwrap(),
        b.into_data().try_to_vec::<f32>().unwrap()
    );
}

fn prepared_batch(ds: &Arc<Dataset>, p: &lab::Prepared, c: &Compute) -> burn::tensor::Tensor<4> {
    use replab::train::BatchSource;
    Images::new(&ds.train, &p.train_a)
        .batch(&[0, 1, 2, 3], &c.train_device())
        .images
}

/// Every failure that can be known before training is refused before it, with a
/// message naming the parameter.
#[test]
fn what_cannot_work_is_refused_before_training() {
    let sup = Supervised::default();
    let plan = |ds: Arc<Dataset>, p: &LabParams| {
        lab::plan(&sup, ds, p)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    let cases: Vec<(LabParams, &str)> = vec![
        (
            LabParams {
                limit: Some(10),
                ..tiny()
            },
            "limit=10",
        ),
        (
            LabParams {
                held_out_ratio: 0.1,
                ..tiny()
            },
            "held_out_ratio",
        ),
        (
            LabParams {
                held_out_ratio: 1.0,
                ..tiny()
            },
            "held_out_ratio",
        ),
        (
            LabParams {
                held_out_ratio: 0.95,
                ..tiny()
            },
            "held_out_ratio",
        ),
        (
            LabParams {
                labeled_ratio: 0.0,
                ..tiny()
            },
            "labeled_ratio",
        ),
        (
            LabParams {
                epochs: 0,
                ..tiny()
            },
            "epochs",
        ),
        (
            LabParams {
                batch_size: 0,
                ..tiny()
            },
            "batch_size",
        ),
        (
            LabParams {
                lr: f64::NAN,
                ..tiny()
            },
            "lr",
        ),
    ];
    for (p, needle) in cases {
        let msg = plan(blood(), &p);
        assert!(msg.contains(needle), "{p:?}: '{msg}'");
    }
    // A bundle whose images are not 28×28 is refused, not a shape panic in burn.
    let mut big = (*blood()).clone();
    for s in [&mut big.train, &mut big.val, &mut big.test] {
        let n = s.labels.len();
        s.size = 64;
        s.images = vec![0; n * s.channels * 64 * 64];
    }
    let msg = plan(Arc::new(big), &tiny());
    assert!(msg.contains("64×64") && msg.contains("28×28"), "{msg}");
    // A limit above a split's size is accepted, with a note.
    let p = lab::plan(
        &sup,
        blood(),
        &LabParams {
            limit: Some(100_000),
            ..tiny()
        },
    )
    .unwrap();
    assert!(
        p.notes.iter().any(|n| n.contains("limit=100000")),
        "{:?}",
        p.notes
    );
    // Unknown and unbuilt chapters name the valid ones.
    let e = lab::make_chapter("nope").err().unwrap().to_string();
    assert!(e.contains("supervised") && e.contains("clip"), "{e}");
}
