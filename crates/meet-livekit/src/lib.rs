//! The LiveKit side of the Meet backend, as pure functions.
//!
//! * [`token`]: participant tokens for browsers (identity, name and colour
//!   rules included) and tokens for the backend's own server API calls.
//! * [`server_api`]: a client of LiveKit's server API (Twirp, JSON) over a
//!   [`Transport`] the caller supplies.
//! * [`messages`]: the LiveKit protobuf messages read and written, in
//!   protobuf JSON.
//! * [`webhook`]: checking and reading LiveKit's webhooks.
//! * [`verify`]: checking tokens LiveKit signs with our credentials.
//! * [`color`]: the deterministic participant colour.
//! * [`livekit_object`]: the `{"url", "room", "token"}` object of API responses.
//!
//! Nothing here does I/O: callers pass the current time, do the HTTP
//! exchanges, and draw the random identities of anonymous participants
//! themselves.

pub mod color;
pub mod livekit_object;
mod mersenne;
pub mod messages;
mod protojson;
pub mod server_api;
pub mod token;
pub mod verify;
pub mod webhook;

pub use color::color_for_identity;
pub use livekit_object::LiveKitObject;
pub use messages::{
    EgressInfo, EgressStatus, EncodedFileOutput, EncodedFileType, FileInfo, ParticipantInfo,
    ParticipantKind, ParticipantPermission, ParticipantState, Room, RoomCompositeEgress, S3Upload,
    SipDispatchRule, SipDispatchRuleDirect, SipDispatchRuleInfo, TrackSource,
};
pub use server_api::{
    server_api_base, ApiError, EgressFilter, NewDispatchRule, ParticipantUpdate, ServerApi,
    Transport, TransportError, TransportResponse, TwirpError, DEFAULT_TIMEOUT,
};
pub use token::{
    participant_token, server_token, Caller, LiveKitCredentials, ParticipantGrant, ServerGrant,
    TokenError,
};
pub use verify::{verify, VerifiedClaims, VerifyError, VERIFY_LEEWAY};
pub use webhook::{
    body_hash, receive as receive_webhook, WebhookError, WebhookEvent, KNOWN_EVENTS,
};
