//! `POST /rooms/{id}/invite/`: a privileged user emails a link to the room
//! to a list of addresses, one message per recipient with only that address
//! in `To:`. Checks in upstream order: 401 → (405) → 404 → 403 → 400; an SMTP
//! failure is a 502 whose detail names no secret (spec README correction 11).

use serde_json::json;

use crate::auth::authenticate;
use crate::body::parse_object;
use crate::email::{self, EmailSettings, Language, MailError, Mailer, Message};
use crate::error::{ApiError, FieldErrors};
use crate::http::{ApiRequest, ApiResponse, Method};
use crate::invitations::recipients::{self, Recipient};
use crate::invitations::store;
use crate::ports::Services;
use crate::roles::Role;
use crate::rooms::store::RoomKey;
use crate::routing::method_not_allowed;

/// The 403 of room actions that need administrator or owner.
pub const NOT_PRIVILEGED: &str = "You must have privileges on room to perform this action.";

pub fn invite(
    request: &ApiRequest,
    services: &Services,
    mailer: &dyn Mailer,
    path_value: &str,
) -> Result<ApiResponse, ApiError> {
    let caller = authenticate(request, services)?;
    let user = caller.require_user()?;
    if request.method != Method::POST {
        return Err(method_not_allowed(request));
    }
    let room = store::room_for_inviter(services.db, &RoomKey::from_path(path_value), &user.id)?
        .ok_or(ApiError::NotFound("Room"))?;
    if !room.role.is_some_and(Role::is_privileged) {
        return Err(ApiError::PermissionDenied(NOT_PRIVILEGED.to_string()));
    }
    let recipients = recipients::parse(&parse_object(request)?)?;

    let settings = email::settings(services.variables)?;
    email::require_server(&settings)?;
    let language = language(
        request.header("accept-language"),
        &user.language,
        &services.settings().string("language_code")?,
    );
    let sender = user.email.as_deref().unwrap_or_default();
    let messages = messages(&settings, language, sender, &room, &recipients)?;
    let results = mailer.send_all(&settings, &messages);
    match delivery_failure(&settings, &results) {
        None => Ok(ApiResponse::json(
            200,
            &json!({"status": "success", "message": "invitations sent"}),
        )),
        Some(detail) => Err(ApiError::Custom {
            status: 502,
            body: json!({ "detail": detail }),
        }),
    }
}

/// The language of the messages: the request's `Accept-Language` (what
/// Django's LocaleMiddleware activates), else the sender's, else `language_code`.
fn language(accept_language: Option<&str>, sender_language: &str, default: &str) -> Language {
    accept_language
        .and_then(Language::from_accept_language)
        .unwrap_or_else(|| Language::first_supported([Some(sender_language), Some(default)]))
}

/// One message per recipient. An address Django accepts but SMTP cannot
/// carry (a quoted local part with spaces) is refused like an invalid one.
fn messages(
    settings: &EmailSettings,
    language: Language,
    sender: &str,
    room: &store::InvitationRoom,
    recipients: &[Recipient],
) -> Result<Vec<Message>, ApiError> {
    let mut messages = Vec::with_capacity(recipients.len());
    let mut errors = FieldErrors::new();
    for recipient in recipients {
        match meet_mail::invitation_message(
            settings,
            language,
            sender,
            &room.name,
            &room.slug,
            &recipient.envelope,
        ) {
            Ok(message) => messages.push(message),
            Err(MailError::InvalidAddress(_)) => {
                errors.add_item("emails", recipient.index, "Enter a valid email address.")
            }
            Err(other) => return Err(ApiError::internal(other)),
        }
    }
    errors.into_result()?;
    Ok(messages)
}

