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

use super::common::{Embedding2d, FeatureSet, LabError, LabEvent, Prepared, converged_probe};
use super::common::{spread, umap_layouts};
use super::params::LabParams;
use crate::analysis::metrics;
use crate::data::SplitData;
use crate::data::bundle::sha256_hex;
use crate::data::rng::NumpyRng;
use crate::data::splits::LabSplit;
use crate::model::clip::ClipVisionConfig;
use crate::model::clip::preprocess::clip_preprocess_into;
use crate::model::clip::vit::{Block, ClipVision, TensorSource, WeightStore};
use crate::model::clip::weights::{ClipManifest, ClipWeights, ClipWeightsError};
use crate::platform::{self, BackendKind, Compute};
use crate::train::batcher::batch_positions;
use crate::train::engine::{EpochStats, History, read_floats, read_scalar};
use crate::train::losses::cross_entropy;
use crate::train::{RunControl, TrainError, TrainEvent, View};
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use burn::tensor::FloatDType;
use serde::{Deserialize, Serialize};

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
async fn embed_view(
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

/// The chapter's numbers, the `clip` object of `results.json`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ClipResult {
    /// The tower's configuration, as the weights file declares it.
    pub config: Option<ClipVisionConfig>,
    /// sha256 of the converted weights file.
    pub weights_sha256: String,
    /// Quantisation scheme of the file.
    pub quantization: String,
    /// Images embedded from train B, dev B and the test split.
    pub images: [usize; 3],
    /// Embedding throughput, preprocessing included.
    pub images_per_second: f64,
    /// Device memory held by the allocator after loading, where reported.
    pub device_bytes: Option<u64>,
    /// Dev-B accuracy of the notebook's fresh head.
    pub before: f64,
    /// Dev-B accuracy of the notebook's head after training.
    pub after: f64,
    /// Converged probe, dev B.
    pub converged_dev_b: f64,
    /// Converged probe, test B (the held-out classes of the test sample).
    pub converged_test_b: f64,
    /// Row-normalised dev-B confusion of the fresh head.
    pub confusion_before: Vec<Vec<f64>>,
    /// Row-normalised dev-B confusion of the trained head.
    pub confusion_after: Vec<Vec<f64>>,
    /// Row-normalised test-B confusion of the converged probe.
    pub confusion_converged: Vec<Vec<f64>>,
    /// Per-epoch losses of the notebook's head.
    pub train_loss: Vec<f64>,
    /// Per-epoch dev-B losses of the notebook's head.
    pub dev_loss: Vec<f64>,
}

