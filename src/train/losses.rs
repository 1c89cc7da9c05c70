//! The two training losses, written out so each step is visible.

use burn::prelude::*;
use burn::tensor::activation::{log_softmax, softmax};

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

/// NT-Xent (Chen et al. 2020) exactly as the notebook defines it. `z1`, `z2`
/// `[batch, d]` are the L2-normalised projections of two views of the same images;
/// the `2·batch` views are compared by cosine over `temperature`, each with itself
/// masked out, and the positive of view `i` is its partner at `i ± batch`.
pub fn nt_xent(z1: Tensor<2>, z2: Tensor<2>, temperature: f64) -> Tensor<1> {
    let [b, _] = z1.dims();
    let device = z1.device();
    let z = Tensor::cat(vec![z1, z2], 0); // [2b, d]
    let sim = z.clone().matmul(z.transpose()).div_scalar(temperature); // [2b, 2b]
    let eye = Tensor::<2>::eye(2 * b, &device).equal_elem(1.0);
    // A large negative instead of -inf keeps every gradient finite; exp() of it is 0.
    let sim = sim.mask_fill(eye, -1.0e9);
    let targets: Vec<i64> = (0..2 * b).map(|i| ((i + b) % (2 * b)) as i64).collect();
    let targets = Tensor::<1, Int>::from_data(TensorData::new(targets, [2 * b]), &device);
    cross_entropy(sim, targets)
}

/// The teacher's targets: `softmax((t − centre) / temperature)`, outside the graph.
pub fn dino_targets(teacher: Tensor<2>, center: Tensor<2>, temperature: f64) -> Tensor<2> {
    softmax((teacher - center).div_scalar(temperature), 1).detach()
}

/// The notebook's DINO loss: cross-entropy between each teacher target
/// `targets[t]` `[batch, out]` and each student view's `log_softmax(s / temperature)`,
/// averaged over every (student view, teacher view) pair except a global view with
/// itself (student view `i` and teacher view `i`).
pub fn dino_loss(student: &[Tensor<2>], targets: &[Tensor<2>], temperature: f64) -> Tensor<1> {
    let mut total: Option<Tensor<1>> = None;
    let mut pairs = 0usize;
    for (s_idx, s) in student.iter().enumerate() {
        let log_p = log_softmax(s.clone().div_scalar(temperature), 1); // [batch, out]
        for (t_idx, t) in targets.iter().enumerate() {
            if s_idx == t_idx {
                continue;
            }
            let ce = (t.clone() * log_p.clone()).sum_dim(1).mean().neg(); // [1]
            total = Some(match total {
                Some(acc) => acc + ce,
                None => ce,
            });
            pairs += 1;
        }
    }
    match total {
        Some(t) => t.div_scalar(pairs as f64),
        None => Tensor::zeros(
            [1],
            &student.first().map_or_else(Device::default, |s| s.device()),
        ),
    }
}

/// Mean entropy (nats) of the rows of a probability matrix `[batch, out]`: `ln out`
/// when every row is uniform (collapse to the centre), near 0 when one prototype
/// wins every time.
pub fn mean_entropy(p: Tensor<2>) -> Tensor<1> {
    (p.clone() * p.clamp_min(1e-12).log())
        .sum_dim(1)
        .mean()
        .neg()
}

/// Mean over dimensions of the batch standard deviation of the L2-normalised
/// embeddings `[batch, d]`: 0 when every image maps to the same point, about
/// `1/√d` when they spread over the sphere.
pub fn embedding_spread(z: Tensor<2>) -> Tensor<1> {
    let z = crate::model::convnet::l2_normalize(z);
    z.var(0).sqrt().mean()
}
