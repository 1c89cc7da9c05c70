//! The exponential moving average that makes DINO's teacher, and fresh parameter
//! identities for a copied network.
//!
//! burn's `clone()` keeps each parameter's id, and the optimiser and the gradients
//! are keyed by id, so a teacher copied from the student must get ids of its own
//! before both live in one module. [`EmaUpdate`] pairs the two networks' parameters
//! by visiting order, which is the same for two networks of one type.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;

/// Re-create every parameter with a new id, requiring gradients or not.
struct FreshParams {
    require_grad: bool,
}

impl ModuleMapper for FreshParams {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let value = param.val().detach();
        Param::from_tensor(value).set_require_grad(self.require_grad)
    }
}

/// `module` with new parameter ids (same values), requiring gradients or not.
pub fn with_fresh_params<M: Module>(module: M, require_grad: bool) -> M {
    module.map(&mut FreshParams { require_grad })
}

/// Collects the (detached) parameter values of a network in visiting order.
struct Collect {
    values: Vec<(Vec<usize>, Tensor<1>)>,
}

impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let t = param.val().detach();
        let shape = t.dims().to_vec();
        self.values.push((shape, t.flatten(0, D - 1)));
    }
}

/// `teacher ← m·teacher + (1 − m)·student`, parameter by parameter.
struct EmaUpdate {
    student: std::vec::IntoIter<(Vec<usize>, Tensor<1>)>,
    momentum: f64,
    mismatch: bool,
}

impl ModuleMapper for EmaUpdate {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some((shape, s)) = self.student.next() else {
            self.mismatch = true;
            return param;
        };
        let m = self.momentum;
        param.map(|t| {
            if t.dims().as_slice() != shape.as_slice() {
                self.mismatch = true;
                return t;
            }
            let dims = t.dims();
            let s: Tensor<D> = s.to_device(&t.device()).reshape(dims);
            (t.detach().mul_scalar(m) + s.mul_scalar(1.0 - m)).detach()
        })
    }
}

/// One EMA step of every parameter of `teacher` towards `student` (the notebook's
/// `t.mul_(m).add_((1 − m)·s)`); buffers such as BatchNorm statistics are left alone.
/// The two networks must have the same structure.
pub fn ema_params<M: Module>(teacher: M, student: &M, momentum: f64) -> M {
    let mut collect = Collect { values: Vec::new() };
    student.visit(&mut collect);
    let mut update = EmaUpdate {
        student: collect.values.into_iter(),
        momentum,
        mismatch: false,
    };
    let out = teacher.map(&mut update);
    debug_assert!(!update.mismatch, "EMA over networks of different shapes");
    out
}