/// Everything the page draws after a run.
#[derive(Clone, Debug, Default)]
pub struct ClipOutput {
    /// The numbers.
    pub result: ClipResult,
    /// The notebook head's loss history.
    pub history: History,
    /// The UMAP of the test sample's embeddings.
    pub umap: Embedding2d,
    /// Held-out class names in remapped order.
    pub names_b: Vec<String>,
    /// Held-out original labels.
    pub held_out_labels: Vec<u8>,
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

/// The views the chapter embeds: train B, dev B and the test sample, each capped
/// at `sample` images spread evenly over it.
pub fn sample_views(prepared: &Prepared, sample: usize) -> [View; 3] {
    [
        spread(prepared.train_b.clone(), Some(sample)),
        spread(prepared.dev_b.clone(), Some(sample)),
        spread(prepared.test.clone(), Some(sample)),
    ]
}

/// Embed the sample, lay it out and fit both heads.
pub async fn run(
    model: &ClipModel,
    prepared: &Prepared,
    params: &LabParams,
    sample: usize,
    compute: &Compute,
    control: &RunControl,
    observer: &mut dyn FnMut(LabEvent),
) -> Result<ClipOutput, LabError> {
    if sample < MIN_SAMPLE {
        return Err(LabError::Params(format!(
            "embed at least {MIN_SAMPLE} images per split: the UMAP needs 16 points and the probes need several per class"
        )));
    }
    let ds = &prepared.dataset;
    let views = sample_views(prepared, sample);
    let total: usize = views.iter().map(View::len).sum();
    let d = model.config().output_dim;
    let n_b = prepared.names_b.len();
    let batch = match compute.kind {
        BackendKind::Cpu => 8,
        BackendKind::Wgpu | BackendKind::Webgpu => 32,
    };
    let started = platform::now_ms();
    let mut done = 0usize;
    let mut feats: Vec<Vec<f32>> = Vec::new();
    for (k, (split, view)) in [
        (&ds.train, &views[0]),
        (&ds.val, &views[1]),
        (&ds.test, &views[2]),
    ]
    .into_iter()
    .enumerate()
    {
        let what = ["train B", "dev B", "the test sample"][k];
        let mut progress = |n: usize| {
            done += n;
            let secs = (platform::now_ms() - started) / 1000.0;
            let ips = done as f64 / secs.max(1e-9);
            let eta = (total - done.min(total)) as f64 / ips.max(1e-9);
            observer(LabEvent::Stage {
                name: &format!(
                    "embedding {what}: {done} of {total} images, {ips:.1} images/s, about {eta:.0} s left"
                ),
                fraction: 0.7 * done as f64 / total.max(1) as f64,
            });
        };
        feats.push(embed_view(model, compute, split, view, batch, control, &mut progress).await?);
    }
    let seconds = (platform::now_ms() - started) / 1000.0;
    let images_per_second = total as f64 / seconds.max(1e-9);
    let [train_x, dev_x, test_x]: [Vec<f32>; 3] = feats
        .try_into()
        .map_err(|_| LabError::Analysis("feature extraction returned too few sets".into()))?;

    let set = FeatureSet {
        sets: vec![("CLIP image embedding".to_string(), d, test_x.clone())],
        n: views[2].len(),
    };
    let umap = umap_layouts(&set, &views[2], params.seed, control, observer, (0.7, 0.85))
        .await?
        .into_iter()
        .next()
        .unwrap_or_default();

    observer(LabEvent::Stage {
        name: "the notebook's linear head on the held-out classes",
        fraction: 0.85,
    });
    let (train_y, dev_y) = (&views[0].labels, &views[1].labels);
    let mut head = HeadTrainer::new(d, n_b, params.seed, compute);
    let (before, cm_before) = head.evaluate(&dev_x, dev_y, compute).await?;
    head.fit(
        (&train_x, train_y),
        (&dev_x, dev_y),
        params.epochs,
        compute,
        control,
        observer,
    )
    .await?;
    let (after, cm_after) = head.evaluate(&dev_x, dev_y, compute).await?;

    observer(LabEvent::Stage {
        name: "the converged probe (L-BFGS)",
        fraction: 0.95,
    });
    platform::yield_now().await;
    let (test_b_x, test_b_y) = held_out_rows(&prepared.split, &views[2], &test_x, d);
    let (cdev, ctest, ccm) = converged_probe(
        (&train_x, train_y),
        (&dev_x, dev_y),
        (&test_b_x, &test_b_y),
        d,
        n_b,
    )?;
    observer(LabEvent::Stage {
        name: "done",
        fraction: 1.0,
    });
    let history = head.history.clone();
    Ok(ClipOutput {
        result: ClipResult {
            config: Some(model.config().clone()),
            weights_sha256: model.sha256.clone(),
            quantization: model.manifest.quantization.clone(),
            images: [views[0].len(), views[1].len(), views[2].len()],
            images_per_second,
            device_bytes: model.device_bytes.max(device_bytes(&compute.device)),
            before,
            after,
            converged_dev_b: cdev,
            converged_test_b: ctest,
            confusion_before: cm_before,
            confusion_after: cm_after,
            confusion_converged: ccm,
            train_loss: history.train_loss(),
            dev_loss: history.dev_loss(),
        },
        history,
        umap,
        names_b: prepared.names_b.clone(),
        held_out_labels: prepared.split.held_out_labels.clone(),
    })
}

/// The notebook's linear head, trained with AdamW on cached features.
pub struct HeadTrainer {
    head: Linear,
    optim: ModuleOptimizer,
    rng: NumpyRng,
    d: usize,
    /// What has happened so far.
    pub history: History,
}

impl HeadTrainer {
    /// A fresh head from `d` features to `n_classes`, on the training device.
    pub fn new(d: usize, n_classes: usize, seed: u64, compute: &Compute) -> Self {
        Self {
            head: LinearConfig::new(d, n_classes).init(&compute.train_device()),
            optim: AdamWConfig::new()
                .with_weight_decay(HEAD_WEIGHT_DECAY as f32)
                .with_epsilon(1e-8)
                .init(),
            rng: NumpyRng::new(seed.wrapping_add(1)),
            d,
            history: History::default(),
        }
    }

