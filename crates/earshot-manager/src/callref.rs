//! Call references: the opaque handle clients use to name a call (`listen <ref> …`).
//!
//! VoIPmonitor uses the call object's memory address, which leaks layout and gets reused by the
//! next call (the recording shows it). Ours are random-looking 48-bit values that are unique for
//! the process lifetime: a keyed permutation (Feistel network) of a counter, so uniqueness needs no
//! bookkeeping and the next value cannot be guessed from the previous ones without the key.

use std::fmt;
use std::str::FromStr;
use thiserror::Error;

/// Width of generated references. 48 bits prints like a pointer (12 hex digits) and leaves
/// 2^48 distinct values, far beyond what one process will ever track.
const REF_BITS: u32 = 48;
const HALF_BITS: u32 = REF_BITS / 2;
const HALF_MASK: u64 = (1 << HALF_BITS) - 1;
const FEISTEL_ROUNDS: usize = 4;

/// A call reference. `Display` gives lowercase hex without prefix; [`CallRef::to_prefixed`] gives
/// the `0x…` form VoIPmonitor's `listcalls` JSON uses. Hash it for O(1) look-ups.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallRef(u64);

#[derive(Debug, Error, PartialEq, Eq)]
pub enum CallRefError {
    #[error("empty call reference")]
    Empty,
    #[error("call reference is not hexadecimal")]
    NotHex,
    #[error("call reference longer than 64 bits")]
    TooLong,
    #[error("call reference 0 is never issued")]
    Zero,
}

impl CallRef {
    /// Wraps a raw value; mostly for tests and for servers that persist references.
    pub const fn from_u64(v: u64) -> Self {
        CallRef(v)
    }
    pub const fn as_u64(self) -> u64 {
        self.0
    }
    /// `0x`-prefixed lowercase hex, the shape of VoIPmonitor's `%p` references.
    pub fn to_prefixed(self) -> String {
        format!("{:#x}", self.0)
    }
    /// Parses hex with or without a `0x`/`0X` prefix. Decimal is deliberately not accepted
    /// (VoIPmonitor tries decimal first): a digit-only string would be ambiguous.
    pub fn parse(s: &str) -> Result<Self, CallRefError> {
        let s = s.trim();
        let hex = s
            .strip_prefix("0x")
            .or_else(|| s.strip_prefix("0X"))
            .unwrap_or(s);
        if hex.is_empty() {
            return Err(CallRefError::Empty);
        }
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(CallRefError::NotHex);
        }
        // Leading zeros are harmless; only significant digits count against the 64-bit limit.
        let significant = hex.trim_start_matches('0');
        if significant.len() > 16 {
            return Err(CallRefError::TooLong);
        }
        let v = u64::from_str_radix(hex, 16).map_err(|_| CallRefError::TooLong)?;
        if v == 0 {
            return Err(CallRefError::Zero);
        }
        Ok(CallRef(v))
    }
}

impl fmt::Display for CallRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}", self.0)
    }
}

impl FromStr for CallRef {
    type Err = CallRefError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CallRef::parse(s)
    }
}

#[derive(Debug, Error)]
#[error("no randomness for call references: {0}")]
pub struct RandomnessError(String);

/// Issues unique, unpredictable-looking call references.
#[derive(Clone, Debug)]
pub struct CallRefGenerator {
    keys: [u64; FEISTEL_ROUNDS],
    counter: u64,
}

impl CallRefGenerator {
    /// Keyed from the operating system's random source.
    pub fn new() -> Result<Self, RandomnessError> {
        let mut keys = [0u64; FEISTEL_ROUNDS];
        for k in &mut keys {
            *k = getrandom::u64().map_err(|e| RandomnessError(e.to_string()))?;
        }
        Ok(Self { keys, counter: 0 })
    }

    /// Deterministic generator for tests: the same seed gives the same sequence.
    pub fn from_seed(seed: u64) -> Self {
        let mut state = seed;
        let keys = std::array::from_fn(|_| {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            mix64(state)
        });
        Self { keys, counter: 0 }
    }

