//! The charts each chapter draws, as backend-free scenes: the page replays them on a
//! canvas and the CLI renders them to PNG, so both show the same pictures.

use super::chapter::ChapterOutput;
use super::features::Embedding2d;
use super::transfer::TransferCurves;
use crate::data::Dataset;
use crate::plot::charts::{
    ImageTile, ScatterLayout, Series, Size, confusion_heatmap, image_grid, line_chart, scatter,
    smooth_ema,
};
use crate::plot::palette::categorical;
use crate::plot::scene::Scene;
use crate::train::engine::History;

const WIDE: Size = Size::new(720.0, 320.0);
const SQUARE: Size = Size::new(460.0, 380.0);

/// A class name short enough for a column title.
fn short(name: &str) -> String {
    let first = name.split(" (").next().unwrap_or(name);
    if first.chars().count() > 16 {
        let mut s: String = first.chars().take(15).collect();
        s.push('…');
        s
    } else {
        first.to_string()
    }
}

/// `per_class` columns of training images, one column per class.
pub fn sample_grid(ds: &Dataset, rows_per_class: &[Vec<usize>]) -> Scene {
    let n_classes = rows_per_class.len();
    let depth = rows_per_class.iter().map(Vec::len).max().unwrap_or(0);
    let mut tiles = Vec::with_capacity(n_classes * depth);
    for r in 0..depth {
        for class_rows in rows_per_class {
            let tile = class_rows
                .get(r)
                .and_then(|&i| ds.train.rgba(i))
                .map(|rgba| ImageTile {
                    rgba,
                    width: ds.train.size as u32,
                    height: ds.train.size as u32,
                    caption: None,
                })
                .unwrap_or(ImageTile {
                    rgba: Vec::new(),
                    width: 0,
                    height: 0,
                    caption: None,
                });
            tiles.push(tile);
        }
    }
    let titles: Vec<String> = ds.manifest.class_names.iter().map(|n| short(n)).collect();
    image_grid(&tiles, n_classes.max(1), 64.0, &titles)
}

/// One test image, enlarged, for the UMAP hover.
pub fn thumbnail(ds: &Dataset, test_row: usize) -> Scene {
    let tile = ImageTile {
        rgba: ds.test.rgba(test_row).unwrap_or_default(),
        width: ds.test.size as u32,
        height: ds.test.size as u32,
        caption: None,
    };
    image_grid(&[tile], 1, 84.0, &[])
}

/// Step losses (smoothed), and per-epoch train and dev losses.
pub fn live_loss_chart(
    steps: &[[f64; 2]],
    train: &[[f64; 2]],
    dev: &[[f64; 2]],
    title: &str,
) -> Scene {
    let series = vec![
        Series::new(
            "step loss (raw)",
            steps.to_vec(),
            categorical(0).with_alpha(60),
        ),
        Series::new(
            "step loss (smoothed)",
            smooth_ema(steps, 0.8),
            categorical(0),
        ),
        Series::new("train (epoch mean)", train.to_vec(), categorical(1)),
        Series::new("dev (epoch mean)", dev.to_vec(), categorical(2)).dashed(),
    ];
    line_chart(title, "epoch", "loss per example", &series, WIDE)
}

/// One monitored value (number `index` of each step's row) against the epoch:
/// every step, faint, and smoothed, with a dashed reference line where the value
/// has a landmark (ln 256 for an entropy over DINO's 256 prototypes).
pub fn monitor_chart(points: &[(f64, Vec<f64>)], index: usize, name: &str) -> Scene {
    let raw: Vec<[f64; 2]> = points
        .iter()
        .filter_map(|(x, v)| v.get(index).map(|y| [*x, *y]))
        .collect();
    let mut series = vec![
        Series::new("per step", raw.clone(), categorical(3).with_alpha(70)),
        Series::new("smoothed", smooth_ema(&raw, 0.8), categorical(3)),
    ];
    if name.contains("entropy") {
        let uniform = (256f64).ln();
        let x1 = raw.last().map_or(1.0, |p| p[0]);
        series.push(
            Series::new(
                "uniform over 256 prototypes (ln 256)",
                vec![[0.0, uniform], [x1, uniform]],
                categorical(7),
            )
            .dashed(),
        );
    }
    line_chart(name, "epoch", name, &series, WIDE)
}

/// The monitored values of a finished history, one chart each.
pub fn monitor_charts(h: &History, names: &[&str]) -> Vec<Chart> {
    let steps = h.step_monitors.len();
    let epochs = h.epochs.len().max(1);
    let per_epoch = (steps / epochs).max(1);
    let points: Vec<(f64, Vec<f64>)> = h
        .step_monitors
        .iter()
        .enumerate()
        .map(|(k, v)| ((k + 1) as f64 / per_epoch as f64, v.clone()))
        .collect();
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            chart(
                &format!("monitor_{i}"),
                format!("{name} while training, per step"),
                monitor_chart(&points, i, name),
            )
        })
        .collect()
}

/// The loss chart of a finished history.
pub fn history_chart(h: &History, title: &str) -> Scene {
    let mut steps = Vec::new();
    let mut k = 0usize;
    let per_epoch = if h.epochs.is_empty() {
        1
    } else {
        h.step_loss.len() / h.epochs.len()
    };
    for l in &h.step_loss {
        k += 1;
        steps.push([k as f64 / per_epoch.max(1) as f64, *l]);
    }
    let train: Vec<[f64; 2]> = h
        .epochs
        .iter()
        .map(|e| [e.epoch as f64, e.train_loss])
        .collect();
    let dev: Vec<[f64; 2]> = h
        .epochs
        .iter()
        .filter_map(|e| e.dev_loss.map(|d| [e.epoch as f64, d]))
        .collect();
    live_loss_chart(&steps, &train, &dev, title)
}

