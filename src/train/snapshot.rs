//! A complete copy of a model's state, to roll a model back exactly.
//!
//! Cloning a burn module is not enough: parameters are immutable tensors, so a
//! clone keeps their values, but BatchNorm's running statistics (and DINO's
//! centre) live in `RunningState`, an `Arc` that every clone shares, so they
//! keep moving. A [`Snapshot`] also records every float tensor by id, and
//! [`Snapshot::restore`] writes them back, running states included.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::prelude::*;
use std::any::Any;
use std::collections::HashMap;

/// A model and the values of all its float tensors, running statistics included.
pub struct Snapshot<M> {
    model: M,
    values: HashMap<ParamId, Box<dyn Any>>,
}

struct Collect(HashMap<ParamId, Box<dyn Any>>);

impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0.insert(param.id, Box::new(param.val()));
    }
}

struct Restore<'a>(&'a HashMap<ParamId, Box<dyn Any>>);

impl ModuleMapper for Restore<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        match self
            .0
            .get(&param.id)
            .and_then(|v| v.downcast_ref::<Tensor<D>>())
        {
            Some(saved) => param.map(|_| saved.clone()),
            None => param,
        }
    }
}

impl<M: Module + Clone> Snapshot<M> {
    /// Record `model` as it is now.
    pub fn take(model: &M) -> Self {
        // `valid` folds pending running-statistic updates into their values first.
        let _ = model.valid();
        let mut collect = Collect(HashMap::new());
        model.visit(&mut collect);
        Self {
            model: model.clone(),
            values: collect.0,
        }
    }

    /// The model as it was when the snapshot was taken, its running statistics
    /// written back (which also resets them in every clone sharing them).
    pub fn restore(self) -> M {
        let _ = self.model.valid();
        self.model.map(&mut Restore(&self.values))
    }
}
