//! Invitations over HTTP (`POST rooms/{id}/invite/`, api.md §4 and spec
//! README corrections 8 and 11): the real rooms component sends mail over
//! `wasi:sockets` to the loopback fake SMTP server.

use std::time::{Duration, Instant};

use meet_e2e::oidc_provider::OidcProvider;
use meet_e2e::smtp_server::{Misbehaviour, Received, SmtpServer};
use meet_e2e::TestApp;
use reqwest::blocking::Response;
use reqwest::Method;
use serde_json::{json, Value};

use crate::rooms::{rooms_app, Person};

const NOT_AUTHENTICATED: &str = "Authentication credentials were not provided.";
const NOT_PRIVILEGED: &str = "You must have privileges on room to perform this action.";
const SUCCESS: &str = r#"{"status":"success","message":"invitations sent"}"#;
const BASE_URL: &str = "https://meet.example.org";
const WAIT: Duration = Duration::from_secs(10);

/// The email variables pointing at `smtp`, allowed in `email_outbound_host`.
fn email_variables(smtp: &SmtpServer) -> Vec<(String, String)> {
    [
        ("email_host", smtp.ip()),
        ("email_port", smtp.port().to_string()),
        (
            "email_outbound_host",
            format!("tcp://{}:{}", smtp.ip(), smtp.port()),
        ),
        ("email_from", "Meet <notifications@meet.example.org>".into()),
        ("email_brand_name", "Visio".into()),
        ("email_logo_img", "https://meet.example.org/logo.png".into()),
        ("email_domain", "meet.example.org".into()),
        ("email_app_base_url", BASE_URL.into()),
        ("email_timeout", "2".into()),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_string(), value))
    .collect()
}

struct World {
    provider: OidcProvider,
    app: TestApp,
    owner: Person,
    room: Value,
}

impl World {
    /// An app sending mail to `smtp` (after `overrides`), and an owner's room.
    fn new(smtp: &SmtpServer, overrides: &[(&str, &str)]) -> World {
        let mut variables = email_variables(smtp);
        for (name, value) in overrides {
            variables.retain(|(key, _)| key != name);
            variables.push((name.to_string(), value.to_string()));
        }
        let pairs: Vec<(&str, &str)> = variables
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        let (provider, app) = rooms_app(&pairs);
        let owner = Person::new(&provider, &app, "owner");
        let room = owner.create_room(&app, "Team sync", "public");
        World {
            provider,
            app,
            owner,
            room,
        }
    }

    fn room_id(&self) -> &str {
        self.room["id"].as_str().unwrap()
    }

    fn invite(&self, who: &Person, room: &str, body: &Value, language: Option<&str>) -> Response {
        let mut request = who
            .request(
                &self.app,
                Method::POST,
                &format!("/api/v1.0/rooms/{room}/invite/"),
            )
            .json(body);
        if let Some(language) = language {
            request = request.header("accept-language", language);
        }
        request.send().unwrap()
    }

    fn set_language(&self, person: &Person, language: &str) {
        self.app
            .db()
            .execute(
                "UPDATE meet_user SET language = ?1 WHERE id = ?2",
                [language, person.id.as_str()],
            )
            .unwrap();
    }
}

fn status_and_body(response: Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, response.json().unwrap())
}

/// The addresses of a `To:` header value (`a@x, "B" <b@y>`).
fn to_addresses(message: &Received) -> Vec<String> {
    let to = message.header("to").expect("a To: header");
    to.split(',')
        .map(|item| {
            let item = item.trim();
            match (item.rfind('<'), item.rfind('>')) {
                (Some(open), Some(close)) => item[open + 1..close].to_string(),
                _ => item.to_string(),
            }
        })
        .collect()
}

