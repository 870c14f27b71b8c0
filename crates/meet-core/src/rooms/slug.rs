//! Room slugs (api.md §2.2): Django's `slugify`, reproduced exactly because
//! it decides which room a URL names.

use unicode_normalization::UnicodeNormalization;

use crate::ids::is_python_whitespace;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::parse_uuid_like;

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
}
