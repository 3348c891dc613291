//! Exponential restart backoff with jitter and a reset after a stable period (Akka's backoff
//! supervisor), as pure functions plus a tiny seeded random source so tests are deterministic.

use std::time::Duration;

/// Restart delays: `min * multiplier^attempt`, plus up to `jitter * delay` at random, never more
/// than `max`. A child that ran for `reset_after` since its last restart starts again at `min`.
///
/// ```
/// use supervision::Backoff;
/// use std::time::Duration;
/// let b = Backoff::new(Duration::from_millis(100), Duration::from_secs(10)).jitter(0.0);
/// assert_eq!(b.delay(0, 0.5), Duration::from_millis(100));
/// assert_eq!(b.delay(3, 0.5), Duration::from_millis(800));
/// assert_eq!(b.delay(30, 0.5), Duration::from_secs(10));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    /// The first delay.
    pub min: Duration,
    /// The largest delay, jitter included.
    pub max: Duration,
    /// Growth per attempt (2.0 doubles).
    pub multiplier: f64,
    /// Random extra, as a fraction of the delay (0.2 adds up to 20 %).
    pub jitter: f64,
    /// A child that ran this long since its last restart is back to the first delay.
    pub reset_after: Duration,
}

impl Backoff {
    /// Doubling from `min` to `max`, 20 % jitter, reset after `4 * max` (at least 1 s) of stable
    /// running.
    pub fn new(min: Duration, max: Duration) -> Self {
        let max = max.max(min);
        Self {
            min,
            max,
            multiplier: 2.0,
            jitter: 0.2,
            reset_after: (max * 4).max(Duration::from_secs(1)),
        }
    }

    /// Sets the jitter fraction (clamped to 0..=1).
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.jitter = fraction.clamp(0.0, 1.0);
        self
    }

    /// Sets the growth factor (at least 1).
    pub fn multiplier(mut self, factor: f64) -> Self {
        self.multiplier = factor.max(1.0);
        self
    }

    /// Sets the stable period after which the delay resets.
    pub fn reset_after(mut self, period: Duration) -> Self {
        self.reset_after = period;
        self
    }

    /// The delay before restart number `attempt` (0-based), given a random sample in `[0, 1)`.
    pub fn delay(&self, attempt: u32, random: f64) -> Duration {
        let base = self.min.as_secs_f64() * self.multiplier.powi(attempt.min(64) as i32);
        let jittered = base * (1.0 + self.jitter * random.clamp(0.0, 1.0));
        let capped = jittered.min(self.max.as_secs_f64());
        Duration::from_secs_f64(capped.max(0.0))
    }
}

/// SplitMix64: a small, fast, seedable generator for jitter. Not for cryptography.
#[derive(Clone, Debug)]
pub(crate) struct Jitter(u64);

impl Jitter {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// A sample in `[0, 1)`.
    pub(crate) fn sample(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_are_bounded_with_jitter() {
        let b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let mut rng = Jitter::new(7);
        let mut prev_base = Duration::ZERO;
        for attempt in 0..20 {
            let r = rng.sample();
            assert!((0.0..1.0).contains(&r));
            let d = b.delay(attempt, r);
            let base = b.delay(attempt, 0.0);
            assert!(d >= base && d <= b.max, "attempt {attempt}: {d:?}");
            assert!(d.as_secs_f64() <= base.as_secs_f64() * 1.2 + 1e-9);
            assert!(base >= prev_base);
            prev_base = base;
        }
        assert_eq!(b.delay(19, 0.9), Duration::from_secs(2));
    }

    #[test]
    fn jitter_is_deterministic_per_seed_and_spread() {
        let a: Vec<f64> = {
            let mut r = Jitter::new(1);
            (0..100).map(|_| r.sample()).collect()
        };
        let b: Vec<f64> = {
            let mut r = Jitter::new(1);
            (0..100).map(|_| r.sample()).collect()
        };
        let c: Vec<f64> = {
            let mut r = Jitter::new(2);
            (0..100).map(|_| r.sample()).collect()
        };
        assert_eq!(a, b);
        assert_ne!(a, c);
        let mean = a.iter().sum::<f64>() / 100.0;
        assert!((0.35..0.65).contains(&mean), "{mean}");
    }
}
