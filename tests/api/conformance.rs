//! Conformance details found by black-box checks (issue 15): DRF's body
//! parsers (JSON and multipart, nothing else), the permission's 401 before
//! the 405 on every component, and the API root.

use crate::rooms::{rooms_app, Person};
use meet_e2e::TestApp;
use reqwest::blocking::RequestBuilder;
use reqwest::Method;
use serde_json::{json, Value};

const BOUNDARY: &str = "conformance-boundary-7f3a";

const NOT_AUTHENTICATED: &str = "Authentication credentials were not provided.";

/// A `multipart/form-data` body, written by hand so the framing is the
/// test's own: `(name, Some(file name) for a file part, value)`.
pub fn multipart(parts: &[(&str, Option<&str>, &str)]) -> (String, String) {
    let mut body = String::new();
    for (name, file_name, value) in parts {
        body.push_str(&format!("--{BOUNDARY}\r\n"));
        match file_name {
            Some(file) => body.push_str(&format!(
                "Content-Disposition: form-data; name=\"{name}\"; filename=\"{file}\"\r\n\
                 Content-Type: application/octet-stream\r\n"
            )),
            None => body.push_str(&format!(
                "Content-Disposition: form-data; name=\"{name}\"\r\n"
            )),
        }
        body.push_str(&format!("\r\n{value}\r\n"));
    }
    body.push_str(&format!("--{BOUNDARY}--\r\n"));
    (format!("multipart/form-data; boundary={BOUNDARY}"), body)
}

/// `builder` with a multipart body of plain fields.
pub fn with_fields(builder: RequestBuilder, fields: &[(&str, &str)]) -> RequestBuilder {
    let parts: Vec<(&str, Option<&str>, &str)> = fields
        .iter()
        .map(|(name, value)| (*name, None, *value))
        .collect();
    let (content_type, body) = multipart(&parts);
    builder.header("Content-Type", content_type).body(body)
}

fn read(response: reqwest::blocking::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

fn not_allowed(verb: &str) -> Value {
    json!({"detail": format!("Method \"{verb}\" not allowed.")})
}

#[test]
fn multipart_bodies_create_and_update_rooms() {
    let (provider, app) = rooms_app(&[]);
    let jane = Person::new(&provider, &app, "jane");

    // A repeated plain field keeps its last value, as a QueryDict does.
    let create = jane.request(&app, Method::POST, "/api/v1.0/rooms/");
    let (status, room) = read(
        with_fields(
            create,
            &[
                ("name", "first name"),
                ("access_level", "trusted"),
                ("name", "Réunion d'équipe"),
            ],
        )
        .send()
        .unwrap(),
    );
    assert_eq!(status, 201, "{room}");
    assert_eq!(room["name"], "Réunion d'équipe");
    assert_eq!(room["slug"], "reunion-dequipe");
    assert_eq!(room["access_level"], "trusted");
    assert_eq!(room["is_administrable"], true);

    let id = room["id"].as_str().unwrap();
    let path = format!("/api/v1.0/rooms/{id}/");
    let patch = jane.request(&app, Method::PATCH, &path);
    let (status, updated) = read(
        with_fields(patch, &[("access_level", "restricted")])
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["access_level"], "restricted");
    assert_eq!(updated["name"], "Réunion d'équipe");

    // Validation runs on multipart fields as on JSON ones.
    let patch = jane.request(&app, Method::PATCH, &path);
    let (status, body) = read(
        with_fields(patch, &[("access_level", "nowhere")])
            .send()
            .unwrap(),
    );
    assert_eq!(status, 400, "{body}");
    assert!(body["access_level"].is_array(), "{body}");
}

#[test]
fn multipart_bodies_grant_accesses() {
    let (provider, app) = rooms_app(&[]);
    let owner = Person::new(&provider, &app, "owner");
    let guest = Person::new(&provider, &app, "guest");
    let room = owner.create_room(&app, "granted", "restricted");
    let room_id = room["id"].as_str().unwrap();

    let post = owner.request(&app, Method::POST, "/api/v1.0/resource-accesses/");
    let (status, access) = read(
        with_fields(
            post,
            &[
                ("user", guest.id.as_str()),
                ("resource", room_id),
                ("role", "administrator"),
            ],
        )
        .send()
        .unwrap(),
    );
    assert_eq!(status, 201, "{access}");
    assert_eq!(access["user"], guest.id.as_str());
    assert_eq!(access["resource"], room_id);
    assert_eq!(access["role"], "administrator");
}

#[test]
fn url_encoded_bodies_are_415_with_drf_body_and_change_nothing() {
    let (provider, app) = rooms_app(&[]);
    let jane = Person::new(&provider, &app, "jane");

    let response = jane
        .request(&app, Method::POST, "/api/v1.0/rooms/")
        .form(&[("name", "form room")])
        .send()
        .unwrap();
    assert_eq!(
        read(response),
        (
            415,
            json!({"detail": "Unsupported media type \"application/x-www-form-urlencoded\" in request."})
        )
    );
    let response = jane
        .request(&app, Method::POST, "/api/v1.0/rooms/")
        .header("Content-Type", "text/plain; charset=utf-8")
        .body("name=x")
        .send()
        .unwrap();
    assert_eq!(
        read(response),
        (
            415,
            json!({"detail": "Unsupported media type \"text/plain; charset=utf-8\" in request."})
        )
    );
    let list = jane
        .request(&app, Method::GET, "/api/v1.0/rooms/")
        .send()
        .unwrap();
    assert_eq!(read(list).1["count"], 0);
}

#[test]
fn file_parts_and_broken_multipart_are_400s() {
    let (provider, app) = rooms_app(&[]);
    let jane = Person::new(&provider, &app, "jane");

    let (content_type, body) =
        multipart(&[("name", None, "a room"), ("avatar", Some("me.png"), "PNG")]);
    let response = jane
        .request(&app, Method::POST, "/api/v1.0/rooms/")
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .unwrap();
    assert_eq!(
        read(response),
        (
            400,
            json!({"detail": "Multipart form parse error - The part \"avatar\" is a file; this endpoint takes no files."})
        )
    );

    let response = jane
        .request(&app, Method::POST, "/api/v1.0/rooms/")
        .header("Content-Type", "multipart/form-data")
        .body("--x\r\n\r\nname\r\n--x--\r\n")
        .send()
        .unwrap();
    assert_eq!(
        read(response),
        (
            400,
            json!({"detail": "Multipart form parse error - Invalid boundary in multipart: None"})
        )
    );

    let response = jane
        .request(&app, Method::POST, "/api/v1.0/rooms/")
        .header(
            "Content-Type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nunterminated"
        ))
        .send()
        .unwrap();
    let (status, body) = read(response);
    assert_eq!(status, 400, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .starts_with("Multipart form parse error - "),
        "{body}"
    );

    // None of these created a room.
    let list = jane
        .request(&app, Method::GET, "/api/v1.0/rooms/")
        .send()
        .unwrap();
    assert_eq!(read(list).1["count"], 0);
}

