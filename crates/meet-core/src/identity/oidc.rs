//! The OpenID Connect relying party (auth.md §1): authorization requests,
//! safe redirects, the token request, ID-token and userinfo verification.
//! Pure functions: the identity component does the HTTP and the storage.

use std::time::Duration;

use base64::Engine;
use jwt_compact::alg::{Hs256, Hs256Key, Rsa, RsaPublicKey};
use jwt_compact::jwk::JsonWebKey;
use jwt_compact::{AlgorithmExt, Claims, TimeOptions, UntrustedToken};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use url::Url;

use crate::identity::users::ClaimSettings;
use crate::ports::OutboundRequest;
use crate::settings::{SettingError, Settings};

/// How the userinfo endpoint answers (`OIDC_OP_USER_ENDPOINT_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserinfoFormat {
    /// A JWT when the answer's content type is `application/jwt`, else JSON.
    Auto,
    Json,
    Jwt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignAlgorithm {
    Rs256,
    Hs256,
}

#[derive(Debug, Clone)]
pub struct OidcSettings {
    pub client_id: String,
    pub client_secret: Option<String>,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub user_endpoint: String,
    pub jwks_endpoint: Option<String>,
    pub logout_endpoint: Option<String>,
    pub scopes: String,
    pub sign_algorithm: SignAlgorithm,
    pub user_endpoint_format: UserinfoFormat,
    pub use_nonce: bool,
    pub use_pkce: bool,
    pub extra_params: Map<String, Value>,
    pub redirect_field_name: String,
    pub redirect_allowed_hosts: Vec<String>,
    pub redirect_require_https: bool,
    pub store_id_token: bool,
    pub create_user: bool,
    pub fallback_to_email: bool,
    pub claims: ClaimSettings,
    pub login_redirect_url: String,
    pub login_redirect_url_failure: String,
    pub logout_redirect_url: String,
    pub allow_logout_get: bool,
}

impl OidcSettings {
    pub fn load(settings: &Settings) -> Result<OidcSettings, SettingError> {
        let sign_algorithm = match settings.string("oidc_rp_sign_algo")?.trim() {
            "RS256" => SignAlgorithm::Rs256,
            "HS256" => SignAlgorithm::Hs256,
            _ => {
                return Err(SettingError::new(
                    "oidc_rp_sign_algo",
                    "must be RS256 or HS256",
                ))
            }
        };
        let user_endpoint_format = match settings.string("oidc_op_user_endpoint_format")?.trim() {
            "AUTO" => UserinfoFormat::Auto,
            "JSON" => UserinfoFormat::Json,
            "JWT" => UserinfoFormat::Jwt,
            _ => {
                return Err(SettingError::new(
                    "oidc_op_user_endpoint_format",
                    "must be AUTO, JSON or JWT",
                ))
            }
        };
        let jwks_endpoint = settings.optional_string("oidc_op_jwks_endpoint")?;
        if sign_algorithm == SignAlgorithm::Rs256 && jwks_endpoint.is_none() {
            return Err(SettingError::new(
                "oidc_op_jwks_endpoint",
                "must be set when oidc_rp_sign_algo is RS256",
            ));
        }
        let redirect = |name: &str| -> Result<String, SettingError> {
            Ok(settings
                .optional_string(name)?
                .unwrap_or_else(|| "/".to_string()))
        };
        Ok(OidcSettings {
            client_id: settings.string("oidc_rp_client_id")?,
            client_secret: settings.optional_string("oidc_rp_client_secret")?,
            authorization_endpoint: settings.required_string("oidc_op_authorization_endpoint")?,
            token_endpoint: settings.required_string("oidc_op_token_endpoint")?,
            user_endpoint: settings.required_string("oidc_op_user_endpoint")?,
            jwks_endpoint,
            logout_endpoint: settings.optional_string("oidc_op_logout_endpoint")?,
            scopes: settings.string("oidc_rp_scopes")?,
            sign_algorithm,
            user_endpoint_format,
            use_nonce: settings.bool("oidc_use_nonce")?,
            use_pkce: settings.bool("oidc_use_pkce")?,
            extra_params: settings.dict("oidc_auth_request_extra_params")?,
            redirect_field_name: settings.string("oidc_redirect_field_name")?,
            redirect_allowed_hosts: settings.list("oidc_redirect_allowed_hosts")?,
            redirect_require_https: settings.bool("oidc_redirect_require_https")?,
            store_id_token: settings.bool("oidc_store_id_token")?,
            create_user: settings.bool("oidc_create_user")?,
            fallback_to_email: settings.bool("oidc_fallback_to_email_for_identification")?,
            claims: ClaimSettings {
                essential_claims: settings.list("oidc_userinfo_essential_claims")?,
                full_name_fields: settings.list("oidc_userinfo_fullname_fields")?,
                short_name_field: settings.string("oidc_userinfo_shortname_field")?,
            },
            login_redirect_url: redirect("login_redirect_url")?,
            login_redirect_url_failure: redirect("login_redirect_url_failure")?,
            logout_redirect_url: redirect("logout_redirect_url")?,
            allow_logout_get: settings.bool("allow_logout_get_method")?,
        })
    }
}

