//! The training loop's GPU-shaped paths, checked on the CPU backend where they can be
//! compared exactly: losses read back in windows of several steps (with a roll-back to
//! the weights from before a non-finite step), and batches gathered from data uploaded
//! once in chunks.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by unwrapping

use burn::tensor::Tensor;
use replab::data::Dataset;
use replab::lab::supervised::ce_loss;
use replab::lab::{self, LabParams};
use replab::model::convnet::{ConvNet, ConvNetConfig};
use replab::platform::{self, BackendPref, Compute};
use replab::train::engine::{LossFn, all_params};
use replab::train::source::Resident;
use replab::train::{
    Batch, BatchSource, Hooks, Images, RunControl, TrainConfig, TrainError, TrainEvent, Trainer,
};
use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;

mod common;
use common::blood;

fn cpu() -> Compute {
    platform::block_on(platform::select_compute(BackendPref::Cpu)).unwrap()
}

fn prepared(ds: &Arc<Dataset>) -> lab::Prepared {
    let params = LabParams {
        limit: Some(256),
        ..LabParams::default()
    };
    lab::prepare(ds.clone(), &params).unwrap()
}

fn trainer(window: usize, compute: &Compute) -> Trainer<ConvNet> {
    compute.device.seed(5);
    Trainer::new(
        ConvNetConfig::new(3, 5).init(&compute.train_device()),
        TrainConfig {
            epochs: 1,
            batch_size: 32,
            lr: 1e-3,
            seed: 5,
            readback_window: Some(window),
            ..TrainConfig::default()
        },
        all_params::<ConvNet>,
    )
}

fn floats<const D: usize>(t: burn::tensor::Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

/// Train one epoch with `loss`, returning the per-step events' losses and the outcome.
fn fit(
    t: &mut Trainer<ConvNet>,
    ds: &Arc<Dataset>,
    p: &lab::Prepared,
    loss: &LossFn<ConvNet>,
) -> (Vec<(usize, f64)>, Result<(), TrainError>) {
    let mut seen = Vec::new();
    let out = platform::block_on(t.fit(
        &cpu(),
        &Images::new(&ds.train, &p.train_a),
        None,
        loss,
        &RunControl::default(),
        &mut Hooks::none(),
        &mut |e| {
            if let TrainEvent::Step { step, loss, .. } = e {
                seen.push((*step, *loss));
            }
        },
    ));
    (seen, out)
}

#[test]
fn windowed_readback_gives_the_same_run_and_rolls_back_a_nan_step() {
    let compute = cpu();
    let ds = blood();
    let p = prepared(&ds);
    let probe = Images::new(&ds.train, &p.train_a)
        .batch(&[0, 1, 2, 3], &compute.train_device())
        .images;
    // The same seeded epoch read every step and read every 3 steps: identical.
    let plain: &LossFn<ConvNet> = &ce_loss;
    // (burn initialises parameters lazily, from the seeded device generator, so each
    // trainer is built right before it trains.)
    let mut a = trainer(1, &compute);
    let (ea, ra) = fit(&mut a, &ds, &p, plain);
    let mut b = trainer(3, &compute);
    let (eb, rb) = fit(&mut b, &ds, &p, plain);
    ra.unwrap();
    rb.unwrap();
    assert_eq!(ea.len(), p.train_a.len().div_ceil(32));
    assert!(ea.len() >= 6);
    assert_eq!(
        ea, eb,
        "every step reported once, in order, with equal losses"
    );
    assert_eq!(a.history.step_loss, b.history.step_loss);
    assert_eq!(a.history.train_loss(), b.history.train_loss());
    assert_eq!(
        floats(a.model.encoder.forward(probe.clone())),
        floats(b.model.encoder.forward(probe.clone()))
    );

    // The loss turns NaN on step 5, in the middle of the second window of 3: the
    // error names step 5, steps 1-4 are reported, and the weights are those after
    // step 4, exactly as when reading every step (which never applies step 5).
    fn nan_at_5(calls: Rc<Cell<usize>>) -> impl Fn(&ConvNet, &Batch) -> Tensor<1> {
        move |m, b| {
            calls.set(calls.get() + 1);
            let l = ce_loss(m, b);
            if calls.get() == 5 {
                l.mul_scalar(f32::NAN)
            } else {
                l
            }
        }
    }
    let (ca, cb) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
    let (fa, fb) = (nan_at_5(ca.clone()), nan_at_5(cb.clone()));
    let mut a = trainer(1, &compute);
    let (ea, ra) = fit(&mut a, &ds, &p, &fa);
    let mut b = trainer(3, &compute);
    let (eb, rb) = fit(&mut b, &ds, &p, &fb);
    for r in [ra, rb] {
        assert!(
            matches!(
                r,
                Err(TrainError::NonFinite {
                    epoch: 1,
                    step: 5,
                    ..
                })
            ),
            "{r:?}"
        );
    }
    assert_eq!(
        cb.get(),
        6,
        "the window ran on past the NaN step before reading it"
    );
    assert_eq!(ea.len(), 4);
    assert_eq!(ea, eb);
    assert_eq!(
        floats(a.model.encoder.forward(probe.clone())),
        floats(b.model.encoder.forward(probe))
    );
}

#[test]
fn resident_batches_equal_host_batches_across_chunks() {
    let compute = cpu();
    let ds = blood();
    let p = prepared(&ds);
    let host = Images::new(&ds.train, &p.train_a);
    // 10 images per chunk (3·28·28 floats each), so a batch spans many chunks.
    let resident = Resident::upload_in_chunks(&host, &compute.device, 10 * 3 * 28 * 28 * 4);
    assert_eq!(resident.len(), host.len());
    for positions in [vec![0], vec![9, 10], vec![200, 3, 57, 11, 12, 199, 0, 255]] {
        let a = host.batch(&positions, &compute.device);
        let b = resident.batch(&positions, &compute.device);
        assert_eq!(a.len, b.len);
        assert_eq!(floats(a.images), floats(b.images), "{positions:?}");
        assert_eq!(
            a.labels
                .into_data()
                .convert::<i64>()
                .try_to_vec::<i64>()
                .unwrap(),
            b.labels
                .into_data()
                .convert::<i64>()
                .try_to_vec::<i64>()
                .unwrap()
        );
    }
    // Positions past the end are dropped.
    assert_eq!(resident.batch(&[1, 10_000], &compute.device).len, 1);
}
