//! Statement budgets (issue 14): the SQL statements one request runs on its
//! usual path, read from the host's `sql=N` log field. On libSQL each one is
//! a network round trip.

use crate::rooms::{rooms_app, Person};
use meet_e2e::TestApp;
use reqwest::Method;
use serde_json::{json, Value};

/// Logs the app's own client in through the provider (a browser session).
fn log_in(app: &TestApp) {
    let (_, response) = app.browse("/api/v1.0/authenticate?silent=false&returnTo=%2F");
    response.text().unwrap();
    assert!(app.cookie("sessionid").is_some(), "logged in");
}

/// Sends `request`, reads the body, and returns the status, the body and
/// the statements the host counted for `method path`.
fn measured(
    app: &TestApp,
    request: reqwest::blocking::RequestBuilder,
    method: &str,
    path: &str,
) -> (u16, Value, u32) {
    let response = request.send().unwrap();
    let status = response.status().as_u16();
    let text = response.text().unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    (status, body, app.sql_count(method, path))
}

#[test]
fn hot_paths_run_within_their_statement_budgets() {
    let (provider, app) = rooms_app(&[]);
    let (status, _, sql) = measured(
        &app,
        app.client.get(app.url("/api/v1.0/config/")),
        "GET",
        "/api/v1.0/config/",
    );
    assert_eq!((status, sql), (200, 0), "config/");
    // Variable reads are host calls Spin resolves again each time: config/
    // reads its 17 settings as one bundle, and a bodiless request does not
    // read the body limit.
    let logged = app.last_logged("GET", "/api/v1.0/config/");
    assert_eq!(logged.vars, 1, "config/ reads one variable");

    // A browser session.
    log_in(&app);
    let csrf = app.cookie("csrftoken").expect("CSRF cookie");
    let (status, me, sql) = measured(
        &app,
        app.client.get(app.url("/api/v1.0/users/me/")),
        "GET",
        "/api/v1.0/users/me/",
    );
    assert_eq!((status, sql), (200, 1), "users/me/ by session");
    let (status, created, sql) = measured(
        &app,
        app.client
            .post(app.url("/api/v1.0/rooms/"))
            .header("X-CSRFToken", &csrf)
            .json(&json!({"name": "Budget Room", "access_level": "restricted"})),
        "POST",
        "/api/v1.0/rooms/",
    );
    assert_eq!((status, sql), (201, 1), "POST rooms/ by session: {created}");
    assert_eq!(created["accesses"][0]["user"]["id"], me["id"]);
    assert!(created["livekit"]["token"].is_string());
    let id = created["id"].as_str().unwrap().to_string();
    let by_slug = "/api/v1.0/rooms/budget-room/";
    let (status, body, sql) = measured(&app, app.client.get(app.url(by_slug)), "GET", by_slug);
    assert_eq!(
        (status, sql),
        (200, 1),
        "GET rooms/<slug>/ by session: {body}"
    );
    assert_eq!(body["is_administrable"], true);
    assert_eq!(body["accesses"][0]["user"]["id"], me["id"]);
    assert!(body["livekit"]["token"].is_string());

    let by_id = format!("/api/v1.0/rooms/{id}/");
    let (status, body, sql) = measured(
        &app,
        app.client
            .patch(app.url(&by_id))
            .header("X-CSRFToken", &csrf)
            .json(&json!({"name": "Budget Room Two", "access_level": "public"})),
        "PATCH",
        &by_id,
    );
    assert_eq!((status, sql), (200, 1), "PATCH rooms/<id>/: {body}");
    assert_eq!(body["slug"], "budget-room-two");
    assert_eq!(body["access_level"], "public");
    assert_eq!(body["accesses"].as_array().map(Vec::len), Some(1));

    let (status, body, sql) = measured(
        &app,
        app.client.get(app.url("/api/v1.0/rooms/")),
        "GET",
        "/api/v1.0/rooms/",
    );
    assert_eq!((status, sql), (200, 1), "rooms/ list by session");
    assert_eq!(body["count"], 1);
    assert_eq!(body["results"][0]["slug"], "budget-room-two");

    // An API client whose token is cached, and an anonymous caller.
    let robot = Person::new(&provider, &app, "robot");
    let slug = "/api/v1.0/rooms/budget-room-two/";
    let (status, body, sql) = measured(&app, robot.request(&app, Method::GET, slug), "GET", slug);
    assert_eq!((status, sql), (200, 1), "GET rooms/<slug>/ by bearer token");
    assert_eq!(body["is_administrable"], false);
    let (status, _, sql) = measured(
        &app,
        robot.request(&app, Method::GET, "/api/v1.0/users/me/"),
        "GET",
        "/api/v1.0/users/me/",
    );
    assert_eq!((status, sql), (200, 1), "users/me/ by bearer token");
    let (status, body, sql) = measured(
        &app,
        robot.request(&app, Method::GET, "/api/v1.0/rooms/"),
        "GET",
        "/api/v1.0/rooms/",
    );
    assert_eq!(
        (status, sql, body["count"].clone()),
        (200, 1, json!(0)),
        "list by bearer"
    );
    let (status, body, sql) = measured(
        &app,
        Person::anonymous().request(&app, Method::GET, slug),
        "GET",
        slug,
    );
    assert_eq!((status, sql), (200, 1), "GET rooms/<slug>/ anonymously");
    assert!(body["livekit"]["token"].is_string());
    // LiveKit's URL, key and secret, nothing else.
    assert_eq!(
        app.last_logged("GET", slug).vars,
        3,
        "GET rooms/<slug>/ anonymously"
    );

    // The owner deletes in one statement too.
    let (status, _, sql) = measured(
        &app,
        app.client
            .delete(app.url(&by_id))
            .header("X-CSRFToken", &csrf),
        "DELETE",
        &by_id,
    );
    assert_eq!((status, sql), (204, 1), "DELETE rooms/<id>/");
}

