//! `POST /recordings/storage-hook/` (recordings.md §2): the object store's
//! bucket notification. Its own bearer token, MinIO's event format, then
//! the recording is saved and its owners' notifications attempted at once
//! (they are retried later if they fail: correction 12).

use serde_json::{json, Value};
use subtle::ConstantTimeEq;

use crate::body::parse_body;
use crate::email::Mailer;
use crate::error::ApiError;
use crate::http::{ApiRequest, ApiResponse, Method};
use crate::ports::Services;
use crate::recordings::notify::deliver_due;
use crate::recordings::store::{self, SaveOutcome};
use crate::routing::method_not_allowed;
use crate::settings::Settings;

/// The content types of recording files.
pub const RECORDING_CONTENT_TYPES: [&str; 2] = ["audio/ogg", "video/mp4"];

fn unauthorized(detail: &str) -> ApiResponse {
    ApiResponse::json(401, &json!({ "detail": detail }))
        .with_header("www-authenticate", "Bearer realm='Storage event API'")
}

fn forbidden(detail: String) -> ApiError {
    ApiError::PermissionDenied(detail)
}

fn invalid_data(reason: &str) -> ApiError {
    forbidden(format!("Invalid request data: {reason}"))
}

/// §2.1: `None` when the caller may go on, else the 401 to answer.
fn check_token(request: &ApiRequest, settings: &Settings) -> Result<Option<ApiResponse>, ApiError> {
    if !settings.bool("recording_enable_storage_event_auth")? {
        return Ok(None);
    }
    let Some(expected) = settings.optional_string("recording_storage_event_token")? else {
        return Ok(Some(unauthorized(
            "Authentication is enabled but token is not configured.",
        )));
    };
    let Some(header) = request.header("authorization") else {
        return Ok(Some(unauthorized("Authorization header is required")));
    };
    let parts: Vec<&str> = header.split(' ').collect();
    let token = match parts.as_slice() {
        ["Bearer", token] => *token,
        _ => return Ok(Some(unauthorized("Invalid authorization header."))),
    };
    if !bool::from(token.as_bytes().ct_eq(expected.as_bytes())) {
        return Ok(Some(unauthorized("Invalid token")));
    }
    Ok(None)
}

/// The three fields of a MinIO event that matter (§2.2).
#[derive(Debug, Clone, PartialEq)]
pub struct StorageEvent {
    pub bucket_name: String,
    pub filepath: String,
    pub filetype: String,
}

/// `Records[0].s3.{bucket.name, object.key, object.contentType}`, with
/// upstream's messages for what is missing (Python's `KeyError` text).
pub fn parse_event(data: &Value) -> Result<StorageEvent, ApiError> {
    let empty = match data {
        Value::Null => true,
        Value::Object(map) => map.is_empty(),
        Value::Array(items) => items.is_empty(),
        Value::String(text) => text.is_empty(),
        _ => false,
    };
    if empty {
        return Err(invalid_data("Received empty data."));
    }
    let missing = |key: &str| invalid_data(&format!("Missing or malformed key: '{key}'."));
    let field = |value: &Value, key: &str| -> Result<Value, ApiError> {
        match value {
            Value::Object(map) => map.get(key).cloned().ok_or_else(|| missing(key)),
            _ => Err(missing(key)),
        }
    };
    let records = field(data, "Records")?;
    let record = match &records {
        Value::Array(items) => items
            .first()
            .cloned()
            .ok_or_else(|| invalid_data("Missing or malformed key: list index out of range."))?,
        _ => return Err(invalid_data("Missing or malformed key: 0.")),
    };
    let s3 = field(&record, "s3")?;
    let bucket_name = field(&field(&s3, "bucket")?, "name")?;
    let object = field(&s3, "object")?;
    let filepath = field(&object, "key")?;
    let filetype = field(&object, "contentType")?;
    let essential = |value: Value, name: &str| -> Result<String, ApiError> {
        match value {
            Value::String(text) if !text.is_empty() => Ok(text),
            Value::Null | Value::String(_) => Err(invalid_data(&format!(
                "Missing essential data fields: {name} cannot be None"
            ))),
            other => Ok(other.to_string()),
        }
    };
    Ok(StorageEvent {
        filepath: essential(filepath, "filepath")?,
        filetype: essential(filetype, "filetype")?,
        bucket_name: essential(bucket_name, "bucket_name")?,
    })
}

