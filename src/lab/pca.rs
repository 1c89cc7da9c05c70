//! Chapter: PCA, the classical representation the rest of the second part is
//! measured against.
//!
//! Fit PCA on the unlabelled train images, flattened, with a randomized SVD whose
//! heavy products run on the chosen device. Show the components, the cumulative
//! explained variance and a UMAP of the projected test images, and transfer with the
//! converged probe on PCA features and, as a second baseline, on raw pixels.

use super::chapter::{Attachment, Chapter, ChapterOutput, LocalBoxFuture, RunCtx};
use super::charts::chart;
use super::error::LabError;
use super::features::{FeatureSet, umap_layouts};
use super::figures::{component_grid, reconstruction_chart, variance_curve};
use super::params::LabParams;
use super::prepare::Prepared;
use super::registry::{ChapterInfo, Exercise};
use super::transfer::{ProbeResult, converged_probe};
use crate::analysis::pca::{Pca, PcaConfig, fit};
use crate::data::SplitData;
use crate::platform;
use crate::train::View;
use crate::train::engine::History;
use burn::prelude::*;
use serde_json::json;
use std::any::Any;
use std::sync::Arc;

/// The chapter's registry entry.
pub const INFO: ChapterInfo = ChapterInfo {
    slug: "pca",
    title: "PCA",
    params: &[
        "components",
        "limit",
        "seed",
        "labeled_ratio",
        "held_out_ratio",
        "split_seed",
        "backend",
    ],
    defaults: &[],
    exercises: &[
        Exercise {
            label: "Keep 8 components",
            set: &[("components", "8")],
        },
        Exercise {
            label: "Keep 128 components",
            set: &[("components", "128")],
        },
    ],
    loss_title: "",
    monitors: &[],
    make: Some(make),
    built: true,
};

/// A fresh runner.
pub fn make() -> Box<dyn Chapter> {
    Box::<PcaChapter>::default()
}

/// Share of the variance the exercise asks about.
pub const TARGET_VARIANCE: f64 = 0.9;
/// Images per split the page's reconstruction slider shows.
pub const SAMPLES: usize = 8;

/// What the page's live views need: the fitted basis and a few images of each split.
#[derive(Clone, Debug)]
pub struct PcaView {
    /// The fit.
    pub pca: Arc<Pca>,
    /// Image channels.
    pub channels: usize,
    /// Image side.
    pub size: usize,
    /// `(split name, SAMPLES flattened images in [0, 1])`: train, dev, test.
    pub samples: Vec<(String, Vec<f32>)>,
}

/// The PCA chapter; nothing to keep between runs.
#[derive(Default)]
pub struct PcaChapter;

/// The images of a view, flattened to `[0, 1]` floats, row-major.
pub fn flatten(split: &SplitData, view: &View) -> Vec<f32> {
    let mut x = Vec::with_capacity(view.len() * split.image_len());
    for &row in &view.indices {
        if let Some(img) = split.image(row) {
            x.extend(img.iter().map(|&v| f32::from(v) / 255.0));
        }
    }
    x
}

/// Components that fit: at most `components`, `n - 1` and `d`.
pub fn usable_components(params: &LabParams, n: usize, d: usize) -> usize {
    params.components.min(n.saturating_sub(1)).min(d)
}

/// Fit PCA with `k` components on the unlabelled train images, on the run's device.
pub async fn fit_unlabeled(ctx: &mut RunCtx<'_>, k: usize) -> Result<(Pca, f64), LabError> {
    let ds = ctx.prepared.dataset.clone();
    let x = flatten(&ds.train, &ctx.prepared.train_unlabeled);
    let d = ds.train.image_len();
    let n = ctx.prepared.train_unlabeled.len();
    ctx.stage(
        &format!("fitting PCA: {k} components of {n} images × {d} values"),
        0.05,
    );
    ctx.control.checkpoint().await?;
    let cfg = PcaConfig {
        seed: ctx.params.seed,
        ..PcaConfig::new(k)
    };
    let t0 = platform::now_ms();
    let pca = fit(&x, n, d, &cfg, &ctx.compute.device)
        .await
        .map_err(|e| LabError::Analysis(format!("PCA: {e}")))?;
    Ok((pca, (platform::now_ms() - t0) / 1000.0))
}

/// Project `n` flattened images onto the first `k` components on the device:
/// `(x − mean) Cᵀ`, `[n, k]` row-major.
pub async fn project(
    pca: &Pca,
    x: &[f32],
    n: usize,
    device: &Device,
) -> Result<Vec<f32>, LabError> {
    let (d, k) = (pca.d, pca.k());
    if n == 0 {
        return Ok(Vec::new());
    }
    let x = Tensor::<2>::from_data(TensorData::new(x.to_vec(), [n, d]), device); // [n, d]
    let mean = Tensor::<1>::from_data(TensorData::new(pca.mean.clone(), [d]), device);
    let c = Tensor::<2>::from_data(TensorData::new(pca.components.clone(), [k, d]), device); // [k, d]
    let z = (x - mean.unsqueeze_dim(0)).matmul(c.transpose()); // [n, k]
    Ok(crate::train::engine::read_floats(z).await?)
}

/// The k at which the cumulative explained variance first reaches `share`.
pub fn components_for(cumulative: &[f64], share: f64) -> Option<usize> {
    cumulative.iter().position(|&c| c >= share).map(|i| i + 1)
}

fn probe_only(dev: f64, test: f64, cm: Vec<Vec<f64>>) -> ProbeResult {
    ProbeResult {
        converged_dev_b: dev,
        converged_test_b: test,
        confusion_converged: cm,
        ..ProbeResult::default()
    }
}

