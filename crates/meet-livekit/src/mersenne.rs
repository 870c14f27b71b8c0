//! CPython's `random.Random`, as far as participant colours need it: the
//! MT19937 generator comes from `rand_mt`; this module adds CPython's way of
//! seeding it with an integer and its `randint` sampling.

use rand_mt::Mt;

pub(crate) struct CpythonRandom {
    twister: Mt,
}

impl CpythonRandom {
    /// `random.seed(n)` for a non-negative integer `n`: CPython splits `n`
    /// into 32-bit words, least significant first, and feeds them to
    /// `init_by_array`. Any seed below 2³² is the one-word key `[n]`
    /// (including 0, whose key is `[0]`, not the empty key).
    pub(crate) fn from_seed(seed: u32) -> CpythonRandom {
        CpythonRandom {
            twister: Mt::new_with_key([seed]),
        }
    }

    /// `getrandbits(bits)` for `1 <= bits <= 32`: the top bits of one output.
    fn bits(&mut self, bits: u32) -> u32 {
        self.twister.next_u32() >> (32 - bits)
    }

    /// `randint(low, high)`, both ends included, as CPython draws it:
    /// `_randbelow` rejection-samples `getrandbits(bit_length(n))` until the
    /// value falls below the range size `n`. Requires `low <= high` and a
    /// range small enough for 32 bits (the colour ranges are tiny).
    pub(crate) fn randint(&mut self, low: u32, high: u32) -> u32 {
        let size = high - low + 1;
        let bits = u32::BITS - size.leading_zeros();
        loop {
            let candidate = self.bits(bits);
            if candidate < size {
                return low + candidate;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_outputs_for_the_reference_key() {
        // First outputs of mt19937ar.c's own test, seeded with
        // init_by_array({0x123, 0x234, 0x345, 0x456}): the key seeding
        // CPython uses.
        let mut twister = Mt::new_with_key([0x123, 0x234, 0x345, 0x456]);
        let first: Vec<u32> = (0..5).map(|_| twister.next_u32()).collect();
        assert_eq!(
            first,
            [
                1_067_595_299,
                955_945_823,
                477_289_528,
                4_107_218_783,
                4_228_976_476
            ]
        );
    }

    #[test]
    fn matches_cpython_random_seed_outputs() {
        // `random.seed(0); [random.getrandbits(32) for _ in range(3)]`
        let mut random = CpythonRandom::from_seed(0);
        let first: Vec<u32> = (0..3).map(|_| random.bits(32)).collect();
        assert_eq!(first, [3_626_764_237, 1_654_615_998, 3_255_389_356]);
        // `random.seed(42); [random.randint(0, 360) for _ in range(3)]`
        let mut random = CpythonRandom::from_seed(42);
        let draws: Vec<u32> = (0..3).map(|_| random.randint(0, 360)).collect();
        assert_eq!(draws, [327, 57, 12]);
    }

    #[test]
    fn outputs_continue_across_state_regeneration() {
        // `random.seed(1); [random.getrandbits(32) for _ in range(1000)][-1]`
        let mut random = CpythonRandom::from_seed(1);
        let last = (0..1000).map(|_| random.bits(32)).last();
        assert_eq!(last, Some(1_877_627_338));
    }
}
