//! The CLIP chapter: a frozen ViT-B/32 image encoder, pretrained on image–text
//! pairs from the internet, as a feature extractor for the held-out classes.
//!
//! Nothing here trains the encoder. The chapter loads converted weights, embeds a
//! sample of train B, dev B and the test split, lays the test embeddings out with
//! UMAP, and fits two linear heads on the held-out classes: the notebook's (AdamW,
//! lr 1e-3, weight decay 1e-4, 10 epochs, batch 128) and the converged L-BFGS probe.
//! Because the encoder is frozen and sees no augmentation, training the notebook's
//! head on cached features gives the same result as re-running the encoder every
//! epoch, at a tenth of the cost, so that is what happens here.

mod load;

pub use crate::model::clip::ClipVisionConfig;
pub use crate::model::clip::vit::WeightStore;
/// The largest CLIP weights file read (checked before reading).
pub use crate::model::clip::weights::MAX_FILE_BYTES;
pub use load::{ClipModel, device_bytes, device_reserved, embed_view, load};

use super::chapter::{Chapter, ChapterOutput, LocalBoxFuture, RunCtx};
use super::error::LabError;
use super::features::{FeatureSet, umap_layouts};
use super::params::LabParams;
use super::prepare::{Prepared, spread};
use super::registry::ChapterInfo;
use super::transfer::{CachedFeatures, frozen_transfer};
use crate::data::splits::LabSplit;
use crate::platform::{self, BackendKind};
use crate::train::View;
use serde_json::json;
use std::any::Any;
use std::rc::Rc;

/// The notebook's head on CLIP features: AdamW at this learning rate …
pub const HEAD_LR: f64 = 1e-3;
/// … with this weight decay.
pub const HEAD_WEIGHT_DECAY: f64 = 1e-4;
/// … and batches of this size, the last partial one dropped.
pub const HEAD_BATCH: usize = 128;
/// The smallest sample per split the chapter accepts.
pub const MIN_SAMPLE: usize = 16;
/// Where the app looks for deployed weights, relative to the page.
pub const WEIGHTS_URL: &str = "models/clip-vit-b32-int8.safetensors";

/// The chapter's registry entry.
pub const INFO: ChapterInfo = ChapterInfo {
    slug: "clip",
    title: "CLIP ViT-B/32, frozen",
    params: &[
        "limit",
        "epochs",
        "seed",
        "held_out_ratio",
        "split_seed",
        "backend",
    ],
    defaults: &[],
    exercises: &[],
    loss_title: "The notebook's head on CLIP features",
    monitors: &[],
    make: Some(make),
    built: true,
};

/// A fresh runner (no weights yet).
pub fn make() -> Box<dyn Chapter> {
    Box::<Clip>::default()
}

/// Images per split embedded by default: a small sample on the CPU, where one
/// ViT-B/32 image costs about 4.4 GFLOP, and more on a GPU.
pub fn default_sample(kind: BackendKind) -> usize {
    match kind {
        BackendKind::Cpu => 60,
        BackendKind::Wgpu | BackendKind::Webgpu => 400,
    }
}

/// Rough sustained throughput of each path, in GFLOP/s, used only to quote a time
/// before the first batch has been measured.
pub fn assumed_gflops(kind: BackendKind) -> f64 {
    match kind {
        BackendKind::Cpu => 8.0,
        BackendKind::Wgpu | BackendKind::Webgpu => 40.0,
    }
}

/// Seconds the embedding will take, quoted before running: measured throughput if
/// there is one, otherwise the assumed rate of the backend.
pub fn quote_seconds(
    images: usize,
    cfg: &ClipVisionConfig,
    kind: BackendKind,
    measured_ips: Option<f64>,
) -> f64 {
    match measured_ips {
        Some(ips) if ips > 0.0 => images as f64 / ips,
        _ => images as f64 * cfg.flops_per_image() / (assumed_gflops(kind) * 1e9),
    }
}

/// Images per split a run embeds: `limit`, or the backend's default sample.
pub fn sample_size(params: &LabParams, kind: BackendKind) -> usize {
    params.limit.unwrap_or_else(|| default_sample(kind))
}

/// The views the chapter embeds: train B, dev B and the test sample, each capped
/// at `sample` images spread evenly over it.
pub fn sample_views(prepared: &Prepared, sample: usize) -> [View; 3] {
    [
        spread(prepared.train_b.clone(), Some(sample)),
        spread(prepared.dev_b.clone(), Some(sample)),
        spread(prepared.test.clone(), Some(sample)),
    ]
}

/// Rows of a test view (original labels) that belong to held-out classes, with
/// remapped labels.
fn held_out_rows(
    split: &LabSplit,
    test: &View,
    features: &[f32],
    d: usize,
) -> (Vec<f32>, Vec<usize>) {
    let mut x = Vec::new();
    let mut y = Vec::new();
    for (i, &orig) in test.labels.iter().enumerate() {
        let Ok(label) = u8::try_from(orig) else {
            continue;
        };
        if let Some(b) = split.held_out_index(label)
            && let Some(row) = features.get(i * d..(i + 1) * d)
        {
            x.extend_from_slice(row);
            y.push(b);
        }
    }
    (x, y)
}

