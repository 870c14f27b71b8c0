//! `POST /api/v1.0/telephony/lookup/`: a SIP gateway asks which room a PIN
//! opens (issue 11). Machine bearer token `room_telephony_api_token`;
//! brute-force lockout per calling number; restricted and trusted rooms put
//! the caller in the lobby, polled with `participant_id`.

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use meet_livekit::{participant_token, LiveKitObject, ParticipantGrant};

use crate::body::parse_object;
use crate::error::{ApiError, FieldErrors};
use crate::http::{ApiRequest, ApiResponse, Method};
use crate::livekit::LiveKit;
use crate::ports::Services;
use crate::roles::AccessLevel;
use crate::routing::method_not_allowed;
use crate::telephony::phone_lobby::{self, PhoneEntry};
use crate::telephony::pins::PinSettings;
use crate::telephony::store::{self, PhoneRoom};
use crate::throttle::client_address;

/// Failed lookups of one caller before it is locked out for the rest of
/// the window.
pub const LOCKOUT_FAILURES: i64 = 5;
/// The window of failed lookups, in seconds (10 minutes).
pub const LOCKOUT_WINDOW_SECONDS: u64 = 600;
/// Failed lookups on one trunk within the window that are logged as a
/// brute-force burst (then every further multiple of it).
pub const TRUNK_BURST_WARNING: i64 = 50;

/// Only the last digits of a calling number are ever shown.
pub fn masked_number(caller: Option<&str>) -> String {
    let digits: Vec<char> = caller
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    if digits.len() < 4 {
        return "Phone".to_string();
    }
    let last: String = digits[digits.len() - 4..].iter().collect();
    format!("Phone \u{2022}\u{2022}\u{2022} {last}")
}

/// The machine token of the gateways, compared in constant time (over
/// digests, so that the length leaks nothing either).
fn check_token(request: &ApiRequest, services: &Services) -> Result<(), ApiError> {
    let Some(expected) = services
        .settings()
        .optional_string("room_telephony_api_token")?
    else {
        eprintln!("telephony: lookup refused: `room_telephony_api_token` is not set");
        return Err(ApiError::AuthenticationFailed("Invalid token.".into()));
    };
    let Some(header) = request.header("authorization") else {
        return Err(ApiError::NotAuthenticated);
    };
    let Some(given) = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
    else {
        return Err(ApiError::NotAuthenticated);
    };
    let given = Sha256::digest(given.trim().as_bytes());
    let expected = Sha256::digest(expected.trim().as_bytes());
    if bool::from(given.ct_eq(&expected)) {
        Ok(())
    } else {
        Err(ApiError::AuthenticationFailed("Invalid token.".into()))
    }
}

/// The gateway's question.
struct Lookup {
    pin: String,
    trunk: String,
    caller: Option<String>,
    participant_id: Option<String>,
}

fn optional_string(
    body: &Map<String, Value>,
    field: &str,
    errors: &mut FieldErrors,
) -> Option<String> {
    match body.get(field) {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) if text.trim().is_empty() => None,
        Some(Value::String(text)) => Some(text.trim().to_string()),
        Some(_) => {
            errors.add(field, "Not a valid string.");
            None
        }
    }
}

fn parse_lookup(body: &Map<String, Value>, pins: &PinSettings) -> Result<Lookup, ApiError> {
    let mut errors = FieldErrors::new();
    let pin_given = matches!(body.get("pin"), Some(value) if !value.is_null());
    let pin = optional_string(body, "pin", &mut errors);
    if pin.is_none() && !pin_given {
        errors.add("pin", "This field is required.");
    } else if pin.is_none() && body.get("pin").is_some_and(Value::is_string) {
        errors.add("pin", "This field may not be blank.");
    }
    let trunk = optional_string(body, "trunk", &mut errors);
    let trunk = match trunk {
        Some(trunk) => Some(trunk),
        None if pins.has_several_trunks() => {
            if !body
                .get("trunk")
                .is_some_and(|v| !v.is_null() && !v.is_string())
            {
                errors.add(
                    "trunk",
                    "This field is required when several trunks are configured.",
                );
            }
            None
        }
        None => pins.trunks.first().cloned(),
    };
    let caller = optional_string(body, "caller", &mut errors);
    let participant_id = optional_string(body, "participant_id", &mut errors);
    errors.into_result()?;
    Ok(Lookup {
        pin: pin.unwrap_or_default(),
        trunk: trunk.unwrap_or_default(),
        caller,
        participant_id,
    })
}

