//! Room slugs and UUID-looking path values (api.md §2.1–2.2).
//!
//! Both reproduce Python exactly because they decide which room a URL
//! names: [`slugify`] is Django's `slugify` (ASCII mode), [`parse_uuid_like`]
//! is what `uuid.UUID(value)` accepts.

use unicode_normalization::UnicodeNormalization;

/// Django's `slugify(value)`: NFKD, drop what is not ASCII, lowercase, delete
/// everything but `[a-z0-9_]`, whitespace and `-`, turn each run of
/// whitespace and `-` into one `-`, strip `-` and `_` from both ends.
///
/// `"Eléphant in the room"` → `"elephant-in-the-room"`; a name with no
/// ASCII letters or digits (`"会议"`) gives `""`.
pub fn slugify(value: &str) -> String {
    // NFKD splits accented letters into a base letter and a combining mark
    // (dropped with the rest of non-ASCII) and maps compatibility forms such
    // as ligatures and full-width letters to plain ones.
    let ascii = value.nfkd().filter(char::is_ascii);
    let mut slug = String::with_capacity(value.len());
    let mut after_separator = false;
    for character in ascii {
        let character = character.to_ascii_lowercase();
        if character.is_ascii_alphanumeric() || character == '_' {
            slug.push(character);
            after_separator = false;
        } else if (character == '-' || is_python_whitespace(character)) && !after_separator {
            slug.push('-');
            after_separator = true;
        }
        // Further separators of a run are skipped. Anything else is deleted
        // before runs are collapsed, so it neither separates nor joins:
        // "a - ! - b" → "a-b".
    }
    slug.trim_matches(|character| character == '-' || character == '_')
        .to_string()
}

/// What Python's `str.isspace()` (and so regex `\s` and `int()`) calls
/// whitespace: Unicode `White_Space` plus the ASCII separators 0x1C–0x1F.
fn is_python_whitespace(character: char) -> bool {
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
    let digits = format!("{number:032x}");
    Some(format!(
        "{}-{}-{}-{}-{}",
        &digits[0..8],
        &digits[8..12],
        &digits[12..16],
        &digits[16..20],
        &digits[20..32]
    ))
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
    fn slugify_matches_django() {
        // Expected values computed with Django's `slugify` on CPython 3.11.
        let cases = [
            ("Eléphant in the room", "elephant-in-the-room"),
            ("Réunion", "reunion"),
            ("My Room!", "my-room"),
            ("my-room", "my-room"),
            ("Привет мир", ""),
            ("会议", ""),
            ("会议 room 2", "room-2"),
            ("Party 🎉 time", "party-time"),
            ("🎉", ""),
            ("Hello, World... (again)?", "hello-world-again"),
            ("a - ! - b", "a-b"),
            ("__a_b__", "a_b"),
            ("-_-a-_-", "a"),
            ("_-x-_", "x"),
            ("tab\tnew\nline\r\nend", "tab-new-line-end"),
            ("form\u{c}feed\u{b}vtab", "form-feed-vtab"),
            ("file\u{1c}sep\u{1f}unit", "file-sep-unit"),
            ("a---b", "a-b"),
            ("a - - b", "a-b"),
            ("---", ""),
            ("", ""),
            ("   spaces   around   ", "spaces-around"),
            ("ﬁle", "file"),
            ("Ｒｏｏｍ", "room"),
            ("Ⅻ ½ ²", "xii-12-2"),
            ("Œuvre Straße", "uvre-strae"),
            ("ÀÉÎÕÜ ñ ç", "aeiou-n-c"),
            ("CamelCase_Name", "camelcase_name"),
            ("a\u{a0}b\u{3000}c", "a-b-c"),
            ("a\u{200b}b", "ab"),
            ("café-crème", "cafe-creme"),
            ("100% sure", "100-sure"),
            (
                "918689fb-038e 4e81-bf09 efd5902c5f0b",
                "918689fb-038e-4e81-bf09-efd5902c5f0b",
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(slugify(value), expected, "slugify({value:?})");
        }
    }

    #[test]
    fn reserved_names_slugify_to_uuids() {
        let slug = slugify("918689fb-038e 4e81-bf09 efd5902c5f0b");
        assert_eq!(
            parse_uuid_like(&slug).as_deref(),
            Some("918689fb-038e-4e81-bf09-efd5902c5f0b")
        );
        // Upper case and spaces are no escape.
        let slug = slugify("918689FB 038E 4E81 BF09 EFD5902C5F0B");
        assert!(parse_uuid_like(&slug).is_some());
        assert_eq!(parse_uuid_like(&slugify("My Room")), None);
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
