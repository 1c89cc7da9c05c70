//! Bilinear upsampling with PyTorch's `align_corners=False` rule, written as two
//! small matrix products so that its gradient exists on every backend.
//!
//! burn 0.22's `interpolate` has a bilinear forward pass everywhere, but its GPU
//! backends (cubecl: wgpu, WebGPU) have no bilinear *backward*; training the
//! convolutional autoencoder there panicked inside `backward()`. Separable bilinear
//! resizing is linear in the input, so it equals `A_h · X · A_wᵀ` with fixed
//! interpolation matrices; matmul and its gradient are supported by every backend,
//! and for 4×4 → 28×28 the matrices are tiny.

use burn::module::Module;
use burn::prelude::*;

/// Upsample `[batch, c, h, w]` to a fixed size, or by a factor of 2.
#[derive(Module, Debug)]
pub struct Bilinear {
    /// The output size, or `None` for twice the input.
    target: Option<[usize; 2]>,
}

/// Row `o` of the `[out, input]` matrix that resizes one axis: PyTorch's source
/// coordinate `(o + ½)·scale − ½`, clamped at 0, split between its two neighbours.
pub fn weights(input: usize, out: usize, scale: f64) -> Vec<f32> {
    let mut m = vec![0.0f32; out * input];
    for o in 0..out {
        let src = ((o as f64 + 0.5) * scale - 0.5).max(0.0);
        let i0 = (src.floor() as usize).min(input - 1);
        let i1 = (i0 + 1).min(input - 1);
        let t = (src - i0 as f64) as f32;
        m[o * input + i0] += 1.0 - t;
        m[o * input + i1] += t;
    }
    m
}

impl Bilinear {
    /// `nn.Upsample(size=target, mode='bilinear', align_corners=False)`, or
    /// `scale_factor=2` when `target` is `None`.
    pub fn new(target: Option<[usize; 2]>) -> Self {
        Self { target }
    }

    /// `[batch, c, h, w]` → `[batch, c, H, W]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, c, h, w] = x.dims();
        let device = x.device();
        // With a scale factor PyTorch maps coordinates by 1/factor; with a size, by in/out.
        let ([oh, ow], [sh, sw]) = match self.target {
            Some([oh, ow]) => ([oh, ow], [h as f64 / oh as f64, w as f64 / ow as f64]),
            None => ([2 * h, 2 * w], [0.5, 0.5]),
        };
        let matrix = |input: usize, out: usize, scale: f64| {
            Tensor::<2>::from_data(
                TensorData::new(weights(input, out, scale), [out, input]),
                &device,
            )
        };
        let aw = matrix(w, ow, sw); // [W, w]
        let ah = matrix(h, oh, sh); // [H, h]
        let rows = x.reshape([b * c * h, w]).matmul(aw.transpose()); // [b·c·h, W]
        let cols = rows
            .reshape([b, c, h, ow])
            .swap_dims(2, 3) // [b, c, W, h]
            .reshape([b * c * ow, h])
            .matmul(ah.transpose()); // [b·c·W, H]
        cols.reshape([b, c, ow, oh]).swap_dims(2, 3) // [b, c, H, W]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_sum_to_one_and_doubling_matches_the_closed_form() {
        let m = weights(7, 14, 0.5);
        for r in m.chunks(7) {
            assert!((r.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        }
        // Output 1 of a doubling sits at source 0.25: ¾ of input 0, ¼ of input 1.
        assert_eq!(&m[7..9], &[0.75, 0.25]);
        // The first output clamps to input 0; the last to the last input.
        assert_eq!(m[0], 1.0);
        assert_eq!(m[13 * 7 + 6], 1.0);
    }
}
