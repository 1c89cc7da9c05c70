//! Parity with PyTorch: the notebook's ConvNet forward pass (eval and train mode),
//! BatchNorm's running statistics, cross-entropy and SupCon, against values that
//! `scripts/make_torch_fixtures.py` computed with torch.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by unwrapping

use burn::prelude::*;
use replab::model::convnet::ConvNetConfig;
use replab::model::state::TensorMap;
use replab::platform::cpu_device;
use replab::train::losses::{cross_entropy, supcon};

const TOL: f32 = 1e-4;

fn fixture() -> TensorMap {
    TensorMap::from_safetensors(include_bytes!("fixtures/torch_parity.safetensors")).unwrap()
}

fn values(t: Tensor<2>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_into_vec().unwrap()
}

fn assert_close(name: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{name}: length");
    let worst = got
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs() / b.abs().max(1.0))
        .fold(0.0f32, f32::max);
    assert!(worst < TOL, "{name}: max difference {worst} exceeds {TOL}");
}

/// The model's state dict lives under `model.` in the fixture.
fn model_map(all: &TensorMap) -> TensorMap {
    let header_names = [
        "conv_blocks.0.block.0.weight",
        "conv_blocks.0.block.0.bias",
        "conv_blocks.0.block.1.weight",
        "conv_blocks.0.block.1.bias",
        "conv_blocks.0.block.1.running_mean",
        "conv_blocks.0.block.1.running_var",
        "conv_blocks.1.block.0.weight",
        "conv_blocks.1.block.0.bias",
        "conv_blocks.1.block.1.weight",
        "conv_blocks.1.block.1.bias",
        "conv_blocks.1.block.1.running_mean",
        "conv_blocks.1.block.1.running_var",
        "conv_blocks.2.block.0.weight",
        "conv_blocks.2.block.0.bias",
        "conv_blocks.2.block.1.weight",
        "conv_blocks.2.block.1.bias",
        "conv_blocks.2.block.1.running_mean",
        "conv_blocks.2.block.1.running_var",
        "encoder_head.1.weight",
        "encoder_head.1.bias",
        "bn.running_mean",
        "bn.running_var",
        "classifier.weight",
        "classifier.bias",
    ];
    let mut header = serde_json::Map::new();
    let mut data: Vec<u8> = Vec::new();
    for name in header_names {
        let (shape, v) = all.raw(&format!("model.{name}")).unwrap();
        let begin = data.len();
        for x in v {
            data.extend_from_slice(&x.to_le_bytes());
        }
        header.insert(
            name.to_string(),
            serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [begin, data.len()]}),
        );
    }
    let h = serde_json::to_vec(&header).unwrap();
    let mut bytes = (h.len() as u64).to_le_bytes().to_vec();
    bytes.extend(h);
    bytes.extend(data);
    TensorMap::from_safetensors(&bytes).unwrap()
}

fn input(all: &TensorMap, device: &Device) -> Tensor<4> {
    let x = all.get("input.x", &[6, 3, 28, 28]).unwrap();
    Tensor::from_data(TensorData::new(x.to_vec(), [6, 3, 28, 28]), device)
}

#[test]
fn convnet_forward_matches_torch_in_eval_mode() {
    let all = fixture();
    let device = cpu_device();
    let model = ConvNetConfig::new(3, 5)
        .init(&device)
        .load_torch(&model_map(&all), &device)
        .unwrap();
    let f = model.features(input(&all, &device));
    assert_close(
        "eval.flat",
        &values(f.flat),
        all.raw("eval.flat").unwrap().1,
    );
    assert_close(
        "eval.encoded",
        &values(f.encoded),
        all.raw("eval.encoded").unwrap().1,
    );
    assert_close(
        "eval.normalized",
        &values(f.normalized),
        all.raw("eval.normalized").unwrap().1,
    );
    let logits = model.forward(input(&all, &device));
    assert_close(
        "eval.logits",
        &values(logits),
        all.raw("eval.logits").unwrap().1,
    );
}

