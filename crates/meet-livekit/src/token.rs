//! Minting LiveKit access tokens: participant tokens handed to browsers
//! (livekit.md §2.2–2.4) and the short grants the backend uses for its own
//! server API calls (§3).
//!
//! The claims reproduce what the Python SDK (`livekit-api` 1.0.3) writes:
//! empty or unset grant fields are left out, `sub` and `iss` always present.

use std::fmt;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use jwt_compact::alg::{Hs256, Hs256Key};
use jwt_compact::{AlgorithmExt, Claims, Header};
use serde::Serialize;

use crate::color::color_for_identity;

/// Lifetime of every token: the SDK's default TTL. The frontend caches room
/// data for as long, so a cached token is still valid.
pub const TOKEN_TTL: Duration = Duration::from_secs(6 * 60 * 60);

/// What a participant may publish.
pub const PUBLISH_SOURCES: [&str; 4] =
    ["camera", "microphone", "screen_share", "screen_share_audio"];

/// Display name of participants who are not logged in and gave no name.
pub const ANONYMOUS_NAME: &str = "Anonymous";

/// The API key and secret shared with the LiveKit server.
#[derive(Clone, PartialEq, Eq)]
pub struct LiveKitCredentials {
    /// Issuer (`iss`) of every token, and the only issuer accepted back.
    pub api_key: String,
    /// The HS256 key.
    pub api_secret: String,
}

impl fmt::Debug for LiveKitCredentials {
    // Keeps the secret out of logs and panic messages.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("LiveKitCredentials")
            .field("api_key", &self.api_key)
            .field("api_secret", &"<redacted>")
            .finish()
    }
}

/// Who asks for a participant token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller<'a> {
    /// Not logged in. `identity` is a fresh random UUID v4 (dashed string)
    /// that the caller drew for this token: each token is a new participant.
    Anonymous { identity: &'a str },
    /// A logged-in user. `sub` is the user's OIDC subject; `display_name`
    /// the user's string form (email, else admin email, else id).
    Authenticated {
        sub: Option<&'a str>,
        display_name: &'a str,
    },
}

/// Everything that varies between participant tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParticipantGrant {
    /// The LiveKit room name: the room UUID, or the slug of an unregistered room.
    pub room: String,
    /// The participant identity (`sub` claim).
    pub identity: String,
    /// The display name (`name` claim).
    pub name: String,
    /// The colour put in the metadata; `None` derives it from the identity.
    pub color: Option<String>,
}

impl ParticipantGrant {
    /// The identity and name rules of livekit.md §2.3: `username`, when
    /// non-empty, overrides the caller's default name.
    pub fn for_caller(
        room: &str,
        caller: Caller<'_>,
        username: Option<&str>,
        color: Option<&str>,
    ) -> ParticipantGrant {
        let (identity, default_name) = match caller {
            Caller::Anonymous { identity } => (identity.to_string(), ANONYMOUS_NAME),
            // Upstream formats the subject with `str()`, so a user without
            // one (created in the admin) joins as "None".
            Caller::Authenticated { sub, display_name } => {
                (sub.unwrap_or("None").to_string(), display_name)
            }
        };
        let name = username
            .filter(|username| !username.is_empty())
            .unwrap_or(default_name);
        ParticipantGrant {
            room: room.to_string(),
            identity,
            name: name.to_string(),
            color: color.map(str::to_string),
        }
    }

    /// The colour the token carries: the given one, else the identity's.
    pub fn effective_color(&self) -> String {
        match &self.color {
            Some(color) => color.clone(),
            None => color_for_identity(&self.identity),
        }
    }
}

/// The privileges of a token for one server API call (livekit.md §3). Flags
/// left `false` are not granted, and absent from the token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerGrant {
    /// Room the call acts on, if the call is about one room.
    pub room: Option<String>,
    pub room_list: bool,
    pub room_admin: bool,
    pub room_record: bool,
    /// LiveKit's `sip.admin` claim: the whole SIP service (trunks, dispatch
    /// rules).
    pub sip_admin: bool,
}

