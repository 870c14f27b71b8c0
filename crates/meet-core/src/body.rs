//! Request bodies with DRF's parser semantics: JSON (what the frontend sends)
//! and URL-encoded forms; malformed JSON is a 400, other media types a 415.

use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::http::ApiRequest;

/// The request's data as a JSON value. An empty body is an empty object, as
/// DRF's `request.data` is for a request without content.
pub fn parse_body(request: &ApiRequest) -> Result<Value, ApiError> {
    if request.body.is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    let content_type = request.header("content-type").unwrap_or("");
    let media_type = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match media_type.as_str() {
        "application/json" => serde_json::from_slice(&request.body)
            .map_err(|error| ApiError::JsonParse(error.to_string())),
        "application/x-www-form-urlencoded" => Ok(Value::Object(
            form_urlencoded::parse(&request.body)
                .map(|(key, value)| (key.into_owned(), Value::String(value.into_owned())))
                .collect(),
        )),
        _ => Err(ApiError::UnsupportedMediaType(content_type.to_string())),
    }
}

/// The body as a JSON object; any other JSON value is DRF's
/// `non_field_errors` "Invalid data" answer.
pub fn parse_object(request: &ApiRequest) -> Result<Map<String, Value>, ApiError> {
    match parse_body(request)? {
        Value::Object(map) => Ok(map),
        other => {
            let found = match other {
                Value::Array(_) => "list",
                Value::String(_) => "str",
                Value::Number(n) if n.is_f64() => "float",
                Value::Number(_) => "int",
                Value::Bool(_) => "bool",
                _ => "NoneType",
            };
            Err(ApiError::Validation(crate::error::FieldErrors::single(
                "non_field_errors",
                format!("Invalid data. Expected a dictionary, but got {found}."),
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Method;
    use serde_json::json;

    fn post(content_type: &str, body: &str) -> ApiRequest {
        ApiRequest::new(Method::POST, "/x/")
            .with_header("Content-Type", content_type)
            .with_body(body)
    }

    #[test]
    fn json_with_charset_parses() {
        let request = post("application/json; charset=utf-8", r#"{"name": "a"}"#);
        assert_eq!(parse_body(&request).unwrap(), json!({"name": "a"}));
    }

    #[test]
    fn malformed_json_is_a_400_parse_error() {
        let error = parse_body(&post("application/json", "{nope")).unwrap_err();
        assert_eq!(error.status(), 400);
        assert!(error.body()["detail"]
            .as_str()
            .unwrap()
            .starts_with("JSON parse error - "));
    }

    #[test]
    fn other_media_types_are_415() {
        let error = parse_body(&post("text/plain", "hello")).unwrap_err();
        assert_eq!(error.status(), 415);
        assert_eq!(
            error.body(),
            json!({"detail": "Unsupported media type \"text/plain\" in request."})
        );
    }

    #[test]
    fn forms_and_empty_bodies() {
        let request = post("application/x-www-form-urlencoded", "name=a+b&x=%C3%A9");
        assert_eq!(
            parse_body(&request).unwrap(),
            json!({"name": "a b", "x": "é"})
        );
        let empty = ApiRequest::new(Method::POST, "/x/");
        assert_eq!(parse_body(&empty).unwrap(), json!({}));
    }

    #[test]
    fn non_objects_are_invalid_data() {
        let error = parse_object(&post("application/json", "[1]")).unwrap_err();
        assert_eq!(
            error.body(),
            json!({"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]})
        );
    }
}
