//! Start and stop recordings over HTTP (api.md §4, livekit.md §4): the real
//! egress component against the fake LiveKit, every error of the spec,
//! Egress faults, 50 concurrent starts, and a stale recording freed by the
//! ListEgress check.

use std::time::Duration;

use meet_e2e::livekit_server::{FakeLiveKit, Fault};
use meet_e2e::oidc_provider::OidcProvider;
use meet_e2e::TestApp;
use reqwest::Method;
use serde_json::{json, Value};

use crate::rooms::{rooms_app, Person, LIVEKIT_KEY, LIVEKIT_SECRET};

pub const NOT_PRIVILEGED: &str = "You must have privileges on room to perform this action.";

/// An app with recording enabled against a fresh fake LiveKit, an owner and
/// their room.
pub struct RecordingWorld {
    pub provider: OidcProvider,
    pub livekit: FakeLiveKit,
    pub app: TestApp,
    pub owner: Person,
    pub room: Value,
}

impl RecordingWorld {
    pub fn new(extra: &[(&str, &str)]) -> RecordingWorld {
        let livekit = FakeLiveKit::start(LIVEKIT_KEY, LIVEKIT_SECRET);
        let url = livekit.url();
        let mut variables: Vec<(&str, &str)> = vec![
            ("recording_enable", "true"),
            ("livekit_api_origin", url.as_str()),
            ("aws_s3_endpoint_url", "http://127.0.0.1:9000"),
            ("aws_s3_access_key_id", "minio-key"),
            ("aws_s3_secret_access_key", "minio-secret"),
            ("aws_s3_region_name", "eu-west-1"),
        ];
        variables.retain(|(name, _)| !extra.iter().any(|(other, _)| other == name));
        variables.extend_from_slice(extra);
        // The fake serves the Twirp API on its http URL.
        variables.push(("livekit_api_url", url.as_str()));
        let (provider, app) = rooms_app(&variables);
        let owner = Person::new(&provider, &app, "owner");
        let room = owner.create_room(&app, "Weekly sync", "public");
        RecordingWorld {
            provider,
            livekit,
            app,
            owner,
            room,
        }
    }

    pub fn room_id(&self) -> String {
        self.room["id"].as_str().unwrap().to_string()
    }

    pub fn start(&self, who: &Person, body: Value) -> (u16, Value) {
        let path = format!("/api/v1.0/rooms/{}/start-recording/", self.room_id());
        let response = who
            .request(&self.app, Method::POST, &path)
            .json(&body)
            .send()
            .unwrap();
        status_and_body(response)
    }

    pub fn stop(&self, who: &Person) -> (u16, Value) {
        let path = format!("/api/v1.0/rooms/{}/stop-recording/", self.room_id());
        let response = who.request(&self.app, Method::POST, &path).send().unwrap();
        status_and_body(response)
    }

