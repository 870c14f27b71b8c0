//! Telephony over HTTP (issue 11): PINs allocated across many rooms and
//! trunks, the frontend config, the gateways' lookup for each access level
//! with its phone lobby, the lockout and its expiry, the machine token.

use std::collections::{BTreeMap, HashSet};

use reqwest::blocking::Client;
use reqwest::Method;
use serde_json::{json, Value};

use crate::rooms::{rooms_app, Person, LIVEKIT_KEY, LIVEKIT_SECRET};
use meet_e2e::TestApp;

const GATEWAY_TOKEN: &str = "gateway-token-for-tests";
const LOOKUP: &str = "/api/v1.0/telephony/lookup/";

fn telephony_app(extra: &[(&str, &str)]) -> (meet_e2e::oidc_provider::OidcProvider, TestApp) {
    let mut variables = vec![
        ("room_telephony_enabled", "true"),
        ("room_telephony_pin_secret", "a-pin-secret"),
        ("room_telephony_pin_length", "6"),
        ("room_telephony_api_token", GATEWAY_TOKEN),
    ];
    variables.extend_from_slice(extra);
    rooms_app(&variables)
}

fn lookup(app: &TestApp, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut request = Client::new().post(app.url(LOOKUP)).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().unwrap();
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

/// The name and room LiveKit's own SDK reads from a token.
fn sdk_claims(token: &str) -> Value {
    let python = meet_e2e::repo_root().join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing (scripts/test creates it)",
        python.display()
    );
    let script = r#"
import json, sys
from livekit import api
claims = api.TokenVerifier(sys.argv[1], sys.argv[2]).verify(sys.argv[3])
print(json.dumps({"identity": claims.identity, "name": claims.name, "room": claims.video.room,
                  "room_join": claims.video.room_join}))
"#;
    let output = std::process::Command::new(python)
        .args(["-c", script, LIVEKIT_KEY, LIVEKIT_SECRET, token])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn pins_are_distinct_spread_over_trunks_and_shown_to_members_only() {
    let (provider, app) = telephony_app(&[("room_telephony_trunks", "trunk-a,trunk-b")]);
    let owner = Person::new(&provider, &app, "owner");
    let mut per_trunk = BTreeMap::<String, HashSet<String>>::new();
    for index in 0..40 {
        let room = owner.create_room(&app, &format!("room {index}"), "restricted");
        let pin = room["pin_code"]
            .as_str()
            .expect("the owner sees the PIN")
            .to_string();
        assert_eq!(pin.len(), 6);
        assert!(pin.bytes().all(|b| b.is_ascii_digit()));
        let trunk = room["pin_trunk"]
            .as_str()
            .expect("several trunks: the trunk too");
        assert!(
            per_trunk.entry(trunk.to_string()).or_default().insert(pin),
            "duplicate PIN"
        );
    }
    let counts: Vec<usize> = per_trunk.values().map(HashSet::len).collect();
    assert_eq!(per_trunk.keys().collect::<Vec<_>>(), ["trunk-a", "trunk-b"]);
    assert_eq!(counts, vec![20, 20]);
    // The caller's session, the counter, then the room: no retry.
    assert_eq!(app.sql_count("POST", "/api/v1.0/rooms/"), 3);
    assert!(!app.logs().contains("taken by an older room"));

    // A stranger waiting at the lobby of a restricted room sees no PIN.
    let stranger = Person::new(&provider, &app, "stranger");
    let room = owner.create_room(&app, "private", "restricted");
    let seen: Value = stranger
        .request(
            &app,
            Method::GET,
            &format!("/api/v1.0/rooms/{}/", room["id"].as_str().unwrap()),
        )
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(seen.get("livekit").is_none());
    assert!(seen.get("pin_code").is_none(), "{seen}");
}

#[test]
fn a_pin_of_an_older_room_makes_the_allocator_take_the_next_counter() {
    let (provider, app) = telephony_app(&[]);
    let owner = Person::new(&provider, &app, "owner");
    let first = owner.create_room(&app, "first", "public");
    let first_pin = first["pin_code"].as_str().unwrap().to_string();
    // Pretend the first PIN came from the old random draws and the counter
    // is back at 0: the next room collides once, then takes counter 1.
    app.db()
        .execute("UPDATE meet_pin_counter SET next = 0", [])
        .unwrap();
    let second = owner.create_room(&app, "second", "public");
    let second_pin = second["pin_code"].as_str().unwrap();
    assert_ne!(second_pin, first_pin);
    assert!(
        app.logs().contains("taken by an older room"),
        "{}",
        app.logs()
    );
}

#[test]
fn config_reports_telephony() {
    let (_provider, app) = telephony_app(&[("room_telephony_phone_number", "+33 1 23 45 67 89")]);
    let config: Value = app.get("/api/v1.0/config/").json().unwrap();
    assert_eq!(
        config["telephony"],
        json!({"enabled": true, "phone_number": "+33 1 23 45 67 89", "default_country": "US"})
    );
}

#[test]
fn gateways_need_the_machine_token() {
    let (provider, app) = telephony_app(&[]);
    let owner = Person::new(&provider, &app, "owner");
    let room = owner.create_room(&app, "public room", "public");
    let pin = room["pin_code"].as_str().unwrap();
    let body = json!({"pin": pin, "caller": "+15551234"});
    let (status, answer) = lookup(&app, None, body.clone());
    assert_eq!(
        (status, answer),
        (
            401,
            json!({"detail": "Authentication credentials were not provided."})
        )
    );
    let (status, answer) = lookup(&app, Some("not-the-token"), body.clone());
    assert_eq!((status, answer), (401, json!({"detail": "Invalid token."})));
    let (status, _) = lookup(&app, Some(GATEWAY_TOKEN), body);
    assert_eq!(status, 200);

    // No token configured: every lookup is refused.
    let (provider, app) = telephony_app(&[("room_telephony_api_token", "")]);
    let owner = Person::new(&provider, &app, "owner");
    let room = owner.create_room(&app, "public room", "public");
    let (status, _) = lookup(&app, Some(""), json!({"pin": room["pin_code"]}));
    assert_eq!(status, 401);
    let (status, _) = lookup(&app, Some(GATEWAY_TOKEN), json!({"pin": room["pin_code"]}));
    assert_eq!(status, 401);
}

#[test]
fn public_rooms_accept_callers_with_a_token_named_after_the_masked_number() {
    let (provider, app) = telephony_app(&[]);
    let owner = Person::new(&provider, &app, "owner");
    let room = owner.create_room(&app, "public room", "public");
    let (status, answer) = lookup(
        &app,
        Some(GATEWAY_TOKEN),
        json!({"pin": room["pin_code"], "caller": "+33 6 12 34 56 78"}),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], "accepted");
    assert_eq!(
        answer["room"],
        json!({"id": room["id"], "slug": "public-room", "name": "public room", "access_level": "public"})
    );
    assert_eq!(answer["livekit"]["room"], room["id"]);
    let claims = sdk_claims(answer["livekit"]["token"].as_str().unwrap());
    assert_eq!(claims["name"], "Phone ••• 5678");
    assert_eq!(claims["room"], room["id"]);
    assert!(claims["identity"].as_str().unwrap().starts_with("phone-"));
    assert!(!answer.to_string().contains("12 34 56"));
    // A found room costs one statement.
    assert_eq!(app.sql_count("POST", LOOKUP), 1);

    let (status, answer) = lookup(&app, Some(GATEWAY_TOKEN), json!({"pin": "000000x"}));
    assert_eq!(
        (status, answer),
        (404, json!({"detail": "No room with this PIN."}))
    );
    let (status, answer) = lookup(&app, Some(GATEWAY_TOKEN), json!({"caller": "1"}));
    assert_eq!(
        (status, answer),
        (400, json!({"pin": ["This field is required."]}))
    );
}

