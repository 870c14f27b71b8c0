//! LiveKit SIP: one direct dispatch rule per running room (`SIP_<room id>`,
//! PIN = the room's PIN) and phone participants of non-public rooms held
//! muted in the lobby until an administrator decides (issue 11, item 4).
//!
//! The webhook handlers answer `Err` when LiveKit could not be reached, so
//! that the webhook endpoint answers 500 and LiveKit delivers again; every
//! handler is idempotent for that reason.

use meet_livekit::{
    NewDispatchRule, ParticipantInfo, ParticipantKind, ParticipantPermission, ParticipantUpdate,
};

use crate::error::ApiError;
use crate::ids::parse_uuid_like;
use crate::livekit::{describe, with_server_api};
use crate::ports::Services;
use crate::roles::AccessLevel;
use crate::telephony::phone_lobby;
use crate::telephony::pins::{PinSettings, DEFAULT_TRUNK};
use crate::telephony::store::{self, PhoneRoom};

/// The name of a room's dispatch rule.
pub fn dispatch_rule_name(room_id: &str) -> String {
    format!("SIP_{room_id}")
}

fn livekit_failed(error: &meet_livekit::ApiError) -> ApiError {
    let text = describe(error);
    eprintln!("telephony: {text}");
    ApiError::internal(text)
}

/// The registered room of a LiveKit room name, when telephony is enabled.
fn telephony_room(services: &Services, room_name: &str) -> Result<Option<PhoneRoom>, ApiError> {
    if PinSettings::load(&services.settings())?.is_none() {
        return Ok(None);
    }
    let Some(room_id) = parse_uuid_like(room_name) else {
        return Ok(None);
    };
    Ok(store::room(services.db, &room_id)?)
}

/// `room_started`: makes sure the room's dispatch rule exists. Lists the
/// rules first and creates the rule only when none has its name, so a
/// second `room_started` or a retried delivery creates no duplicate.
pub fn on_room_started(services: &Services, room_name: &str) -> Result<(), ApiError> {
    let Some(room) = telephony_room(services, room_name)? else {
        return Ok(());
    };
    let Some(pin) = room.pin.clone() else {
        return Ok(());
    };
    let name = dispatch_rule_name(&room.id);
    let trunk_ids = if room.trunk == DEFAULT_TRUNK {
        Vec::new()
    } else {
        vec![room.trunk.clone()]
    };
    with_server_api(services, |api| {
        let rules = api.list_sip_dispatch_rules()?;
        if rules.iter().any(|rule| rule.name == name) {
            return Ok(());
        }
        api.create_sip_dispatch_rule(&NewDispatchRule {
            room_name: room.id.clone(),
            pin,
            trunk_ids,
            name: name.clone(),
        })
        .map(|_| ())
    })?
    .map_err(|error| livekit_failed(&error))
}

/// `room_finished`: deletes the room's dispatch rule(s), if any.
pub fn on_room_finished(services: &Services, room_name: &str) -> Result<(), ApiError> {
    if PinSettings::load(&services.settings())?.is_none() {
        return Ok(());
    }
    let Some(room_id) = parse_uuid_like(room_name) else {
        return Ok(());
    };
    let name = dispatch_rule_name(&room_id);
    with_server_api(services, |api| {
        for rule in api.list_sip_dispatch_rules()? {
            if rule.name == name {
                match api.delete_sip_dispatch_rule(&rule.sip_dispatch_rule_id) {
                    Ok(_) => {}
                    // Deleted meanwhile (a retried delivery): fine.
                    Err(error) if is_not_found(&error) => {}
                    Err(error) => return Err(error),
                }
            }
        }
        Ok(())
    })?
    .map_err(|error| livekit_failed(&error))
}

/// No publishing, no subscribing: a phone caller waiting for a decision
/// hears and says nothing.
fn held_permission() -> ParticipantPermission {
    ParticipantPermission {
        can_subscribe: false,
        can_publish: false,
        can_publish_data: false,
        ..ParticipantPermission::default()
    }
}

