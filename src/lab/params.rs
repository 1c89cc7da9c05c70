//! The run parameters, described once in [`PARAMS`]: the URL's hash query, the page's
//! form and the native flags all use these names, ranges and help texts, so a link
//! reproduces a run.

use super::registry;
use crate::platform::BackendPref;
use serde::{Deserialize, Serialize};

/// The type and range of a parameter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    /// A whole number in `[min, max]`.
    Int {
        /// Smallest accepted value.
        min: u64,
        /// Largest accepted value.
        max: u64,
    },
    /// A whole number in `[min, max]`, or empty for "all".
    OptInt {
        /// Smallest accepted value.
        min: u64,
    },
    /// A finite number in `(min, max]` (`min` excluded when `open_min`).
    Float {
        /// Lower bound.
        min: f64,
        /// Upper bound.
        max: f64,
        /// Whether `min` itself is refused.
        open_min: bool,
    },
    /// One of a few words.
    Choice(&'static [&'static str]),
    /// Free text (a dataset name, checked when it is loaded).
    Text,
}

/// One parameter: its name in URLs (`--name-with-dashes` on the command line),
/// its label and help on the page, and its type.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ParamSpec {
    /// Name in the URL and `results.json`.
    pub name: &'static str,
    /// The command line's flag, without the dashes.
    pub flag: &'static str,
    /// Form label.
    pub label: &'static str,
    /// One-sentence help (also the CLI's).
    pub help: &'static str,
    /// Type and range.
    pub kind: Kind,
    /// Step of the form's number input.
    pub step: &'static str,
}

/// Every parameter.
pub const PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "dataset",
        flag: "dataset",
        label: "Dataset",
        help: "Dataset bundle name",
        kind: Kind::Text,
        step: "",
    },
    ParamSpec {
        name: "backend",
        flag: "backend",
        label: "Backend",
        help: "auto (a GPU when there is one), webgpu/wgpu, or cpu",
        kind: Kind::Choice(&["auto", "webgpu", "cpu"]),
        step: "",
    },
    ParamSpec {
        name: "epochs",
        flag: "epochs",
        label: "Epochs",
        help: "Training epochs per run (the notebook uses 10)",
        kind: Kind::Int { min: 1, max: 1000 },
        step: "1",
    },
    ParamSpec {
        name: "limit",
        flag: "limit",
        label: "Limit per split (blank = all)",
        help: "Cap on the images used from each part of the split (CLIP: images per split)",
        kind: Kind::OptInt { min: 1 },
        step: "1",
    },
    ParamSpec {
        name: "seed",
        flag: "seed",
        label: "Seed",
        help: "Training seed: initialisation, shuffling, augmentation",
        kind: Kind::Int {
            min: 0,
            max: u64::MAX,
        },
        step: "1",
    },
    ParamSpec {
        name: "split_seed",
        flag: "split-seed",
        label: "Split seed",
        help: "Seed of the lab's split (the notebook's 42)",
        kind: Kind::Int {
            min: 0,
            max: u64::MAX,
        },
        step: "1",
    },
    ParamSpec {
        name: "labeled_ratio",
        flag: "labeled-ratio",
        label: "Labelled ratio",
        help: "Share of each class treated as labelled",
        kind: Kind::Float {
            min: 0.0,
            max: 1.0,
            open_min: true,
        },
        step: "0.05",
    },
    ParamSpec {
        name: "held_out_ratio",
        flag: "held-out-ratio",
        label: "Held-out ratio",
        help: "Share of classes held out for transfer",
        kind: Kind::Float {
            min: 0.0,
            max: 1.0,
            open_min: true,
        },
        step: "0.05",
    },
    ParamSpec {
        name: "batch_size",
        flag: "batch-size",
        label: "Batch size",
        help: "Examples per training step",
        kind: Kind::Int { min: 2, max: 4096 },
        step: "1",
    },
    ParamSpec {
        name: "lr",
        flag: "lr",
        label: "Learning rate",
        help: "AdamW learning rate (too large a rate diverges: training stops at the first non-finite loss)",
        kind: Kind::Float {
            min: 0.0,
            max: 1e6,
            open_min: true,
        },
        step: "0.0001",
    },
    ParamSpec {
        name: "temperature",
        flag: "temperature",
        label: "Temperature",
        help: "Temperature of the contrastive loss",
        kind: Kind::Float {
            min: 0.0,
            max: 100.0,
            open_min: true,
        },
        step: "0.01",
    },
    ParamSpec {
        name: "latent_dim",
        flag: "latent-dim",
        label: "Bottleneck (latent dimensions)",
        help: "Width of an autoencoder's code (the notebook uses 128)",
        kind: Kind::Int { min: 1, max: 1024 },
        step: "1",
    },
    ParamSpec {
        name: "bias",
        flag: "bias",
        label: "Encoder bias",
        help: "Give the linear autoencoder's encoder a bias (the notebook's second exercise)",
        kind: Kind::Choice(&["off", "on"]),
        step: "",
    },
    ParamSpec {
        name: "components",
        flag: "components",
        label: "Principal components",
        help: "Components PCA keeps (the notebook uses 128)",
        kind: Kind::Int { min: 1, max: 512 },
        step: "1",
    },
    ParamSpec {
        name: "jitter",
        flag: "jitter",
        label: "Colour jitter",
        help: "Whether the augmentations jitter brightness, contrast, saturation and hue",
        kind: Kind::Choice(&["on", "off"]),
        step: "",
    },
    ParamSpec {
        name: "blur",
        flag: "blur",
        label: "Gaussian blur",
        help: "Whether the augmentations blur (SimCLR's views, DINO's global crops)",
        kind: Kind::Choice(&["on", "off"]),
        step: "",
    },
    ParamSpec {
        name: "momentum",
        flag: "momentum",
        label: "Teacher momentum",
        help: "EMA momentum of DINO's teacher (the notebook uses 0.996)",
        kind: Kind::Float {
            min: 0.0,
            max: 1.0,
            open_min: false,
        },
        step: "0.0001",
    },
    ParamSpec {
        name: "teacher_buffers",
        flag: "teacher-buffers",
        label: "EMA of BatchNorm statistics",
        help: "Also average the student's BatchNorm statistics into the teacher (the notebook does not)",
        kind: Kind::Choice(&["off", "on"]),
        step: "",
    },
];