#[test]
fn anonymous_put_on_rooms_is_401_and_authenticated_is_405() {
    let (provider, app) = rooms_app(&[]);
    let jane = Person::new(&provider, &app, "jane");

    let response = Person::anonymous()
        .request(&app, Method::PUT, "/api/v1.0/rooms/")
        .json(&json!({"name": "x"}))
        .send()
        .unwrap();
    assert_eq!(
        response.headers()["www-authenticate"].to_str().unwrap(),
        "Bearer realm=\"api\""
    );
    assert_eq!(read(response), (401, json!({"detail": NOT_AUTHENTICATED})));

    let response = jane
        .request(&app, Method::PUT, "/api/v1.0/rooms/")
        .json(&json!({"name": "x"}))
        .send()
        .unwrap();
    assert_eq!(read(response), (405, not_allowed("PUT")));
}

/// One route with a method it does not take, and what an anonymous caller
/// gets: the permission's 401 (`true`) or the 405 (`false`).
struct Case {
    method: Method,
    path: String,
    anonymous_401: bool,
}

fn case(method: Method, path: &str, anonymous_401: bool) -> Case {
    Case {
        method,
        path: path.to_string(),
        anonymous_401,
    }
}

#[test]
fn on_every_component_the_permission_comes_before_the_405() {
    let (provider, app) = rooms_app(&[]);
    let jane = Person::new(&provider, &app, "jane");
    let room = jane.create_room(&app, "methods", "restricted");
    let room_id = room["id"].as_str().unwrap();
    let some_id = "7d0fd6c1-4ea9-4a5f-9d39-6a8a6c3f2b10";
    let room_path = |tail: &str| format!("/api/v1.0/rooms/{room_id}/{tail}");

    let cases = [
        // identity
        case(Method::PUT, "/api/v1.0/config/", false),
        case(Method::POST, "/api/v1.0/users/", true),
        case(Method::DELETE, "/api/v1.0/users/me/", true),
        case(Method::GET, &format!("/api/v1.0/users/{some_id}/"), true),
        // rooms (RoomPermissions: unsafe methods need a user)
        case(Method::PATCH, "/api/v1.0/rooms/", true),
        case(Method::DELETE, "/api/v1.0/rooms/", true),
        case(Method::POST, &room_path(""), true),
        case(Method::GET, "/api/v1.0/rooms/creation-callback/", false),
        case(Method::GET, &room_path("request-entry/"), false),
        case(Method::GET, &room_path("invite/"), true),
        case(Method::GET, &room_path("enter/"), true),
        case(Method::POST, &room_path("waiting-participants/"), true),
        // egress
        case(Method::GET, &room_path("start-recording/"), true),
        case(Method::DELETE, &room_path("stop-recording/"), true),
        // webhooks: the LiveKit JWT is checked by the handler
        case(Method::GET, "/api/v1.0/rooms/webhooks-livekit/", false),
        // accesses
        case(Method::PUT, "/api/v1.0/resource-accesses/", true),
        case(
            Method::POST,
            &format!("/api/v1.0/resource-accesses/{some_id}/"),
            true,
        ),
        // recordings
        case(Method::POST, "/api/v1.0/recordings/", true),
        case(
            Method::PUT,
            &format!("/api/v1.0/recordings/{some_id}/"),
            true,
        ),
        case(Method::POST, "/api/v1.0/recordings/media-auth/", true),
        // the API root
        case(Method::POST, "/api/v1.0/", false),
    ];
    for Case {
        method,
        path,
        anonymous_401,
    } in &cases
    {
        let verb = method.as_str();
        let anonymous = read(
            Person::anonymous()
                .request(&app, method.clone(), path)
                .send()
                .unwrap(),
        );
        let expected = if *anonymous_401 {
            (401, json!({"detail": NOT_AUTHENTICATED}))
        } else {
            (405, not_allowed(verb))
        };
        assert_eq!(anonymous, expected, "anonymous {verb} {path}");
        let signed_in = read(jane.request(&app, method.clone(), path).send().unwrap());
        assert_eq!(signed_in, (405, not_allowed(verb)), "jane {verb} {path}");
    }
}

