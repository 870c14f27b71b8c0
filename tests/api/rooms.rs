//! Rooms over HTTP: create, retrieve by slug and id, update, delete, list,
//! unregistered rooms, the creation callback, LiveKit tokens checked by
//! LiveKit's own SDK, and the authorization matrix.

use meet_e2e::oidc_provider::OidcProvider;
use meet_e2e::{api_user, spawn_app_with, AppOptions, TestApp};
use reqwest::blocking::{Client, RequestBuilder};
use reqwest::Method;
use serde_json::{json, Value};

pub const LIVEKIT_KEY: &str = "devkey";
pub const LIVEKIT_SECRET: &str = "a-livekit-secret-of-at-least-32-chars";
pub const LIVEKIT_URL: &str = "ws://127.0.0.1:7880";

/// An app with LiveKit settings and a provider to mint users with.
pub fn rooms_app(extra: &[(&str, &str)]) -> (OidcProvider, TestApp) {
    let provider = OidcProvider::start();
    let mut options = AppOptions::default()
        .variables(&provider.variables())
        .variable("livekit_api_key", LIVEKIT_KEY)
        .variable("livekit_api_secret", LIVEKIT_SECRET)
        .variable("livekit_api_url", LIVEKIT_URL);
    for (name, value) in extra {
        options = options.variable(name, value);
    }
    (provider, spawn_app_with(options))
}

/// A user of the app, calling it with a bearer token.
pub struct Person {
    pub token: Option<String>,
    pub id: String,
}

impl Person {
    pub fn new(provider: &OidcProvider, app: &TestApp, name: &str) -> Person {
        let email = format!("{name}@example.org");
        let (token, me) = api_user(provider, app, &format!("sub-{name}"), &email);
        assert_eq!(me["email"], email.as_str());
        Person {
            token: Some(token),
            id: me["id"].as_str().unwrap().to_string(),
        }
    }

    pub fn anonymous() -> Person {
        Person {
            token: None,
            id: String::new(),
        }
    }