/// Head-only vs fine-tune on one chart (the freeze vs fine-tune exercise).
pub fn transfer_chart(c: &TransferCurves) -> Scene {
    let ep = |h: &History, dev: bool| -> Vec<[f64; 2]> {
        h.epochs
            .iter()
            .filter_map(|e| {
                let v = if dev { e.dev_loss? } else { e.train_loss };
                Some([e.epoch as f64, v])
            })
            .collect()
    };
    let series = vec![
        Series::new("head only: train", ep(&c.probe, false), categorical(3)),
        Series::new("head only: dev B", ep(&c.probe, true), categorical(3)).dashed(),
        Series::new("fine-tune: train", ep(&c.finetune, false), categorical(4)),
        Series::new("fine-tune: dev B", ep(&c.finetune, true), categorical(4)).dashed(),
    ];
    line_chart(
        "Transfer to the held-out classes: freeze vs fine-tune",
        "epoch",
        "loss per example",
        &series,
        WIDE,
    )
}

/// An annotated, row-normalised confusion matrix.
pub fn confusion(matrix: &[Vec<f64>], names: &[String], title: &str) -> Scene {
    let names: Vec<String> = names.iter().map(|n| short(n)).collect();
    confusion_heatmap(title, matrix, &names, SQUARE)
}

/// A UMAP scatter with held-out classes marked, plus the layout for hover.
pub fn umap(e: &Embedding2d, class_names: &[String], held_out: &[u8]) -> (Scene, ScatterLayout) {
    let highlight: Vec<bool> = (0..class_names.len())
        .map(|k| held_out.iter().any(|&h| h as usize == k))
        .collect();
    let names: Vec<String> = class_names.iter().map(|n| short(n)).collect();
    scatter(
        &format!("UMAP of {}", e.title),
        &e.points,
        &e.labels,
        &names,
        &highlight,
        SQUARE,
    )
}

/// A small UMAP for the runs table.
pub fn umap_thumbnail(e: &Embedding2d, class_names: &[String]) -> Scene {
    let names: Vec<String> = class_names.iter().map(|n| short(n)).collect();
    scatter(
        "",
        &e.points,
        &e.labels,
        &names,
        &[],
        Size::new(260.0, 180.0),
    )
    .0
}

/// A finished chart: a file name, the scene, a description for screen readers, and
/// for scatters what lies under each point.
#[derive(Clone, Debug)]
pub struct Chart {
    /// File-name stem and page id, e.g. `umap_1`.
    pub name: String,
    /// What the chart shows, in words.
    pub label: String,
    /// The drawing.
    pub scene: Scene,
    /// For UMAP scatters: the layout and each point's test row and class.
    pub hover: Option<HoverMap>,
}

/// Where the points of a scatter are, and which image each one is.
#[derive(Clone, Debug)]
pub struct HoverMap {
    /// Pixel positions of the points.
    pub layout: ScatterLayout,
    /// Test-split row of each point.
    pub rows: Vec<usize>,
    /// Original class of each point.
    pub labels: Vec<usize>,
}

/// A chart without hover.
pub fn chart(name: &str, label: String, scene: Scene) -> Chart {
    Chart {
        name: name.to_string(),
        label,
        scene,
        hover: None,
    }
}

/// Every chart of a finished run, in page order; the CLI writes each as
/// `{chapter}_{name}.png` and the page draws the same scenes.
pub fn chapter_charts(loss_title: &str, out: &ChapterOutput, class_names: &[String]) -> Vec<Chart> {
    let mut v = Vec::new();
    if !out.history.epochs.is_empty() {
        v.push(chart(
            "loss",
            format!("{loss_title}, per step and per epoch"),
            history_chart(&out.history, loss_title),
        ));
    }
    for (i, e) in out.umaps.iter().enumerate() {
        let (scene, layout) = umap(e, class_names, &out.held_out_labels);
        v.push(Chart {
            name: format!("umap_{i}"),
            label: format!(
                "UMAP of the test images' {}, coloured by class; held-out classes ringed",
                e.title
            ),
            scene,
            hover: Some(HoverMap {
                layout,
                rows: e.rows.clone(),
                labels: e.labels.clone(),
            }),
        });
    }
    let p = &out.result.probe;
    for (name, m, title) in [
        (
            "confusion_before",
            &p.confusion_before,
            "Dev B before training the head",
        ),
        (
            "confusion_after",
            &p.confusion_after,
            "Dev B after training the head",
        ),
        (
            "confusion_converged",
            &p.confusion_converged,
            "Test B, converged probe",
        ),
    ] {
        if !m.is_empty() {
            v.push(chart(
                name,
                format!("Confusion matrix: {title}"),
                confusion(m, &out.names_b, title),
            ));
        }
    }
    if let Some(c) = &out.curves {
        v.push(chart(
            "transfer",
            "Loss of the head-only probe and of the fine-tune on the held-out classes".into(),
            transfer_chart(c),
        ));
    }
    v.extend(out.figures.iter().cloned());
    v
}
