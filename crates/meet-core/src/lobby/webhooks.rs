//! The lobby's LiveKit webhook handlers (see `crate::webhooks::dispatch`).

use meet_livekit::WebhookEvent;

use crate::error::ApiError;
use crate::ids::parse_uuid_like;
use crate::lobby::store;
use crate::ports::Services;

/// `room_finished`: empties the lobby of the room the LiveKit room names
/// (lobby.md §9). A room name that is not a UUID is a 500, as upstream.
pub fn room_finished(services: &Services, event: &WebhookEvent) -> Result<(), ApiError> {
    let name = event.room_name().unwrap_or_default();
    let room_id = parse_uuid_like(name).ok_or_else(|| {
        ApiError::internal(format!("room_finished: room name {name:?} is not a UUID"))
    })?;
    store::clear_room(services.db, &room_id)?;
    Ok(())
}
