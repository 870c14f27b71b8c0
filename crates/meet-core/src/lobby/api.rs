//! The lobby endpoints (api.md §4, lobby.md §4–8): `request-entry/`,
//! `waiting-participants/`, `enter/`.

use serde_json::{json, Map, Value};

use meet_livekit::color_for_identity;

use crate::auth::store::CallerQuery;
use crate::auth::{authenticate, csrf_token_to_match, Caller, Credential};
use crate::body::parse_object;
use crate::cache::count_request;
use crate::error::{ApiError, FieldErrors};
use crate::http::{ApiRequest, ApiResponse, Method};
use crate::ids::parse_uuid_like;
use crate::livekit::{describe, with_server_api, LiveKit};
use crate::lobby::store::{self, Entry, Poll, PollRate, Waiting};
use crate::ports::Services;
use crate::roles::AccessLevel;
use crate::rooms::store::{self as room_store, RoomKey, RoomView};
use crate::routing::method_not_allowed;
use crate::throttle::{client_address, Rate};

const PRIVILEGES_MESSAGE: &str = "You must have privileges on room to perform this action.";

/// The lobby participant id: the cookie's value verbatim, else a new UUID
/// v4 in 32-hex form (lobby.md §2).
fn participant_id(lobby_cookie: Option<&str>, services: &Services) -> String {
    lobby_cookie
        .map(str::to_string)
        .unwrap_or_else(|| services.new_uuid().replace('-', ""))
}

/// `request_entry_throttle_rates` for anonymous callers, keyed on the lobby
/// cookie when the request has one (guests behind one address do not share
/// a bucket), else on the client address.
fn throttle(
    request: &ApiRequest,
    services: &Services,
    lobby_cookie: Option<&str>,
) -> Result<(), ApiError> {
    let settings = services.settings();
    let variable = "request_entry_throttle_rates";
    let rate = Rate::parse(variable, &settings.string(variable)?)?;
    let key = match lobby_cookie {
        Some(participant) => format!("throttle_request_entry_participant_{participant}"),
        None => format!(
            "throttle_request_entry_{}",
            client_address(request, settings.u64("num_proxies")?)
        ),
    };
    let now = services.clock.now();
    let (count, window_ends) = count_request(services.db, &key, rate.period_seconds, now)?;
    if count > rate.requests {
        let wait = (window_ends - now).whole_seconds().max(1);
        return Err(ApiError::Throttled(u64::try_from(wait).unwrap_or(1)));
    }
    Ok(())
}

/// A required, non-blank string field, trimmed (DRF `CharField`).
fn required_text(body: &Map<String, Value>, field: &str) -> Result<String, ApiError> {
    let invalid = |message: &str| ApiError::Validation(FieldErrors::single(field, message));
    let text = match body.get(field) {
        None => return Err(invalid("This field is required.")),
        Some(Value::Null) => return Err(invalid("This field may not be null.")),
        Some(Value::String(text)) => text.trim().to_string(),
        Some(Value::Number(number)) => number.to_string(),
        Some(_) => return Err(invalid("Not a valid string.")),
    };
    if text.is_empty() {
        return Err(invalid("This field may not be blank."));
    }
    Ok(text)
}

fn entry_json(entry: &Entry, status: &str, livekit: Value) -> Value {
    json!({
        "id": entry.participant_id,
        "username": entry.username,
        "status": status,
        "color": entry.color,
        "livekit": livekit,
    })
}

