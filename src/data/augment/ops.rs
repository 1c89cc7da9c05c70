//! The device side of the augmentations: each operation takes a whole batch
//! `[n, c, h, w]` and per-view parameters, and never loops over views on the host.
//!
//! Crop, resize and flip are linear in the image and separable, so a view is
//! `R_y · X · R_xᵀ` with per-view `[h, h]` and `[w, w]` interpolation matrices built
//! on the device from four numbers per view; the same holds for the blur. burn's
//! `grid_sample_2d` would do the crop too, but its bilinear weights read past the
//! crop's edge, where torchvision's resize clamps inside it, and two small matrix
//! products are cheaper and run on every backend.

use super::ViewParams;
use burn::prelude::*;

/// Luma weights of `rgb_to_grayscale` (ITU-R 601-2, as torchvision).
const LUMA: [f32; 3] = [0.2989, 0.587, 0.114];

/// `[n]` host values as a `[n, 1, 1]` column on `device`.
fn column3(values: Vec<f32>, device: &Device) -> Tensor<3> {
    let n = values.len();
    Tensor::<3>::from_data(TensorData::new(values, [n, 1, 1]), device)
}

/// `[n]` host values as `[n, 1, 1, 1]`, to scale whole images.
fn column4(values: Vec<f32>, device: &Device) -> Tensor<4> {
    let n = values.len();
    Tensor::<4>::from_data(TensorData::new(values, [n, 1, 1, 1]), device)
}

/// Per-view resampling matrices `[n, out, input]` for one axis: output pixel `o`
/// (mirrored when flipped) reads source coordinate `(o + ½)·len/out − ½` of the crop,
/// clamped to the crop as PyTorch's bilinear resize clamps, split between its two
/// neighbours by the hat function `max(0, 1 − |src − k|)`.
pub fn resample_matrices(
    out: usize,
    input: usize,
    start: Vec<f32>,
    len: Vec<f32>,
    flip: Vec<f32>,
    device: &Device,
) -> Tensor<3> {
    let n = start.len();
    let o = Tensor::<1, Int>::arange(0..out as i64, device)
        .float()
        .reshape([1, out, 1]); // [1, out, 1]
    let k = Tensor::<1, Int>::arange(0..input as i64, device)
        .float()
        .reshape([1, 1, input]); // [1, 1, input]
    let start = column3(start, device);
    let len = column3(len, device);
    let flip = column3(flip, device);
    // o, or out − 1 − o for a flipped view.
    let o = o.clone() + flip * o.mul_scalar(-2.0).add_scalar((out - 1) as f32); // [n, out, 1]
    let scale = len.clone().div_scalar(out as f32); // [n, 1, 1]
    let src = (o.add_scalar(0.5) * scale).sub_scalar(0.5).clamp_min(0.0); // [n, out, 1]
    let last = len.sub_scalar(1.0).expand([n, out, 1]);
    let src = src.min_pair(last) + start; // [n, out, 1]
    (src - k).abs().neg().add_scalar(1.0).clamp_min(0.0) // [n, out, input]
}

/// `R_y · X · R_xᵀ` for every view and channel.
fn separable(x: Tensor<4>, ry: Tensor<3>, rx: Tensor<3>) -> Tensor<4> {
    let [n, c, h, w] = x.dims();
    let ry = ry.unsqueeze_dim::<4>(1).expand([n, c, h, h]); // [n, c, h, h]
    let rxt = rx
        .swap_dims(1, 2)
        .unsqueeze_dim::<4>(1)
        .expand([n, c, w, w]); // [n, c, w, w]
    ry.matmul(x).matmul(rxt)
}