#[test]
fn trusted_and_restricted_rooms_put_callers_in_the_lobby() {
    let (provider, app) = telephony_app(&[("lobby_waiting_timeout", "30")]);
    let owner = Person::new(&provider, &app, "owner");
    for level in ["trusted", "restricted"] {
        let room = owner.create_room(&app, &format!("{level} room"), level);
        let body = json!({"pin": room["pin_code"], "caller": "+15550001234"});
        let (status, waiting) = lookup(&app, Some(GATEWAY_TOKEN), body.clone());
        assert_eq!(status, 200, "{waiting}");
        assert_eq!(waiting["status"], "waiting");
        assert!(waiting.get("livekit").is_none());
        assert_eq!(waiting["room"]["access_level"], level);
        let participant_id = waiting["participant_id"].as_str().unwrap().to_string();
        assert_eq!(participant_id.len(), 32);

        // Polling keeps the same participant waiting.
        let mut poll = body.clone();
        poll["participant_id"] = json!(participant_id);
        let (_, again) = lookup(&app, Some(GATEWAY_TOKEN), poll.clone());
        assert_eq!(again["status"], "waiting");
        assert_eq!(again["participant_id"], participant_id.as_str());

        // The lobby entry is the one admins list and decide on.
        let room_id = room["id"].as_str().unwrap().to_string();
        let (username, status): (String, String) = app
            .db()
            .query_row(
                "SELECT username, status FROM meet_lobby_entry \
                 WHERE room_id = ? AND participant_id = ?",
                [&room_id, &participant_id],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .unwrap();
        assert_eq!(
            (username.as_str(), status.as_str()),
            ("Phone ••• 1234", "waiting")
        );

        // An admin lets them in (as `enter/` does): the next poll carries the token.
        let decide = |status: &str| {
            app.db()
                .execute(
                    "UPDATE meet_lobby_entry SET status = ?1 \
                     WHERE room_id = ?2 AND participant_id = ?3",
                    [status, &room_id, &participant_id],
                )
                .unwrap()
        };
        assert_eq!(decide("accepted"), 1);
        let (_, admitted) = lookup(&app, Some(GATEWAY_TOKEN), poll.clone());
        assert_eq!(admitted["status"], "accepted", "{admitted}");
        let claims = sdk_claims(admitted["livekit"]["token"].as_str().unwrap());
        assert_eq!(claims["name"], "Phone ••• 1234");
        assert_eq!(claims["identity"], format!("phone-{participant_id}"));

        // Or refuses: the gateway hears `denied`.
        assert_eq!(decide("denied"), 1);
        let (_, refused) = lookup(&app, Some(GATEWAY_TOKEN), poll);
        assert_eq!(refused["status"], "denied");
        assert!(refused.get("livekit").is_none());
    }
}

#[test]
fn five_failed_lookups_lock_the_caller_out_until_the_window_ends() {
    let (provider, app) = telephony_app(&[]);
    let owner = Person::new(&provider, &app, "owner");
    let room = owner.create_room(&app, "public room", "public");
    let pin = room["pin_code"].as_str().unwrap().to_string();
    let wrong = if pin == "000000" { "000001" } else { "000000" };
    for _ in 0..5 {
        let (status, _) = lookup(
            &app,
            Some(GATEWAY_TOKEN),
            json!({"pin": wrong, "caller": "+1 555 0100"}),
        );
        assert_eq!(status, 404);
    }
    assert_eq!(app.sql_count("POST", LOOKUP), 2);
    // Locked out, even with the right PIN.
    let (status, answer) = lookup(
        &app,
        Some(GATEWAY_TOKEN),
        json!({"pin": pin, "caller": "+1 555 0100"}),
    );
    assert_eq!(status, 429, "{answer}");
    assert!(answer["detail"]
        .as_str()
        .unwrap()
        .starts_with("Request was throttled."));
    // Another number is not.
    let (status, _) = lookup(
        &app,
        Some(GATEWAY_TOKEN),
        json!({"pin": pin, "caller": "+1 555 0199"}),
    );
    assert_eq!(status, 200);
    // The window passes (moved into the past here): the caller may try again.
    app.db()
        .execute(
            "UPDATE meet_cache SET expires_at = '2000-01-01T00:00:00.000000Z' \
             WHERE key = 'telephony_failures_caller_15550100'",
            [],
        )
        .unwrap();
    let (status, _) = lookup(
        &app,
        Some(GATEWAY_TOKEN),
        json!({"pin": pin, "caller": "+1 555 0100"}),
    );
    assert_eq!(status, 200);

    // Withheld numbers count per gateway address.
    for _ in 0..5 {
        let (status, _) = lookup(&app, Some(GATEWAY_TOKEN), json!({"pin": wrong}));
        assert_eq!(status, 404);
    }
    let (status, _) = lookup(&app, Some(GATEWAY_TOKEN), json!({"pin": pin}));
    assert_eq!(status, 429);
    // The trunk's failures are counted too.
    let trunk_failures: i64 = app
        .db()
        .query_row(
            "SELECT value FROM meet_cache WHERE key = 'telephony_failures_trunk_'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(trunk_failures, 10);
}
