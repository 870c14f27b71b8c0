//! The core of the Meet backend: a shared kernel and one folder per feature.
//!
//! Everything here is plain Rust with no I/O of its own: components built for
//! Spin and native tests drive it through the ports of [`ports`]. A feature
//! folder holds its endpoints (`api`), all of its SQL (`store`) and its
//! domain rules; each component under `components/` adapts one feature.

// The kernel: what every feature uses.
pub mod body; // request bodies with DRF's parser semantics
pub mod cache; // values with a time to live (`meet_cache`), where upstream uses Redis
pub mod email; // email settings from Spin variables and the Mailer port
pub mod error; // the one API error type, rendered as DRF bodies
pub mod http; // request and response shapes
pub mod ids; // UUIDs: Python's parsing rules, random v4
pub mod livekit; // LiveKit settings, participant tokens, the server API over the HTTP port
pub mod pagination; // DRF page-number pagination
pub mod ports; // database, outbound HTTP, clock, randomness
pub mod roles; // roles on a room and access levels
pub mod routing; // Django-style routing inside a component
pub mod settings; // typed upstream settings from Spin variables
pub mod sql; // timestamps and rows read by column name
pub mod throttle; // DRF-style throttles for anonymous callers

// Who is calling: sessions, CSRF and bearer tokens.
pub mod auth;

// The features.
pub mod accesses; // resource accesses: who holds which role on which room
pub mod identity; // frontend config, OIDC login, users, duplicate-user merge
pub mod invitations; // invitations to a room sent by email
pub mod lobby; // the waiting room: request-entry, waiting-participants, enter
pub mod recordings; // recordings: egress start/stop, API, storage hook, media access, notifications
pub mod rooms; // rooms, LiveKit tokens, the room-creation callback
pub mod telephony; // room PINs, the SIP gateways' PIN lookup and phone lobby, SIP dispatch rules
pub mod webhooks; // the LiveKit webhook endpoint and its dispatch table

#[cfg(feature = "native")]
pub mod native;

pub use error::ApiError;
pub use http::{ApiRequest, ApiResponse, Method};
