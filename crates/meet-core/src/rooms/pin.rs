//! Telephony PIN codes (domain.md §8): the random draw only; trying again on
//! collisions with existing rooms is the caller's business.

use crate::ports::Random;

/// Shorter PINs are refused: too easy to guess.
pub const MIN_PIN_LENGTH: u64 = 4;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PinError {
    #[error("PIN code length must be at least 4 digits for minimal security")]
    TooShort { length: u64 },
}

/// A PIN of `length` digits, uniformly drawn from `[0, 10^length)` and
/// left-padded with zeros (12345 → `0000012345` for length 10).
///
/// The digits are drawn one at a time, each uniform over 0–9: writing a
/// uniform integer of `[0, 10^length)` with `length` digits gives exactly
/// such independent digits, and this way works for any length without big
/// integers.
pub fn generate_pin(length: u64, random: &dyn Random) -> Result<String, PinError> {
    if length < MIN_PIN_LENGTH {
        return Err(PinError::TooShort { length });
    }
    let mut pin = String::new();
    for _ in 0..length {
        pin.push(random_digit(random));
    }
    Ok(pin)
}

/// One uniform decimal digit. Bytes from 250 up are redrawn: keeping them
/// would make 0–5 likelier than 6–9 (256 is not a multiple of 10).
fn random_digit(random: &dyn Random) -> char {
    let mut byte = [0u8; 1];
    loop {
        random.fill(&mut byte);
        if byte[0] < 250 {
            return char::from(b'0' + byte[0] % 10);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::VecDeque;

    /// Hands out the given bytes in order, then panics.
    struct Scripted(RefCell<VecDeque<u8>>);

    impl Scripted {
        fn new(bytes: &[u8]) -> Scripted {
            Scripted(RefCell::new(bytes.iter().copied().collect()))
        }

        fn left(&self) -> usize {
            self.0.borrow().len()
        }
    }

    impl Random for Scripted {
        fn fill(&self, buffer: &mut [u8]) {
            for byte in buffer {
                *byte = self.0.borrow_mut().pop_front().expect("script exhausted");
            }
        }
    }

    #[test]
    fn too_short_lengths_are_refused() {
        let random = Scripted::new(&[]);
        for length in [0, 1, 3] {
            let error = generate_pin(length, &random).unwrap_err();
            assert_eq!(error, PinError::TooShort { length });
            assert_eq!(
                error.to_string(),
                "PIN code length must be at least 4 digits for minimal security"
            );
        }
    }

    #[test]
    fn keeps_leading_zeros() {
        let random = Scripted::new(&[0, 10, 20, 30, 40, 1, 2, 3, 4, 5]);
        assert_eq!(generate_pin(10, &random).unwrap(), "0000012345");
        assert_eq!(random.left(), 0);
    }

    #[test]
    fn has_the_requested_length() {
        let random = Scripted::new(&[9, 19, 29, 39, 1, 2, 3, 4, 5, 6]);
        assert_eq!(generate_pin(4, &random).unwrap(), "9999");
        assert_eq!(generate_pin(6, &random).unwrap(), "123456");
    }

    #[test]
    fn redraws_bytes_that_would_bias_the_digits() {
        let random = Scripted::new(&[250, 255, 3, 249, 252, 251, 100, 17]);
        assert_eq!(generate_pin(4, &random).unwrap(), "3907");
        assert_eq!(random.left(), 0);
    }

    #[test]
    fn every_digit_value_can_appear() {
        let bytes: Vec<u8> = (0..=255).collect();
        let random = Scripted::new(&bytes);
        let pin = generate_pin(250, &random).unwrap();
        for digit in '0'..='9' {
            assert_eq!(pin.chars().filter(|&c| c == digit).count(), 25);
        }
    }
}
