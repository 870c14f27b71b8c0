//! The LiveKit webhook endpoint over HTTP (livekit.md §5): deliveries signed
//! with LiveKit's own Python SDK, every refusal, duplicates, and
//! `room_finished` clearing only that room's lobby.

use meet_e2e::TestApp;
use reqwest::blocking::{Client, Response};
use reqwest::Method;
use serde_json::{json, Value};

use crate::rooms::{rooms_app, Person, LIVEKIT_KEY, LIVEKIT_SECRET, LIVEKIT_URL};

const PATH: &str = "/api/v1.0/rooms/webhooks-livekit/";

/// `Authorization` for `body`, made by LiveKit's SDK the way the LiveKit
/// server signs webhooks (`sha256` = base64 of the body's SHA-256).
pub fn sign(body: &str, secret: &str) -> String {
    let python = meet_e2e::repo_root().join(".venv/bin/python");
    let script = r#"
import base64, hashlib, sys
from livekit import api
digest = base64.b64encode(hashlib.sha256(sys.argv[3].encode()).digest()).decode()
print(api.AccessToken(sys.argv[1], sys.argv[2]).with_sha256(digest).to_jwt())
"#;
    let output = std::process::Command::new(python)
        .args(["-c", script, LIVEKIT_KEY, secret, body])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

pub fn deliver(app: &TestApp, body: &str, authorization: Option<&str>) -> Response {
    let mut request = Client::new()
        .post(app.url(PATH))
        .header("content-type", "application/webhook+json")
        .body(body.to_string());
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    request.send().unwrap()
}

fn event(kind: &str, id: &str, room: &str) -> String {
    json!({"event": kind, "id": id, "createdAt": "1700000000", "room": {"sid": "RM_x", "name": room}})
        .to_string()
}

fn waiting_count(app: &TestApp, owner: &Person, room: &str) -> usize {
    let listed: Value = owner
        .request(
            app,
            Method::GET,
            &format!("/api/v1.0/rooms/{room}/waiting-participants/"),
        )
        .send()
        .unwrap()
        .json()
        .unwrap();
    listed["participants"].as_array().unwrap().len()
}

fn wait_in(app: &TestApp, room: &str, guest: &str) {
    let response = Client::new()
        .post(app.url(&format!("/api/v1.0/rooms/{room}/request-entry/")))
        .header("cookie", format!("lobbyParticipantId={guest}"))
        .json(&json!({"username": "G"}))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[test]
fn room_finished_clears_only_that_rooms_lobby_once_per_delivery() {
    // Nobody is running in LiveKit: the lobby's notification is skipped.
    let livekit = meet_e2e::livekit_server::FakeLiveKit::start(LIVEKIT_KEY, LIVEKIT_SECRET);
    let url = livekit.url();
    let (provider, app) = rooms_app(&[
        ("livekit_api_url", url.as_str()),
        ("livekit_api_origin", url.as_str()),
        ("lobby_waiting_timeout", "60"),
    ]);
    let owner = Person::new(&provider, &app, "owner");
    let finished = owner.create_room(&app, "finished room", "restricted");
    let other = owner.create_room(&app, "other room", "restricted");
    let finished = finished["id"].as_str().unwrap().to_string();
    let other = other["id"].as_str().unwrap().to_string();
    wait_in(&app, &finished, "11111111111111111111111111111111");
    wait_in(&app, &other, "22222222222222222222222222222222");

    let body = event("room_finished", "EV_1", &finished);
    let response = deliver(&app, &body, Some(&sign(&body, LIVEKIT_SECRET)));
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().unwrap(),
        json!({"status": "success"})
    );
    assert_eq!(waiting_count(&app, &owner, &finished), 0);
    assert_eq!(waiting_count(&app, &owner, &other), 1);

    // The same delivery again: answered, but without effect.
    wait_in(&app, &finished, "11111111111111111111111111111111");
    let again = deliver(&app, &body, Some(&sign(&body, LIVEKIT_SECRET)));
    assert_eq!(again.status(), 200);
    assert_eq!(waiting_count(&app, &owner, &finished), 1);
    assert!(app.sql_count("POST", PATH) <= 1);

    // Other known events: accepted, no effect.
    let joined = event("participant_joined", "EV_2", &other);
    let response = deliver(&app, &joined, Some(&sign(&joined, LIVEKIT_SECRET)));
    assert_eq!(response.status(), 200);
    assert_eq!(waiting_count(&app, &owner, &other), 1);

    // A finished room named by a slug: the handler fails (500), as upstream.
    let slug = event("room_finished", "EV_3", "not-a-uuid");
    let response = deliver(&app, &slug, Some(&sign(&slug, LIVEKIT_SECRET)));
    assert_eq!(response.status(), 500);
}

#[test]
fn refused_deliveries() {
    let (_provider, app) = rooms_app(&[("livekit_api_url", LIVEKIT_URL)]);
    let body = event(
        "room_started",
        "EV_1",
        "6f1e0000-0000-4000-8000-000000000000",
    );
    let error = |message: &str| json!({"status": "error", "message": message});

    let missing = deliver(&app, &body, None);
    assert_eq!(missing.status(), 401);
    assert_eq!(
        missing.json::<Value>().unwrap(),
        error("Authorization header missing")
    );

    let wrong_secret = deliver(
        &app,
        &body,
        Some(&sign(&body, "another-secret-of-at-least-32-chars")),
    );
    assert_eq!(wrong_secret.status(), 400);
    assert_eq!(
        wrong_secret.json::<Value>().unwrap(),
        error("Invalid webhook payload")
    );

    let other_body = event("room_started", "EV_9", "x");
    let tampered = deliver(&app, &body, Some(&sign(&other_body, LIVEKIT_SECRET)));
    assert_eq!(tampered.status(), 400);
    assert_eq!(
        tampered.json::<Value>().unwrap(),
        error("Invalid webhook payload")
    );

    let bearer = deliver(
        &app,
        &body,
        Some(&format!("Bearer {}", sign(&body, LIVEKIT_SECRET))),
    );
    assert_eq!(bearer.status(), 400);

    let garbage = "not json";
    let response = deliver(&app, garbage, Some(&sign(garbage, LIVEKIT_SECRET)));
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.json::<Value>().unwrap(),
        error("Invalid webhook payload")
    );

    for kind in ["participant_connection_aborted", ""] {
        let body = json!({"event": kind, "id": "EV_u"}).to_string();
        let response = deliver(&app, &body, Some(&sign(&body, LIVEKIT_SECRET)));
        assert_eq!(response.status(), 422, "{kind:?}");
        assert_eq!(
            response.json::<Value>().unwrap(),
            error(&format!("Unknown webhook type: {kind}"))
        );
    }

    // No session, bearer or CSRF: a session cookie changes nothing.
    let response = Client::new()
        .post(app.url(PATH))
        .header("cookie", "sessionid=whatever; csrftoken=x")
        .header("authorization", sign(&body, LIVEKIT_SECRET))
        .body(body.clone())
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(app.last_logged("POST", PATH).component, "webhooks");
}