#[test]
fn convnet_forward_matches_torch_in_train_mode_with_running_stats() {
    let all = fixture();
    let device = cpu_device().autodiff();
    let model = ConvNetConfig::new(3, 5)
        .init(&device)
        .load_torch(&model_map(&all), &device)
        .unwrap();
    let f = model.features(input(&all, &device));
    assert_close(
        "train.flat",
        &values(f.flat),
        all.raw("train.flat").unwrap().1,
    );
    assert_close(
        "train.encoded",
        &values(f.encoded),
        all.raw("train.encoded").unwrap().1,
    );
    assert_close(
        "train.normalized",
        &values(f.normalized),
        all.raw("train.normalized").unwrap().1,
    );
    assert_close(
        "train.logits",
        &values(f.logits),
        all.raw("train.logits").unwrap().1,
    );
    let stat = |t: Tensor<1>| {
        t.into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .unwrap()
    };
    let bn0 = model.encoder.block_bn(0).unwrap();
    assert_close(
        "block0.running_mean",
        &stat(bn0.running_mean.value_sync()),
        all.raw("train.after.block0.running_mean").unwrap().1,
    );
    assert_close(
        "block0.running_var",
        &stat(bn0.running_var.value_sync()),
        all.raw("train.after.block0.running_var").unwrap().1,
    );
    let bn = model.bn.as_ref().unwrap();
    assert_close(
        "bn.running_mean",
        &stat(bn.running_mean.value_sync()),
        all.raw("train.after.bn.running_mean").unwrap().1,
    );
    assert_close(
        "bn.running_var",
        &stat(bn.running_var.value_sync()),
        all.raw("train.after.bn.running_var").unwrap().1,
    );
}

#[test]
fn cross_entropy_matches_torch() {
    let all = fixture();
    let device = cpu_device();
    let logits = all.get("ce.logits", &[7, 4]).unwrap();
    let targets: Vec<i64> = all
        .get("ce.targets", &[7])
        .unwrap()
        .iter()
        .map(|&t| t as i64)
        .collect();
    let loss = cross_entropy(
        Tensor::from_data(TensorData::new(logits.to_vec(), [7, 4]), &device),
        Tensor::from_data(TensorData::new(targets, [7]), &device),
    );
    let got: Vec<f32> = loss.into_data().convert::<f32>().try_into_vec().unwrap();
    assert_close("ce", &got, all.raw("ce.loss").unwrap().1);
}

#[test]
fn supcon_matches_torch_including_anchors_without_positives() {
    let all = fixture();
    let z = all.get("supcon.z", &[10, 8]).unwrap().to_vec();
    let labels: Vec<i64> = all
        .get("supcon.labels", &[10])
        .unwrap()
        .iter()
        .map(|&t| t as i64)
        .collect();
    for t in [0.07, 0.5] {
        let device = cpu_device();
        let loss = supcon(
            Tensor::from_data(TensorData::new(z.clone(), [10, 8]), &device),
            Tensor::from_data(TensorData::new(labels.clone(), [10]), &device),
            t,
        );
        let got: Vec<f32> = loss.into_data().convert::<f32>().try_into_vec().unwrap();
        assert_close(
            &format!("supcon t={t}"),
            &got,
            all.raw(&format!("supcon.loss.t{t}")).unwrap().1,
        );
    }
    // Gradients too: the masking must not leak into the backward pass.
    let device = cpu_device().autodiff();
    let zt = Tensor::<2>::from_data(TensorData::new(z, [10, 8]), &device).require_grad();
    let loss = supcon(
        zt.clone(),
        Tensor::from_data(TensorData::new(labels, [10]), &device),
        0.07,
    );
    let grads = loss.backward();
    let g = zt.grad(&grads).unwrap();
    assert_close(
        "supcon grad",
        &values(g),
        all.raw("supcon.grad.t0.07").unwrap().1,
    );
}
