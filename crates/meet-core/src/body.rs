//! Request bodies with DRF's parser semantics: JSON (what the frontend sends)
//! and multipart form data (spec README correction 10); malformed bodies are
//! a 400, any other media type (URL-encoded forms included) a 415.

use std::convert::Infallible;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use serde_json::{json, Map, Value};

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
        "multipart/form-data" => parse_multipart(content_type, &request.body).map(Value::Object),
        _ => Err(ApiError::UnsupportedMediaType(content_type.to_string())),
    }
}

/// DRF's `ParseError` for a multipart body: `Multipart form parse error - …`.
fn multipart_error(text: impl std::fmt::Display) -> ApiError {
    ApiError::Custom {
        status: 400,
        body: json!({ "detail": format!("Multipart form parse error - {text}") }),
    }
}

/// The fields of a multipart body as JSON strings. A repeated field keeps
/// its last value (what a QueryDict gives for a plain field); a file part is
/// refused, since no endpoint takes files.
fn parse_multipart(content_type: &str, body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let boundary = multer::parse_boundary(content_type)
        .map_err(|_| multipart_error("Invalid boundary in multipart: None"))?;
    // The body is already buffered: one chunk, so every poll is ready.
    let chunks = futures_util::stream::iter([Ok::<_, Infallible>(body.to_vec())]);
    let mut multipart = multer::Multipart::new(chunks, boundary);
    let mut fields = Map::new();
    loop {
        let field = match block_on(multipart.next_field())? {
            Ok(Some(field)) => field,
            Ok(None) => return Ok(fields),
            Err(error) => return Err(multipart_error(error)),
        };
        let Some(name) = field.name().map(str::to_string) else {
            return Err(multipart_error("A part has no field name."));
        };
        if field.file_name().is_some() {
            return Err(multipart_error(format!(
                "The part \"{name}\" is a file; this endpoint takes no files."
            )));
        }
        let bytes = block_on(field.bytes())?.map_err(multipart_error)?;
        // Django decodes fields as UTF-8, replacing what does not decode.
        let value = String::from_utf8_lossy(&bytes).into_owned();
        fields.insert(name, Value::String(value));
    }
}

/// Polls a future over in-memory data to completion. Nothing here waits on
/// I/O, so a pending poll means a bug rather than a reason to spin.
fn block_on<F: Future>(future: F) -> Result<F::Output, ApiError> {
    let mut future = pin!(future);
    let mut context = Context::from_waker(Waker::noop());
    match future.as_mut().poll(&mut context) {
        Poll::Ready(output) => Ok(output),
        Poll::Pending => Err(ApiError::internal(
            "the multipart parser waited on an in-memory body",
        )),
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
    fn url_encoded_forms_are_415_but_empty_bodies_are_empty_objects() {
        let form = "application/x-www-form-urlencoded; charset=UTF-8";
        let error = parse_body(&post(form, "name=a+b")).unwrap_err();
        assert_eq!(error.status(), 415);
        assert_eq!(
            error.body(),
            json!({"detail": "Unsupported media type \"application/x-www-form-urlencoded; charset=UTF-8\" in request."})
        );
        let empty = ApiRequest::new(Method::POST, "/x/").with_header("Content-Type", form);
        assert_eq!(parse_body(&empty).unwrap(), json!({}));
    }

    const BOUNDARY: &str = "XyZ-42";

    fn multipart(parts: &[(&str, Option<&str>, &str)]) -> ApiRequest {
        let mut body = String::new();
        for (name, file_name, value) in parts {
            body.push_str(&format!("--{BOUNDARY}\r\n"));
            match file_name {
                Some(file) => body.push_str(&format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{file}\"\r\n\
                     Content-Type: text/plain\r\n"
                )),
                None => body.push_str(&format!(
                    "Content-Disposition: form-data; name=\"{name}\"\r\n"
                )),
            }
            body.push_str(&format!("\r\n{value}\r\n"));
        }
        body.push_str(&format!("--{BOUNDARY}--\r\n"));
        post(&format!("multipart/form-data; boundary={BOUNDARY}"), &body)
    }

    #[test]
    fn multipart_fields_are_strings_and_the_last_repeat_wins() {
        let request = multipart(&[
            ("name", None, "first"),
            ("access_level", None, "restricted"),
            ("name", None, "Réunion d'équipe"),
            ("empty", None, ""),
        ]);
        assert_eq!(
            parse_body(&request).unwrap(),
            json!({"name": "Réunion d'équipe", "access_level": "restricted", "empty": ""})
        );
        let object = parse_object(&request).unwrap();
        assert_eq!(object.len(), 3);
    }

    #[test]
    fn multipart_values_may_span_lines() {
        let request = multipart(&[("configuration", None, "line one\r\nline two")]);
        assert_eq!(
            parse_body(&request).unwrap(),
            json!({"configuration": "line one\r\nline two"})
        );
    }

    #[test]
    fn a_file_part_is_a_400() {
        let request = multipart(&[("name", None, "a"), ("avatar", Some("me.txt"), "hello")]);
        let error = parse_body(&request).unwrap_err();
        assert_eq!(error.status(), 400);
        assert_eq!(
            error.body(),
            json!({"detail": "Multipart form parse error - The part \"avatar\" is a file; this endpoint takes no files."})
        );
    }

    #[test]
    fn multipart_without_a_boundary_is_a_400_parse_error() {
        let error = parse_body(&post("multipart/form-data", "--x\r\n\r\n")).unwrap_err();
        assert_eq!(error.status(), 400);
        assert_eq!(
            error.body(),
            json!({"detail": "Multipart form parse error - Invalid boundary in multipart: None"})
        );
    }

    #[test]
    fn broken_multipart_framing_is_a_400_parse_error() {
        let content_type = format!("multipart/form-data; boundary={BOUNDARY}");
        for body in [
            // Never closed.
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nvalue"),
            // Headers that never end.
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"a\""),
            // Not multipart at all.
            "just some text".to_string(),
        ] {
            let error = parse_body(&post(&content_type, &body)).unwrap_err();
            assert_eq!(error.status(), 400, "{body:?}");
            let detail = error.body()["detail"].as_str().unwrap().to_string();
            assert!(
                detail.starts_with("Multipart form parse error - "),
                "{body:?}: {detail}"
            );
        }
    }

    #[test]
    fn a_part_without_a_name_is_a_400() {
        let content_type = format!("multipart/form-data; boundary={BOUNDARY}");
        let body = format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data\r\n\r\nvalue\r\n--{BOUNDARY}--\r\n"
        );
        let error = parse_body(&post(&content_type, &body)).unwrap_err();
        assert_eq!(error.status(), 400);
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
