//! Loading converted CLIP weights onto the device block by block, and embedding
//! images with the loaded tower.

use crate::data::SplitData;
use crate::data::bundle::sha256_hex;
use crate::lab::error::{LabError, LabEvent};
use crate::model::clip::ClipVisionConfig;
use crate::model::clip::preprocess::clip_preprocess_into;
use crate::model::clip::vit::{Block, ClipVision, TensorSource, WeightStore};
use crate::model::clip::weights::{ClipManifest, ClipWeights, ClipWeightsError};
use crate::platform::{self, BackendKind, Compute};
use crate::train::batcher::batch_positions;
use crate::train::engine::read_floats;
use crate::train::{RunControl, View};
use burn::prelude::*;
use burn::tensor::FloatDType;

/// A loaded encoder and what its file declares.
pub struct ClipModel {
    /// The network on the compute device.
    pub vision: ClipVision,
    /// The converted file's manifest.
    pub manifest: ClipManifest,
    /// sha256 of the converted file.
    pub sha256: String,
    /// Size of the converted file in bytes.
    pub file_bytes: usize,
    /// Device memory in live allocations once the weights were in place, when the
    /// backend reports it.
    pub device_bytes: Option<u64>,
    /// How the weight matrices are stored on the device.
    pub store: WeightStore,
}

impl ClipModel {
    /// The tower's configuration.
    pub fn config(&self) -> &ClipVisionConfig {
        &self.manifest.config
    }
}

impl TensorSource for ClipWeights<'_> {
    type Error = ClipWeightsError;
    fn values(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, ClipWeightsError> {
        let (got, values) = self.tensor(name)?;
        if got != shape {
            return Err(ClipWeightsError::Shape {
                name: name.to_string(),
                got,
                want: shape.to_vec(),
            });
        }
        Ok(values)
    }
}

fn weights_error(e: ClipWeightsError) -> LabError {
    LabError::Weights(e.to_string())
}

/// Bytes in live allocations on the device, if the backend reports them.
pub fn device_bytes(device: &Device) -> Option<u64> {
    device.memory_pool_usage().map(|u| u.bytes_in_use)
}

/// Bytes the device's allocator has reserved (live allocations plus pages kept
/// for reuse), if the backend reports them.
pub fn device_reserved(device: &Device) -> Option<u64> {
    device.memory_pool_usage().map(|u| u.bytes_reserved)
}

/// Check, dequantise and upload converted weights, one block at a time with a
/// yield in between, so the page stays live and the host holds one f32 layer at most.
pub async fn load(
    bytes: &[u8],
    compute: &Compute,
    control: &RunControl,
    observer: &mut dyn FnMut(LabEvent),
) -> Result<ClipModel, LabError> {
    let weights = ClipWeights::parse(bytes).map_err(weights_error)?;
    let manifest = weights.manifest().clone();
    let cfg = manifest.config.clone();
    let device = &compute.device;
    observer(LabEvent::Stage {
        name: "loading weights: patch embedding and positions",
        fraction: 0.0,
    });
    platform::yield_now().await;
    // On a GPU, quantised files keep their matrices in f16, which halves device
    // memory; f32 files stay f32 so they match the reference exactly, and the CPU,
    // where memory is plentiful, keeps f32 to skip the widening.
    let gpu = compute.kind != BackendKind::Cpu;
    let store = if gpu && weights.is_quantized() && device.supports_dtype(FloatDType::F16) {
        WeightStore::F16
    } else {
        WeightStore::F32
    };
    let mut vision = ClipVision::load_stem(&weights, &cfg, store, device).map_err(weights_error)?;
    let mut peak = device_bytes(device);
    for i in 0..cfg.layers {
        control.checkpoint().await?;
        vision.push_block(Block::load(&weights, i, &cfg, store, device).map_err(weights_error)?);
        peak = peak.max(device_bytes(device));
        observer(LabEvent::Stage {
            name: &format!("loading weights: block {} of {}", i + 1, cfg.layers),
            fraction: (i + 1) as f64 / cfg.layers as f64,
        });
        platform::yield_now().await;
    }
    Ok(ClipModel {
        vision,
        manifest,
        sha256: sha256_hex(bytes),
        file_bytes: bytes.len(),
        device_bytes: peak,
        store,
    })
}

/// Embeddings of every image of a view, row-major `[n, output_dim]`, with
/// progress reported as images done out of `total` across all calls.
#[allow(clippy::too_many_arguments)]
pub async fn embed_view(
    model: &ClipModel,
    compute: &Compute,
    split: &SplitData,
    view: &View,
    batch_size: usize,
    control: &RunControl,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<f32>, LabError> {
    let size = model.config().image_size;
    let mut out = Vec::with_capacity(view.len() * model.config().output_dim);
    for positions in batch_positions(view.len(), batch_size.max(1), None, false) {
        control.checkpoint().await?;
        let mut pixels = Vec::with_capacity(positions.len() * 3 * size * size);
        for &p in &positions {
            let img = view
                .indices
                .get(p)
                .and_then(|&row| split.image(row))
                .ok_or_else(|| LabError::Params(format!("image {p} is missing from the split")))?;
            clip_preprocess_into(
                img,
                split.channels,
                split.size,
                split.size,
                size,
                &mut pixels,
            )
            .map_err(|e| LabError::Analysis(format!("preprocessing: {e}")))?;
        }
        let x: Tensor<4> = Tensor::from_data(
            TensorData::new(pixels, [positions.len(), 3, size, size]),
            &compute.device,
        );
        let v = read_floats(model.vision.forward(x)).await?; // [batch, output_dim]
        if v.iter().any(|x| !x.is_finite()) {
            return Err(LabError::Analysis(
                "the encoder produced NaN or infinite features; the weights file may be damaged"
                    .into(),
            ));
        }
        out.extend(v);
        progress(positions.len());
        platform::yield_now().await;
    }
    Ok(out)
}