    /// `(id, status, worker_id, mode)` of the room's recordings, oldest first.
    pub fn recordings(&self) -> Vec<(String, String, Option<String>, String)> {
        let db = self.app.db();
        let mut statement = db
            .prepare(
                "SELECT id, status, worker_id, mode FROM meet_recording WHERE room_id = ?1 \
                 ORDER BY created_at, rowid",
            )
            .unwrap();
        let found: Vec<_> = statement
            .query_map([self.room_id()], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        found
    }
}

pub fn status_and_body(response: reqwest::blocking::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[test]
fn a_screen_recording_starts_and_stops_with_the_egress_of_the_spec() {
    let world = RecordingWorld::new(&[]);
    let slug = world.room["slug"].as_str().unwrap().to_string();
    let (status, body) = world.start(&world.owner, json!({"mode": "screen_recording"}));
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body,
        json!({"message": format!("Recording successfully started for room {slug}")})
    );
    assert!(
        world.app.sql_count(
            "POST",
            &format!("/api/v1.0/rooms/{}/start-recording/", world.room_id())
        ) <= 4
    );

    let recordings = world.recordings();
    assert_eq!(recordings.len(), 1);
    let (id, status, worker, mode) = &recordings[0];
    assert_eq!(
        (status.as_str(), mode.as_str()),
        ("active", "screen_recording")
    );
    let calls = world.livekit.calls_to("Egress/StartRoomCompositeEgress");
    assert_eq!(calls.len(), 1);
    assert!(calls[0].authorized);
    assert_eq!(calls[0].grant["video"]["roomRecord"], true);
    let request = &calls[0].body;
    assert_eq!(request["room_name"], world.room_id().as_str());
    assert_eq!(request["layout"], "speaker-light");
    assert!(request.get("audio_only").is_none_or(|v| v == false));
    let output = &request["file_outputs"][0];
    assert_eq!(output["filepath"], format!("recordings/{id}.mp4"));
    assert_eq!(output["file_type"], "MP4");
    assert_eq!(
        output["s3"],
        json!({"access_key": "minio-key", "secret": "minio-secret", "region": "eu-west-1",
               "endpoint": "http://127.0.0.1:9000", "bucket": "meet-media-storage",
               "force_path_style": true})
    );
    let egress_id = worker.clone().unwrap();
    assert!(world.livekit.egress(&egress_id).is_some());
    // The owner holds the one owner access of the recording.
    let owners: i64 = world
        .app
        .db()
        .query_row(
            "SELECT count(*) FROM meet_recording_access WHERE recording_id = ?1 AND user_id = ?2 AND role = 'owner'",
            [id.as_str(), world.owner.id.as_str()],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(owners, 1);

    let (status, body) = world.stop(&world.owner);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"message": format!("Recording stopped for room {slug}.")})
    );
    let stop = world.livekit.calls_to("Egress/StopEgress");
    assert_eq!(stop[0].body["egress_id"], egress_id.as_str());
    assert_eq!(world.recordings()[0].1, "stopped");
    // Nothing active any more.
    let (status, body) = world.stop(&world.owner);
    assert_eq!(
        (status, body),
        (
            404,
            json!({"detail": "No active recording found for this room."})
        )
    );
}

#[test]
fn a_transcript_is_audio_only_ogg_and_an_administrator_may_start_it() {
    let world = RecordingWorld::new(&[]);
    let admin = Person::new(&world.provider, &world.app, "admin");
    world
        .owner
        .grant(&world.app, &world.room_id(), &admin, "administrator");
    let (status, body) = world.start(&admin, json!({"mode": "transcript"}));
    assert_eq!(status, 201, "{body}");
    let (id, _, _, mode) = world.recordings()[0].clone();
    assert_eq!(mode, "transcript");
    let request = &world.livekit.calls_to("Egress/StartRoomCompositeEgress")[0].body;
    assert_eq!(request["audio_only"], true);
    assert!(request.get("layout").is_none_or(|v| v == ""));
    assert_eq!(request["file_outputs"][0]["file_type"], "OGG");
    assert_eq!(
        request["file_outputs"][0]["filepath"],
        format!("recordings/{id}.ogg")
    );
}