/// The PKCE S256 challenge of a verifier.
pub fn pkce_challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// The URL the browser is sent to for login (auth.md §1.1 step 4).
pub fn authorization_url(
    settings: &OidcSettings,
    redirect_uri: &str,
    state: &str,
    nonce: Option<&str>,
    silent: bool,
    code_challenge: Option<&str>,
) -> Result<String, SettingError> {
    let mut url = Url::parse(&settings.authorization_endpoint).map_err(|_| {
        SettingError::new("oidc_op_authorization_endpoint", "must be an absolute URL")
    })?;
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("response_type", "code")
            .append_pair("scope", &settings.scopes)
            .append_pair("client_id", &settings.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("state", state);
        for (key, value) in &settings.extra_params {
            let value = match value {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            query.append_pair(key, &value);
        }
        if silent {
            query.append_pair("prompt", "none");
        }
        if let Some(nonce) = nonce {
            query.append_pair("nonce", nonce);
        }
        if let Some(challenge) = code_challenge {
            query
                .append_pair("code_challenge", challenge)
                .append_pair("code_challenge_method", "S256");
        }
    }
    Ok(url.into())
}

/// Django's `url_has_allowed_host_and_scheme`: a relative URL, or an
/// absolute http(s) URL to an allowed host (https only when required).
pub fn is_safe_redirect(
    target: &str,
    request_host: &str,
    allowed_hosts: &[String],
    require_https: bool,
) -> bool {
    let target = target.trim();
    if target.is_empty()
        || target.chars().any(char::is_control)
        || target.contains('\\')
        || target.starts_with("///")
    {
        return false;
    }
    if target.starts_with("//") {
        // Scheme-relative: judge it as if on the request's scheme.
        return is_safe_redirect(
            &format!("http:{target}"),
            request_host,
            allowed_hosts,
            require_https,
        ) && !require_https;
    }
    match Url::parse(target) {
        Err(url::ParseError::RelativeUrlWithoutBase) => {
            // A path: it stays on this site. `x:y` style schemes never get here.
            !target.contains(':') || target.starts_with('/') || target.starts_with('?')
        }
        Err(_) => false,
        Ok(url) => {
            if !matches!(url.scheme(), "http" | "https") {
                return false;
            }
            if require_https && url.scheme() != "https" {
                return false;
            }
            let Some(host) = url.host_str() else {
                return false;
            };
            let host_port = match url.port() {
                Some(port) => format!("{host}:{port}"),
                None => host.to_string(),
            };
            let allowed = |candidate: &str| {
                candidate.eq_ignore_ascii_case(&host_port) || candidate.eq_ignore_ascii_case(host)
            };
            allowed(request_host) || allowed_hosts.iter().any(|h| allowed(h))
        }
    }
}

/// The token request of the authorization-code grant.
pub fn token_request(
    settings: &OidcSettings,
    code: &str,
    redirect_uri: &str,
    code_verifier: Option<&str>,
) -> OutboundRequest {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("client_id", &settings.client_id);
    if let Some(secret) = &settings.client_secret {
        form.append_pair("client_secret", secret);
    }
    form.append_pair("grant_type", "authorization_code")
        .append_pair("code", code)
        .append_pair("redirect_uri", redirect_uri);
    if let Some(verifier) = code_verifier {
        form.append_pair("code_verifier", verifier);
    }
    OutboundRequest {
        method: "POST".into(),
        url: settings.token_endpoint.clone(),
        headers: vec![
            (
                "content-type".into(),
                "application/x-www-form-urlencoded".into(),
            ),
            ("accept".into(), "application/json".into()),
        ],
        body: form.finish().into_bytes(),
        timeout: None,
    }
}

/// The userinfo request for an access token.
pub fn userinfo_request(user_endpoint: &str, access_token: &str) -> OutboundRequest {
    OutboundRequest {
        method: "GET".into(),
        url: user_endpoint.to_string(),
        headers: vec![("authorization".into(), format!("Bearer {access_token}"))],
        body: Vec::new(),
        timeout: None,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("malformed token: {0}")]
    Malformed(String),
    /// The key id is not in the key set we hold: fetch the set again.
    #[error("no key {0:?} in the provider's key set")]
    UnknownKey(Option<String>),
    #[error("token signature or claims invalid: {0}")]
    Invalid(String),
    #[error("nonce mismatch")]
    NonceMismatch,
}

/// How long an ID token may be past its expiry (clock skew).
const LEEWAY: Duration = Duration::from_secs(60);

/// Verifies a JWT from the provider (ID token or signed userinfo) and
/// returns its claims. RS256 uses the key of the token's `kid` in `jwks`;
/// HS256 uses the client secret.
pub fn verify_provider_jwt(
    token: &str,
    settings: &OidcSettings,
    jwks: &Value,
    now: OffsetDateTime,
) -> Result<Map<String, Value>, TokenError> {
    let untrusted =
        UntrustedToken::new(token).map_err(|error| TokenError::Malformed(error.to_string()))?;
    let verified: Claims<Map<String, Value>> = match settings.sign_algorithm {
        SignAlgorithm::Rs256 => {
            if untrusted.algorithm() != "RS256" {
                return Err(TokenError::Invalid(format!(
                    "expected RS256, got {}",
                    untrusted.algorithm()
                )));
            }
            let kid = untrusted.header().key_id.clone();
            let key = find_rsa_key(jwks, kid.as_deref())?;
            Rsa::rs256()
                .validator::<Map<String, Value>>(&key)
                .validate(&untrusted)
                .map_err(|error| TokenError::Invalid(error.to_string()))?
                .claims()
                .clone()
        }
        SignAlgorithm::Hs256 => {
            let secret = settings.client_secret.as_deref().unwrap_or_default();
            Hs256
                .validator::<Map<String, Value>>(&Hs256Key::new(secret.as_bytes()))
                .validate(&untrusted)
                .map_err(|error| TokenError::Invalid(error.to_string()))?
                .claims()
                .clone()
        }
    };
    let options = TimeOptions::new(
        chrono::Duration::from_std(LEEWAY).unwrap_or_default(),
        move || to_chrono(now),
    );
    if verified.expiration.is_some() {
        verified
            .validate_expiration(&options)
            .map_err(|error| TokenError::Invalid(error.to_string()))?;
    }
    if verified.not_before.is_some() {
        verified
            .validate_maturity(&options)
            .map_err(|error| TokenError::Invalid(error.to_string()))?;
    }
    let mut claims = verified.custom;
    for (name, time) in [
        ("exp", verified.expiration),
        ("nbf", verified.not_before),
        ("iat", verified.issued_at),
    ] {
        if let Some(time) = time {
            claims.insert(name.into(), Value::from(time.timestamp()));
        }
    }
    Ok(claims)
}

/// Verifies an ID token: signature, time claims, and `nonce` when we sent one.
pub fn verify_id_token(
    token: &str,
    settings: &OidcSettings,
    jwks: &Value,
    expected_nonce: Option<&str>,
    now: OffsetDateTime,
) -> Result<Map<String, Value>, TokenError> {
    let claims = verify_provider_jwt(token, settings, jwks, now)?;
    if let Some(expected) = expected_nonce {
        let nonce = claims.get("nonce").and_then(Value::as_str).unwrap_or("");
        let same = subtle::ConstantTimeEq::ct_eq(nonce.as_bytes(), expected.as_bytes());
        if !bool::from(same) {
            return Err(TokenError::NonceMismatch);
        }
    }
    Ok(claims)
}

fn to_chrono(now: OffsetDateTime) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(now.unix_timestamp(), now.nanosecond()).unwrap_or_default()
}