/// `POST rooms/{id}/request-entry/` (lobby.md §4). One statement while the
/// caller waits, two for the poll that creates the entry (see
/// [`store::poll`]): a logged-in caller is resolved by the lobby statements
/// themselves, an anonymous guest with its lobby cookie is throttled by its
/// entry in them. A guest without a cookie counts its address's throttle
/// first, then creates its entry (two); a poll no entry counts (the lobby
/// does not apply, or no such room) counts the cookie's throttle after it.
pub fn request_entry(
    request: &ApiRequest,
    services: &Services,
    path_value: &str,
) -> Result<ApiResponse, ApiError> {
    let credential = Credential::of(request)?;
    let settings = services.settings();
    let cookie_name = settings.string("lobby_cookie_name")?;
    let lobby_cookie = crate::auth::session::request_cookie(request, &cookie_name);
    let lobby_cookie = lobby_cookie.as_deref();
    let now = services.clock.now();
    let folded_caller = match &credential {
        Credential::Anonymous => None,
        Credential::Bearer { .. } => Some(CallerQuery::of(&credential, None, now)),
        // The CSRF header must match the session's token; if a check that
        // needs no database fails, the full path gives the exact error.
        Credential::Session { .. } => csrf_token_to_match(request, services)?
            .map(|csrf| CallerQuery::of(&credential, Some(&csrf), now)),
    };
    // The full path, in DRF's order: authentication, throttle, method.
    let mut known_caller = None;
    if folded_caller.is_none() || request.method != Method::POST {
        known_caller = Some(authenticate_and_throttle(request, services, lobby_cookie)?);
        if request.method != Method::POST {
            return Err(method_not_allowed(request));
        }
    }
    let username = required_text(&parse_object(request)?, "username")?;
    let participant_id = participant_id(lobby_cookie, services);
    let color = color_for_identity(&participant_id);
    let request_token = services.new_uuid();
    let waiting = Waiting {
        participant_id: &participant_id,
        username: &username,
        color: &color,
        ttl_seconds: settings.u64("lobby_waiting_timeout")?,
        request_token: &request_token,
        rate: None,
        new_participant: lobby_cookie.is_none(),
    };
    let key = RoomKey::from_path(path_value);
    let mut counted_by_entry = false;
    let folded = match &folded_caller {
        Some(query) => store::poll(services.db, query, true, &key, &waiting, now)?
            .and_then(|(record, poll)| Some((credential.resolved(record)?, poll))),
        None => None,
    };
    let (caller, poll) = match folded {
        Some(folded) => folded,
        // An expired session or a bearer token the provider must check:
        // the caller is resolved on its own, then the poll runs for them.
        None => {
            let caller = match known_caller {
                Some(caller) => caller,
                None => authenticate_and_throttle(request, services, lobby_cookie)?,
            };
            let query = match caller.user() {
                Some(user) => CallerQuery::user(&user.id),
                None => CallerQuery::of(&Credential::Anonymous, None, now),
            };
            let waiting = Waiting {
                rate: entry_rate(services, &caller, lobby_cookie)?,
                ..waiting
            };
            counted_by_entry = waiting.rate.is_some();
            let Some((_, poll)) = store::poll(services.db, &query, false, &key, &waiting, now)?
            else {
                return Err(ApiError::internal("a lobby poll without required caller"));
            };
            (caller, poll)
        }
    };
    let body = match poll {
        Poll::NoRoom => {
            if counted_by_entry {
                throttle(request, services, lobby_cookie)?;
            }
            return Err(ApiError::NotFound("Room"));
        }
        Poll::Throttled { retry_after_ms } => {
            let seconds = u64::try_from((retry_after_ms + 999) / 1000).unwrap_or(1);
            return Err(ApiError::Throttled(seconds.max(1)));
        }
        Poll::Bypass { room_id, entry } => {
            // No entry counted this anonymous poll: the cookie's own counter.
            if counted_by_entry {
                throttle(request, services, lobby_cookie)?;
            }
            let entry = entry.unwrap_or_else(|| Entry {
                room_id: room_id.clone(),
                participant_id: participant_id.clone(),
                status: "accepted".into(),
                username: username.clone(),
                color: color.clone(),
            });
            let livekit = token(services, &caller, &room_id, &username, &entry.color)?;
            entry_json(&entry, "accepted", livekit)
        }
        Poll::Lobby { entry, created } => {
            if created {
                announce_new_entry(services, &entry, &request_token)?;
            }
            let livekit = if entry.status == "accepted" {
                token(services, &caller, &entry.room_id, &username, &entry.color)?
            } else {
                Value::Null
            };
            entry_json(&entry, &entry.status, livekit)
        }
    };
    let cookie = crate::auth::session::set_cookie(&cookie_name, &participant_id, None, true, true);
    Ok(ApiResponse::json(200, &body).with_header("set-cookie", &cookie))
}

/// The caller by the full path. An anonymous caller without a lobby
/// cookie is throttled here, on its address; one with a cookie is counted
/// by its lobby entry in the poll's own statement ([`entry_rate`]).
fn authenticate_and_throttle(
    request: &ApiRequest,
    services: &Services,
    lobby_cookie: Option<&str>,
) -> Result<Caller, ApiError> {
    let caller = authenticate(request, services)?;
    if caller.user().is_none() && lobby_cookie.is_none() {
        throttle(request, services, None)?;
    }
    Ok(caller)
}

