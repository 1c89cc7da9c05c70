//! A bit-exact re-implementation of `numpy.random.default_rng(seed)`.
//!
//! The lab notebook draws its label and sample splits from numpy's default
//! generator, so replab needs the very same stream to reproduce them. The
//! pieces, in the order numpy runs them:
//!
//! 1. **SeedSequence** turns the integer seed into 32-bit words (low word
//!    first), hashes them into a pool of four words and mixes every pool word
//!    with every other one. `generate_state` then hashes the pool, cycling
//!    through it, into as many output words as the bit generator asks for.
//! 2. **PCG64** takes 4 × 64 bits from that state: the first 128 bits are the
//!    initial state, the last 128 bits select the stream (the LCG increment).
//!    Each step is a 128-bit LCG; the output is the XOR of the state's two
//!    halves rotated right by the top six state bits (XSL-RR).
//! 3. **Generator** methods build on two primitive draws: a 64-bit word, and a
//!    32-bit word that numpy serves from half of a buffered 64-bit word (low
//!    half first, high half on the next 32-bit request). 64-bit draws never
//!    touch that buffer.
//!
//! Which bounded-integer method numpy uses depends on the call:
//! `integers` and `choice` use Lemire's multiply-and-reject method, while
//! `shuffle` uses masked rejection (`random_interval`). Both pick a 32-bit
//! draw when the range fits in 32 bits.

/// The 128-bit multiplier of numpy's PCG64 (the PCG reference default).
const PCG_MULTIPLIER: u128 = (2_549_297_995_355_413_924_u128 << 64) | 4_865_540_595_714_422_341;

/// SeedSequence constants (from the reference design by M. E. O'Neill).
const POOL_SIZE: usize = 4;
const INIT_A: u32 = 0x43b0_d7e5;
const MULT_A: u32 = 0x931e_8875;
const INIT_B: u32 = 0x8b51_f9dd;
const MULT_B: u32 = 0x58f3_8ded;
const MIX_MULT_L: u32 = 0xca01_f9dd;
const MIX_MULT_R: u32 = 0x4973_f715;
const XSHIFT: u32 = 16;

/// Above this population size `choice` may switch from Floyd's algorithm to a
/// partial Fisher–Yates shuffle of the whole population (numpy's heuristic).
const CHOICE_TAIL_SHUFFLE_MIN_POP: usize = 10_000;
/// numpy's cut-off divisor for that switch when the selection is shuffled.
const CHOICE_TAIL_SHUFFLE_DIVISOR: usize = 50;

/// numpy's `np.random.default_rng(seed)`: PCG64 seeded through SeedSequence,
/// with the `Generator` methods the project needs.
///
/// Cloning gives an independent copy that continues the same stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NumpyRng {
    state: u128,
    increment: u128,
    /// The high half of the last 64-bit word, kept for the next 32-bit draw.
    buffered_u32: Option<u32>,
}

impl NumpyRng {
    /// The generator that `np.random.default_rng(seed)` returns.
    pub fn new(seed: u64) -> Self {
        let words = seed_sequence_state(seed);
        let initial_state = (u128::from(words[0]) << 64) | u128::from(words[1]);
        let stream = (u128::from(words[2]) << 64) | u128::from(words[3]);
        Self::from_pcg_seed(initial_state, stream)
    }

    /// The generator's whole state as text (`state:increment:buffered`), for a
    /// saved run; [`NumpyRng::from_state_text`] reads it back.
    pub fn state_text(&self) -> String {
        let buffered = self
            .buffered_u32
            .map_or(String::from("-"), |b| b.to_string());
        format!("{:x}:{:x}:{buffered}", self.state, self.increment)
    }

    /// The generator [`NumpyRng::state_text`] described, or `None` when the text is
    /// not such a state.
    pub fn from_state_text(text: &str) -> Option<Self> {
        let mut parts = text.split(':');
        let state = u128::from_str_radix(parts.next()?, 16).ok()?;
        let increment = u128::from_str_radix(parts.next()?, 16).ok()?;
        let buffered_u32 = match parts.next()? {
            "-" => None,
            b => Some(b.parse().ok()?),
        };
        (parts.next().is_none() && increment % 2 == 1).then_some(Self {
            state,
            increment,
            buffered_u32,
        })
    }

    /// PCG's `srandom`: odd increment from the stream id, then two steps
    /// around adding the initial state.
    fn from_pcg_seed(initial_state: u128, stream: u128) -> Self {
        let mut rng = Self {
            state: 0,
            increment: (stream << 1) | 1,
            buffered_u32: None,
        };
        rng.step();
        rng.state = rng.state.wrapping_add(initial_state);
        rng.step();
        rng
    }