/// What a phone caller may do once admitted.
fn admitted_permission() -> ParticipantPermission {
    ParticipantPermission {
        can_subscribe: true,
        can_publish: true,
        can_publish_data: true,
        ..ParticipantPermission::default()
    }
}

/// The calling number LiveKit reports for a SIP participant.
fn calling_number(participant: &ParticipantInfo) -> Option<&str> {
    participant
        .attributes
        .get("sip.phoneNumber")
        .map(String::as_str)
        .or(Some(participant.name.as_str()))
}

/// The room of `room_name` when `participant` is a SIP caller that room's
/// lobby holds (telephony on, the room not public); `None` otherwise.
fn lobby_room_of_sip_caller(
    services: &Services,
    room_name: &str,
    participant: &ParticipantInfo,
) -> Result<Option<PhoneRoom>, ApiError> {
    if participant.kind != ParticipantKind::Sip {
        return Ok(None);
    }
    let room = telephony_room(services, room_name)?;
    Ok(room.filter(|room| room.access_level != AccessLevel::Public))
}

/// `participant_joined`: a SIP participant of a non-public room loses its
/// permissions and waits in the lobby (admins see it in
/// `waiting-participants/`).
pub fn on_participant_joined(
    services: &Services,
    room_name: &str,
    participant: &ParticipantInfo,
) -> Result<(), ApiError> {
    let Some(room) = lobby_room_of_sip_caller(services, room_name, participant)? else {
        return Ok(());
    };
    let update = ParticipantUpdate {
        permission: Some(held_permission()),
        ..ParticipantUpdate::default()
    };
    with_server_api(services, |api| {
        api.update_participant(&room.id, &participant.identity, &update)
    })?
    .map_err(|error| livekit_failed(&error))?;
    let name = crate::telephony::api::masked_number(calling_number(participant));
    phone_lobby::hold_sip_participant(services, &room, &participant.identity, &name)?;
    // The admins hear of the caller like of a web guest.
    crate::lobby::api::notify_waiting_best_effort(services, &room.id, "a SIP caller");
    Ok(())
}

/// `participant_left`: a SIP participant of a non-public room leaves the
/// lobby list (a caller who hung up while waiting). Nothing is called.
pub fn on_participant_left(
    services: &Services,
    room_name: &str,
    participant: &ParticipantInfo,
) -> Result<(), ApiError> {
    let Some(room) = lobby_room_of_sip_caller(services, room_name, participant)? else {
        return Ok(());
    };
    phone_lobby::release_sip_participant(services, &room, &participant.identity)
}

/// Whether LiveKit answered that the room or participant does not exist.
fn is_not_found(error: &meet_livekit::ApiError) -> bool {
    error.twirp().is_some_and(|e| e.code == "not_found")
}

/// The lobby's `enter/` decision for one participant: when it is a SIP
/// participant held by [`on_participant_joined`], admitted gets its
/// permissions back and refused is removed from the room. Others: nothing.
/// A caller who hung up meanwhile (`not_found`) needs nothing more: the
/// decision is recorded and `enter/` succeeds.
pub fn on_entry_decision(
    services: &Services,
    room_id: &str,
    participant_id: &str,
    allow_entry: bool,
) -> Result<(), ApiError> {
    let Some(identity) = phone_lobby::sip_identity(services, room_id, participant_id)? else {
        return Ok(());
    };
    with_server_api(services, |api| {
        if allow_entry {
            let update = ParticipantUpdate {
                permission: Some(admitted_permission()),
                ..ParticipantUpdate::default()
            };
            api.update_participant(room_id, &identity, &update)
                .map(|_| ())
        } else {
            api.remove_participant(room_id, &identity)
        }
    })?
    .or_else(|error| {
        if is_not_found(&error) {
            return Ok(());
        }
        Err(livekit_failed(&error))
    })
}

/// The webhooks dispatch table's handlers (`crate::webhooks::dispatch`).
pub mod webhooks {
    use meet_livekit::WebhookEvent;

    use crate::error::ApiError;
    use crate::ports::Services;

    pub fn room_started(services: &Services, event: &WebhookEvent) -> Result<(), ApiError> {
        match event.room_name() {
            Some(room) => super::on_room_started(services, room),
            None => Ok(()),
        }
    }

