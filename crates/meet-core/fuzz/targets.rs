//! The parsers that see untrusted input, each as a function of arbitrary
//! bytes that must return without panicking. Shared by the property tests
//! (`tests/fuzz.rs`, proptest) and the `meet-fuzz` bench command.

use std::time::{Duration, SystemTime};

use meet_core::auth::session::{check_csrf, request_cookie, session_key_hash};
use meet_core::auth::Credential;
use meet_core::body::parse_object;
use meet_core::http::{ApiRequest, Method};
use meet_core::ids::parse_uuid_like;
use meet_core::native::{migrated_database, FixedClock, OsRandom, ScriptedHttp, SqliteDatabase};
use meet_core::ports::{Database, Services};
use meet_core::rooms::slug::slugify;
use meet_core::rooms::store::RoomKey;
use meet_core::settings::StaticVariables;
use meet_core::throttle::{client_address, Rate};
use meet_livekit::{receive_webhook, LiveKitCredentials, WebhookEvent};

/// Text from arbitrary bytes, as a header or a path reaches us.
fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Two inputs from one: the bytes split at a position the first byte picks.
fn split(bytes: &[u8]) -> (&[u8], &[u8]) {
    let at = bytes
        .first()
        .map_or(0, |b| usize::from(*b) % (bytes.len().max(1)));
    bytes.split_at(at)
}

pub fn body_json(bytes: &[u8]) {
    for content_type in [
        "application/json",
        "multipart/form-data; boundary=x",
        "multipart/form-data",
        "application/x-www-form-urlencoded",
    ] {
        let request = ApiRequest::new(Method::POST, "/api/v1.0/rooms/")
            .with_header("content-type", content_type)
            .with_body(bytes.to_vec());
        let _ = parse_object(&request);
    }
}

pub fn cookies_and_csrf(bytes: &[u8]) {
    let (cookie, header) = split(bytes);
    let request = ApiRequest::new(Method::POST, "/api/v1.0/rooms/")
        .with_header("cookie", &text(cookie))
        .with_header("x-csrftoken", &text(header))
        .with_header("origin", &text(header))
        .with_header("host", "meet.example");
    let _ = request_cookie(&request, "sessionid");
    let token = request_cookie(&request, "csrftoken").unwrap_or_default();
    let _ = check_csrf(&request, &token, &[text(header)]);
    let _ = session_key_hash(&text(cookie));
}

pub fn authorization(bytes: &[u8]) {
    let request = ApiRequest::new(Method::GET, "/api/v1.0/users/me/")
        .with_header("authorization", &text(bytes));
    let _ = Credential::of(&request);
}

pub fn room_path(bytes: &[u8]) {
    let value = text(bytes);
    let _ = parse_uuid_like(&value);
    let _ = slugify(&value);
    let _ = RoomKey::from_path(&value);
}

pub fn throttle_inputs(bytes: &[u8]) {
    let (rate, forwarded) = split(bytes);
    let _ = Rate::parse("fuzz_rates", &text(rate));
    let request = ApiRequest::new(Method::POST, "/api/v1.0/rooms/creation-callback/")
        .with_header("x-forwarded-for", &text(forwarded))
        .with_header("spin-client-addr", &text(rate));
    for proxies in [0, 1, 2, u64::MAX] {
        let _ = client_address(&request, proxies);
    }
}

pub fn livekit_webhook(bytes: &[u8]) {
    let (token, body) = split(bytes);
    let credentials = LiveKitCredentials {
        api_key: "devkey".into(),
        api_secret: "a-livekit-secret-of-at-least-32-chars".into(),
    };
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_750_000_000);
    let _ = receive_webhook(body, Some(&text(token)), &credentials, now);
    let _ = WebhookEvent::parse(bytes);
}

/// The JSON endpoints with a logged-in caller, so that their input parsers
/// (rooms, users, resource accesses) see the body.
pub struct Endpoints {
    db: SqliteDatabase,
    clock: FixedClock,
    http: ScriptedHttp,
    variables: StaticVariables,
    user_id: String,
    room_id: String,
}

const USER: &str = "00000000-0000-4000-8000-000000000001";
const ROOM: &str = "00000000-0000-4000-8000-000000000010";