    /// The next reference. Never 0, never repeated: the Feistel network is a bijection on 48-bit
    /// values and the counter visits each input once (2^48 calls would be needed to wrap).
    pub fn next_ref(&mut self) -> CallRef {
        loop {
            let input = self.counter & ((1 << REF_BITS) - 1);
            self.counter = self.counter.wrapping_add(1);
            let v = self.permute(input);
            if v != 0 {
                return CallRef(v);
            }
        }
    }

    fn permute(&self, input: u64) -> u64 {
        let mut left = (input >> HALF_BITS) & HALF_MASK;
        let mut right = input & HALF_MASK;
        for k in self.keys {
            let next = left ^ (mix64(right ^ k) & HALF_MASK);
            left = right;
            right = next;
        }
        (left << HALF_BITS) | right
    }
}

/// SplitMix64's finaliser: a fast, well-distributed 64-bit mix used as the Feistel round function.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn parses_with_and_without_prefix() {
        let r = CallRef::parse("0x563de480a000").unwrap();
        assert_eq!(r.as_u64(), 0x563de480a000);
        assert_eq!(CallRef::parse("563DE480A000").unwrap(), r);
        assert_eq!(CallRef::parse("0X563de480a000").unwrap(), r);
        assert_eq!(r.to_string(), "563de480a000");
        assert_eq!(r.to_prefixed(), "0x563de480a000");
        assert_eq!(CallRef::parse(&r.to_string()).unwrap(), r);
        assert_eq!(CallRef::parse(&r.to_prefixed()).unwrap(), r);
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(CallRef::parse(""), Err(CallRefError::Empty));
        assert_eq!(CallRef::parse("0x"), Err(CallRefError::Empty));
        assert_eq!(CallRef::parse("xyz"), Err(CallRefError::NotHex));
        assert_eq!(CallRef::parse("0x12g4"), Err(CallRefError::NotHex));
        assert_eq!(CallRef::parse("-12"), Err(CallRefError::NotHex));
        assert_eq!(CallRef::parse("+12"), Err(CallRefError::NotHex));
        assert_eq!(CallRef::parse("0"), Err(CallRefError::Zero));
        assert_eq!(
            CallRef::parse("1ffffffffffffffff"),
            Err(CallRefError::TooLong)
        );
        assert_eq!(CallRef::parse("0000000000000000001").unwrap().as_u64(), 1);
        assert_eq!(CallRef::parse("ébc"), Err(CallRefError::NotHex));
    }

    #[test]
    fn generated_refs_are_unique_nonzero_and_48_bit() {
        let mut g = CallRefGenerator::from_seed(7);
        let mut seen = HashSet::new();
        for _ in 0..200_000 {
            let r = g.next_ref();
            assert_ne!(r.as_u64(), 0);
            assert!(r.as_u64() < 1 << 48);
            assert!(seen.insert(r), "duplicate {r}");
        }
        // Random-looking, not a counter: most refs use the upper bits.
        let high = seen.iter().filter(|r| r.as_u64() >= 1 << 40).count();
        assert!(high > 190_000, "{high}");
    }

    #[test]
    fn seeds_are_deterministic_and_os_generator_works() {
        let a: Vec<_> = {
            let mut g = CallRefGenerator::from_seed(1);
            (0..5).map(|_| g.next_ref()).collect()
        };
        let mut g = CallRefGenerator::from_seed(1);
        let b: Vec<_> = (0..5).map(|_| g.next_ref()).collect();
        assert_eq!(a, b);
        let mut g2 = CallRefGenerator::from_seed(2);
        assert_ne!(a[0], g2.next_ref());
        let mut os = CallRefGenerator::new().expect("OS randomness");
        assert_ne!(os.next_ref(), os.next_ref());
    }

    #[test]
    fn feistel_is_a_bijection_on_a_sample() {
        // Distinct inputs must give distinct outputs; a full 2^48 check is impossible, so sample.
        let g = CallRefGenerator::from_seed(3);
        let outs: HashSet<u64> = (0..1u64 << 16)
            .map(|i| g.permute(i.wrapping_mul(0x1234_5677) & ((1 << 48) - 1)))
            .collect();
        assert_eq!(outs.len(), 1 << 16);
    }
}
