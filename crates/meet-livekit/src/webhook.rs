//! Webhooks from LiveKit (livekit.md §5): checking the `Authorization`
//! token and body hash, and reading the `WebhookEvent` (protobuf JSON, as
//! the Python SDK's `WebhookReceiver` reads it: unknown fields ignored).

use std::time::SystemTime;

use base64::Engine;
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::messages::{EgressInfo, ParticipantInfo, Room};
use crate::protojson::{integer, message};
use crate::token::LiveKitCredentials;
use crate::verify::{verify, VerifyError, VERIFY_LEEWAY};

/// The events the upstream endpoint accepts; any other is a 422.
pub const KNOWN_EVENTS: [&str; 11] = [
    "room_started",
    "room_finished",
    "participant_joined",
    "participant_left",
    "track_published",
    "track_unpublished",
    "egress_started",
    "egress_updated",
    "egress_ended",
    "ingress_started",
    "ingress_ended",
];

/// `WebhookEvent`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all(deserialize = "camelCase"))]
pub struct WebhookEvent {
    /// `room_started`, `participant_joined`, `egress_ended`, … (may be
    /// anything: check [`WebhookEvent::is_known`]).
    pub event: String,
    #[serde(deserialize_with = "message")]
    pub room: Option<Room>,
    /// Set for `participant_*` and `track_*` events.
    #[serde(deserialize_with = "message")]
    pub participant: Option<ParticipantInfo>,
    /// Set for `egress_*` events.
    #[serde(alias = "egress_info", deserialize_with = "message")]
    pub egress_info: Option<EgressInfo>,
    /// Set for `ingress_*` events; not modelled.
    #[serde(alias = "ingress_info", deserialize_with = "message")]
    pub ingress_info: Option<Map<String, Value>>,
    /// Set for `track_*` events; not modelled.
    #[serde(deserialize_with = "message")]
    pub track: Option<Map<String, Value>>,
    /// Unique event id.
    pub id: String,
    /// Unix seconds.
    #[serde(alias = "created_at", deserialize_with = "integer")]
    pub created_at: i64,
    #[serde(alias = "num_dropped", deserialize_with = "integer")]
    pub num_dropped: i32,
}

impl WebhookEvent {
    /// Reads a webhook body. Never panics; anything that is not a JSON
    /// object matching the message is an error.
    pub fn parse(body: &[u8]) -> Result<WebhookEvent, WebhookError> {
        let text = std::str::from_utf8(body)
            .map_err(|_| WebhookError::InvalidPayload("the body is not UTF-8".to_string()))?;
        let value: Value = serde_json::from_str(text)
            .map_err(|error| WebhookError::InvalidPayload(error.to_string()))?;
        if !value.is_object() {
            return Err(WebhookError::InvalidPayload(
                "the body is not a JSON object".to_string(),
            ));
        }
        serde_json::from_value(value)
            .map_err(|error| WebhookError::InvalidPayload(error.to_string()))
    }

    /// Whether `event` is one the endpoint handles (see [`KNOWN_EVENTS`]).
    pub fn is_known(&self) -> bool {
        KNOWN_EVENTS.contains(&self.event.as_str())
    }

