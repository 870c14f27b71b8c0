//! Path routing inside a component, with Django's conventions: every route
//! ends with `/`, a GET/HEAD without it is redirected (`APPEND_SLASH`), and
//! a detail segment never contains `/` or `.`.

use crate::auth::Caller;
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
/// Routes with user permissions go through [`method_not_allowed_for`];
/// this one is for routes anyone may call or that check a machine token first.
pub fn method_not_allowed(request: &ApiRequest) -> ApiError {
    ApiError::MethodNotAllowed(request.method.as_str().to_string())
}

/// The view-level permission of a route, which DRF checks after
/// authentication and before it looks for the method's handler (api.md §1.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewPermission {
    /// No permission class: `config/`, `request-entry/`, `creation-callback/`.
    AllowAny,
    /// `IsAuthenticated` and its subclasses (`IsSelf`, `HasPrivilegesOnRoom`,
    /// `ResourceAccessPermission`, `HasAbilityPermission`).
    Authenticated,
    /// `RoomPermissions`: safe methods for anyone, the others for users.
    AuthenticatedUnlessSafe,
}

impl ViewPermission {
    /// The 401 an anonymous caller gets when the permission needs a user.
    pub fn check(self, request: &ApiRequest, caller: &Caller) -> Result<(), ApiError> {
        let safe = matches!(request.method, Method::GET | Method::HEAD | Method::OPTIONS);
        let needs_user = match self {
            ViewPermission::AllowAny => false,
            ViewPermission::Authenticated => true,
            ViewPermission::AuthenticatedUnlessSafe => !safe,
        };
        if needs_user {
            caller.require_user()?;
        }
        Ok(())
    }
}

/// The answer to a method the route does not take, once the caller is
/// known: the permission's 401 first, else the 405. So an anonymous
/// `PUT rooms/` is a 401 and an authenticated one a 405.
pub fn method_not_allowed_for(
    request: &ApiRequest,
    caller: &Caller,
    permission: ViewPermission,
) -> ApiError {
    match permission.check(request, caller) {
        Err(refusal) => refusal,
        Ok(()) => method_not_allowed(request),
    }
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
    fn the_view_permission_comes_before_the_405() {
        let signed_in = Caller::Bearer(crate::identity::users::User {
            id: "u1".into(),
            sub: Some("sub-u1".into()),
            email: Some("u@example.org".into()),
            admin_email: None,
            full_name: None,
            short_name: None,
            language: "en-us".into(),
            timezone: "UTC".into(),
            is_active: true,
        });
        let anonymous = Caller::Anonymous;
        let put = ApiRequest::new(Method::PUT, "/api/v1.0/rooms/");
        let options = ApiRequest::new(Method::OPTIONS, "/api/v1.0/rooms/");
        let status = |request: &ApiRequest, caller: &Caller, permission| {
            method_not_allowed_for(request, caller, permission).status()
        };
        assert_eq!(
            status(&put, &anonymous, ViewPermission::AuthenticatedUnlessSafe),
            401
        );
        assert_eq!(
            status(&put, &signed_in, ViewPermission::AuthenticatedUnlessSafe),
            405
        );
        assert_eq!(
            status(
                &options,
                &anonymous,
                ViewPermission::AuthenticatedUnlessSafe
            ),
            405
        );
        assert_eq!(
            status(&options, &anonymous, ViewPermission::Authenticated),
            401
        );
        assert_eq!(status(&put, &anonymous, ViewPermission::AllowAny), 405);
        assert_eq!(
            method_not_allowed_for(&put, &anonymous, ViewPermission::Authenticated).body(),
            serde_json::json!({"detail": "Authentication credentials were not provided."})
        );
        assert_eq!(
            method_not_allowed_for(&put, &signed_in, ViewPermission::Authenticated).body(),
            serde_json::json!({"detail": "Method \"PUT\" not allowed."})
        );
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
