//! A trainer written to and read back from safetensors, so that a saved run can be
//! continued exactly where it stopped, in the browser or natively.
//!
//! Every float tensor of the model (BatchNorm's running statistics included) is
//! stored as F32 under `model.` plus its module path, e.g.
//! `model.encoder.blocks.0.conv.weight`, in burn's own layout (a linear layer's
//! weight is `[in, out]`). AdamW's moments are burn's own optimiser record, kept
//! whole as one U8 tensor: they are keyed by parameter id, so the ids travel in
//! the metadata and a restored model takes them back. The history, the two
//! generators and an unfinished run's target go in the metadata as text.

use super::engine::{GradSelect, History, TrainConfig, Trainer};
use super::readback::read_floats;
use crate::data::rng::NumpyRng;
use crate::model::safetensors::{Dtype, SafeTensors, SafeTensorsWriter, SafetensorsError};
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::OptimizerRecord;
use burn::prelude::*;
use burn::tensor::Bytes;
use std::collections::BTreeMap;

/// Prefix of the model's tensors.
pub const MODEL_PREFIX: &str = "model.";
/// The optimiser's record (burn's burnpack bytes).
pub const OPTIMIZER_TENSOR: &str = "optimizer.burnpack";
const KEY_IDS: &str = "trainer.param_ids";
const KEY_HISTORY: &str = "trainer.history";
const KEY_RNG: &str = "trainer.rng";
const KEY_AUG_RNG: &str = "trainer.aug_rng";
const KEY_TARGET: &str = "trainer.target_epochs";

/// Why a trainer could not be saved or restored. Each message names the tensor or
/// entry at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CheckpointError {
    /// A tensor the model needs is not in the file.
    #[error("the saved run has no tensor '{0}': it was saved from a different model or chapter")]
    Missing(String),
    /// A tensor has another shape than the model's.
    #[error(
        "the saved tensor '{name}' has shape {got:?}, this model needs {want:?} (were the parameters, such as latent_dim, different?)"
    )]
    Shape {
        /// The tensor.
        name: String,
        /// Its shape in the file.
        got: Vec<usize>,
        /// The shape the model needs.
        want: Vec<usize>,
    },
    /// The file holds model tensors this model does not have.
    #[error(
        "the saved run has {count} tensor(s) this model does not have, such as '{example}': it was saved from a different model"
    )]
    Extra {
        /// How many.
        count: usize,
        /// One of them.
        example: String,
    },
    /// A metadata entry is absent or unreadable.
    #[error("the saved run's entry '{0}' is missing or unreadable")]
    Metadata(&'static str),
    /// The container or the optimiser record is malformed.
    #[error("{0}")]
    Format(String),
    /// Reading the weights back from the device failed.
    #[error("reading the weights back from the device failed: {0}")]
    Device(String),
}

impl From<SafetensorsError> for CheckpointError {
    fn from(e: SafetensorsError) -> Self {
        Self::Format(e.to_string())
    }
}

/// Every float tensor of a module, by dotted path, with its id.
#[derive(Default)]
struct Named {
    path: Vec<String>,
    found: Vec<(String, ParamId, Vec<usize>, Tensor<1>)>,
}

impl ModuleVisitor for Named {
    fn enter_module(&mut self, name: &str, _container: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let t = param.val();
        let shape = t.dims().to_vec();
        let flat = t.reshape([shape.iter().product::<usize>()]);
        self.found
            .push((self.path.join("."), param.id, shape, flat));
    }
}

/// Replaces every float tensor with the file's, by path, taking back saved ids.
struct Load<'a, 'b> {
    path: Vec<String>,
    file: &'a SafeTensors<'b>,
    ids: &'a BTreeMap<String, u64>,
    used: usize,
    error: Option<CheckpointError>,
}

impl Load<'_, '_> {
    fn values(&self, name: &str, want: &[usize]) -> Result<Vec<f32>, CheckpointError> {
        let info = self
            .file
            .info(name)
            .ok_or_else(|| CheckpointError::Missing(name.to_string()))?;
        if info.shape != want {
            return Err(CheckpointError::Shape {
                name: name.to_string(),
                got: info.shape.clone(),
                want: want.to_vec(),
            });
        }
        Ok(self.file.to_f32(name)?)
    }
}

impl ModuleMapper for Load<'_, '_> {
    fn enter_module(&mut self, name: &str, _container: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container: &str) {
        self.path.pop();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        if self.error.is_some() {
            return param;
        }
        let path = self.path.join(".");
        let name = format!("{MODEL_PREFIX}{path}");
        let (id, old, mapper) = param.consume();
        let dims = old.dims();
        match self.values(&name, &dims) {
            Ok(values) => {
                self.used += 1;
                let fresh = Tensor::<D>::from_data(TensorData::new(values, dims), &old.device())
                    .set_require_grad(old.is_require_grad());
                let id = self.ids.get(&path).map_or(id, |v| ParamId::from(*v));
                Param::from_mapped_value(id, fresh, mapper)
            }
            Err(e) => {
                self.error = Some(e);
                Param::from_mapped_value(id, old, mapper)
            }
        }
    }
}