#[test]
fn errors_come_in_the_order_of_the_spec() {
    let world = RecordingWorld::new(&[]);
    let anonymous = Person::anonymous();
    let member = Person::new(&world.provider, &world.app, "member");
    world
        .owner
        .grant(&world.app, &world.room_id(), &member, "member");
    let stranger = Person::new(&world.provider, &world.app, "stranger");
    let mode = json!({"mode": "screen_recording"});

    let (status, body) = world.start(&anonymous, mode.clone());
    assert_eq!(
        (status, body["detail"].clone()),
        (401, json!("Authentication credentials were not provided."))
    );
    for bad in [
        json!({}),
        json!({"mode": "film"}),
        json!({"mode": 3}),
        json!([1]),
    ] {
        let (status, body) = world.start(&world.owner, bad.clone());
        assert_eq!(
            (status, body),
            (400, json!({"detail": "Invalid request."})),
            "{bad}"
        );
    }
    // A bad body wins over an unknown room; the unknown room over privileges.
    let unknown = "/api/v1.0/rooms/00000000-0000-4000-8000-000000000000/start-recording/";
    let response = world
        .owner
        .request(&world.app, Method::POST, unknown)
        .json(&json!({}))
        .send()
        .unwrap();
    assert_eq!(
        status_and_body(response),
        (400, json!({"detail": "Invalid request."}))
    );
    let response = world
        .owner
        .request(&world.app, Method::POST, unknown)
        .json(&mode)
        .send()
        .unwrap();
    assert_eq!(
        status_and_body(response),
        (404, json!({"detail": "No Room matches the given query."}))
    );
    for who in [&member, &stranger] {
        assert_eq!(
            world.start(who, mode.clone()),
            (403, json!({"detail": NOT_PRIVILEGED}))
        );
        assert_eq!(world.stop(who), (403, json!({"detail": NOT_PRIVILEGED})));
    }
    // By slug too.
    let by_slug = format!(
        "/api/v1.0/rooms/{}/start-recording/",
        world.room["slug"].as_str().unwrap()
    );
    let response = world
        .owner
        .request(&world.app, Method::POST, &by_slug)
        .json(&mode)
        .send()
        .unwrap();
    assert_eq!(response.status(), 201);
    // A second start: the constraint, nothing created.
    let (status, body) = world.start(&world.owner, mode.clone());
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"__all__": ["Constraint \u{201c}unique_initiated_or_active_recording_per_room\u{201d} is violated."]})
    );
    assert_eq!(world.recordings().len(), 1);
    assert_eq!(
        world
            .livekit
            .calls_to("Egress/StartRoomCompositeEgress")
            .len(),
        1
    );
    // Method.
    let path = format!("/api/v1.0/rooms/{}/start-recording/", world.room_id());
    let response = world
        .owner
        .request(&world.app, Method::GET, &path)
        .send()
        .unwrap();
    assert_eq!(response.status(), 405);
}

#[test]
fn recording_disabled_is_a_403_after_authentication() {
    let world = RecordingWorld::new(&[("recording_enable", "false")]);
    let (status, body) = world.start(&Person::anonymous(), json!({"mode": "transcript"}));
    assert_eq!(status, 401, "{body}");
    let disabled = json!({"detail": "Access denied, recording is disabled."});
    assert_eq!(
        world.start(&world.owner, json!({})),
        (403, disabled.clone())
    );
    assert_eq!(world.stop(&world.owner), (403, disabled));
    assert!(world.livekit.calls().is_empty());
}

#[test]
fn egress_failures_leave_the_recording_failed_to_start_and_free_the_room() {
    let world = RecordingWorld::new(&[]);
    let slug = world.room["slug"].as_str().unwrap().to_string();
    let failed = json!({"error": format!("Recording failed to start for room {slug}")});
    let method = "Egress/StartRoomCompositeEgress";
    let faults = [
        Fault::twirp(503, "unavailable"),
        Fault::Reset,
        Fault::EmptyEgressId,
        Fault::Answer {
            status: 200,
            body: "not json".into(),
        },
    ];
    for fault in faults.iter() {
        world.livekit.fail_next(method, fault.clone());
        let (status, body) = world.start(&world.owner, json!({"mode": "screen_recording"}));
        assert_eq!((status, &body), (500, &failed), "{fault:?}");
    }
    let recordings = world.recordings();
    assert_eq!(recordings.len(), faults.len());
    assert!(recordings
        .iter()
        .all(|(_, status, worker, _)| status == "failed_to_start" && worker.is_none()));
    // The room is free again.
    assert_eq!(
        world.start(&world.owner, json!({"mode": "transcript"})).0,
        201
    );
}

#[test]
fn an_egress_that_does_not_answer_in_time_fails_the_start() {
    let world = RecordingWorld::new(&[]);
    world.livekit.fail_next(
        "Egress/StartRoomCompositeEgress",
        Fault::Delay(Duration::from_secs(12)),
    );
    let started = std::time::Instant::now();
    let (status, _) = world.start(&world.owner, json!({"mode": "screen_recording"}));
    assert_eq!(status, 500);
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(world.recordings()[0].1, "failed_to_start");
}