/// The spec of a parameter by name.
pub fn spec(name: &str) -> Option<&'static ParamSpec> {
    PARAMS.iter().find(|p| p.name == name)
}

/// Parameters of a chapter run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LabParams {
    /// Dataset bundle name.
    pub dataset: String,
    /// Where to compute.
    pub backend: BackendPref,
    /// Training epochs per run.
    pub epochs: usize,
    /// Cap on the images used from each split after the lab's split is made.
    pub limit: Option<usize>,
    /// Training seed.
    pub seed: u64,
    /// Seed of the lab's split.
    pub split_seed: u64,
    /// Share of each class treated as labelled.
    pub labeled_ratio: f64,
    /// Share of classes held out for transfer.
    pub held_out_ratio: f64,
    /// Batch size.
    pub batch_size: usize,
    /// Learning rate.
    pub lr: f64,
    /// Contrastive temperature.
    pub temperature: f64,
    /// An autoencoder's code width.
    pub latent_dim: usize,
    /// Whether the linear autoencoder's encoder has a bias.
    pub bias: bool,
    /// Principal components PCA keeps.
    pub components: usize,
    /// Whether the augmentations include colour jitter.
    pub jitter: bool,
    /// Whether the augmentations include Gaussian blur.
    pub blur: bool,
    /// DINO's teacher momentum.
    pub momentum: f64,
    /// Whether DINO's EMA also averages BatchNorm statistics.
    pub teacher_buffers: bool,
}

impl Default for LabParams {
    fn default() -> Self {
        Self {
            dataset: "bloodmnist".into(),
            backend: BackendPref::Auto,
            epochs: 10,
            limit: None,
            seed: 0,
            split_seed: 42,
            labeled_ratio: 0.2,
            held_out_ratio: 0.3,
            batch_size: 128,
            lr: 1e-4,
            temperature: 0.07,
            latent_dim: 128,
            bias: false,
            components: 128,
            jitter: true,
            blur: true,
            momentum: 0.996,
            teacher_buffers: false,
        }
    }
}