    pub fn room_finished(services: &Services, event: &WebhookEvent) -> Result<(), ApiError> {
        match event.room_name() {
            Some(room) => super::on_room_finished(services, room),
            None => Ok(()),
        }
    }

    pub fn participant_joined(services: &Services, event: &WebhookEvent) -> Result<(), ApiError> {
        match (event.room_name(), &event.participant) {
            (Some(room), Some(participant)) => {
                super::on_participant_joined(services, room, participant)
            }
            _ => Ok(()),
        }
    }

    pub fn participant_left(services: &Services, event: &WebhookEvent) -> Result<(), ApiError> {
        match (event.room_name(), &event.participant) {
            (Some(room), Some(participant)) => {
                super::on_participant_left(services, room, participant)
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::native::{migrated_database, OsRandom, ScriptedHttp, SqliteDatabase, SystemClock};
    use crate::ports::Database;
    use crate::settings::StaticVariables;
    use crate::telephony::pins::PinSettings;

    const ROOM: &str = "6f1e9a3c-2b4d-4e5f-8a9b-0c1d2e3f4a5b";

    fn variables(telephony: bool) -> StaticVariables {
        StaticVariables::new(&[
            (
                "room_telephony_enabled",
                if telephony { "true" } else { "false" },
            ),
            ("room_telephony_pin_length", "6"),
            ("room_telephony_pin_max_retries", "5"),
            ("room_telephony_pin_secret", "secret"),
            ("room_telephony_trunks", ""),
            ("livekit_api_url", "http://livekit.test"),
            ("livekit_api_key", "key"),
            ("livekit_api_secret", "secret-that-is-long-enough-for-hs256"),
            ("lobby_accepted_timeout", "21600"),
        ])
    }

    fn database(access_level: &str) -> (SqliteDatabase, String) {
        let db = migrated_database().unwrap();
        let pin = PinSettings::new("secret", 6, &[], 5)
            .allocate(&db)
            .unwrap()
            .pin;
        db.execute(
            "INSERT INTO meet_room (id, created_at, updated_at, name, slug, access_level, \
             telephony_trunk, telephony_pin) VALUES (?, 'x', 'x', 'Room', 'room', ?, '', ?)",
            &[ROOM.into(), access_level.into(), pin.as_str().into()],
        )
        .unwrap();
        (db, pin)
    }

    fn services<'a>(
        db: &'a SqliteDatabase,
        http: &'a ScriptedHttp,
        variables: &'a StaticVariables,
    ) -> Services<'a> {
        Services {
            db,
            http,
            clock: &SystemClock,
            random: &OsRandom,
            variables,
        }
    }

    fn path(request: &crate::ports::OutboundRequest) -> &str {
        request.url.rsplit("/twirp/").next().unwrap()
    }

    #[test]
    fn room_started_creates_the_rule_only_when_absent() {
        let (db, pin) = database("public");
        let vars = variables(true);
        let http = ScriptedHttp::default();
        http.answer(200, "application/json", r#"{"items": []}"#);
        http.answer(
            200,
            "application/json",
            r#"{"sipDispatchRuleId": "SDR_1", "name": "x"}"#,
        );
        on_room_started(&services(&db, &http, &vars), ROOM).unwrap();
        let sent = http.sent();
        assert_eq!(path(&sent[0]), "livekit.SIP/ListSIPDispatchRule");
        assert_eq!(path(&sent[1]), "livekit.SIP/CreateSIPDispatchRule");
        let body = String::from_utf8(sent[1].body.clone()).unwrap();
        assert!(body.contains(&format!("SIP_{ROOM}")), "{body}");
        assert!(body.contains(&pin), "{body}");

        // Already there: listed, not created again.
        let http = ScriptedHttp::default();
        http.answer(
            200,
            "application/json",
            &format!(r#"{{"items": [{{"sipDispatchRuleId": "SDR_1", "name": "SIP_{ROOM}"}}]}}"#),
        );
        on_room_started(&services(&db, &http, &vars), ROOM).unwrap();
        assert_eq!(http.sent().len(), 1);

        // LiveKit unreachable: an error, so that the delivery is retried.
        let http = ScriptedHttp::default();
        assert!(on_room_started(&services(&db, &http, &vars), ROOM).is_err());

        // Telephony disabled: no call at all.
        let off = variables(false);
        let http = ScriptedHttp::default();
        on_room_started(&services(&db, &http, &off), ROOM).unwrap();
        assert!(http.sent().is_empty());
    }

    #[test]
    fn room_finished_deletes_the_rule() {
        let (db, _) = database("public");
        let vars = variables(true);
        let http = ScriptedHttp::default();
        http.answer(
            200,
            "application/json",
            &format!(
                r#"{{"items": [{{"sipDispatchRuleId": "SDR_other", "name": "SIP_other"}},
                               {{"sipDispatchRuleId": "SDR_1", "name": "SIP_{ROOM}"}}]}}"#
            ),
        );
        http.answer(200, "application/json", r#"{"sipDispatchRuleId": "SDR_1"}"#);
        on_room_finished(&services(&db, &http, &vars), ROOM).unwrap();
        let sent = http.sent();
        assert_eq!(sent.len(), 2);
        assert_eq!(path(&sent[1]), "livekit.SIP/DeleteSIPDispatchRule");
        assert!(String::from_utf8(sent[1].body.clone())
            .unwrap()
            .contains("SDR_1"));
    }

    #[test]
    fn sip_participants_of_lobby_rooms_are_held_then_admitted_or_removed() {
        let (db, _) = database("restricted");
        let vars = variables(true);
        let participant = ParticipantInfo {
            identity: "sip_+15551234".into(),
            name: "+15551234".into(),
            kind: ParticipantKind::Sip,
            ..ParticipantInfo::default()
        };
        let http = ScriptedHttp::default();
        http.answer(200, "application/json", r#"{"identity": "sip_+15551234"}"#);
        on_participant_joined(&services(&db, &http, &vars), ROOM, &participant).unwrap();
        let sent = http.sent();
        assert_eq!(path(&sent[0]), "livekit.RoomService/UpdateParticipant");
        let body: serde_json::Value = serde_json::from_slice(&sent[0].body).unwrap();
        assert_eq!(body["permission"]["can_publish"], false);
        assert_eq!(body["permission"]["can_subscribe"], false);

        // In the lobby under a participant id, name masked.
        let result = db
            .execute(
                "SELECT participant_id, username, status FROM meet_lobby_entry WHERE room_id = ?",
                &[ROOM.into()],
            )
            .unwrap();
        assert_eq!(result.rows.len(), 1);
        let participant_id = result.rows[0][0].as_str().unwrap().to_string();
        assert_eq!(result.rows[0][1].as_str(), Some("Phone ••• 1234"));
        assert_eq!(result.rows[0][2].as_str(), Some("waiting"));
        assert_eq!(participant_id.len(), 32);

        let http = ScriptedHttp::default();
        http.answer(200, "application/json", r#"{"identity": "sip_+15551234"}"#);
        on_entry_decision(&services(&db, &http, &vars), ROOM, &participant_id, true).unwrap();
        let body: serde_json::Value = serde_json::from_slice(&http.sent()[0].body).unwrap();
        assert_eq!(body["permission"]["can_publish"], true);

        let http = ScriptedHttp::default();
        http.answer(200, "application/json", "{}");
        on_entry_decision(&services(&db, &http, &vars), ROOM, &participant_id, false).unwrap();
        assert_eq!(
            path(&http.sent()[0]),
            "livekit.RoomService/RemoveParticipant"
        );

        // A web guest's decision calls nothing.
        let http = ScriptedHttp::default();
        on_entry_decision(&services(&db, &http, &vars), ROOM, &"a".repeat(32), true).unwrap();
        assert!(http.sent().is_empty());

        // Web participants and public rooms are left alone.
        let web = ParticipantInfo {
            kind: ParticipantKind::Standard,
            ..participant.clone()
        };
        let http = ScriptedHttp::default();
        on_participant_joined(&services(&db, &http, &vars), ROOM, &web).unwrap();
        assert!(http.sent().is_empty());
    }
}