#[test]
fn an_owner_invites_three_addresses_and_each_gets_their_own_message() {
    let smtp = SmtpServer::start();
    let world = World::new(&smtp, &[]);
    let emails = [
        "anna@example.com",
        "bob@example.net",
        "Anna@example.com",
        "anna@example.com",
    ];
    let response = world.invite(
        &world.owner,
        world.room_id(),
        &json!({ "emails": emails }),
        Some("fr-FR,fr;q=0.9,en;q=0.5"),
    );
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().unwrap(), SUCCESS);

    let messages = smtp.wait_for_messages(3, WAIT);
    let recipients: Vec<Vec<String>> = messages.iter().map(|m| m.recipients.clone()).collect();
    assert_eq!(
        recipients,
        [
            vec!["anna@example.com".to_string()],
            vec!["bob@example.net".to_string()],
            vec!["Anna@example.com".to_string()],
        ]
    );
    assert_eq!(smtp.sessions(), 1, "all messages go over one connection");
    for message in &messages {
        assert_eq!(
            to_addresses(message),
            message.recipients,
            "{}",
            message.raw()
        );
        assert!(message.header("cc").is_none() && message.header("bcc").is_none());
        assert_eq!(message.from, "notifications@meet.example.org");
        assert_eq!(
            message.subject().unwrap(),
            "Appel vidéo en cours : owner@example.org attend que vous vous connectiez"
        );
        assert_eq!(message.header("content-language").as_deref(), Some("fr-fr"));
        for body in [message.text_body().unwrap(), message.html_body().unwrap()] {
            for expected in [
                "https://meet.example.org/team-sync",
                "meet.example.org/team-sync",
                "Visio",
            ] {
                assert!(body.contains(expected), "{expected} missing from {body}");
            }
        }
        let html = message.html_body().unwrap();
        assert!(
            html.contains("https://meet.example.org/logo.png"),
            "logo missing from {html}"
        );
    }
    // A slug in the URL finds the same room.
    let response = world.invite(
        &world.owner,
        "team-sync",
        &json!({"emails": ["carl@example.org"]}),
        None,
    );
    assert_eq!(response.status(), 200);
    assert_eq!(smtp.wait_for_messages(4, WAIT).len(), 4);
}

#[test]
fn roles_and_errors_in_upstream_order() {
    let smtp = SmtpServer::start();
    let world = World::new(&smtp, &[]);
    let room = world.room_id().to_string();
    let valid = json!({"emails": ["x@example.com"]});
    let invalid = json!({"emails": ["nope"]});

    let response = world.invite(&Person::anonymous(), &room, &invalid, None);
    assert_eq!(
        response.headers()["www-authenticate"].to_str().unwrap(),
        "Bearer realm=\"api\""
    );
    assert_eq!(
        status_and_body(response),
        (401, json!({"detail": NOT_AUTHENTICATED}))
    );
    // An authenticated caller learns the method is wrong before anything else.
    let response = world
        .owner
        .request(
            &world.app,
            Method::GET,
            &format!("/api/v1.0/rooms/{room}/invite/"),
        )
        .send()
        .unwrap();
    assert_eq!(
        status_and_body(response),
        (405, json!({"detail": "Method \"GET\" not allowed."}))
    );
    let unknown = "00000000-0000-4000-8000-000000000999";
    assert_eq!(
        status_and_body(world.invite(&world.owner, unknown, &invalid, None)),
        (404, json!({"detail": "No Room matches the given query."}))
    );

    let stranger = Person::new(&world.provider, &world.app, "stranger");
    let member = Person::new(&world.provider, &world.app, "member");
    let admin = Person::new(&world.provider, &world.app, "admin");
    world.owner.grant(&world.app, &room, &member, "member");
    world
        .owner
        .grant(&world.app, &room, &admin, "administrator");
    for who in [&stranger, &member] {
        assert_eq!(
            status_and_body(world.invite(who, &room, &invalid, None)),
            (403, json!({"detail": NOT_PRIVILEGED}))
        );
    }
    for (body, expected) in [
        (
            json!({"foo": []}),
            json!({"emails": ["This field is required."]}),
        ),
        (
            json!({"emails": []}),
            json!({"emails": ["This list may not be empty."]}),
        ),
        (
            json!({"emails": ["abdc", "efg"]}),
            json!({"emails": {"0": ["Enter a valid email address."], "1": ["Enter a valid email address."]}}),
        ),
        (
            json!({"emails": ["fabrice@yopmail.com", "efg"]}),
            json!({"emails": {"1": ["Enter a valid email address."]}}),
        ),
        (
            json!({"emails": "x@example.com"}),
            json!({"emails": ["Expected a list of items but got type \"str\"."]}),
        ),
    ] {
        assert_eq!(
            status_and_body(world.invite(&admin, &room, &body, None)),
            (400, expected)
        );
    }
    assert!(
        smtp.messages().is_empty(),
        "nothing is sent before the checks pass"
    );
    assert_eq!(smtp.sessions(), 0);

    for who in [&admin, &world.owner] {
        let response = world.invite(who, &room, &valid, None);
        assert_eq!(response.status(), 200);
    }
    let messages = smtp.wait_for_messages(2, WAIT);
    assert_eq!(messages.len(), 2);
    assert_eq!(
        messages[0].subject().unwrap(),
        "Video call in progress: admin@example.org is waiting for you to connect"
    );
}