/// `resized_crop(top, left, height, width, size=[h, w], bilinear)` followed by the
/// flips, for every view.
pub fn resized_crop(x: Tensor<4>, views: &[ViewParams]) -> Tensor<4> {
    let [_, _, h, w] = x.dims();
    let device = x.device();
    let f = |b: bool| if b { 1.0 } else { 0.0 };
    let ry = resample_matrices(
        h,
        h,
        views.iter().map(|v| v.crop.top as f32).collect(),
        views.iter().map(|v| v.crop.height as f32).collect(),
        views.iter().map(|v| f(v.vflip)).collect(),
        &device,
    );
    let rx = resample_matrices(
        w,
        w,
        views.iter().map(|v| v.crop.left as f32).collect(),
        views.iter().map(|v| v.crop.width as f32).collect(),
        views.iter().map(|v| f(v.hflip)).collect(),
        &device,
    );
    separable(x, ry, rx)
}

/// `rgb_to_grayscale(x, num_output_channels=1)` of `[n, 3, h, w]`: `[n, 1, h, w]`.
pub fn luma(x: Tensor<4>) -> Tensor<4> {
    let [n, _, h, w] = x.dims();
    let ch = |i: usize| x.clone().slice([0..n, i..i + 1, 0..h, 0..w]);
    ch(0).mul_scalar(LUMA[0]) + ch(1).mul_scalar(LUMA[1]) + ch(2).mul_scalar(LUMA[2])
}

/// torchvision's `_blend`: `clamp(f·a + (1 − f)·b, 0, 1)` with a per-view `f`.
fn blend(a: Tensor<4>, b: Tensor<4>, f: Tensor<4>) -> Tensor<4> {
    let g = f.clone().neg().add_scalar(1.0);
    (a * f + b * g).clamp(0.0, 1.0)
}

/// `adjust_brightness` with per-view factors `f [n, 1, 1, 1]`.
pub fn brightness(x: Tensor<4>, f: Tensor<4>) -> Tensor<4> {
    (x * f).clamp(0.0, 1.0)
}

/// `adjust_contrast`: blend with the mean grey level of each image.
pub fn contrast(x: Tensor<4>, f: Tensor<4>) -> Tensor<4> {
    let [n, c, _, _] = x.dims();
    let grey = if c == 3 { luma(x.clone()) } else { x.clone() };
    let mean = grey
        .reshape([n as i32, -1])
        .mean_dim(1)
        .reshape([n, 1, 1, 1]);
    blend(x, mean, f)
}

/// `adjust_saturation`: blend with the grey image (grey images are unchanged).
pub fn saturation(x: Tensor<4>, f: Tensor<4>) -> Tensor<4> {
    if x.dims()[1] != 3 {
        return x;
    }
    let grey = luma(x.clone());
    blend(x, grey, f)
}

