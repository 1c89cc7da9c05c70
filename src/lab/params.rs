//! The run parameters every chapter shares. The URL's hash query and the native
//! flags use the same names, so a link reproduces a run.

use serde::{Deserialize, Serialize};

/// Parameters of a chapter run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LabParams {
    /// Dataset bundle name.
    pub dataset: String,
    /// Training epochs per run (the notebook uses 10).
    pub epochs: usize,
    /// Cap on the images used from each split after the lab's split is made.
    pub limit: Option<usize>,
    /// Training seed: initialisation, shuffling, augmentation.
    pub seed: u64,
    /// Seed of the lab's split (the notebook's 42).
    pub split_seed: u64,
    /// Share of each class treated as labelled.
    pub labeled_ratio: f64,
    /// Share of classes held out for transfer.
    pub held_out_ratio: f64,
    /// Batch size.
    pub batch_size: usize,
    /// Learning rate.
    pub lr: f64,
    /// SupCon temperature.
    pub temperature: f64,
}

impl Default for LabParams {
    fn default() -> Self {
        Self {
            dataset: "bloodmnist".into(),
            epochs: 10,
            limit: None,
            seed: 0,
            split_seed: 42,
            labeled_ratio: 0.2,
            held_out_ratio: 0.3,
            batch_size: 128,
            lr: 1e-4,
            temperature: 0.07,
        }
    }
}

/// The names of the parameters, as used in URLs and flags.
pub const NAMES: [&str; 10] = [
    "dataset",
    "epochs",
    "limit",
    "seed",
    "split_seed",
    "labeled_ratio",
    "held_out_ratio",
    "batch_size",
    "lr",
    "temperature",
];

impl LabParams {
    /// Set one parameter from text; the error says what was wrong.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        fn num<T: std::str::FromStr>(key: &str, v: &str) -> Result<T, String> {
            v.parse::<T>()
                .map_err(|_| format!("{key}={v} is not a valid number"))
        }
        match key {
            "dataset" => self.dataset = value.to_ascii_lowercase(),
            "epochs" => self.epochs = num(key, value)?,
            "limit" => {
                self.limit = if value.is_empty() || value == "none" {
                    None
                } else {
                    Some(num(key, value)?)
                }
            }
            "seed" => self.seed = num(key, value)?,
            "split_seed" => self.split_seed = num(key, value)?,
            "labeled_ratio" => self.labeled_ratio = num(key, value)?,
            "held_out_ratio" => self.held_out_ratio = num(key, value)?,
            "batch_size" => self.batch_size = num(key, value)?,
            "lr" => self.lr = num(key, value)?,
            "temperature" => self.temperature = num(key, value)?,
            other => return Err(format!("unknown parameter '{other}'")),
        }
        Ok(())
    }

    /// Check ranges; the message names the offending parameter.
    pub fn validate(&self) -> Result<(), String> {
        if self.epochs == 0 || self.epochs > 1000 {
            return Err("epochs must be between 1 and 1000".into());
        }
        if self.batch_size < 2 || self.batch_size > 4096 {
            return Err("batch_size must be between 2 and 4096".into());
        }
        if !(self.lr.is_finite() && self.lr > 0.0 && self.lr < 10.0) {
            return Err("lr must be a positive number below 10".into());
        }
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return Err("temperature must be positive".into());
        }
        if self.limit == Some(0) {
            return Err("limit must be positive (or absent)".into());
        }
        Ok(())
    }

    /// Parse `a=1&b=2` over the defaults. Unknown keys are errors.
    pub fn from_query(query: &str) -> Result<Self, String> {
        let mut p = Self::default();
        for pair in query.split('&').filter(|s| !s.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            p.set(k, v)?;
        }
        p.validate()?;
        Ok(p)
    }

    /// The parameters that differ from the defaults, as `a=1&b=2`.
    pub fn to_query(&self) -> String {
        let d = Self::default();
        let mut parts = Vec::new();
        let mut push = |k: &str, v: String, dv: String| {
            if v != dv {
                parts.push(format!("{k}={v}"));
            }
        };
        push("dataset", self.dataset.clone(), d.dataset.clone());
        push("epochs", self.epochs.to_string(), d.epochs.to_string());
        push(
            "limit",
            self.limit.map(|l| l.to_string()).unwrap_or_default(),
            String::new(),
        );
        push("seed", self.seed.to_string(), d.seed.to_string());
        push(
            "split_seed",
            self.split_seed.to_string(),
            d.split_seed.to_string(),
        );
        push(
            "labeled_ratio",
            self.labeled_ratio.to_string(),
            d.labeled_ratio.to_string(),
        );
        push(
            "held_out_ratio",
            self.held_out_ratio.to_string(),
            d.held_out_ratio.to_string(),
        );
        push(
            "batch_size",
            self.batch_size.to_string(),
            d.batch_size.to_string(),
        );
        push("lr", self.lr.to_string(), d.lr.to_string());
        push(
            "temperature",
            self.temperature.to_string(),
            d.temperature.to_string(),
        );
        parts.join("&")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_round_trip() {
        let p = LabParams::from_query("epochs=1&limit=512&seed=7").unwrap();
        assert_eq!(p.epochs, 1);
        assert_eq!(p.limit, Some(512));
        assert_eq!(p.seed, 7);
        assert_eq!(LabParams::from_query(&p.to_query()).unwrap(), p);
        assert_eq!(LabParams::default().to_query(), "");
    }

    #[test]
    fn bad_values_are_named() {
        assert!(
            LabParams::from_query("epochs=x")
                .unwrap_err()
                .contains("epochs")
        );
        assert!(
            LabParams::from_query("nope=1")
                .unwrap_err()
                .contains("nope")
        );
        assert!(
            LabParams::from_query("epochs=0")
                .unwrap_err()
                .contains("epochs")
        );
    }
}