#[test]
fn four_languages_from_the_header_then_the_sender() {
    let smtp = SmtpServer::start();
    let world = World::new(&smtp, &[]);
    let room = world.room_id().to_string();
    let body = json!({"emails": ["guest@example.com"]});
    let subject_of = |language: Option<&str>| -> String {
        let before = smtp.messages().len();
        let response = world.invite(&world.owner, &room, &body, language);
        assert_eq!(response.status(), 200);
        smtp.wait_for_messages(before + 1, WAIT)[before]
            .subject()
            .unwrap()
    };
    let sender = "owner@example.org";
    assert_eq!(
        subject_of(Some("en-US")),
        format!("Video call in progress: {sender} is waiting for you to connect")
    );
    assert_eq!(
        subject_of(Some("fr")),
        format!("Appel vidéo en cours : {sender} attend que vous vous connectiez")
    );
    assert_eq!(
        subject_of(Some("nl-BE, en;q=0.1")),
        format!("Videogesprek bezig: {sender} wacht tot je verbinding maakt")
    );
    assert_eq!(
        subject_of(Some("es, de;q=0.8")),
        format!("Videoanruf läuft: {sender} wartet darauf, dass Sie sich verbinden")
    );
    // No usable header: the sender's language (users always have one, so
    // language_code is never reached here; the unit tests cover it).
    world.set_language(&world.owner, "de-de");
    assert!(subject_of(Some("es")).starts_with("Videoanruf läuft"));
    assert!(subject_of(None).starts_with("Videoanruf läuft"));
}

#[test]
fn an_smtp_refusal_is_a_502_naming_no_secret() {
    let smtp = SmtpServer::start();
    smtp.require_auth("meet", "s3cret-password");
    smtp.refuse_recipient("gone@example.com", 550);
    let world = World::new(
        &smtp,
        &[
            ("email_host_user", "meet"),
            ("email_host_password", "s3cret-password"),
        ],
    );
    let room = world.room_id().to_string();
    let (status, body) = status_and_body(world.invite(
        &world.owner,
        &room,
        &json!({"emails": ["ok@example.com", "gone@example.com"]}),
        None,
    ));
    assert_eq!(status, 502, "{body}");
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("1 of 2 invitations could not be sent"),
        "{detail}"
    );
    assert!(detail.contains("550"), "{detail}");
    assert!(!body.to_string().contains("s3cret-password"));
    // The other recipient still got theirs, authenticated.
    let messages = smtp.wait_for_messages(1, WAIT);
    assert_eq!(messages[0].recipients, ["ok@example.com"]);
    assert_eq!(messages[0].user.as_deref(), Some("meet"));

    // Refusing every message at DATA.
    smtp.refuse_data(554);
    let (status, body) = status_and_body(world.invite(
        &world.owner,
        &room,
        &json!({"emails": ["ok@example.com"]}),
        None,
    ));
    assert_eq!(status, 502, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("554"), "{body}");
    assert!(!world.app.logs().contains("s3cret-password"));
}