fn on_off(b: bool) -> String {
    if b { "on" } else { "off" }.into()
}

fn check(spec: &ParamSpec, value: &str) -> Result<(), String> {
    let name = spec.name;
    let bad = || format!("{name}={value} is not a valid number");
    match spec.kind {
        Kind::Int { min, max } => {
            let v: u64 = value.trim().parse().map_err(|_| bad())?;
            if v < min || v > max {
                return Err(format!("{name} must be between {min} and {max}, got {v}"));
            }
        }
        Kind::OptInt { min } => {
            if !(value.is_empty() || value == "none") {
                let v: u64 = value.trim().parse().map_err(|_| bad())?;
                if v < min {
                    return Err(format!("{name} must be at least {min} (or blank for all)"));
                }
            }
        }
        Kind::Float { min, max, open_min } => {
            let v: f64 = value.trim().parse().map_err(|_| bad())?;
            let low_ok = if open_min { v > min } else { v >= min };
            if !v.is_finite() || !low_ok || v > max {
                let lo = if open_min { "above" } else { "at least" };
                return Err(format!(
                    "{name} must be {lo} {min} and at most {max}, got {value}"
                ));
            }
        }
        Kind::Choice(words) => {
            if !(words.contains(&value) || (name == "backend" && value == "wgpu")) {
                return Err(format!(
                    "{name} must be one of {}, got '{value}'",
                    words.join(", ")
                ));
            }
        }
        Kind::Text => {
            if value.is_empty()
                || !value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(format!(
                    "{name} must be a bundle name (letters, digits, - and _), got '{value}'"
                ));
            }
        }
    }
    Ok(())
}

impl LabParams {
    /// The defaults of a chapter (the shared ones where it says nothing).
    pub fn for_chapter(slug: &str) -> Self {
        let mut p = Self::default();
        if let Ok(info) = registry::chapter(slug) {
            for (k, v) in info.defaults {
                // The registry's own test checks that every default parses.
                let _ = p.set(k, v);
            }
        }
        p
    }