#[test]
fn refusals_keep_their_upstream_answers_off_the_folded_path() {
    let (provider, app) = rooms_app(&[]);
    log_in(&app);
    let csrf = app.cookie("csrftoken").unwrap();
    let owner = Person::new(&provider, &app, "owner");
    let room = owner.create_room(&app, "Theirs", "public");
    let path = format!("/api/v1.0/rooms/{}/", room["id"].as_str().unwrap());
    // A session without the CSRF header: the 403 of the CSRF check.
    let response = app
        .client
        .patch(app.url(&path))
        .json(&json!({"name": "Mine"}))
        .send()
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(
        response.json::<Value>().unwrap(),
        json!({"detail": "CSRF Failed: CSRF token missing."})
    );
    // With it, not an administrator: the permission 403, the room unchanged.
    let response = app
        .client
        .patch(app.url(&path))
        .header("X-CSRFToken", &csrf)
        .json(&json!({"name": "Mine"}))
        .send()
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(
        response.json::<Value>().unwrap(),
        json!({"detail": "You do not have permission to perform this action."})
    );
    let response = app
        .client
        .delete(app.url(&path))
        .header("X-CSRFToken", &csrf)
        .send()
        .unwrap();
    assert_eq!(response.status(), 403);
    // Unknown room: 404 even with an invalid body.
    let response = app
        .client
        .patch(app.url("/api/v1.0/rooms/00000000-0000-4000-8000-000000000000/"))
        .header("X-CSRFToken", &csrf)
        .json(&json!({"name": ""}))
        .send()
        .unwrap();
    assert_eq!(response.status(), 404);
    // The owner's invalid body: the validation error.
    let response = owner
        .request(&app, Method::PATCH, &path)
        .json(&json!({"name": ""}))
        .send()
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.json::<Value>().unwrap(),
        json!({"name": ["This field may not be blank."]})
    );
    let detail = owner
        .request(&app, Method::GET, &path)
        .send()
        .unwrap()
        .json::<Value>()
        .unwrap();
    assert_eq!(detail["name"], "Theirs");
}