#[test]
fn a_stalled_server_is_a_502_within_email_timeout() {
    let smtp = SmtpServer::start();
    smtp.at("MAIL", Misbehaviour::Stall);
    let world = World::new(&smtp, &[("email_timeout", "1")]);
    let started = Instant::now();
    let (status, body) = status_and_body(world.invite(
        &world.owner,
        world.room_id(),
        &json!({"emails": ["a@example.com"]}),
        None,
    ));
    assert_eq!(status, 502, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("did not complete"),
        "{body}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn an_unreachable_server_is_a_502() {
    // A port nothing listens on (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let smtp = SmtpServer::start();
    let port = port.to_string();
    let outbound = format!("tcp://127.0.0.1:{port}");
    let world = World::new(
        &smtp,
        &[("email_port", &port), ("email_outbound_host", &outbound)],
    );
    let (status, body) = status_and_body(world.invite(
        &world.owner,
        world.room_id(),
        &json!({"emails": ["a@example.com"]}),
        None,
    ));
    assert_eq!(status, 502, "{body}");
    // The host reports the refused connection when the greeting is read
    // ("Socket not connected"), not at connect: either way nothing is sent.
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("1 of 1 invitations could not be sent"),
        "{body}"
    );
}

#[test]
fn the_host_refuses_what_spin_refuses() {
    let smtp = SmtpServer::start();
    // email_outbound_host left at its default (tcp://127.0.0.1:25): the
    // fake server's port is not allowed, so it is never contacted.
    let world = World::new(&smtp, &[("email_outbound_host", "tcp://127.0.0.1:25")]);
    let room = world.room_id().to_string();
    let body = json!({"emails": ["a@example.com"]});
    let (status, answer) = status_and_body(world.invite(&world.owner, &room, &body, None));
    assert_eq!(status, 502, "{answer}");
    let detail = answer["detail"].as_str().unwrap();
    let entry = format!("tcp://{}:{}", smtp.ip(), smtp.port());
    assert!(detail.contains(&format!("set it to {entry}")), "{detail}");
    assert_eq!(smtp.sessions(), 0, "an address not allowed was contacted");
    drop(world);

    // A host name as the allowed entry never matches (Spin looks no names up).
    let by_name = format!("tcp://localhost:{}", smtp.port());
    let world = World::new(&smtp, &[("email_outbound_host", &by_name)]);
    let (status, answer) =
        status_and_body(world.invite(&world.owner, world.room_id(), &body, None));
    assert_eq!(status, 502, "{answer}");
    assert_eq!(smtp.sessions(), 0);
    drop(world);

    // A host name as email_host is refused with a clear error, before any I/O.
    let world = World::new(&smtp, &[("email_host", "localhost")]);
    let (status, answer) =
        status_and_body(world.invite(&world.owner, world.room_id(), &body, None));
    assert_eq!(status, 500, "{answer}");
    let detail = answer["detail"].as_str().unwrap();
    assert!(detail.contains("`email_host`"), "{detail}");
    assert!(detail.contains("cannot look up host names"), "{detail}");
    drop(world);

    // No email_host at all: the operator is told which variable to set.
    let world = World::new(&smtp, &[("email_host", "")]);
    let (status, answer) =
        status_and_body(world.invite(&world.owner, world.room_id(), &body, None));
    assert_eq!(status, 500, "{answer}");
    assert!(answer["detail"].as_str().unwrap().contains("`email_host`"));
    assert_eq!(smtp.sessions(), 0);
}
