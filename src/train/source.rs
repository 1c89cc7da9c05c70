//! Where a training loop's batches come from: images of a split through a view, or
//! features cached on the host (for heads on frozen encoders). One trait, so one
//! loop serves both.

use super::batcher::{Batch, View, make_batch};
use crate::data::SplitData;
use burn::prelude::*;

/// Anything the training loop can draw batches from.
pub trait BatchSource {
    /// Examples available.
    fn len(&self) -> usize;
    /// Whether there are none.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The examples at `positions` as one batch on `device`.
    fn batch(&self, positions: &[usize], device: &Device) -> Batch;
}

/// Images of a split, through a view (with the view's labels).
#[derive(Clone, Copy)]
pub struct Images<'a> {
    /// The decoded split.
    pub split: &'a SplitData,
    /// Which rows, with which labels.
    pub view: &'a View,
}

impl<'a> Images<'a> {
    /// Pair a split with a view into it.
    pub fn new(split: &'a SplitData, view: &'a View) -> Self {
        Self { split, view }
    }
}

impl BatchSource for Images<'_> {
    fn len(&self) -> usize {
        self.view.len()
    }
    fn batch(&self, positions: &[usize], device: &Device) -> Batch {
        make_batch(self.split, self.view, positions, device)
    }
}

/// Row-major features `[n, d]` with one label per row. A batch carries them as
/// `[batch, d, 1, 1]` in [`Batch::images`], so heads flatten them back.
#[derive(Clone, Copy)]
pub struct Features<'a> {
    /// `n * d` floats.
    pub x: &'a [f32],
    /// Width of a row.
    pub d: usize,
    /// One label per row.
    pub y: &'a [usize],
}

impl BatchSource for Features<'_> {
    fn len(&self) -> usize {
        self.y.len()
    }
    fn batch(&self, positions: &[usize], device: &Device) -> Batch {
        let d = self.d.max(1);
        let mut v = Vec::with_capacity(positions.len() * d);
        let mut labels = Vec::with_capacity(positions.len());
        for &p in positions {
            if let (Some(row), Some(&l)) = (self.x.get(p * d..(p + 1) * d), self.y.get(p)) {
                v.extend_from_slice(row);
                labels.push(l as i64);
            }
        }
        let n = labels.len();
        Batch {
            images: Tensor::from_data(TensorData::new(v, [n, d, 1, 1]), device),
            labels: Tensor::from_data(TensorData::new(labels, [n]), device),
            len: n,
        }
    }
}