impl ServerGrant {
    /// For `RoomService/ListRooms`.
    pub fn room_list() -> ServerGrant {
        ServerGrant {
            room_list: true,
            ..ServerGrant::default()
        }
    }

    /// For `RoomService` calls on one room (`SendData`,
    /// `UpdateParticipant`, `RemoveParticipant`).
    pub fn room_admin(room: &str) -> ServerGrant {
        ServerGrant {
            room: Some(room.to_string()),
            room_admin: true,
            ..ServerGrant::default()
        }
    }

    /// For the `Egress` service.
    pub fn room_record() -> ServerGrant {
        ServerGrant {
            room_record: true,
            ..ServerGrant::default()
        }
    }

    /// For the `SIP` service.
    pub fn sip_admin() -> ServerGrant {
        ServerGrant {
            sip_admin: true,
            ..ServerGrant::default()
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The SDK refuses to mint a join token without both (an unregistered
    /// room whose slug is empty ends here upstream, as a server error).
    #[error("identity and room must be set when joining a room")]
    IdentityAndRoomRequired,
    #[error("the current time cannot be written as a token timestamp")]
    InvalidTime,
    #[error("cannot sign the token: {0}")]
    Signing(String),
}

/// A participant token for `grant`, valid from `now` for [`TOKEN_TTL`].
pub fn participant_token(
    credentials: &LiveKitCredentials,
    grant: &ParticipantGrant,
    now: SystemTime,
) -> Result<String, TokenError> {
    if grant.identity.is_empty() || grant.room.is_empty() {
        return Err(TokenError::IdentityAndRoomRequired);
    }
    let metadata = color_metadata(&grant.effective_color());
    let claims = LiveKitClaims {
        name: &grant.name,
        metadata: &metadata,
        video: VideoGrant {
            room_admin: Some(true),
            room_join: Some(true),
            room: &grant.room,
            can_publish_sources: Some(&PUBLISH_SOURCES),
            can_update_own_metadata: Some(true),
            ..VideoGrant::default()
        },
        sip: None,
        sub: &grant.identity,
        iss: &credentials.api_key,
    };
    sign(credentials, claims, now)
}

/// A token for one server API call with `grant`. Like the SDK's, it has an
/// empty subject and the default publish/subscribe permissions.
pub fn server_token(
    credentials: &LiveKitCredentials,
    grant: &ServerGrant,
    now: SystemTime,
) -> Result<String, TokenError> {
    let claims = LiveKitClaims {
        name: "",
        metadata: "",
        video: VideoGrant {
            room_list: grant.room_list.then_some(true),
            room_record: grant.room_record.then_some(true),
            room_admin: grant.room_admin.then_some(true),
            room: grant.room.as_deref().unwrap_or(""),
            ..VideoGrant::default()
        },
        sip: grant.sip_admin.then_some(SipGrant { admin: true }),
        sub: "",
        iss: &credentials.api_key,
    };
    sign(credentials, claims, now)
}

/// The custom claims, in the SDK's order. `sub` is written even when empty:
/// the SDK adds it after dropping the empty grant fields.
#[derive(Serialize)]
struct LiveKitClaims<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    name: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    metadata: &'a str,
    video: VideoGrant<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sip: Option<SipGrant>,
    sub: &'a str,
    iss: &'a str,
}

/// LiveKit's `SIPGrant` (`sip` claim); `call` (outbound calls) is never
/// needed here.
#[derive(Serialize)]
struct SipGrant {
    admin: bool,
}

/// LiveKit's `VideoGrant`, in the SDK's field order. `None` and empty
/// strings are omitted; the three publish/subscribe flags default to true.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct VideoGrant<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    room_list: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    room_record: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    room_admin: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    room_join: Option<bool>,
    #[serde(skip_serializing_if = "str::is_empty")]
    room: &'a str,
    can_publish: bool,
    can_subscribe: bool,
    can_publish_data: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    can_publish_sources: Option<&'a [&'a str]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    can_update_own_metadata: Option<bool>,
}

