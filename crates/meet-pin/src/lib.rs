//! Telephony PINs that are unique by construction.
//!
//! A room's PIN is `permutation(counter)`, where `counter` is the next value of a
//! per-namespace counter the caller takes atomically in the database (0 for the first
//! room, then 1, 2, …) and `permutation` is a keyed pseudorandom permutation of
//! `[0, 10^length)`. Distinct counters give distinct PINs, so allocation never retries;
//! without the key the PINs are unpredictable. When the counter reaches `10^length`
//! the namespace is full and [`PinPermutation::pin_for`] says so instead of looping.
//!
//! The permutation is a balanced Feistel network over the smallest power of two with
//! an even number of bits that holds `10^length` values, with an HMAC-SHA-256 round
//! function, made a permutation of `[0, 10^length)` by cycle walking (apply the network
//! again until the value falls inside the range). Each namespace (the default one, or a
//! telephony trunk) and each length derives its own round key from the secret, so their
//! permutations are independent.

use hmac::{Hmac, Mac};
use sha2::digest::generic_array::GenericArray;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Shortest PIN accepted: upstream refuses anything below 4 digits.
pub const MIN_LENGTH: u32 = 4;
/// Longest PIN: `10^18` values still fit a 60-bit Feistel domain inside a `u64`.
pub const MAX_LENGTH: u32 = 18;
/// Feistel rounds; FF1 uses 10 for the same kind of small domains.
const ROUNDS: u8 = 10;
/// Domain separation of the round-key derivation (bump the version to re-key every PIN).
const DERIVATION_LABEL: &[u8] = b"meet telephony pin permutation v1";

/// Why a permutation cannot be built or a PIN cannot be given. Never contains the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PinError {
    #[error("PIN code length must be at least {MIN_LENGTH} digits for minimal security (got {0})")]
    LengthTooShort(u32),
    #[error("PIN code length must be at most {MAX_LENGTH} digits (got {0})")]
    LengthTooLong(u32),
    #[error("the telephony PIN secret (room_telephony_pin_secret) is empty")]
    EmptySecret,
    #[error(
        "no telephony PIN left: all {capacity} PINs of {length} digits of this namespace are taken"
    )]
    NamespaceFull { length: u32, capacity: u64 },
    #[error("not a PIN of {length} digits")]
    NotAPin { length: u32 },
}

/// A keyed permutation of the PINs of one length in one namespace.
#[derive(Clone)]
pub struct PinPermutation {
    /// HMAC-SHA-256 keyed with the derived round key, key schedule precomputed.
    round_mac: RoundMac,
    length: u32,
    capacity: u64,
    half_bits: u32,
    half_mask: u64,
}