    /// The room's name, if the event carries a room.
    pub fn room_name(&self) -> Option<&str> {
        self.room.as_ref().map(|room| room.name.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// No `Authorization` header, or an empty one (upstream: 401).
    #[error("Authorization header missing")]
    MissingAuthorization,
    /// The token does not verify (upstream: 400).
    #[error("invalid webhook token: {0}")]
    InvalidToken(#[from] VerifyError),
    /// The token's `sha256` claim is absent or is not the body's hash
    /// (upstream: 400).
    #[error("the body hash does not match the token")]
    BodyHashMismatch,
    /// The body is not a `WebhookEvent` (upstream: 400).
    #[error("invalid webhook payload: {0}")]
    InvalidPayload(String),
}

/// base64(SHA-256(body)), as LiveKit puts it in the token's `sha256` claim.
pub fn body_hash(body: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(body))
}

/// Checks a webhook as the Python SDK's `WebhookReceiver.receive` does, then
/// reads it: `authorization` is the raw header value (a bare JWT, no
/// `Bearer` prefix), verified with `credentials` at `now` with
/// [`VERIFY_LEEWAY`]; its `sha256` claim must be [`body_hash`] of `body`.
/// The event name is not checked here ([`WebhookEvent::is_known`]).
pub fn receive(
    body: &[u8],
    authorization: Option<&str>,
    credentials: &LiveKitCredentials,
    now: SystemTime,
) -> Result<WebhookEvent, WebhookError> {
    let token = authorization
        .filter(|value| !value.is_empty())
        .ok_or(WebhookError::MissingAuthorization)?;
    let claims = verify(token, credentials, now, VERIFY_LEEWAY)?;
    if claims.sha256.as_deref() != Some(body_hash(body).as_str()) {
        return Err(WebhookError::BodyHashMismatch);
    }
    WebhookEvent::parse(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::{EgressStatus, ParticipantKind, ParticipantState};
    use jwt_compact::alg::{Hs256, Hs256Key};
    use jwt_compact::{AlgorithmExt, Claims, Header};
    use serde_json::json;
    use std::time::Duration;

    const NOW: u64 = 1_700_000_000;

    fn credentials() -> LiveKitCredentials {
        LiveKitCredentials {
            api_key: "devkey".to_string(),
            api_secret: "secret-of-at-least-32-characters!".to_string(),
        }
    }

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(NOW)
    }

    /// A token as LiveKit signs its webhooks: iss, nbf, exp, sha256, video {}.
    fn webhook_token(body: &[u8], secret: &str) -> String {
        let claims: Claims<Value> = serde_json::from_value(json!({
            "iss": "devkey",
            "nbf": NOW - 1,
            "exp": NOW + 600,
            "sha256": body_hash(body),
            "video": {},
        }))
        .unwrap();
        Hs256
            .token(
                &Header::empty().with_token_type("JWT"),
                &claims,
                &Hs256Key::new(secret.as_bytes()),
            )
            .unwrap()
    }

    // Written from livekit_webhook.proto / livekit_models.proto field names,
    // in the JSON LiveKit's notifier sends (protojson: lowerCamelCase,
    // int64 as strings, enums as names, zero values left out).
    const ROOM_FINISHED: &str = r#"{
        "event": "room_finished",
        "room": {
            "sid": "RM_hycBMAjmt6Ub",
            "name": "9e5bd2b8-4b4e-4b7a-9d4b-5f0a7c3f1e2d",
            "emptyTimeout": 300,
            "departureTimeout": 20,
            "creationTime": "1700000000",
            "creationTimeMs": "1700000000123",
            "turnPassword": "ignored",
            "enabledCodecs": [{"mime": "audio/opus"}, {"mime": "video/VP8"}],
            "version": {"unixMicro": "1700000000123456"}
        },
        "id": "EV_3kJnJpXnUjcF",
        "createdAt": "1700000300"
    }"#;

    const PARTICIPANT_JOINED_SIP: &str = r#"{
        "event": "participant_joined",
        "room": {"sid": "RM_1", "name": "room-a", "numParticipants": 2},
        "participant": {
            "sid": "PA_sip1",
            "identity": "sip_+33612345678",
            "state": "ACTIVE",
            "joinedAt": "1700000010",
            "joinedAtMs": "1700000010500",
            "name": "Phone +33612345678",
            "version": 2,
            "permission": {"canSubscribe": true, "canPublish": true, "canPublishData": true},
            "isPublisher": true,
            "kind": "SIP",
            "attributes": {"sip.phoneNumber": "+33612345678", "sip.callStatus": "active"},
            "disconnectReason": "UNKNOWN_REASON"
        },
        "id": "EV_2",
        "createdAt": "1700000010"
    }"#;