#[test]
fn stop_maps_the_egress_answer_as_the_spec_says() {
    let world = RecordingWorld::new(&[]);
    let slug = world.room["slug"].as_str().unwrap().to_string();
    let ok = json!({"message": format!("Recording stopped for room {slug}.")});
    let failed = json!({"error": format!("Recording failed to stop for room {slug}")});
    let cases: Vec<(Option<Fault>, u16, &str)> = vec![
        (None, 200, "stopped"),
        (
            Some(Fault::Answer {
                status: 200,
                body: r#"{"egress_id": "x", "status": "EGRESS_ABORTED"}"#.into(),
            }),
            200,
            "aborted",
        ),
        (
            Some(Fault::Answer {
                status: 200,
                body: r#"{"egress_id": "x", "status": "EGRESS_COMPLETE"}"#.into(),
            }),
            200,
            "failed_to_stop",
        ),
        (
            Some(Fault::Answer {
                status: 200,
                body: r#"{"egress_id": "x"}"#.into(),
            }),
            500,
            "failed_to_stop",
        ),
        (
            Some(Fault::twirp(412, "failed_precondition")),
            500,
            "failed_to_stop",
        ),
        (Some(Fault::Reset), 500, "failed_to_stop"),
    ];
    for (index, (fault, status, recording_status)) in cases.into_iter().enumerate() {
        assert_eq!(
            world
                .start(&world.owner, json!({"mode": "screen_recording"}))
                .0,
            201
        );
        if let Some(fault) = fault.clone() {
            world.livekit.fail_next("Egress/StopEgress", fault);
        }
        let (answered, body) = world.stop(&world.owner);
        assert_eq!(answered, status, "{fault:?}: {body}");
        assert_eq!(
            body,
            if status == 200 {
                ok.clone()
            } else {
                failed.clone()
            }
        );
        assert_eq!(world.recordings()[index].1, recording_status, "{fault:?}");
    }
}

#[test]
fn fifty_concurrent_starts_give_one_recording_and_one_egress() {
    let world = RecordingWorld::new(&[]);
    let path = format!("/api/v1.0/rooms/{}/start-recording/", world.room_id());
    let url = world.app.url(&path);
    let token = world.owner.token.clone().unwrap();
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..50)
            .map(|_| {
                let (url, token) = (url.clone(), token.clone());
                scope.spawn(move || {
                    reqwest::blocking::Client::new()
                        .post(url)
                        .bearer_auth(token)
                        .json(&json!({"mode": "screen_recording"}))
                        .send()
                        .unwrap()
                        .status()
                        .as_u16()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 400),
        "{statuses:?}"
    );
    assert_eq!(
        world
            .livekit
            .calls_to("Egress/StartRoomCompositeEgress")
            .len(),
        1
    );
    assert_eq!(world.livekit.egresses().len(), 1);
    assert_eq!(world.recordings().len(), 1);
}

#[test]
fn a_recording_whose_egress_ended_no_longer_holds_the_room() {
    let world = RecordingWorld::new(&[]);
    assert_eq!(
        world
            .start(&world.owner, json!({"mode": "screen_recording"}))
            .0,
        201
    );
    let (first, _, worker, _) = world.recordings()[0].clone();
    let worker = worker.unwrap();
    // Still running: the room stays taken, after asking LiveKit.
    assert_eq!(
        world
            .start(&world.owner, json!({"mode": "screen_recording"}))
            .0,
        400
    );
    let listed = world.livekit.calls_to("Egress/ListEgress");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].body["egress_id"], worker.as_str());
    // The egress ended without the webhook reaching us.
    world.livekit.set_egress_status(&worker, "EGRESS_COMPLETE");
    assert_eq!(
        world.start(&world.owner, json!({"mode": "transcript"})).0,
        201
    );
    let recordings = world.recordings();
    assert_eq!(recordings.len(), 2);
    assert_eq!(
        (recordings[0].0.as_str(), recordings[0].1.as_str()),
        (first.as_str(), "stopped")
    );
    assert_eq!(recordings[1].1, "active");
    // LiveKit forgot the egress altogether: the recording is aborted.
    world.livekit.fail_next(
        "Egress/ListEgress",
        Fault::Answer {
            status: 200,
            body: r#"{"items": []}"#.into(),
        },
    );
    assert_eq!(
        world.start(&world.owner, json!({"mode": "transcript"})).0,
        201
    );
    assert_eq!(world.recordings()[1].1, "aborted");
    // LiveKit unreachable: nothing is closed.
    world.livekit.fail_next("Egress/ListEgress", Fault::Reset);
    assert_eq!(
        world.start(&world.owner, json!({"mode": "transcript"})).0,
        400
    );
    assert_eq!(world.recordings()[2].1, "active");
}