impl PcaChapter {
    async fn run_inner(&mut self, mut ctx: RunCtx<'_>) -> Result<ChapterOutput, LabError> {
        let p: &Prepared = ctx.prepared;
        let ds = p.dataset.clone();
        let d = ds.train.image_len();
        let (channels, size) = (ds.manifest.channels, ds.train.size);
        let k = usable_components(ctx.params, p.train_unlabeled.len(), d);
        let mut notes = Vec::new();
        if k < ctx.params.components {
            notes.push(format!(
                "components={} capped to {k}: PCA on {} images × {d} values has at most that many",
                ctx.params.components,
                p.train_unlabeled.len()
            ));
        }
        let (pca, fit_seconds) = fit_unlabeled(&mut ctx, k).await?;
        let cumulative = pca.cumulative();

        ctx.stage("projecting the test and held-out images", 0.3);
        let dev = &ctx.compute.device;
        let views = [
            (&ds.test, &p.test),
            (&ds.train, &p.train_b),
            (&ds.val, &p.dev_b),
            (&ds.test, &p.test_b),
        ];
        let mut pixels = Vec::new();
        let mut feats = Vec::new();
        for (split, view) in views {
            ctx.control.checkpoint().await?;
            let x = flatten(split, view);
            feats.push(project(&pca, &x, view.len(), dev).await?);
            pixels.push(x);
            platform::yield_now().await;
        }
        let set = FeatureSet {
            sets: vec![("PCA features".into(), k, feats[0].clone())],
            n: p.test.len(),
        };
        let umaps = umap_layouts(
            &set,
            &p.test,
            ctx.params.seed,
            ctx.control,
            ctx.observer,
            (0.35, 0.7),
        )
        .await?;

        ctx.stage("converged probe on PCA features", 0.75);
        let n_b = p.names_b.len();
        let (b_tr, b_dv, b_te) = (&p.train_b.labels, &p.dev_b.labels, &p.test_b.labels);
        let (pd, pt, pcm) = converged_probe(
            (&feats[1], b_tr),
            (&feats[2], b_dv),
            (&feats[3], b_te),
            k,
            n_b,
        )?;
        ctx.control.checkpoint().await?;
        platform::yield_now().await;
        ctx.stage("converged probe on raw pixels", 0.85);
        let (xd, xt, xcm) = converged_probe(
            (&pixels[1], b_tr),
            (&pixels[2], b_dv),
            (&pixels[3], b_te),
            d,
            n_b,
        )?;
        let probe_pca = probe_only(pd, pt, pcm);
        let probe_pixels = probe_only(xd, xt, xcm);

        ctx.stage("drawing the components", 0.95);
        let k90 = components_for(&cumulative, TARGET_VARIANCE);
        let samples: Vec<(String, Vec<f32>)> = [
            ("train", &ds.train, &p.train_unlabeled),
            ("dev", &ds.val, &p.dev_unlabeled),
            ("test", &ds.test, &p.test),
        ]
        .into_iter()
        .map(|(name, split, view)| {
            let first = View {
                indices: view.indices.iter().take(SAMPLES).copied().collect(),
                labels: view.labels.iter().take(SAMPLES).copied().collect(),
            };
            (name.to_string(), flatten(split, &first))
        })
        .collect();
        let shown_k = k90.unwrap_or(k);
        let dev_samples = samples.get(1).map(|s| s.1.clone()).unwrap_or_default();
        let n_shown = dev_samples.len() / d.max(1);
        let recon = pca.reconstruct(&dev_samples, n_shown, shown_k);

        let mut out = ChapterOutput::new(History::default(), probe_pca.clone(), p);
        out.umaps = umaps;
        out.result.notes.extend(notes);
        out.figures = vec![
            chart(
                "components",
                format!("The first {k} principal components as images, each min-max normalised"),
                component_grid(&pca.components, k, (channels, size), 128, "PC"),
            ),
            chart(
                "variance",
                "Cumulative explained variance against the number of components".into(),
                variance_curve(&cumulative, shown_k).0,
            ),
            reconstruction_chart(
                "reconstructions",
                &format!("PCA, k = {shown_k}"),
                &recon,
                &dev_samples,
                n_shown,
                (channels, size),
            ),
        ];
        let extra = &mut out.result.extra;
        extra.insert("cumulative_explained_variance".into(), json!(cumulative));
        extra.insert("fit_seconds".into(), json!(fit_seconds));
        extra.insert("components".into(), json!(k));
        extra.insert("fit_images".into(), json!(p.train_unlabeled.len()));
        extra.insert("components_for_90".into(), json!(k90));
        extra.insert("probe_pca".into(), json!(probe_pca));
        extra.insert("probe_pixels".into(), json!(probe_pixels));
        out.attachment = Some(Attachment::new(PcaView {
            pca: Arc::new(pca),
            channels,
            size,
            samples,
        }));
        ctx.stage("done", 1.0);
        Ok(out)
    }
}

impl Chapter for PcaChapter {
    fn info(&self) -> &'static ChapterInfo {
        &INFO
    }

    fn validate(&self, _params: &LabParams, prepared: &Prepared) -> Result<(), LabError> {
        let n = prepared.train_unlabeled.len();
        if n < 3 {
            return Err(LabError::Params(format!(
                "PCA needs at least 3 unlabelled train images, the split leaves {n}: raise limit or lower labeled_ratio"
            )));
        }
        Ok(())
    }

    fn run<'a>(
        &'a mut self,
        ctx: RunCtx<'a>,
    ) -> LocalBoxFuture<'a, Result<ChapterOutput, LabError>> {
        Box::pin(self.run_inner(ctx))
    }

    fn reset(&mut self) {}

    fn epochs_trained(&self) -> usize {
        0
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}
