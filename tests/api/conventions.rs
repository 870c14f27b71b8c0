//! The URL conventions of api.md §1 that every component follows.

use meet_e2e::spawn_app;
use serde_json::{json, Value};

#[test]
fn a_path_without_its_trailing_slash_is_redirected_keeping_the_query() {
    let app = spawn_app();

    let response = app.get("/api/v1.0/config?x=1&y=%C3%A9");

    assert_eq!(response.status(), 301);
    assert_eq!(
        response.headers()["location"].to_str().unwrap(),
        "/api/v1.0/config/?x=1&y=%C3%A9"
    );
}

#[test]
fn head_is_redirected_too() {
    let app = spawn_app();

    let response = app.client.head(app.url("/api/v1.0/config")).send().unwrap();

    assert_eq!(response.status(), 301);
    assert_eq!(
        response.headers()["location"].to_str().unwrap(),
        "/api/v1.0/config/"
    );
}

#[test]
fn unknown_api_paths_are_json_404s() {
    let app = spawn_app();

    for path in [
        "/api/v1.0/nothing-here/",
        "/api/v1.0/config/extra/",
        "/api/v1.0/nothing",
    ] {
        let response = app.get(path);
        assert_eq!(response.status(), 404, "{path}");
        let body: Value = response.json().unwrap();
        assert_eq!(body, json!({"detail": "Not found."}), "{path}");
    }
}

#[test]
fn unsupported_methods_are_json_405s() {
    let app = spawn_app();

    for (method, verb) in [
        (reqwest::Method::POST, "POST"),
        (reqwest::Method::PUT, "PUT"),
        (reqwest::Method::DELETE, "DELETE"),
    ] {
        let response = app
            .client
            .request(method, app.url("/api/v1.0/config/"))
            .send()
            .unwrap();
        assert_eq!(response.status(), 405);
        let body: Value = response.json().unwrap();
        assert_eq!(
            body,
            json!({"detail": format!("Method \"{verb}\" not allowed.")})
        );
    }
}

#[test]
fn paths_outside_the_api_are_not_routed() {
    let app = spawn_app();

    assert_eq!(app.get("/").status(), 404);
    assert_eq!(app.get("/api/v2.0/config/").status(), 404);
}