impl Default for VideoGrant<'_> {
    fn default() -> Self {
        VideoGrant {
            room_list: None,
            room_record: None,
            room_admin: None,
            room_join: None,
            room: "",
            can_publish: true,
            can_subscribe: true,
            can_publish_data: true,
            can_publish_sources: None,
            can_update_own_metadata: None,
        }
    }
}

fn sign(
    credentials: &LiveKitCredentials,
    custom: LiveKitClaims<'_>,
    now: SystemTime,
) -> Result<String, TokenError> {
    let not_before = whole_seconds(now)?;
    let expiration = not_before
        .checked_add_signed(chrono::Duration::seconds(TOKEN_TTL.as_secs() as i64))
        .ok_or(TokenError::InvalidTime)?;
    let mut claims = Claims::new(custom);
    claims.not_before = Some(not_before);
    claims.expiration = Some(expiration);
    let header = Header::empty().with_token_type("JWT");
    let key = Hs256Key::new(credentials.api_secret.as_bytes());
    Hs256
        .token(&header, &claims, &key)
        .map_err(|error| TokenError::Signing(error.to_string()))
}

/// `now` truncated to the second, as JWT timestamps are.
fn whole_seconds(now: SystemTime) -> Result<DateTime<Utc>, TokenError> {
    let since_epoch = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_err(|_| TokenError::InvalidTime)?;
    let seconds = i64::try_from(since_epoch.as_secs()).map_err(|_| TokenError::InvalidTime)?;
    DateTime::from_timestamp(seconds, 0).ok_or(TokenError::InvalidTime)
}

/// The `metadata` claim: `json.dumps({"color": color})` byte for byte,
/// with Python's `", "`/`": "` spacing and ASCII-only escaping.
fn color_metadata(color: &str) -> String {
    format!("{{\"color\": {}}}", python_json_string(color))
}

