//! The lobby over HTTP (lobby.md, api.md §4): guests wait with a cookie,
//! admins list and decide, accepted guests get a LiveKit token (checked by
//! LiveKit's SDK), the notification through the fake LiveKit, expiry,
//! throttling, every error, and statement counts.

use std::time::Duration;

use meet_e2e::livekit_server::{FakeLiveKit, Fault};
use meet_e2e::oidc_provider::OidcProvider;
use meet_e2e::TestApp;
use reqwest::blocking::{Client, Response};
use reqwest::Method;
use serde_json::{json, Value};

use crate::rooms::{rooms_app, Person, LIVEKIT_KEY, LIVEKIT_SECRET};

struct Lobby {
    livekit: FakeLiveKit,
    provider: OidcProvider,
    app: TestApp,
}

fn lobby_app(extra: &[(&str, &str)]) -> Lobby {
    let livekit = FakeLiveKit::start(LIVEKIT_KEY, LIVEKIT_SECRET);
    let url = livekit.url();
    let mut variables = vec![
        ("livekit_api_url", url.as_str()),
        ("livekit_api_origin", url.as_str()),
    ];
    variables.extend_from_slice(extra);
    let (provider, app) = rooms_app(&variables);
    Lobby {
        livekit,
        provider,
        app,
    }
}

const COOKIE: &str = "lobbyParticipantId";

/// One poll as a browser guest: with the cookie when it has one.
fn poll(app: &TestApp, room: &str, cookie: Option<&str>, username: &str) -> Response {
    let mut request = Client::new()
        .post(app.url(&format!("/api/v1.0/rooms/{room}/request-entry/")))
        .json(&json!({ "username": username }));
    if let Some(id) = cookie {
        request = request.header("cookie", format!("{COOKIE}={id}"));
    }
    request.send().unwrap()
}

fn set_cookie(response: &Response) -> String {
    response
        .headers()
        .get("set-cookie")
        .expect("a lobby cookie")
        .to_str()
        .unwrap()
        .to_string()
}

fn enter(app: &TestApp, admin: &Person, room: &str, participant: &str, allow: bool) -> Response {
    admin
        .request(app, Method::POST, &format!("/api/v1.0/rooms/{room}/enter/"))
        .json(&json!({"participant_id": participant, "allow_entry": allow}))
        .send()
        .unwrap()
}

fn waiting(app: &TestApp, admin: &Person, room: &str) -> Response {
    admin
        .request(
            app,
            Method::GET,
            &format!("/api/v1.0/rooms/{room}/waiting-participants/"),
        )
        .send()
        .unwrap()
}