fn machine_app() -> TestApp {
    rooms_app(&[
        ("room_telephony_api_token", "phone-token"),
        ("maintenance_api_token", "maintenance-token"),
        ("recording_storage_event_enable", "true"),
        ("recording_enable_storage_event_auth", "true"),
        ("recording_storage_event_token", "hook-token"),
    ])
    .1
}

#[test]
fn machine_token_routes_check_their_token_before_the_405() {
    let app = machine_app();
    for (path, token) in [
        ("/api/v1.0/telephony/lookup/", "phone-token"),
        ("/api/v1.0/maintenance/run/", "maintenance-token"),
        ("/api/v1.0/recordings/storage-hook/", "hook-token"),
    ] {
        let url = app.url(path);
        let (status, body) = read(app.client.get(&url).send().unwrap());
        assert_eq!(status, 401, "no token, GET {path}: {body}");
        let (status, body) = read(app.client.get(&url).bearer_auth("wrong").send().unwrap());
        assert_eq!(status, 401, "bad token, GET {path}: {body}");
        let (status, body) = read(app.client.get(&url).bearer_auth(token).send().unwrap());
        assert_eq!((status, body), (405, not_allowed("GET")), "GET {path}");
    }
}

#[test]
fn the_api_root_lists_the_list_routes_as_absolute_urls() {
    let (provider, app) = rooms_app(&[]);
    let expected = json!({
        "users": app.url("/api/v1.0/users/"),
        "rooms": app.url("/api/v1.0/rooms/"),
        "recordings": app.url("/api/v1.0/recordings/"),
        "resource-accesses": app.url("/api/v1.0/resource-accesses/"),
    });
    let response = app.get("/api/v1.0/");
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let (status, body) = read(response);
    assert_eq!((status, &body), (200, &expected));
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["users", "rooms", "recordings", "resource-accesses"]);

    // The same for a signed-in caller; the links follow the Host header.
    let jane = Person::new(&provider, &app, "jane");
    let (status, body) = read(
        jane.request(&app, Method::GET, "/api/v1.0/")
            .send()
            .unwrap(),
    );
    assert_eq!((status, body), (200, expected));
    let (status, body) = read(
        app.client
            .get(app.url("/api/v1.0/"))
            .header("Host", "meet.example")
            .header("X-Forwarded-Proto", "https")
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200);
    assert_eq!(body["rooms"], "https://meet.example/api/v1.0/rooms/");

    // Without the slash: Django's redirect; other methods: 405.
    let redirect = app.get("/api/v1.0");
    assert_eq!(redirect.status(), 301);
    assert_eq!(
        redirect.headers()["location"].to_str().unwrap(),
        "/api/v1.0/"
    );
    for method in [Method::PUT, Method::DELETE] {
        let verb = method.as_str().to_string();
        let response = app
            .client
            .request(method, app.url("/api/v1.0/"))
            .send()
            .unwrap();
        assert_eq!(read(response), (405, not_allowed(&verb)));
    }
}
