//! Phone callers in the lobby of a trusted or restricted room, as entries
//! of the lobby feature (`crate::lobby::store`), so that admins see them in
//! `waiting-participants/` and decide with `enter/` like for web guests.
//!
//! Two kinds of phone callers wait:
//! * gateway lookups (`telephony/lookup/`) poll with their participant id;
//!   their entry lives `lobby_waiting_timeout` seconds after each poll;
//! * SIP participants already in the LiveKit room (held by the
//!   `participant_joined` webhook) do not poll: their entry lives as long as
//!   an accepted one (`lobby_accepted_timeout`), and the SIP identity behind
//!   the participant id is kept beside it (`meet_cache`) for `enter/`.

use sha2::{Digest, Sha256};

use meet_livekit::color_for_identity;

use crate::auth::store::CallerQuery;
use crate::auth::Credential;
use crate::error::{ApiError, FieldErrors};
use crate::lobby::store::{self as lobby_store, Entry, Poll, Waiting};
use crate::ports::Services;
use crate::rooms::store::RoomKey;
use crate::telephony::store::{self, PhoneRoom};

/// What a polling gateway learns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhoneEntry {
    Waiting {
        participant_id: String,
    },
    Accepted {
        participant_id: String,
        color: String,
    },
    Denied {
        participant_id: String,
    },
}

fn sip_key(room_id: &str, participant_id: &str) -> String {
    format!("telephony_sip_{room_id}_{participant_id}")
}

/// A lobby participant id (32 hex digits, like the lobby's own) for a
/// value the caller does not choose.
fn participant_id_for(seed: &str) -> String {
    hex::encode(&Sha256::digest(seed.as_bytes())[..16])
}

/// 32 lowercase hex digits, dashes dropped; anything else is refused.
fn normalized_participant_id(id: &str) -> Option<String> {
    let id: String = id
        .chars()
        .filter(|c| *c != '-')
        .collect::<String>()
        .to_ascii_lowercase();
    (id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(id)
}

/// A gateway's lookup of a lobby room, one statement: creates the waiting
/// entry on the first call (a new participant id), refreshes it on later
/// polls (one more when the entry expired), reports the admins' decision.
pub fn request_entry(
    services: &Services,
    room: &PhoneRoom,
    participant_id: Option<&str>,
    name: &str,
) -> Result<PhoneEntry, ApiError> {
    let new_participant = participant_id.is_none();
    let participant_id = match participant_id {
        Some(id) => normalized_participant_id(id).ok_or_else(|| {
            ApiError::Validation(FieldErrors::single(
                "participant_id",
                "Invalid UUID hex format",
            ))
        })?,
        None => participant_id_for(&services.new_uuid()),
    };
    let color = color_for_identity(&participant_id);
    let request_token = services.new_uuid();
    let waiting = Waiting {
        participant_id: &participant_id,
        username: name,
        color: &color,
        ttl_seconds: services.settings().u64("lobby_waiting_timeout")?,
        request_token: &request_token,
        // Gateways are not throttled by the lobby (the lookup has its own
        // lockout).
        rate: None,
        new_participant,
    };
    // A phone caller is never a logged-in user: the anonymous lobby rules.
    let now = services.clock.now();
    let poll = lobby_store::poll(
        services.db,
        &CallerQuery::of(&Credential::Anonymous, None, now),
        false,
        &RoomKey::Id(room.id.clone()),
        &waiting,
        now,
    )?;
    let Some((_, Poll::Lobby { entry, created })) = poll else {
        // The room became public (or was deleted) between the two reads.
        return Err(ApiError::NotFoundDetail("No room with this PIN.".into()));
    };
    // The room's admins hear of a new phone waiter like of a web guest.
    if created {
        crate::lobby::api::notify_waiting_best_effort(services, &entry.room_id, "a phone waiter");
    }
    Ok(match entry.status.as_str() {
        "accepted" => PhoneEntry::Accepted {
            participant_id,
            color: entry.color,
        },
        "denied" => PhoneEntry::Denied { participant_id },
        _ => PhoneEntry::Waiting { participant_id },
    })
}

/// A SIP participant held by the `participant_joined` webhook: a waiting
/// entry that needs no polling, and its SIP identity for `enter/`.
pub fn hold_sip_participant(
    services: &Services,
    room: &PhoneRoom,
    identity: &str,
    name: &str,
) -> Result<(), ApiError> {
    let ttl = services.settings().u64("lobby_accepted_timeout")?;
    let participant_id = participant_id_for(&format!("sip:{}:{identity}", room.id));
    let now = services.clock.now();
    crate::cache::set(
        services.db,
        &sip_key(&room.id, &participant_id),
        identity,
        ttl,
        now,
    )?;
    let entry = Entry {
        room_id: room.id.clone(),
        color: color_for_identity(&participant_id),
        participant_id,
        status: "waiting".into(),
        username: name.to_string(),
    };
    lobby_store::put(services.db, &entry, ttl, now)?;
    Ok(())
}

/// A SIP participant that left the LiveKit room (hung up): its entry
/// expires now, so admins no longer list it and `enter/` answers 404
/// (otherwise it would stay listed `lobby_accepted_timeout` seconds).
pub fn release_sip_participant(
    services: &Services,
    room: &PhoneRoom,
    identity: &str,
) -> Result<(), ApiError> {
    let participant_id = participant_id_for(&format!("sip:{}:{identity}", room.id));
    // Only a present entry is touched (a time to live of 0: gone now).
    lobby_store::decide(
        services.db,
        &room.id,
        &participant_id,
        "waiting",
        0,
        services.clock.now(),
    )?;
    Ok(())
}

/// The SIP identity behind a lobby participant id, if it is a held SIP
/// participant.
pub fn sip_identity(
    services: &Services,
    room_id: &str,
    participant_id: &str,
) -> Result<Option<String>, ApiError> {
    let Some(participant_id) = normalized_participant_id(participant_id) else {
        return Ok(None);
    };
    Ok(store::cached(
        services.db,
        &sip_key(room_id, &participant_id),
        services.clock.now(),
    )?)
}
