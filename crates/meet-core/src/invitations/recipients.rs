//! The `emails` field of an invitation: DRF's `ListField(child=EmailField())`
//! with `allow_empty=False`, Django's `EmailValidator`, and the duplicates
//! removed (case-sensitively, so `Toto@x` and `toto@x` both stay).

use std::net::{Ipv4Addr, Ipv6Addr};

use serde_json::{Map, Value};

use crate::error::{ApiError, FieldErrors};

const FIELD: &str = "emails";
const INVALID_EMAIL: &str = "Enter a valid email address.";

/// One address to invite: as given (whitespace trimmed, as DRF does), and
/// the form SMTP carries, with an internationalised domain in punycode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// Its position in the request's list (what field errors are keyed by).
    pub index: usize,
    pub email: String,
    pub envelope: String,
}

/// The recipients of the body's `emails`, in order, without exact duplicates.
pub fn parse(body: &Map<String, Value>) -> Result<Vec<Recipient>, ApiError> {
    let items = match body.get(FIELD) {
        None => return Err(field_error("This field is required.")),
        Some(Value::Null) => return Err(field_error("This field may not be null.")),
        Some(Value::Array(items)) if items.is_empty() => {
            return Err(field_error("This list may not be empty."))
        }
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(field_error(format!(
                "Expected a list of items but got type \"{}\".",
                python_type(other)
            )))
        }
    };
    let mut errors = FieldErrors::new();
    let mut recipients: Vec<Recipient> = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        match email_item(index, item) {
            Err(messages) => {
                for message in messages {
                    errors.add_item(FIELD, index, message);
                }
            }
            Ok(recipient) => {
                if !recipients.iter().any(|seen| seen.email == recipient.email) {
                    recipients.push(recipient);
                }
            }
        }
    }
    errors.into_result()?;
    Ok(recipients)
}

fn field_error(message: impl Into<String>) -> ApiError {
    ApiError::Validation(FieldErrors::single(FIELD, message))
}

/// The name Python gives the type of a decoded JSON value.
fn python_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(number) if number.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// One item as DRF's `EmailField` takes it: strings and numbers as text,
/// trimmed; every validator's message collected.
fn email_item(index: usize, item: &Value) -> Result<Recipient, Vec<&'static str>> {
    let text = match item {
        Value::Null => return Err(vec!["This field may not be null."]),
        Value::String(text) => text.clone(),
        Value::Number(number) => number.to_string(),
        _ => return Err(vec!["Not a valid string."]),
    };
    let email = text.trim();
    if email.is_empty() {
        return Err(vec!["This field may not be blank."]);
    }
    let mut messages = Vec::new();
    if email.contains('\0') {
        messages.push("Null characters are not allowed.");
    }
    match validate_email(email) {
        Some(envelope) if messages.is_empty() => Ok(Recipient {
            index,
            email: email.to_string(),
            envelope,
        }),
        Some(_) => Err(messages),
        None => {
            messages.push(INVALID_EMAIL);
            Err(messages)
        }
    }
}

/// Django's `EmailValidator`: a dot-atom or quoted local part, and a domain
/// of labels, `localhost`, an address literal, or an internationalised
/// domain valid once in punycode. Returns the address with its domain in
/// ASCII (what goes into `RCPT TO`), or `None` when Django refuses it.
pub fn validate_email(value: &str) -> Option<String> {
    if value.is_empty() || value.chars().count() > 320 {
        return None;
    }
    let (user, domain) = value.rsplit_once('@')?;
    if !(is_dot_atom(user) || is_quoted_string(user)) {
        return None;
    }
    if domain == "localhost" || is_valid_domain_part(domain) {
        return Some(value.to_string());
    }
    let ascii = idna::domain_to_ascii(domain).ok()?;
    is_valid_domain_part(&ascii).then(|| format!("{user}@{ascii}"))
}

fn is_atom_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-!#$%&'*+/=?^_`{}|~".contains(c)
}

/// `[atext]+(\.[atext]+)*`.
fn is_dot_atom(user: &str) -> bool {
    user.split('.')
        .all(|atom| !atom.is_empty() && atom.chars().all(is_atom_char))
}

/// `"…"` with the characters and backslash escapes Django's regex allows.
fn is_quoted_string(user: &str) -> bool {
    let Some(inner) = user
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
    else {
        return false;
    };
    if user.len() < 2 {
        return false;
    }
    let plain = |c: char| matches!(c as u32, 0x01..=0x08 | 0x0b | 0x0c | 0x0e..=0x1f | 0x21 | 0x23..=0x5b | 0x5d..=0x7f);
    let escaped = |c: char| matches!(c as u32, 0x01..=0x09 | 0x0b | 0x0c | 0x0e..=0x7f);
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(next) if escaped(next) => {}
                _ => return false,
            }
        } else if !plain(c) {
            return false;
        }
    }
    true
}

