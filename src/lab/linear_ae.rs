//! Chapter: PCA as a linear network.
//!
//! The notebook's tied linear autoencoder, z = W x and x̂ = Wᵀ z, trained with MSE
//! by AdamW. Its optimum spans the same subspace as the top principal components,
//! but nothing asks the rows of W to be orthogonal or ordered. The chapter shows the
//! learned rows next to PCA's components, W Wᵀ, and the principal angles between
//! the two subspaces after every epoch.

use super::autoencoding::{AeRecipe, AeSpec};
use super::chapter::{Chapter, ChapterOutput, LocalBoxFuture, RunCtx};
use super::charts::chart;
use super::error::LabError;
use super::figures::{angles_chart, component_grid, gram, signed_matrix};
use super::params::LabParams;
use super::pca::{fit_unlabeled, usable_components};
use super::pipeline::EncoderChapter;
use super::prepare::IMAGE_SIZE;
use super::registry::{AUTOENCODING, ChapterInfo, Exercise};
use crate::analysis::pca::principal_angles;
use crate::model::autoencoder::{Autoencoder, LinearAe, LinearAeConfig};
use crate::train::engine::read_floats;
use burn::prelude::*;
use serde_json::json;

/// The chapter's registry entry.
pub const INFO: ChapterInfo = ChapterInfo {
    slug: "linear-ae",
    title: "A linear autoencoder against PCA",
    params: AUTOENCODING_BIAS,
    defaults: &[("batch_size", "256")],
    exercises: &[
        Exercise {
            label: "Orthogonality: train 10 epochs",
            set: &[("epochs", "10"), ("bias", "off")],
        },
        Exercise {
            label: "Add a bias to the encoder",
            set: &[("bias", "on")],
        },
    ],
    loss_title: "Reconstruction loss (MSE)",
    monitors: &[],
    make: Some(make),
    built: true,
};

/// The autoencoders' parameters and the bias switch.
const AUTOENCODING_BIAS: &[&str] = &[
    "epochs",
    "limit",
    "seed",
    "batch_size",
    "lr",
    "latent_dim",
    "bias",
    "labeled_ratio",
    "held_out_ratio",
    "split_seed",
    "backend",
];
const _: () = assert!(AUTOENCODING.len() + 1 == AUTOENCODING_BIAS.len());

/// Components drawn in each grid.
const SHOWN: usize = 64;

/// A fresh runner.
pub fn make() -> Box<dyn Chapter> {
    Box::<EncoderChapter<AeRecipe<LinearAeSpec>>>::default()
}

/// The linear autoencoder chapter.
pub struct LinearAeSpec;

/// Mean, median and largest of a set of angles, in degrees.
fn summary(angles: &[f64]) -> serde_json::Value {
    let mut v: Vec<f64> = angles.iter().map(|a| a.to_degrees()).collect();
    v.sort_by(f64::total_cmp);
    json!({
        "mean": v.iter().sum::<f64>() / v.len().max(1) as f64,
        "median": v.get(v.len() / 2),
        "largest": v.last(),
    })
}

async fn compare_with_pca(
    model: &LinearAe,
    snapshots: &[Tensor<2>],
    ctx: &mut RunCtx<'_>,
    out: &mut ChapterOutput,
) -> Result<(), LabError> {
    let ds = ctx.prepared.dataset.clone();
    let (channels, size) = (ds.manifest.channels, ds.train.size);
    let d = ds.train.image_len();
    let latent = model.latent_dim();
    let k = usable_components(
        &LabParams {
            components: latent,
            ..ctx.params.clone()
        },
        ctx.prepared.train_unlabeled.len(),
        d,
    );
    let bias = ctx.params.bias;
    let (pca, _) = fit_unlabeled(ctx, k).await?;
    ctx.stage(
        "principal angles between the learned subspace and PCA's",
        0.99,
    );
    let w = read_floats(model.weight()).await?; // [latent, d]
    let mut per_epoch = Vec::with_capacity(snapshots.len());
    for s in snapshots {
        ctx.control.checkpoint().await?;
        let ws = read_floats(s.clone()).await?;
        let a = principal_angles(&ws, latent, &pca.components, k, d)
            .map_err(|e| LabError::Analysis(format!("principal angles: {e}")))?;
        per_epoch.push(a);
        crate::platform::yield_now().await;
    }
    let g = gram(&w, latent, d);
    let off_rms = {
        let mut sum = 0.0f64;
        for i in 0..latent {
            for j in 0..latent {
                let target = if i == j { 1.0 } else { 0.0 };
                sum += (f64::from(g[i * latent + j]) - target).powi(2);
            }
        }
        (sum / (latent * latent).max(1) as f64).sqrt()
    };
    out.figures.push(chart(
        "learned_components",
        format!(
            "The linear autoencoder's first {SHOWN} rows of W as images, each min-max normalised"
        ),
        component_grid(&w, latent, (channels, size), SHOWN, "row"),
    ));
    out.figures.push(chart(
        "pca_components",
        format!("PCA's first {SHOWN} components on the same images, for comparison"),
        component_grid(&pca.components, k, (channels, size), SHOWN, "PC"),
    ));
    out.figures.push(chart(
        "gram",
        "W Wᵀ of the learned rows: blue −1, white 0, red +1; the identity would mean orthonormal rows".into(),
        signed_matrix(&g, latent, "W Wᵀ (blue -1, white 0, red +1)"),
    ));
    if !per_epoch.is_empty() {
        out.figures.push(chart(
            "angles",
            "Principal angles between the learned subspace and PCA's, after each epoch".into(),
            angles_chart(&per_epoch),
        ));
    }
    let extra = &mut out.result.extra;
    extra.insert(
        "principal_angles_deg".into(),
        per_epoch
            .last()
            .map(|a| summary(a))
            .unwrap_or(serde_json::Value::Null),
    );
    extra.insert(
        "principal_angles_mean_per_epoch".into(),
        json!(
            per_epoch
                .iter()
                .map(|a| summary(a)["mean"].clone())
                .collect::<Vec<_>>()
        ),
    );
    extra.insert("gram_rms_from_identity".into(), json!(off_rms));
    extra.insert("pca_components".into(), json!(k));
    extra.insert("bias".into(), json!(bias));
    Ok(())
}

impl AeSpec for LinearAeSpec {
    type Model = LinearAe;
    const INFO: &'static ChapterInfo = &INFO;
    const STAGE: &'static str = "training the linear autoencoder on the unlabelled images";
    const WHAT: &'static str = "linear autoencoder";

    fn build(channels: usize, params: &LabParams, device: &Device) -> LinearAe {
        let d = channels * IMAGE_SIZE * IMAGE_SIZE;
        LinearAeConfig::new(d, params.latent_dim)
            .with_bias(params.bias)
            .init(device)
    }
    fn epoch_snapshot(model: &LinearAe) -> Option<Tensor<2>> {
        Some(model.weight().detach())
    }
    fn extend<'a>(
        model: &'a LinearAe,
        snapshots: &'a [Tensor<2>],
        ctx: &'a mut RunCtx<'_>,
        out: &'a mut ChapterOutput,
    ) -> LocalBoxFuture<'a, Result<(), LabError>> {
        Box::pin(compare_with_pca(model, snapshots, ctx, out))
    }
}
