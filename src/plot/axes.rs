//! Axis ticks and linear scales.
//!
//! [`nice_ticks`] widens a data range to round numbers and picks a step of
//! 1, 2 or 5 times a power of ten. Every function here accepts any input —
//! empty data, NaN, infinities, a single repeated value — and still returns
//! a usable, finite axis.

/// Tick marks for one axis.
#[derive(Debug, Clone, PartialEq)]
pub struct Ticks {
    /// Lower end of the axis (a multiple of `step`, at or below the data).
    pub min: f64,
    /// Upper end of the axis (a multiple of `step`, at or above the data).
    pub max: f64,
    /// Distance between neighbouring ticks; always finite and positive.
    pub step: f64,
    /// Tick positions from `min` to `max` inclusive, ascending.
    pub values: Vec<f64>,
}

impl Ticks {
    /// Labels for [`Ticks::values`], with just enough decimals for `step`.
    pub fn labels(&self) -> Vec<String> {
        self.values
            .iter()
            .map(|&v| format_tick(v, self.step))
            .collect()
    }
}

/// The smallest and largest finite values, or `None` when there are none.
pub fn finite_range(values: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
    values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
}

/// Rounds a positive step up to 1, 2 or 5 times a power of ten. Returns
/// `None` for zero, negative or non-finite input, or when the result would
/// overflow.
pub fn nice_step(raw: f64) -> Option<f64> {
    if !(raw.is_finite() && raw > 0.0) {
        return None;
    }
    let exp = raw.log10().floor();
    let base = 10f64.powf(exp);
    if !(base.is_finite() && base > 0.0) {
        return None;
    }
    let frac = raw / base;
    let nice = if frac <= 1.0 + 1e-9 {
        1.0
    } else if frac <= 2.0 + 1e-9 {
        2.0
    } else if frac <= 5.0 + 1e-9 {
        5.0
    } else {
        10.0
    };
    let step = nice * base;
    (step.is_finite() && step > 0.0).then_some(step)
}

/// Ticks covering `lo..=hi` with at most about `max_ticks` intervals.
///
/// Non-finite bounds are ignored (falling back to `0..1` when both are),
/// swapped bounds are reordered, and an empty range (`lo == hi`) is widened
/// around its value so the axis still has extent.
pub fn nice_ticks(lo: f64, hi: f64, max_ticks: usize) -> Ticks {
    let (lo, hi) = match (lo.is_finite(), hi.is_finite()) {
        (true, true) => (lo.min(hi), lo.max(hi)),
        (true, false) => (lo, lo),
        (false, true) => (hi, hi),
        (false, false) => (0.0, 1.0),
    };
    let (lo, hi) = if lo < hi { (lo, hi) } else { widen(lo) };
    let intervals = max_ticks.clamp(1, 1000) as f64;
    // Divide before subtracting so huge ranges cannot overflow to infinity.
    let raw = hi / intervals - lo / intervals;
    if let Some(step) = nice_step(raw)
        && let Some(ticks) = ticks_with_step(lo, hi, step)
    {
        return ticks;
    }
    fallback(lo, hi)
}

/// A non-empty range around a single value.
fn widen(v: f64) -> (f64, f64) {
    let pad = if v == 0.0 { 1.0 } else { v.abs() * 0.1 };
    let (lo, hi) = (v - pad, v + pad);
    if lo.is_finite() && hi.is_finite() && lo < hi {
        (lo, hi)
    } else {
        // Extreme magnitudes: a lopsided but valid range.
        (v.min(0.0), v.max(0.0).max(v + 1.0))
    }
}

/// Multiples of `step` from just below `lo` to just above `hi`, or `None`
/// when floating-point precision cannot represent them distinctly.
fn ticks_with_step(lo: f64, hi: f64, step: f64) -> Option<Ticks> {
    let first = (lo / step + 1e-9).floor();
    let last = (hi / step - 1e-9).ceil();
    let count = last - first;
    if !(count.is_finite() && (1.0..=2000.0).contains(&count)) {
        return None;
    }
    let values: Vec<f64> = (0..=count as usize)
        .map(|i| clean_zero((first + i as f64) * step))
        .collect();
    let distinct = values.windows(2).all(|w| w[0] < w[1]);
    let (&min, &max) = (values.first()?, values.last()?);
    (distinct && min.is_finite() && max.is_finite()).then_some(Ticks {
        min,
        max,
        step,
        values,
    })
}