/// `adjust_hue`: rotate the hue of every pixel by `f` turns, through torchvision's
/// HSV conversion (grey images are unchanged).
pub fn hue(x: Tensor<4>, f: Tensor<4>) -> Tensor<4> {
    let [n, c, h, w] = x.dims();
    if c != 3 {
        return x;
    }
    let ch = |t: &Tensor<4>, i: usize| t.clone().slice([0..n, i..i + 1, 0..h, 0..w]);
    let (r, g, b) = (ch(&x, 0), ch(&x, 1), ch(&x, 2));
    // RGB → HSV.
    let maxc = x.clone().max_dim(1); // [n, 1, h, w]
    let minc = x.min_dim(1);
    let eqc = maxc.clone().equal(minc.clone());
    let range = maxc.clone() - minc;
    let ones = maxc.ones_like();
    let s = range.clone() / maxc.clone().mask_where(eqc.clone(), ones.clone());
    let divisor = range.mask_where(eqc, ones);
    let rc = (maxc.clone() - r.clone()) / divisor.clone();
    let gc = (maxc.clone() - g.clone()) / divisor.clone();
    let bc = (maxc.clone() - b) / divisor;
    let max_is_r = maxc.clone().equal(r).float();
    let max_is_g = maxc.clone().equal(g).float();
    let not_r = max_is_r.clone().neg().add_scalar(1.0);
    let hg = (rc.clone().add_scalar(2.0) - bc.clone()) * (max_is_g.clone() * not_r.clone());
    let hr = (bc - gc.clone()) * max_is_r;
    let hb = (gc.add_scalar(4.0) - rc) * (not_r * max_is_g.neg().add_scalar(1.0));
    let hue = (hr + hg + hb).mul_scalar(1.0 / 6.0).add_scalar(1.0);
    let hue = frac(hue);
    // Shift, wrap to [0, 1).
    let hue = frac(hue + f);
    // HSV → RGB.
    let v = maxc;
    let h6 = hue.mul_scalar(6.0);
    let i = h6.clone().floor();
    let fr = h6 - i.clone();
    let i = i.clone() - i.div_scalar(6.0).floor().mul_scalar(6.0); // i mod 6
    let sxf = s.clone() * fr;
    let one_minus_s = s.neg().add_scalar(1.0);
    let q = (sxf.clone().neg().add_scalar(1.0) * v.clone()).clamp(0.0, 1.0);
    let t = ((sxf + one_minus_s.clone()) * v.clone()).clamp(0.0, 1.0);
    let p = (one_minus_s * v.clone()).clamp(0.0, 1.0);
    // Sector k of the hue circle takes (r, g, b) from (v, p, q, t) as torchvision's table.
    let table: [[&Tensor<4>; 3]; 6] = [
        [&v, &t, &p],
        [&q, &v, &p],
        [&p, &v, &t],
        [&p, &q, &v],
        [&t, &p, &v],
        [&v, &p, &q],
    ];
    let mut out = [v.zeros_like(), v.zeros_like(), v.zeros_like()];
    for (k, row) in table.iter().enumerate() {
        let m = i.clone().equal_elem(k as f32);
        for (o, src) in out.iter_mut().zip(row) {
            *o = o.clone().mask_where(m.clone(), (*src).clone());
        }
    }
    let [ro, go, bo] = out;
    Tensor::cat(vec![ro, go, bo], 1)
}

/// `x − floor(x)`: Python's `x % 1.0`.
fn frac(x: Tensor<4>) -> Tensor<4> {
    x.clone() - x.floor()
}

/// `ColorJitter` with each view's own order and factors. Within one of the four
/// slots every view runs at most one operation; brightness, contrast and saturation
/// at factor 1 leave an image exactly as it is, so each slot applies all three with
/// the identity for views that run something else. Hue is the costly one: the views
/// are sorted by the slot their hue runs in, so each slot converts only a
/// contiguous slice.
pub fn color_jitter(x: Tensor<4>, views: &[ViewParams]) -> Tensor<4> {
    let [n, c, h, w] = x.dims();
    let device = x.device();
    let jit: Vec<_> = views.iter().map(|v| v.jitter).collect();
    if jit.iter().all(Option::is_none) {
        return x;
    }
    let hue_slot = |j: &Option<super::JitterParams>| {
        j.map_or(4, |p| p.order.iter().position(|&o| o == 3).unwrap_or(4))
    };
    let mut perm: Vec<usize> = (0..n).collect();
    perm.sort_by_key(|&i| hue_slot(&jit[i]));
    let mut inverse = vec![0usize; n];
    for (pos, &i) in perm.iter().enumerate() {
        inverse[i] = pos;
    }
    let index = |v: &[usize]| {
        Tensor::<1, Int>::from_data(
            TensorData::new(v.iter().map(|&i| i as i64).collect::<Vec<_>>(), [n]),
            &device,
        )
    };
    let sorted: Vec<_> = perm.iter().map(|&i| jit[i]).collect();
    let mut x = x.select(0, index(&perm));
    for slot in 0..4 {
        let factors = |op: u8| -> Option<Tensor<4>> {
            let f: Vec<f32> = sorted
                .iter()
                .map(|j| match j {
                    Some(p) if p.order[slot] == op => p.factors[op as usize],
                    _ => 1.0,
                })
                .collect();
            f.iter().any(|&v| v != 1.0).then(|| column4(f, &device))
        };
        if let Some(f) = factors(0) {
            x = brightness(x, f);
        }
        if let Some(f) = factors(1) {
            x = contrast(x, f);
        }
        if c == 3 {
            if let Some(f) = factors(2) {
                x = saturation(x, f);
            }
            let lo = sorted.partition_point(|j| hue_slot(j) < slot);
            let hi = sorted.partition_point(|j| hue_slot(j) <= slot);
            if lo < hi {
                let f: Vec<f32> = sorted[lo..hi]
                    .iter()
                    .map(|j| j.map_or(0.0, |p| p.factors[3]))
                    .collect();
                let part = x.clone().slice([lo..hi, 0..c, 0..h, 0..w]);
                let part = hue(part, column4(f, &device));
                x = x.slice_assign([lo..hi, 0..c, 0..h, 0..w], part);
            }
        }
    }
    x.select(0, index(&inverse))
}

