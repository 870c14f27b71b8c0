//! Path routing inside a component, with Django's conventions: every route
//! ends with `/`, a GET/HEAD without it is redirected (`APPEND_SLASH`), and
//! a detail segment never contains `/` or `.`.

use crate::error::ApiError;
use crate::http::{ApiRequest, ApiResponse, Method};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// `{name}`: one non-empty segment without `.`.
    Param,
}

/// The values captured by `{…}` segments, in order.
pub type PathParams = Vec<String>;

/// A table of path patterns such as `/api/v1.0/rooms/{id}/`.
#[derive(Debug, Clone)]
pub struct Router<R> {
    routes: Vec<(Vec<Segment>, R)>,
}

#[derive(Debug, PartialEq)]
pub enum Resolution<R> {
    Matched(R, PathParams),
    /// The path only lacks its trailing slash: send the client there.
    Redirect(ApiResponse),
}

impl<R: Clone> Router<R> {
    pub fn new() -> Router<R> {
        Router { routes: Vec::new() }
    }

    pub fn route(mut self, pattern: &str, route: R) -> Router<R> {
        debug_assert!(pattern.starts_with('/') && pattern.ends_with('/'));
        let segments = pattern
            .trim_matches('/')
            .split('/')
            .map(|segment| {
                if segment.starts_with('{') && segment.ends_with('}') {
                    Segment::Param
                } else {
                    Segment::Literal(segment.to_string())
                }
            })
            .collect();
        self.routes.push((segments, route));
        self
    }

    /// Finds the route of a request; literal routes are tried before routes
    /// with parameters, so `/rooms/creation-callback/` beats `/rooms/{id}/`.
    pub fn resolve(&self, request: &ApiRequest) -> Result<Resolution<R>, ApiError> {
        if let Some(found) = self.find(&request.path) {
            return Ok(found);
        }
        if !request.path.ends_with('/') {
            let slashed = format!("{}/", request.path);
            if self.find(&slashed).is_some() {
                return Ok(Resolution::Redirect(slash_redirect(request, &slashed)));
            }
        }
        Err(ApiError::NotFoundDetail("Not found.".to_string()))
    }

    fn find(&self, path: &str) -> Option<Resolution<R>> {
        let inner = path.strip_suffix('/')?.strip_prefix('/')?;
        let parts: Vec<&str> = inner.split('/').collect();
        let mut best: Option<(usize, &R, PathParams)> = None;
        for (segments, route) in &self.routes {
            if let Some(params) = match_segments(segments, &parts) {
                let literals = segments.len() - params.len();
                if best.as_ref().is_none_or(|(score, _, _)| literals > *score) {
                    best = Some((literals, route, params));
                }
            }
        }
        best.map(|(_, route, params)| Resolution::Matched(route.clone(), params))
    }
}

impl<R: Clone> Default for Router<R> {
    fn default() -> Self {
        Router::new()
    }
}

fn match_segments(segments: &[Segment], parts: &[&str]) -> Option<PathParams> {
    if segments.len() != parts.len() {
        return None;
    }
    let mut params = Vec::new();
    for (segment, part) in segments.iter().zip(parts) {
        match segment {
            Segment::Literal(literal) if literal == part => {}
            Segment::Param => {
                // Django matches on the decoded path.
                let decoded = percent_encoding::percent_decode_str(part).decode_utf8_lossy();
                if decoded.is_empty() || decoded.contains('.') || decoded.contains('/') {
                    return None;
                }
                params.push(decoded.into_owned());
            }
            _ => return None,
        }
    }
    Some(params)
}

/// The 405 of a route that exists but does not take the request's method.
pub fn method_not_allowed(request: &ApiRequest) -> ApiError {
    ApiError::MethodNotAllowed(request.method.as_str().to_string())
}

/// Django redirects safe requests permanently and keeps the query; other
/// methods get a 308 so that a client that follows it keeps method and body.
fn slash_redirect(request: &ApiRequest, slashed: &str) -> ApiResponse {
    let location = if request.query.is_empty() {
        slashed.to_string()
    } else {
        format!("{slashed}?{}", request.query)
    };
    let status = match request.method {
        Method::GET | Method::HEAD => 301,
        _ => 308,
    };
    ApiResponse::redirect(status, &location)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router() -> Router<&'static str> {
        Router::new()
            .route("/api/v1.0/rooms/", "list")
            .route("/api/v1.0/rooms/{id}/", "detail")
            .route("/api/v1.0/rooms/creation-callback/", "callback")
            .route("/api/v1.0/rooms/{id}/enter/", "enter")
    }

    fn resolve(method: Method, uri: &str) -> Result<Resolution<&'static str>, ApiError> {
        router().resolve(&ApiRequest::new(method, uri))
    }

    #[test]
    fn matches_literals_before_parameters() {
        assert_eq!(
            resolve(Method::POST, "/api/v1.0/rooms/creation-callback/").unwrap(),
            Resolution::Matched("callback", vec![])
        );
        assert_eq!(
            resolve(Method::GET, "/api/v1.0/rooms/my-room/enter/").unwrap(),
            Resolution::Matched("enter", vec!["my-room".to_string()])
        );
    }

    #[test]
    fn redirects_safe_requests_to_the_slashed_path_keeping_the_query() {
        let Resolution::Redirect(response) =
            resolve(Method::GET, "/api/v1.0/rooms/abc?username=Jo%20e").unwrap()
        else {
            panic!("expected a redirect");
        };
        assert_eq!(response.status, 301);
        assert_eq!(
            response.header("location"),
            Some("/api/v1.0/rooms/abc/?username=Jo%20e")
        );
        let Resolution::Redirect(response) = resolve(Method::POST, "/api/v1.0/rooms").unwrap()
        else {
            panic!("expected a redirect");
        };
        assert_eq!(response.status, 308);
    }

    #[test]
    fn parameters_are_percent_decoded() {
        assert_eq!(
            resolve(Method::GET, "/api/v1.0/rooms/R%C3%A9union/").unwrap(),
            Resolution::Matched("detail", vec!["Réunion".to_string()])
        );
        assert!(resolve(Method::GET, "/api/v1.0/rooms/a%2Eb/").is_err());
    }

    #[test]
    fn dots_empty_segments_and_unknown_paths_are_not_found() {
        for uri in [
            "/api/v1.0/rooms/a.json/",
            "/api/v1.0/rooms//",
            "/api/v1.0/nothing/",
            "/api/v1.0/rooms/a/b/c/",
        ] {
            let error = resolve(Method::GET, uri).unwrap_err();
            assert_eq!(error.status(), 404, "{uri}");
        }
    }
}