impl std::fmt::Debug for PinPermutation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The round key stays out of logs.
        f.debug_struct("PinPermutation")
            .field("length", &self.length)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl PinPermutation {
    /// The permutation of `length`-digit PINs of `namespace` (`""` for the default
    /// namespace, a trunk's identifier otherwise) under `secret`.
    pub fn new(secret: &[u8], length: u32, namespace: &str) -> Result<Self, PinError> {
        if length < MIN_LENGTH {
            return Err(PinError::LengthTooShort(length));
        }
        if length > MAX_LENGTH {
            return Err(PinError::LengthTooLong(length));
        }
        if secret.is_empty() {
            return Err(PinError::EmptySecret);
        }
        let capacity = 10u64.pow(length);
        // Bits needed for `capacity - 1`, rounded up to an even number.
        let bits = u64::BITS - (capacity - 1).leading_zeros();
        let half_bits = bits.div_ceil(2);

        let mut derivation =
            HmacSha256::new_from_slice(secret).map_err(|_| PinError::EmptySecret)?;
        derivation.update(DERIVATION_LABEL);
        derivation.update(&[0, length as u8]);
        // Length-prefixed so no two (length, namespace) pairs feed the same bytes.
        derivation.update(&(namespace.len() as u64).to_be_bytes());
        derivation.update(namespace.as_bytes());
        let round_key: [u8; 32] = derivation.finalize().into_bytes().into();
        let round_mac = RoundMac::new(&round_key);

        Ok(Self {
            round_mac,
            length,
            capacity,
            half_bits,
            half_mask: (1u64 << half_bits) - 1,
        })
    }

    /// Digits of every PIN.
    pub fn length(&self) -> u32 {
        self.length
    }

    /// How many PINs the namespace holds: `10^length`; counters run from 0 below it.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// The PIN of the `counter`-th room of the namespace (0-based), as a number.
    pub fn pin_value(&self, counter: u64) -> Result<u64, PinError> {
        if counter >= self.capacity {
            return Err(self.full());
        }
        // Cycle walking: the walk starts inside [0, capacity) and the network is a
        // permutation of the larger domain, so it comes back inside the range (at the
        // latest at `counter` itself); on average after fewer than 4 steps.
        let mut value = self.encrypt(counter);
        while value >= self.capacity {
            value = self.encrypt(value);
        }
        Ok(value)
    }

    /// The PIN of the `counter`-th room of the namespace (0-based), zero-padded to
    /// `length` digits. `NamespaceFull` once `counter >= capacity()`.
    pub fn pin_for(&self, counter: u64) -> Result<String, PinError> {
        let value = self.pin_value(counter)?;
        Ok(format!("{value:0width$}", width = self.length as usize))
    }

    /// The counter a PIN was given for: the inverse of [`Self::pin_for`]. Accepts
    /// exactly `length` ASCII digits.
    pub fn counter_of(&self, pin: &str) -> Result<u64, PinError> {
        let not_a_pin = PinError::NotAPin {
            length: self.length,
        };
        if pin.len() != self.length as usize || !pin.bytes().all(|b| b.is_ascii_digit()) {
            return Err(not_a_pin);
        }
        let mut value: u64 = pin.parse().map_err(|_| not_a_pin)?;
        value = self.decrypt(value);
        while value >= self.capacity {
            value = self.decrypt(value);
        }
        Ok(value)
    }

    fn full(&self) -> PinError {
        PinError::NamespaceFull {
            length: self.length,
            capacity: self.capacity,
        }
    }

    fn round(&self, round: u8, half: u64) -> u64 {
        let mut message = [0u8; 9];
        message[0] = round;
        message[1..].copy_from_slice(&half.to_be_bytes());
        self.round_mac.tag_prefix(&message) & self.half_mask
    }

    fn encrypt(&self, value: u64) -> u64 {
        let mut left = value >> self.half_bits;
        let mut right = value & self.half_mask;
        for round in 0..ROUNDS {
            let next_right = left ^ self.round(round, right);
            left = right;
            right = next_right;
        }
        (left << self.half_bits) | right
    }

    fn decrypt(&self, value: u64) -> u64 {
        let mut left = value >> self.half_bits;
        let mut right = value & self.half_mask;
        for round in (0..ROUNDS).rev() {
            let previous_left = right ^ self.round(round, left);
            right = left;
            left = previous_left;
        }
        (left << self.half_bits) | right
    }
}

/// SHA-256's initial hash value (FIPS 180-4, 5.3.3).
const SHA256_IV: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// HMAC-SHA-256 (RFC 2104) of a 9-byte message under a 32-byte key, with the states after
/// the `key ^ ipad` and `key ^ opad` blocks computed once: each tag then costs exactly
/// two SHA-256 compressions and no allocation, where `Hmac::clone` + `finalize` also
/// copy buffers. Checked against the `hmac` crate in the tests.
#[derive(Clone)]
struct RoundMac {
    inner: [u32; 8],
    outer: [u32; 8],
}

impl RoundMac {
    const BLOCK: usize = 64;

    fn new(key: &[u8; 32]) -> Self {
        let mut inner_pad = [0x36u8; Self::BLOCK];
        let mut outer_pad = [0x5cu8; Self::BLOCK];
        for (index, byte) in key.iter().enumerate() {
            inner_pad[index] ^= byte;
            outer_pad[index] ^= byte;
        }
        let mut inner = SHA256_IV;
        let mut outer = SHA256_IV;
        compress(&mut inner, &inner_pad);
        compress(&mut outer, &outer_pad);
        Self { inner, outer }
    }