/// Django's `domain_regex` (labels of at most 63 characters, a last label
/// of 2 to 63 letters, digits or hyphens not ending with one) or an address
/// literal `[<IPv4 or IPv6>]`.
fn is_valid_domain_part(domain: &str) -> bool {
    if let Some(literal) = domain
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
    {
        let allowed = |c: char| c.is_ascii_hexdigit() || c == ':' || c == '.';
        return !literal.is_empty()
            && literal.chars().all(allowed)
            && (literal.parse::<Ipv4Addr>().is_ok() || literal.parse::<Ipv6Addr>().is_ok());
    }
    let Some((labels, tld)) = domain.rsplit_once('.') else {
        return false;
    };
    let tld_ok = (2..=63).contains(&tld.len())
        && tld.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !tld.ends_with('-');
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    tld_ok && labels.split('.').all(label_ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!(),
        }
    }

    fn errors(value: Value) -> Value {
        parse(&body(value)).unwrap_err().body()
    }

    #[test]
    fn missing_empty_and_non_list_values_are_field_errors() {
        assert_eq!(
            errors(json!({"foo": []})),
            json!({"emails": ["This field is required."]})
        );
        assert_eq!(
            errors(json!({"emails": []})),
            json!({"emails": ["This list may not be empty."]})
        );
        assert_eq!(
            errors(json!({"emails": null})),
            json!({"emails": ["This field may not be null."]})
        );
        assert_eq!(
            errors(json!({"emails": "a@example.com"})),
            json!({"emails": ["Expected a list of items but got type \"str\"."]})
        );
        assert_eq!(
            errors(json!({"emails": {"a": 1}})),
            json!({"emails": ["Expected a list of items but got type \"dict\"."]})
        );
    }

    #[test]
    fn invalid_items_are_keyed_by_index() {
        assert_eq!(
            errors(json!({"emails": ["abdc", "efg"]})),
            json!({"emails": {"0": [INVALID_EMAIL], "1": [INVALID_EMAIL]}})
        );
        assert_eq!(
            errors(json!({"emails": ["fabrice@yopmail.com", "efg"]})),
            json!({"emails": {"1": [INVALID_EMAIL]}})
        );
        assert_eq!(
            errors(json!({"emails": ["a@b.example", null, true, " ", 12, "a\u{0}@b.example"]})),
            json!({"emails": {
                "1": ["This field may not be null."],
                "2": ["Not a valid string."],
                "3": ["This field may not be blank."],
                "4": [INVALID_EMAIL],
                "5": ["Null characters are not allowed.", INVALID_EMAIL],
            }})
        );
    }

    #[test]
    fn exact_duplicates_are_removed_case_sensitively_in_order() {
        let recipients = parse(&body(
            json!({"emails": ["toto@yopmail.com", " toto@yopmail.com", "Toto@yopmail.com"]}),
        ))
        .unwrap();
        let emails: Vec<&str> = recipients.iter().map(|r| r.email.as_str()).collect();
        assert_eq!(emails, ["toto@yopmail.com", "Toto@yopmail.com"]);
    }

    #[test]
    fn django_email_validator_cases() {
        for valid in [
            "email@here.com",
            "weirder-email@here.and.there.com",
            "example@valid-----hyphens.com",
            "example@valid-with-hyphens.com",
            "test@domain.with.idn.tld.उदाहरण.परीक्षा",
            "email@localhost",
            "email@[127.0.0.1]",
            "email@[2001:dB8::1]",
            "email@[::fffF:127.0.0.1]",
            "\"test@test\"@example.com",
            "example@atm.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "example@aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.atm",
            "a@b.-c",
        ] {
            assert!(validate_email(valid).is_some(), "{valid}");
        }
        for invalid in [
            "",
            "abc",
            "abc@",
            "abc@bar",
            "a @x.cz",
            "abc@.com",
            "something@@somewhere.com",
            "email@127.0.0.1",
            "email@[127.0.0.256]",
            "email@[2001:db8::12345]",
            "email@[2001:db8:0:0:0:0:1]",
            "email@[::ffff:127.0.0.256]",
            "email@[2001:dg8::1]",
            "example@invalid-.com",
            "example@-invalid.com",
            "example@invalid.com-",
            "example@inv-.alid-.com",
            "example@inv-.-alid.com",
            "test@example.com\n\n<script src=\"x.js\">",
            "\"\\\u{0b}\"@here.com\n",
            "trailingdot@shouldfail.com.",
            "a@b.c",
            "a..b@example.com",
            ".a@example.com",
            "example@atm.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "example@aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.atm",
        ] {
            assert!(validate_email(invalid).is_none(), "{invalid:?}");
        }
    }

    #[test]
    fn internationalised_domains_travel_in_punycode() {
        let recipient = &parse(&body(json!({"emails": ["anna@exämple.de"]}))).unwrap()[0];
        assert_eq!(recipient.email, "anna@exämple.de");
        assert_eq!(recipient.envelope, "anna@xn--exmple-cua.de");
    }
}
