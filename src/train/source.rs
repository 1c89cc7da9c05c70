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

/// A source's examples uploaded to the device once, so each training step gathers its
/// batch there instead of sending it from the host. The upload is split into chunks of
/// at most [`Resident::CHUNK_BYTES`], which keeps every buffer under WebGPU's default
/// binding limit (128 MiB) whatever the dataset's size.
pub struct Resident {
    chunks: Vec<Batch>,
    rows_per_chunk: usize,
    len: usize,
}

impl Resident {
    /// Largest single upload.
    pub const CHUNK_BYTES: usize = 32 << 20;

    /// Upload every example of `source` to `device`.
    pub fn upload(source: &dyn BatchSource, device: &Device) -> Self {
        Self::upload_in_chunks(source, device, Self::CHUNK_BYTES)
    }

    /// Upload in chunks of at most `chunk_bytes` (at least one example each).
    pub fn upload_in_chunks(source: &dyn BatchSource, device: &Device, chunk_bytes: usize) -> Self {
        let len = source.len();
        let row_floats = if len == 0 {
            1
        } else {
            let one = source.batch(&[0], device);
            one.images.dims().iter().skip(1).product::<usize>().max(1)
        };
        let rows_per_chunk = (chunk_bytes / (4 * row_floats)).max(1);
        let chunks = (0..len)
            .step_by(rows_per_chunk)
            .map(|start| {
                let rows: Vec<usize> = (start..(start + rows_per_chunk).min(len)).collect();
                source.batch(&rows, device)
            })
            .collect();
        Self {
            chunks,
            rows_per_chunk,
            len,
        }
    }
}

/// Positions as an index tensor.
fn index_tensor(positions: &[usize], device: &Device) -> Tensor<1, Int> {
    let v: Vec<i64> = positions.iter().map(|&p| p as i64).collect();
    let n = v.len();
    Tensor::from_data(TensorData::new(v, [n]), device)
}

impl BatchSource for Resident {
    fn len(&self) -> usize {
        self.len
    }
    fn batch(&self, positions: &[usize], device: &Device) -> Batch {
        let positions: Vec<usize> = positions
            .iter()
            .copied()
            .filter(|&p| p < self.len)
            .collect();
        // Gather from each chunk the rows it holds, then put them back in batch order.
        let mut images = Vec::new();
        let mut labels = Vec::new();
        let mut order = Vec::with_capacity(positions.len());
        for (c, chunk) in self.chunks.iter().enumerate() {
            let base = c * self.rows_per_chunk;
            let (local, slots): (Vec<usize>, Vec<usize>) = positions
                .iter()
                .enumerate()
                .filter(|(_, p)| **p / self.rows_per_chunk == c)
                .map(|(slot, p)| (p - base, slot))
                .unzip();
            if local.is_empty() {
                continue;
            }
            let idx = index_tensor(&local, device);
            images.push(chunk.images.clone().select(0, idx.clone()));
            labels.push(chunk.labels.clone().select(0, idx));
            order.extend(slots);
        }
        let n = order.len();
        let (mut images, mut labels) = if images.is_empty() {
            // No valid position: an empty gather, still shaped like the data.
            let idx = index_tensor(&[], device);
            match self.chunks.first() {
                Some(c) => (
                    c.images.clone().select(0, idx.clone()),
                    c.labels.clone().select(0, idx),
                ),
                None => (
                    Tensor::zeros([0, 1, 1, 1], device),
                    Tensor::zeros([0], device),
                ),
            }
        } else if images.len() == 1 {
            (images.remove(0), labels.remove(0))
        } else {
            (Tensor::cat(images, 0), Tensor::cat(labels, 0))
        };
        if order.iter().enumerate().any(|(i, &s)| i != s) {
            // `order[i]` is the batch slot of gathered row i; invert it.
            let mut inverse = vec![0usize; n];
            for (i, &slot) in order.iter().enumerate() {
                inverse[slot] = i;
            }
            let idx = index_tensor(&inverse, device);
            images = images.select(0, idx.clone());
            labels = labels.select(0, idx);
        }
        Batch {
            images,
            labels,
            len: n,
        }
    }
}