    fn rows(&self, x: &[f32], positions: &[usize], device: &Device) -> Tensor<2> {
        let d = self.d;
        let mut v = Vec::with_capacity(positions.len() * d);
        for &p in positions {
            if let Some(row) = x.get(p * d..(p + 1) * d) {
                v.extend_from_slice(row);
            }
        }
        let n = v.len() / d.max(1);
        Tensor::from_data(TensorData::new(v, [n, d]), device)
    }

    fn labels(y: &[usize], positions: &[usize], device: &Device) -> Tensor<1, Int> {
        let v: Vec<i64> = positions
            .iter()
            .filter_map(|&p| y.get(p))
            .map(|&l| l as i64)
            .collect();
        let n = v.len();
        Tensor::from_data(TensorData::new(v, [n]), device)
    }

    /// Accuracy and row-normalised confusion matrix on features `x`, read back
    /// asynchronously (a blocking read would trap in the browser).
    pub async fn evaluate(
        &self,
        x: &[f32],
        y: &[usize],
        compute: &Compute,
    ) -> Result<(f64, Vec<Vec<f64>>), LabError> {
        let head = self.head.valid();
        let all: Vec<usize> = (0..y.len()).collect();
        let logits = head.forward(self.rows(x, &all, &compute.device));
        let pred: Vec<usize> = read_floats(logits.argmax(1).float())
            .await?
            .into_iter()
            .map(|p| p.max(0.0) as usize)
            .collect();
        let n_classes = self.head.weight.dims()[1];
        let cm = metrics::confusion_matrix(&pred, y, n_classes);
        Ok((metrics::accuracy(&pred, y), metrics::row_normalize(&cm)))
    }

    /// Train for `epochs` more epochs, reporting dev loss after each.
    pub async fn fit(
        &mut self,
        train: (&[f32], &[usize]),
        dev: (&[f32], &[usize]),
        epochs: usize,
        compute: &Compute,
        control: &RunControl,
        observer: &mut dyn FnMut(LabEvent),
    ) -> Result<(), LabError> {
        let device = compute.train_device();
        let n = train.1.len();
        let drop_last = n >= HEAD_BATCH;
        // The dev set is fixed: upload it once, not every epoch.
        let dev_all: Vec<usize> = (0..dev.1.len()).collect();
        let dev_x = self.rows(dev.0, &dev_all, &compute.device);
        let dev_y = Self::labels(dev.1, &dev_all, &compute.device);
        for _ in 0..epochs {
            let epoch = self.history.epochs.len() + 1;
            let t0 = platform::now_ms();
            let batches = batch_positions(n, HEAD_BATCH, Some(&mut self.rng), drop_last);
            let (mut sum, mut seen) = (0.0, 0usize);
            for (s, positions) in batches.iter().enumerate() {
                control.checkpoint().await?;
                let x = self.rows(train.0, positions, &device);
                let y = Self::labels(train.1, positions, &device);
                let loss = cross_entropy(self.head.forward(x), y);
                let grads = GradientsParams::from_grads(loss.backward(), &self.head);
                let value = read_scalar(loss).await?;
                if !value.is_finite() {
                    return Err(TrainError::NonFinite {
                        epoch,
                        step: s + 1,
                        value,
                    }
                    .into());
                }
                self.head = self.optim.step(HEAD_LR, self.head.clone(), grads);
                sum += value * positions.len() as f64;
                seen += positions.len();
                self.history.step_loss.push(value);
                observer(LabEvent::Train {
                    phase: "probe",
                    event: &TrainEvent::Step {
                        epoch,
                        step: s + 1,
                        steps: batches.len(),
                        loss: value,
                        eta_seconds: 0.0,
                    },
                });
            }
            let seconds = (platform::now_ms() - t0) / 1000.0;
            let dev_loss = if dev.1.is_empty() {
                None
            } else {
                let logits = self.head.valid().forward(dev_x.clone());
                Some(read_scalar(cross_entropy(logits, dev_y.clone())).await?)
            };
            let stats = EpochStats {
                epoch,
                train_loss: sum / seen.max(1) as f64,
                dev_loss,
                seconds,
                examples_per_second: seen as f64 / seconds.max(1e-9),
            };
            self.history.epochs.push(stats.clone());
            observer(LabEvent::Train {
                phase: "probe",
                event: &TrainEvent::Epoch(stats),
            });
            platform::yield_now().await;
        }
        Ok(())
    }
}