/// `RandomGrayscale`: the views marked grey become three equal luma channels.
pub fn random_grayscale(x: Tensor<4>, views: &[ViewParams]) -> Tensor<4> {
    let [n, c, h, w] = x.dims();
    if c != 3 || views.iter().all(|v| !v.grayscale) {
        return x;
    }
    let device = x.device();
    let mask = Tensor::<4, Bool>::from_data(
        TensorData::new(
            views.iter().map(|v| v.grayscale).collect::<Vec<_>>(),
            [n, 1, 1, 1],
        ),
        &device,
    )
    .expand([n, c, h, w]);
    let grey = luma(x.clone()).expand([n, c, h, w]);
    x.mask_where(mask, grey)
}

/// `gaussian_blur(kernel_size=3, sigma)` with reflect padding: per view the 1-D
/// kernel is `softmax(−(d/σ)²)` at `d = −1/√2, 0, 1/√2` (torchvision's linspace), and
/// the 2-D blur is that kernel along each axis.
pub fn gaussian_blur(x: Tensor<4>, views: &[ViewParams]) -> Tensor<4> {
    let [n, _, h, w] = x.dims();
    let device = x.device();
    let side: Vec<f32> = views
        .iter()
        .map(|v| match v.blur_sigma {
            Some(s) => {
                let e = (-(std::f64::consts::FRAC_1_SQRT_2 / s as f64).powi(2)).exp();
                (e / (1.0 + 2.0 * e)) as f32
            }
            None => 0.0,
        })
        .collect();
    let centre: Vec<f32> = side.iter().map(|s| 1.0 - 2.0 * s).collect();
    let matrix = |size: usize| {
        let side = column3(side.clone(), &device);
        let centre = column3(centre.clone(), &device);
        let eye = Tensor::<2>::eye(size, &device).unsqueeze_dim::<3>(0); // [1, size, size]
        let nb = Tensor::<2>::from_data(
            TensorData::new(reflect_neighbours(size), [size, size]),
            &device,
        )
        .unsqueeze_dim::<3>(0);
        (eye * centre + nb * side).expand([n, size, size])
    };
    separable(x, matrix(h), matrix(w))
}

/// `[size, size]`: row `i` has weight 1 at each neighbour `i ± 1`, reflected at the
/// edges (`−1 → 1`, `size → size − 2`), so an edge row holds a 2 next to it.
fn reflect_neighbours(size: usize) -> Vec<f32> {
    let mut m = vec![0.0f32; size * size];
    for i in 0..size {
        for d in [-1i64, 1] {
            let mut j = i as i64 + d;
            if j < 0 {
                j = -j;
            }
            if j >= size as i64 {
                j = 2 * (size as i64 - 1) - j;
            }
            m[i * size + j as usize] += 1.0;
        }
    }
    m
}