    #[inline]
    fn step(&mut self) {
        self.state = self
            .state
            .wrapping_mul(PCG_MULTIPLIER)
            .wrapping_add(self.increment);
    }

    /// The next raw 64-bit output (`bit_generator.random_raw()`).
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.step();
        let high = (self.state >> 64) as u64;
        let low = self.state as u64;
        (high ^ low).rotate_right((high >> 58) as u32)
    }

    /// The next 32-bit output as numpy's PCG64 serves it: the low half of a
    /// fresh 64-bit word, then that word's high half on the following call.
    #[inline]
    pub fn next_u32(&mut self) -> u32 {
        if let Some(high) = self.buffered_u32.take() {
            return high;
        }
        let word = self.next_u64();
        self.buffered_u32 = Some((word >> 32) as u32);
        word as u32
    }

    /// A float in `[0, 1)` as `Generator.random()`: the top 53 bits of a
    /// 64-bit draw, scaled by 2^-53.
    #[inline]
    pub fn random(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / 9_007_199_254_740_992.0)
    }

    /// An integer in `[low, high)` as `Generator.integers(low, high)` with
    /// the default `int64` dtype.
    ///
    /// numpy raises for an empty range; here `high <= low` is treated like
    /// the one-value range `[low, low]`, which returns `low` without drawing.
    pub fn integers(&mut self, low: i64, high: i64) -> i64 {
        if high <= low {
            return low;
        }
        // Inclusive width; fits in u64 because high - 1 - low < 2^64.
        let span = (i128::from(high) - 1 - i128::from(low)) as u64;
        (low as u64).wrapping_add(self.bounded_lemire(span)) as i64
    }

    /// A uniform integer in `[0, max]` (inclusive) by numpy's
    /// `random_bounded_uint64` with Lemire's method, as used by `integers`
    /// and `choice`.
    ///
    /// Ranges that fit in 32 bits take 32-bit draws (`max == u32::MAX` takes
    /// one plain 32-bit draw); `max == 0` draws nothing; `max == u64::MAX`
    /// returns one plain 64-bit draw.
    pub fn bounded_lemire(&mut self, max: u64) -> u64 {
        if max == 0 {
            0
        } else if max < u64::from(u32::MAX) {
            u64::from(self.lemire_u32(max as u32))
        } else if max == u64::from(u32::MAX) {
            u64::from(self.next_u32())
        } else if max == u64::MAX {
            self.next_u64()
        } else {
            self.lemire_u64(max)
        }
    }

    /// Lemire's method on 32-bit draws for `[0, max]`, `max < u32::MAX`:
    /// multiply a draw by the range size, keep the high word, and reject the
    /// few low words that would bias the result.
    #[inline]
    fn lemire_u32(&mut self, max: u32) -> u32 {
        let range = max + 1;
        let mut product = u64::from(self.next_u32()) * u64::from(range);
        let mut leftover = product as u32;
        if leftover < range {
            let threshold = (u32::MAX - max) % range;
            while leftover < threshold {
                product = u64::from(self.next_u32()) * u64::from(range);
                leftover = product as u32;
            }
        }
        (product >> 32) as u32
    }

    /// Lemire's method on 64-bit draws for `[0, max]`, `max < u64::MAX`.
    #[inline]
    fn lemire_u64(&mut self, max: u64) -> u64 {
        let range = max + 1;
        let mut product = u128::from(self.next_u64()) * u128::from(range);
        let mut leftover = product as u64;
        if leftover < range {
            let threshold = (u64::MAX - max) % range;
            while leftover < threshold {
                product = u128::from(self.next_u64()) * u128::from(range);
                leftover = product as u64;
            }
        }
        (product >> 64) as u64
    }

    /// A uniform integer in `[0, max]` by numpy's `random_interval`: draw,
    /// mask to the smallest all-ones bit mask covering `max`, retry while the
    /// result exceeds `max`. Used by `shuffle`. 32-bit draws serve any `max`
    /// that fits in 32 bits; `max == 0` draws nothing.
    pub fn random_interval(&mut self, max: u64) -> u64 {
        if max == 0 {
            return 0;
        }
        let mask = all_ones_mask(max);
        if max <= u64::from(u32::MAX) {
            loop {
                let value = u64::from(self.next_u32()) & mask;
                if value <= max {
                    return value;
                }
            }
        }
        loop {
            let value = self.next_u64() & mask;
            if value <= max {
                return value;
            }
        }
    }

    /// Shuffles in place as `Generator.shuffle` does for a list or a 1-D
    /// array: Fisher–Yates from the last position down to position 1, each
    /// swap partner drawn with [`random_interval`](Self::random_interval).
    pub fn shuffle<T>(&mut self, values: &mut [T]) {
        for i in (1..values.len()).rev() {
            let j = self.random_interval(i as u64) as usize;
            values.swap(i, j);
        }
    }

    /// `Generator.choice(pop_size, size, replace=False)`: `size` distinct
    /// indices in `[0, pop_size)`, in numpy's order.
    ///
    /// numpy uses two algorithms. For large populations where the sample is
    /// more than a fiftieth of the population it shuffles the tail of
    /// `0..pop_size` (Fisher–Yates stopped after `size` steps) and returns
    /// that tail. Otherwise it runs Floyd's algorithm (draw `v` in `[0, j]`
    /// for `j = pop_size - size .. pop_size`, taking `j` itself when `v` was
    /// already taken) and then shuffles the selection; both use Lemire draws.
    ///
    /// numpy raises when `size > pop_size`; here `size` is clamped to
    /// `pop_size`.
    pub fn choice_indices(&mut self, pop_size: usize, size: usize) -> Vec<usize> {
        let size = size.min(pop_size);
        if pop_size > CHOICE_TAIL_SHUFFLE_MIN_POP && size > pop_size / CHOICE_TAIL_SHUFFLE_DIVISOR {
            let mut population: Vec<usize> = (0..pop_size).collect();
            let first = (pop_size - size).max(1);
            self.lemire_shuffle_down_to(&mut population, first);
            population.split_off(pop_size - size)
        } else {
            let mut selected = self.floyd_sample(pop_size, size);
            self.lemire_shuffle_down_to(&mut selected, 1);
            selected
        }
    }

    /// Floyd's sampling without replacement, in numpy's draw order.
    fn floyd_sample(&mut self, pop_size: usize, size: usize) -> Vec<usize> {
        let mut taken = OpenSet::with_capacity_for(size);
        let mut selected = Vec::with_capacity(size);
        for j in (pop_size - size)..pop_size {
            let value = self.bounded_lemire(j as u64) as usize;
            let pick = if taken.insert(value) {
                value
            } else {
                // `value` was taken earlier; `j` cannot have been.
                taken.insert(j);
                j
            };
            selected.push(pick);
        }
        selected
    }

    /// Fisher–Yates over positions `len-1` down to `first` with Lemire draws
    /// (numpy's `_shuffle_int`, used inside `choice`).
    fn lemire_shuffle_down_to(&mut self, values: &mut [usize], first: usize) {
        for i in (first..values.len()).rev() {
            let j = self.bounded_lemire(i as u64) as usize;
            values.swap(i, j);
        }
    }
}

