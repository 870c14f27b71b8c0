//! Browser sessions and CSRF, as Django's session and CSRF middleware do
//! them (auth.md §3), with the session stored server-side so that logout
//! really ends it.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::http::ApiRequest;

pub const SESSION_COOKIE: &str = "sessionid";
pub const CSRF_COOKIE: &str = "csrftoken";
/// Django's `CSRF_COOKIE_AGE`: one year.
pub const CSRF_COOKIE_AGE: u64 = 31_449_600;

/// The value of a cookie of the request, if sent.
pub fn request_cookie(request: &ApiRequest, name: &str) -> Option<String> {
    request
        .headers
        .iter()
        .filter(|(key, _)| key == "cookie")
        .flat_map(|(_, value)| cookie::Cookie::split_parse(value.as_str()))
        .filter_map(Result::ok)
        .find(|cookie| cookie.name() == name)
        .map(|cookie| cookie.value().to_string())
}

/// The database key of a session: the SHA-256 of the cookie value, so a
/// leaked database does not leak live sessions.
pub fn session_key_hash(cookie_value: &str) -> String {
    hex::encode(Sha256::digest(cookie_value.as_bytes()))
}

/// Whether the request reached us over HTTPS (directly or through a proxy
/// that says so, as the upstream Production configuration trusts).
pub fn is_secure(request: &ApiRequest) -> bool {
    if let Some(proto) = request.header("x-forwarded-proto") {
        return proto.trim().eq_ignore_ascii_case("https");
    }
    request
        .header("spin-full-url")
        .is_some_and(|url| url.starts_with("https://"))
}

/// `Set-Cookie` for the session: HttpOnly, SameSite=Lax, Secure on HTTPS.
pub fn session_set_cookie(value: &str, max_age: u64, secure: bool) -> String {
    set_cookie(SESSION_COOKIE, value, Some(max_age), true, secure)
}

/// `Set-Cookie` for the CSRF token, readable by the frontend's JavaScript.
pub fn csrf_set_cookie(token: &str, secure: bool) -> String {
    set_cookie(CSRF_COOKIE, token, Some(CSRF_COOKIE_AGE), false, secure)
}

/// `Set-Cookie` that makes the browser forget the session.
pub fn session_clear_cookie(secure: bool) -> String {
    set_cookie(SESSION_COOKIE, "", Some(0), true, secure)
}

pub fn set_cookie(
    name: &str,
    value: &str,
    max_age: Option<u64>,
    http_only: bool,
    secure: bool,
) -> String {
    let mut builder = cookie::Cookie::build((name.to_string(), value.to_string()))
        .path("/")
        .same_site(cookie::SameSite::Lax)
        .http_only(http_only)
        .secure(secure);
    if let Some(seconds) = max_age {
        builder = builder.max_age(cookie::time::Duration::seconds(
            i64::try_from(seconds).unwrap_or(i64::MAX),
        ));
    }
    builder.build().to_string()
}

/// Django's CSRF check for an unsafe request authenticated by session:
/// the Origin, when sent, must be this site or a trusted origin, and the
/// `X-CSRFToken` header must equal the session's token.
pub fn check_csrf(
    request: &ApiRequest,
    session_token: &str,
    trusted_origins: &[String],
) -> Result<(), ApiError> {
    let fail = |reason: String| ApiError::PermissionDenied(format!("CSRF Failed: {reason}"));
    if let Some(origin) = request.header("origin") {
        let own = request_origin(request);
        let trusted = own.as_deref() == Some(origin)
            || trusted_origins.iter().any(|trusted| trusted == origin);
        if !trusted {
            return Err(fail(format!(
                "Origin checking failed - {origin} does not match any trusted origins."
            )));
        }
    }
    let Some(cookie_token) = request_cookie(request, CSRF_COOKIE) else {
        return Err(fail("CSRF cookie not set.".into()));
    };
    let Some(header_token) = request.header("x-csrftoken") else {
        return Err(fail("CSRF token missing.".into()));
    };
    let matches = |a: &str, b: &str| bool::from(a.as_bytes().ct_eq(b.as_bytes()));
    if !matches(header_token, session_token) || !matches(&cookie_token, session_token) {
        return Err(fail(
            "CSRF token from the 'X-Csrftoken' HTTP header incorrect.".into(),
        ));
    }
    Ok(())
}

/// `scheme://host` of the request as the browser addressed it.
pub fn request_origin(request: &ApiRequest) -> Option<String> {
    let host = request.header("host")?;
    let scheme = if is_secure(request) { "https" } else { "http" };
    Some(format!("{scheme}://{host}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Method;

    fn post() -> ApiRequest {
        ApiRequest::new(Method::POST, "/api/v1.0/rooms/")
            .with_header("host", "meet.example")
            .with_header("cookie", "sessionid=abc; csrftoken=tok123")
    }

    #[test]
    fn reads_cookies_among_others() {
        let request = post();
        assert_eq!(
            request_cookie(&request, "sessionid").as_deref(),
            Some("abc")
        );
        assert_eq!(
            request_cookie(&request, "csrftoken").as_deref(),
            Some("tok123")
        );
        assert_eq!(request_cookie(&request, "missing"), None);
    }

    #[test]
    fn csrf_requires_the_matching_header() {
        let missing = check_csrf(&post(), "tok123", &[]).unwrap_err();
        assert_eq!(missing.body()["detail"], "CSRF Failed: CSRF token missing.");
        assert_eq!(missing.status(), 403);

        let wrong = check_csrf(&post().with_header("x-csrftoken", "nope"), "tok123", &[]);
        assert!(wrong.is_err());

        assert!(check_csrf(&post().with_header("X-CSRFToken", "tok123"), "tok123", &[]).is_ok());
        // A cookie that is not the session's token does not pass either.
        assert!(check_csrf(&post().with_header("X-CSRFToken", "tok123"), "other", &[]).is_err());
    }

    #[test]
    fn csrf_refuses_foreign_origins() {
        let request = post()
            .with_header("x-csrftoken", "tok123")
            .with_header("origin", "https://evil.example");
        let error = check_csrf(&request, "tok123", &[]).unwrap_err();
        assert!(error.body()["detail"]
            .as_str()
            .unwrap()
            .contains("Origin checking failed"));
        let same_site = post()
            .with_header("x-csrftoken", "tok123")
            .with_header("origin", "http://meet.example");
        assert!(check_csrf(&same_site, "tok123", &[]).is_ok());
        assert!(check_csrf(&request, "tok123", &["https://evil.example".into()]).is_ok());
    }

    #[test]
    fn cookies_carry_the_right_attributes() {
        let session = session_set_cookie("v", 43200, true);
        assert!(session.starts_with("sessionid=v"));
        for attribute in [
            "HttpOnly",
            "SameSite=Lax",
            "Secure",
            "Path=/",
            "Max-Age=43200",
        ] {
            assert!(session.contains(attribute), "{session}");
        }
        let csrf = csrf_set_cookie("t", false);
        assert!(
            !csrf.contains("HttpOnly") && !csrf.contains("Secure"),
            "{csrf}"
        );
    }

    #[test]
    fn secure_follows_the_forwarded_scheme() {
        let proxied = post().with_header("x-forwarded-proto", "https");
        assert!(is_secure(&proxied));
        assert_eq!(
            request_origin(&proxied).as_deref(),
            Some("https://meet.example")
        );
        let direct = post().with_header("spin-full-url", "http://meet.example/api/v1.0/");
        assert!(!is_secure(&direct));
    }
}
