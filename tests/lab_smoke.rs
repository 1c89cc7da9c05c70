//! Smoke tests of the training chapters on the bundled BloodMNIST, natively on the
//! CPU backend: tiny runs that exercise every stage, plus cancel and NaN handling.

use replab::lab::common::ce_loss;
use replab::lab::{self, LabParams};
use replab::model::convnet::{ConvNet, ConvNetConfig};
use replab::platform::{self, BackendPref};
use replab::train::engine::{Control, LossFn, all_params};
use replab::train::{Batch, RunControl, TrainConfig, TrainError, Trainer};

mod common;
use common::blood;

fn tiny() -> LabParams {
    LabParams {
        epochs: 1,
        limit: Some(160),
        batch_size: 32,
        seed: 3,
        ..LabParams::default()
    }
}

#[test]
fn supervised_and_supcon_run_end_to_end_on_cpu() {
    let compute = platform::block_on(platform::select_compute(BackendPref::Cpu)).unwrap();
    let params = tiny();
    let prepared = lab::prepare(blood(), &params).unwrap();
    assert_eq!(prepared.split.held_out_labels, vec![7, 0, 5]);
    let control = RunControl::default();
    let mut stages = 0;
    let mut st = lab::supervised::SupervisedState::new();
    let out = platform::block_on(lab::supervised::run(
        &mut st,
        &prepared,
        &params,
        &compute,
        &control,
        &mut |_| stages += 1,
    ))
    .unwrap();
    assert!(stages > 5);
    let r = &out.result;
    assert_eq!(r.train_loss.len(), 1);
    assert!(r.train_loss[0].is_finite() && r.dev_loss[0].is_finite());
    for a in [
        r.dev_a_accuracy.unwrap(),
        r.probe.before,
        r.probe.after,
        r.probe.finetune_after,
        r.probe.converged_dev_b,
        r.probe.converged_test_b,
        r.probe.random_init_test_b,
    ] {
        assert!((0.0..=1.0).contains(&a), "{a}");
    }
    assert_eq!(r.probe.confusion_after.len(), 3);
    assert_eq!(out.umaps.len(), 3);
    assert!(
        out.umaps
            .iter()
            .all(|u| !u.points.is_empty() && u.points.iter().all(|p| p[0].is_finite()))
    );
    // A second run continues: two epochs in total.
    let out2 = platform::block_on(lab::supervised::run(
        &mut st,
        &prepared,
        &params,
        &compute,
        &control,
        &mut |_| {},
    ))
    .unwrap();
    assert_eq!(out2.result.epochs_trained, 2);

    let mut sc = lab::supcon::SupConState::default();
    let out = platform::block_on(lab::supcon::run(
        &mut sc,
        &prepared,
        &params,
        &compute,
        &control,
        &mut |_| {},
    ))
    .unwrap();
    assert!(out.result.train_loss[0].is_finite());
    assert!(out.result.dev_a_accuracy.is_none());
    assert!((0.0..=1.0).contains(&out.result.probe.converged_test_b));
}

#[test]
fn cancel_stops_at_a_step_and_keeps_the_weights() {
    let compute = platform::block_on(platform::select_compute(BackendPref::Cpu)).unwrap();
    let params = tiny();
    let prepared = lab::prepare(blood(), &params).unwrap();
    let control = RunControl::default();
    let mut st = lab::supervised::SupervisedState::new();
    let mut steps = 0;
    let ctl = control.clone();
    let result = platform::block_on(lab::supervised::run(
        &mut st,
        &prepared,
        &params,
        &compute,
        &control,
        &mut |e| {
            if let lab::LabEvent::Train { .. } = e {
                steps += 1;
                if steps == 2 {
                    ctl.set(Control::Cancel);
                }
            }
        },
    ));
    assert!(result.unwrap_err().is_cancel());
    let trainer = st.trainer.as_ref().expect("weights kept after cancel");
    assert_eq!(trainer.history.step_loss.len(), 2);
}

#[test]
fn a_nan_loss_stops_the_run_with_a_message() {
    let compute = platform::block_on(platform::select_compute(BackendPref::Cpu)).unwrap();
    let ds = blood();
    let prepared = lab::prepare(ds.clone(), &tiny()).unwrap();
    let device = compute.train_device();
    let model = ConvNetConfig::new(3, 5).init(&device);
    let mut trainer = Trainer::new(
        model,
        TrainConfig {
            epochs: 1,
            batch_size: 32,
            ..TrainConfig::default()
        },
        all_params::<ConvNet>,
    );
    let nan_loss = |m: &ConvNet, b: &Batch| ce_loss(m, b).mul_scalar(f32::NAN);
    let loss: &LossFn<ConvNet> = &nan_loss;
    let err = platform::block_on(trainer.fit(
        &compute,
        (&ds.train, &prepared.train_a),
        None,
        loss,
        &RunControl::default(),
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
    assert!(err.to_string().contains("NaN"), "{err}");
}

#[test]
fn split_edge_cases_are_errors_not_panics() {
    let ds = blood();
    let p = LabParams {
        held_out_ratio: 1.0,
        ..tiny()
    };
    assert!(lab::prepare(ds.clone(), &p).is_err());
    let p = LabParams {
        labeled_ratio: 0.0,
        ..tiny()
    };
    assert!(lab::prepare(ds, &p).is_err());
}
