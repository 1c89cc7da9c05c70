//! Turning rows of a split into tensors, and deterministic batch order.

use crate::data::SplitData;
use crate::data::rng::NumpyRng;
use burn::prelude::*;

/// A view of one split: which rows, with which (remapped) labels.
#[derive(Clone, Debug)]
pub struct View {
    /// Row indices into the split.
    pub indices: Vec<usize>,
    /// The label of each row, already remapped to `0..n_classes`.
    pub labels: Vec<usize>,
}

impl View {
    /// Rows of `split` with labels mapped by `map` (original label → new label).
    pub fn new(split: &SplitData, indices: &[usize], map: impl Fn(u8) -> Option<usize>) -> Self {
        let mut rows = Vec::with_capacity(indices.len());
        let mut labels = Vec::with_capacity(indices.len());
        for &i in indices {
            if let Some(l) = split.labels.get(i).and_then(|&l| map(l)) {
                rows.push(i);
                labels.push(l);
            }
        }
        Self {
            indices: rows,
            labels,
        }
    }

    /// The first `limit` rows (all if `None`).
    pub fn limited(mut self, limit: Option<usize>) -> Self {
        if let Some(n) = limit {
            self.indices.truncate(n);
            self.labels.truncate(n);
        }
        self
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.indices.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }
}

/// One batch on the device.
pub struct Batch {
    /// `[batch, c, 28, 28]` in `[0, 1]`, as torchvision's `ToTensor`.
    pub images: Tensor<4>,
    /// `[batch]`.
    pub labels: Tensor<1, Int>,
    /// Number of examples.
    pub len: usize,
}

/// Build a batch from positions `positions` of `view`.
pub fn make_batch(split: &SplitData, view: &View, positions: &[usize], device: &Device) -> Batch {
    let len = split.image_len();
    let mut pixels = Vec::with_capacity(positions.len() * len);
    let mut labels = Vec::with_capacity(positions.len());
    for &p in positions {
        let row = view.indices[p];
        if let Some(img) = split.image(row) {
            pixels.extend(img.iter().map(|&v| v as f32 / 255.0));
            labels.push(view.labels[p] as i64);
        }
    }
    let n = labels.len();
    let images = Tensor::<4>::from_data(
        TensorData::new(pixels, [n, split.channels, split.size, split.size]),
        device,
    );
    let labels = Tensor::<1, Int>::from_data(TensorData::new(labels, [n]), device);
    Batch {
        images,
        labels,
        len: n,
    }
}

/// Batches of positions into a view: shuffled with `rng` when given, the last partial
/// batch kept unless `drop_last`.
pub fn batch_positions(
    n: usize,
    batch_size: usize,
    rng: Option<&mut NumpyRng>,
    drop_last: bool,
) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..n).collect();
    if let Some(rng) = rng {
        rng.shuffle(&mut order);
    }
    let batch_size = batch_size.max(1);
    order
        .chunks(batch_size)
        .filter(|c| !drop_last || c.len() == batch_size)
        .map(|c| c.to_vec())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_cover_every_row_once() {
        let mut rng = NumpyRng::new(3);
        let b = batch_positions(10, 4, Some(&mut rng), false);
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), vec![4, 4, 2]);
        let mut all: Vec<usize> = b.concat();
        all.sort_unstable();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        assert_eq!(batch_positions(10, 4, None, true).len(), 2);
    }
}
