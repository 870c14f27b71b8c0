//! A client of LiveKit's server API (Twirp over HTTP, JSON encoding),
//! livekit.md §3–4.
//!
//! Each call is `POST <base>/twirp/livekit.<Service>/<Method>` with a JSON
//! body in proto field names and `Authorization: Bearer <token>`, the token
//! minted for that call with exactly the grant it needs. The caller supplies
//! the HTTP exchange ([`Transport`]) and the time, so nothing here does I/O.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, SystemTime};

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::messages::{
    EgressInfo, ParticipantInfo, ParticipantPermission, Room, RoomCompositeEgress,
    SipDispatchRuleDirect, SipDispatchRuleInfo,
};
use crate::protojson::encode_bytes;
use crate::token::{server_token, LiveKitCredentials, ServerGrant, TokenError};

/// How long a call may take unless the caller says otherwise (the Python
/// SDK's client timeout).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The answer to an HTTP request, whatever its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

/// No answer came back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    #[error("no answer within the timeout")]
    Timeout,
    /// Connection refused or reset, DNS failure, TLS failure, …
    #[error("request failed: {0}")]
    Failed(String),
}

/// One buffered HTTP POST, done by the caller (over its HTTP port).
pub trait Transport {
    /// Sends `body` to `url` with `headers` and waits at most `timeout` for
    /// the whole answer.
    fn post(
        &self,
        url: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<TransportResponse, TransportError>;
}

/// An error answer of a Twirp server: `{"code", "msg", "meta"}` with a
/// non-200 status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TwirpError {
    pub status: u16,
    /// Twirp's error code, e.g. `not_found`, `unauthenticated`,
    /// `invalid_argument`, `internal`, `unavailable`.
    pub code: String,
    pub msg: String,
    pub meta: BTreeMap<String, String>,
}

impl fmt::Display for TwirpError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{} {}: {}", self.status, self.code, self.msg)
    }
}

impl TwirpError {
    /// Reads an error answer. A body that is not a Twirp error (a proxy's
    /// page, say) gets the code Twirp's own clients derive from the status.
    pub fn from_response(status: u16, body: &[u8]) -> TwirpError {
        #[derive(Deserialize)]
        struct Body {
            code: String,
            #[serde(default)]
            msg: String,
            #[serde(default)]
            meta: Option<BTreeMap<String, String>>,
        }
        match serde_json::from_slice::<Body>(body) {
            Ok(parsed) if !parsed.code.is_empty() => TwirpError {
                status,
                code: parsed.code,
                msg: parsed.msg,
                meta: parsed.meta.unwrap_or_default(),
            },
            _ => TwirpError {
                status,
                code: code_for_status(status).to_string(),
                msg: format!("HTTP status {status} without a Twirp error body"),
                meta: BTreeMap::new(),
            },
        }
    }
}

/// Twirp's mapping of an intermediary's HTTP status to an error code.
fn code_for_status(status: u16) -> &'static str {
    match status {
        300..=399 => "internal",
        400 => "internal",
        401 => "unauthenticated",
        403 => "permission_denied",
        404 => "bad_route",
        429 | 502 | 503 | 504 => "unavailable",
        _ => "unknown",
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// `livekit_api_url` is not a `ws`, `wss`, `http` or `https` URL.
    #[error("the LiveKit URL must start with ws://, wss://, http:// or https:// and name a host")]
    InvalidUrl,
    #[error("cannot mint the server token: {0}")]
    Token(#[from] TokenError),
    /// No answer (connection failure or timeout).
    #[error("LiveKit {method}: {error}")]
    Transport {
        method: &'static str,
        error: TransportError,
    },
    /// LiveKit answered with an error.
    #[error("LiveKit {method} answered {error}")]
    Twirp {
        method: &'static str,
        error: TwirpError,
    },
    /// A 200 answer whose body is not the expected message.
    #[error("LiveKit {method} gave an unexpected answer: {reason}")]
    InvalidResponse {
        method: &'static str,
        reason: String,
    },
}

impl ApiError {
    /// The Twirp error, when the server answered one.
    pub fn twirp(&self) -> Option<&TwirpError> {
        match self {
            ApiError::Twirp { error, .. } => Some(error),
            _ => None,
        }
    }

    /// True when no answer came back in time.
    pub fn is_timeout(&self) -> bool {
        matches!(
            self,
            ApiError::Transport {
                error: TransportError::Timeout,
                ..
            }
        )
    }
}

/// The base of server API URLs for a LiveKit URL as configured for browsers:
/// `ws` → `http`, `wss` → `https` (`http`/`https` kept), path kept, trailing
/// slashes removed.
pub fn server_api_base(livekit_url: &str) -> Result<String, ApiError> {
    let trimmed = livekit_url.trim();
    let (scheme, rest) = trimmed.split_once("://").ok_or(ApiError::InvalidUrl)?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "ws" | "http" => "http",
        "wss" | "https" => "https",
        _ => return Err(ApiError::InvalidUrl),
    };
    let rest = rest.trim_end_matches('/');
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || rest.contains(char::is_whitespace) {
        return Err(ApiError::InvalidUrl);
    }
    Ok(format!("{scheme}://{rest}"))
}

