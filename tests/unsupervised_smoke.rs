//! Smoke tests of the unsupervised chapters (PCA and the three autoencoders) on the
//! bundled BloodMNIST, natively on the CPU backend, through the registry and the
//! entry point the page and the CLI use. Each asserts that something was learned:
//! reconstructions better than the untrained network's, probes above always
//! guessing the most frequent class, PCA's variance adding up.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by unwrapping

use replab::lab::pca::PcaView;
use replab::lab::{self, LabError, LabParams};
use replab::platform::{self, BackendPref};
use replab::train::RunControl;

mod common;
use common::blood;

fn tiny(slug: &str) -> LabParams {
    LabParams {
        epochs: 3,
        limit: Some(256),
        batch_size: 32,
        seed: 3,
        backend: BackendPref::Cpu,
        ..LabParams::for_chapter(slug)
    }
}

fn majority(labels: &[usize]) -> f64 {
    let mut counts = std::collections::HashMap::new();
    for l in labels {
        *counts.entry(l).or_insert(0usize) += 1;
    }
    *counts.values().max().unwrap() as f64 / labels.len() as f64
}

fn run(slug: &str, params: &LabParams) -> Result<lab::ChapterOutput, LabError> {
    let compute = platform::block_on(platform::select_compute(BackendPref::Cpu)).unwrap();
    let mut chapter = lab::make_chapter(slug).unwrap();
    platform::block_on(lab::run(
        chapter.as_mut(),
        blood(),
        params,
        &compute,
        &RunControl::default(),
        &mut |_| {},
    ))
}

fn num(out: &lab::ChapterOutput, key: &str) -> f64 {
    out.result.extra[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number"))
}

#[test]
fn pca_fits_projects_and_probes() {
    let params = tiny("pca");
    let prepared = lab::prepare(blood(), &params).unwrap();
    let floor = majority(&prepared.test_b.labels);
    let out = run("pca", &params).unwrap();
    let cum: Vec<f64> =
        serde_json::from_value(out.result.extra["cumulative_explained_variance"].clone()).unwrap();
    assert_eq!(cum.len(), 128);
    assert!(
        cum.windows(2).all(|w| w[1] >= w[0] - 1e-9),
        "not increasing"
    );
    assert!(
        cum[0] > 0.1 && cum[127] <= 1.0 + 1e-6 && cum[127] > 0.9,
        "{} … {}",
        cum[0],
        cum[127]
    );
    assert!(num(&out, "fit_seconds") > 0.0);
    for key in ["probe_pca", "probe_pixels"] {
        let t = out.result.extra[key]["converged_test_b"].as_f64().unwrap();
        assert!(t > floor + 0.1, "{key}: {t} against majority {floor}");
        assert!(
            out.result.extra[key].get("before").is_none(),
            "{key} has no notebook probe"
        );
    }
    assert_eq!(out.umaps.len(), 1);
    let names: Vec<&str> = out.figures.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["components", "variance", "reconstructions"]);
    // The page's slider works from the attachment: more components, closer images.
    let v = out
        .attachment
        .as_ref()
        .and_then(|a| a.get::<PcaView>())
        .unwrap();
    let (_, x) = &v.samples[1];
    let n = x.len() / v.pca.d;
    let err = |k: usize| {
        let r = v.pca.reconstruct(x, n, k);
        r.iter().zip(x).map(|(a, b)| (a - b).powi(2)).sum::<f32>() / x.len() as f32
    };
    assert!(
        err(1) > err(16) && err(16) > err(128),
        "{} {} {}",
        err(1),
        err(16),
        err(128)
    );
}

#[test]
fn pca_caps_components_to_the_data() {
    let mut params = tiny("pca");
    params.limit = Some(40);
    params.components = 300;
    let out = run("pca", &params).unwrap();
    assert_eq!(num(&out, "components"), 39.0);
    assert!(
        out.result
            .notes
            .iter()
            .any(|n| n.contains("components=300 capped to 39")),
        "{:?}",
        out.result.notes
    );
}

#[test]
fn autoencoders_learn_to_reconstruct_and_transfer() {
    for slug in ["linear-ae", "autoencoder", "conv-ae"] {
        let params = tiny(slug);
        let prepared = lab::prepare(blood(), &params).unwrap();
        let floor = majority(&prepared.test_b.labels);
        let out = run(slug, &params).unwrap();
        let r = &out.result;
        assert_eq!(r.train_loss.len(), 3, "{slug}");
        // The first step's loss is the untrained network's reconstruction error.
        let untrained = out.history.step_loss[0];
        let mse = num(&out, "reconstruction_mse");
        assert!(
            mse < 0.8 * untrained,
            "{slug}: dev MSE {mse} against untrained {untrained}"
        );
        assert!(
            r.train_loss[2] < r.train_loss[0],
            "{slug}: {:?}",
            r.train_loss
        );
        // Measured after transfer on the kept model: the same as the last epoch's
        // dev loss, so transfer left its weights and BatchNorm statistics alone.
        let last = *r.dev_loss.last().unwrap();
        assert!(
            (mse - last).abs() < 1e-3 * last,
            "{slug}: {mse} against {last}"
        );
        let p = &r.probe;
        assert!(p.before.is_some() && p.after.is_some() && p.finetune_after.is_some());
        assert!(p.random_init_test_b.is_some(), "{slug}");
        assert!(
            p.converged_test_b > floor,
            "{slug}: {} against {floor}",
            p.converged_test_b
        );
        let kept = num(&out, "kept_probe_dev_a");
        assert!(
            kept > majority(&prepared.dev_a.labels),
            "{slug}: kept probe {kept}"
        );
        assert!(
            out.figures.iter().any(|c| c.name == "reconstructions"),
            "{slug}"
        );
        assert_eq!(num(&out, "latent_dim"), 128.0);
    }
}

#[test]
fn the_linear_autoencoder_is_compared_with_pca_every_epoch() {
    let params = tiny("linear-ae");
    let out = run("linear-ae", &params).unwrap();
    let per_epoch = out.result.extra["principal_angles_mean_per_epoch"]
        .as_array()
        .unwrap();
    assert_eq!(per_epoch.len(), 3);
    let angles: Vec<f64> = per_epoch.iter().map(|v| v.as_f64().unwrap()).collect();
    assert!(
        angles.iter().all(|a| (0.0..=90.0).contains(a)),
        "{angles:?}"
    );
    let names: Vec<&str> = out.figures.iter().map(|c| c.name.as_str()).collect();
    for want in ["learned_components", "pca_components", "gram", "angles"] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    assert!(num(&out, "gram_rms_from_identity").is_finite());
}