    const EGRESS_ENDED: &str = r#"{
        "event": "egress_ended",
        "egressInfo": {
            "egressId": "EG_T8FdF9Zq",
            "roomId": "RM_1",
            "roomName": "room-a",
            "sourceType": "EGRESS_SOURCE_TYPE_WEB",
            "status": "EGRESS_LIMIT_REACHED",
            "startedAt": "1700000000000000000",
            "endedAt": "1700003600000000000",
            "updatedAt": "1700003600000000000",
            "roomComposite": {
                "roomName": "room-a",
                "audioOnly": true,
                "fileOutputs": [{"fileType": "OGG", "filepath": "recordings/r.ogg", "s3": {"bucket": "b"}}]
            },
            "fileResults": [{
                "filename": "recordings/46d1a121-2426-484d-8fb3-09b5d886f7a8.ogg",
                "startedAt": "1700000000000000000",
                "endedAt": "1700003600000000000",
                "duration": "3600000000000",
                "size": "12345678",
                "location": "https://minio/meet-media-storage/recordings/46d1a121-2426-484d-8fb3-09b5d886f7a8.ogg"
            }],
            "error": "",
            "details": "End reason: Limit reached"
        },
        "id": "EV_3",
        "createdAt": "1700003600"
    }"#;

    #[test]
    fn reads_room_finished() {
        let event = WebhookEvent::parse(ROOM_FINISHED.as_bytes()).unwrap();
        assert_eq!(event.event, "room_finished");
        assert!(event.is_known());
        assert_eq!(event.id, "EV_3kJnJpXnUjcF");
        assert_eq!(event.created_at, 1_700_000_300);
        assert_eq!(
            event.room_name(),
            Some("9e5bd2b8-4b4e-4b7a-9d4b-5f0a7c3f1e2d")
        );
        let room = event.room.unwrap();
        assert_eq!(room.sid, "RM_hycBMAjmt6Ub");
        assert_eq!(room.empty_timeout, 300);
        assert_eq!(room.creation_time, 1_700_000_000);
        assert!(event.participant.is_none());
        assert!(event.egress_info.is_none());
    }

    #[test]
    fn reads_a_sip_participant() {
        let event = WebhookEvent::parse(PARTICIPANT_JOINED_SIP.as_bytes()).unwrap();
        let participant = event.participant.unwrap();
        assert_eq!(participant.kind, ParticipantKind::Sip);
        assert_eq!(participant.state, ParticipantState::Active);
        assert_eq!(participant.identity, "sip_+33612345678");
        assert_eq!(participant.joined_at, 1_700_000_010);
        assert_eq!(participant.attributes["sip.phoneNumber"], "+33612345678");
        assert!(participant.permission.unwrap().can_publish);
        assert_eq!(event.room.unwrap().num_participants, 2);
    }

    #[test]
    fn reads_egress_ended() {
        let event = WebhookEvent::parse(EGRESS_ENDED.as_bytes()).unwrap();
        let egress = event.egress_info.unwrap();
        assert_eq!(egress.egress_id, "EG_T8FdF9Zq");
        assert_eq!(egress.room_name, "room-a");
        assert_eq!(egress.status, EgressStatus::LimitReached);
        assert_eq!(egress.started_at, 1_700_000_000_000_000_000);
        assert_eq!(egress.ended_at, 1_700_003_600_000_000_000);
        let files = egress.files();
        assert_eq!(
            files[0].filename,
            "recordings/46d1a121-2426-484d-8fb3-09b5d886f7a8.ogg"
        );
        assert_eq!(files[0].size, 12_345_678);
        assert_eq!(files[0].duration, 3_600_000_000_000);
    }

    #[test]
    fn reads_proto_names_too() {
        let body = br#"{"event": "egress_started", "egress_info": {"egress_id": "EG_1", "room_name": "r", "status": 1}, "created_at": 1700000000, "num_dropped": 2}"#;
        let event = WebhookEvent::parse(body).unwrap();
        let egress = event.egress_info.unwrap();
        assert_eq!(egress.egress_id, "EG_1");
        assert_eq!(egress.status, EgressStatus::Active);
        assert_eq!(event.created_at, 1_700_000_000);
        assert_eq!(event.num_dropped, 2);
    }

    #[test]
    fn ignores_unknown_fields_and_reports_unknown_events() {
        let body = br#"{"event": "participant_connection_aborted", "somethingNew": {"a": [1]}, "track": {"sid": "TR_1", "type": "AUDIO"}}"#;
        let event = WebhookEvent::parse(body).unwrap();
        assert_eq!(event.event, "participant_connection_aborted");
        assert!(!event.is_known());
        assert_eq!(event.track.unwrap()["sid"], "TR_1");
        let empty = WebhookEvent::parse(b"{}").unwrap();
        assert_eq!(empty.event, "");
        assert!(!empty.is_known());
    }

    #[test]
    fn bad_bodies_are_errors_not_panics() {
        let cases: [&[u8]; 14] = [
            b"",
            b"   ",
            b"not json",
            b"[]",
            b"null",
            b"\"room_started\"",
            b"{\"event\": 5}",
            b"{\"room\": \"room-a\"}",
            b"{\"room\": [\"RM_1\", \"room-a\"]}",
            b"{\"createdAt\": \"yesterday\"}",
            b"{\"egressInfo\": {\"status\": {}}}",
            b"{\"participant\": {\"attributes\": [1]}}",
            b"{\"event\": \"room_started\"",
            b"\xff\xfe{}",
        ];
        for body in cases {
            assert!(
                matches!(
                    WebhookEvent::parse(body),
                    Err(WebhookError::InvalidPayload(_))
                ),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn receive_checks_token_and_body_hash() {
        let body = ROOM_FINISHED.as_bytes();
        let secret = &credentials().api_secret;
        let token = webhook_token(body, secret);
        let event = receive(body, Some(&token), &credentials(), now()).unwrap();
        assert_eq!(event.event, "room_finished");

        assert!(matches!(
            receive(body, None, &credentials(), now()),
            Err(WebhookError::MissingAuthorization)
        ));
        assert!(matches!(
            receive(body, Some(""), &credentials(), now()),
            Err(WebhookError::MissingAuthorization)
        ));
        let bearer = format!("Bearer {token}");
        assert!(matches!(
            receive(body, Some(&bearer), &credentials(), now()),
            Err(WebhookError::InvalidToken(_))
        ));
        let forged = webhook_token(body, "another secret");
        assert!(matches!(
            receive(body, Some(&forged), &credentials(), now()),
            Err(WebhookError::InvalidToken(_))
        ));
        let tampered = ROOM_FINISHED.replace("room_finished", "room_started");
        assert!(matches!(
            receive(tampered.as_bytes(), Some(&token), &credentials(), now()),
            Err(WebhookError::BodyHashMismatch)
        ));
        let late = now() + Duration::from_secs(3600);
        assert!(matches!(
            receive(body, Some(&token), &credentials(), late),
            Err(WebhookError::InvalidToken(VerifyError::Expired))
        ));
        // A correctly signed token for a body that is not an event.
        let garbage = b"[1, 2]";
        let token = webhook_token(garbage, secret);
        assert!(matches!(
            receive(garbage, Some(&token), &credentials(), now()),
            Err(WebhookError::InvalidPayload(_))
        ));
    }

    #[test]
    fn body_hash_is_standard_base64_sha256() {
        assert_eq!(
            body_hash(b""),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
    }
}
