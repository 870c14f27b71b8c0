//! LiveKit's protobuf messages, as far as the backend reads or writes them
//! (livekit_models.proto, livekit_room.proto, livekit_egress.proto,
//! livekit_sip.proto).
//!
//! Read side: both JSON spellings (camelCase from webhooks, proto names
//! from Twirp), integers as numbers or strings, enums as names or numbers,
//! unknown fields ignored, absent fields at their zero value.
//! Write side (requests): proto names, zero values left out.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::protojson::{integer, message, messages, proto_enum};

proto_enum! {
    /// `EgressStatus`.
    pub enum EgressStatus {
        Starting = 0 => "EGRESS_STARTING",
        Active = 1 => "EGRESS_ACTIVE",
        Ending = 2 => "EGRESS_ENDING",
        Complete = 3 => "EGRESS_COMPLETE",
        Failed = 4 => "EGRESS_FAILED",
        Aborted = 5 => "EGRESS_ABORTED",
        LimitReached = 6 => "EGRESS_LIMIT_REACHED",
    }
}

proto_enum! {
    /// `ParticipantInfo.Kind`.
    pub enum ParticipantKind {
        Standard = 0 => "STANDARD",
        Ingress = 1 => "INGRESS",
        Egress = 2 => "EGRESS",
        Sip = 3 => "SIP",
        Agent = 4 => "AGENT",
        Connector = 7 => "CONNECTOR",
    }
}

proto_enum! {
    /// `ParticipantInfo.State`.
    pub enum ParticipantState {
        Joining = 0 => "JOINING",
        Joined = 1 => "JOINED",
        Active = 2 => "ACTIVE",
        Disconnected = 3 => "DISCONNECTED",
    }
}

proto_enum! {
    /// `TrackSource`.
    pub enum TrackSource {
        Unknown = 0 => "UNKNOWN",
        Camera = 1 => "CAMERA",
        Microphone = 2 => "MICROPHONE",
        ScreenShare = 3 => "SCREEN_SHARE",
        ScreenShareAudio = 4 => "SCREEN_SHARE_AUDIO",
    }
}

proto_enum! {
    /// `EncodedFileType`.
    pub enum EncodedFileType {
        DefaultFiletype = 0 => "DEFAULT_FILETYPE",
        Mp4 = 1 => "MP4",
        Ogg = 2 => "OGG",
        Mp3 = 3 => "MP3",
    }
}

/// `Room`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all(deserialize = "camelCase"))]
pub struct Room {
    pub sid: String,
    pub name: String,
    #[serde(alias = "empty_timeout", deserialize_with = "integer")]
    pub empty_timeout: u32,
    #[serde(alias = "departure_timeout", deserialize_with = "integer")]
    pub departure_timeout: u32,
    #[serde(alias = "max_participants", deserialize_with = "integer")]
    pub max_participants: u32,
    /// Unix seconds.
    #[serde(alias = "creation_time", deserialize_with = "integer")]
    pub creation_time: i64,
    pub metadata: String,
    #[serde(alias = "num_participants", deserialize_with = "integer")]
    pub num_participants: u32,
    #[serde(alias = "num_publishers", deserialize_with = "integer")]
    pub num_publishers: u32,
    #[serde(alias = "active_recording")]
    pub active_recording: bool,
}

/// `ParticipantPermission`. Sent whole by [`UpdateParticipant`]: LiveKit
/// replaces the participant's permission with it.
///
/// [`UpdateParticipant`]: crate::server_api::ParticipantUpdate
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all(deserialize = "camelCase"))]
pub struct ParticipantPermission {
    #[serde(alias = "can_subscribe")]
    pub can_subscribe: bool,
    #[serde(alias = "can_publish")]
    pub can_publish: bool,
    #[serde(alias = "can_publish_data")]
    pub can_publish_data: bool,
    /// Empty: every source allowed.
    #[serde(alias = "can_publish_sources", skip_serializing_if = "Vec::is_empty")]
    pub can_publish_sources: Vec<TrackSource>,
    pub hidden: bool,
    #[serde(alias = "can_update_metadata")]
    pub can_update_metadata: bool,
    #[serde(alias = "can_subscribe_metrics")]
    pub can_subscribe_metrics: bool,
}

