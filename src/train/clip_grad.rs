//! Clipping gradients by their global norm, as PyTorch's `clip_grad_norm_` does:
//! every gradient is scaled by `min(1, max_norm / (‖g‖ + 1e-6))`, where `‖g‖` is the
//! norm of all gradients together. burn's own clipping works per tensor, which is a
//! different rule. The scale stays on the device, so nothing waits for a readback.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;

struct SquaredNorm<'a> {
    grads: &'a GradientsParams,
    total: Option<Tensor<1>>,
}

impl ModuleVisitor for SquaredNorm<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.get::<D>(param.id) {
            let s = g.powi_scalar(2).sum();
            self.total = Some(match self.total.take() {
                Some(t) => t + s,
                None => s,
            });
        }
    }
}

struct Scale<'a> {
    grads: &'a mut GradientsParams,
    scale: Tensor<1>,
}

impl ModuleVisitor for Scale<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.remove::<D>(param.id) {
            let s = self.scale.clone().to_device(&g.device()).reshape([1; D]);
            self.grads.register::<D>(param.id, g * s);
        }
    }
}

/// Scale `grads` of `model` so their global L2 norm is at most `max_norm`.
pub fn clip_global_norm<M: Module>(model: &M, grads: &mut GradientsParams, max_norm: f64) {
    let mut norm = SquaredNorm { grads, total: None };
    model.visit(&mut norm);
    let Some(total) = norm.total else { return };
    let scale = total
        .sqrt()
        .add_scalar(1e-6)
        .recip()
        .mul_scalar(max_norm)
        .clamp_max(1.0);
    model.visit(&mut Scale { grads, scale });
}
