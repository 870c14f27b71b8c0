//! Checking tokens that LiveKit signs with our credentials, i.e. the
//! `Authorization` header of its webhooks (livekit.md §5).
//!
//! The rules are PyJWT's `decode(token, secret, algorithms=["HS256"],
//! issuer=api_key, leeway=…)` as the Python SDK's `TokenVerifier` calls it:
//! time claims are checked when present, the issuer must be present.

use std::time::{Duration, SystemTime};

use jwt_compact::alg::{Hs256, Hs256Key};
use jwt_compact::{AlgorithmExt, Claims, UntrustedToken, ValidationError};
use serde::Deserialize;
use serde_json::Value;

use crate::token::LiveKitCredentials;

/// The leeway the SDK's verifier allows on time claims.
pub const VERIFY_LEEWAY: Duration = Duration::from_secs(60);

/// The claims of a token that passed [`verify`].
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedClaims {
    pub issuer: String,
    /// The `sub` claim (a participant identity; empty or absent for LiveKit's
    /// own webhook tokens).
    pub subject: Option<String>,
    pub name: Option<String>,
    pub metadata: Option<String>,
    /// Base64 SHA-256 of the request body that the token vouches for.
    pub sha256: Option<String>,
    /// The `video` grant as sent.
    pub video: Option<Value>,
    /// `nbf` and `exp`, Unix seconds.
    pub not_before: Option<i64>,
    pub expires_at: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("malformed token: {0}")]
    Malformed(String),
    #[error("token signature does not verify")]
    BadSignature,
    #[error("token issuer is missing or is not the API key")]
    WrongIssuer,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("the current time cannot be compared with token timestamps")]
    InvalidTime,
}

/// Checks `token` against `credentials` at time `now`: HS256 signature,
/// issuer equal to the API key, `exp`, `nbf` and `iat` (when present) within
/// `leeway`.
pub fn verify(
    token: &str,
    credentials: &LiveKitCredentials,
    now: SystemTime,
    leeway: Duration,
) -> Result<VerifiedClaims, VerifyError> {
    let untrusted =
        UntrustedToken::new(token).map_err(|error| VerifyError::Malformed(error.to_string()))?;
    let key = Hs256Key::new(credentials.api_secret.as_bytes());
    let token = Hs256
        .validator::<ReceivedClaims>(&key)
        .validate(&untrusted)
        .map_err(|error| match error {
            ValidationError::InvalidSignature | ValidationError::InvalidSignatureLen { .. } => {
                VerifyError::BadSignature
            }
            other => VerifyError::Malformed(other.to_string()),
        })?;
    let (_, claims) = token.into_parts();

    if claims.custom.iss.as_deref() != Some(credentials.api_key.as_str()) {
        return Err(VerifyError::WrongIssuer);
    }
    check_times(&claims, now, leeway)?;

    let custom = claims.custom;
    Ok(VerifiedClaims {
        issuer: credentials.api_key.clone(),
        subject: custom.sub,
        name: custom.name,
        metadata: custom.metadata,
        sha256: custom.sha256,
        video: custom.video,
        not_before: claims.not_before.map(|moment| moment.timestamp()),
        expires_at: claims.expiration.map(|moment| moment.timestamp()),
    })
}

/// PyJWT's comparisons with whole seconds. Timestamps are integers, so
/// comparing with `now` truncated to the second gives the same answers as
/// PyJWT's fractional `now`.
fn check_times<T>(
    claims: &Claims<T>,
    now: SystemTime,
    leeway: Duration,
) -> Result<(), VerifyError> {
    let now = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .ok()
        .and_then(|since_epoch| i64::try_from(since_epoch.as_secs()).ok())
        .ok_or(VerifyError::InvalidTime)?;
    let leeway = i64::try_from(leeway.as_secs()).map_err(|_| VerifyError::InvalidTime)?;
    if let Some(expiration) = claims.expiration {
        if expiration.timestamp() <= now.saturating_sub(leeway) {
            return Err(VerifyError::Expired);
        }
    }
    let latest_start = now.saturating_add(leeway);
    if let Some(not_before) = claims.not_before {
        if not_before.timestamp() > latest_start {
            return Err(VerifyError::NotYetValid);
        }
    }
    if let Some(issued_at) = claims.issued_at {
        if issued_at.timestamp() > latest_start {
            return Err(VerifyError::NotYetValid);
        }
    }
    Ok(())
}

/// The claims we read back; anything else in the token is ignored.
#[derive(Deserialize)]
struct ReceivedClaims {
    iss: Option<String>,
    sub: Option<String>,
    name: Option<String>,
    metadata: Option<String>,
    sha256: Option<String>,
    video: Option<Value>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::{participant_token, server_token, ParticipantGrant, ServerGrant};
    use jwt_compact::Header;
    use serde_json::json;

    const NOW: u64 = 1_700_000_000;
    const TTL: u64 = 21600;

