//! UUIDs as the API sees them: path values and body fields are read the way
//! Python's `uuid.UUID(value)` reads them (it decides which object a URL
//! names), and new ids are random version-4 UUIDs.

use uuid::Uuid;

use crate::ports::Random;

/// A fresh random UUID v4 in its canonical lowercase dashed form.
pub fn new_uuid(random: &dyn Random) -> String {
    let mut bytes = [0u8; 16];
    random.fill(&mut bytes);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .to_string()
}

/// What Python's `str.isspace()` (and so regex `\s` and `int()`) calls
/// whitespace: Unicode `White_Space` plus the ASCII separators 0x1C–0x1F.
pub(crate) fn is_python_whitespace(character: char) -> bool {
    character.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&character)
}

/// The canonical form (lowercase, dashed) of `value` if Python's
/// `uuid.UUID(value)` accepts it, else `None`.
///
/// Python removes every `urn:` and `uuid:`, strips braces from both ends and
/// removes every `-`; what is left must be 32 characters that `int(…, 16)`
/// reads. So `{918689FB038E4E81BF09EFD5902C5F0B}` and
/// `urn:uuid:918689fb-038e-4e81-bf09-efd5902c5f0b` are UUIDs, and so are
/// `int()`'s oddities: surrounding whitespace, a `+` sign, a `0x` prefix and
/// single underscores between digits (fewer than 32 digits then, the value
/// being zero-extended).
///
/// One difference: `int()` also reads non-ASCII decimal digits (Arabic-Indic
/// and the like); they are refused here.
pub fn parse_uuid_like(value: &str) -> Option<String> {
    let hex = value.replace("urn:", "").replace("uuid:", "");
    let hex = hex
        .trim_matches(|character| character == '{' || character == '}')
        .replace('-', "");
    if hex.chars().count() != 32 {
        return None;
    }
    let number = parse_python_hex_int(&hex)?;
    Some(Uuid::from_u128(number).hyphenated().to_string())
}

/// Python's `int(text, 16)` for texts of at most 32 characters (so the value
/// fits in 128 bits), without the non-ASCII digits. A `-` sign cannot occur:
/// [`parse_uuid_like`] removed every dash before.
fn parse_python_hex_int(text: &str) -> Option<u128> {
    let text = text.trim_matches(is_python_whitespace);
    let text = text.strip_prefix('+').unwrap_or(text);
    let digits = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        // After the base prefix, one underscore may come before the digits.
        Some(rest) => rest.strip_prefix('_').unwrap_or(rest),
        None => text,
    };
    let mut number: u128 = 0;
    let mut seen_digit = false;
    let mut after_underscore = false;
    for character in digits.chars() {
        if character == '_' {
            // Only single underscores between digits.
            if !seen_digit || after_underscore {
                return None;
            }
            after_underscore = true;
            continue;
        }
        let digit = character.to_digit(16)?;
        number = number.checked_mul(16)?.checked_add(u128::from(digit))?;
        seen_digit = true;
        after_underscore = false;
    }
    if !seen_digit || after_underscore {
        return None;
    }
    Some(number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_uuids_are_version_4() {
        struct Ones;
        impl Random for Ones {
            fn fill(&self, buffer: &mut [u8]) {
                buffer.fill(0xff);
            }
        }
        assert_eq!(new_uuid(&Ones), "ffffffff-ffff-4fff-bfff-ffffffffffff");
    }

    #[test]
    fn parse_uuid_like_matches_python() {
        // Expected values computed with CPython 3.11's `str(uuid.UUID(value))`.
        let canonical = "918689fb-038e-4e81-bf09-efd5902c5f0b";
        let accepted = [
            ("918689fb-038e-4e81-bf09-efd5902c5f0b", canonical),
            ("918689fb038e4e81bf09efd5902c5f0b", canonical),
            ("918689FB-038E-4E81-BF09-EFD5902C5F0B", canonical),
            ("{918689fb-038e-4e81-bf09-efd5902c5f0b}", canonical),
            ("{{918689fb038e4e81bf09efd5902c5f0b}}", canonical),
            ("urn:uuid:918689fb-038e-4e81-bf09-efd5902c5f0b", canonical),
            ("9186-89fb-038e-4e81-bf09-efd5-902c-5f0b", canonical),
            ("918689fb038e4e81bf09efd5902c5f0b--", canonical),
            ("918689fburn:038e4e81bf09efd5902c5f0b", canonical),
            (
                "0xaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                "00aaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa",
            ),
            (
                "0x_aaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                "000aaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa",
            ),
            (
                "a_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
                "0abbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb",
            ),
            (
                "+aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                "0aaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa",
            ),
            (
                " aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                "0aaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa",
            ),
            (
                "\u{3000}aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                "0aaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa",
            ),
        ];
        for (value, expected) in accepted {
            assert_eq!(
                parse_uuid_like(value).as_deref(),
                Some(expected),
                "{value:?}"
            );
        }
        let refused = [
            "",
            "my-room",
            "918689fb-038e-4e81-bf09-efd5902c5f0",
            "918689fb-038e-4e81-bf09-efd5902c5f0b0",
            "918689fb-038e-4e81-bf09-efd5902c5f0g",
            "918689fb 038e 4e81 bf09 efd5902c5f0b",
            "URN:UUID:918689fb-038e-4e81-bf09-efd5902c5f0b",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa_",
            "_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "a__aaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "0x__aaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "++aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "aaaaaaaaaaaaaaa aaaaaaaaaaaaaaaa",
            "0x                              ",
            "ａaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ];
        for value in refused {
            assert_eq!(parse_uuid_like(value), None, "{value:?}");
        }
    }
}