/// `Authorization` of a webhook `body`, signed by LiveKit's Python SDK.
fn sign_webhook(body: &str) -> String {
    let python = meet_e2e::repo_root().join(".venv/bin/python");
    let script = r#"
import base64, hashlib, sys
from livekit import api
digest = base64.b64encode(hashlib.sha256(sys.argv[3].encode()).digest()).decode()
print(api.AccessToken(sys.argv[1], sys.argv[2]).with_sha256(digest).to_jwt())
"#;
    let output = std::process::Command::new(python)
        .args(["-c", script, LIVEKIT_KEY, LIVEKIT_SECRET, body])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

fn egress_webhook(
    world: &RecordingWorld,
    kind: &str,
    egress_id: &str,
    status: &str,
    started: bool,
) -> u16 {
    let mut info = json!({"egressId": egress_id, "roomName": world.room_id(), "status": status});
    if started {
        info["startedAt"] = json!("1700000000000000000");
    }
    let body = json!({"event": kind, "id": format!("EV_{kind}_{egress_id}_{status}"), "createdAt": "1700000000", "egressInfo": info}).to_string();
    reqwest::blocking::Client::new()
        .post(world.app.url("/api/v1.0/rooms/webhooks-livekit/"))
        .header("content-type", "application/webhook+json")
        .header("authorization", sign_webhook(&body))
        .body(body)
        .send()
        .unwrap()
        .status()
        .as_u16()
}

#[test]
fn egress_webhooks_drive_the_recording_forward_only_and_free_the_room() {
    let world = RecordingWorld::new(&[]);
    let start = |mode: &str| world.start(&world.owner, json!({ "mode": mode })).0;
    let latest = || world.recordings().last().cloned().unwrap();
    let cases = [
        ("egress_ended", "EGRESS_COMPLETE", true, "saved"),
        ("egress_updated", "EGRESS_ENDING", true, "stopped"),
        ("egress_ended", "EGRESS_LIMIT_REACHED", true, "saved"),
        ("egress_ended", "EGRESS_FAILED", false, "failed_to_start"),
        ("egress_ended", "EGRESS_FAILED", true, "aborted"),
        ("egress_ended", "EGRESS_ABORTED", true, "aborted"),
    ];
    for (kind, status, started, expected) in cases {
        assert_eq!(start("screen_recording"), 201);
        let (_, _, worker, _) = latest();
        let worker = worker.unwrap();
        assert_eq!(
            egress_webhook(&world, "egress_updated", &worker, "EGRESS_ACTIVE", true),
            200
        );
        assert_eq!(latest().1, "active");
        assert_eq!(egress_webhook(&world, kind, &worker, status, started), 200);
        assert_eq!(latest().1, expected, "{kind} {status} started={started}");
        // A late older event changes nothing.
        assert_eq!(
            egress_webhook(&world, "egress_started", &worker, "EGRESS_ACTIVE", true),
            200
        );
        assert_eq!(latest().1, expected, "late event after {status}");
    }
    // Every outcome freed the room.
    assert_eq!(start("transcript"), 201);
}