/// A JSON string literal as Python's `json.dumps` writes it by default
/// (`ensure_ascii=True`): anything outside printable ASCII is `\uXXXX`.
fn python_json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for character in text.chars() {
        match character {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(character),
            _ => {
                let mut units = [0u16; 2];
                for unit in character.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use jwt_compact::UntrustedToken;
    use serde_json::{json, Value};

    const NOW: u64 = 1_700_000_000;

    fn credentials() -> LiveKitCredentials {
        LiveKitCredentials {
            api_key: "devkey".to_string(),
            api_secret: "secret-of-at-least-32-characters!".to_string(),
        }
    }

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
    }

    /// The header and payload segments, decoded without any checking.
    fn decode(token: &str) -> (Value, Value) {
        let segments: Vec<&str> = token.split('.').collect();
        assert_eq!(segments.len(), 3, "{token}");
        let json = |segment: &str| -> Value {
            let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(segment)
                .unwrap();
            serde_json::from_slice(&bytes).unwrap()
        };
        (json(segments[0]), json(segments[1]))
    }

    fn signature_is_valid(token: &str, secret: &str) -> bool {
        let untrusted = UntrustedToken::new(token).unwrap();
        Hs256
            .validator::<Value>(&Hs256Key::new(secret.as_bytes()))
            .validate(&untrusted)
            .is_ok()
    }

    #[test]
    fn participant_token_has_exactly_the_upstream_claims() {
        let grant = ParticipantGrant {
            room: "9e5bd2b8-4b4e-4b7a-9d4b-5f0a7c3f1e2d".to_string(),
            identity: "2f7f162fe7d1421b90e702bfbfbf8def".to_string(),
            name: "Ada".to_string(),
            color: None,
        };
        let token = participant_token(&credentials(), &grant, at(NOW)).unwrap();

        let (header, payload) = decode(&token);
        assert_eq!(header, json!({"alg": "HS256", "typ": "JWT"}));
        assert_eq!(
            payload,
            json!({
                "iss": "devkey",
                "sub": "2f7f162fe7d1421b90e702bfbfbf8def",
                "nbf": NOW,
                "exp": NOW + 21600,
                "name": "Ada",
                "metadata": "{\"color\": \"hsl(53, 60%, 47%)\"}",
                "video": {
                    "room": "9e5bd2b8-4b4e-4b7a-9d4b-5f0a7c3f1e2d",
                    "roomJoin": true,
                    "roomAdmin": true,
                    "canPublish": true,
                    "canSubscribe": true,
                    "canPublishData": true,
                    "canPublishSources": ["camera", "microphone", "screen_share", "screen_share_audio"],
                    "canUpdateOwnMetadata": true,
                },
            })
        );
        assert!(signature_is_valid(&token, &credentials().api_secret));
        assert!(!signature_is_valid(&token, "another secret"));
    }

    #[test]
    fn participant_token_uses_a_given_color() {
        let grant = ParticipantGrant {
            room: "reunion".to_string(),
            identity: "someone".to_string(),
            name: "Anonymous".to_string(),
            color: Some("hsl(1, 50%, 25%)".to_string()),
        };
        let token = participant_token(&credentials(), &grant, at(NOW)).unwrap();
        let (_, payload) = decode(&token);
        assert_eq!(payload["metadata"], "{\"color\": \"hsl(1, 50%, 25%)\"}");
        assert_eq!(payload["video"]["room"], "reunion");
    }

    #[test]
    fn expiry_is_six_hours_after_not_before() {
        // Sub-second parts are dropped, as Python's `timegm` does.
        let now = at(NOW) + Duration::from_millis(999);
        let grant =
            ParticipantGrant::for_caller("room", Caller::Anonymous { identity: "id" }, None, None);
        let (_, payload) = decode(&participant_token(&credentials(), &grant, now).unwrap());
        assert_eq!(payload["nbf"], NOW);
        assert_eq!(payload["exp"].as_u64(), Some(NOW + 21600));
    }

    #[test]
    fn participant_token_needs_a_room_and_an_identity() {
        let mut grant =
            ParticipantGrant::for_caller("", Caller::Anonymous { identity: "id" }, None, None);
        assert!(matches!(
            participant_token(&credentials(), &grant, at(NOW)),
            Err(TokenError::IdentityAndRoomRequired)
        ));
        grant.room = "room".to_string();
        grant.identity = String::new();
        assert!(matches!(
            participant_token(&credentials(), &grant, at(NOW)),
            Err(TokenError::IdentityAndRoomRequired)
        ));
    }

    #[test]
    fn times_before_the_epoch_are_refused() {
        let grant =
            ParticipantGrant::for_caller("room", Caller::Anonymous { identity: "id" }, None, None);
        let before_epoch = SystemTime::UNIX_EPOCH - Duration::from_secs(1);
        assert!(matches!(
            participant_token(&credentials(), &grant, before_epoch),
            Err(TokenError::InvalidTime)
        ));
    }

    #[test]
    fn identity_and_name_rules() {
        let anonymous = Caller::Anonymous {
            identity: "0b0c5d4e-6f7a-4b8c-9d0e-1f2a3b4c5d6e",
        };
        let user = Caller::Authenticated {
            sub: Some("sub-123"),
            display_name: "ada@example.com",
        };
        let cases = [
            (
                anonymous,
                None,
                "0b0c5d4e-6f7a-4b8c-9d0e-1f2a3b4c5d6e",
                "Anonymous",
            ),
            (
                anonymous,
                Some(""),
                "0b0c5d4e-6f7a-4b8c-9d0e-1f2a3b4c5d6e",
                "Anonymous",
            ),
            (
                anonymous,
                Some("Bob"),
                "0b0c5d4e-6f7a-4b8c-9d0e-1f2a3b4c5d6e",
                "Bob",
            ),
            (user, None, "sub-123", "ada@example.com"),
            (user, Some(""), "sub-123", "ada@example.com"),
            (user, Some(" "), "sub-123", " "),
            (user, Some("Ada L."), "sub-123", "Ada L."),
            (
                Caller::Authenticated {
                    sub: None,
                    display_name: "admin@example.com",
                },
                None,
                "None",
                "admin@example.com",
            ),
        ];
        for (caller, username, identity, name) in cases {
            let grant = ParticipantGrant::for_caller("room", caller, username, None);
            assert_eq!(grant.identity, identity, "{caller:?} {username:?}");
            assert_eq!(grant.name, name, "{caller:?} {username:?}");
            assert_eq!(grant.room, "room");
            assert_eq!(grant.color, None);
        }
    }

    #[test]
    fn color_is_given_or_derived_from_the_identity() {
        let caller = Caller::Authenticated {
            sub: Some("user0"),
            display_name: "user0@example.com",
        };
        let derived = ParticipantGrant::for_caller("room", caller, None, None);
        assert_eq!(derived.effective_color(), "hsl(156, 71%, 54%)");
        let given = ParticipantGrant::for_caller("room", caller, None, Some("hsl(1, 2%, 3%)"));
        assert_eq!(given.effective_color(), "hsl(1, 2%, 3%)");
    }

    #[test]
    fn server_tokens_carry_only_the_requested_grant() {
        let cases = [
            (
                ServerGrant::room_list(),
                json!({"roomList": true, "canPublish": true, "canSubscribe": true, "canPublishData": true}),
            ),
            (
                ServerGrant::room_admin("9e5bd2b8-4b4e-4b7a-9d4b-5f0a7c3f1e2d"),
                json!({
                    "roomAdmin": true,
                    "room": "9e5bd2b8-4b4e-4b7a-9d4b-5f0a7c3f1e2d",
                    "canPublish": true,
                    "canSubscribe": true,
                    "canPublishData": true,
                }),
            ),
            (
                ServerGrant::room_record(),
                json!({"roomRecord": true, "canPublish": true, "canSubscribe": true, "canPublishData": true}),
            ),
        ];
        for (grant, video) in cases {
            let token = server_token(&credentials(), &grant, at(NOW)).unwrap();
            let (header, payload) = decode(&token);
            assert_eq!(header, json!({"alg": "HS256", "typ": "JWT"}));
            assert_eq!(
                payload,
                json!({"iss": "devkey", "sub": "", "nbf": NOW, "exp": NOW + 21600, "video": video}),
                "{grant:?}"
            );
            assert!(signature_is_valid(&token, &credentials().api_secret));
        }
    }

    #[test]
    fn sip_tokens_carry_the_sip_admin_claim() {
        let token = server_token(&credentials(), &ServerGrant::sip_admin(), at(NOW)).unwrap();
        let (_, payload) = decode(&token);
        assert_eq!(
            payload,
            json!({
                "iss": "devkey",
                "sub": "",
                "nbf": NOW,
                "exp": NOW + 21600,
                "video": {"canPublish": true, "canSubscribe": true, "canPublishData": true},
                "sip": {"admin": true},
            })
        );
    }

    #[test]
    fn metadata_is_written_like_python_json_dumps() {
        let cases = [
            ("hsl(53, 60%, 47%)", r#"{"color": "hsl(53, 60%, 47%)"}"#),
            ("a\"b\\c", r#"{"color": "a\"b\\c"}"#),
            ("\n\t\u{1}\u{7f}", r#"{"color": "\n\t\u0001\u007f"}"#),
            ("é😀", r#"{"color": "\u00e9\ud83d\ude00"}"#),
        ];
        for (color, expected) in cases {
            assert_eq!(color_metadata(color), expected);
        }
    }

    #[test]
    fn credentials_debug_hides_the_secret() {
        let shown = format!("{:?}", credentials());
        assert!(shown.contains("devkey"));
        assert!(!shown.contains("secret-of"));
    }
}