/// `ParticipantInfo`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all(deserialize = "camelCase"))]
pub struct ParticipantInfo {
    pub sid: String,
    pub identity: String,
    pub state: ParticipantState,
    pub metadata: String,
    /// Unix seconds.
    #[serde(alias = "joined_at", deserialize_with = "integer")]
    pub joined_at: i64,
    pub name: String,
    #[serde(deserialize_with = "message")]
    pub permission: Option<ParticipantPermission>,
    #[serde(alias = "is_publisher")]
    pub is_publisher: bool,
    pub kind: ParticipantKind,
    pub attributes: BTreeMap<String, String>,
}

/// `FileInfo`: one file an egress wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all(deserialize = "camelCase"))]
pub struct FileInfo {
    pub filename: String,
    /// Unix nanoseconds, like the other egress times.
    #[serde(alias = "started_at", deserialize_with = "integer")]
    pub started_at: i64,
    #[serde(alias = "ended_at", deserialize_with = "integer")]
    pub ended_at: i64,
    /// Nanoseconds.
    #[serde(deserialize_with = "integer")]
    pub duration: i64,
    /// Bytes.
    #[serde(deserialize_with = "integer")]
    pub size: i64,
    pub location: String,
}

/// `EgressInfo`: the state of one recording worker.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all(deserialize = "camelCase"))]
pub struct EgressInfo {
    #[serde(alias = "egress_id")]
    pub egress_id: String,
    #[serde(alias = "room_id")]
    pub room_id: String,
    #[serde(alias = "room_name")]
    pub room_name: String,
    pub status: EgressStatus,
    /// Unix nanoseconds (0 when not yet).
    #[serde(alias = "started_at", deserialize_with = "integer")]
    pub started_at: i64,
    #[serde(alias = "ended_at", deserialize_with = "integer")]
    pub ended_at: i64,
    #[serde(alias = "updated_at", deserialize_with = "integer")]
    pub updated_at: i64,
    pub error: String,
    #[serde(alias = "error_code", deserialize_with = "integer")]
    pub error_code: i32,
    pub details: String,
    #[serde(alias = "file_results", deserialize_with = "messages")]
    pub file_results: Vec<FileInfo>,
    /// The deprecated single-file result older servers fill instead.
    #[serde(deserialize_with = "message")]
    pub file: Option<FileInfo>,
}

impl EgressInfo {
    /// The files written: `file_results`, else the deprecated `file`.
    pub fn files(&self) -> Vec<&FileInfo> {
        if self.file_results.is_empty() {
            self.file.iter().collect()
        } else {
            self.file_results.iter().collect()
        }
    }
}

/// `S3Upload`: where an egress uploads its file.
#[derive(Clone, Default, PartialEq, Eq, Serialize)]
pub struct S3Upload {
    pub access_key: String,
    pub secret: String,
    pub region: String,
    pub endpoint: String,
    pub bucket: String,
    pub force_path_style: bool,
}

impl fmt::Debug for S3Upload {
    // Keeps the secret out of logs and panic messages.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("S3Upload")
            .field("access_key", &self.access_key)
            .field("secret", &"<redacted>")
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("force_path_style", &self.force_path_style)
            .finish()
    }
}

/// `EncodedFileOutput` with an S3 destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EncodedFileOutput {
    pub file_type: EncodedFileType,
    pub filepath: String,
    pub s3: S3Upload,
}

/// `RoomCompositeEgressRequest`, reduced to what recordings use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoomCompositeEgress {
    pub room_name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub layout: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub audio_only: bool,
    pub file_outputs: Vec<EncodedFileOutput>,
}

/// Layout of screen recordings.
pub const SCREEN_RECORDING_LAYOUT: &str = "speaker-light";

impl RoomCompositeEgress {
    /// A `screen_recording`: MP4, layout `speaker-light` (livekit.md §4).
    pub fn screen_recording(room_name: &str, filepath: &str, s3: S3Upload) -> RoomCompositeEgress {
        RoomCompositeEgress {
            room_name: room_name.to_string(),
            layout: SCREEN_RECORDING_LAYOUT.to_string(),
            audio_only: false,
            file_outputs: vec![EncodedFileOutput {
                file_type: EncodedFileType::Mp4,
                filepath: filepath.to_string(),
                s3,
            }],
        }
    }

