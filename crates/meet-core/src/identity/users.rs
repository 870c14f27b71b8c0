//! Users: the API representation, the self-service update and the mapping
//! of OIDC claims onto user fields (auth.md §2, api.md §3).

use serde_json::{json, Map, Value};

use crate::error::{ApiError, FieldErrors};

/// The languages of `LANGUAGES` at the reference commit.
pub const LANGUAGES: [&str; 4] = ["en-us", "fr-fr", "nl-nl", "de-de"];

#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: String,
    pub sub: Option<String>,
    pub email: Option<String>,
    pub admin_email: Option<String>,
    pub full_name: Option<String>,
    pub short_name: Option<String>,
    pub language: String,
    pub timezone: String,
    pub is_active: bool,
}

impl User {
    /// `{"id", "email", "full_name", "short_name", "timezone", "language"}`.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "email": self.email,
            "full_name": self.full_name,
            "short_name": self.short_name,
            "timezone": self.timezone,
            "language": self.language,
        })
    }

    /// Django's `str(user)`: email, else admin email, else id. Also the
    /// default LiveKit display name.
    pub fn display_name(&self) -> &str {
        self.email
            .as_deref()
            .filter(|email| !email.is_empty())
            .or(self
                .admin_email
                .as_deref()
                .filter(|email| !email.is_empty()))
            .unwrap_or(&self.id)
    }
}

/// The writable fields of `PUT/PATCH /users/{id}/`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserUpdate {
    pub language: Option<String>,
    pub timezone: Option<String>,
}

/// Validates an update body; `partial` is PATCH (every field optional).
/// Unknown keys are ignored, as DRF does with read-only fields.
pub fn parse_user_update(
    body: &Map<String, Value>,
    partial: bool,
    is_valid_timezone: impl Fn(&str) -> bool,
) -> Result<UserUpdate, ApiError> {
    let mut errors = FieldErrors::new();
    let mut update = UserUpdate::default();
    match body.get("language") {
        None => {}
        Some(Value::String(language)) if LANGUAGES.contains(&language.as_str()) => {
            update.language = Some(language.clone())
        }
        Some(other) => errors.add(
            "language",
            format!("\"{}\" is not a valid choice.", python_str(other)),
        ),
    }
    match body.get("timezone") {
        None if !partial => errors.add("timezone", "This field is required."),
        None => {}
        Some(Value::Null) => errors.add("timezone", "This field may not be null."),
        Some(Value::String(zone)) if is_valid_timezone(zone) => {
            update.timezone = Some(zone.clone())
        }
        Some(_) => errors.add("timezone", "A valid timezone is required."),
    }
    errors.into_result()?;
    Ok(update)
}

/// How Python's `str()` shows a JSON value inside an error message.
fn python_str(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Null => "None".into(),
        other => other.to_string(),
    }
}

/// Settings that decide how claims become user fields.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimSettings {
    /// `OIDC_USERINFO_ESSENTIAL_CLAIMS`
    pub essential_claims: Vec<String>,
    /// `OIDC_USERINFO_FULLNAME_FIELDS`
    pub full_name_fields: Vec<String>,
    /// `OIDC_USERINFO_SHORTNAME_FIELD`
    pub short_name_field: String,
}

impl Default for ClaimSettings {
    fn default() -> Self {
        ClaimSettings {
            essential_claims: Vec::new(),
            full_name_fields: vec!["given_name".into(), "usual_name".into()],
            short_name_field: "given_name".into(),
        }
    }
}

/// The user fields a login provides; `None` never erases a stored value.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedUser {
    pub sub: String,
    pub email: Option<String>,
    pub full_name: Option<String>,
    pub short_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimError {
    #[error("Claims verification failed: missing {0}")]
    MissingClaims(String),
    #[error("Enter a valid sub. This value may contain only letters, numbers, and @/./+/-/_ characters.")]
    InvalidSub,
}

