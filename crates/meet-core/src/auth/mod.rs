//! Who is calling: the one way every component resolves the caller from a
//! bearer token or a session cookie (auth.md §3–4, api.md §1.3), with the
//! session cookies and CSRF checks ([`session`]) and their SQL ([`store`]).

pub mod session;
pub mod store;

use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::auth::session::{check_csrf, request_cookie, session_key_hash, SESSION_COOKIE};
use crate::auth::store::Session;
use crate::error::ApiError;
use crate::http::ApiRequest;
use crate::identity::oidc::userinfo_request;
use crate::identity::store::{user_from_row, USER_COLUMNS};
use crate::identity::users::{map_claims, ClaimSettings, User};
use crate::ports::{DbError, Services};
use crate::settings::{SettingError, Settings};
use crate::sql::{rows, timestamp};

/// What validating a bearer token needs: far less than the login flow, so
/// that every component can authenticate API clients.
struct BearerSettings {
    user_endpoint: String,
    claims: ClaimSettings,
    create_user: bool,
    fallback_to_email: bool,
}

impl BearerSettings {
    fn load(settings: &Settings) -> Result<BearerSettings, SettingError> {
        Ok(BearerSettings {
            user_endpoint: settings.required_string("oidc_op_user_endpoint")?,
            claims: ClaimSettings {
                essential_claims: settings.list("oidc_userinfo_essential_claims")?,
                full_name_fields: settings.list("oidc_userinfo_fullname_fields")?,
                short_name_field: settings.string("oidc_userinfo_shortname_field")?,
            },
            create_user: settings.bool("oidc_create_user")?,
            fallback_to_email: settings.bool("oidc_fallback_to_email_for_identification")?,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Caller {
    Anonymous,
    /// Logged in through the browser; the session is kept for logout.
    Session(User, Box<Session>),
    /// An API client with an OIDC access token.
    Bearer(User),
}

impl Caller {
    pub fn user(&self) -> Option<&User> {
        match self {
            Caller::Anonymous => None,
            Caller::Session(user, _) | Caller::Bearer(user) => Some(user),
        }
    }

    /// The user, or the 401 every endpoint gives to anonymous callers.
    pub fn require_user(&self) -> Result<&User, ApiError> {
        self.user().ok_or(ApiError::NotAuthenticated)
    }

    /// A permission failure: 401 for anonymous callers, never 403 (api.md §1.4).
    pub fn deny(&self, error: ApiError) -> ApiError {
        match self {
            Caller::Anonymous => ApiError::NotAuthenticated,
            _ => error,
        }
    }
}

impl From<DbError> for ApiError {
    fn from(error: DbError) -> ApiError {
        ApiError::internal(error)
    }
}

/// What a request presents to say who it is, read without the database.
#[derive(Debug, Clone, PartialEq)]
pub enum Credential {
    Anonymous,
    /// A `sessionid` cookie, by the hash it is stored under.
    Session {
        key_hash: String,
    },
    /// An `Authorization: Bearer` access token and its hash.
    Bearer {
        token: String,
        token_hash: String,
    },
}

impl Credential {
    /// The credential of a request: a bearer token first, then the session
    /// cookie. A malformed bearer header is DRF's 401.
    pub fn of(request: &ApiRequest) -> Result<Credential, ApiError> {
        if let Some(token) = bearer_token(request)? {
            let token_hash = hex::encode(Sha256::digest(token.as_bytes()));
            return Ok(Credential::Bearer { token, token_hash });
        }
        Ok(match request_cookie(request, SESSION_COOKIE) {
            Some(cookie) => Credential::Session {
                key_hash: session_key_hash(&cookie),
            },
            None => Credential::Anonymous,
        })
    }

    /// The caller a statement that embedded [`store::CallerQuery::of`]
    /// resolved (`record`: its `caller` row, if any). `None` when only the
    /// full [`authenticate`] can tell: a bearer token not in the cache,
    /// which the provider must check.
    pub fn resolved(&self, record: Option<store::CallerRecord>) -> Option<Caller> {
        match (self, record) {
            (Credential::Anonymous, _) | (Credential::Session { .. }, None) => {
                Some(Caller::Anonymous)
            }
            (Credential::Session { key_hash }, Some(record)) => Some(Caller::Session(
                record.user.clone(),
                Box::new(Session {
                    key_hash: key_hash.clone(),
                    data: record.session_data.unwrap_or_default(),
                    csrf_token: record.csrf_token,
                    user: Some(record.user),
                }),
            )),
            (Credential::Bearer { .. }, Some(record)) => Some(Caller::Bearer(record.user)),
            (Credential::Bearer { .. }, None) => None,
        }
    }
}

/// For an unsafe request folded into one statement: the CSRF token the
/// session must hold, once every check that needs no database has passed
/// (the Origin, the cookie equal to the header); `None` when one fails, and
/// the request must go through [`authenticate`] for its exact error.
pub fn csrf_token_to_match(
    request: &ApiRequest,
    services: &Services,
) -> Result<Option<String>, ApiError> {
    let Some(header) = request.header("x-csrftoken") else {
        return Ok(None);
    };
    let trusted = services.settings().list("csrf_trusted_origins")?;
    // The header stands in for the session's token: the statement then
    // requires the session's token to equal it.
    if check_csrf(request, header, &trusted).is_err() {
        return Ok(None);
    }
    Ok(Some(header.to_string()))
}

/// Resolves the caller: a bearer token first, then the session cookie. A
/// session-authenticated unsafe request must pass the CSRF check.
pub fn authenticate(request: &ApiRequest, services: &Services) -> Result<Caller, ApiError> {
    let key_hash = match Credential::of(request)? {
        Credential::Anonymous => return Ok(Caller::Anonymous),
        Credential::Bearer { token, token_hash } => {
            return authenticate_bearer(&token, &token_hash, services).map(Caller::Bearer)
        }
        Credential::Session { key_hash } => key_hash,
    };
    let now = services.clock.now();
    let Some(session) = crate::auth::store::load(services.db, &key_hash, now)? else {
        return Ok(Caller::Anonymous);
    };
    let Some(user) = session.user.clone().filter(|user| user.is_active) else {
        return Ok(Caller::Anonymous);
    };
    if !request.method.is_safe() {
        let trusted = services.settings().list("csrf_trusted_origins")?;
        check_csrf(
            request,
            session.csrf_token.as_deref().unwrap_or(""),
            &trusted,
        )?;
    }
    Ok(Caller::Session(user, Box::new(session)))
}

/// The token of an `Authorization: Bearer` header. A header of another
/// scheme is not ours to judge and is ignored.
fn bearer_token(request: &ApiRequest) -> Result<Option<String>, ApiError> {
    let Some(header) = request.header("authorization") else {
        return Ok(None);
    };
    let mut parts = header.split(' ');
    if !parts
        .next()
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("bearer"))
    {
        return Ok(None);
    }
    let rest: Vec<&str> = parts.collect();
    match rest.as_slice() {
        [] | [""] => Err(ApiError::AuthenticationFailed(
            "Invalid \"bearer\" header: No credentials provided.".into(),
        )),
        [token] => Ok(Some(token.to_string())),
        _ => Err(ApiError::AuthenticationFailed(
            "Invalid \"bearer\" header: Credentials string should not contain spaces.".into(),
        )),
    }
}

/// Validates an access token at the provider's userinfo endpoint, with the
/// resolved user cached under the token's hash for `oidc_bearer_cache_seconds`.
fn authenticate_bearer(
    token: &str,
    token_hash: &str,
    services: &Services,
) -> Result<User, ApiError> {
    let now = services.clock.now();
    if let Some(user) = cached_bearer_user(services, token_hash, now)? {
        return Ok(user);
    }
    let settings = services.settings();
    let oidc = BearerSettings::load(&settings)?;
    let login_failed = || ApiError::AuthenticationFailed("Login failed".into());
    let response = services
        .http
        .send(userinfo_request(&oidc.user_endpoint, token))
        .map_err(|error| {
            eprintln!("bearer authentication: {error}");
            login_failed()
        })?;
    if response.status == 401 {
        if let Some(description) = response
            .header("www-authenticate")
            .and_then(error_description)
        {
            return Err(ApiError::AuthenticationFailed(description));
        }
    }
    if !(200..300).contains(&response.status) {
        return Err(login_failed());
    }
    let claims = match serde_json::from_slice(&response.body) {
        Ok(serde_json::Value::Object(claims)) => claims,
        _ => return Err(login_failed()),
    };
    let no_user = || {
        ApiError::AuthenticationFailed(
            "Login failed: No user found for the given access token.".into(),
        )
    };
    let claimed = map_claims(&claims, &oidc.claims).map_err(|_| no_user())?;
    let user = crate::identity::store::resolve_login(
        services.db,
        &claimed,
        oidc.fallback_to_email,
        oidc.create_user,
        &services.new_uuid(),
        now,
    )?
    .map_err(|_| no_user())?;
    let ttl = settings.u64("oidc_bearer_cache_seconds")?;
    if ttl > 0 {
        services.db.execute(
            "INSERT INTO meet_bearer_token (token_hash, user_id, expires_at, cached_at) \
             VALUES (?, ?, ?, ?) ON CONFLICT (token_hash) DO UPDATE SET user_id = excluded.user_id, \
               expires_at = excluded.expires_at, cached_at = excluded.cached_at",
            &[
                token_hash.into(),
                user.id.clone().into(),
                timestamp(now + time::Duration::seconds(i64::try_from(ttl).unwrap_or(i64::MAX))).into(),
                timestamp(now).into(),
            ],
        )?;
    }
    Ok(user)
}

fn cached_bearer_user(
    services: &Services,
    token_hash: &str,
    now: OffsetDateTime,
) -> Result<Option<User>, ApiError> {
    let result = services.db.execute(
        &format!(
            "SELECT {USER_COLUMNS} FROM meet_bearer_token b JOIN meet_user u ON u.id = b.user_id \
             WHERE b.token_hash = ? AND b.expires_at > ? AND u.is_active = 1"
        ),
        &[token_hash.into(), timestamp(now).into()],
    )?;
    let user = rows(&result)
        .next()
        .map(|row| user_from_row(&row))
        .transpose()?;
    Ok(user)
}

/// `error_description="..."` of a `WWW-Authenticate` challenge.
fn error_description(challenge: &str) -> Option<String> {
    let start = challenge.find("error_description=\"")? + "error_description=\"".len();
    let rest = &challenge[start..];
    Some(rest[..rest.find('"')?].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Method;

    fn with_authorization(value: &str) -> ApiRequest {
        ApiRequest::new(Method::GET, "/").with_header("authorization", value)
    }

    #[test]
    fn bearer_headers_are_parsed_as_drf_does() {
        assert_eq!(
            bearer_token(&with_authorization("Bearer abc")).unwrap(),
            Some("abc".into())
        );
        assert_eq!(
            bearer_token(&with_authorization("bearer abc")).unwrap(),
            Some("abc".into())
        );
        assert_eq!(
            bearer_token(&with_authorization("Basic abc")).unwrap(),
            None
        );
        assert_eq!(
            bearer_token(&with_authorization("Bearer"))
                .unwrap_err()
                .body()["detail"],
            "Invalid \"bearer\" header: No credentials provided."
        );
        assert_eq!(
            bearer_token(&with_authorization("Bearer a b"))
                .unwrap_err()
                .body()["detail"],
            "Invalid \"bearer\" header: Credentials string should not contain spaces."
        );
    }

    fn services_test(http: &crate::native::ScriptedHttp, run: impl FnOnce(&Services)) {
        use crate::native::{migrated_database, FixedClock, OsRandom};
        use crate::settings::StaticVariables;
        let db = migrated_database().unwrap();
        let clock = FixedClock::new(time::macros::datetime!(2025-06-30 12:00 UTC));
        let variables = StaticVariables::new(&[
            ("oidc_rp_sign_algo", "RS256"),
            ("oidc_op_user_endpoint_format", "AUTO"),
            ("oidc_op_jwks_endpoint", "https://idp.example/jwks"),
            ("oidc_rp_client_id", "meet"),
            ("oidc_rp_client_secret", ""),
            (
                "oidc_op_authorization_endpoint",
                "https://idp.example/authorize",
            ),
            ("oidc_op_token_endpoint", "https://idp.example/token"),
            ("oidc_op_user_endpoint", "https://idp.example/userinfo"),
            ("oidc_op_logout_endpoint", ""),
            ("oidc_rp_scopes", "openid email"),
            ("oidc_use_nonce", "true"),
            ("oidc_use_pkce", "false"),
            ("oidc_auth_request_extra_params", "{}"),
            ("oidc_redirect_field_name", "returnTo"),
            ("oidc_redirect_allowed_hosts", ""),
            ("oidc_redirect_require_https", "false"),
            ("oidc_store_id_token", "true"),
            ("oidc_create_user", "true"),
            ("oidc_fallback_to_email_for_identification", "false"),
            ("oidc_userinfo_essential_claims", ""),
            ("oidc_userinfo_fullname_fields", "given_name,usual_name"),
            ("oidc_userinfo_shortname_field", "given_name"),
            ("login_redirect_url", ""),
            ("login_redirect_url_failure", ""),
            ("logout_redirect_url", ""),
            ("allow_logout_get_method", "true"),
            ("oidc_bearer_cache_seconds", "60"),
        ]);
        let services = Services {
            db: &db,
            http,
            clock: &clock,
            random: &OsRandom,
            variables: &variables,
        };
        run(&services);
    }

    #[test]
    fn bearer_users_are_resolved_once_then_cached() {
        let http = crate::native::ScriptedHttp::default();
        http.answer(
            200,
            "application/json",
            r#"{"sub": "robot", "email": "r@x.org"}"#,
        );
        services_test(&http, |services| {
            let request = with_authorization("Bearer token-1");
            for _ in 0..2 {
                let caller = authenticate(&request, services).unwrap();
                assert_eq!(
                    caller.user().and_then(|u| u.email.as_deref()),
                    Some("r@x.org")
                );
            }
        });
        let sent = http.sent();
        assert_eq!(sent.len(), 1, "the second call is served from the cache");
        assert_eq!(sent[0].url, "https://idp.example/userinfo");
        assert!(sent[0]
            .headers
            .contains(&("authorization".into(), "Bearer token-1".into())));
    }

    #[test]
    fn an_unreachable_provider_is_a_failed_login_not_a_crash() {
        let http = crate::native::ScriptedHttp::default();
        services_test(&http, |services| {
            let error = authenticate(&with_authorization("Bearer t"), services).unwrap_err();
            assert_eq!(error.status(), 401);
            assert_eq!(error.body()["detail"], "Login failed");
        });
    }

    #[test]
    fn reads_the_error_description_of_a_challenge() {
        assert_eq!(
            error_description(
                r#"Bearer error="invalid_token", error_description="The access token expired""#
            ),
            Some("The access token expired".into())
        );
        assert_eq!(error_description("Bearer"), None);
    }
}