/// The changes `UpdateParticipant` makes; `None`/empty fields are left as
/// they are by LiveKit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParticipantUpdate {
    pub metadata: Option<String>,
    pub name: Option<String>,
    /// Replaces the participant's permission as a whole.
    pub permission: Option<ParticipantPermission>,
    /// Attributes to set; an empty value deletes the attribute.
    pub attributes: BTreeMap<String, String>,
}

/// Filters of `ListEgress`; all empty lists every egress.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EgressFilter {
    pub room_name: Option<String>,
    pub egress_id: Option<String>,
    /// Only egresses still running.
    pub active: bool,
}

/// A direct dispatch rule to create: calls on `trunk_ids` (all trunks when
/// empty) that type `pin` join `room_name`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewDispatchRule {
    pub room_name: String,
    pub pin: String,
    pub trunk_ids: Vec<String>,
    pub name: String,
}

/// The server API of one LiveKit deployment, for calls made at `now`.
#[derive(Clone)]
pub struct ServerApi<'a> {
    transport: &'a dyn Transport,
    credentials: &'a LiveKitCredentials,
    base_url: String,
    now: SystemTime,
    timeout: Duration,
}

impl fmt::Debug for ServerApi<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("ServerApi")
            .field("base_url", &self.base_url)
            .field("credentials", self.credentials)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl<'a> ServerApi<'a> {
    /// A client of the LiveKit at `livekit_url` (the browser URL, `wss://…`
    /// accepted), with tokens signed by `credentials` and valid from `now`,
    /// and the [`DEFAULT_TIMEOUT`].
    pub fn new(
        transport: &'a dyn Transport,
        credentials: &'a LiveKitCredentials,
        livekit_url: &str,
        now: SystemTime,
    ) -> Result<ServerApi<'a>, ApiError> {
        Ok(ServerApi {
            transport,
            credentials,
            base_url: server_api_base(livekit_url)?,
            now,
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// The same client with another timeout per call.
    pub fn with_timeout(mut self, timeout: Duration) -> ServerApi<'a> {
        self.timeout = timeout;
        self
    }

    /// `http(s)://host[/path]`, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `RoomService.ListRooms`: the running rooms among `names` (all running
    /// rooms when `names` is empty).
    pub fn list_rooms(&self, names: &[&str]) -> Result<Vec<Room>, ApiError> {
        #[derive(Deserialize)]
        struct Answer {
            #[serde(default)]
            rooms: Vec<Room>,
        }
        let answer: Answer = self.call(
            "RoomService/ListRooms",
            &ServerGrant::room_list(),
            json!({ "names": names }),
        )?;
        Ok(answer.rooms)
    }

    /// Whether LiveKit has a room `name` running (someone is connected).
    pub fn room_is_running(&self, name: &str) -> Result<bool, ApiError> {
        let rooms = self.list_rooms(&[name])?;
        Ok(rooms.iter().any(|room| room.name == name))
    }

    /// `RoomService.SendData`: `data` to every participant of `room`, over
    /// the reliable channel.
    pub fn send_data(&self, room: &str, data: &[u8]) -> Result<(), ApiError> {
        let _: Value = self.call(
            "RoomService/SendData",
            &ServerGrant::room_admin(room),
            json!({ "room": room, "data": encode_bytes(data), "kind": "RELIABLE" }),
        )?;
        Ok(())
    }

    /// `RoomService.UpdateParticipant`.
    pub fn update_participant(
        &self,
        room: &str,
        identity: &str,
        update: &ParticipantUpdate,
    ) -> Result<ParticipantInfo, ApiError> {
        let mut body = Map::new();
        body.insert("room".into(), json!(room));
        body.insert("identity".into(), json!(identity));
        if let Some(metadata) = &update.metadata {
            body.insert("metadata".into(), json!(metadata));
        }
        if let Some(permission) = &update.permission {
            body.insert("permission".into(), json!(permission));
        }
        if let Some(name) = &update.name {
            body.insert("name".into(), json!(name));
        }
        if !update.attributes.is_empty() {
            body.insert("attributes".into(), json!(update.attributes));
        }
        self.call(
            "RoomService/UpdateParticipant",
            &ServerGrant::room_admin(room),
            Value::Object(body),
        )
    }

    /// `RoomService.RemoveParticipant`: disconnects `identity` from `room`.
    pub fn remove_participant(&self, room: &str, identity: &str) -> Result<(), ApiError> {
        let _: Value = self.call(
            "RoomService/RemoveParticipant",
            &ServerGrant::room_admin(room),
            json!({ "room": room, "identity": identity }),
        )?;
        Ok(())
    }

    /// `Egress.StartRoomCompositeEgress`. An answer without an egress id is
    /// an [`ApiError::InvalidResponse`]: the recording cannot be stopped.
    pub fn start_room_composite_egress(
        &self,
        request: &RoomCompositeEgress,
    ) -> Result<EgressInfo, ApiError> {
        const METHOD: &str = "Egress/StartRoomCompositeEgress";
        let info: EgressInfo = self.call(METHOD, &ServerGrant::room_record(), json!(request))?;
        if info.egress_id.is_empty() {
            return Err(ApiError::InvalidResponse {
                method: METHOD,
                reason: "the egress has no id".to_string(),
            });
        }
        Ok(info)
    }

    /// `Egress.StopEgress`: the egress as it is once asked to stop.
    pub fn stop_egress(&self, egress_id: &str) -> Result<EgressInfo, ApiError> {
        self.call(
            "Egress/StopEgress",
            &ServerGrant::room_record(),
            json!({ "egress_id": egress_id }),
        )
    }

    /// `Egress.ListEgress`.
    pub fn list_egress(&self, filter: &EgressFilter) -> Result<Vec<EgressInfo>, ApiError> {
        #[derive(Deserialize)]
        struct Answer {
            #[serde(default)]
            items: Vec<EgressInfo>,
        }
        let mut body = Map::new();
        if let Some(room_name) = &filter.room_name {
            body.insert("room_name".into(), json!(room_name));
        }
        if let Some(egress_id) = &filter.egress_id {
            body.insert("egress_id".into(), json!(egress_id));
        }
        if filter.active {
            body.insert("active".into(), json!(true));
        }
        let answer: Answer = self.call(
            "Egress/ListEgress",
            &ServerGrant::room_record(),
            Value::Object(body),
        )?;
        Ok(answer.items)
    }

    /// `SIP.ListSIPDispatchRule`: every dispatch rule.
    pub fn list_sip_dispatch_rules(&self) -> Result<Vec<SipDispatchRuleInfo>, ApiError> {
        #[derive(Deserialize)]
        struct Answer {
            #[serde(default)]
            items: Vec<SipDispatchRuleInfo>,
        }
        let answer: Answer = self.call(
            "SIP/ListSIPDispatchRule",
            &ServerGrant::sip_admin(),
            json!({}),
        )?;
        Ok(answer.items)
    }

    /// `SIP.CreateSIPDispatchRule` with a direct rule. Written with the
    /// request's top-level `rule`/`trunk_ids`/`name` fields, which every
    /// LiveKit version reads.
    pub fn create_sip_dispatch_rule(
        &self,
        rule: &NewDispatchRule,
    ) -> Result<SipDispatchRuleInfo, ApiError> {
        let direct = SipDispatchRuleDirect {
            room_name: rule.room_name.clone(),
            pin: rule.pin.clone(),
        };
        let mut body = Map::new();
        body.insert("rule".into(), json!({ "dispatch_rule_direct": direct }));
        if !rule.trunk_ids.is_empty() {
            body.insert("trunk_ids".into(), json!(rule.trunk_ids));
        }
        if !rule.name.is_empty() {
            body.insert("name".into(), json!(rule.name));
        }
        self.call(
            "SIP/CreateSIPDispatchRule",
            &ServerGrant::sip_admin(),
            Value::Object(body),
        )
    }

    /// `SIP.DeleteSIPDispatchRule`.
    pub fn delete_sip_dispatch_rule(
        &self,
        sip_dispatch_rule_id: &str,
    ) -> Result<SipDispatchRuleInfo, ApiError> {
        self.call(
            "SIP/DeleteSIPDispatchRule",
            &ServerGrant::sip_admin(),
            json!({ "sip_dispatch_rule_id": sip_dispatch_rule_id }),
        )
    }

    /// One Twirp call: `method` is `<Service>/<Method>`.
    fn call<T: DeserializeOwned>(
        &self,
        method: &'static str,
        grant: &ServerGrant,
        body: Value,
    ) -> Result<T, ApiError> {
        let token = server_token(self.credentials, grant, self.now)?;
        let url = format!("{}/twirp/livekit.{method}", self.base_url);
        let headers = [
            ("Content-Type".to_string(), "application/json".to_string()),
            ("Authorization".to_string(), format!("Bearer {token}")),
        ];
        let response = self
            .transport
            .post(&url, &headers, body.to_string().into_bytes(), self.timeout)
            .map_err(|error| ApiError::Transport { method, error })?;
        if response.status != 200 {
            return Err(ApiError::Twirp {
                method,
                error: TwirpError::from_response(response.status, &response.body),
            });
        }
        let body: &[u8] = if response.body.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &response.body
        };
        let value: Value =
            serde_json::from_slice(body).map_err(|error| ApiError::InvalidResponse {
                method,
                reason: error.to_string(),
            })?;
        if !value.is_object() {
            return Err(ApiError::InvalidResponse {
                method,
                reason: "the answer is not a JSON object".to_string(),
            });
        }
        serde_json::from_value(value).map_err(|error| ApiError::InvalidResponse {
            method,
            reason: error.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::{EgressStatus, S3Upload, TrackSource};
    use crate::verify::{verify, VERIFY_LEEWAY};
    use std::cell::RefCell;

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

    #[derive(Debug, Clone)]
    struct Sent {
        url: String,
        headers: Vec<(String, String)>,
        body: Value,
        timeout: Duration,
    }

    /// Answers each request with the next scripted result and records it.
    struct Scripted {
        answers: RefCell<Vec<Result<TransportResponse, TransportError>>>,
        sent: RefCell<Vec<Sent>>,
    }

    impl Scripted {
        fn answering(status: u16, body: &str) -> Scripted {
            Scripted::with(vec![Ok(TransportResponse {
                status,
                body: body.as_bytes().to_vec(),
            })])
        }

        fn with(answers: Vec<Result<TransportResponse, TransportError>>) -> Scripted {
            Scripted {
                answers: RefCell::new(answers),
                sent: RefCell::new(Vec::new()),
            }
        }

        fn only_request(&self) -> Sent {
            let sent = self.sent.borrow();
            assert_eq!(sent.len(), 1, "{sent:?}");
            sent[0].clone()
        }
    }

    impl Transport for Scripted {
        fn post(
            &self,
            url: &str,
            headers: &[(String, String)],
            body: Vec<u8>,
            timeout: Duration,
        ) -> Result<TransportResponse, TransportError> {
            self.sent.borrow_mut().push(Sent {
                url: url.to_string(),
                headers: headers.to_vec(),
                body: serde_json::from_slice(&body).expect("requests are JSON"),
                timeout,
            });
            let mut answers = self.answers.borrow_mut();
            assert!(!answers.is_empty(), "unexpected request to {url}");
            answers.remove(0)
        }
    }

    /// The request's headers, checked, and its token's claims.
    fn claims_of(sent: &Sent) -> Value {
        assert_eq!(sent.headers.len(), 2, "{:?}", sent.headers);
        assert_eq!(
            sent.headers[0],
            ("Content-Type".to_string(), "application/json".to_string())
        );
        let (name, value) = &sent.headers[1];
        assert_eq!(name, "Authorization");
        let token = value.strip_prefix("Bearer ").expect("a bearer token");
        let verified = verify(token, &credentials(), now(), VERIFY_LEEWAY).unwrap();
        assert_eq!(verified.subject.as_deref(), Some(""));
        assert_eq!(verified.not_before, Some(NOW as i64));
        assert_eq!(verified.expires_at, Some(NOW as i64 + 21600));
        let payload = token.split('.').nth(1).unwrap();
        use base64::Engine;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap();
        let mut claims: Value = serde_json::from_slice(&bytes).unwrap();
        let object = claims.as_object_mut().unwrap();
        for standard in ["iss", "sub", "nbf", "exp"] {
            object.remove(standard);
        }
        claims
    }

    fn video(extra: Value) -> Value {
        let mut grant = json!({"canPublish": true, "canSubscribe": true, "canPublishData": true});
        for (key, value) in extra.as_object().unwrap() {
            grant[key] = value.clone();
        }
        json!({ "video": grant })
    }

    fn api(transport: &dyn Transport) -> ServerApi<'_> {
        // Leaked so the borrowed credentials outlive the client in tests.
        let credentials: &'static LiveKitCredentials = Box::leak(Box::new(credentials()));
        ServerApi::new(transport, credentials, "wss://livekit.example.org/", now()).unwrap()
    }

    #[test]
    fn list_rooms() {
        let transport = Scripted::answering(
            200,
            r#"{"rooms": [{"sid": "RM_1", "name": "room-a", "num_participants": 2, "creation_time": "1700000000"}]}"#,
        );
        let rooms = api(&transport).list_rooms(&["room-a"]).unwrap();
        assert_eq!(rooms.len(), 1);
        assert_eq!(rooms[0].name, "room-a");
        assert_eq!(rooms[0].num_participants, 2);
        assert_eq!(rooms[0].creation_time, 1_700_000_000);

        let sent = transport.only_request();
        assert_eq!(
            sent.url,
            "https://livekit.example.org/twirp/livekit.RoomService/ListRooms"
        );
        assert_eq!(sent.body, json!({"names": ["room-a"]}));
        assert_eq!(sent.timeout, DEFAULT_TIMEOUT);
        assert_eq!(claims_of(&sent), video(json!({"roomList": true})));
    }

    #[test]
    fn room_is_running_checks_the_name() {
        let transport = Scripted::with(vec![
            Ok(TransportResponse {
                status: 200,
                body: br#"{"rooms": []}"#.to_vec(),
            }),
            Ok(TransportResponse {
                status: 200,
                body: br#"{}"#.to_vec(),
            }),
            Ok(TransportResponse {
                status: 200,
                body: br#"{"rooms": [{"name": "room-a"}]}"#.to_vec(),
            }),
        ]);
        let api = api(&transport);
        assert!(!api.room_is_running("room-a").unwrap());
        assert!(!api.room_is_running("room-a").unwrap());
        assert!(api.room_is_running("room-a").unwrap());
    }

    #[test]
    fn send_data_is_reliable_base64_to_one_room() {
        let transport = Scripted::answering(200, "{}");
        api(&transport)
            .send_data("room-a", br#"{"type": "participantWaiting"}"#)
            .unwrap();
        let sent = transport.only_request();
        assert_eq!(
            sent.url,
            "https://livekit.example.org/twirp/livekit.RoomService/SendData"
        );
        assert_eq!(
            sent.body,
            json!({
                "room": "room-a",
                "data": "eyJ0eXBlIjogInBhcnRpY2lwYW50V2FpdGluZyJ9",
                "kind": "RELIABLE",
            })
        );
        assert_eq!(
            claims_of(&sent),
            video(json!({"roomAdmin": true, "room": "room-a"}))
        );
    }

    #[test]
    fn update_and_remove_participant() {
        let transport = Scripted::with(vec![
            Ok(TransportResponse {
                status: 200,
                body: br#"{"sid": "PA_1", "identity": "alice", "kind": "STANDARD", "permission": {"can_publish": false}}"#.to_vec(),
            }),
            Ok(TransportResponse {
                status: 200,
                body: b"{}".to_vec(),
            }),
        ]);
        let api = api(&transport);
        let update = ParticipantUpdate {
            permission: Some(ParticipantPermission {
                can_subscribe: true,
                can_publish: false,
                can_publish_data: true,
                can_publish_sources: vec![TrackSource::Microphone],
                ..ParticipantPermission::default()
            }),
            ..ParticipantUpdate::default()
        };
        let participant = api.update_participant("room-a", "alice", &update).unwrap();
        assert_eq!(participant.identity, "alice");
        assert!(!participant.permission.unwrap().can_publish);
        api.remove_participant("room-a", "bob").unwrap();

        let sent = transport.sent.borrow();
        assert_eq!(
            sent[0].url,
            "https://livekit.example.org/twirp/livekit.RoomService/UpdateParticipant"
        );
        assert_eq!(
            sent[0].body,
            json!({
                "room": "room-a",
                "identity": "alice",
                "permission": {
                    "can_subscribe": true,
                    "can_publish": false,
                    "can_publish_data": true,
                    "can_publish_sources": ["MICROPHONE"],
                    "hidden": false,
                    "can_update_metadata": false,
                    "can_subscribe_metrics": false,
                },
            })
        );
        assert_eq!(
            claims_of(&sent[0]),
            video(json!({"roomAdmin": true, "room": "room-a"}))
        );
        assert_eq!(
            sent[1].url,
            "https://livekit.example.org/twirp/livekit.RoomService/RemoveParticipant"
        );
        assert_eq!(sent[1].body, json!({"room": "room-a", "identity": "bob"}));
        assert_eq!(
            claims_of(&sent[1]),
            video(json!({"roomAdmin": true, "room": "room-a"}))
        );
    }

    #[test]
    fn update_participant_sends_only_what_changes() {
        let transport = Scripted::answering(200, "{}");
        let update = ParticipantUpdate {
            metadata: Some(r#"{"raised": false}"#.to_string()),
            name: Some("Alice".to_string()),
            attributes: BTreeMap::from([("room_role".to_string(), "member".to_string())]),
            ..ParticipantUpdate::default()
        };
        api(&transport)
            .update_participant("room-a", "alice", &update)
            .unwrap();
        assert_eq!(
            transport.only_request().body,
            json!({
                "room": "room-a",
                "identity": "alice",
                "metadata": "{\"raised\": false}",
                "name": "Alice",
                "attributes": {"room_role": "member"},
            })
        );
    }

    fn s3() -> S3Upload {
        S3Upload {
            access_key: "minio".to_string(),
            secret: "minio-secret".to_string(),
            region: "local".to_string(),
            endpoint: "http://minio:9000".to_string(),
            bucket: "meet-media-storage".to_string(),
            force_path_style: true,
        }
    }

    #[test]
    fn start_room_composite_egress() {
        let transport = Scripted::answering(
            200,
            r#"{"egress_id": "EG_1", "room_name": "room-a", "status": "EGRESS_STARTING"}"#,
        );
        let request = RoomCompositeEgress::transcript("room-a", "recordings/r1.ogg", s3());
        let info = api(&transport)
            .start_room_composite_egress(&request)
            .unwrap();
        assert_eq!(info.egress_id, "EG_1");
        assert_eq!(info.status, EgressStatus::Starting);

        let sent = transport.only_request();
        assert_eq!(
            sent.url,
            "https://livekit.example.org/twirp/livekit.Egress/StartRoomCompositeEgress"
        );
        assert_eq!(
            sent.body,
            json!({
                "room_name": "room-a",
                "audio_only": true,
                "file_outputs": [{
                    "file_type": "OGG",
                    "filepath": "recordings/r1.ogg",
                    "s3": {
                        "access_key": "minio",
                        "secret": "minio-secret",
                        "region": "local",
                        "endpoint": "http://minio:9000",
                        "bucket": "meet-media-storage",
                        "force_path_style": true,
                    },
                }],
            })
        );
        assert_eq!(claims_of(&sent), video(json!({"roomRecord": true})));
    }

    #[test]
    fn an_egress_without_id_is_an_error() {
        for body in [r#"{"egress_id": "", "status": "EGRESS_STARTING"}"#, "{}"] {
            let transport = Scripted::answering(200, body);
            let request = RoomCompositeEgress::screen_recording("room-a", "recordings/r.mp4", s3());
            let error = api(&transport)
                .start_room_composite_egress(&request)
                .unwrap_err();
            assert!(
                matches!(error, ApiError::InvalidResponse { .. }),
                "{error:?}"
            );
        }
    }

    #[test]
    fn stop_and_list_egress() {
        let transport = Scripted::with(vec![
            Ok(TransportResponse {
                status: 200,
                body: br#"{"egress_id": "EG_1", "status": "EGRESS_ENDING"}"#.to_vec(),
            }),
            Ok(TransportResponse {
                status: 200,
                body: br#"{"items": [{"egress_id": "EG_1", "status": 3}]}"#.to_vec(),
            }),
        ]);
        let api = api(&transport);
        assert_eq!(
            api.stop_egress("EG_1").unwrap().status,
            EgressStatus::Ending
        );
        let filter = EgressFilter {
            egress_id: Some("EG_1".to_string()),
            ..EgressFilter::default()
        };
        let items = api.list_egress(&filter).unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].status, EgressStatus::Complete);

        let sent = transport.sent.borrow();
        assert_eq!(
            sent[0].url,
            "https://livekit.example.org/twirp/livekit.Egress/StopEgress"
        );
        assert_eq!(sent[0].body, json!({"egress_id": "EG_1"}));
        assert_eq!(claims_of(&sent[0]), video(json!({"roomRecord": true})));
        assert_eq!(
            sent[1].url,
            "https://livekit.example.org/twirp/livekit.Egress/ListEgress"
        );
        assert_eq!(sent[1].body, json!({"egress_id": "EG_1"}));
        assert_eq!(claims_of(&sent[1]), video(json!({"roomRecord": true})));
    }

    #[test]
    fn sip_dispatch_rules() {
        let rule_json = r#"{"sip_dispatch_rule_id": "SDR_1", "rule": {"dispatch_rule_direct": {"room_name": "room-a", "pin": "0123456789"}}, "trunk_ids": ["ST_1"], "name": "room-a"}"#;
        let transport = Scripted::with(vec![
            Ok(TransportResponse {
                status: 200,
                body: format!(r#"{{"items": [{rule_json}]}}"#).into_bytes(),
            }),
            Ok(TransportResponse {
                status: 200,
                body: rule_json.as_bytes().to_vec(),
            }),
            Ok(TransportResponse {
                status: 200,
                body: rule_json.as_bytes().to_vec(),
            }),
        ]);
        let api = api(&transport);
        let rules = api.list_sip_dispatch_rules().unwrap();
        assert_eq!(rules[0].direct_room(), Some("room-a"));
        let created = api
            .create_sip_dispatch_rule(&NewDispatchRule {
                room_name: "room-a".to_string(),
                pin: "0123456789".to_string(),
                trunk_ids: vec!["ST_1".to_string()],
                name: "room-a".to_string(),
            })
            .unwrap();
        assert_eq!(created.sip_dispatch_rule_id, "SDR_1");
        api.delete_sip_dispatch_rule("SDR_1").unwrap();

        let sent = transport.sent.borrow();
        let sip = json!({
            "video": {"canPublish": true, "canSubscribe": true, "canPublishData": true},
            "sip": {"admin": true},
        });
        assert_eq!(
            sent[0].url,
            "https://livekit.example.org/twirp/livekit.SIP/ListSIPDispatchRule"
        );
        assert_eq!(sent[0].body, json!({}));
        assert_eq!(claims_of(&sent[0]), sip);
        assert_eq!(
            sent[1].url,
            "https://livekit.example.org/twirp/livekit.SIP/CreateSIPDispatchRule"
        );
        assert_eq!(
            sent[1].body,
            json!({
                "rule": {"dispatch_rule_direct": {"room_name": "room-a", "pin": "0123456789"}},
                "trunk_ids": ["ST_1"],
                "name": "room-a",
            })
        );
        assert_eq!(claims_of(&sent[1]), sip);
        assert_eq!(
            sent[2].url,
            "https://livekit.example.org/twirp/livekit.SIP/DeleteSIPDispatchRule"
        );
        assert_eq!(sent[2].body, json!({"sip_dispatch_rule_id": "SDR_1"}));
        assert_eq!(claims_of(&sent[2]), sip);
    }

    #[test]
    fn twirp_errors_are_typed() {
        let transport = Scripted::answering(
            404,
            r#"{"code": "not_found", "msg": "egress does not exist", "meta": {"egress_id": "EG_9"}}"#,
        );
        let error = api(&transport).stop_egress("EG_9").unwrap_err();
        let twirp = error.twirp().expect("a Twirp error");
        assert_eq!(twirp.status, 404);
        assert_eq!(twirp.code, "not_found");
        assert_eq!(twirp.msg, "egress does not exist");
        assert_eq!(twirp.meta["egress_id"], "EG_9");
        assert!(!error.is_timeout());
        assert_eq!(
            error.to_string(),
            "LiveKit Egress/StopEgress answered 404 not_found: egress does not exist"
        );
    }

    #[test]
    fn non_twirp_error_bodies_get_a_code_from_the_status() {
        let cases = [
            (502, "<html>Bad Gateway</html>", "unavailable"),
            (401, "", "unauthenticated"),
            (403, "{}", "permission_denied"),
            (404, r#"{"code": ""}"#, "bad_route"),
            (500, "null", "unknown"),
            (503, r#"{"code": 5}"#, "unavailable"),
        ];
        for (status, body, code) in cases {
            let error = TwirpError::from_response(status, body.as_bytes());
            assert_eq!(error.status, status);
            assert_eq!(error.code, code, "{status} {body}");
            assert!(error.meta.is_empty());
        }
        let error = TwirpError::from_response(
            401,
            br#"{"code": "unauthenticated", "msg": "invalid token", "meta": null}"#,
        );
        assert_eq!(error.code, "unauthenticated");
        assert_eq!(error.msg, "invalid token");
    }

    #[test]
    fn transport_errors_are_not_twirp_errors() {
        let transport = Scripted::with(vec![
            Err(TransportError::Timeout),
            Err(TransportError::Failed("connection reset".to_string())),
        ]);
        let api = api(&transport).with_timeout(Duration::from_secs(5));
        let error = api.list_rooms(&["room-a"]).unwrap_err();
        assert!(error.is_timeout());
        assert!(error.twirp().is_none());
        let error = api.send_data("room-a", b"x").unwrap_err();
        assert!(matches!(
            error,
            ApiError::Transport {
                method: "RoomService/SendData",
                error: TransportError::Failed(_)
            }
        ));
        for sent in transport.sent.borrow().iter() {
            assert_eq!(sent.timeout, Duration::from_secs(5));
        }
    }

    #[test]
    fn unexpected_success_bodies_are_errors() {
        for body in [
            "not json",
            "[]",
            r#"{"rooms": "none"}"#,
            r#"{"rooms": [5]}"#,
        ] {
            let transport = Scripted::answering(200, body);
            let error = api(&transport).list_rooms(&[]).unwrap_err();
            assert!(
                matches!(error, ApiError::InvalidResponse { .. }),
                "{body}: {error:?}"
            );
        }
    }

    #[test]
    fn errors_and_debug_never_show_the_secret_or_token() {
        let transport = Scripted::answering(500, r#"{"code": "internal", "msg": "boom"}"#);
        let api = api(&transport);
        let error = api.list_rooms(&[]).unwrap_err();
        let shown = format!("{error} {error:?} {api:?}");
        assert!(!shown.contains("secret-of"), "{shown}");
        assert!(!shown.contains("Bearer"), "{shown}");
    }

    #[test]
    fn server_api_urls() {
        let cases = [
            ("wss://livekit.example.org", "https://livekit.example.org"),
            ("ws://localhost:7880/", "http://localhost:7880"),
            ("WSS://lk.example.org/base//", "https://lk.example.org/base"),
            ("https://lk.example.org", "https://lk.example.org"),
            ("http://127.0.0.1:7880", "http://127.0.0.1:7880"),
            (" wss://lk.example.org ", "https://lk.example.org"),
        ];
        for (configured, base) in cases {
            assert_eq!(server_api_base(configured).unwrap(), base, "{configured}");
        }
        for bad in [
            "",
            "livekit.example.org",
            "ftp://livekit.example.org",
            "wss://",
            "wss:///path",
            "wss://a b",
        ] {
            assert!(
                matches!(server_api_base(bad), Err(ApiError::InvalidUrl)),
                "{bad}"
            );
        }
    }
}
