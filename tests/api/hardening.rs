//! Hardening over HTTP: database refusals classified the same on a local
//! SQLite file and on libSQL, and request bodies bounded before they are
//! buffered.

use std::io::{Read, Write};

use crate::rooms::{rooms_app, LIVEKIT_KEY, LIVEKIT_SECRET, LIVEKIT_URL};
use meet_e2e::hrana_server::HranaServer;
use meet_e2e::load::{libsql_runtime_config, BenchHost};
use meet_e2e::oidc_provider::OidcProvider;
use reqwest::blocking::Client;
use serde_json::{json, Map, Value};

const LAST_OWNER: &str = "A resource should keep at least one owner.";

fn token(provider: &OidcProvider, name: &str) -> String {
    let mut claims = Map::new();
    claims.insert("sub".into(), format!("sub-{name}").into());
    claims.insert("email".into(), format!("{name}@example.org").into());
    provider.issue_access_token(claims)
}

/// Against the app at `base`: a duplicate slug is the serializer's 400, the
/// last owner stepping down is the 403 of the last-owner trigger.
fn refusals_behave_as_upstream(base: &str, provider: &OidcProvider) {
    let client = Client::new();
    let owner = token(provider, "owner");
    let send = |request: reqwest::blocking::RequestBuilder| {
        let response = request.send().unwrap();
        let status = response.status().as_u16();
        (status, response.json::<Value>().unwrap_or(Value::Null))
    };
    let create = |name: &str| {
        send(
            client
                .post(format!("{base}/api/v1.0/rooms/"))
                .bearer_auth(&owner)
                .json(&json!({"name": name})),
        )
    };
    let (status, room) = create("Same Name");
    assert_eq!(status, 201, "{room}");
    let (status, body) = create("same name");
    assert_eq!(
        (status, body),
        (
            400,
            json!({"slug": ["Room with this Slug already exists."]})
        )
    );
    let (status, other) = create("Other Name");
    assert_eq!(status, 201);
    let (status, body) = send(
        client
            .patch(format!(
                "{base}/api/v1.0/rooms/{}/",
                other["id"].as_str().unwrap()
            ))
            .bearer_auth(&owner)
            .json(&json!({"name": "SAME name"})),
    );
    assert_eq!(
        (status, body),
        (
            400,
            json!({"slug": ["Room with this Slug already exists."]})
        )
    );

    let access = room["accesses"][0]["id"].as_str().unwrap().to_string();
    let (status, body) = send(
        client
            .patch(format!("{base}/api/v1.0/resource-accesses/{access}/"))
            .bearer_auth(&owner)
            .json(&json!({"role": "member"})),
    );
    assert_eq!(status, 403, "{body}");
    let last_owner = json!({"detail": LAST_OWNER});
    assert_eq!(body, last_owner);
    let (status, body) = send(
        client
            .delete(format!("{base}/api/v1.0/resource-accesses/{access}/"))
            .bearer_auth(&owner),
    );
    assert_eq!(status, 403, "{body}");
    assert_eq!(body, last_owner);
}

#[test]
fn refusals_are_the_same_on_a_sqlite_file() {
    let (provider, app) = rooms_app(&[]);
    refusals_behave_as_upstream(app.address.trim_end_matches('/'), &provider);
}

#[test]
fn refusals_are_the_same_on_libsql() {
    meet_e2e::build_app();
    let provider = OidcProvider::start();
    let server = HranaServer::start("hardening-token", std::time::Duration::ZERO).unwrap();
    let mut variables = provider.variables();
    for (name, value) in [
        ("livekit_api_key", LIVEKIT_KEY),
        ("livekit_api_secret", LIVEKIT_SECRET),
        ("livekit_api_url", LIVEKIT_URL),
    ] {
        variables.push((name.into(), value.into()));
    }
    let host = BenchHost::start(
        &meet_e2e::repo_root().join("spin.toml"),
        &libsql_runtime_config(server.url(), server.token()),
        &variables,
    )
    .unwrap();
    let base = host.url("");
    refusals_behave_as_upstream(base.trim_end_matches('/'), &provider);
    assert!(server.stats().errors >= 3, "the refusals came from libSQL");
}

#[test]
fn oversized_bodies_are_413_before_they_are_read() {
    let (provider, app) = rooms_app(&[("data_upload_max_memory_size", "2048")]);
    let owner = token(&provider, "big");
    let big = json!({"name": "x".repeat(4096)}).to_string();
    let response = Client::new()
        .post(app.url("/api/v1.0/rooms/"))
        .bearer_auth(&owner)
        .header("content-type", "application/json")
        .body(big.clone())
        .send()
        .unwrap();
    assert_eq!(response.status(), 413);
    let body: Value = response.json().unwrap();
    assert!(body["detail"]
        .as_str()
        .unwrap()
        .contains("DATA_UPLOAD_MAX_MEMORY_SIZE"));

    // Chunked, without a Content-Length: counted as it arrives.
    let address = app
        .address
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    let mut request = format!(
        "POST /api/v1.0/rooms/ HTTP/1.1\r\nhost: {address}\r\nauthorization: Bearer {owner}\r\n\
         content-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    )
    .into_bytes();
    for chunk in big.as_bytes().chunks(1000) {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    stream.write_all(&request).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("DATA_UPLOAD_MAX_MEMORY_SIZE"), "{answer}");

    // Under the limit, the same request works.
    let response = Client::new()
        .post(app.url("/api/v1.0/rooms/"))
        .bearer_auth(&owner)
        .json(&json!({"name": "small"}))
        .send()
        .unwrap();
    assert_eq!(response.status(), 201);
}
