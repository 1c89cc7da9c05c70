//! What the three autoencoder chapters share: any autoencoder transfers like the
//! other encoders (its code is the feature, a linear head goes on top), its loss is
//! the reconstruction MSE, and every run reports the dev reconstruction error, shows
//! reconstructions of unseen images and probes the kept classes with the code.

use super::chapter::{ChapterOutput, LocalBoxFuture, RunCtx};
use super::error::LabError;
use super::features::extract;
use super::figures::reconstruction_chart;
use super::params::LabParams;
use super::pipeline::Recipe;
use super::registry::ChapterInfo;
use super::transfer::{TransferModel, TransferSettings, converged_probe};
use crate::model::autoencoder::{Autoencoder, mse};
use crate::train::engine::{collect_rows, read_floats};
use crate::train::{Batch, BatchSource, Images};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::Gradients;
use serde_json::json;
use std::marker::PhantomData;

/// Images shown in a reconstruction figure.
pub const SHOWN: usize = 8;

impl<T: Autoencoder> TransferModel for T {
    fn logits(&self, x: Tensor<4>) -> Tensor<2> {
        let z = self.encode(x);
        match self.classifier() {
            Some(head) => head.forward(z),
            None => z,
        }
    }
    fn features(&self, x: Tensor<4>) -> Tensor<2> {
        self.encode(x)
    }
    fn head_grads(&self, mut grads: Gradients) -> GradientsParams {
        match self.classifier() {
            Some(head) => GradientsParams::from_module(&mut grads, head),
            None => GradientsParams::new(),
        }
    }
    fn unshared(self) -> Self {
        Autoencoder::unshared(self)
    }
}

/// The notebook's autoencoder loss: mean squared error of the reconstruction.
pub fn reconstruction_loss<M: Autoencoder>(model: &M, batch: &Batch) -> Tensor<1> {
    mse(
        model.reconstruct(batch.images.clone()),
        batch.images.clone(),
    )
}

/// The notebook's transfer from an autoencoder: batches of 128 at lr 1e-4.
pub fn transfer_settings(_params: &LabParams) -> TransferSettings {
    TransferSettings {
        lr: 1e-4,
        batch: 128,
    }
}

/// The code at the one feature point the autoencoder chapters look at.
pub fn code<M: Autoencoder>(model: &M, x: Tensor<4>) -> Vec<Tensor<2>> {
    vec![model.encode(x)]
}

/// Mean squared reconstruction error over the unlabelled dev images.
pub async fn dev_mse<M: Autoencoder>(model: &M, ctx: &RunCtx<'_>) -> Result<f64, LabError> {
    let ds = &ctx.prepared.dataset;
    let source = Images::new(&ds.val, &ctx.prepared.dev_unlabeled);
    let valid = model.valid();
    let rows = collect_rows(&valid, ctx.compute, &source, ctx.control, &|m: &M, x| {
        let err = (m.reconstruct(x.clone()) - x).powi_scalar(2); // [batch, c, 28, 28]
        vec![err.flatten::<2>(1, 3).mean_dim(1)] // [batch, 1]
    })
    .await?;
    let per_image = rows.into_iter().next().unwrap_or_default();
    Ok(per_image.iter().map(|&v| f64::from(v)).sum::<f64>() / per_image.len().max(1) as f64)
}

/// Reconstructions of the first unlabelled dev images (never trained on), with the
/// originals, as `(reconstructions, originals, n)`.
pub async fn reconstruct_dev<M: Autoencoder>(
    model: &M,
    ctx: &RunCtx<'_>,
) -> Result<(Vec<f32>, Vec<f32>, usize), LabError> {
    let ds = &ctx.prepared.dataset;
    let source = Images::new(&ds.val, &ctx.prepared.dev_unlabeled);
    let n = source.len().min(SHOWN);
    let positions: Vec<usize> = (0..n).collect();
    let batch = source.batch(&positions, &ctx.compute.device);
    let recon = model.valid().reconstruct(batch.images.clone());
    let recon = read_floats(recon).await?;
    let original = read_floats(batch.images).await?;
    Ok((recon, original, n))
}

/// A converged probe on the code for the kept classes (train A → dev A): what the
/// encoder knows about labels it never saw, against the supervised CNN's dev-A
/// accuracy.
pub async fn kept_probe<M: Autoencoder>(model: &M, ctx: &RunCtx<'_>) -> Result<f64, LabError> {
    let ds = &ctx.prepared.dataset;
    let p = ctx.prepared;
    let f: &dyn Fn(&M, Tensor<4>) -> Vec<Tensor<2>> = &code::<M>;
    let train = extract(
        model,
        ctx.compute,
        &ds.train,
        &p.train_a,
        ctx.control,
        &["code"],
        f,
    )
    .await?;
    let dev = extract(
        model,
        ctx.compute,
        &ds.val,
        &p.dev_a,
        ctx.control,
        &["code"],
        f,
    )
    .await?;
    let (Some((_, d, tr)), Some((_, _, dv))) =
        (train.sets.into_iter().next(), dev.sets.into_iter().next())
    else {
        return Err(LabError::Analysis(
            "no features for the kept classes".into(),
        ));
    };
    let (acc, _, _) = converged_probe(
        (&tr, &p.train_a.labels),
        (&dv, &p.dev_a.labels),
        (&dv, &p.dev_a.labels),
        d,
        p.names_a.len(),
    )?;
    Ok(acc)
}