fn find_rsa_key(jwks: &Value, kid: Option<&str>) -> Result<RsaPublicKey, TokenError> {
    let keys = jwks
        .get("keys")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let candidate = keys.iter().find(|key| {
        let key_kid = key.get("kid").and_then(Value::as_str);
        let is_rsa = key.get("kty").and_then(Value::as_str) == Some("RSA");
        let for_signing = key
            .get("use")
            .and_then(Value::as_str)
            .is_none_or(|usage| usage == "sig");
        is_rsa && for_signing && (kid.is_none() || key_kid == kid)
    });
    let Some(candidate) = candidate else {
        return Err(TokenError::UnknownKey(kid.map(str::to_string)));
    };
    let jwk: JsonWebKey<'_> = serde_json::from_value(candidate.clone())
        .map_err(|error| TokenError::Invalid(format!("bad JWK: {error}")))?;
    RsaPublicKey::try_from(&jwk).map_err(|error| TokenError::Invalid(format!("bad JWK: {error}")))
}

/// What the token endpoint answered.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenResponse {
    pub id_token: String,
    pub access_token: String,
}

pub fn parse_token_response(body: &[u8]) -> Option<TokenResponse> {
    let value: Value = serde_json::from_slice(body).ok()?;
    Some(TokenResponse {
        id_token: value.get("id_token")?.as_str()?.to_string(),
        access_token: value.get("access_token")?.as_str()?.to_string(),
    })
}

/// Whether a userinfo answer is a signed JWT rather than JSON.
pub fn userinfo_is_jwt(format: UserinfoFormat, content_type: Option<&str>) -> bool {
    match format {
        UserinfoFormat::Json => false,
        UserinfoFormat::Jwt => true,
        UserinfoFormat::Auto => content_type
            .and_then(|value| value.split(';').next())
            .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/jwt")),
    }
}