fn meta<'a>(file: &'a SafeTensors<'_>, key: &'static str) -> Result<&'a str, CheckpointError> {
    file.metadata()
        .get(key)
        .map(String::as_str)
        .ok_or(CheckpointError::Metadata(key))
}

fn rng(file: &SafeTensors<'_>, key: &'static str) -> Result<NumpyRng, CheckpointError> {
    NumpyRng::from_state_text(meta(file, key)?).ok_or(CheckpointError::Metadata(key))
}

impl<M: Module + Clone> Trainer<M> {
    /// Add the model, its optimiser state (when `with_optimizer`; reading it needs a
    /// device that reads back synchronously), the history and the generators to `w`.
    pub async fn save_into(
        &self,
        w: &mut SafeTensorsWriter,
        with_optimizer: bool,
    ) -> Result<(), CheckpointError> {
        // `valid` folds pending running-statistic updates into their values first.
        let _ = self.model.valid();
        let mut named = Named::default();
        self.model.visit(&mut named);
        let mut ids = BTreeMap::new();
        for (path, id, shape, flat) in named.found {
            let values = read_floats(flat)
                .await
                .map_err(|e| CheckpointError::Device(e.to_string()))?;
            w.add_f32(&format!("{MODEL_PREFIX}{path}"), &shape, &values)?;
            if ids.insert(path.clone(), id.val()).is_some() {
                return Err(CheckpointError::Format(format!(
                    "two tensors of the model share the path '{path}'"
                )));
            }
        }
        w.metadata(KEY_IDS, json(&ids));
        w.metadata(KEY_HISTORY, json(&self.history));
        w.metadata(KEY_RNG, self.rng.state_text());
        w.metadata(KEY_AUG_RNG, self.aug_rng.state_text());
        if let Some(t) = self.target_epochs {
            w.metadata(KEY_TARGET, t.to_string());
        }
        if with_optimizer {
            let bytes = self
                .optim
                .to_record()
                .into_bytes()
                .map_err(|e| CheckpointError::Format(format!("optimiser state: {e:?}")))?;
            let bytes = bytes.to_vec();
            w.add_raw(OPTIMIZER_TENSOR, Dtype::U8, &[bytes.len()], bytes)?;
        }
        Ok(())
    }

    /// A trainer from a saved run: `model` (freshly built with the run's parameters,
    /// on the training device) takes the file's weights and ids; the optimiser
    /// takes its saved state when the file has it and `with_optimizer`, and starts
    /// afresh otherwise.
    pub fn from_checkpoint(
        model: M,
        config: TrainConfig,
        select: GradSelect<M>,
        file: &SafeTensors<'_>,
        with_optimizer: bool,
    ) -> Result<Self, CheckpointError> {
        let ids: BTreeMap<String, u64> = serde_json::from_str(meta(file, KEY_IDS)?)
            .map_err(|_| CheckpointError::Metadata(KEY_IDS))?;
        let history: History = serde_json::from_str(meta(file, KEY_HISTORY)?)
            .map_err(|_| CheckpointError::Metadata(KEY_HISTORY))?;
        let mut load = Load {
            path: Vec::new(),
            file,
            ids: &ids,
            used: 0,
            error: None,
        };
        let model = model.map(&mut load);
        if let Some(e) = load.error {
            return Err(e);
        }
        let saved: Vec<&str> = file
            .names()
            .into_iter()
            .filter(|n| n.starts_with(MODEL_PREFIX))
            .collect();
        if saved.len() > load.used {
            let example = saved
                .iter()
                .find(|n| !ids.contains_key(&n[MODEL_PREFIX.len()..]))
                .or(saved.first())
                .map_or(String::new(), |s| s.to_string());
            return Err(CheckpointError::Extra {
                count: saved.len() - load.used,
                example,
            });
        }
        let mut trainer = Trainer::new(model, config, select);
        if let Some(raw) = file.raw(OPTIMIZER_TENSOR).filter(|_| with_optimizer) {
            let record = OptimizerRecord::from_bytes(Bytes::from_bytes_vec(raw.to_vec()))
                .map_err(|e| CheckpointError::Format(format!("optimiser state: {e:?}")))?;
            trainer.optim = trainer.optim.load_record(record);
        }
        trainer.history = history;
        trainer.rng = rng(file, KEY_RNG)?;
        trainer.aug_rng = rng(file, KEY_AUG_RNG)?;
        trainer.target_epochs = match file.metadata().get(KEY_TARGET) {
            Some(t) => Some(
                t.parse()
                    .map_err(|_| CheckpointError::Metadata(KEY_TARGET))?,
            ),
            None => None,
        };
        Ok(trainer)
    }
}

/// JSON text of a value that always serialises (maps of strings, the history).
fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}
