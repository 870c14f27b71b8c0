//! The recordings API over HTTP (api.md §6, recordings.md): list, retrieve,
//! delete by recording access; the storage hook's every case; owner
//! notifications by email (fake SMTP) and to the summary service (fake),
//! retried by the maintenance run; media-auth headers checked with
//! meet_s3's verifier and against botocore's own SigV4 signature; the
//! presigned download redirect, likewise; expiration.

use std::time::Duration;

use meet_e2e::smtp_server::SmtpServer;
use meet_e2e::summary_service::{Mode as SummaryMode, SummaryService};
use meet_e2e::TestApp;
use reqwest::Method;
use serde_json::{json, Value};

use crate::egress::{status_and_body, RecordingWorld};
use crate::rooms::Person;

const HOOK: &str = "/api/v1.0/recordings/storage-hook/";
const HOOK_TOKEN: &str = "storage-hook-token";
const SUMMARY_TOKEN: &str = "summary-token";
const MAINTENANCE_TOKEN: &str = "maintenance-token";
const S3_ENDPOINT: &str = "http://127.0.0.1:9000";
const WAIT: Duration = Duration::from_secs(10);

fn now_text(offset_seconds: i64) -> String {
    let at = chrono::Utc::now() + chrono::Duration::seconds(offset_seconds);
    at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

fn uuid(n: u32) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

/// Inserts a recording of `room` with `status`/`mode`, created
/// `age_seconds` ago, and accesses `(user id, role)`.
fn insert_recording(
    app: &TestApp,
    id: &str,
    room: &str,
    status: &str,
    mode: &str,
    age_seconds: i64,
    accesses: &[(&str, &str)],
) {
    let db = app.db();
    let created = now_text(-age_seconds);
    db.execute(
        "INSERT INTO meet_recording (id, created_at, updated_at, room_id, status, mode, worker_id) \
         VALUES (?1, ?2, ?2, ?3, ?4, ?5, ?6)",
        rusqlite::params![id, created, room, status, mode, format!("EG_{id}")],
    )
    .unwrap();
    for (index, (user, role)) in accesses.iter().enumerate() {
        db.execute(
            "INSERT INTO meet_recording_access (id, created_at, updated_at, recording_id, user_id, team, role) \
             VALUES (?1, ?2, ?2, ?3, ?4, '', ?5)",
            rusqlite::params![
                {
                    // A fresh id per access: recordings of one test may share a prefix.
                    let n: u128 = rand::random();
                    let hex = format!("{n:032x}");
                    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
                },
                now_text(-age_seconds + index as i64),
                id,
                user,
                role
            ],
        )
        .unwrap();
    }
}

fn recording_status(app: &TestApp, id: &str) -> String {
    app.db()
        .query_row(
            "SELECT status FROM meet_recording WHERE id = ?1",
            [id],
            |row| row.get(0),
        )
        .unwrap()
}

fn minio_event(bucket: &str, key: &str, content_type: &str) -> Value {
    json!({"EventName": "s3:ObjectCreated:Put", "Key": format!("{bucket}/{key}"), "Records": [{
        "eventName": "s3:ObjectCreated:Put",
        "s3": {"bucket": {"name": bucket}, "object": {"key": key, "size": 1024, "contentType": content_type}}
    }]})
}

fn hook(app: &TestApp, authorization: Option<&str>, body: &Value) -> (u16, Value) {
    let mut request = reqwest::blocking::Client::new()
        .post(app.url(HOOK))
        .json(body);
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    status_and_body(request.send().unwrap())
}

fn maintenance(app: &TestApp, token: Option<&str>) -> (u16, Value) {
    let mut request = reqwest::blocking::Client::new().post(app.url("/api/v1.0/maintenance/run/"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    status_and_body(request.send().unwrap())
}

fn smtp_variables(smtp: &SmtpServer) -> Vec<(String, String)> {
    vec![
        ("email_host".into(), smtp.ip()),
        ("email_port".into(), smtp.port().to_string()),
        (
            "email_outbound_host".into(),
            format!("tcp://{}:{}", smtp.ip(), smtp.port()),
        ),
        (
            "email_from".into(),
            "Meet <notifications@meet.example.org>".into(),
        ),
        ("email_brand_name".into(), "Visio".into()),
        ("email_timeout".into(), "2".into()),
    ]
}

/// A world whose storage hook is on, with its token.
fn hook_world(extra: &[(&str, &str)]) -> RecordingWorld {
    let mut variables = vec![
        ("recording_storage_event_enable", "true"),
        ("recording_storage_event_token", HOOK_TOKEN),
        ("maintenance_api_token", MAINTENANCE_TOKEN),
        (
            "screen_recording_base_url",
            "https://meet.example.org/recording",
        ),
    ];
    variables.retain(|(name, _)| !extra.iter().any(|(other, _)| other == name));
    variables.extend_from_slice(extra);
    RecordingWorld::new(&variables)
}

#[test]
fn recordings_are_seen_through_recording_accesses_only() {
    let world = RecordingWorld::new(&[("recording_expiration_days", "2")]);
    let app = &world.app;
    let member = Person::new(&world.provider, app, "member");
    let stranger = Person::new(&world.provider, app, "stranger");
    let room = world.room_id();
    let owner = world.owner.id.as_str();
    insert_recording(
        app,
        &uuid(1),
        &room,
        "saved",
        "screen_recording",
        3 * 86_400,
        &[(owner, "owner"), (member.id.as_str(), "member")],
    );
    insert_recording(
        app,
        &uuid(2),
        &room,
        "active",
        "transcript",
        60,
        &[(owner, "owner")],
    );
    insert_recording(
        app,
        &uuid(3),
        &room,
        "notification_succeeded",
        "transcript",
        30,
        &[(owner, "administrator")],
    );

    let list = |who: &Person, query: &str| {
        let response = who
            .request(app, Method::GET, &format!("/api/v1.0/recordings/{query}"))
            .send()
            .unwrap();
        status_and_body(response)
    };
    let (status, page) = list(&world.owner, "");
    assert_eq!(status, 200);
    assert_eq!(page["count"], 3);
    let ids: Vec<&str> = page["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [uuid(3), uuid(2), uuid(1)], "newest first");
    let (_, page) = list(&world.owner, "?page_size=2");
    assert_eq!(page["results"].as_array().unwrap().len(), 2);
    assert!(page["next"]
        .as_str()
        .unwrap()
        .ends_with("/api/v1.0/recordings/?page_size=2&page=2"));
    let (_, page) = list(&world.owner, "?page_size=nope");
    assert_eq!(page["results"].as_array().unwrap().len(), 3);
    assert_eq!(list(&member, "").1["count"], 1);
    assert_eq!(list(&stranger, "").1["count"], 0);
    assert_eq!(list(&Person::anonymous(), "").0, 401);

    let get = |who: &Person, id: &str| {
        status_and_body(
            who.request(app, Method::GET, &format!("/api/v1.0/recordings/{id}/"))
                .send()
                .unwrap(),
        )
    };
    let (status, first) = get(&world.owner, &uuid(1));
    assert_eq!(status, 200);
    assert_eq!(first["key"], format!("recordings/{}.mp4", uuid(1)));
    assert_eq!(first["mode"], "screen_recording");
    assert_eq!(first["status"], "saved");
    assert_eq!(first["is_expired"], true);
    assert_eq!(
        first["room"],
        json!({"id": room, "name": "Weekly sync", "slug": world.room["slug"], "access_level": "public"})
    );
    let created =
        chrono::DateTime::parse_from_rfc3339(first["created_at"].as_str().unwrap()).unwrap();
    let expired =
        chrono::DateTime::parse_from_rfc3339(first["expired_at"].as_str().unwrap()).unwrap();
    assert_eq!(expired - created, chrono::Duration::days(2));
    assert!(first["created_at"].as_str().unwrap().ends_with('Z'));
    let (_, second) = get(&world.owner, &uuid(2));
    assert_eq!(
        (
            second["key"].as_str().unwrap(),
            second["is_expired"].as_bool().unwrap()
        ),
        (format!("recordings/{}.ogg", uuid(2)).as_str(), false)
    );
    assert_eq!(
        get(&member, &uuid(1)),
        (
            403,
            json!({"detail": "You do not have permission to perform this action."})
        )
    );
    assert_eq!(
        get(&stranger, &uuid(1)),
        (
            404,
            json!({"detail": "No Recording matches the given query."})
        )
    );
    assert_eq!(get(&world.owner, "not-a-uuid").0, 404);
    assert_eq!(get(&Person::anonymous(), &uuid(1)).0, 401);

    let delete = |who: &Person, id: &str| {
        let response = who
            .request(app, Method::DELETE, &format!("/api/v1.0/recordings/{id}/"))
            .send()
            .unwrap();
        response.status().as_u16()
    };
    assert_eq!(delete(&stranger, &uuid(1)), 404);
    assert_eq!(delete(&member, &uuid(1)), 403);
    assert_eq!(delete(&world.owner, &uuid(2)), 403, "active is not final");
    assert_eq!(
        delete(&world.owner, &uuid(3)),
        403,
        "notification_succeeded is not final"
    );
    assert_eq!(delete(&world.owner, &uuid(1)), 204);
    assert_eq!(get(&world.owner, &uuid(1)).0, 404);
    let accesses: i64 = app
        .db()
        .query_row(
            "SELECT count(*) FROM meet_recording_access WHERE recording_id = ?1",
            [uuid(1)],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(accesses, 0);
}

#[test]
fn the_storage_hook_authenticates_parses_and_saves_as_the_spec_says() {
    let summary = SummaryService::start(SUMMARY_TOKEN);
    let (endpoint, origin) = (summary.endpoint(), summary.origin());
    let world = hook_world(&[
        ("summary_service_endpoint", endpoint.as_str()),
        ("summary_service_api_token", SUMMARY_TOKEN),
        ("summary_service_origin", origin.as_str()),
    ]);
    let app = &world.app;
    let bearer = format!("Bearer {HOOK_TOKEN}");
    let id = uuid(7);
    insert_recording(
        app,
        &id,
        &world.room_id(),
        "active",
        "transcript",
        10,
        &[(world.owner.id.as_str(), "owner")],
    );
    let good = minio_event(
        "meet-media-storage",
        &format!("recordings%2F{id}.ogg"),
        "audio/ogg",
    );

    let realm = |app: &TestApp, authorization: Option<&str>| {
        let mut request = reqwest::blocking::Client::new()
            .post(app.url(HOOK))
            .json(&good);
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let response = request.send().unwrap();
        assert_eq!(response.status(), 401);
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(realm(app, None), "Bearer realm='Storage event API'");
    assert_eq!(
        hook(app, None, &good),
        (401, json!({"detail": "Authorization header is required"}))
    );
    for bad in [
        "Bearer",
        "Basic x",
        "Bearer   x",
        "bearer storage-hook-token",
    ] {
        assert_eq!(
            hook(app, Some(bad), &good),
            (401, json!({"detail": "Invalid authorization header."})),
            "{bad}"
        );
    }
    assert_eq!(
        hook(app, Some("Bearer wrong"), &good),
        (401, json!({"detail": "Invalid token"}))
    );

    let invalid = |detail: &str| {
        (
            403u16,
            json!({ "detail": format!("Invalid request data: {detail}") }),
        )
    };
    assert_eq!(
        hook(app, Some(&bearer), &json!({})),
        invalid("Received empty data.")
    );
    assert_eq!(
        hook(app, Some(&bearer), &json!({"Records": []})),
        invalid("Missing or malformed key: list index out of range.")
    );
    assert_eq!(
        hook(
            app,
            Some(&bearer),
            &json!({"Records": [{"s3": {"bucket": {"name": "b"}}}]})
        ),
        invalid("Missing or malformed key: 'object'.")
    );
    let mut null_type = good.clone();
    null_type["Records"][0]["s3"]["object"]["contentType"] = Value::Null;
    assert_eq!(
        hook(app, Some(&bearer), &null_type),
        invalid("Missing essential data fields: filetype cannot be None")
    );
    let other_bucket = minio_event("other", &format!("recordings%2F{id}.ogg"), "audio/ogg");
    assert_eq!(
        hook(app, Some(&bearer), &other_bucket),
        (403, json!({"detail": "Invalid bucket specified"}))
    );
    let (status, body) = hook(
        app,
        Some(&bearer),
        &minio_event("meet-media-storage", "notes.txt", "text/plain"),
    );
    assert_eq!(status, 200);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("Ignore this file type, Invalid file type, expected {"),
        "{body}"
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .ends_with(",got 'text/plain'"),
        "{body}"
    );
    let raw_slash = minio_event(
        "meet-media-storage",
        &format!("recordings/{id}.ogg"),
        "audio/ogg",
    );
    assert_eq!(hook(app, Some(&bearer), &raw_slash).0, 500);
    let unknown = minio_event(
        "meet-media-storage",
        &format!("recordings%2F{}.ogg", uuid(99)),
        "audio/ogg",
    );
    assert_eq!(
        hook(app, Some(&bearer), &unknown),
        (404, json!({"detail": "No recording found for this event."}))
    );

    // Saved, notified once, and not saved twice.
    assert_eq!(
        hook(app, Some(&bearer), &good),
        (200, json!({"message": "Event processed."}))
    );
    assert!(
        app.sql_count("POST", HOOK) <= 4,
        "{}",
        app.sql_count("POST", HOOK)
    );
    assert_eq!(recording_status(app, &id), "notification_succeeded");
    let requests = summary.wait_for_requests(1, WAIT);
    assert_eq!(requests.len(), 1);
    assert!(requests[0].authorized);
    assert_eq!(requests[0].header("content-type"), Some("application/json"));
    assert_eq!(
        requests[0].json().unwrap(),
        json!({"filename": format!("recordings/{id}.ogg"), "email": "owner@example.org", "sub": "sub-owner"})
    );
    let again = hook(app, Some(&bearer), &good);
    assert_eq!(
        again,
        (
            403,
            json!({"detail": format!(
                "Recording with ID {id} cannot be saved because it is either, in an error state or has already been saved."
            )})
        )
    );
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(summary.requests().len(), 1);
}

#[test]
fn the_storage_hook_can_be_disabled_or_open() {
    let world = RecordingWorld::new(&[("recording_storage_event_token", HOOK_TOKEN)]);
    let event = minio_event(
        "meet-media-storage",
        &format!("{}.mp4", uuid(1)),
        "video/mp4",
    );
    assert_eq!(
        hook(&world.app, Some(&format!("Bearer {HOOK_TOKEN}")), &event),
        (
            403,
            json!({"detail": "Access denied, storage event is disabled."})
        )
    );
    let unconfigured = RecordingWorld::new(&[("recording_storage_event_enable", "true")]);
    assert_eq!(
        hook(&unconfigured.app, Some("Bearer x"), &event),
        (
            401,
            json!({"detail": "Authentication is enabled but token is not configured."})
        )
    );
    let open = RecordingWorld::new(&[
        ("recording_storage_event_enable", "true"),
        ("recording_enable_storage_event_auth", "false"),
    ]);
    assert_eq!(
        hook(&open.app, None, &event),
        (404, json!({"detail": "No recording found for this event."}))
    );
}

#[test]
fn a_summary_service_down_is_retried_by_the_maintenance_run_exactly_once() {
    let summary = SummaryService::start(SUMMARY_TOKEN);
    let (endpoint, origin) = (summary.endpoint(), summary.origin());
    let world = hook_world(&[
        ("summary_service_endpoint", endpoint.as_str()),
        ("summary_service_api_token", SUMMARY_TOKEN),
        ("summary_service_origin", origin.as_str()),
    ]);
    let app = &world.app;
    let bearer = format!("Bearer {HOOK_TOKEN}");
    let id = uuid(8);
    insert_recording(
        app,
        &id,
        &world.room_id(),
        "stopped",
        "transcript",
        10,
        &[(world.owner.id.as_str(), "owner")],
    );
    summary.set_mode(SummaryMode::Unavailable);
    let event = minio_event(
        "meet-media-storage",
        &format!("recordings%2F{id}.ogg"),
        "audio/ogg",
    );
    assert_eq!(
        hook(app, Some(&bearer), &event),
        (200, json!({"message": "Event processed."}))
    );
    assert_eq!(recording_status(app, &id), "saved");
    summary.set_mode(SummaryMode::DropConnection);
    // Not due yet: nothing is attempted.
    let (status, body) = maintenance(app, Some(MAINTENANCE_TOKEN));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["deliveries"]["attempted"], 0);
    let due = || {
        app.db()
            .execute("UPDATE meet_recording_delivery SET next_attempt_at = '2000-01-01T00:00:00.000000Z'", [])
            .unwrap();
    };
    due();
    let (_, body) = maintenance(app, Some(MAINTENANCE_TOKEN));
    assert_eq!(
        body["deliveries"],
        json!({"attempted": 1, "delivered": 0, "retrying": 1, "abandoned": 0})
    );
    assert_eq!(recording_status(app, &id), "saved");
    let (attempts, next): (i64, String) = app
        .db()
        .query_row(
            "SELECT attempts, next_attempt_at FROM meet_recording_delivery",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(attempts, 2);
    assert!(
        next > now_text(60) && next < now_text(200),
        "second retry about 2 minutes later: {next}"
    );
    summary.set_mode(SummaryMode::Up);
    due();
    let (_, body) = maintenance(app, Some(MAINTENANCE_TOKEN));
    assert_eq!(body["deliveries"]["delivered"], 1);
    assert_eq!(recording_status(app, &id), "notification_succeeded");
    due();
    let (_, body) = maintenance(app, Some(MAINTENANCE_TOKEN));
    assert_eq!(body["deliveries"]["attempted"], 0);
    let delivered: Vec<_> = summary
        .requests()
        .into_iter()
        .filter(|r| r.mode == SummaryMode::Up)
        .collect();
    assert_eq!(delivered.len(), 1, "delivered exactly once");
}

#[test]
fn the_maintenance_run_needs_its_token_and_purges_expired_rows() {
    let world = RecordingWorld::new(&[]);
    assert_eq!(
        maintenance(&world.app, Some("x")).0,
        403,
        "no token configured"
    );
    let world = hook_world(&[]);
    let app = &world.app;
    assert_eq!(maintenance(app, None).0, 401);
    assert_eq!(maintenance(app, Some("wrong")).0, 401);
    app.db()
        .execute(
            "INSERT INTO meet_cache (key, value, expires_at) VALUES ('old', 1, '2000-01-01T00:00:00.000000Z'), ('new', 1, '2999-01-01T00:00:00.000000Z')",
            [],
        )
        .unwrap();
    let (status, body) = maintenance(app, Some(MAINTENANCE_TOKEN));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["purged"]["meet_cache"], 1);
    assert!(body["purged"]["meet_session"].is_number());
    let left: Vec<String> = {
        let db = app.db();
        let mut statement = db.prepare("SELECT key FROM meet_cache").unwrap();
        let keys: Vec<String> = statement
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        keys
    };
    assert_eq!(left, ["new"]);
    let response = reqwest::blocking::Client::new()
        .get(app.url("/api/v1.0/maintenance/run/"))
        .bearer_auth(MAINTENANCE_TOKEN)
        .send()
        .unwrap();
    assert_eq!(response.status(), 405);
}

#[test]
fn every_owner_of_a_saved_screen_recording_gets_an_email_in_their_language() {
    let smtp = SmtpServer::start();
    let variables = smtp_variables(&smtp);
    let mut extra: Vec<(&str, &str)> = variables
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    extra.push(("recording_expiration_days", "7"));
    let world = hook_world(&extra);
    let app = &world.app;
    let second = Person::new(&world.provider, app, "second");
    app.db()
        .execute(
            "UPDATE meet_user SET language = 'fr-fr', timezone = 'Europe/Paris' WHERE id = ?1",
            [&second.id],
        )
        .unwrap();
    let id = uuid(9);
    insert_recording(
        app,
        &id,
        &world.room_id(),
        "active",
        "screen_recording",
        10,
        &[
            (world.owner.id.as_str(), "owner"),
            (second.id.as_str(), "owner"),
        ],
    );
    let event = minio_event(
        "meet-media-storage",
        &format!("recordings%2F{id}.mp4"),
        "video/mp4",
    );
    assert_eq!(
        hook(app, Some(&format!("Bearer {HOOK_TOKEN}")), &event),
        (200, json!({"message": "Event processed."}))
    );
    let messages = smtp.wait_for_messages(2, WAIT);
    assert_eq!(messages.len(), 2, "{:?}", app.logs());
    let mut recipients: Vec<String> = messages.iter().flat_map(|m| m.recipients.clone()).collect();
    recipients.sort();
    assert_eq!(recipients, ["owner@example.org", "second@example.org"]);
    let french = messages
        .iter()
        .find(|m| m.recipients == ["second@example.org"])
        .unwrap();
    assert_eq!(
        french.subject().as_deref(),
        Some("Votre enregistrement est prêt")
    );
    assert!(french
        .text_body()
        .unwrap()
        .contains(&format!("https://meet.example.org/recording/{id}")));
    assert_eq!(recording_status(app, &id), "notification_succeeded");
}

#[test]
fn an_smtp_refusal_saves_the_recording_and_only_the_failed_email_is_retried() {
    let smtp = SmtpServer::start();
    let variables = smtp_variables(&smtp);
    let extra: Vec<(&str, &str)> = variables
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let world = hook_world(&extra);
    let app = &world.app;
    let second = Person::new(&world.provider, app, "second");
    let id = uuid(10);
    insert_recording(
        app,
        &id,
        &world.room_id(),
        "active",
        "screen_recording",
        10,
        &[
            (world.owner.id.as_str(), "owner"),
            (second.id.as_str(), "owner"),
        ],
    );
    smtp.refuse_recipient("second@example.org", 450);
    let event = minio_event(
        "meet-media-storage",
        &format!("recordings%2F{id}.mp4"),
        "video/mp4",
    );
    assert_eq!(
        hook(app, Some(&format!("Bearer {HOOK_TOKEN}")), &event),
        (200, json!({"message": "Event processed."}))
    );
    assert_eq!(recording_status(app, &id), "saved");
    assert_eq!(smtp.wait_for_messages(1, WAIT).len(), 1);
    let last_error: Option<String> = app
        .db()
        .query_row(
            "SELECT last_error FROM meet_recording_delivery WHERE status = 'pending'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(last_error.unwrap().contains("450"));
    // The address is fixed; the delivery comes due; the run sends it alone.
    app.db()
        .execute(
            "UPDATE meet_recording_delivery SET next_attempt_at = '2000-01-01T00:00:00.000000Z', \
             payload = json_set(payload, '$.email', 'fixed@example.org') WHERE status = 'pending'",
            [],
        )
        .unwrap();
    let (status, body) = maintenance(app, Some(MAINTENANCE_TOKEN));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["deliveries"]["delivered"], 1);
    let messages = smtp.wait_for_messages(2, WAIT);
    let recipients: Vec<String> = messages.iter().flat_map(|m| m.recipients.clone()).collect();
    assert_eq!(recipients, ["owner@example.org", "fixed@example.org"]);
    assert_eq!(recording_status(app, &id), "notification_succeeded");
}

/// The test's S3 settings, as the `RecordingWorld` configures the components.
const S3_BUCKET: &str = "meet-media-storage";
const S3_REGION: &str = "eu-west-1";
const S3_ACCESS_KEY: &str = "minio-key";
const S3_SECRET_KEY: &str = "minio-secret";

/// Signs `GET <url>` at `amz_date` with AWS's own botocore, independently of
/// meet_s3: `mode` "header" gives the headers of `SigV4Auth` (given the
/// empty-payload hash, as media-auth returns it) and of `S3SigV4Auth` (which
/// hashes the payload itself), "query" the URL `S3SigV4QueryAuth` presigns for
/// 60 seconds. botocore reads the clock, so the script pins it to `amz_date`.
fn sign_with_botocore(mode: &str, url: &str, amz_date: &str) -> Value {
    let python = meet_e2e::repo_root().join(".venv/bin/python");
    let script = r#"
import datetime, json, sys
import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
mode, url, amz_date, access_key, secret_key, region = sys.argv[1:7]
at = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ")
botocore.auth.get_current_datetime = lambda remove_tzinfo=True: at
credentials = Credentials(access_key, secret_key)
if mode == "header":
    out = {}
    for name, signer in [("sigv4", botocore.auth.SigV4Auth), ("s3", botocore.auth.S3SigV4Auth)]:
        request = AWSRequest(method="GET", url=url, headers={
            "X-Amz-Date": amz_date,
            "X-Amz-Content-SHA256": botocore.auth.EMPTY_SHA256_HASH})
        signer(credentials, "s3", region).add_auth(request)
        out[name] = {k.lower(): request.headers[k]
                     for k in ["Authorization", "X-Amz-Date", "X-Amz-Content-SHA256"]}
    print(json.dumps(out))
else:
    request = AWSRequest(method="GET", url=url)
    botocore.auth.S3SigV4QueryAuth(credentials, "s3", region, expires=60).add_auth(request)
    print(json.dumps({"url": request.url}))
"#;
    let output = std::process::Command::new(python)
        .args([
            "-c",
            script,
            mode,
            url,
            amz_date,
            S3_ACCESS_KEY,
            S3_SECRET_KEY,
            S3_REGION,
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "botocore failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The query parameters of `url`, decoded, in a map (their order is free).
fn query_map(url: &url::Url) -> std::collections::BTreeMap<String, String> {
    url.query_pairs()
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect()
}

#[test]
fn media_auth_signs_the_object_for_nginx_and_downloads_redirect_to_a_presigned_url() {
    let world = RecordingWorld::new(&[]);
    let app = &world.app;
    let member = Person::new(&world.provider, app, "viewer");
    let room = world.room_id();
    let owner = world.owner.id.as_str();
    insert_recording(
        app,
        &uuid(1),
        &room,
        "saved",
        "screen_recording",
        10,
        &[(owner, "owner"), (member.id.as_str(), "member")],
    );
    insert_recording(
        app,
        &uuid(2),
        &room,
        "active",
        "transcript",
        10,
        &[(owner, "owner")],
    );
    let bucket = meet_s3::Bucket::new(
        S3_ENDPOINT,
        S3_BUCKET,
        S3_REGION,
        meet_s3::Credentials::new(S3_ACCESS_KEY, S3_SECRET_KEY),
    )
    .unwrap();

    let auth = |who: &Person, original: Option<&str>| {
        let mut request = who.request(app, Method::GET, "/api/v1.0/recordings/media-auth/");
        if let Some(url) = original {
            request = request.header("x-original-url", url);
        }
        request.send().unwrap()
    };
    let url = |path: &str| format!("https://meet.example.org{path}");
    let key = format!("recordings/{}.mp4", uuid(1));
    let response = auth(&world.owner, Some(&url(&format!("/media/{key}"))));
    assert_eq!(response.status(), 200);
    let header = |name: &str| response.headers()[name].to_str().unwrap().to_string();
    let (authorization, amz_date, sha) = (
        header("authorization"),
        header("x-amz-date"),
        header("x-amz-content-sha256"),
    );
    assert!(
        authorization.starts_with("AWS4-HMAC-SHA256 Credential=minio-key/"),
        "{authorization}"
    );
    assert!(authorization.contains("/eu-west-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature="));
    assert_eq!(
        sha,
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(response.text().unwrap(), "\"authorized\"");
    bucket
        .verify(
            "GET",
            &bucket.object_path(&key),
            &[
                ("host", "127.0.0.1:9000"),
                ("authorization", authorization.as_str()),
                ("x-amz-date", amz_date.as_str()),
                ("x-amz-content-sha256", sha.as_str()),
            ],
            time::OffsetDateTime::now_utc(),
        )
        .expect("nginx's request verifies");
    // The same request signed by botocore, from the URL nginx fetches
    // (path-style, built here from the settings, not from meet_s3).
    let object_url = format!("{S3_ENDPOINT}/{S3_BUCKET}/{key}");
    let expected = sign_with_botocore("header", &object_url, &amz_date);
    for signer in ["sigv4", "s3"] {
        assert_eq!(
            json!({
                "authorization": authorization,
                "x-amz-date": amz_date,
                "x-amz-content-sha256": sha,
            }),
            expected[signer],
            "media-auth headers differ from botocore's {signer} signer"
        );
    }

    let forbidden = json!({"detail": "You do not have permission to perform this action."});
    assert_eq!(
        status_and_body(auth(&world.owner, None)),
        (403, forbidden.clone())
    );
    assert_eq!(
        status_and_body(auth(&world.owner, Some(&url("/media/other/x.mp4")))),
        (403, forbidden.clone())
    );
    assert_eq!(
        status_and_body(auth(
            &world.owner,
            Some(&url(&format!("/media/recordings/{}.avi", uuid(1))))
        )),
        (400, json!({"detail": "Unsupported extension."}))
    );
    assert_eq!(
        status_and_body(auth(
            &world.owner,
            Some(&url(&format!("/media/recordings/{}.mp4", uuid(5))))
        )),
        (404, json!({"detail": "No recording found for this event."}))
    );
    assert_eq!(
        status_and_body(auth(
            &world.owner,
            Some(&url(&format!("/media/recordings/{}.ogg", uuid(1))))
        )),
        (
            404,
            json!({"detail": "No recording found with this extension."})
        )
    );
    assert_eq!(
        status_and_body(auth(&member, Some(&url(&format!("/media/{key}"))))),
        (403, forbidden.clone())
    );
    assert_eq!(
        status_and_body(auth(
            &world.owner,
            Some(&url(&format!("/media/recordings/{}.ogg", uuid(2))))
        )),
        (403, forbidden.clone()),
        "not saved yet"
    );
    assert_eq!(
        auth(&Person::anonymous(), Some(&url(&format!("/media/{key}")))).status(),
        401
    );

    // Without nginx: the download answers a redirect to S3, valid 60 s.
    let no_redirects = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = no_redirects
        .get(app.url(&format!("/media/{key}")))
        .bearer_auth(world.owner.token.as_deref().unwrap())
        .send()
        .unwrap();
    assert_eq!(response.status(), 302);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let presigned = url::Url::parse(&location).unwrap();
    assert_eq!(presigned.host_str(), Some("127.0.0.1"));
    assert!(location.contains("X-Amz-Expires=60"), "{location}");
    let path_and_query = format!("{}?{}", presigned.path(), presigned.query().unwrap());
    bucket
        .verify(
            "GET",
            &path_and_query,
            &[("host", "127.0.0.1:9000")],
            time::OffsetDateTime::now_utc(),
        )
        .expect("the presigned URL verifies");
    bucket
        .verify(
            "GET",
            &path_and_query,
            &[("host", "127.0.0.1:9000")],
            time::OffsetDateTime::now_utc() + time::Duration::seconds(120),
        )
        .expect_err("and expires");
    // botocore presigns the same object at the same X-Amz-Date for 60 s: the
    // same URL, every parameter and the signature equal.
    let ours = query_map(&presigned);
    let amz_date = ours.get("X-Amz-Date").expect("an X-Amz-Date").clone();
    let expected = sign_with_botocore("query", &object_url, &amz_date);
    let expected = url::Url::parse(expected["url"].as_str().unwrap()).unwrap();
    assert_eq!(
        (presigned.scheme(), presigned.host_str(), presigned.port()),
        (expected.scheme(), expected.host_str(), expected.port())
    );
    assert_eq!(presigned.path(), expected.path());
    let theirs = query_map(&expected);
    assert_eq!(ours.get("X-Amz-Signature"), theirs.get("X-Amz-Signature"));
    assert_eq!(ours, theirs, "{location}");
    let download = |who: &Person, path: &str| {
        who.request(app, Method::GET, path)
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(download(&member, &format!("/media/{key}")), 403);
    assert_eq!(
        download(&Person::anonymous(), &format!("/media/{key}")),
        401
    );
    assert_eq!(
        download(&world.owner, &format!("/media/recordings/{}.mp4", uuid(5))),
        404
    );
    assert_eq!(download(&world.owner, "/media/nothing-here"), 404);
}
