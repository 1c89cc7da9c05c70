//! Test data shared by the probe tests.

/// Small deterministic pseudo-random generator (SplitMix64).
pub(super) struct Rng(pub(super) u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub(super) fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// Gaussian blobs: class `c` is centred at `sep * e_c` (cyclic).
pub(super) fn blobs(n: usize, d: usize, k: usize, sep: f64, seed: u64) -> (Vec<f32>, Vec<usize>) {
    let mut rng = Rng(seed);
    let mut x = Vec::with_capacity(n * d);
    let mut y = Vec::with_capacity(n);
    for i in 0..n {
        let c = i % k;
        for j in 0..d {
            let centre = if j % k == c { sep } else { 0.0 };
            x.push((centre + rng.normal()) as f32);
        }
        y.push(c);
    }
    (x, y)
}