/// The recording id in an object key as MinIO sends it (URL-encoded, `/`
/// as `%2F`): optional folders each ending in `%2F`, then a 36-character
/// id of hex digits and dashes, `.`, an alphanumeric extension.
pub fn recording_id_of_key(key: &str) -> Option<String> {
    let mut parts: Vec<&str> = key.split("%2F").collect();
    let file = parts.pop()?;
    if parts
        .iter()
        .any(|folder| folder.is_empty() || folder.contains('/'))
    {
        return None;
    }
    let (id, extension) = file.split_once('.')?;
    let id_ok = id.len() == 36 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    let extension_ok =
        !extension.is_empty() && extension.bytes().all(|b| b.is_ascii_alphanumeric());
    (id_ok && extension_ok).then(|| id.to_ascii_lowercase())
}

/// The hook. `mailer` sends the owner emails of screen recordings.
pub fn storage_hook(
    request: &ApiRequest,
    services: &Services,
    mailer: &dyn Mailer,
) -> Result<ApiResponse, ApiError> {
    let settings = services.settings();
    if let Some(refusal) = check_token(request, &settings)? {
        return Ok(refusal);
    }
    if !settings.bool("recording_storage_event_enable")? {
        return Err(forbidden(
            "Access denied, storage event is disabled.".into(),
        ));
    }
    if request.method != Method::POST {
        return Err(method_not_allowed(request));
    }
    let data = parse_body(request)?;
    let event = parse_event(&data)?;
    let bucket = settings.required_string("aws_storage_bucket_name")?;
    if event.bucket_name != bucket {
        return Err(forbidden("Invalid bucket specified".into()));
    }
    if !RECORDING_CONTENT_TYPES.contains(&event.filetype.as_str()) {
        return Ok(ApiResponse::json(
            200,
            &json!({"message": format!(
                "Ignore this file type, Invalid file type, expected {{'audio/ogg', 'video/mp4'}},got '{}'",
                event.filetype
            )}),
        ));
    }
    // Upstream fails unhandled here (500): the object store sent a key
    // that names no recording file.
    let id = recording_id_of_key(&event.filepath).ok_or_else(|| {
        ApiError::internal(format!(
            "storage event: the object key {:?} does not name a recording file",
            event.filepath
        ))
    })?;
    match store::save(services.db, &id, services.clock.now())? {
        SaveOutcome::NotFound => Err(ApiError::NotFoundDetail(
            "No recording found for this event.".into(),
        )),
        SaveOutcome::NotSavable => Err(forbidden(format!(
            "Recording with ID {id} cannot be saved because it is either, in an error state or has already been saved."
        ))),
        SaveOutcome::Saved => {
            // Attempted now; whatever happens, the outbox keeps what failed.
            if let Err(error) = deliver_due(services, mailer, Some(&id), 100) {
                eprintln!("recording {id}: notifying the owners failed: {error}");
            }
            Ok(ApiResponse::json(200, &json!({"message": "Event processed."})))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(record: Value) -> Value {
        json!({ "Records": [record] })
    }

    #[test]
    fn keys_name_recordings_as_upstream_matches_them() {
        let id = "46d1a121-2426-484d-8fb3-09b5d886f7a8";
        assert_eq!(
            recording_id_of_key(&format!("recordings%2F{id}.ogg")).as_deref(),
            Some(id)
        );
        assert_eq!(
            recording_id_of_key(&format!("{id}.mp4")).as_deref(),
            Some(id)
        );
        assert_eq!(
            recording_id_of_key(&format!("a%2Fb%2F{id}.mp4")).as_deref(),
            Some(id)
        );
        assert_eq!(recording_id_of_key(&format!("recordings/{id}.ogg")), None);
        assert_eq!(
            recording_id_of_key("46d1a1212426484d8fb309b5d886f7a8.ogg"),
            None
        );
        assert_eq!(recording_id_of_key(&format!("{id}.")), None);
    }

    #[test]
    fn events_name_what_is_missing() {
        let detail = |value: Value| parse_event(&value).unwrap_err().body()["detail"].clone();
        assert_eq!(
            detail(json!({})),
            "Invalid request data: Received empty data."
        );
        assert_eq!(
            detail(json!({"x": 1})),
            "Invalid request data: Missing or malformed key: 'Records'."
        );
        assert_eq!(
            detail(json!({"Records": []})),
            "Invalid request data: Missing or malformed key: list index out of range."
        );
        assert_eq!(
            detail(event(json!({"s3": {"bucket": {"name": "b"}}}))),
            "Invalid request data: Missing or malformed key: 'object'."
        );
        assert_eq!(
            detail(event(
                json!({"s3": {"bucket": {"name": "b"}, "object": {"key": null, "contentType": "video/mp4"}}})
            )),
            "Invalid request data: Missing essential data fields: filepath cannot be None"
        );
        let parsed = parse_event(&event(json!({"s3": {"bucket": {"name": "b"}, "object": {"key": "k", "contentType": "video/mp4"}}}))).unwrap();
        assert_eq!(parsed.bucket_name, "b");
    }
}