/// What every autoencoder chapter adds to its output: `reconstruction_mse` (dev),
/// `kept_probe_dev_a`, `latent_dim`, and the reconstruction figure.
pub async fn extend_output<M: Autoencoder>(
    model: &M,
    what: &str,
    ctx: &mut RunCtx<'_>,
    out: &mut ChapterOutput,
) -> Result<(), LabError> {
    ctx.stage("measuring the reconstruction error on dev", 0.97);
    let err = dev_mse(model, ctx).await?;
    let (recon, original, n) = reconstruct_dev(model, ctx).await?;
    ctx.stage("probing the kept classes with the code", 0.98);
    let kept = kept_probe(model, ctx).await?;
    let m = &ctx.prepared.dataset.manifest;
    out.figures.push(reconstruction_chart(
        "reconstructions",
        what,
        &recon,
        &original,
        n,
        (m.channels, ctx.prepared.dataset.train.size),
    ));
    let extra = &mut out.result.extra;
    extra.insert("reconstruction_mse".into(), json!(err));
    extra.insert("kept_probe_dev_a".into(), json!(kept));
    extra.insert("latent_dim".into(), json!(model.latent_dim()));
    Ok(())
}

/// What makes one autoencoder chapter itself; [`AeRecipe`] turns it into a
/// [`Recipe`]: train on the unlabelled images with the reconstruction loss, look
/// at the code, transfer with the notebook's settings, add [`extend_output`].
pub trait AeSpec: 'static {
    /// The network.
    type Model: Autoencoder;
    /// The registry entry.
    const INFO: &'static ChapterInfo;
    /// The stage shown while it trains.
    const STAGE: &'static str;
    /// Its name in figure captions, e.g. "MLP autoencoder".
    const WHAT: &'static str;
    /// A fresh network for `channels`-channel images.
    fn build(channels: usize, params: &LabParams, device: &Device) -> Self::Model;
    /// See [`Recipe::epoch_snapshot`].
    fn epoch_snapshot(_model: &Self::Model) -> Option<Tensor<2>> {
        None
    }
    /// The chapter's own figures and numbers, after the shared ones.
    fn extend<'a>(
        _model: &'a Self::Model,
        _snapshots: &'a [Tensor<2>],
        _ctx: &'a mut RunCtx<'_>,
        _out: &'a mut ChapterOutput,
    ) -> LocalBoxFuture<'a, Result<(), LabError>> {
        Box::pin(async { Ok(()) })
    }
}

/// The recipe of an autoencoder chapter.
pub struct AeRecipe<S>(PhantomData<S>);

impl<S: AeSpec> Recipe for AeRecipe<S> {
    type Model = S::Model;
    type Transfer = S::Model;
    const INFO: &'static ChapterInfo = S::INFO;
    const STAGE: &'static str = S::STAGE;
    const FEATURES: &'static [&'static str] = &["latent code"];
    const UNLABELED: bool = true;

    fn init(ctx: &RunCtx<'_>) -> S::Model {
        let channels = ctx.prepared.dataset.manifest.channels;
        S::build(channels, ctx.params, &ctx.compute.train_device())
    }
    fn loss(model: &S::Model, batch: &Batch, _params: &LabParams) -> Tensor<1> {
        reconstruction_loss(model, batch)
    }
    fn features(model: &S::Model, x: Tensor<4>) -> Vec<Tensor<2>> {
        code(model, x)
    }
    fn with_head(model: S::Model, n_b: usize, device: &Device) -> S::Model {
        model.reset_head(n_b, device)
    }
    fn untrained(channels: usize, n_b: usize, params: &LabParams, device: &Device) -> S::Model {
        S::build(channels, params, device).reset_head(n_b, device)
    }
    fn transfer_settings(params: &LabParams) -> TransferSettings {
        transfer_settings(params)
    }
    fn epoch_snapshot(model: &S::Model) -> Option<Tensor<2>> {
        S::epoch_snapshot(model)
    }
    fn extend<'a>(
        model: &'a S::Model,
        snapshots: &'a [Tensor<2>],
        ctx: &'a mut RunCtx<'_>,
        out: &'a mut ChapterOutput,
    ) -> LocalBoxFuture<'a, Result<(), LabError>> {
        Box::pin(async move {
            extend_output(model, S::WHAT, ctx, out).await?;
            S::extend(model, snapshots, ctx, out).await
        })
    }
}
