//! The one table from LiveKit event types to what the backend does.
//!
//! To handle an event, add one `(event name, handler)` line to [`HANDLERS`]
//! (a feature keeps its handler in its own folder, e.g.
//! `crate::recordings::webhooks::egress_ended`). Several entries may name
//! the same event: they all run, in table order, and the first error stops
//! the delivery with a 500 (LiveKit then delivers it again, and it is
//! processed again: duplicates are only skipped once a delivery succeeded).
//! Known events without an entry are answered 200 and do nothing.

use meet_livekit::WebhookEvent;

use crate::error::ApiError;
use crate::ports::Services;

/// What handles one event: the request's services and the verified event.
pub type Handler = fn(&Services, &WebhookEvent) -> Result<(), ApiError>;

/// Event type → handler. Extend here (one line per handler).
pub const HANDLERS: &[(&str, Handler)] = &[
    // Lobby (lobby.md §9): a finished room's lobby is emptied.
    ("room_finished", crate::lobby::webhooks::room_finished),
    // Recordings: the lifecycle by egress id, then a few due notifications.
    ("egress_started", crate::recordings::events::egress_webhook),
    ("egress_updated", crate::recordings::events::egress_webhook),
    ("egress_ended", crate::recordings::events::egress_webhook),
    // Telephony: SIP dispatch rules follow the room; SIP callers of lobby rooms wait.
    (
        "room_started",
        crate::telephony::sip::webhooks::room_started,
    ),
    (
        "room_finished",
        crate::telephony::sip::webhooks::room_finished,
    ),
    (
        "participant_joined",
        crate::telephony::sip::webhooks::participant_joined,
    ),
    (
        "participant_left",
        crate::telephony::sip::webhooks::participant_left,
    ),
];

/// Runs every handler of `event.event`, in table order.
pub fn dispatch(services: &Services, event: &WebhookEvent) -> Result<(), ApiError> {
    for (_, handler) in HANDLERS.iter().filter(|(name, _)| *name == event.event) {
        handler(services, event)?;
    }
    Ok(())
}
