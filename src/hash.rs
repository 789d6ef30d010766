//! **Unstable.** The integer mixing functions corpusql uses wherever it needs cheap,
//! platform-independent pseudo-randomness: SplitMix64 (Steele, Lea and
//! Flood's generator, as in `java.util.SplittableRandom`) and its output
//! finalizer [`mix64`]. The stream order is built from [`mix64`], so these
//! functions are part of the stream's definition: changing one byte of
//! their arithmetic reorders every stream and breaks every saved resume
//! state. The known-answer tests below pin them.
//!
//! This module is public so that tests, benchmarks and tools share one copy;
//! it is **not** part of the stable API and may move (under `corpusql::raw`)
//! or change without notice.

/// The golden-ratio increment of SplitMix64: 2^64 / φ, rounded to odd.
pub const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// SplitMix64's finalizer (Stafford's "Mix13"): a bijection of `u64` in
/// which every input bit flips each output bit with probability about ½.
#[inline]
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One step of SplitMix64: advances `state` by [`GOLDEN_GAMMA`] and returns
/// the mixed new state.
#[inline]
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(GOLDEN_GAMMA);
    mix64(*state)
}

/// A SplitMix64 generator: small, fast, and the same on every platform.
/// Not for cryptography.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    /// A generator whose first output is `splitmix64(&mut seed)`.
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    /// The next 64 pseudo-random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        splitmix64(&mut self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference outputs of SplitMix64 seeded with 0 (those of
    /// `java.util.SplittableRandom` and of the generator's published C code).
    #[test]
    fn splitmix64_matches_the_reference_sequence() {
        let mut s = 0u64;
        assert_eq!(splitmix64(&mut s), 0xe220_a839_7b1d_cdaf);
        assert_eq!(splitmix64(&mut s), 0x6e78_9e6a_a1b9_65f4);
        assert_eq!(splitmix64(&mut s), 0x06c4_5d18_8009_454f);
        assert_eq!(s, GOLDEN_GAMMA.wrapping_mul(3));
        let mut g = SplitMix64::new(0);
        assert_eq!(g.next_u64(), 0xe220_a839_7b1d_cdaf);
    }

    /// Values of the finalizer the stream order is built from, computed by
    /// the arithmetic the streams of corpusql 0.x were written with.
    #[test]
    fn mix64_known_answers() {
        assert_eq!(mix64(0), 0);
        assert_eq!(mix64(1), 0x5692_161d_100b_05e5);
        assert_eq!(mix64(42), 0xa759_ea27_d472_7622);
        assert_eq!(mix64(u64::MAX), 0xb4d0_55fc_f2cb_bd7b);
        assert_eq!(mix64(GOLDEN_GAMMA), 0xe220_a839_7b1d_cdaf);
    }

    #[test]
    fn mix64_is_a_bijection_on_a_sample() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..10_000u64 {
            assert!(seen.insert(mix64(i.wrapping_mul(GOLDEN_GAMMA))));
        }
    }
}
