//! Parity with torchvision and PyTorch for the self-supervised chapters: every
//! augmentation at fixed parameters on real BloodMNIST and OrganAMNIST images, the
//! NT-Xent and DINO losses with their gradients, one EMA step of the teacher, the
//! centre update, the DINO head (with its normalised prototypes) and SimCLR's
//! projection head in train mode, against `scripts/make_ssl_fixtures.py`. Then the
//! statistics of the random draws: crop areas and ratios in range, flips about half
//! the time, grayscale about a fifth and with equal channels.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by unwrapping

mod common;
use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::*;
use common::fixture::{assert_close, state_dict, tensor, values, vec_of};
use replab::data::augment::ops;
use replab::data::augment::{Crop, JitterParams, Pipeline, ViewParams};
use replab::data::rng::NumpyRng;
use replab::model::dino::{DinoConfig, DinoHead};
use replab::model::ema::ema_params;
use replab::model::safetensors::SafeTensors;
use replab::model::simclr::ProjectionHead;
use replab::platform::cpu_device;
use replab::train::losses::{dino_loss, dino_targets, nt_xent};

const FIXTURE: &[u8] = include_bytes!("fixtures/ssl_parity.safetensors");

fn fixture() -> SafeTensors<'static> {
    SafeTensors::parse(FIXTURE).unwrap()
}

fn column(st: &SafeTensors, name: &str, n: usize, device: &Device) -> Tensor<4> {
    let v: Vec<f32> = values(st, name).into_iter().take(n).collect();
    Tensor::from_data(TensorData::new(v, [n, 1, 1, 1]), device)
}

/// Views carrying only the crop and flips of the fixture's first `n` rows.
fn crop_views(st: &SafeTensors, n: usize) -> Vec<ViewParams> {
    let boxes = values(st, "crop_box");
    let (h, v) = (values(st, "crop_hflip"), values(st, "crop_vflip"));
    (0..n)
        .map(|i| ViewParams {
            crop: Crop {
                top: boxes[4 * i] as usize,
                left: boxes[4 * i + 1] as usize,
                height: boxes[4 * i + 2] as usize,
                width: boxes[4 * i + 3] as usize,
            },
            hflip: h[i] > 0.5,
            vflip: v[i] > 0.5,
            ..ViewParams::identity(28, 28)
        })
        .collect()
}

#[test]
fn resized_crop_and_flips_match_torchvision() {
    let st = fixture();
    let d = cpu_device();
    let rgb: Tensor<4> = tensor(&st, "rgb", &d);
    assert_close(
        "crop rgb",
        ops::resized_crop(rgb, &crop_views(&st, 4)),
        &st,
        "crop_rgb",
    );
    let gray: Tensor<4> = tensor(&st, "gray", &d);
    assert_close(
        "crop gray",
        ops::resized_crop(gray, &crop_views(&st, 2)),
        &st,
        "crop_gray",
    );
}

#[test]
fn colour_operations_match_torchvision() {
    let st = fixture();
    let d = cpu_device();
    let rgb: Tensor<4> = tensor(&st, "rgb", &d);
    let gray: Tensor<4> = tensor(&st, "gray", &d);
    let f = |name| column(&st, name, 4, &d);
    assert_close(
        "brightness",
        ops::brightness(rgb.clone(), f("brightness")),
        &st,
        "brightness_rgb",
    );
    assert_close(
        "contrast",
        ops::contrast(rgb.clone(), f("contrast")),
        &st,
        "contrast_rgb",
    );
    let c2 = column(&st, "contrast", 2, &d);
    assert_close(
        "contrast gray",
        ops::contrast(gray.clone(), c2),
        &st,
        "contrast_gray",
    );
    assert_close(
        "saturation",
        ops::saturation(rgb.clone(), f("saturation")),
        &st,
        "saturation_rgb",
    );
    assert_close("hue", ops::hue(rgb.clone(), f("hue")), &st, "hue_rgb");
    // Grey images have no saturation or hue to change.
    let g = vec_of(gray.clone());
    assert_eq!(vec_of(ops::hue(gray.clone(), column(&st, "hue", 2, &d))), g);
    assert_eq!(
        vec_of(ops::saturation(gray, column(&st, "saturation", 2, &d))),
        g
    );
}

#[test]
fn colour_jitter_in_each_views_order_matches_torchvision() {
    let st = fixture();
    let d = cpu_device();
    let order = values(&st, "jitter_order");
    let factors = values(&st, "jitter_factors");
    let views: Vec<ViewParams> = (0..4)
        .map(|i| ViewParams {
            jitter: Some(JitterParams {
                order: std::array::from_fn(|k| order[4 * i + k] as u8),
                factors: std::array::from_fn(|k| factors[4 * i + k]),
            }),
            ..ViewParams::identity(28, 28)
        })
        .collect();
    let rgb: Tensor<4> = tensor(&st, "rgb", &d);
    assert_close("jitter", ops::color_jitter(rgb, &views), &st, "jitter_rgb");
}