/// Two ticks at the ends of the range, for when nothing rounder works.
fn fallback(lo: f64, hi: f64) -> Ticks {
    let (lo, hi) = if lo < hi && (hi - lo).is_finite() {
        (lo, hi)
    } else {
        (0.0, 1.0)
    };
    Ticks {
        min: lo,
        max: hi,
        step: hi - lo,
        values: vec![lo, hi],
    }
}

/// Turns `-0.0` into `0.0` so it never prints as "-0".
fn clean_zero(v: f64) -> f64 {
    if v == 0.0 { 0.0 } else { v }
}

/// Formats a tick value with as many decimals as `step` needs; very large
/// or very small magnitudes switch to scientific notation.
pub fn format_tick(value: f64, step: f64) -> String {
    if !value.is_finite() {
        return String::new();
    }
    let value = clean_zero(value);
    let step = if step.is_finite() && step > 0.0 {
        step
    } else {
        value.abs().max(1.0)
    };
    let magnitude = value.abs().max(step);
    if magnitude >= 1e6 || step < 1e-4 {
        let digits = (magnitude.log10().floor() - step.log10().floor()).clamp(0.0, 6.0) as usize;
        return format!("{value:.digits$e}");
    }
    let decimals = (-step.log10().floor()).clamp(0.0, 10.0) as usize;
    let s = format!("{value:.decimals$}");
    // Tiny negative noise such as -1e-17 would otherwise print as "-0.0".
    if s.starts_with('-') && s.trim_start_matches(['-', '0', '.']).is_empty() {
        s[1..].to_string()
    } else {
        s
    }
}

/// A linear map from a data interval onto a pixel interval.
///
/// The pixel interval may be reversed (a y axis runs from the bottom pixel
/// up to the top one).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinearScale {
    d0: f64,
    d1: f64,
    p0: f32,
    p1: f32,
}

impl LinearScale {
    /// Maps `domain.0` to `range.0` and `domain.1` to `range.1`.
    pub fn new(domain: (f64, f64), range: (f32, f32)) -> LinearScale {
        LinearScale {
            d0: domain.0,
            d1: domain.1,
            p0: range.0,
            p1: range.1,
        }
    }

    /// Whether the domain has non-zero, finite width. When it does not,
    /// every value maps to the middle of the pixel range.
    fn is_degenerate(&self) -> bool {
        let span = self.d1 - self.d0;
        !(span.is_finite() && span != 0.0)
    }

    /// Pixel position of a data value. Values outside the domain extrapolate
    /// linearly; a NaN value gives NaN, which backends skip.
    pub fn map(&self, v: f64) -> f32 {
        if self.is_degenerate() {
            return (self.p0 + self.p1) / 2.0;
        }
        let t = (v - self.d0) / (self.d1 - self.d0);
        (f64::from(self.p0) + t * f64::from(self.p1 - self.p0)) as f32
    }

    /// Data value at a pixel position (the inverse of [`LinearScale::map`]).
    /// A zero-width pixel range maps everything to the domain start.
    pub fn invert(&self, p: f32) -> f64 {
        let span = f64::from(self.p1 - self.p0);
        if span == 0.0 || !span.is_finite() {
            return self.d0;
        }
        let t = f64::from(p - self.p0) / span;
        self.d0 + t * (self.d1 - self.d0)
    }

    /// The data interval.
    pub fn domain(&self) -> (f64, f64) {
        (self.d0, self.d1)
    }