    /// Set one parameter from text, checking its type and range; the error names it.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let spec = spec(key).ok_or_else(|| {
            format!(
                "unknown parameter '{key}'; the parameters are: {}",
                PARAMS.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")
            )
        })?;
        check(spec, value)?;
        let int = || value.trim().parse::<u64>().unwrap_or_default();
        let float = || value.trim().parse::<f64>().unwrap_or_default();
        match key {
            "dataset" => self.dataset = value.to_ascii_lowercase(),
            "backend" => self.backend = value.parse()?,
            "epochs" => self.epochs = int() as usize,
            "limit" => {
                self.limit = (!(value.is_empty() || value == "none")).then(|| int() as usize)
            }
            "seed" => self.seed = int(),
            "split_seed" => self.split_seed = int(),
            "labeled_ratio" => self.labeled_ratio = float(),
            "held_out_ratio" => self.held_out_ratio = float(),
            "batch_size" => self.batch_size = int() as usize,
            "lr" => self.lr = float(),
            "temperature" => self.temperature = float(),
            "latent_dim" => self.latent_dim = int() as usize,
            "bias" => self.bias = value == "on",
            "components" => self.components = int() as usize,
            "jitter" => self.jitter = value == "on",
            "blur" => self.blur = value == "on",
            "momentum" => self.momentum = float(),
            "teacher_buffers" => self.teacher_buffers = value == "on",
            _ => {}
        }
        Ok(())
    }

    /// One parameter as text, as the URL writes it.
    pub fn get(&self, key: &str) -> String {
        match key {
            "dataset" => self.dataset.clone(),
            "backend" => match self.backend {
                BackendPref::Auto => "auto",
                BackendPref::Wgpu => "webgpu",
                BackendPref::Cpu => "cpu",
            }
            .into(),
            "epochs" => self.epochs.to_string(),
            "limit" => self.limit.map(|l| l.to_string()).unwrap_or_default(),
            "seed" => self.seed.to_string(),
            "split_seed" => self.split_seed.to_string(),
            "labeled_ratio" => self.labeled_ratio.to_string(),
            "held_out_ratio" => self.held_out_ratio.to_string(),
            "batch_size" => self.batch_size.to_string(),
            "lr" => self.lr.to_string(),
            "temperature" => self.temperature.to_string(),
            "latent_dim" => self.latent_dim.to_string(),
            "bias" => if self.bias { "on" } else { "off" }.into(),
            "components" => self.components.to_string(),
            "jitter" => on_off(self.jitter),
            "blur" => on_off(self.blur),
            "momentum" => self.momentum.to_string(),
            "teacher_buffers" => on_off(self.teacher_buffers),
            _ => String::new(),
        }
    }

    /// Check every value against its range (for values set directly in code).
    pub fn validate(&self) -> Result<(), String> {
        for spec in PARAMS {
            check(spec, &self.get(spec.name))?;
        }
        Ok(())
    }

    /// Parse `a=1&b=2` over a chapter's defaults. Unknown keys and bad values are
    /// errors that name the parameter.
    pub fn from_query(slug: &str, query: &str) -> Result<Self, String> {
        let mut p = Self::for_chapter(slug);
        for pair in query.split('&').filter(|s| !s.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            p.set(k, v)?;
        }
        Ok(p)
    }

    /// The parameters that differ from a chapter's defaults, as `a=1&b=2`.
    pub fn to_query(&self, slug: &str) -> String {
        let d = Self::for_chapter(slug);
        PARAMS
            .iter()
            .filter(|s| self.get(s.name) != d.get(s.name))
            .map(|s| format!("{}={}", s.name, self.get(s.name)))
            .collect::<Vec<_>>()
            .join("&")
    }

    /// The query with only the parameters that follow a reader from chapter to
    /// chapter (the dataset and the backend), for the sidebar's links.
    pub fn carried_query(&self) -> String {
        let d = Self::default();
        ["dataset", "backend"]
            .iter()
            .filter(|k| self.get(k) != d.get(k))
            .map(|k| format!("{k}={}", self.get(k)))
            .collect::<Vec<_>>()
            .join("&")
    }

    /// Whether two parameter sets train the same model, so one can continue the
    /// other (only the number of epochs may differ).
    pub fn same_model(&self, other: &Self) -> bool {
        let mut a = self.clone();
        a.epochs = other.epochs;
        &a == other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_round_trip() {
        let p =
            LabParams::from_query("supervised", "epochs=1&limit=512&seed=7&backend=cpu").unwrap();
        assert_eq!(p.epochs, 1);
        assert_eq!(p.limit, Some(512));
        assert_eq!(p.seed, 7);
        assert_eq!(p.backend, BackendPref::Cpu);
        assert_eq!(
            LabParams::from_query("supervised", &p.to_query("supervised")).unwrap(),
            p
        );
        assert_eq!(LabParams::default().to_query("supervised"), "");
        assert_eq!(p.carried_query(), "backend=cpu");
    }

    #[test]
    fn bad_values_are_named() {
        for (q, name) in [
            ("epochs=x", "epochs"),
            ("nope=1", "nope"),
            ("epochs=0", "epochs"),
            ("epochs=-3", "epochs"),
            ("lr=NaN", "lr"),
            ("batch_size=0", "batch_size"),
            ("held_out_ratio=0", "held_out_ratio"),
            ("labeled_ratio=1.5", "labeled_ratio"),
            ("backend=tpu", "backend"),
            ("limit=0", "limit"),
            ("dataset=../x", "dataset"),
        ] {
            let e = LabParams::from_query("supervised", q).unwrap_err();
            assert!(e.contains(name), "{q}: {e}");
        }
    }

    #[test]
    fn same_model_ignores_epochs_only() {
        let a = LabParams::default();
        let mut b = a.clone();
        b.epochs = 3;
        assert!(a.same_model(&b));
        b.seed = 1;
        assert!(!a.same_model(&b));
    }
}