#[test]
fn grayscale_and_blur_match_torchvision() {
    let st = fixture();
    let d = cpu_device();
    let rgb: Tensor<4> = tensor(&st, "rgb", &d);
    let grey_views = vec![
        ViewParams {
            grayscale: true,
            ..ViewParams::identity(28, 28)
        };
        4
    ];
    assert_close(
        "grayscale",
        ops::random_grayscale(rgb.clone(), &grey_views),
        &st,
        "grayscale_rgb",
    );
    let sigma = values(&st, "blur_sigma");
    let blur: Vec<ViewParams> = sigma
        .iter()
        .map(|s| ViewParams {
            blur_sigma: Some(*s),
            ..ViewParams::identity(28, 28)
        })
        .collect();
    assert_close("blur rgb", ops::gaussian_blur(rgb, &blur), &st, "blur_rgb");
    let gray: Tensor<4> = tensor(&st, "gray", &d);
    assert_close(
        "blur gray",
        ops::gaussian_blur(gray, &blur[..2]),
        &st,
        "blur_gray",
    );
}

#[test]
fn nt_xent_and_its_gradient_match_torch() {
    let st = fixture();
    let d = cpu_device().autodiff();
    let z1: Tensor<2> = tensor::<2>(&st, "ntxent_z1", &d).require_grad();
    let z2: Tensor<2> = tensor(&st, "ntxent_z2", &d);
    let loss = nt_xent(z1.clone(), z2.clone(), 0.5);
    assert_close(
        "nt-xent T=0.5",
        loss.clone().inner(),
        &st,
        "ntxent_loss_t05",
    );
    let grads = loss.backward();
    let g = z1.grad(&grads).unwrap();
    assert_close("nt-xent grad", g, &st, "ntxent_grad_z1_t05");
    assert_close(
        "nt-xent T=0.1",
        nt_xent(z1, z2, 0.1).inner(),
        &st,
        "ntxent_loss_t01",
    );
}

#[test]
fn dino_loss_its_gradient_and_the_centre_update_match_torch() {
    let st = fixture();
    let d = cpu_device().autodiff();
    let student: Tensor<3> = tensor::<3>(&st, "dino_student", &d).require_grad();
    let teacher: Tensor<3> = tensor(&st, "dino_teacher", &d);
    let center: Tensor<2> = tensor(&st, "dino_center", &d);
    let views = |t: Tensor<3>, n: usize| -> Vec<Tensor<2>> {
        (0..n)
            .map(|i| t.clone().narrow(0, i, 1).squeeze_dim(0))
            .collect()
    };
    let targets: Vec<Tensor<2>> = views(teacher.clone(), 2)
        .into_iter()
        .map(|t| dino_targets(t, center.clone(), 0.04))
        .collect();
    let loss = dino_loss(&views(student.clone(), 6), &targets, 0.1);
    assert_close("dino loss", loss.clone().inner(), &st, "dino_loss");
    let grads = loss.backward();
    assert_close(
        "dino grad",
        student.grad(&grads).unwrap(),
        &st,
        "dino_grad_student",
    );

    // The pair's after-step update moves the centre 10% towards the batch mean.
    let d = cpu_device();
    let pair = DinoConfig::new(1).with_out_dim(32).init(&d);
    pair.center.update(tensor(&st, "dino_center", &d));
    let t: Tensor<3> = tensor(&st, "dino_teacher", &d);
    pair.batch_center.update(t.reshape([16, 32]).mean_dim(0));
    let pair = pair.after_step(0.996, false);
    assert_close("centre", pair.center.value_sync(), &st, "dino_center_next");
}

/// Every float parameter, flattened, in visiting order.
struct Flat(Vec<Vec<f32>>);

impl ModuleVisitor for Flat {
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
        self.0.push(vec_of(p.val()));
    }
}

fn flat<M: Module>(m: &M) -> Vec<Vec<f32>> {
    let mut f = Flat(Vec::new());
    m.visit(&mut f);
    f.0
}

#[test]
fn one_ema_step_matches_torch() {
    let st = fixture();
    let d = cpu_device();
    let head = |prefix: &str| {
        DinoHead::new(16, 24, 32, &d)
            .load_torch(&state_dict(&st, prefix), &d)
            .unwrap()
    };
    let (student, teacher, want) = (head("ema.student"), head("ema.teacher"), head("ema.after"));
    let got = ema_params(teacher, &student, 0.996);
    let (got, want) = (flat(&got), flat(&want));
    assert_eq!(got.len(), 5);
    for (g, w) in got.iter().zip(&want) {
        let worst = g
            .iter()
            .zip(w)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(worst < 1e-6, "EMA differs by {worst}");
    }
}