/// `request_entry_throttle_rates` as the poll statement enforces it on the
/// entry of an anonymous caller with a lobby cookie; `None` otherwise.
fn entry_rate(
    services: &Services,
    caller: &Caller,
    lobby_cookie: Option<&str>,
) -> Result<Option<PollRate>, ApiError> {
    if caller.user().is_some() || lobby_cookie.is_none() {
        return Ok(None);
    }
    let variable = "request_entry_throttle_rates";
    let rate = Rate::parse(variable, &services.settings().string(variable)?)?;
    Ok(Some(PollRate {
        requests: rate.requests,
        period_ms: i64::try_from(rate.period_seconds.saturating_mul(1000)).unwrap_or(i64::MAX),
    }))
}

fn token(
    services: &Services,
    caller: &Caller,
    room_id: &str,
    username: &str,
    color: &str,
) -> Result<Value, ApiError> {
    LiveKit::load(&services.settings())?.participant(
        services,
        caller,
        room_id,
        Some(username),
        Some(color),
    )
}

/// Tells the room's admins about an entry this request created; if that
/// fails, the entry is taken back so that the next poll creates it (and
/// notifies) again.
fn announce_new_entry(
    services: &Services,
    entry: &Entry,
    request_token: &str,
) -> Result<(), ApiError> {
    if let Err(error) = notify_waiting(services, &entry.room_id) {
        store::forget_created(
            services.db,
            &entry.room_id,
            &entry.participant_id,
            request_token,
        )?;
        return Err(error);
    }
    Ok(())
}

/// [`notify_waiting`] for callers who wait without polling a browser (phone
/// and SIP): a failure is logged, not answered, since a gateway that got a
/// 500 would hang up and the admins see the waiter in
/// `waiting-participants/` anyway. `who` names the waiter in the log.
pub(crate) fn notify_waiting_best_effort(services: &Services, room_id: &str, who: &str) {
    if let Err(error) = notify_waiting(services, room_id) {
        eprintln!("lobby: the notification of {who} failed: {error}");
    }
}

/// Tells the room's participants someone waits (lobby.md §5): only when
/// LiveKit has the room running; a Twirp error is ignored, a transport
/// error is the request's 500.
fn notify_waiting(services: &Services, room_id: &str) -> Result<(), ApiError> {
    let notification_type = services.settings().string("lobby_notification_type")?;
    let payload = json!({"type": notification_type}).to_string();
    let outcome = with_server_api(services, |api| {
        if api.room_is_running(room_id)? {
            api.send_data(room_id, payload.as_bytes())?;
        }
        Ok::<(), meet_livekit::ApiError>(())
    })?;
    match outcome {
        Ok(()) => Ok(()),
        Err(error) if error.twirp().is_some() => {
            eprintln!("lobby notification ignored: {}", describe(&error));
            Ok(())
        }
        Err(error) => Err(ApiError::internal(describe(&error))),
    }
}

/// The room and the caller's role, for the privileged endpoints: 401 for
/// anonymous callers, 404, then 403.
fn privileged_room(
    services: &Services,
    caller: &Caller,
    path_value: &str,
) -> Result<RoomView, ApiError> {
    let user = caller.require_user()?;
    let view = room_store::find(services.db, &RoomKey::from_path(path_value), Some(&user.id))?
        .ok_or(ApiError::NotFound("Room"))?;
    if !view.role.is_some_and(crate::roles::Role::is_privileged) {
        return Err(ApiError::PermissionDenied(PRIVILEGES_MESSAGE.into()));
    }
    Ok(view)
}

