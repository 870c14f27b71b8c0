//! The LiveKit side of the Meet backend, as pure functions.
//!
//! * [`token`]: participant tokens for browsers (identity, name and colour
//!   rules included) and tokens for the backend's own server API calls.
//! * [`verify`]: checking tokens LiveKit signs with our credentials (webhooks).
//! * [`color`]: the deterministic participant colour.
//! * [`livekit_object`]: the `{"url", "room", "token"}` object of API responses.
//!
//! Nothing here does I/O: callers pass the current time, and draw the random
//! identities of anonymous participants themselves.

pub mod color;
pub mod livekit_object;
mod mersenne;
pub mod token;
pub mod verify;

pub use color::color_for_identity;
pub use livekit_object::LiveKitObject;
pub use token::{
    participant_token, server_token, Caller, LiveKitCredentials, ParticipantGrant, ServerGrant,
    TokenError,
};
pub use verify::{verify, VerifiedClaims, VerifyError, VERIFY_LEEWAY};