/// The 502 detail when any message was not delivered: how many, and the
/// first error (SMTP errors never carry the password).
fn delivery_failure(settings: &EmailSettings, results: &[Result<(), MailError>]) -> Option<String> {
    let failed: Vec<&MailError> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    let first = failed.first()?;
    let mut detail = format!(
        "{} of {} invitations could not be sent: {first}",
        failed.len(),
        results.len()
    );
    if let (MailError::Connect { reason, .. }, Some(entry)) = (first, settings.outbound_host()) {
        if reason.to_ascii_lowercase().contains("permission denied") {
            detail.push_str(&format!(
                " (the component may only connect to the addresses allowed by the variable \
                 email_outbound_host; set it to {entry})"
            ));
        }
    }
    Some(detail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::email::Outbox;
    use crate::native::{migrated_database, FixedClock, OsRandom, ScriptedHttp, SqliteDatabase};
    use crate::settings::StaticVariables;
    use serde_json::Value;
    use sha2::{Digest, Sha256};
    use time::macros::datetime;

    const ROOM: &str = "00000000-0000-4000-8000-000000000010";

    fn uuid(n: u32) -> String {
        format!("00000000-0000-4000-8000-{n:012}")
    }

    /// Room 10 (`my-room`) and users 1–4 with bearer tokens `token-<n>`,
    /// emails `user<n>@example.com` and languages en, fr, nl, de.
    struct World {
        db: SqliteDatabase,
        clock: FixedClock,
        http: ScriptedHttp,
        variables: StaticVariables,
        outbox: Outbox,
    }

    impl World {
        fn new() -> World {
            let db = migrated_database().unwrap();
            db.execute_batch(&format!(
                "INSERT INTO meet_room (id, created_at, updated_at, name, slug) \
                 VALUES ('{ROOM}', '2025-01-01T00:00:00.000000Z', '2025-01-01T00:00:00.000000Z', 'My room', 'my-room');"
            ))
            .unwrap();
            for (n, language) in [(1, "en-us"), (2, "fr-fr"), (3, "nl-nl"), (4, "de-de")] {
                let hash = hex::encode(Sha256::digest(format!("token-{n}").as_bytes()));
                db.execute_batch(&format!(
                    "INSERT INTO meet_user (id, created_at, updated_at, sub, email, language) \
                     VALUES ('{id}', '2025-01-01T00:00:00.000000Z', '2025-01-01T00:00:00.000000Z', 'sub-{n}', 'user{n}@example.com', '{language}'); \
                     INSERT INTO meet_bearer_token (token_hash, user_id, expires_at) \
                     VALUES ('{hash}', '{id}', '2999-01-01T00:00:00.000000Z');",
                    id = uuid(n)
                ))
                .unwrap();
            }
            let mut variables = StaticVariables::new(&[("language_code", "en-us")]);
            for name in meet_mail::settings::VARIABLES {
                variables.set(name, "");
            }
            variables.set("email_host", "192.0.2.25");
            variables.set("email_from", "notifications@acme.com");
            variables.set("email_brand_name", "ACME");
            variables.set("email_logo_img", "https://acme.com/logo");
            variables.set("email_app_base_url", "https://acme.com");
            variables.set("email_domain", "acme.com");
            World {
                db,
                clock: FixedClock::new(datetime!(2025-06-30 12:00 UTC)),
                http: ScriptedHttp::default(),
                variables,
                outbox: Outbox::new(),
            }
        }

        fn grant(&self, user: u32, role: Role) {
            self.db
                .execute_batch(&format!(
                    "INSERT INTO meet_resource_access (id, created_at, updated_at, resource_id, user_id, role) \
                     VALUES ('{}', '2025-01-01T00:00:00.000000Z', '2025-01-01T00:00:00.000000Z', '{ROOM}', '{}', '{}');",
                    uuid(100 + user),
                    uuid(user),
                    role.as_str()
                ))
                .unwrap();
        }

        fn call(
            &self,
            caller: u32,
            method: Method,
            room: &str,
            headers: &[(&str, &str)],
            body: Value,
        ) -> (u16, Value) {
            let mut request = ApiRequest::new(method, &format!("/api/v1.0/rooms/{room}/invite/"))
                .with_header("host", "testserver")
                .with_header("content-type", "application/json")
                .with_body(body.to_string());
            if caller > 0 {
                request = request.with_header("authorization", &format!("Bearer token-{caller}"));
            }
            for (name, value) in headers {
                request = request.with_header(name, value);
            }
            let services = Services {
                db: &self.db,
                http: &self.http,
                clock: &self.clock,
                random: &OsRandom,
                variables: &self.variables,
            };
            let response = invite(&request, &services, &self.outbox, room)
                .unwrap_or_else(|error| error.to_response());
            (
                response.status,
                serde_json::from_slice(&response.body).unwrap(),
            )
        }

        fn post(&self, caller: u32, body: Value) -> (u16, Value) {
            self.call(caller, Method::POST, ROOM, &[], body)
        }
    }

    #[test]
    fn checks_run_in_upstream_order() {
        let world = World::new();
        world.grant(2, Role::Member);
        let bad = json!({"emails": ["nope"]});
        assert_eq!(
            world.post(0, bad.clone()),
            (
                401,
                json!({"detail": "Authentication credentials were not provided."})
            )
        );
        assert_eq!(
            world.call(1, Method::GET, ROOM, &[], json!({})),
            (405, json!({"detail": "Method \"GET\" not allowed."}))
        );
        assert_eq!(
            world.call(1, Method::POST, &uuid(99), &[], bad.clone()),
            (404, json!({"detail": "No Room matches the given query."}))
        );
        for caller in [1, 2] {
            assert_eq!(
                world.post(caller, bad.clone()),
                (403, json!({"detail": NOT_PRIVILEGED}))
            );
        }
        world.grant(3, Role::Administrator);
        assert_eq!(
            world.post(3, bad),
            (
                400,
                json!({"emails": {"0": ["Enter a valid email address."]}})
            )
        );
        assert!(world.outbox.sent().is_empty());
    }

    #[test]
    fn each_recipient_gets_a_message_of_their_own() {
        let world = World::new();
        world.grant(1, Role::Owner);
        let (status, body) = world.call(
            1,
            Method::POST,
            "my-room",
            &[],
            json!({"emails": ["fabien@yopmail.com", "gerald@yopmail.com", "fabien@yopmail.com", "Fabien@yopmail.com"]}),
        );
        assert_eq!(
            (status, body),
            (
                200,
                json!({"status": "success", "message": "invitations sent"})
            )
        );
        let sent = world.outbox.sent();
        let recipients: Vec<&str> = sent.iter().map(|m| m.recipient.as_str()).collect();
        assert_eq!(
            recipients,
            [
                "fabien@yopmail.com",
                "gerald@yopmail.com",
                "Fabien@yopmail.com"
            ]
        );
        for message in &sent {
            assert_eq!(message.language, Language::En);
            assert_eq!(
                message.subject,
                "Video call in progress: user1@example.com is waiting for you to connect"
            );
            for part in [&message.text_body, &message.html_body] {
                for expected in ["ACME", "https://acme.com/my-room", "acme.com/my-room"] {
                    assert!(part.contains(expected), "{expected} missing from {part}");
                }
            }
            assert!(message.html_body.contains("https://acme.com/logo"));
            let raw = String::from_utf8_lossy(message.formatted()).to_string();
            let to: Vec<&str> = raw.lines().filter(|line| line.starts_with("To:")).collect();
            assert_eq!(to.len(), 1);
            assert!(to[0].contains(&message.recipient), "{raw}");
        }
    }

    #[test]
    fn language_from_accept_language_then_the_sender_then_the_default() {
        let world = World::new();
        world.grant(2, Role::Owner);
        world.grant(1, Role::Owner);
        let emails = json!({"emails": ["a@example.com"]});
        let language_of = |caller, headers: &[(&str, &str)]| {
            let before = world.outbox.sent().len();
            assert_eq!(
                world
                    .call(caller, Method::POST, ROOM, headers, emails.clone())
                    .0,
                200
            );
            world.outbox.sent()[before].language
        };
        assert_eq!(
            language_of(1, &[("accept-language", "de-DE,de;q=0.9")]),
            Language::De
        );
        assert_eq!(
            language_of(1, &[("accept-language", "es, nl;q=0.5")]),
            Language::Nl
        );
        assert_eq!(language_of(2, &[("accept-language", "es")]), Language::Fr);
        assert_eq!(language_of(2, &[]), Language::Fr);
        // Users always have a language; language_code is the last resort.
        assert_eq!(language(None, "", "nl-nl"), Language::Nl);
        assert_eq!(language(Some("es"), "xx", "de"), Language::De);
        assert_eq!(language(Some("es"), "xx", "xx"), Language::En);
    }

    #[test]
    fn smtp_failures_are_502_without_secrets() {
        let mut world = World::new();
        world.variables.set("email_host_password", "hunter2");
        world.grant(1, Role::Owner);
        world.outbox.fail_with(MailError::Refused {
            step: meet_mail::Step::RcptTo,
            code: 550,
            text: "mailbox unavailable".into(),
        });
        let (status, body) = world.post(1, json!({"emails": ["a@example.com", "b@example.com"]}));
        assert_eq!(status, 502);
        let detail = body["detail"].as_str().unwrap();
        assert!(
            detail.starts_with("2 of 2 invitations could not be sent: "),
            "{detail}"
        );
        assert!(detail.contains("550 mailbox unavailable"), "{detail}");
        assert!(!body.to_string().contains("hunter2"));

        world.outbox.fail_with(MailError::Connect {
            address: "192.0.2.25:25".into(),
            reason: "Permission denied (os error 2)".into(),
        });
        let (status, body) = world.post(1, json!({"emails": ["a@example.com"]}));
        assert_eq!(status, 502);
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .contains("set it to tcp://192.0.2.25:25"),
            "{body}"
        );
    }

    #[test]
    fn misconfigured_email_is_a_500_naming_the_variable() {
        let mut world = World::new();
        world.grant(1, Role::Owner);
        world.variables.set("email_host", "smtp.example.org");
        let (status, body) = world.post(1, json!({"emails": ["a@example.com"]}));
        assert_eq!(status, 500);
        assert!(
            body["detail"].as_str().unwrap().contains("`email_host`"),
            "{body}"
        );
        world.variables.set("email_host", "");
        let (status, body) = world.post(1, json!({"emails": ["a@example.com"]}));
        assert_eq!(status, 500);
        assert!(
            body["detail"].as_str().unwrap().contains("`email_host`"),
            "{body}"
        );
        assert!(world.outbox.sent().is_empty());
    }

    #[test]
    fn addresses_smtp_cannot_carry_are_refused_before_sending() {
        let world = World::new();
        world.grant(1, Role::Owner);
        let (status, body) = world.post(
            1,
            json!({"emails": ["a@example.com", "\"a b\"@example.com"]}),
        );
        assert_eq!(
            (status, body),
            (
                400,
                json!({"emails": {"1": ["Enter a valid email address."]}})
            )
        );
        assert!(world.outbox.sent().is_empty());
    }
}
