//! The MT19937 Mersenne Twister, seeded and sampled the way CPython's
//! `random` module does it, so that colours match the upstream backend's.

const STATE_WORDS: usize = 624;
const SHIFT_SIZE: usize = 397;
const MATRIX_A: u32 = 0x9908_b0df;
const UPPER_MASK: u32 = 0x8000_0000;
const LOWER_MASK: u32 = 0x7fff_ffff;

pub(crate) struct MersenneTwister {
    state: [u32; STATE_WORDS],
    /// Position of the next state word to temper; `STATE_WORDS` means the
    /// state must be regenerated first.
    index: usize,
}

impl MersenneTwister {
    /// `random.seed(n)` for a non-negative integer `n`: CPython splits `n`
    /// into 32-bit words, least significant first, and feeds them to
    /// `init_by_array`. Any seed below 2³² is the one-word key `[n]`
    /// (including 0, whose key is `[0]`, not the empty key).
    pub(crate) fn from_seed(seed: u32) -> MersenneTwister {
        MersenneTwister::from_key(&[seed])
    }

    /// The reference `init_by_array`.
    fn from_key(key: &[u32]) -> MersenneTwister {
        let mut twister = MersenneTwister::from_word(19_650_218);
        let state = &mut twister.state;
        let mut i = 1;
        let mut j = 0;
        for _ in 0..STATE_WORDS.max(key.len()) {
            let previous = state[i - 1] ^ (state[i - 1] >> 30);
            state[i] = (state[i] ^ previous.wrapping_mul(1_664_525))
                .wrapping_add(key[j])
                .wrapping_add(j as u32);
            i += 1;
            j += 1;
            if i >= STATE_WORDS {
                state[0] = state[STATE_WORDS - 1];
                i = 1;
            }
            if j >= key.len() {
                j = 0;
            }
        }
        for _ in 0..STATE_WORDS - 1 {
            let previous = state[i - 1] ^ (state[i - 1] >> 30);
            state[i] = (state[i] ^ previous.wrapping_mul(1_566_083_941)).wrapping_sub(i as u32);
            i += 1;
            if i >= STATE_WORDS {
                state[0] = state[STATE_WORDS - 1];
                i = 1;
            }
        }
        // Guarantees a non-zero state whatever the key.
        state[0] = 0x8000_0000;
        twister
    }

    /// The reference `init_genrand`.
    fn from_word(seed: u32) -> MersenneTwister {
        let mut state = [0u32; STATE_WORDS];
        state[0] = seed;
        for i in 1..STATE_WORDS {
            let previous = state[i - 1] ^ (state[i - 1] >> 30);
            state[i] = previous.wrapping_mul(1_812_433_253).wrapping_add(i as u32);
        }
        MersenneTwister {
            state,
            index: STATE_WORDS,
        }
    }

    /// The next 32-bit output (`genrand_uint32`).
    pub(crate) fn next_u32(&mut self) -> u32 {
        if self.index >= STATE_WORDS {
            self.regenerate();
        }
        let mut y = self.state[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^= y >> 18;
        y
    }

    fn regenerate(&mut self) {
        for k in 0..STATE_WORDS {
            let y = (self.state[k] & UPPER_MASK) | (self.state[(k + 1) % STATE_WORDS] & LOWER_MASK);
            let mag = if y & 1 == 0 { 0 } else { MATRIX_A };
            self.state[k] = self.state[(k + SHIFT_SIZE) % STATE_WORDS] ^ (y >> 1) ^ mag;
        }
        self.index = 0;
    }

    /// `getrandbits(bits)` for `1 <= bits <= 32`: the top bits of one output.
    fn bits(&mut self, bits: u32) -> u32 {
        self.next_u32() >> (32 - bits)
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
        // init_by_array({0x123, 0x234, 0x345, 0x456}).
        let mut twister = MersenneTwister::from_key(&[0x123, 0x234, 0x345, 0x456]);
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
        let mut twister = MersenneTwister::from_seed(0);
        let first: Vec<u32> = (0..3).map(|_| twister.next_u32()).collect();
        assert_eq!(first, [3_626_764_237, 1_654_615_998, 3_255_389_356]);
        // `random.seed(42); [random.randint(0, 360) for _ in range(3)]`
        let mut twister = MersenneTwister::from_seed(42);
        let draws: Vec<u32> = (0..3).map(|_| twister.randint(0, 360)).collect();
        assert_eq!(draws, [327, 57, 12]);
    }

    #[test]
    fn outputs_continue_across_state_regeneration() {
        // `random.seed(1); [random.getrandbits(32) for _ in range(1000)][-1]`
        let mut twister = MersenneTwister::from_seed(1);
        let last = (0..1000).map(|_| twister.next_u32()).last();
        assert_eq!(last, Some(1_877_627_338));
    }
}