    /// A `transcript`: audio only, OGG, no layout (livekit.md §4).
    pub fn transcript(room_name: &str, filepath: &str, s3: S3Upload) -> RoomCompositeEgress {
        RoomCompositeEgress {
            room_name: room_name.to_string(),
            layout: String::new(),
            audio_only: true,
            file_outputs: vec![EncodedFileOutput {
                file_type: EncodedFileType::Ogg,
                filepath: filepath.to_string(),
                s3,
            }],
        }
    }
}

/// `SIPDispatchRuleDirect`: callers go to `room_name`, after typing `pin`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all(deserialize = "camelCase"))]
pub struct SipDispatchRuleDirect {
    #[serde(alias = "room_name")]
    pub room_name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub pin: String,
}

/// `SIPDispatchRule`; only the direct kind is modelled (the others read
/// as `None`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all(deserialize = "camelCase"))]
pub struct SipDispatchRule {
    #[serde(alias = "dispatch_rule_direct", deserialize_with = "message")]
    pub dispatch_rule_direct: Option<SipDispatchRuleDirect>,
}

/// `SIPDispatchRuleInfo`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all(deserialize = "camelCase"))]
pub struct SipDispatchRuleInfo {
    #[serde(alias = "sip_dispatch_rule_id")]
    pub sip_dispatch_rule_id: String,
    #[serde(deserialize_with = "message")]
    pub rule: Option<SipDispatchRule>,
    #[serde(alias = "trunk_ids")]
    pub trunk_ids: Vec<String>,
    pub name: String,
    pub metadata: String,
}

impl SipDispatchRuleInfo {
    /// The room of a direct rule.
    pub fn direct_room(&self) -> Option<&str> {
        self.rule
            .as_ref()
            .and_then(|rule| rule.dispatch_rule_direct.as_ref())
            .map(|direct| direct.room_name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn egress_info_reads_twirp_proto_names() {
        // What a Twirp server writes with proto names and defaults emitted.
        let info: EgressInfo = serde_json::from_value(json!({
            "egress_id": "EG_abc",
            "room_id": "RM_1",
            "room_name": "9e5bd2b8-4b4e-4b7a-9d4b-5f0a7c3f1e2d",
            "source_type": "EGRESS_SOURCE_TYPE_WEB",
            "status": "EGRESS_ACTIVE",
            "started_at": "1700000000000000000",
            "ended_at": "0",
            "updated_at": 1700000000000000001i64,
            "room_composite": {"room_name": "x", "layout": "speaker-light"},
            "stream_results": [],
            "file_results": [],
            "error": "",
            "error_code": 0,
            "details": "",
            "manifest_location": "",
            "backup_storage_used": false,
            "retry_count": 0,
        }))
        .unwrap();
        assert_eq!(info.egress_id, "EG_abc");
        assert_eq!(info.status, EgressStatus::Active);
        assert_eq!(info.started_at, 1_700_000_000_000_000_000);
        assert_eq!(info.updated_at, 1_700_000_000_000_000_001);
        assert!(info.files().is_empty());
    }

    #[test]
    fn egress_info_reads_camel_case_and_numbers() {
        let info: EgressInfo = serde_json::from_value(json!({
            "egressId": "EG_abc",
            "roomName": "room",
            "status": 5,
            "endedAt": "1700000001000000000",
            "error": "aborted by user",
            "file": {"filename": "recordings/a.ogg", "size": "1024", "location": "s3://b/a.ogg"},
        }))
        .unwrap();
        assert_eq!(info.status, EgressStatus::Aborted);
        assert_eq!(info.ended_at, 1_700_000_001_000_000_000);
        assert_eq!(info.error, "aborted by user");
        let files = info.files();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].filename, "recordings/a.ogg");
        assert_eq!(files[0].size, 1024);
    }

