//! The one error type of the API, rendered as Django REST framework bodies.

use serde_json::{json, Map, Value};

use crate::http::ApiResponse;
use crate::settings::SettingError;

pub const NOT_AUTHENTICATED: &str = "Authentication credentials were not provided.";
pub const PERMISSION_DENIED: &str = "You do not have permission to perform this action.";

/// Validation errors keyed by field, each a list of messages (or, for list
/// items, an object keyed by index), as DRF renders them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldErrors(Map<String, Value>);

impl FieldErrors {
    pub fn new() -> FieldErrors {
        FieldErrors::default()
    }

    pub fn single(field: &str, message: impl Into<String>) -> FieldErrors {
        let mut errors = FieldErrors::new();
        errors.add(field, message);
        errors
    }

    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        let messages = self
            .0
            .entry(field.to_string())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(list) = messages {
            list.push(Value::String(message.into()));
        }
    }

    /// Errors on the items of a list field: `{"emails": {"1": ["..."]}}`.
    pub fn add_item(&mut self, field: &str, index: usize, message: impl Into<String>) {
        let items = self
            .0
            .entry(field.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(items) = items {
            let messages = items
                .entry(index.to_string())
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(list) = messages {
                list.push(Value::String(message.into()));
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(())` when nothing was recorded, so validation can end with `?`.
    pub fn into_result(self) -> Result<(), ApiError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(self))
        }
    }

    pub fn to_value(&self) -> Value {
        Value::Object(self.0.clone())
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    /// No credentials on a request that needs them (always 401, never 403).
    #[error("not authenticated")]
    NotAuthenticated,
    /// Credentials were given but are not valid.
    #[error("authentication failed: {0}")]
    AuthenticationFailed(String),
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// `No <model> matches the given query.`
    #[error("no {0} matches the given query")]
    NotFound(&'static str),
    /// A 404 with a specific detail (`Invalid page.`, `Not found.`).
    #[error("not found: {0}")]
    NotFoundDetail(String),
    #[error("method {0} not allowed")]
    MethodNotAllowed(String),
    #[error("unsupported media type {0:?}")]
    UnsupportedMediaType(String),
    /// The body could not be parsed; the text follows `JSON parse error - `.
    #[error("JSON parse error - {0}")]
    JsonParse(String),
    #[error("invalid input")]
    Validation(FieldErrors),
    #[error("throttled for {0} s")]
    Throttled(u64),
    /// An endpoint-specific body with its own status (`{"message": ...}`,
    /// `{"status": "error", ...}`).
    #[error("{status}: {body}")]
    Custom { status: u16, body: Value },
    /// A Spin variable has an unusable value: the operator must fix it.
    #[error(transparent)]
    Misconfigured(#[from] SettingError),
    /// Anything else that went wrong on our side; the text is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn permission_denied() -> ApiError {
        ApiError::PermissionDenied(PERMISSION_DENIED.to_string())
    }

    pub fn internal(error: impl std::fmt::Display) -> ApiError {
        ApiError::Internal(error.to_string())
    }

    pub fn status(&self) -> u16 {
        match self {
            ApiError::NotAuthenticated | ApiError::AuthenticationFailed(_) => 401,
            ApiError::PermissionDenied(_) => 403,
            ApiError::NotFound(_) | ApiError::NotFoundDetail(_) => 404,
            ApiError::MethodNotAllowed(_) => 405,
            ApiError::UnsupportedMediaType(_) => 415,
            ApiError::JsonParse(_) | ApiError::Validation(_) => 400,
            ApiError::Throttled(_) => 429,
            ApiError::Custom { status, .. } => *status,
            ApiError::Misconfigured(_) | ApiError::Internal(_) => 500,
        }
    }

    pub fn body(&self) -> Value {
        let detail = |text: String| json!({ "detail": text });
        match self {
            ApiError::NotAuthenticated => detail(NOT_AUTHENTICATED.to_string()),
            ApiError::AuthenticationFailed(text)
            | ApiError::PermissionDenied(text)
            | ApiError::NotFoundDetail(text) => detail(text.clone()),
            ApiError::NotFound(model) => detail(format!("No {model} matches the given query.")),
            ApiError::MethodNotAllowed(verb) => detail(format!("Method \"{verb}\" not allowed.")),
            ApiError::UnsupportedMediaType(media_type) => detail(format!(
                "Unsupported media type \"{media_type}\" in request."
            )),
            ApiError::JsonParse(text) => detail(format!("JSON parse error - {text}")),
            ApiError::Validation(errors) => errors.to_value(),
            ApiError::Throttled(seconds) => detail(format!(
                "Request was throttled. Expected available in {seconds} second{}.",
                if *seconds == 1 { "" } else { "s" }
            )),
            ApiError::Custom { body, .. } => body.clone(),
            ApiError::Misconfigured(error) => {
                detail(format!("The server is misconfigured: {error}"))
            }
            ApiError::Internal(_) => detail("A server error occurred.".to_string()),
        }
    }

    /// Whether the operator should see this in the logs.
    pub fn is_server_error(&self) -> bool {
        self.status() >= 500
    }

    pub fn to_response(&self) -> ApiResponse {
        let response = ApiResponse::json(self.status(), &self.body());
        match self {
            ApiError::NotAuthenticated | ApiError::AuthenticationFailed(_) => {
                response.with_header("www-authenticate", "Bearer realm=\"api\"")
            }
            ApiError::Throttled(seconds) => {
                response.with_header("retry-after", &seconds.to_string())
            }
            _ => response,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_drf_bodies() {
        assert_eq!(
            ApiError::NotFound("Room").body(),
            json!({"detail": "No Room matches the given query."})
        );
        assert_eq!(
            ApiError::MethodNotAllowed("POST".into()).body(),
            json!({"detail": "Method \"POST\" not allowed."})
        );
        assert_eq!(
            ApiError::UnsupportedMediaType("text/plain".into()).body(),
            json!({"detail": "Unsupported media type \"text/plain\" in request."})
        );
        assert_eq!(
            ApiError::Throttled(1).body(),
            json!({"detail": "Request was throttled. Expected available in 1 second."})
        );
    }

    #[test]
    fn unauthenticated_responses_advertise_the_realm() {
        let response = ApiError::NotAuthenticated.to_response();
        assert_eq!(response.status, 401);
        assert_eq!(
            response.header("WWW-Authenticate"),
            Some("Bearer realm=\"api\"")
        );
    }

    #[test]
    fn field_errors_group_messages_and_list_items() {
        let mut errors = FieldErrors::single("name", "This field is required.");
        errors.add_item("emails", 1, "Enter a valid email address.");
        assert_eq!(
            ApiError::Validation(errors).body(),
            json!({"name": ["This field is required."], "emails": {"1": ["Enter a valid email address."]}})
        );
    }

    #[test]
    fn internal_errors_do_not_leak_their_cause() {
        let error = ApiError::internal("database password is hunter2");
        assert_eq!(error.status(), 500);
        assert!(!error.body().to_string().contains("hunter2"));
    }
}