    fn credentials() -> LiveKitCredentials {
        LiveKitCredentials {
            api_key: "devkey".to_string(),
            api_secret: "secret-of-at-least-32-characters!".to_string(),
        }
    }

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
    }

    /// A token signed with the test secret and arbitrary claims, as LiveKit
    /// might send.
    fn signed(claims: Value) -> String {
        let claims: Claims<Value> = serde_json::from_value(claims).unwrap();
        let key = Hs256Key::new(credentials().api_secret.as_bytes());
        Hs256
            .token(&Header::empty().with_token_type("JWT"), &claims, &key)
            .unwrap()
    }

    fn participant() -> String {
        let grant = ParticipantGrant {
            room: "room".to_string(),
            identity: "someone".to_string(),
            name: "Ada".to_string(),
            color: None,
        };
        participant_token(&credentials(), &grant, at(NOW)).unwrap()
    }

    #[test]
    fn accepts_our_own_tokens() {
        let claims = verify(&participant(), &credentials(), at(NOW + 10), VERIFY_LEEWAY).unwrap();
        assert_eq!(claims.issuer, "devkey");
        assert_eq!(claims.subject.as_deref(), Some("someone"));
        assert_eq!(claims.name.as_deref(), Some("Ada"));
        assert_eq!(claims.sha256, None);
        assert_eq!(claims.not_before, Some(NOW as i64));
        assert_eq!(claims.expires_at, Some((NOW + TTL) as i64));
        assert_eq!(claims.video.unwrap()["room"], "room");

        let server = server_token(&credentials(), &ServerGrant::room_list(), at(NOW)).unwrap();
        let claims = verify(&server, &credentials(), at(NOW), VERIFY_LEEWAY).unwrap();
        assert_eq!(claims.subject.as_deref(), Some(""));
    }

    #[test]
    fn returns_the_body_hash_of_a_webhook_token() {
        let token = signed(json!({
            "iss": "devkey",
            "nbf": NOW,
            "exp": NOW + 300,
            "sha256": "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
            "video": {},
            "unknown": [1, 2],
        }));
        let claims = verify(&token, &credentials(), at(NOW), VERIFY_LEEWAY).unwrap();
        assert_eq!(
            claims.sha256.as_deref(),
            Some("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=")
        );
        assert_eq!(claims.subject, None);
    }

    #[test]
    fn rejects_a_wrong_secret() {
        let other = LiveKitCredentials {
            api_secret: "another secret".to_string(),
            ..credentials()
        };
        assert!(matches!(
            verify(&participant(), &other, at(NOW), VERIFY_LEEWAY),
            Err(VerifyError::BadSignature)
        ));
    }

    #[test]
    fn rejects_a_wrong_or_missing_issuer() {
        let other = LiveKitCredentials {
            api_key: "otherkey".to_string(),
            ..credentials()
        };
        assert!(matches!(
            verify(&participant(), &other, at(NOW), VERIFY_LEEWAY),
            Err(VerifyError::WrongIssuer)
        ));
        let without_issuer = signed(json!({"nbf": NOW, "exp": NOW + 300}));
        assert!(matches!(
            verify(&without_issuer, &credentials(), at(NOW), VERIFY_LEEWAY),
            Err(VerifyError::WrongIssuer)
        ));
    }

    #[test]
    fn expiry_allows_the_leeway_and_no_more() {
        let token = participant();
        let expiry = NOW + TTL;
        assert!(verify(&token, &credentials(), at(expiry + 59), VERIFY_LEEWAY).is_ok());
        assert!(matches!(
            verify(&token, &credentials(), at(expiry + 60), VERIFY_LEEWAY),
            Err(VerifyError::Expired)
        ));
        assert!(matches!(
            verify(&token, &credentials(), at(expiry + 3600), VERIFY_LEEWAY),
            Err(VerifyError::Expired)
        ));
    }

    #[test]
    fn not_before_allows_the_leeway_and_no_more() {
        let token = participant();
        assert!(verify(&token, &credentials(), at(NOW - 60), VERIFY_LEEWAY).is_ok());
        assert!(matches!(
            verify(&token, &credentials(), at(NOW - 61), VERIFY_LEEWAY),
            Err(VerifyError::NotYetValid)
        ));
        let issued_later = signed(json!({"iss": "devkey", "iat": NOW + 61}));
        assert!(matches!(
            verify(&issued_later, &credentials(), at(NOW), VERIFY_LEEWAY),
            Err(VerifyError::NotYetValid)
        ));
    }

    #[test]
    fn time_claims_are_optional() {
        let token = signed(json!({"iss": "devkey"}));
        assert!(verify(&token, &credentials(), at(NOW), VERIFY_LEEWAY).is_ok());
    }

    #[test]
    fn rejects_garbage_and_other_algorithms() {
        for token in ["", "abc", "a.b.c", "Bearer x.y.z"] {
            assert!(matches!(
                verify(token, &credentials(), at(NOW), VERIFY_LEEWAY),
                Err(VerifyError::Malformed(_))
            ));
        }
        // `alg: none` with the same claims.
        let payload = participant().split('.').nth(1).unwrap().to_string();
        let unsigned = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
        assert!(verify(&unsigned, &credentials(), at(NOW), VERIFY_LEEWAY).is_err());
    }
}
