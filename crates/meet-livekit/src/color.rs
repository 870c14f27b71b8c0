//! The colour of a participant, derived from its identity (livekit.md §2.4).
//!
//! Upstream seeds Python's `random` with a hash of the identity, so a given
//! identity always gets the same colour; reproducing the generator exactly
//! keeps colours stable for users who move between the two backends.

use sha1::{Digest, Sha1};

use crate::mersenne::CpythonRandom;

/// `hsl(<hue>, <saturation>%, <lightness>%)` for `identity`.
pub fn color_for_identity(identity: &str) -> String {
    let digest = Sha1::digest(identity.as_bytes());
    // The low 16 bits of the digest read as one big-endian integer are its
    // last two bytes.
    let seed = u16::from_be_bytes([digest[18], digest[19]]);
    let mut random = CpythonRandom::from_seed(u32::from(seed));
    let hue = random.randint(0, 360);
    let saturation = random.randint(50, 75);
    let lightness = random.randint(25, 60);
    format!("hsl({hue}, {saturation}%, {lightness}%)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_upstream_vectors() {
        assert_eq!(
            color_for_identity("2f7f162fe7d1421b90e702bfbfbf8def"),
            "hsl(53, 60%, 47%)"
        );
        assert_eq!(color_for_identity("user0"), "hsl(156, 71%, 54%)");
    }

    #[test]
    fn matches_cpython_for_more_identities() {
        // Computed with CPython 3.11's `random.Random(seed).randint`.
        let cases = [
            ("", "hsl(55, 70%, 42%)"),
            ("a", "hsl(330, 63%, 37%)"),
            ("Anonymous", "hsl(10, 52%, 31%)"),
            ("éléphant", "hsl(169, 65%, 36%)"),
            ("会议", "hsl(221, 75%, 52%)"),
            ("a3f1c2d4-5b6e-4f70-8a9b-0c1d2e3f4a5b", "hsl(23, 57%, 53%)"),
            // SHA-1 ends in 0x0000: seed 0, CPython's one-word key [0].
            ("user21935", "hsl(197, 74%, 51%)"),
        ];
        for (identity, expected) in cases {
            assert_eq!(color_for_identity(identity), expected, "{identity:?}");
        }
    }

    #[test]
    fn stays_in_range() {
        for index in 0..200 {
            let color = color_for_identity(&format!("user{index}"));
            let numbers: Vec<u32> = color
                .trim_start_matches("hsl(")
                .trim_end_matches(')')
                .split(", ")
                .map(|part| part.trim_end_matches('%').parse().unwrap())
                .collect();
            assert!(numbers[0] <= 360, "{color}");
            assert!((50..=75).contains(&numbers[1]), "{color}");
            assert!((25..=60).contains(&numbers[2]), "{color}");
        }
    }
}
