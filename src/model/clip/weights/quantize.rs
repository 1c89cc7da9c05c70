//! Symmetric per-output-channel int8 quantisation of the matrix weights.

/// (channels along `axis`, elements after `axis` per index of it).
fn channel_geometry(shape: &[usize], axis: usize) -> (usize, usize) {
    let channels = shape.get(axis).copied().unwrap_or(1);
    let inner = shape.iter().skip(axis + 1).product::<usize>();
    (channels, inner.max(1))
}

/// Symmetric per-channel int8: `scale = max|w| / 127` over each channel along
/// `axis` (1.0 for an all-zero channel), `q = round(w / scale)` in [-127, 127].
pub(super) fn quantize(values: &[f32], shape: &[usize], axis: usize) -> (Vec<i8>, Vec<f32>) {
    let (channels, inner) = channel_geometry(shape, axis);
    let channel = |i: usize| (i / inner) % channels.max(1);
    let mut max = vec![0f32; channels];
    for (i, v) in values.iter().enumerate() {
        if let Some(m) = max.get_mut(channel(i)) {
            *m = m.max(v.abs());
        }
    }
    let scales: Vec<f32> = max
        .iter()
        .map(|&m| if m > 0.0 { m / 127.0 } else { 1.0 })
        .collect();
    let q = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let s = scales.get(channel(i)).copied().unwrap_or(1.0);
            (v / s).round().clamp(-127.0, 127.0) as i8
        })
        .collect();
    (q, scales)
}

/// `q × scale`, with the scale varying along `axis`.
pub(super) fn dequantize(q: &[i8], shape: &[usize], axis: usize, scales: &[f32]) -> Vec<f32> {
    let (channels, inner) = channel_geometry(shape, axis);
    q.iter()
        .enumerate()
        .map(|(i, &v)| {
            let s = scales
                .get((i / inner) % channels.max(1))
                .copied()
                .unwrap_or(1.0);
            f32::from(v) * s
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantisation_is_per_output_channel_and_round_trips() {
        // [2, 3] with output axis 0: rows are channels.
        let w = [1.0, -0.5, 0.25, 0.0, 0.0, 0.0];
        let (q, s) = quantize(&w, &[2, 3], 0);
        assert_eq!(s, vec![1.0 / 127.0, 1.0]);
        assert_eq!(q, vec![127, -64, 32, 0, 0, 0]);
        // Output axis 1: columns are channels.
        let w = [2.0, -1.0, -4.0, 0.5];
        let (q, s) = quantize(&w, &[2, 2], 1);
        assert_eq!(s, vec![4.0 / 127.0, 1.0 / 127.0]);
        assert_eq!(q, vec![64, -127, -127, 64]);
        let back = dequantize(&q, &[2, 2], 1, &s);
        for (a, b) in back.iter().zip(w) {
            assert!((a - b).abs() <= 4.0 / 127.0 / 2.0 + 1e-6);
        }
        // Conv weights: everything after axis 0 shares a scale.
        let w: Vec<f32> = (0..24).map(|i| i as f32 - 12.0).collect();
        let (q, s) = quantize(&w, &[2, 3, 2, 2], 0);
        assert_eq!(s, vec![12.0 / 127.0, 11.0 / 127.0]);
        assert_eq!(q[0], -127);
        assert_eq!(q[23], 127);
    }
}