/// The chapter, with the encoder the user loaded.
#[derive(Default)]
pub struct Clip {
    /// The loaded encoder.
    pub model: Option<Rc<ClipModel>>,
}

impl Clip {
    /// Use these weights for the next runs.
    pub fn set_model(&mut self, model: Rc<ClipModel>) {
        self.model = Some(model);
    }
}

impl Chapter for Clip {
    fn info(&self) -> &'static ChapterInfo {
        &INFO
    }

    fn validate(&self, params: &LabParams, _prepared: &Prepared) -> Result<(), LabError> {
        if self.model.is_none() {
            return Err(LabError::Weights(
                "load the CLIP weights first (a file made by `replab convert-clip`)".into(),
            ));
        }
        if params.limit.is_some_and(|l| l < MIN_SAMPLE) {
            return Err(LabError::Params(format!(
                "limit: embed at least {MIN_SAMPLE} images per split; the UMAP needs 16 points and the probes need several per class"
            )));
        }
        Ok(())
    }

    fn run<'a>(
        &'a mut self,
        mut ctx: RunCtx<'a>,
    ) -> LocalBoxFuture<'a, Result<ChapterOutput, LabError>> {
        Box::pin(async move {
            let model = self
                .model
                .clone()
                .ok_or_else(|| LabError::Weights("load the CLIP weights first".into()))?;
            self.validate(ctx.params, ctx.prepared)?;
            let prepared = ctx.prepared;
            let ds = prepared.dataset.clone();
            let views = sample_views(prepared, sample_size(ctx.params, ctx.compute.kind));
            let total: usize = views.iter().map(View::len).sum();
            let d = model.config().output_dim;
            let batch = match ctx.compute.kind {
                BackendKind::Cpu => 8,
                BackendKind::Wgpu | BackendKind::Webgpu => 32,
            };
            let started = platform::now_ms();
            let mut done = 0usize;
            let mut feats: Vec<Vec<f32>> = Vec::new();
            let parts = [
                (&ds.train, &views[0]),
                (&ds.val, &views[1]),
                (&ds.test, &views[2]),
            ];
            for (k, (split, view)) in parts.into_iter().enumerate() {
                let what = ["train B", "dev B", "the test sample"][k];
                let observer = &mut *ctx.observer;
                let mut progress = |n: usize| {
                    done += n;
                    let secs = (platform::now_ms() - started) / 1000.0;
                    let ips = done as f64 / secs.max(1e-9);
                    let eta = (total - done.min(total)) as f64 / ips.max(1e-9);
                    observer(super::LabEvent::Stage {
                        name: &format!(
                            "embedding {what}: {done} of {total} images, {ips:.1} images/s, about {eta:.0} s left"
                        ),
                        fraction: 0.7 * done as f64 / total.max(1) as f64,
                    });
                };
                feats.push(
                    embed_view(
                        &model,
                        ctx.compute,
                        split,
                        view,
                        batch,
                        ctx.control,
                        &mut progress,
                    )
                    .await?,
                );
            }
            let seconds = (platform::now_ms() - started) / 1000.0;
            let images_per_second = total as f64 / seconds.max(1e-9);
            let [train_x, dev_x, test_x]: [Vec<f32>; 3] = feats.try_into().map_err(|_| {
                LabError::Analysis("feature extraction returned too few sets".into())
            })?;

            let set = FeatureSet {
                sets: vec![("CLIP image embedding".to_string(), d, test_x.clone())],
                n: views[2].len(),
            };
            let umaps = umap_layouts(
                &set,
                &views[2],
                ctx.params.seed,
                ctx.control,
                ctx.observer,
                (0.7, 0.85),
            )
            .await?;

            ctx.stage("the notebook's linear head and the converged probe", 0.85);
            let (test_b_x, test_b_y) = held_out_rows(&prepared.split, &views[2], &test_x, d);
            let cached = CachedFeatures {
                d,
                train: (&train_x, &views[0].labels),
                dev: (&dev_x, &views[1].labels),
                test: (&test_b_x, &test_b_y),
            };
            let (probe, history) =
                frozen_transfer(&cached, (HEAD_LR, HEAD_WEIGHT_DECAY, HEAD_BATCH), &mut ctx)
                    .await?;
            ctx.stage("done", 1.0);
            let mut out = ChapterOutput::new(history, probe, prepared);
            out.umaps = umaps;
            let extra = json!({
                "config": model.config(),
                "weights_sha256": model.sha256,
                "quantization": model.manifest.quantization,
                "images": [views[0].len(), views[1].len(), views[2].len()],
                "images_per_second": images_per_second,
                "device_bytes": model.device_bytes.max(device_bytes(&ctx.compute.device)),
            });
            if let serde_json::Value::Object(map) = extra {
                out.result.extra = map;
            }
            Ok(out)
        })
    }

    fn reset(&mut self) {}

    fn epochs_trained(&self) -> usize {
        0
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}