    /// The pixel interval.
    pub fn range(&self) -> (f32, f32) {
        (self.p0, self.p1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(t: &Ticks) {
        assert!(t.step.is_finite() && t.step > 0.0, "bad step {t:?}");
        assert!(t.min.is_finite() && t.max.is_finite() && t.min < t.max);
        assert!(t.values.len() >= 2);
        assert!(t.values.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(t.values.first().copied(), Some(t.min));
        assert_eq!(t.values.last().copied(), Some(t.max));
    }

    #[test]
    fn ordinary_range_gets_1_2_5_steps() {
        let t = nice_ticks(0.13, 0.92, 5);
        check(&t);
        assert!((t.step - 0.2).abs() < 1e-12);
        assert_eq!(t.min, 0.0);
        assert!((t.max - 1.0).abs() < 1e-12);
        assert_eq!(t.labels(), ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]);

        let t = nice_ticks(0.0, 100.0, 5);
        check(&t);
        assert_eq!(t.step, 20.0);
        assert_eq!(t.labels(), ["0", "20", "40", "60", "80", "100"]);

        let t = nice_ticks(-3.7, 12.2, 8);
        check(&t);
        assert_eq!(t.step, 2.0);
        assert!(t.min <= -3.7 && t.max >= 12.2);
        assert!(t.values.contains(&0.0));
    }

    #[test]
    fn steps_are_one_two_or_five() {
        for raw in [0.013, 0.9, 1.0, 1.5, 3.0, 7.0, 42.0, 999.0, 1e-7, 3e12] {
            let s = nice_step(raw).unwrap();
            let mantissa = s / 10f64.powf(s.log10().floor());
            assert!(
                [1.0, 2.0, 5.0, 10.0]
                    .iter()
                    .any(|m| (mantissa - m).abs() < 1e-9),
                "{raw} -> {s}"
            );
            assert!(s >= raw * (1.0 - 1e-9));
        }
        assert_eq!(nice_step(0.0), None);
        assert_eq!(nice_step(-1.0), None);
        assert_eq!(nice_step(f64::NAN), None);
        assert_eq!(nice_step(f64::INFINITY), None);
    }

    #[test]
    fn degenerate_ranges_never_fail() {
        // All values equal.
        let t = nice_ticks(3.0, 3.0, 5);
        check(&t);
        assert!(t.min <= 3.0 && t.max >= 3.0);
        let t = nice_ticks(0.0, 0.0, 5);
        check(&t);
        assert!(t.min <= 0.0 && t.max >= 0.0);
        let t = nice_ticks(-2.5e-9, -2.5e-9, 5);
        check(&t);
        // Reversed, non-finite and empty inputs.
        check(&nice_ticks(10.0, -10.0, 4));
        check(&nice_ticks(f64::NAN, f64::NAN, 5));
        check(&nice_ticks(f64::NEG_INFINITY, f64::INFINITY, 5));
        check(&nice_ticks(f64::NAN, 4.0, 5));
        check(&nice_ticks(1.0, 2.0, 0));
        // Extremes: huge span, huge magnitude, tiny span, subnormals.
        check(&nice_ticks(-f64::MAX, f64::MAX, 5));
        check(&nice_ticks(f64::MAX, f64::MAX, 5));
        check(&nice_ticks(1e300, 1.0000001e300, 5));
        check(&nice_ticks(1.0, 1.0 + 1e-15, 5));
        check(&nice_ticks(0.0, 5e-324, 5));
        check(&nice_ticks(1e16, 1e16 + 4.0, 5));
        check(&nice_ticks(0.0, 1.0, usize::MAX));
    }

    #[test]
    fn finite_range_filters_non_finite_values() {
        assert_eq!(finite_range([]), None);
        assert_eq!(finite_range([f64::NAN, f64::INFINITY]), None);
        assert_eq!(
            finite_range([2.0, f64::NAN, -1.0, f64::NEG_INFINITY, 5.0]),
            Some((-1.0, 5.0))
        );
    }

    #[test]
    fn tick_labels_are_tidy() {
        assert_eq!(format_tick(-0.0, 1.0), "0");
        assert_eq!(format_tick(-1e-17, 0.1), "0.0");
        assert_eq!(format_tick(0.30000000000000004, 0.1), "0.3");
        assert_eq!(format_tick(2.5e7, 5e6), "2.5e7");
        assert_eq!(format_tick(0.00002, 0.00001), "2e-5");
        assert_eq!(format_tick(f64::NAN, 1.0), "");
        assert_eq!(format_tick(3.0, f64::NAN), "3");
    }

    #[test]
    fn scale_maps_ends_and_inverts() {
        let s = LinearScale::new((0.0, 10.0), (40.0, 440.0));
        assert_eq!(s.map(0.0), 40.0);
        assert_eq!(s.map(10.0), 440.0);
        assert_eq!(s.map(5.0), 240.0);
        assert!((s.invert(240.0) - 5.0).abs() < 1e-9);

        // A y axis: larger values are higher up, i.e. smaller pixels.
        let y = LinearScale::new((-1.0, 1.0), (300.0, 20.0));
        assert_eq!(y.map(-1.0), 300.0);
        assert_eq!(y.map(1.0), 20.0);
        assert_eq!(y.map(0.0), 160.0);
        assert!((y.invert(20.0) - 1.0).abs() < 1e-9);

        // Degenerate domain and range do not divide by zero.
        let d = LinearScale::new((2.0, 2.0), (0.0, 100.0));
        assert_eq!(d.map(2.0), 50.0);
        assert_eq!(d.map(f64::NAN), 50.0);
        let r = LinearScale::new((0.0, 1.0), (7.0, 7.0));
        assert_eq!(r.map(0.5), 7.0);
        assert_eq!(r.invert(7.0), 0.0);
        assert!(s.map(f64::NAN).is_nan());
    }
}