impl Endpoints {
    pub fn new() -> Endpoints {
        let db = migrated_database().expect("the migrations apply");
        let hash = session_key_hash("fuzz");
        db.execute_batch(&format!(
            "INSERT INTO meet_user (id, created_at, updated_at, sub) VALUES ('{USER}', 'x', 'x', 'fuzz');
             INSERT INTO meet_room (id, created_at, updated_at, name, slug) VALUES ('{ROOM}', 'x', 'x', 'fuzz', 'fuzz');
             INSERT INTO meet_resource_access (id, created_at, updated_at, resource_id, user_id, role)
               VALUES ('00000000-0000-4000-8000-000000000020', 'x', 'x', '{ROOM}', '{USER}', 'owner');
             INSERT INTO meet_session (key_hash, user_id, csrf_token, created_at, expires_at)
               VALUES ('{hash}', '{USER}', 'tok', '2025-01-01T00:00:00.000000Z', '2999-01-01T00:00:00.000000Z');"
        ))
        .expect("the fixture inserts");
        Endpoints {
            db,
            clock: FixedClock::new(time::macros::datetime!(2025-06-30 12:00 UTC)),
            http: ScriptedHttp::default(),
            variables: StaticVariables::new(&[
                ("livekit_api_key", "devkey"),
                (
                    "livekit_api_secret",
                    "a-livekit-secret-of-at-least-32-chars",
                ),
                ("livekit_api_url", "ws://127.0.0.1:7880"),
                ("resource_default_access_level", "public"),
                ("room_telephony_enabled", "false"),
                ("room_telephony_pin_length", "10"),
                ("room_telephony_pin_max_retries", "5"),
                ("csrf_trusted_origins", ""),
                ("allow_unregistered_rooms", "true"),
                ("room_creation_callback_cache_timeout", "600"),
            ]),
            user_id: USER.into(),
            room_id: ROOM.into(),
        }
    }

    fn services(&self) -> Services<'_> {
        Services {
            db: &self.db as &dyn Database,
            http: &self.http,
            clock: &self.clock,
            random: &OsRandom,
            variables: &self.variables,
        }
    }

    fn request(method: Method, path: &str, body: &[u8]) -> ApiRequest {
        ApiRequest::new(method, path)
            .with_header("content-type", "application/json")
            .with_header("cookie", "sessionid=fuzz; csrftoken=tok")
            .with_header("x-csrftoken", "tok")
            .with_header("host", "meet.example")
            .with_body(body.to_vec())
    }

    /// Every JSON endpoint once with `body` as its request body.
    pub fn run(&self, body: &[u8]) {
        let _ = self.statuses(body);
    }

    /// The status each endpoint answered `body` with (errors rendered).
    pub fn statuses(&self, body: &[u8]) -> Vec<u16> {
        let services = self.services();
        let room_path = format!("/api/v1.0/rooms/{}/", self.room_id);
        let user_path = format!("/api/v1.0/users/{}/", self.user_id);
        let status = |outcome: Result<meet_core::ApiResponse, meet_core::ApiError>| match outcome {
            Ok(response) => response.status,
            Err(error) => {
                if error.is_server_error() {
                    eprintln!("server error: {error}");
                }
                error.status()
            }
        };
        vec![
            status(meet_core::rooms::api::rooms(
                &Self::request(Method::POST, "/api/v1.0/rooms/", body),
                &services,
            )),
            status(meet_core::rooms::api::room(
                &Self::request(Method::PATCH, &room_path, body),
                &services,
                &self.room_id,
            )),
            status(meet_core::identity::api::user(
                &Self::request(Method::PATCH, &user_path, body),
                &services,
                &self.user_id,
            )),
            status(meet_core::accesses::api::accesses(
                &Self::request(Method::POST, "/api/v1.0/resource-accesses/", body),
                &services,
            )),
            status(meet_core::rooms::api::creation_callback(
                &Self::request(Method::POST, "/api/v1.0/rooms/creation-callback/", body),
                &services,
            )),
        ]
    }
}

impl Default for Endpoints {
    fn default() -> Self {
        Endpoints::new()
    }
}

/// A parser under test: it sees arbitrary bytes.
pub type Target = fn(&[u8]);

/// Every pure target, by name.
pub const TARGETS: [(&str, Target); 6] = [
    ("body", body_json),
    ("cookies_csrf", cookies_and_csrf),
    ("authorization", authorization),
    ("room_path", room_path),
    ("throttle", throttle_inputs),
    ("livekit_webhook", livekit_webhook),
];