fn verify_with_livekit_sdk(token: &str) -> Value {
    let python = meet_e2e::repo_root().join(".venv/bin/python");
    let script = r#"
import json, sys
from livekit import api
claims = api.TokenVerifier(sys.argv[1], sys.argv[2]).verify(sys.argv[3])
print(json.dumps({"identity": claims.identity, "name": claims.name,
                  "metadata": claims.metadata, "room": claims.video.room}))
"#;
    let output = std::process::Command::new(python)
        .args(["-c", script, LIVEKIT_KEY, LIVEKIT_SECRET, token])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "LiveKit's SDK refused the token: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn a_guest_waits_is_listed_admitted_and_gets_a_token() {
    let lobby = lobby_app(&[]);
    let app = &lobby.app;
    let owner = Person::new(&lobby.provider, app, "owner");
    let room = owner.create_room(app, "lobby flow", "restricted");
    let room_id = room["id"].as_str().unwrap();
    lobby.livekit.set_room_running(room_id, true);

    let first = poll(app, room_id, None, "  Guest  ");
    assert_eq!(first.status(), 200);
    let cookie = set_cookie(&first);
    let body: Value = first.json().unwrap();
    let participant = body["id"].as_str().unwrap().to_string();
    assert_eq!(participant.len(), 32, "{participant}");
    assert!(participant.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(body["status"], "waiting");
    assert_eq!(body["username"], "Guest");
    assert!(body["livekit"].is_null());
    assert!(body["color"].as_str().unwrap().starts_with("hsl("));
    assert!(
        cookie.starts_with(&format!("{COOKIE}={participant}")),
        "{cookie}"
    );
    for attribute in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(
        !cookie.contains("Max-Age") && !cookie.contains("Expires"),
        "{cookie}"
    );
    assert_eq!(
        app.sql_count("POST", &format!("/api/v1.0/rooms/{room_id}/request-entry/")),
        2
    );

    // Admins are told once, over the reliable channel, with no filter.
    let sent = lobby.livekit.calls_to("RoomService/SendData");
    assert_eq!(sent.len(), 1);
    assert!(sent[0].authorized);
    assert_eq!(sent[0].data().unwrap(), br#"{"type":"participantWaiting"}"#);
    assert_eq!(sent[0].body["room"], room_id);
    assert!(!sent[0].chunked, "the body goes with a Content-Length");

    // Polls of a waiting guest: same entry, no new notification.
    let again = poll(app, room_id, Some(&participant), "Other name");
    assert_eq!(again.status(), 200);
    let again: Value = again.json().unwrap();
    assert_eq!(again["id"], participant.as_str());
    assert_eq!(again["status"], "waiting");
    assert_eq!(again["username"], "Guest");
    assert_eq!(again["color"], body["color"]);
    assert_eq!(lobby.livekit.calls_to("RoomService/SendData").len(), 1);
    assert_eq!(
        app.sql_count("POST", &format!("/api/v1.0/rooms/{room_id}/request-entry/")),
        1
    );

    let listed = waiting(app, &owner, room_id);
    assert_eq!(listed.status(), 200);
    let listed: Value = listed.json().unwrap();
    assert_eq!(
        listed,
        json!({"participants": [{"id": participant, "username": "Guest", "status": "waiting",
                                 "color": body["color"]}]})
    );

    let admitted = enter(app, &owner, room_id, &participant, true);
    assert_eq!(admitted.status(), 200);
    assert_eq!(
        admitted.json::<Value>().unwrap(),
        json!({"message": "Participant was updated."})
    );
    assert_eq!(
        waiting(app, &owner, room_id).json::<Value>().unwrap(),
        json!({"participants": []})
    );

    let accepted: Value = poll(app, room_id, Some(&participant), "Guest Now")
        .json()
        .unwrap();
    assert_eq!(accepted["status"], "accepted");
    assert_eq!(accepted["livekit"]["room"], room_id);
    assert_eq!(accepted["livekit"]["url"], lobby.livekit.url().as_str());
    let claims = verify_with_livekit_sdk(accepted["livekit"]["token"].as_str().unwrap());
    assert_eq!(claims["room"], room_id);
    assert_eq!(claims["name"], "Guest Now");
    let identity = claims["identity"].as_str().unwrap();
    assert_eq!(identity.len(), 36, "a fresh UUID, not the participant id");
    assert_ne!(identity.replace('-', ""), participant);
    let metadata: Value = serde_json::from_str(claims["metadata"].as_str().unwrap()).unwrap();
    assert_eq!(metadata, json!({"color": body["color"]}));
}

#[test]
fn denial_and_access_level_changes_apply_on_the_next_poll() {
    let lobby = lobby_app(&[]);
    let app = &lobby.app;
    let owner = Person::new(&lobby.provider, app, "owner");
    let room = owner.create_room(app, "lobby decisions", "restricted");
    let room_id = room["id"].as_str().unwrap();
    let guest = "2f7f162fe7d1421b90e702bfbfbf8def";

    let first: Value = poll(app, room_id, Some(guest), "Guest").json().unwrap();
    assert_eq!(first["status"], "waiting");
    assert_eq!(
        first["color"], "hsl(53, 60%, 47%)",
        "livekit.md §2.4 vector"
    );
    // Not running in LiveKit: asked, but nobody to tell.
    assert_eq!(lobby.livekit.calls_to("RoomService/ListRooms").len(), 1);
    assert!(lobby.livekit.calls_to("RoomService/SendData").is_empty());

    // Dashes are accepted in participant_id.
    let dashed = "2f7f162f-e7d1-421b-90e7-02bfbfbf8def";
    assert_eq!(enter(app, &owner, room_id, dashed, false).status(), 200);
    let denied: Value = poll(app, room_id, Some(guest), "Guest").json().unwrap();
    assert_eq!(denied["status"], "denied");
    assert!(denied["livekit"].is_null());

    // The room becomes public: the next poll gets in, entry kept as it was.
    let patched = owner
        .request(app, Method::PATCH, &format!("/api/v1.0/rooms/{room_id}/"))
        .json(&json!({"access_level": "public"}))
        .send()
        .unwrap();
    assert_eq!(patched.status(), 200);
    let bypass: Value = poll(app, room_id, Some(guest), "Guest").json().unwrap();
    assert_eq!(bypass["status"], "accepted");
    assert!(bypass["livekit"]["token"].is_string());
    assert_eq!(
        waiting(app, &owner, room_id).json::<Value>().unwrap(),
        json!({"participants": []})
    );
    assert_eq!(
        enter(app, &owner, room_id, guest, true)
            .json::<Value>()
            .unwrap(),
        json!({"message": "Room has no lobby system."})
    );

    // Trusted: authenticated callers bypass, anonymous ones wait.
    owner
        .request(app, Method::PATCH, &format!("/api/v1.0/rooms/{room_id}/"))
        .json(&json!({"access_level": "trusted"}))
        .send()
        .unwrap();
    let anonymous: Value = poll(app, room_id, None, "Anon").json().unwrap();
    assert_eq!(anonymous["status"], "waiting");
    let member = Person::new(&lobby.provider, app, "member");
    let logged_in: Value = member
        .request(
            app,
            Method::POST,
            &format!("/api/v1.0/rooms/{room_id}/request-entry/"),
        )
        .json(&json!({"username": "Member"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(logged_in["status"], "accepted");
    let claims = verify_with_livekit_sdk(logged_in["livekit"]["token"].as_str().unwrap());
    assert_eq!(claims["identity"], "sub-member");
    let metadata: Value = serde_json::from_str(claims["metadata"].as_str().unwrap()).unwrap();
    assert_eq!(metadata["color"], logged_in["color"]);
}

#[test]
fn entries_expire_and_a_new_wait_notifies_again() {
    let lobby = lobby_app(&[
        ("lobby_waiting_timeout", "1"),
        ("lobby_denied_timeout", "1"),
    ]);
    let app = &lobby.app;
    let owner = Person::new(&lobby.provider, app, "owner");
    let room = owner.create_room(app, "lobby expiry", "restricted");
    let room_id = room["id"].as_str().unwrap();
    lobby.livekit.set_room_running(room_id, true);
    let guest = "0123456789abcdef0123456789abcdef";

    assert_eq!(poll(app, room_id, Some(guest), "G").status(), 200);
    assert_eq!(
        waiting(app, &owner, room_id).json::<Value>().unwrap()["participants"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    std::thread::sleep(Duration::from_millis(1300));
    assert_eq!(
        waiting(app, &owner, room_id).json::<Value>().unwrap(),
        json!({"participants": []})
    );
    assert_eq!(
        enter(app, &owner, room_id, guest, true)
            .json::<Value>()
            .unwrap(),
        json!({"message": "Participant not found."})
    );
    let again: Value = poll(app, room_id, Some(guest), "G2").json().unwrap();
    assert_eq!(again["status"], "waiting");
    assert_eq!(again["username"], "G2");
    assert_eq!(lobby.livekit.calls_to("RoomService/SendData").len(), 2);

    // A denial lasts lobby_denied_timeout, then the guest may ask again.
    assert_eq!(enter(app, &owner, room_id, guest, false).status(), 200);
    assert_eq!(
        poll(app, room_id, Some(guest), "G")
            .json::<Value>()
            .unwrap()["status"],
        "denied"
    );
    std::thread::sleep(Duration::from_millis(1300));
    assert_eq!(
        poll(app, room_id, Some(guest), "G")
            .json::<Value>()
            .unwrap()["status"],
        "waiting"
    );
}

#[test]
fn livekit_errors_while_notifying() {
    let lobby = lobby_app(&[]);
    let app = &lobby.app;
    let owner = Person::new(&lobby.provider, app, "owner");
    let room = owner.create_room(app, "lobby errors", "restricted");
    let room_id = room["id"].as_str().unwrap();
    lobby.livekit.set_room_running(room_id, true);

    // A Twirp error is LiveKit's answer: ignored.
    lobby
        .livekit
        .fail_next("RoomService/SendData", Fault::twirp(503, "unavailable"));
    let twirp = poll(app, room_id, Some("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), "A");
    assert_eq!(twirp.status(), 200);
    assert_eq!(twirp.json::<Value>().unwrap()["status"], "waiting");
    lobby
        .livekit
        .fail_next("RoomService/ListRooms", Fault::twirp(500, "internal"));
    assert_eq!(
        poll(app, room_id, Some("bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"), "B").status(),
        200
    );

    // No answer at all: a 500, nothing stored, the next poll tries again.
    lobby
        .livekit
        .fail_next("RoomService/ListRooms", Fault::Reset);
    let reset = poll(app, room_id, Some("cccccccccccccccccccccccccccccccc"), "C");
    assert_eq!(reset.status(), 500);
    let listed = waiting(app, &owner, room_id).json::<Value>().unwrap();
    let ids: Vec<&str> = listed["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert!(
        !ids.contains(&"cccccccccccccccccccccccccccccccc"),
        "{ids:?}"
    );
    let before = lobby.livekit.calls_to("RoomService/SendData").len();
    assert_eq!(
        poll(app, room_id, Some("cccccccccccccccccccccccccccccccc"), "C").status(),
        200
    );
    assert_eq!(
        lobby.livekit.calls_to("RoomService/SendData").len(),
        before + 1
    );
    assert!(app.logs().contains("livekit_api_origin"), "{}", app.logs());
}

#[test]
fn a_denied_livekit_origin_is_one_clear_error() {
    let lobby = lobby_app(&[("livekit_api_origin", "http://127.0.0.1:1")]);
    let app = &lobby.app;
    let owner = Person::new(&lobby.provider, app, "owner");
    let room = owner.create_room(app, "lobby misconfigured", "restricted");
    let room_id = room["id"].as_str().unwrap();
    let started = std::time::Instant::now();
    let response = poll(app, room_id, None, "G");
    assert_eq!(response.status(), 500);
    assert!(started.elapsed() < Duration::from_secs(5));
    let logs = app.logs();
    assert!(logs.contains("livekit_api_origin"), "{logs}");
}

#[test]
fn request_entry_errors() {
    let lobby = lobby_app(&[]);
    let app = &lobby.app;
    let owner = Person::new(&lobby.provider, app, "owner");
    let room = owner.create_room(app, "lobby errors 2", "restricted");
    let room_id = room["id"].as_str().unwrap();
    let url = app.url(&format!("/api/v1.0/rooms/{room_id}/request-entry/"));

    let missing = Client::new().post(&url).json(&json!({})).send().unwrap();
    assert_eq!(missing.status(), 400);
    assert!(missing.headers().get("set-cookie").is_none());
    assert_eq!(
        missing.json::<Value>().unwrap(),
        json!({"username": ["This field is required."]})
    );
    let blank = Client::new()
        .post(&url)
        .json(&json!({"username": "   "}))
        .send()
        .unwrap();
    assert_eq!(
        blank.json::<Value>().unwrap(),
        json!({"username": ["This field may not be blank."]})
    );
    // 400 wins over 404.
    let unknown = app.url("/api/v1.0/rooms/no-such-room/request-entry/");
    let both = Client::new()
        .post(&unknown)
        .json(&json!({}))
        .send()
        .unwrap();
    assert_eq!(both.status(), 400);
    let not_found = Client::new()
        .post(&unknown)
        .json(&json!({"username": "G"}))
        .send()
        .unwrap();
    assert_eq!(not_found.status(), 404);
    assert!(not_found.headers().get("set-cookie").is_none());
    assert_eq!(
        not_found.json::<Value>().unwrap(),
        json!({"detail": "No Room matches the given query."})
    );
    let get = Client::new().get(&url).send().unwrap();
    assert_eq!(get.status(), 405);
    // By slug too.
    let by_slug = poll(app, "lobby-errors-2", None, "G");
    assert_eq!(by_slug.status(), 200);
}

#[test]
fn enter_and_waiting_participants_errors() {
    let lobby = lobby_app(&[]);
    let app = &lobby.app;
    let owner = Person::new(&lobby.provider, app, "owner");
    let member = Person::new(&lobby.provider, app, "member");
    let room = owner.create_room(app, "lobby admin errors", "restricted");
    let room_id = room["id"].as_str().unwrap();
    owner.grant(app, room_id, &member, "member");
    let anonymous = Person::anonymous();
    let participant = "0123456789abcdef0123456789abcdef";

    let response = enter(app, &anonymous, room_id, participant, true);
    assert_eq!(response.status(), 401);
    assert_eq!(waiting(app, &anonymous, room_id).status(), 401);

    let invalid = owner
        .request(
            app,
            Method::POST,
            &format!("/api/v1.0/rooms/{room_id}/enter/"),
        )
        .json(&json!({"participant_id": "nope", "allow_entry": "maybe"}))
        .send()
        .unwrap();
    assert_eq!(invalid.status(), 400);
    assert_eq!(
        invalid.json::<Value>().unwrap(),
        json!({"participant_id": ["Invalid UUID hex format"],
               "allow_entry": ["Must be a valid boolean."]})
    );
    let empty = owner
        .request(
            app,
            Method::POST,
            &format!("/api/v1.0/rooms/{room_id}/enter/"),
        )
        .json(&json!({}))
        .send()
        .unwrap();
    assert_eq!(
        empty.json::<Value>().unwrap(),
        json!({"participant_id": ["This field is required."],
               "allow_entry": ["This field is required."]})
    );
    let unknown_room = enter(app, &owner, "no-such-room", participant, true);
    assert_eq!(unknown_room.status(), 404);
    let privileges = json!({"detail": "You must have privileges on room to perform this action."});
    let forbidden = enter(app, &member, room_id, participant, true);
    assert_eq!(forbidden.status(), 403);
    assert_eq!(forbidden.json::<Value>().unwrap(), privileges);
    let forbidden = waiting(app, &member, room_id);
    assert_eq!(forbidden.status(), 403);
    assert_eq!(forbidden.json::<Value>().unwrap(), privileges);
    assert_eq!(waiting(app, &owner, "no-such-room").status(), 404);
    let absent = enter(app, &owner, room_id, participant, true);
    assert_eq!(absent.status(), 404);
    assert_eq!(
        absent.json::<Value>().unwrap(),
        json!({"message": "Participant not found."})
    );

    let public = owner.create_room(app, "lobby public", "public");
    let public_id = public["id"].as_str().unwrap();
    assert_eq!(
        waiting(app, &owner, public_id).json::<Value>().unwrap(),
        json!({"participants": []})
    );
    let response = enter(app, &owner, public_id, participant, true);
    assert_eq!(response.status(), 404);
    assert_eq!(
        response.json::<Value>().unwrap(),
        json!({"message": "Room has no lobby system."})
    );
}

#[test]
fn anonymous_polls_are_throttled_per_cookie_or_address() {
    let lobby = lobby_app(&[("request_entry_throttle_rates", "3/minute")]);
    let app = &lobby.app;
    let owner = Person::new(&lobby.provider, app, "owner");
    let room = owner.create_room(app, "lobby throttle", "restricted");
    let room_id = room["id"].as_str().unwrap();

    for _ in 0..3 {
        assert_eq!(poll(app, room_id, None, "G").status(), 200);
    }
    let throttled = poll(app, room_id, None, "G");
    assert_eq!(throttled.status(), 429);
    assert!(throttled.headers().get("retry-after").is_some());
    // Two guests behind the same address, each with their own cookie.
    for guest in [
        "11111111111111111111111111111111",
        "22222222222222222222222222222222",
    ] {
        for _ in 0..3 {
            assert_eq!(poll(app, room_id, Some(guest), "G").status(), 200);
        }
        assert_eq!(poll(app, room_id, Some(guest), "G").status(), 429);
    }
    // A guest whose poll bypasses the lobby (a public room) is counted on
    // its cookie too, with no entry to count it.
    let public = owner.create_room(app, "lobby throttle public", "public");
    let public_id = public["id"].as_str().unwrap();
    let guest = Some("33333333333333333333333333333333");
    for _ in 0..3 {
        let response = poll(app, public_id, guest, "G");
        assert_eq!(response.status(), 200);
        assert_eq!(response.json::<Value>().unwrap()["status"], "accepted");
    }
    assert_eq!(poll(app, public_id, guest, "G").status(), 429);
    // Authenticated callers are not throttled.
    let member = Person::new(&lobby.provider, app, "member");
    for _ in 0..5 {
        let response = member
            .request(
                app,
                Method::POST,
                &format!("/api/v1.0/rooms/{room_id}/request-entry/"),
            )
            .json(&json!({"username": "M"}))
            .send()
            .unwrap();
        assert_eq!(response.status(), 200);
    }
}

#[test]
fn concurrent_first_polls_leave_one_entry_and_one_notification() {
    let lobby = lobby_app(&[]);
    let app = &lobby.app;
    let owner = Person::new(&lobby.provider, app, "owner");
    let room = owner.create_room(app, "lobby race", "restricted");
    let room_id = room["id"].as_str().unwrap().to_string();
    lobby.livekit.set_room_running(&room_id, true);
    let guest = "abcdefabcdefabcdefabcdefabcdefab";
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| poll(app, &room_id, Some(guest), "G").status()))
            .collect();
        for handle in handles {
            assert_eq!(handle.join().unwrap(), 200);
        }
    });
    assert_eq!(lobby.livekit.calls_to("RoomService/SendData").len(), 1);
    let listed = waiting(app, &owner, &room_id).json::<Value>().unwrap();
    assert_eq!(listed["participants"].as_array().unwrap().len(), 1);
}

#[test]
fn polls_and_the_waiting_list_run_within_their_statement_budgets() {
    let lobby = lobby_app(&[]);
    let app = &lobby.app;
    let owner = Person::new(&lobby.provider, app, "owner");
    let room = owner.create_room(app, "lobby budget", "restricted");
    let room_id = room["id"].as_str().unwrap();
    let poll_path = format!("/api/v1.0/rooms/{room_id}/request-entry/");
    let poll_as = |person: &Person| {
        let response = person
            .request(app, Method::POST, &poll_path)
            .header(
                "cookie",
                format!("{COOKIE}=0123456789abcdef0123456789abcdef"),
            )
            .json(&json!({"username": "Someone"}))
            .send()
            .unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().unwrap();
        (
            status,
            body["status"].clone(),
            app.sql_count("POST", &poll_path),
        )
    };

    // A logged-in stranger (bearer token, cached after its first use):
    // the caller is resolved by the lobby statement itself.
    let stranger = Person::new(&lobby.provider, app, "stranger");
    stranger
        .request(app, Method::GET, "/api/v1.0/users/me/")
        .send()
        .unwrap();
    // Its first poll looks for a live entry, then creates it; later polls
    // are one `UPDATE`.
    assert_eq!(poll_as(&stranger), (200, json!("waiting"), 2), "created");
    assert_eq!(poll_as(&stranger), (200, json!("waiting"), 1), "refreshed");

    // An anonymous guest with a lobby cookie: its entry counts the throttle
    // in the same statements, whether they create the entry or refresh it.
    let anonymous_poll = |cookie: Option<&str>| {
        let response = poll(app, room_id, cookie, "Guest");
        let status = response.status().as_u16();
        let body: Value = response.json().unwrap();
        (
            status,
            body["status"].clone(),
            app.sql_count("POST", &poll_path),
        )
    };
    let guest = Some("fedcba9876543210fedcba9876543210");
    assert_eq!(anonymous_poll(guest), (200, json!("waiting"), 2), "created");
    assert_eq!(
        anonymous_poll(guest),
        (200, json!("waiting"), 1),
        "refreshed"
    );
    // Without a cookie (a first visit): the address's throttle counter
    // first, then the entry is created with no look for a live one.
    assert_eq!(
        anonymous_poll(None),
        (200, json!("waiting"), 2),
        "no cookie"
    );

    // The owner's list: caller, room, role and participants in one.
    let list_path = format!("/api/v1.0/rooms/{room_id}/waiting-participants/");
    let response = waiting(app, &owner, room_id);
    assert_eq!(response.status(), 200);
    let listed: Value = response.json().unwrap();
    assert_eq!(listed["participants"].as_array().map(Vec::len), Some(3));
    assert_eq!(app.sql_count("GET", &list_path), 1);
    // A member who is not an administrator: still one statement, a 403.
    assert_eq!(waiting(app, &stranger, room_id).status(), 403);
    assert_eq!(app.sql_count("GET", &list_path), 1);
}