    #[test]
    fn missing_status_is_starting() {
        let info: EgressInfo = serde_json::from_value(json!({"egress_id": "EG_x"})).unwrap();
        assert_eq!(info.status, EgressStatus::Starting);
        let info: EgressInfo =
            serde_json::from_value(json!({"status": "EGRESS_FROM_THE_FUTURE"})).unwrap();
        assert_eq!(info.status, EgressStatus::Other);
    }

    #[test]
    fn wrong_types_are_errors() {
        for value in [
            json!({"egress_id": 5}),
            json!({"status": true}),
            json!({"file_results": {}}),
            json!({"started_at": "soon"}),
            json!({"file": []}),
            json!({"file": ["x.ogg"]}),
            json!({"file_results": [[]]}),
        ] {
            assert!(
                serde_json::from_value::<EgressInfo>(value.clone()).is_err(),
                "{value}"
            );
        }
    }

    #[test]
    fn egress_requests_follow_the_recording_modes() {
        let s3 = S3Upload {
            access_key: "key".to_string(),
            secret: "s3-secret".to_string(),
            region: "eu-west-1".to_string(),
            endpoint: "http://minio:9000".to_string(),
            bucket: "meet-media-storage".to_string(),
            force_path_style: true,
        };
        let s3_json = json!({
            "access_key": "key",
            "secret": "s3-secret",
            "region": "eu-west-1",
            "endpoint": "http://minio:9000",
            "bucket": "meet-media-storage",
            "force_path_style": true,
        });
        let screen = RoomCompositeEgress::screen_recording("room", "recordings/r.mp4", s3.clone());
        assert_eq!(
            serde_json::to_value(&screen).unwrap(),
            json!({
                "room_name": "room",
                "layout": "speaker-light",
                "file_outputs": [{"file_type": "MP4", "filepath": "recordings/r.mp4", "s3": s3_json}],
            })
        );
        let transcript = RoomCompositeEgress::transcript("room", "recordings/r.ogg", s3.clone());
        assert_eq!(
            serde_json::to_value(&transcript).unwrap(),
            json!({
                "room_name": "room",
                "audio_only": true,
                "file_outputs": [{"file_type": "OGG", "filepath": "recordings/r.ogg", "s3": s3_json}],
            })
        );
        assert!(!format!("{s3:?}").contains("s3-secret"));
    }

    #[test]
    fn dispatch_rules_read_both_spellings() {
        let rule: SipDispatchRuleInfo = serde_json::from_value(json!({
            "sip_dispatch_rule_id": "SDR_1",
            "rule": {"dispatch_rule_direct": {"room_name": "room-a", "pin": "1234"}},
            "trunk_ids": ["ST_1"],
            "name": "room-a",
        }))
        .unwrap();
        assert_eq!(rule.direct_room(), Some("room-a"));
        assert_eq!(rule.trunk_ids, ["ST_1"]);
        let rule: SipDispatchRuleInfo = serde_json::from_value(json!({
            "sipDispatchRuleId": "SDR_2",
            "rule": {"dispatchRuleIndividual": {"roomPrefix": "call-"}},
        }))
        .unwrap();
        assert_eq!(rule.sip_dispatch_rule_id, "SDR_2");
        assert_eq!(rule.direct_room(), None);
    }

    #[test]
    fn permission_is_written_with_proto_names() {
        let permission = ParticipantPermission {
            can_subscribe: true,
            can_publish: false,
            can_publish_data: true,
            can_publish_sources: vec![TrackSource::Camera, TrackSource::Microphone],
            ..ParticipantPermission::default()
        };
        assert_eq!(
            serde_json::to_value(&permission).unwrap(),
            json!({
                "can_subscribe": true,
                "can_publish": false,
                "can_publish_data": true,
                "can_publish_sources": ["CAMERA", "MICROPHONE"],
                "hidden": false,
                "can_update_metadata": false,
                "can_subscribe_metrics": false,
            })
        );
        let read: ParticipantPermission = serde_json::from_value(json!({
            "canPublishSources": ["SCREEN_SHARE", 4], "canSubscribe": true,
        }))
        .unwrap();
        assert_eq!(
            read.can_publish_sources,
            [TrackSource::ScreenShare, TrackSource::ScreenShareAudio]
        );
        assert!(read.can_subscribe);
    }
}