/// `GET rooms/{id}/waiting-participants/` (lobby.md §6): the caller, the
/// room and its waiting participants in one statement.
pub fn waiting_participants(
    request: &ApiRequest,
    services: &Services,
    path_value: &str,
) -> Result<ApiResponse, ApiError> {
    let credential = Credential::of(request)?;
    let key = RoomKey::from_path(path_value);
    let now = services.clock.now();
    let read = |caller: &CallerQuery| store::waiting_with_caller(services.db, caller, &key, now);
    let (record, mut view) = read(&CallerQuery::of(&credential, None, now))?;
    let caller = match credential.resolved(record) {
        Some(caller) => caller,
        // A bearer token not in the cache: the provider checks it, then the
        // room is read for the user it names.
        None => {
            let caller = authenticate(request, services)?;
            let user = caller.require_user()?;
            view = read(&CallerQuery::user(&user.id))?.1;
            caller
        }
    };
    caller.require_user()?;
    if !matches!(request.method, Method::GET | Method::HEAD) {
        return Err(method_not_allowed(request));
    }
    let view = view.ok_or(ApiError::NotFound("Room"))?;
    if !view.role.is_some_and(crate::roles::Role::is_privileged) {
        return Err(ApiError::PermissionDenied(PRIVILEGES_MESSAGE.into()));
    }
    let participants: Vec<Value> = view
        .waiting
        .iter()
        .map(|entry| {
            json!({
                "id": entry.participant_id,
                "username": entry.username,
                "status": "waiting",
                "color": entry.color,
            })
        })
        .collect();
    Ok(ApiResponse::json(
        200,
        &json!({ "participants": participants }),
    ))
}

/// DRF `BooleanField`'s accepted spellings.
fn boolean(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(flag) => Some(*flag),
        Value::Number(number) => match number.as_i64() {
            Some(1) => Some(true),
            Some(0) => Some(false),
            _ => None,
        },
        Value::String(text) => match text.as_str() {
            "true" | "True" | "TRUE" | "on" | "On" | "ON" | "yes" | "Yes" | "YES" | "y" | "Y"
            | "t" | "T" | "1" => Some(true),
            "false" | "False" | "FALSE" | "off" | "Off" | "OFF" | "no" | "No" | "NO" | "n"
            | "N" | "f" | "F" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// `POST rooms/{id}/enter/` (lobby.md §7).
pub fn enter(
    request: &ApiRequest,
    services: &Services,
    path_value: &str,
) -> Result<ApiResponse, ApiError> {
    let caller = authenticate(request, services)?;
    caller.require_user()?;
    if request.method != Method::POST {
        return Err(method_not_allowed(request));
    }
    let body = parse_object(request)?;
    let mut errors = FieldErrors::new();
    let participant_id = match body.get("participant_id") {
        None => {
            errors.add("participant_id", "This field is required.");
            None
        }
        Some(Value::String(text)) => match parse_uuid_like(text) {
            Some(id) => Some(id.replace('-', "")),
            None => {
                errors.add("participant_id", "Invalid UUID hex format");
                None
            }
        },
        Some(Value::Null) => {
            errors.add("participant_id", "This field may not be null.");
            None
        }
        Some(_) => {
            errors.add("participant_id", "Invalid UUID hex format");
            None
        }
    };
    let allow_entry = match body.get("allow_entry") {
        None => {
            errors.add("allow_entry", "This field is required.");
            None
        }
        Some(Value::Null) => {
            errors.add("allow_entry", "This field may not be null.");
            None
        }
        Some(value) => {
            let parsed = boolean(value);
            if parsed.is_none() {
                errors.add("allow_entry", "Must be a valid boolean.");
            }
            parsed
        }
    };
    errors.into_result()?;
    let (Some(participant_id), Some(allow_entry)) = (participant_id, allow_entry) else {
        return Err(ApiError::internal("validated fields missing"));
    };
    let view = privileged_room(services, &caller, path_value)?;
    if view.room.access_level == AccessLevel::Public {
        return Err(ApiError::Custom {
            status: 404,
            body: json!({"message": "Room has no lobby system."}),
        });
    }
    let settings = services.settings();
    let (status, ttl) = if allow_entry {
        ("accepted", settings.u64("lobby_accepted_timeout")?)
    } else {
        ("denied", settings.u64("lobby_denied_timeout")?)
    };
    let updated = store::decide(
        services.db,
        &view.room.id,
        &participant_id,
        status,
        ttl,
        services.clock.now(),
    )?;
    if !updated {
        return Err(ApiError::Custom {
            status: 404,
            body: json!({"message": "Participant not found."}),
        });
    }
    // A held SIP participant gets its permissions back, or is removed.
    crate::telephony::sip::on_entry_decision(
        services,
        &view.room.id,
        &participant_id,
        allow_entry,
    )?;
    Ok(ApiResponse::json(
        200,
        &json!({"message": "Participant was updated."}),
    ))
}
