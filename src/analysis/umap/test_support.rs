//! Test data shared by the UMAP tests.

use super::rng::SplitMix64;

pub(super) fn gauss(rng: &mut SplitMix64) -> f32 {
    let u = (rng.symmetric() + 1.0) * 0.5;
    let v = (rng.symmetric() + 1.0) * 0.5;
    (-2.0 * (u.max(1e-7)).ln()).sqrt() * (std::f32::consts::TAU * v).cos()
}

/// `per` points around each of 3 random centres in `d` dimensions.
pub(super) fn blobs(per: usize, d: usize, seed: u64) -> (Vec<f32>, Vec<usize>) {
    let mut rng = SplitMix64::new(seed);
    let centres: Vec<Vec<f32>> = (0..3)
        .map(|_| (0..d).map(|_| gauss(&mut rng) * 3.0).collect())
        .collect();
    let mut x = Vec::with_capacity(3 * per * d);
    let mut y = Vec::with_capacity(3 * per);
    for (label, centre) in centres.iter().enumerate() {
        for _ in 0..per {
            x.extend(centre.iter().map(|c| c + gauss(&mut rng)));
            y.push(label);
        }
    }
    (x, y)
}
