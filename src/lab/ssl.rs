//! What the two self-supervised chapters share: their parameters, the augmented
//! views each training batch becomes, the transfer settings, and the augmentation
//! gallery.

use super::chapter::RunCtx;
use super::params::LabParams;
use super::pipeline::train_config;
use crate::data::augment::{Pipeline, Transform};
use crate::data::rng::NumpyRng;
use crate::train::engine::read_floats;
use crate::train::{Batch, TrainConfig};
use burn::prelude::*;

/// The notebook's settings for training on unlabelled images: drop the last
/// partial batch (when there is a full one), clip gradients when asked.
pub fn unlabeled_config(ctx: &RunCtx<'_>, clip: Option<f64>) -> TrainConfig {
    TrainConfig {
        drop_last: ctx.prepared.train_unlabeled.len() >= ctx.params.batch_size,
        grad_clip_norm: clip,
        ..train_config(ctx)
    }
}

/// `base` with colour jitter and blur switched as the parameters say (the
/// augmentation ablation).
pub fn configured(base: Pipeline, params: &LabParams) -> Pipeline {
    base.with(Transform::Jitter, params.jitter, &base)
        .with(Transform::Blur, params.blur, &base)
}

/// The batch's images replaced by one augmented view per pipeline, stacked in order:
/// `[views · batch, c, h, w]`. The labels and `len` stay those of the images.
pub fn views(batch: Batch, pipelines: &[Pipeline], rng: &mut NumpyRng) -> Batch {
    let images = pipelines
        .iter()
        .map(|p| p.augment(batch.images.clone(), rng))
        .collect();
    Batch {
        images: Tensor::cat(images, 0),
        ..batch
    }
}

/// `[views · n, ...]` split back into its `views` blocks of `n` rows.
pub fn split_views<const D: usize>(x: Tensor<D>, views: usize) -> Vec<Tensor<D>> {
    let n = x.dims()[0] / views.max(1);
    (0..views).map(|v| x.clone().narrow(0, v * n, n)).collect()
}

/// `n` random views of one image `[c, h, w]` (values in `[0, 1]`, row-major) under
/// `pipeline`, drawn with `seed` on `device`: `n · c · h · w` values.
pub async fn gallery(
    image: &[f32],
    shape: [usize; 3],
    pipeline: &Pipeline,
    n: usize,
    seed: u64,
    device: &Device,
) -> Result<Vec<f32>, String> {
    let [c, h, w] = shape;
    if image.len() != c * h * w {
        return Err(format!(
            "the image has {} values, not {c}×{h}×{w}",
            image.len()
        ));
    }
    let x = Tensor::<4>::from_data(TensorData::new(image.to_vec(), [1, c, h, w]), device)
        .expand([n, c, h, w]);
    let mut rng = NumpyRng::new(seed);
    let views = pipeline.augment(x, &mut rng);
    read_floats(views).await.map_err(|e| e.to_string())
}

/// How many of `n` images of `len` values differ from every other one.
pub fn distinct(values: &[f32], len: usize) -> usize {
    let rows: Vec<&[f32]> = values.chunks(len.max(1)).collect();
    rows.iter()
        .enumerate()
        .filter(|(i, r)| {
            rows.iter()
                .enumerate()
                .all(|(j, s)| j == *i || r.iter().zip(s.iter()).any(|(a, b)| (a - b).abs() > 1e-6))
        })
        .count()
}
