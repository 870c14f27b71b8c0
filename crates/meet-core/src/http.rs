//! The request and response shapes the core works with, independent of Spin.

use serde::Serialize;

pub use http::Method;

/// The method of a request, upper-cased as Django does. A name that is not a
/// valid HTTP token (which a server would not pass on anyway) becomes the
/// extension method `INVALID`, which no route allows.
pub fn parse_method(name: &str) -> Method {
    Method::from_bytes(name.to_ascii_uppercase().as_bytes())
        .unwrap_or_else(|_| Method::from_bytes(b"INVALID").expect("a valid token"))
}

/// The first value of header `name` (compared without case) in a list of
/// name/value pairs: the one header lookup of requests and responses alike.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

/// An incoming API request, already read in full.
#[derive(Debug, Clone)]
pub struct ApiRequest {
    pub method: Method,
    /// The path as sent, percent-encoded, without the query.
    pub path: String,
    /// The raw query string, without the `?`.
    pub query: String,
    /// Header names in lower case, values as sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl ApiRequest {
    pub fn new(method: Method, path_and_query: &str) -> ApiRequest {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        ApiRequest {
            method,
            path: path.to_string(),
            query: query.to_string(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> ApiRequest {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_string()));
        self
    }

    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> ApiRequest {
        self.body = body.into();
        self
    }

    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// The first value of a query parameter, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.query.as_bytes())
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    }
}

/// A response ready to be written out by the component.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl ApiResponse {
    /// A JSON body: a `Value`, or a typed payload serialized straight into it.
    /// A payload that cannot be serialized (only a map with non-string keys
    /// could fail) is a 500 with a DRF body, never a panic.
    pub fn json(status: u16, body: &impl Serialize) -> ApiResponse {
        let (status, body) = match serde_json::to_vec(body) {
            Ok(body) => (status, body),
            Err(_) => (
                500,
                br#"{"detail":"The response could not be serialized."}"#.to_vec(),
            ),
        };
        ApiResponse {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body,
        }
    }

    pub fn empty(status: u16) -> ApiResponse {
        ApiResponse {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn redirect(status: u16, location: &str) -> ApiResponse {
        ApiResponse::empty(status).with_header("location", location)
    }

    pub fn with_header(mut self, name: &str, value: &str) -> ApiResponse {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_that_cannot_be_serialized_is_a_500_not_a_panic() {
        let mut map = std::collections::HashMap::new();
        map.insert((1, 2), "a key JSON cannot hold");

        let response = ApiResponse::json(200, &map);

        assert_eq!(response.status, 500);
        let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
        assert_eq!(body["detail"], "The response could not be serialized.");
    }

    #[test]
    fn splits_path_and_decodes_query() {
        let request = ApiRequest::new(
            Method::GET,
            "/api/v1.0/rooms/x/?username=J%C3%A9r%C3%B4me+D",
        );
        assert_eq!(request.path, "/api/v1.0/rooms/x/");
        assert_eq!(request.query_param("username").as_deref(), Some("Jérôme D"));
        assert_eq!(request.query_param("missing"), None);
    }

    #[test]
    fn headers_are_case_insensitive() {
        let request = ApiRequest::new(Method::GET, "/").with_header("Content-Type", "a/b");
        assert_eq!(request.header("content-type"), Some("a/b"));
    }
}