    pub fn request(&self, app: &TestApp, method: Method, path: &str) -> RequestBuilder {
        let builder = Client::new().request(method, app.url(path));
        match &self.token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    pub fn create_room(&self, app: &TestApp, name: &str, access_level: &str) -> Value {
        let response = self
            .request(app, Method::POST, "/api/v1.0/rooms/")
            .json(&json!({"name": name, "access_level": access_level}))
            .send()
            .unwrap();
        assert_eq!(response.status(), 201);
        response.json().unwrap()
    }

    pub fn grant(&self, app: &TestApp, room: &str, user: &Person, role: &str) {
        let response = self
            .request(app, Method::POST, "/api/v1.0/resource-accesses/")
            .json(&json!({"user": user.id, "resource": room, "role": role}))
            .send()
            .unwrap();
        assert_eq!(response.status(), 201, "{:?}", response.text());
    }
}

fn claims_of(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// Verifies a token with LiveKit's server SDK (livekit-api from PyPI, in
/// the virtual environment that scripts/test creates) and returns what the
/// SDK read from it.
fn verify_with_livekit_sdk(token: &str) -> Value {
    let python = meet_e2e::repo_root().join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: scripts/test creates it with LiveKit's SDK",
        python.display()
    );
    let script = r#"
import json, sys
from livekit import api
claims = api.TokenVerifier(sys.argv[1], sys.argv[2]).verify(sys.argv[3])
video = claims.video
print(json.dumps({
    "identity": claims.identity, "name": claims.name, "metadata": claims.metadata,
    "room": video.room, "room_join": video.room_join, "room_admin": video.room_admin,
    "can_publish": video.can_publish, "can_subscribe": video.can_subscribe,
    "can_publish_data": video.can_publish_data,
    "can_publish_sources": video.can_publish_sources,
    "can_update_own_metadata": video.can_update_own_metadata,
}))
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
fn create_and_retrieve_as_owner_stranger_and_anonymous() {
    let (provider, app) = rooms_app(&[]);
    let owner = Person::new(&provider, &app, "owner");
    let stranger = Person::new(&provider, &app, "stranger");

    let created = owner
        .request(&app, Method::POST, "/api/v1.0/rooms/?username=Jo%20Owner")
        .json(&json!({"name": "Réunion d'équipe"}))
        .send()
        .unwrap();
    assert_eq!(created.status(), 201);
    let room: Value = created.json().unwrap();
    let id = room["id"].as_str().unwrap().to_string();
    assert_eq!(room["slug"], "reunion-dequipe");
    assert_eq!(room["name"], "Réunion d'équipe");
    assert_eq!(room["access_level"], "public");
    assert_eq!(room["is_administrable"], true);
    assert_eq!(room["configuration"], json!({}));
    assert_eq!(room["accesses"].as_array().unwrap().len(), 1);
    assert_eq!(room["accesses"][0]["role"], "owner");
    assert_eq!(room["accesses"][0]["user"]["email"], "owner@example.org");
    assert_eq!(room["accesses"][0]["resource"], id.as_str());
    assert_eq!(room["livekit"]["url"], LIVEKIT_URL);
    assert_eq!(room["livekit"]["room"], id.as_str());
    let claims = claims_of(room["livekit"]["token"].as_str().unwrap());
    assert_eq!(claims["name"], "Jo Owner");
    assert_eq!(claims["sub"], "sub-owner");

    // By slug (slugified from the path), by id with and without dashes.
    for path in [
        "/api/v1.0/rooms/reunion-dequipe/".to_string(),
        "/api/v1.0/rooms/R%C3%A9union-d%C3%A9quipe/".to_string(),
        format!("/api/v1.0/rooms/{id}/"),
        format!("/api/v1.0/rooms/{}/", id.replace('-', "")),
    ] {
        let found: Value = owner
            .request(&app, Method::GET, &path)
            .send()
            .unwrap()
            .json()
            .unwrap();
        assert_eq!(found["id"], id.as_str(), "{path}");
        assert_eq!(found["is_administrable"], true);
        assert!(found.get("accesses").is_some());
    }

    for caller in [&stranger, &Person::anonymous()] {
        let seen: Value = caller
            .request(
                &app,
                Method::GET,
                &format!("/api/v1.0/rooms/{id}/?username="),
            )
            .send()
            .unwrap()
            .json()
            .unwrap();
        assert_eq!(seen["is_administrable"], false);
        assert!(seen.get("accesses").is_none() && seen.get("configuration").is_none());
        let claims = claims_of(seen["livekit"]["token"].as_str().unwrap());
        if caller.token.is_some() {
            assert_eq!(claims["name"], "stranger@example.org");
        } else {
            assert_eq!(claims["name"], "Anonymous");
            assert_eq!(claims["sub"].as_str().unwrap().len(), 36, "a fresh UUID");
        }
    }
}

#[test]
fn tokens_are_accepted_by_livekits_own_sdk() {
    let (provider, app) = rooms_app(&[]);
    let owner = Person::new(&provider, &app, "owner");
    let room = owner.create_room(&app, "sdk check", "public");

    let verified = verify_with_livekit_sdk(room["livekit"]["token"].as_str().unwrap());

    assert_eq!(verified["identity"], "sub-owner");
    assert_eq!(verified["name"], "owner@example.org");
    assert_eq!(verified["room"], room["id"]);
    for grant in [
        "room_join",
        "room_admin",
        "can_publish",
        "can_subscribe",
        "can_publish_data",
        "can_update_own_metadata",
    ] {
        assert_eq!(verified[grant], true, "{grant}");
    }
    assert_eq!(
        verified["can_publish_sources"],
        json!(["camera", "microphone", "screen_share", "screen_share_audio"])
    );
    let metadata: Value = serde_json::from_str(verified["metadata"].as_str().unwrap()).unwrap();
    assert!(metadata["color"].as_str().unwrap().starts_with("hsl("));

    let anonymous = Client::new()
        .get(app.url("/api/v1.0/rooms/never-created/?username=Guest"))
        .send()
        .unwrap();
    let unregistered: Value = anonymous.json().unwrap();
    assert_eq!(unregistered["id"], Value::Null);
    assert_eq!(unregistered["livekit"]["room"], "never-created");
    let verified = verify_with_livekit_sdk(unregistered["livekit"]["token"].as_str().unwrap());
    assert_eq!(verified["name"], "Guest");
    assert_eq!(verified["room"], "never-created");
}

#[test]
fn unregistered_rooms_can_be_turned_off() {
    let (_provider, app) = rooms_app(&[("allow_unregistered_rooms", "false")]);
    let response = app.get("/api/v1.0/rooms/nowhere/");
    assert_eq!(response.status(), 404);
    assert_eq!(
        response.json::<Value>().unwrap(),
        json!({"detail": "No Room matches the given query."})
    );
}

#[test]
fn room_names_are_validated() {
    let (provider, app) = rooms_app(&[]);
    let owner = Person::new(&provider, &app, "owner");
    let post = |body: Value| {
        let response = owner
            .request(&app, Method::POST, "/api/v1.0/rooms/")
            .json(&body)
            .send()
            .unwrap();
        (
            response.status().as_u16(),
            response.json::<Value>().unwrap(),
        )
    };
    owner.create_room(&app, "Taken Name", "public");

    assert_eq!(
        post(json!({})),
        (400, json!({"name": ["This field is required."]}))
    );
    assert_eq!(
        post(json!({"name": "  "})),
        (400, json!({"name": ["This field may not be blank."]}))
    );
    assert_eq!(
        post(json!({"name": "x".repeat(501)})),
        (
            400,
            json!({"name": ["Ensure this field has no more than 500 characters."]})
        )
    );
    assert_eq!(
        post(json!({"name": "x".repeat(101)})),
        (
            400,
            json!({"slug": ["Ensure this value has at most 100 characters (it has 101)."]})
        )
    );
    assert_eq!(
        post(json!({"name": "taken name!"})),
        (
            400,
            json!({"slug": ["Room with this Slug already exists."]})
        )
    );
    assert_eq!(
        post(json!({"name": "918689fb-038e 4e81-bf09 efd5902c5f0b"})),
        (
            400,
            json!({"name": ["Room name \"918689fb-038e 4e81-bf09 efd5902c5f0b\" is reserved."]})
        )
    );
    assert_eq!(
        post(json!({"name": "ok", "access_level": "secret"})),
        (
            400,
            json!({"access_level": ["\"secret\" is not a valid choice."]})
        )
    );
    let (status, body) = post(json!({"name": "!!!"}));
    assert_eq!(status, 400);
    assert!(body["name"].is_array());
    let (status, _) = post(json!({"name": "  trimmed  "}));
    assert_eq!(status, 201);

    let malformed = owner
        .request(&app, Method::POST, "/api/v1.0/rooms/")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .unwrap();
    assert_eq!(malformed.status(), 400);
    let text = owner
        .request(&app, Method::POST, "/api/v1.0/rooms/")
        .header("content-type", "text/plain")
        .body("name=x")
        .send()
        .unwrap();
    assert_eq!(text.status(), 415);
}

#[test]
fn administrators_update_owners_delete() {
    let (provider, app) = rooms_app(&[]);
    let owner = Person::new(&provider, &app, "owner");
    let admin = Person::new(&provider, &app, "admin");
    let room = owner.create_room(&app, "Board", "public");
    let id = room["id"].as_str().unwrap();
    owner.grant(&app, id, &admin, "administrator");

    let patched = admin
        .request(&app, Method::PATCH, &format!("/api/v1.0/rooms/{id}/"))
        .json(&json!({"access_level": "restricted", "slug": "ignored", "id": "ignored"}))
        .send()
        .unwrap();
    assert_eq!(patched.status(), 200);
    let patched: Value = patched.json().unwrap();
    assert_eq!(patched["access_level"], "restricted");
    assert_eq!(patched["slug"], "board");

    let renamed: Value = owner
        .request(&app, Method::PUT, &format!("/api/v1.0/rooms/{id}/"))
        .json(&json!({"name": "Board Room", "configuration": {"theme": "dark"}}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        (
            renamed["slug"].as_str(),
            renamed["configuration"]["theme"].as_str()
        ),
        (Some("board-room"), Some("dark"))
    );
    let put_without_name = owner
        .request(&app, Method::PUT, &format!("/api/v1.0/rooms/{id}/"))
        .json(&json!({"access_level": "public"}))
        .send()
        .unwrap();
    assert_eq!(put_without_name.status(), 400);

    let by_admin = admin
        .request(&app, Method::DELETE, &format!("/api/v1.0/rooms/{id}/"))
        .send()
        .unwrap();
    assert_eq!(by_admin.status(), 403);
    let by_owner = owner
        .request(&app, Method::DELETE, &format!("/api/v1.0/rooms/{id}/"))
        .send()
        .unwrap();
    assert_eq!(by_owner.status(), 204);
    assert_eq!(by_owner.text().unwrap(), "");
    let accesses: i64 = app
        .db()
        .query_row("SELECT count(*) FROM meet_resource_access", [], |row| {
            row.get(0)
        })
        .unwrap();
    assert_eq!(accesses, 0, "accesses go with the room");
}

#[test]
fn the_list_shows_the_callers_rooms_by_name_with_pages() {
    let (provider, app) = rooms_app(&[]);
    let owner = Person::new(&provider, &app, "owner");
    let other = Person::new(&provider, &app, "other");
    for n in (0..23).rev() {
        owner.create_room(&app, &format!("room {n:02}"), "restricted");
    }
    other.create_room(&app, "not yours", "public");

    let first: Value = owner
        .request(&app, Method::GET, "/api/v1.0/rooms/")
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(first["count"], 23);
    assert_eq!(first["results"].as_array().unwrap().len(), 20);
    assert_eq!(first["results"][0]["name"], "room 00");
    assert!(first["results"][0]["livekit"]["token"].is_string());
    assert_eq!(first["previous"], Value::Null);
    let next = first["next"].as_str().unwrap();
    assert_eq!(next, app.url("/api/v1.0/rooms/?page=2"));
    let second: Value = owner
        .request(&app, Method::GET, "/api/v1.0/rooms/?page=2")
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(second["results"].as_array().unwrap().len(), 3);
    assert_eq!(second["previous"], app.url("/api/v1.0/rooms/"));
    let beyond = owner
        .request(&app, Method::GET, "/api/v1.0/rooms/?page=3")
        .send()
        .unwrap();
    assert_eq!(beyond.status(), 404);
    assert_eq!(
        beyond.json::<Value>().unwrap(),
        json!({"detail": "Invalid page."})
    );

    let anonymous: Value = app.get("/api/v1.0/rooms/").json().unwrap();
    assert_eq!(
        anonymous,
        json!({"count": 0, "next": null, "previous": null, "results": []})
    );
}

#[test]
fn the_creation_callback_hands_the_slug_over_once() {
    let (provider, app) = rooms_app(&[("creation_callback_throttle_rates", "3/minute")]);
    let owner = Person::new(&provider, &app, "owner");
    let created = owner
        .request(&app, Method::POST, "/api/v1.0/rooms/")
        .json(&json!({"name": "popup room", "callback_id": "cb-123"}))
        .send()
        .unwrap();
    assert_eq!(created.status(), 201);
    let poll = || {
        Client::new()
            .post(app.url("/api/v1.0/rooms/creation-callback/"))
            .json(&json!({"callback_id": "cb-123"}))
            .send()
            .unwrap()
    };

    assert_eq!(
        poll().json::<Value>().unwrap(),
        json!({"status": "success", "room": {"slug": "popup-room"}})
    );
    assert_eq!(
        poll().json::<Value>().unwrap(),
        json!({"status": "success", "room": {}})
    );
    let missing = Client::new()
        .post(app.url("/api/v1.0/rooms/creation-callback/"))
        .json(&json!({}))
        .send()
        .unwrap();
    assert_eq!(
        missing.json::<Value>().unwrap(),
        json!({"callback_id": ["This field is required."]})
    );
    let throttled = poll();
    assert_eq!(throttled.status(), 429);
    assert!(throttled.headers().contains_key("retry-after"));
    // Authenticated callers are not throttled.
    let authenticated = owner
        .request(&app, Method::POST, "/api/v1.0/rooms/creation-callback/")
        .json(&json!({"callback_id": "cb-123"}))
        .send()
        .unwrap();
    assert_eq!(authenticated.status(), 200);
}

#[test]
fn authorization_matrix() {
    let (provider, app) = rooms_app(&[]);
    let owner = Person::new(&provider, &app, "owner");
    let admin = Person::new(&provider, &app, "admin");
    let member = Person::new(&provider, &app, "member");
    let stranger = Person::new(&provider, &app, "stranger");
    let anonymous = Person::anonymous();
    let callers = [
        ("anonymous", &anonymous),
        ("stranger", &stranger),
        ("member", &member),
        ("administrator", &admin),
        ("owner", &owner),
    ];

    for level in ["public", "trusted", "restricted"] {
        let room = owner.create_room(&app, &format!("matrix {level}"), level);
        let id = room["id"].as_str().unwrap().to_string();
        owner.grant(&app, &id, &admin, "administrator");
        owner.grant(&app, &id, &member, "member");

        for (name, caller) in callers {
            let expect_join = match (level, name) {
                ("public", _) => true,
                ("trusted", "anonymous") => false,
                ("trusted", _) => true,
                (_, "member" | "administrator" | "owner") => true,
                _ => false,
            };
            let privileged = matches!(name, "administrator" | "owner");
            let retrieved = caller
                .request(&app, Method::GET, &format!("/api/v1.0/rooms/{id}/"))
                .send()
                .unwrap();
            assert_eq!(retrieved.status(), 200, "{level} {name} GET");
            let body: Value = retrieved.json().unwrap();
            assert_eq!(
                body.get("livekit").is_some(),
                expect_join,
                "{level} {name} livekit"
            );
            assert_eq!(
                body["is_administrable"], privileged,
                "{level} {name} is_administrable"
            );
            assert_eq!(
                body.get("accesses").is_some(),
                privileged,
                "{level} {name} accesses"
            );

            let patch = caller
                .request(&app, Method::PATCH, &format!("/api/v1.0/rooms/{id}/"))
                .json(&json!({"configuration": {"by": name}}))
                .send()
                .unwrap();
            let expected = match name {
                "anonymous" => 401,
                "stranger" | "member" => 403,
                _ => 200,
            };
            assert_eq!(patch.status(), expected, "{level} {name} PATCH");

            let put = caller
                .request(&app, Method::PUT, &format!("/api/v1.0/rooms/{id}/"))
                .json(&json!({"name": format!("matrix {level}"), "access_level": level}))
                .send()
                .unwrap();
            assert_eq!(put.status(), expected, "{level} {name} PUT");

            if name != "owner" {
                let delete = caller
                    .request(&app, Method::DELETE, &format!("/api/v1.0/rooms/{id}/"))
                    .send()
                    .unwrap();
                let expected = if name == "anonymous" { 401 } else { 403 };
                assert_eq!(delete.status(), expected, "{level} {name} DELETE");
            }

            let create = caller
                .request(&app, Method::POST, "/api/v1.0/rooms/")
                .json(&json!({"name": format!("{level} by {name}")}))
                .send()
                .unwrap();
            assert_eq!(
                create.status(),
                if name == "anonymous" { 401 } else { 201 },
                "{level} {name} POST"
            );
        }
        let delete = owner
            .request(&app, Method::DELETE, &format!("/api/v1.0/rooms/{id}/"))
            .send()
            .unwrap();
        assert_eq!(delete.status(), 204, "{level} owner DELETE");
    }
    let unknown = owner
        .request(&app, Method::PATCH, "/api/v1.0/rooms/no-such-room/")
        .json(&json!({}))
        .send()
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let anonymous_unknown = anonymous
        .request(&app, Method::PATCH, "/api/v1.0/rooms/no-such-room/")
        .json(&json!({}))
        .send()
        .unwrap();
    assert_eq!(anonymous_unknown.status(), 401);
}

#[test]
fn a_shared_room_keeps_its_last_owner() {
    let (provider, app) = rooms_app(&[]);
    let owner = Person::new(&provider, &app, "owner");
    let guest = Person::new(&provider, &app, "guest");
    let room = owner.create_room(&app, "Shared", "restricted");
    let id = room["id"].as_str().unwrap();
    let own_access = room["accesses"][0]["id"].as_str().unwrap().to_string();

    let before: Value = guest
        .request(&app, Method::GET, &format!("/api/v1.0/rooms/{id}/"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(
        before.get("livekit").is_none(),
        "a stranger goes through the lobby"
    );
    owner.grant(&app, id, &guest, "member");
    let after: Value = guest
        .request(&app, Method::GET, &format!("/api/v1.0/rooms/{id}/"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(
        after["livekit"]["token"].is_string(),
        "a member joins directly"
    );

    for attempt in [
        owner.request(
            &app,
            Method::DELETE,
            &format!("/api/v1.0/resource-accesses/{own_access}/"),
        ),
        owner
            .request(
                &app,
                Method::PATCH,
                &format!("/api/v1.0/resource-accesses/{own_access}/"),
            )
            .json(&json!({"role": "member"})),
    ] {
        let response = attempt.send().unwrap();
        assert_eq!(response.status(), 403);
        assert_eq!(
            response.json::<Value>().unwrap(),
            json!({"detail": "A resource should keep at least one owner."})
        );
    }
    let owners: i64 = app
        .db()
        .query_row(
            "SELECT count(*) FROM meet_resource_access WHERE role = 'owner'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(owners, 1);
}

/// The resource-accesses endpoints × caller × access level.
#[test]
fn authorization_matrix_of_accesses() {
    let (provider, app) = rooms_app(&[]);
    let owner = Person::new(&provider, &app, "owner");
    let admin = Person::new(&provider, &app, "admin");
    let member = Person::new(&provider, &app, "member");
    let stranger = Person::new(&provider, &app, "stranger");
    let newcomer = Person::new(&provider, &app, "newcomer");
    let anonymous = Person::anonymous();
    let callers = [
        ("anonymous", &anonymous),
        ("stranger", &stranger),
        ("member", &member),
        ("administrator", &admin),
        ("owner", &owner),
    ];

    for level in ["public", "trusted", "restricted"] {
        let room = owner.create_room(&app, &format!("accesses {level}"), level);
        let id = room["id"].as_str().unwrap().to_string();
        let owner_access = room["accesses"][0]["id"].as_str().unwrap().to_string();
        owner.grant(&app, &id, &admin, "administrator");
        owner.grant(&app, &id, &member, "member");

        for (name, caller) in callers {
            let privileged = matches!(name, "administrator" | "owner");
            let denied = if name == "anonymous" { 401 } else { 403 };

            let list = caller
                .request(&app, Method::GET, "/api/v1.0/resource-accesses/")
                .send()
                .unwrap();
            assert_eq!(
                list.status(),
                if name == "anonymous" { 401 } else { 200 },
                "{level} {name} list"
            );
            if name != "anonymous" {
                let count = list.json::<Value>().unwrap()["results"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|access| access["resource"] == id.as_str())
                    .count();
                assert_eq!(
                    count,
                    if privileged { 3 } else { 0 },
                    "{level} {name} list content"
                );
            }

            let retrieve = caller
                .request(
                    &app,
                    Method::GET,
                    &format!("/api/v1.0/resource-accesses/{owner_access}/"),
                )
                .send()
                .unwrap();
            assert_eq!(
                retrieve.status(),
                if privileged { 200 } else { denied },
                "{level} {name} retrieve"
            );

            let create = caller
                .request(&app, Method::POST, "/api/v1.0/resource-accesses/")
                .json(&json!({"user": newcomer.id, "resource": id, "role": "member"}))
                .send()
                .unwrap();
            assert_eq!(
                create.status(),
                if privileged { 201 } else { denied },
                "{level} {name} create"
            );
            if privileged {
                let created: Value = create.json().unwrap();
                let access = created["id"].as_str().unwrap();
                let patch = caller
                    .request(
                        &app,
                        Method::PATCH,
                        &format!("/api/v1.0/resource-accesses/{access}/"),
                    )
                    .json(&json!({"role": "administrator"}))
                    .send()
                    .unwrap();
                assert_eq!(patch.status(), 200, "{level} {name} patch");
                let delete = caller
                    .request(
                        &app,
                        Method::DELETE,
                        &format!("/api/v1.0/resource-accesses/{access}/"),
                    )
                    .send()
                    .unwrap();
                assert_eq!(delete.status(), 204, "{level} {name} delete");
            } else {
                let patch = caller
                    .request(
                        &app,
                        Method::PATCH,
                        &format!("/api/v1.0/resource-accesses/{owner_access}/"),
                    )
                    .json(&json!({"role": "member"}))
                    .send()
                    .unwrap();
                assert_eq!(patch.status(), denied, "{level} {name} patch");
                let delete = caller
                    .request(
                        &app,
                        Method::DELETE,
                        &format!("/api/v1.0/resource-accesses/{owner_access}/"),
                    )
                    .send()
                    .unwrap();
                assert_eq!(delete.status(), denied, "{level} {name} delete");
            }

            let rooms = caller
                .request(&app, Method::GET, "/api/v1.0/rooms/")
                .send()
                .unwrap();
            assert_eq!(rooms.status(), 200, "{level} {name} rooms list");
            let listed = rooms.json::<Value>().unwrap()["results"]
                .as_array()
                .unwrap()
                .iter()
                .any(|listed| listed["id"] == id.as_str());
            assert_eq!(
                listed,
                matches!(name, "member" | "administrator" | "owner"),
                "{level} {name} rooms list content"
            );
        }
    }
}