/// `{"url", "room", "token"}` for a phone caller.
fn phone_token(
    services: &Services,
    room: &PhoneRoom,
    identity: &str,
    name: &str,
    color: Option<&str>,
) -> Result<Value, ApiError> {
    let livekit = LiveKit::load(&services.settings())?;
    let grant = ParticipantGrant {
        room: room.id.clone(),
        identity: identity.to_string(),
        name: name.to_string(),
        color: color.map(str::to_string),
    };
    let token = participant_token(&livekit.credentials, &grant, services.clock.now().into())
        .map_err(ApiError::internal)?;
    Ok(LiveKitObject {
        url: livekit.url,
        room: room.id.clone(),
        token,
    }
    .to_json())
}

fn accepted(
    services: &Services,
    room: &PhoneRoom,
    identity: &str,
    name: &str,
    color: Option<&str>,
) -> Result<ApiResponse, ApiError> {
    let livekit = phone_token(services, room, identity, name, color)?;
    Ok(ApiResponse::json(
        200,
        &json!({"status": "accepted", "room": room.to_json(), "livekit": livekit}),
    ))
}

/// `/telephony/lookup/`.
pub fn lookup(request: &ApiRequest, services: &Services) -> Result<ApiResponse, ApiError> {
    // The token is the route's permission: checked before the method (api.md §1.4).
    check_token(request, services)?;
    if request.method != Method::POST {
        return Err(method_not_allowed(request));
    }
    let settings = services.settings();
    let Some(pins) = PinSettings::load(&settings)? else {
        return Err(ApiError::NotFoundDetail("Telephony is disabled.".into()));
    };
    let body = parse_object(request)?;
    let lookup = parse_lookup(&body, &pins)?;

    // Failed lookups count per calling number, or per gateway address
    // when the number is withheld.
    let caller_digits: String = lookup
        .caller
        .as_deref()
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    let failure_key = if caller_digits.is_empty() {
        let address = client_address(request, settings.u64("num_proxies")?);
        format!("telephony_failures_gateway_{address}")
    } else {
        format!("telephony_failures_caller_{caller_digits}")
    };
    let now = services.clock.now();
    let (failures, room) =
        store::find_by_pin(services.db, &failure_key, &lookup.trunk, &lookup.pin, now)?;
    if let Some(failures) = failures.filter(|f| f.count >= LOCKOUT_FAILURES) {
        let wait = (failures.window_ends - now).whole_seconds().max(1);
        return Err(ApiError::Throttled(u64::try_from(wait).unwrap_or(1)));
    }
    let Some(room) = room else {
        let trunk_key = format!("telephony_failures_trunk_{}", lookup.trunk);
        let [_, trunk] = store::count_failures(
            services.db,
            &[&failure_key, &trunk_key],
            LOCKOUT_WINDOW_SECONDS,
            now,
        )?;
        if trunk.count >= TRUNK_BURST_WARNING && trunk.count % TRUNK_BURST_WARNING == 0 {
            eprintln!(
                "warning: telephony: {} failed PIN lookups on trunk {:?} within {} s: \
                 possible brute force",
                trunk.count, lookup.trunk, LOCKOUT_WINDOW_SECONDS
            );
        }
        return Err(ApiError::NotFoundDetail("No room with this PIN.".into()));
    };

    let name = masked_number(lookup.caller.as_deref());
    if room.access_level == AccessLevel::Public {
        let identity = format!("phone-{}", services.new_uuid());
        return accepted(services, &room, &identity, &name, None);
    }

    // Trusted and restricted rooms: phone callers are never authenticated,
    // so they wait in the lobby like web guests.
    match phone_lobby::request_entry(services, &room, lookup.participant_id.as_deref(), &name)? {
        PhoneEntry::Waiting { participant_id } => Ok(ApiResponse::json(
            200,
            &json!({"status": "waiting", "participant_id": participant_id, "room": room.to_json()}),
        )),
        PhoneEntry::Accepted {
            participant_id,
            color,
        } => accepted(
            services,
            &room,
            &format!("phone-{participant_id}"),
            &name,
            Some(&color),
        ),
        PhoneEntry::Denied { participant_id } => Ok(ApiResponse::json(
            200,
            &json!({"status": "denied", "participant_id": participant_id, "room": room.to_json()}),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_masked_to_their_last_four_digits() {
        assert_eq!(masked_number(Some("+33 6 12 34 56 78")), "Phone ••• 5678");
        assert_eq!(masked_number(Some("sip:+15551234@gw")), "Phone ••• 1234");
        assert_eq!(masked_number(Some("123")), "Phone");
        assert_eq!(masked_number(None), "Phone");
    }
}