/// The smallest `2^k - 1` that is `>= max`.
#[inline]
fn all_ones_mask(max: u64) -> u64 {
    if max == 0 {
        0
    } else {
        u64::MAX >> max.leading_zeros()
    }
}

/// A small open-addressing set of indices for Floyd's algorithm (linear
/// probing in a power-of-two table, like numpy's; the result does not depend
/// on the table layout, only on membership).
struct OpenSet {
    slots: Vec<usize>,
    mask: usize,
}

impl OpenSet {
    const EMPTY: usize = usize::MAX;

    fn with_capacity_for(count: usize) -> Self {
        // At least 1.25 × count slots, rounded up to a power of two.
        let wanted = count.saturating_add(count / 4).saturating_add(1);
        let len = wanted.checked_next_power_of_two().unwrap_or(wanted);
        Self {
            slots: vec![Self::EMPTY; len],
            mask: len - 1,
        }
    }

    /// Inserts `value`; returns false if it was already present.
    fn insert(&mut self, value: usize) -> bool {
        let mut slot = value & self.mask;
        loop {
            match self.slots[slot] {
                Self::EMPTY => {
                    self.slots[slot] = value;
                    return true;
                }
                existing if existing == value => return false,
                _ => slot = (slot + 1) & self.mask,
            }
        }
    }
}