#[test]
fn dino_head_matches_torch() {
    let st = fixture();
    let d = cpu_device();
    let head = DinoHead::new(128, 256, 256, &d)
        .load_torch(&state_dict(&st, "dino_head"), &d)
        .unwrap();
    let x: Tensor<2> = tensor(&st, "dino_head_x", &d);
    assert_close("dino head", head.forward(x), &st, "dino_head_out");
}

#[test]
fn simclr_projection_head_matches_torch_in_train_mode() {
    let st = fixture();
    let d = cpu_device().autodiff();
    let head = ProjectionHead::new(128, 128, &d)
        .load_torch(&state_dict(&st, "simclr_head"), &d)
        .unwrap();
    let x: Tensor<2> = tensor(&st, "simclr_head_x", &d);
    assert_close(
        "projection",
        head.forward(x).inner(),
        &st,
        "simclr_head_out",
    );
    let bn = head.batch_norm();
    assert_close(
        "running mean",
        bn.running_mean.value_sync().inner(),
        &st,
        "simclr_head_running_mean",
    );
    assert_close(
        "running var",
        bn.running_var.value_sync().inner(),
        &st,
        "simclr_head_running_var",
    );
}

#[test]
fn random_draws_follow_the_configured_distributions() {
    let mut rng = NumpyRng::new(3);
    let n = 4000;
    for (p, (lo, hi)) in [
        (Pipeline::SIMCLR, (0.5, 1.0)),
        (Pipeline::DINO_GLOBAL, (0.4, 1.0)),
        (Pipeline::DINO_LOCAL, (0.15, 0.4)),
    ] {
        let views = p.sample(&mut rng, n, 28, 28);
        // Whole pixels: allow the rounding of each side (half a pixel, ~4% of 28).
        for v in &views {
            let area = (v.crop.height * v.crop.width) as f64 / 784.0;
            let ratio = v.crop.width as f64 / v.crop.height as f64;
            assert!(
                area >= lo * 0.9 - 0.02 && area <= hi * 1.1,
                "area {area} for {lo}..{hi}"
            );
            assert!(
                (0.75 * 0.9..=4.0 / 3.0 * 1.1).contains(&ratio),
                "ratio {ratio}"
            );
            assert!(v.crop.top + v.crop.height <= 28 && v.crop.left + v.crop.width <= 28);
        }
        let mean_area = views
            .iter()
            .map(|v| (v.crop.height * v.crop.width) as f64 / 784.0)
            .sum::<f64>()
            / n as f64;
        // Draws too wide or tall for the image are redrawn, which favours smaller
        // areas when the range reaches 1; the mean stays well inside the range.
        let q = (hi - lo) / 4.0;
        assert!(
            mean_area > lo + q && mean_area < hi - q,
            "mean area {mean_area}"
        );
        let rate = |f: &dyn Fn(&ViewParams) -> bool| {
            views.iter().filter(|v| f(v)).count() as f64 / n as f64
        };
        assert!((rate(&|v| v.hflip) - 0.5).abs() < 0.03);
        assert!((rate(&|v| v.vflip) - 0.5).abs() < 0.03);
        assert!((rate(&|v| v.grayscale) - 0.2).abs() < 0.025);
        assert_eq!(
            rate(&|v| v.blur_sigma.is_some()),
            if p.blur.is_some() { 1.0 } else { 0.0 }
        );
        for v in &views {
            let j = v.jitter.unwrap();
            let mut o = j.order;
            o.sort_unstable();
            assert_eq!(o, [0, 1, 2, 3]);
            assert!((0.6..=1.4).contains(&j.factors[0]) && (0.8..=1.2).contains(&j.factors[2]));
            assert!(j.factors[3].abs() <= 0.1);
            assert!(v.blur_sigma.is_none_or(|s| (0.1..=2.0).contains(&s)));
        }
    }
}

#[test]
fn grey_views_have_equal_channels_and_every_view_stays_in_range() {
    let st = fixture();
    let d = cpu_device();
    let rgb: Tensor<4> = tensor(&st, "rgb", &d);
    let x = rgb.repeat_dim(0, 16); // [64, 3, 28, 28]
    let mut rng = NumpyRng::new(11);
    let views = Pipeline::SIMCLR.sample(&mut rng, 64, 28, 28);
    let out = vec_of(Pipeline::SIMCLR.apply(x, &views));
    let px = 28 * 28;
    let mut greys = 0;
    for (i, v) in views.iter().enumerate() {
        let img = &out[i * 3 * px..(i + 1) * 3 * px];
        assert!(img.iter().all(|p| (-1e-6..=1.0 + 1e-6).contains(p)));
        if v.grayscale {
            greys += 1;
            // Blur after grayscale treats the three equal channels alike.
            for k in 0..px {
                assert!(
                    (img[k] - img[px + k]).abs() < 1e-6 && (img[k] - img[2 * px + k]).abs() < 1e-6
                );
            }
        }
    }
    assert!(greys > 0, "no grey view among 64");
}