/// Maps userinfo claims to user fields (auth.md §2.1–2.2).
pub fn map_claims(
    claims: &Map<String, Value>,
    settings: &ClaimSettings,
) -> Result<ClaimedUser, ClaimError> {
    let missing: Vec<&str> = std::iter::once("sub")
        .chain(settings.essential_claims.iter().map(String::as_str))
        .filter(|name| !claims.contains_key(*name))
        .collect();
    if !missing.is_empty() {
        return Err(ClaimError::MissingClaims(missing.join(", ")));
    }
    let text = |name: &str| -> Option<String> {
        match claims.get(name)? {
            Value::String(text) if !text.is_empty() => Some(text.clone()),
            Value::Number(number) => Some(number.to_string()),
            _ => None,
        }
    };
    let sub = text("sub").ok_or_else(|| ClaimError::MissingClaims("sub".into()))?;
    if !is_valid_sub(&sub) {
        return Err(ClaimError::InvalidSub);
    }
    let full_name_parts: Vec<String> = settings
        .full_name_fields
        .iter()
        .filter_map(|name| text(name))
        .collect();
    Ok(ClaimedUser {
        sub,
        email: text("email"),
        full_name: (!full_name_parts.is_empty()).then(|| full_name_parts.join(" ")),
        short_name: text(&settings.short_name_field),
    })
}

/// The model's `^[\w.@+-]+\Z` with Unicode `\w`, at most 255 characters.
pub fn is_valid_sub(sub: &str) -> bool {
    !sub.is_empty()
        && sub.chars().count() <= 255
        && sub
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '@' | '+' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn full_name_joins_the_non_empty_configured_claims() {
        let mapped = map_claims(
            &claims(json!({"sub": "abc", "email": "j@example.com", "given_name": "John", "usual_name": "Doe"})),
            &ClaimSettings::default(),
        )
        .unwrap();
        assert_eq!(mapped.full_name.as_deref(), Some("John Doe"));
        assert_eq!(mapped.short_name.as_deref(), Some("John"));
        assert_eq!(mapped.email.as_deref(), Some("j@example.com"));

        let mapped = map_claims(
            &claims(json!({"sub": "abc", "given_name": "", "usual_name": "Doe", "email": ""})),
            &ClaimSettings::default(),
        )
        .unwrap();
        assert_eq!(mapped.full_name.as_deref(), Some("Doe"));
        assert_eq!(mapped.short_name, None);
        assert_eq!(mapped.email, None);
    }

    #[test]
    fn sub_and_essential_claims_are_required() {
        let settings = ClaimSettings {
            essential_claims: vec!["email".into()],
            ..ClaimSettings::default()
        };
        assert!(matches!(
            map_claims(&claims(json!({"sub": "abc"})), &settings),
            Err(ClaimError::MissingClaims(m)) if m == "email"
        ));
        assert!(map_claims(&claims(json!({"email": "x"})), &ClaimSettings::default()).is_err());
        assert!(map_claims(&claims(json!({"sub": ""})), &ClaimSettings::default()).is_err());
        assert_eq!(
            map_claims(&claims(json!({"sub": "a b"})), &ClaimSettings::default()),
            Err(ClaimError::InvalidSub)
        );
    }

    #[test]
    fn sub_pattern_allows_unicode_word_characters() {
        assert!(is_valid_sub("jérôme.d+test@example-1_x"));
        assert!(!is_valid_sub("a/b"));
        assert!(!is_valid_sub(&"a".repeat(256)));
    }

    #[test]
    fn display_name_prefers_email_then_admin_email_then_id() {
        let mut user = User {
            id: "u1".into(),
            sub: None,
            email: Some("e@x".into()),
            admin_email: Some("a@x".into()),
            full_name: None,
            short_name: None,
            language: "en-us".into(),
            timezone: "UTC".into(),
            is_active: true,
        };
        assert_eq!(user.display_name(), "e@x");
        user.email = None;
        assert_eq!(user.display_name(), "a@x");
        user.admin_email = None;
        assert_eq!(user.display_name(), "u1");
    }

    #[test]
    fn updates_validate_language_and_timezone() {
        let valid_zone = |zone: &str| zone == "Europe/Paris";
        let body =
            claims(json!({"language": "fr-fr", "timezone": "Europe/Paris", "email": "ignored"}));
        assert_eq!(
            parse_user_update(&body, false, valid_zone).unwrap(),
            UserUpdate {
                language: Some("fr-fr".into()),
                timezone: Some("Europe/Paris".into())
            }
        );
        let error =
            parse_user_update(&claims(json!({"language": "xx"})), false, valid_zone).unwrap_err();
        assert_eq!(
            error.body(),
            json!({"language": ["\"xx\" is not a valid choice."], "timezone": ["This field is required."]})
        );
        let error = parse_user_update(
            &claims(json!({"timezone": "Mars/Olympus"})),
            true,
            valid_zone,
        )
        .unwrap_err();
        assert_eq!(
            error.body(),
            json!({"timezone": ["A valid timezone is required."]})
        );
        assert_eq!(
            parse_user_update(&claims(json!({})), true, valid_zone).unwrap(),
            UserUpdate::default()
        );
    }
}
