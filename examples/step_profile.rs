//! Where a supervised training step's time goes on the CPU backend: each layer of the
//! notebook's ConvNet at batch 128, its forward alone and its forward plus backward
//! (gradients of the input and the weights), median of several repeats. Prints one
//! JSON line per layer; `bench/step_profile.py` times the same layers in PyTorch.
//!
//! ```text
//! RAYON_NUM_THREADS=1 cargo run --release --example step_profile
//! ```

use burn::nn::pool::MaxPool2dConfig;
use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use replab::platform;
use std::time::Instant;

const REPS: usize = 7;

/// Median seconds of `f` over [`REPS`] runs after one warm-up.
fn time(mut f: impl FnMut()) -> f64 {
    f();
    let mut t: Vec<f64> = (0..REPS)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[REPS / 2]
}

fn sync<const D: usize>(t: Tensor<D>) {
    let _ = t.into_data();
}

fn main() {
    let device = platform::cpu_device().autodiff();
    let batch = 128;
    let pool = MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init();
    // (name, c_in, c_out, size)
    let convs = [
        ("conv1", 3, 32, 28),
        ("conv2", 32, 64, 14),
        ("conv3", 64, 128, 7),
    ];
    for (name, c_in, c_out, size) in convs {
        let x = Tensor::<4>::random([batch, c_in, size, size], Distribution::Default, &device)
            .require_grad();
        let w =
            Tensor::<4>::random([c_out, c_in, 3, 3], Distribution::Default, &device).require_grad();
        let b = Tensor::<1>::random([c_out], Distribution::Default, &device).require_grad();
        let opts = || ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
        let fwd = time(|| sync(conv2d(x.clone(), w.clone(), Some(b.clone()), opts())));
        let both = time(|| {
            let y = conv2d(x.clone(), w.clone(), Some(b.clone()), opts());
            let g = y.sum().backward();
            let _ = x.grad(&g).map(sync);
            let _ = w.grad(&g).map(sync);
        });
        println!(
            "{{\"layer\":\"{name}\",\"forward\":{fwd:.5},\"forward_backward\":{both:.5},\"backward\":{:.5}}}",
            both - fwd
        );
        let y = Tensor::<4>::random([batch, c_out, size, size], Distribution::Default, &device)
            .require_grad();
        let pfwd = time(|| sync(pool.forward(y.clone())));
        let pboth = time(|| {
            let g = pool.forward(y.clone()).sum().backward();
            let _ = y.grad(&g).map(sync);
        });
        println!(
            "{{\"layer\":\"pool{}\",\"forward\":{pfwd:.5},\"forward_backward\":{pboth:.5},\"backward\":{:.5}}}",
            &name[4..],
            pboth - pfwd
        );
    }
    let x = Tensor::<2>::random([batch, 1152], Distribution::Default, &device).require_grad();
    let w = Tensor::<2>::random([1152, 128], Distribution::Default, &device).require_grad();
    let fwd = time(|| sync(x.clone().matmul(w.clone())));
    let both = time(|| {
        let g = x.clone().matmul(w.clone()).sum().backward();
        let _ = x.grad(&g).map(sync);
        let _ = w.grad(&g).map(sync);
    });
    println!(
        "{{\"layer\":\"fc\",\"forward\":{fwd:.5},\"forward_backward\":{both:.5},\"backward\":{:.5}}}",
        both - fwd
    );
}