/// SeedSequence(seed).generate_state(4, uint64) for a non-negative integer
/// seed.
fn seed_sequence_state(seed: u64) -> [u64; 4] {
    // The seed as 32-bit words, least significant first; zero is one word.
    let entropy: Vec<u32> = if seed >> 32 == 0 {
        vec![seed as u32]
    } else {
        vec![seed as u32, (seed >> 32) as u32]
    };

    let mut pool = [0_u32; POOL_SIZE];
    let mut hash_const = INIT_A;
    let mut hashmix = |value: u32| -> u32 {
        let mut value = value ^ hash_const;
        hash_const = hash_const.wrapping_mul(MULT_A);
        value = value.wrapping_mul(hash_const);
        value ^ (value >> XSHIFT)
    };
    for (i, word) in pool.iter_mut().enumerate() {
        *word = hashmix(entropy.get(i).copied().unwrap_or(0));
    }
    for src in 0..POOL_SIZE {
        for dst in 0..POOL_SIZE {
            if src != dst {
                let hashed = hashmix(pool[src]);
                pool[dst] = mix(pool[dst], hashed);
            }
        }
    }
    // A u64 seed has at most two words, so no entropy is left beyond the pool.

    let mut hash_const = INIT_B;
    let mut words = [0_u32; 2 * 4];
    for (word, &source) in words.iter_mut().zip(pool.iter().cycle()) {
        let mut value = source ^ hash_const;
        hash_const = hash_const.wrapping_mul(MULT_B);
        value = value.wrapping_mul(hash_const);
        *word = value ^ (value >> XSHIFT);
    }
    // Pairs of 32-bit words read as little-endian 64-bit words.
    let mut state = [0_u64; 4];
    for (out, pair) in state.iter_mut().zip(words.chunks_exact(2)) {
        *out = u64::from(pair[0]) | (u64::from(pair[1]) << 32);
    }
    state
}

/// SeedSequence's pool mixing function.
#[inline]
fn mix(x: u32, y: u32) -> u32 {
    let result = MIX_MULT_L
        .wrapping_mul(x)
        .wrapping_sub(MIX_MULT_R.wrapping_mul(y));
    result ^ (result >> XSHIFT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_stream_seed_0_matches_numpy() {
        // np.random.default_rng(0).bit_generator.random_raw(3)
        let mut rng = NumpyRng::new(0);
        assert_eq!(rng.next_u64(), 11_749_869_230_777_074_271);
        assert_eq!(rng.next_u64(), 4_976_686_463_289_251_617);
        assert_eq!(rng.next_u64(), 755_828_109_848_996_024);
    }

    #[test]
    fn random_seed_0_matches_numpy() {
        // np.random.default_rng(0).random() twice
        let mut rng = NumpyRng::new(0);
        assert_eq!(rng.random(), 0.636_961_687_321_454_3);
        assert_eq!(rng.random(), 0.269_786_713_763_870_3);
    }

    #[test]
    fn integers_seed_0_matches_numpy() {
        // np.random.default_rng(0).integers(0, 3, size=6) / (0, 1000, size=4)
        let mut rng = NumpyRng::new(0);
        let small: Vec<i64> = (0..6).map(|_| rng.integers(0, 3)).collect();
        assert_eq!(small, [2, 1, 1, 0, 0, 0]);
        let mut rng = NumpyRng::new(0);
        let wide: Vec<i64> = (0..4).map(|_| rng.integers(0, 1000)).collect();
        assert_eq!(wide, [850, 636, 511, 269]);
    }

    #[test]
    fn notebook_held_out_labels_for_eight_classes() {
        // default_rng(42).choice(list(range(8)), size=3, replace=False)
        let mut rng = NumpyRng::new(42);
        assert_eq!(rng.choice_indices(8, 3), [7, 0, 5]);
        let mut rng = NumpyRng::new(42);
        assert_eq!(rng.choice_indices(11, 4), [4, 0, 9, 6]);
    }

    #[test]
    fn degenerate_calls_draw_nothing() {
        let mut rng = NumpyRng::new(7);
        let untouched = rng.clone();
        assert_eq!(rng.integers(5, 6), 5);
        assert_eq!(rng.integers(5, 5), 5);
        assert_eq!(rng.choice_indices(1, 1), [0]);
        assert!(rng.choice_indices(0, 0).is_empty());
        let mut single = [9];
        rng.shuffle(&mut single);
        assert_eq!(rng, untouched);
    }

    #[test]
    fn choice_clamps_oversized_requests() {
        let mut rng = NumpyRng::new(3);
        let mut picked = rng.choice_indices(4, 9);
        picked.sort_unstable();
        assert_eq!(picked, [0, 1, 2, 3]);
    }

    #[test]
    fn full_int64_range_does_not_overflow() {
        let mut rng = NumpyRng::new(11);
        for _ in 0..100 {
            let value = rng.integers(i64::MIN, i64::MAX);
            assert!(value < i64::MAX);
        }
    }

    #[test]
    fn all_ones_mask_covers_value() {
        assert_eq!(all_ones_mask(0), 0);
        assert_eq!(all_ones_mask(1), 1);
        assert_eq!(all_ones_mask(5), 7);
        assert_eq!(all_ones_mask(8), 15);
        assert_eq!(all_ones_mask(u64::MAX), u64::MAX);
    }
}
