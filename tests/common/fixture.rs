//! Reading the PyTorch fixtures: safetensors files whose large weights may be int8
//! with a power-of-two scale (`scale_exp:NAME` in the metadata), and comparing
//! against them within 1e-4.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use burn::prelude::*;
use replab::model::safetensors::{Dtype, SafeTensors, SafeTensorsWriter};
use replab::model::state::TensorMap;

/// The parity tolerance.
pub const TOL: f32 = 1e-4;

/// A tensor's values, int8 weights dequantised with their power-of-two scale.
pub fn values(st: &SafeTensors, name: &str) -> Vec<f32> {
    let v = st.to_f32(name).unwrap();
    if st.info(name).unwrap().dtype != Dtype::I8 {
        return v;
    }
    let k: i32 = st.metadata()[&format!("scale_exp:{name}")].parse().unwrap();
    let scale = 2f32.powi(-k);
    v.into_iter().map(|q| q * scale).collect()
}

pub fn tensor<const D: usize>(st: &SafeTensors, name: &str, device: &Device) -> Tensor<D> {
    let shape: [usize; D] = st.info(name).unwrap().shape.clone().try_into().unwrap();
    Tensor::from_data(TensorData::new(values(st, name), shape), device)
}

/// The state dict stored under `prefix.` in the fixture, as the models load it.
pub fn state_dict(st: &SafeTensors, prefix: &str) -> TensorMap {
    let mut w = SafeTensorsWriter::new();
    let mut n = 0;
    for name in st.names() {
        if let Some(key) = name.strip_prefix(&format!("{prefix}.")) {
            let shape = st.info(name).unwrap().shape.clone();
            w.add_f32(key, &shape, &values(st, name)).unwrap();
            n += 1;
        }
    }
    assert!(n > 0, "no tensors under {prefix}");
    TensorMap::from_safetensors(&w.to_bytes()).unwrap()
}

pub fn vec_of<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_into_vec().unwrap()
}

/// Max abs difference at most 1e-4, scaled down for tensors whose largest value is
/// below 1: the MSE gradients are ~1e-3, where a plain 1e-4 would pass nearly anything.
pub fn assert_close<const D: usize>(name: &str, got: Tensor<D>, st: &SafeTensors, key: &str) {
    let want_shape = &st.info(key).unwrap().shape;
    assert_eq!(&got.dims().to_vec(), want_shape, "{name}: shape");
    let got = vec_of(got);
    let want = values(st, key);
    let worst = got
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    let scale = want.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    let tol = TOL * scale.min(1.0);
    assert!(
        worst <= tol,
        "{name}: max abs difference {worst} exceeds {tol} (values up to {scale})"
    );
}
