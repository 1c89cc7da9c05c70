//! Building layers from a PyTorch `state_dict` (names and layouts as PyTorch has
//! them), for the parity tests of every model.

use crate::model::batchnorm::BatchNorm;
use crate::model::state::{StateError, TensorMap};
use burn::module::{Param, RunningState};
use burn::nn::conv::Conv2d;
use burn::nn::{LayerNorm, Linear};
use burn::prelude::*;

/// The tensor `name`, which must have `shape`.
pub(crate) fn tensor<const D: usize>(
    map: &TensorMap,
    name: &str,
    shape: [usize; D],
    device: &Device,
) -> Result<Tensor<D>, StateError> {
    let values = map.get(name, &shape)?;
    Ok(Tensor::from_data(
        TensorData::new(values.to_vec(), shape),
        device,
    ))
}

fn param<const D: usize>(
    map: &TensorMap,
    name: &str,
    shape: [usize; D],
    device: &Device,
) -> Result<Param<Tensor<D>>, StateError> {
    tensor(map, name, shape, device).map(Param::from_tensor)
}

/// An `nn.Linear(d_in, d_out)` stored under `prefix`: PyTorch keeps the weight as
/// `[out, in]`, burn as `[in, out]`.
pub(crate) fn linear(
    map: &TensorMap,
    prefix: &str,
    d_in: usize,
    d_out: usize,
    bias: bool,
    device: &Device,
) -> Result<Linear, StateError> {
    let w: Tensor<2> = tensor(map, &format!("{prefix}.weight"), [d_out, d_in], device)?;
    let bias = if bias {
        Some(param(map, &format!("{prefix}.bias"), [d_out], device)?)
    } else {
        None
    };
    Ok(Linear {
        weight: Param::from_tensor(w.transpose()), // [in, out]
        bias,
    })
}

/// The classifier head under `classifier.*`, when the state dict has one.
pub(crate) fn classifier(
    map: &TensorMap,
    latent_dim: usize,
    device: &Device,
) -> Result<Option<Linear>, StateError> {
    let Some((shape, _)) = map.raw("classifier.weight") else {
        return Ok(None);
    };
    let n_classes = shape.first().copied().unwrap_or(0);
    linear(map, "classifier", latent_dim, n_classes, true, device).map(Some)
}

/// Weight `[out, in, kh, kw]` and bias of an `nn.Conv2d` under `prefix`, with the
/// layer's own shape.
pub(crate) fn set_conv(
    conv: &mut Conv2d,
    map: &TensorMap,
    prefix: &str,
    device: &Device,
) -> Result<(), StateError> {
    let shape = conv.weight.val().dims(); // [out, in, kh, kw]
    conv.weight = param(map, &format!("{prefix}.weight"), shape, device)?;
    conv.bias = Some(param(map, &format!("{prefix}.bias"), [shape[0]], device)?);
    Ok(())
}

/// Running statistics of an `nn.BatchNorm2d` under `prefix`, and its scale and
/// shift when the layer has them (`affine=True`).
pub(crate) fn set_batch_norm(
    bn: &mut BatchNorm,
    map: &TensorMap,
    prefix: &str,
    device: &Device,
) -> Result<(), StateError> {
    let n = bn.num_features;
    if bn.gamma.is_some() {
        bn.gamma = Some(param(map, &format!("{prefix}.weight"), [n], device)?);
        bn.beta = Some(param(map, &format!("{prefix}.bias"), [n], device)?);
    }
    bn.running_mean =
        RunningState::new(tensor(map, &format!("{prefix}.running_mean"), [n], device)?);
    bn.running_var = RunningState::new(tensor(map, &format!("{prefix}.running_var"), [n], device)?);
    Ok(())
}

/// Scale and shift of an `nn.LayerNorm` under `prefix`.
pub(crate) fn set_layer_norm(
    ln: &mut LayerNorm,
    map: &TensorMap,
    prefix: &str,
    device: &Device,
) -> Result<(), StateError> {
    let [n] = ln.gamma.val().dims();
    ln.gamma = param(map, &format!("{prefix}.weight"), [n], device)?;
    ln.beta = Some(param(map, &format!("{prefix}.bias"), [n], device)?);
    Ok(())
}