    /// The first 8 bytes of the tag, big-endian.
    fn tag_prefix(&self, message: &[u8; 9]) -> u64 {
        // Inner hash: the message after the pad block, then SHA-256 padding.
        let mut block = [0u8; Self::BLOCK];
        block[..message.len()].copy_from_slice(message);
        block[message.len()] = 0x80;
        let inner_bits = ((Self::BLOCK + message.len()) * 8) as u64;
        block[56..].copy_from_slice(&inner_bits.to_be_bytes());
        let mut inner = self.inner;
        compress(&mut inner, &block);

        // Outer hash: the 32-byte inner digest after the pad block.
        let mut block = [0u8; Self::BLOCK];
        for (chunk, word) in block.chunks_exact_mut(4).zip(inner) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
        block[32] = 0x80;
        let outer_bits = ((Self::BLOCK + 32) * 8) as u64;
        block[56..].copy_from_slice(&outer_bits.to_be_bytes());
        let mut outer = self.outer;
        compress(&mut outer, &block);
        (u64::from(outer[0]) << 32) | u64::from(outer[1])
    }
}

fn compress(state: &mut [u32; 8], block: &[u8; RoundMac::BLOCK]) {
    sha2::compress256(state, std::slice::from_ref(GenericArray::from_slice(block)));
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"a test secret of reasonable size";

    fn all_pins(permutation: &PinPermutation) -> Vec<u64> {
        (0..permutation.capacity())
            .map(|counter| permutation.pin_value(counter).unwrap())
            .collect()
    }

    fn assert_bijection(length: u32) {
        let permutation = PinPermutation::new(SECRET, length, "").unwrap();
        let capacity = permutation.capacity() as usize;
        let mut seen = vec![false; capacity];
        for counter in 0..permutation.capacity() {
            let pin = permutation.pin_value(counter).unwrap();
            assert!(pin < permutation.capacity(), "{pin} out of range");
            assert!(
                !seen[pin as usize],
                "PIN {pin} given twice (length {length})"
            );
            seen[pin as usize] = true;
        }
        // capacity distinct values inside [0, capacity): every PIN is reached.
        assert!(seen.iter().all(|&hit| hit));
    }

    #[test]
    fn the_round_function_is_hmac_sha256() {
        for key_seed in 0u8..8 {
            let key: [u8; 32] = std::array::from_fn(|i| key_seed.wrapping_mul(31) ^ i as u8);
            let fast = RoundMac::new(&key);
            for value in [0u64, 1, 0x7f, 0x1234_5678_9abc_def0, u64::MAX] {
                for round in [0u8, 1, 9, 255] {
                    let mut message = [round; 9];
                    message[1..].copy_from_slice(&value.to_be_bytes());
                    let mut reference = HmacSha256::new_from_slice(&key).unwrap();
                    reference.update(&message);
                    let tag = reference.finalize().into_bytes();
                    let mut prefix = [0u8; 8];
                    prefix.copy_from_slice(&tag[..8]);
                    assert_eq!(fast.tag_prefix(&message), u64::from_be_bytes(prefix));
                }
            }
        }
    }

    #[test]
    fn length_4_is_a_bijection() {
        assert_bijection(4);
    }

    #[test]
    fn length_5_is_a_bijection() {
        assert_bijection(5);
    }

    #[test]
    fn length_6_is_a_bijection() {
        assert_bijection(6);
    }

    #[test]
    fn counter_of_inverts_pin_for() {
        let permutation = PinPermutation::new(SECRET, 4, "trunk-a").unwrap();
        for counter in 0..permutation.capacity() {
            let pin = permutation.pin_for(counter).unwrap();
            assert_eq!(permutation.counter_of(&pin).unwrap(), counter);
        }
        let long = PinPermutation::new(SECRET, 18, "").unwrap();
        for counter in [0, 1, 999_999_999_999_999_999, 123_456_789_012_345_678] {
            let pin = long.pin_for(counter).unwrap();
            assert_eq!(long.counter_of(&pin).unwrap(), counter);
        }
    }

    #[test]
    fn pins_are_zero_padded_to_the_length() {
        let permutation = PinPermutation::new(SECRET, 10, "").unwrap();
        let mut padded = 0;
        for counter in 0..2_000 {
            let pin = permutation.pin_for(counter).unwrap();
            assert_eq!(pin.len(), 10);
            assert!(pin.bytes().all(|b| b.is_ascii_digit()));
            assert_eq!(
                pin.parse::<u64>().unwrap(),
                permutation.pin_value(counter).unwrap()
            );
            padded += usize::from(pin.starts_with('0'));
        }
        // About a tenth of uniformly spread PINs start with 0.
        assert!((100..400).contains(&padded), "{padded} padded PINs");
    }

    #[test]
    fn the_same_inputs_give_the_same_pins() {
        let a = PinPermutation::new(SECRET, 10, "").unwrap();
        let b = PinPermutation::new(SECRET, 10, "").unwrap();
        for counter in 0..100 {
            assert_eq!(a.pin_for(counter).unwrap(), b.pin_for(counter).unwrap());
        }
    }

    #[test]
    fn pinned_values_do_not_change_between_releases() {
        // PINs already handed out must stay valid: the derivation is part of the format.
        let permutation = PinPermutation::new(b"secret", 10, "").unwrap();
        let first: Vec<String> = (0..3).map(|c| permutation.pin_for(c).unwrap()).collect();
        assert_eq!(first, PINNED_SECRET_10);
    }

    const PINNED_SECRET_10: [&str; 3] = ["2385828921", "0435651216", "4579388095"];

    #[test]
    fn keys_namespaces_and_lengths_give_independent_permutations() {
        let base = all_pins(&PinPermutation::new(SECRET, 4, "").unwrap());
        let others = [
            PinPermutation::new(b"another secret", 4, "").unwrap(),
            PinPermutation::new(SECRET, 4, "trunk-1").unwrap(),
            PinPermutation::new(SECRET, 4, "trunk-2").unwrap(),
        ];
        for other in &others {
            let pins = all_pins(other);
            let same = base.iter().zip(&pins).filter(|(a, b)| a == b).count();
            // Independent random permutations agree on about one point.
            assert!(same < 10, "{same} fixed points shared with {other:?}");
        }
        let trunk_1 = all_pins(&others[1]);
        let trunk_2 = all_pins(&others[2]);
        assert_ne!(trunk_1, trunk_2);
    }

    #[test]
    fn the_permutation_is_not_the_identity_or_monotonic() {
        let pins = all_pins(&PinPermutation::new(SECRET, 4, "").unwrap());
        let fixed = pins
            .iter()
            .enumerate()
            .filter(|(i, &p)| *i as u64 == p)
            .count();
        assert!(fixed < 10, "{fixed} fixed points");
        let ascending = pins.windows(2).filter(|w| w[0] < w[1]).count();
        // A random order ascends about half the time.
        assert!((4_000..6_000).contains(&ascending), "{ascending} ascents");
    }

    #[test]
    fn a_full_namespace_is_an_error_not_a_loop() {
        let permutation = PinPermutation::new(SECRET, 4, "").unwrap();
        assert_eq!(permutation.capacity(), 10_000);
        assert!(permutation.pin_for(9_999).is_ok());
        let full = PinError::NamespaceFull {
            length: 4,
            capacity: 10_000,
        };
        assert_eq!(permutation.pin_for(10_000), Err(full.clone()));
        assert_eq!(permutation.pin_value(u64::MAX), Err(full));
        let long = PinPermutation::new(SECRET, 18, "").unwrap();
        assert!(long.pin_for(10u64.pow(18)).is_err());
    }

    #[test]
    fn lengths_outside_4_to_18_and_empty_secrets_are_refused() {
        assert_eq!(
            PinPermutation::new(SECRET, 3, "").unwrap_err(),
            PinError::LengthTooShort(3)
        );
        assert_eq!(
            PinPermutation::new(SECRET, 0, "").unwrap_err(),
            PinError::LengthTooShort(0)
        );
        assert_eq!(
            PinPermutation::new(SECRET, 19, "").unwrap_err(),
            PinError::LengthTooLong(19)
        );
        assert_eq!(
            PinPermutation::new(b"", 10, "").unwrap_err(),
            PinError::EmptySecret
        );
        assert!(PinError::LengthTooShort(3)
            .to_string()
            .starts_with("PIN code length must be at least 4 digits for minimal security"));
    }

    #[test]
    fn counter_of_refuses_what_is_not_a_pin() {
        let permutation = PinPermutation::new(SECRET, 4, "").unwrap();
        for bad in ["", "123", "12345", "12a4", "+123", " 123", "١٢٣٤"] {
            assert_eq!(
                permutation.counter_of(bad),
                Err(PinError::NotAPin { length: 4 }),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn debug_output_has_no_key_material() {
        let permutation = PinPermutation::new(SECRET, 6, "trunk").unwrap();
        let shown = format!("{permutation:?}");
        assert_eq!(shown, "PinPermutation { length: 6, capacity: 1000000, .. }");
    }
}
