//! The two training losses, written out so each step is visible.

use burn::prelude::*;
use burn::tensor::activation::log_softmax;

/// Mean cross-entropy of `logits [batch, classes]` against integer `targets [batch]`,
/// as `torch.nn.CrossEntropyLoss()`.
pub fn cross_entropy(logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
    let log_p = log_softmax(logits, 1); // [batch, classes]
    let picked = log_p.gather(1, targets.unsqueeze_dim(1)); // [batch, 1]
    picked.mean().neg()
}

/// Supervised contrastive loss (Khosla et al. 2020) exactly as the notebook defines it.
///
/// `z [batch, d]` are L2-normalised embeddings and `labels [batch]` their classes. For
/// each anchor the loss averages, over the other same-class examples in the batch,
/// the negative log-probability of picking that example among all others; self-pairs
/// never count, and anchors without a positive are left out of the mean. A batch in
/// which no anchor has a positive gives 0 (the notebook's mean of nothing is NaN).
pub fn supcon(z: Tensor<2>, labels: Tensor<1, Int>, temperature: f64) -> Tensor<1> {
    let [b, _] = z.dims();
    let device = z.device();
    let sim = z.clone().matmul(z.transpose()).div_scalar(temperature); // [b, b]
    let eye = Tensor::<2, Bool>::from_data(
        TensorData::new(
            (0..b * b).map(|i| i / b == i % b).collect::<Vec<bool>>(),
            [b, b],
        ),
        &device,
    );
    // A large negative instead of -inf keeps every gradient finite; exp() of it is 0.
    let sim = sim.mask_fill(eye.clone(), -1.0e9);
    let col = labels.clone().unsqueeze_dim::<2>(1).expand([b, b]); // [b, b] y_i
    let row = labels.unsqueeze_dim::<2>(0).expand([b, b]); // [b, b] y_j
    let same = col.equal(row).bool_and(eye.bool_not()); // positives
    let same_f = same.clone().float();
    let n_pos = same_f.clone().sum_dim(1); // [b, 1]
    let has_pos = n_pos.clone().greater_elem(0.0).float(); // [b, 1]
    let log_denom = logsumexp_rows(sim.clone()); // [b, 1]
    let log_prob = sim - log_denom; // [b, b]
    let pos_sum = log_prob.mask_fill(same.bool_not(), 0.0).sum_dim(1); // [b, 1]
    let per_anchor = pos_sum.neg() / n_pos.clamp_min(1.0); // [b, 1]
    let anchors = has_pos.clone().sum().clamp_min(1.0);
    (per_anchor * has_pos).sum() / anchors
}

/// Row-wise log-sum-exp of `[n, m]`, returning `[n, 1]`.
fn logsumexp_rows(x: Tensor<2>) -> Tensor<2> {
    let max = x.clone().max_dim(1).detach(); // [n, 1]
    (x - max.clone()).exp().sum_dim(1).log() + max
}
