//! A fake LiveKit server API on loopback (spec/livekit.md §3–4): Twirp over
//! HTTP/1.1 with JSON bodies, for `RoomService` (ListRooms, SendData,
//! UpdateParticipant, RemoveParticipant), `Egress` (StartRoomCompositeEgress,
//! StopEgress, ListEgress) and `SIP` (List/Create/DeleteSIPDispatchRule).
//!
//! It checks each bearer token like LiveKit does (HS256 with the API
//! secret, issuer = API key, time claims, the grant the method needs, the
//! token's room for room-admin calls) and answers `401 unauthenticated`
//! otherwise; records every call; keeps a little state (running rooms,
//! egresses, dispatch rules); and lets tests inject faults per method.
//! Answers use proto field names, 64-bit integers as strings and enum names,
//! as LiveKit's Twirp JSON does.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use jwt_compact::alg::{Hs256, Hs256Key};
use jwt_compact::{AlgorithmExt, UntrustedToken};
use serde_json::{json, Map, Value};

/// How long a connection may stay silent before the server gives up on it.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest body accepted.
const MAX_BODY_BYTES: usize = 4 << 20;
/// Leeway on the token's time claims.
const LEEWAY_SECONDS: i64 = 60;

/// Something to do instead of (or before) the normal answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer a Twirp error `{"code", "msg"}` with this HTTP status.
    Twirp {
        status: u16,
        code: String,
        msg: String,
    },
    /// Wait this long, then answer normally (for client timeouts).
    Delay(Duration),
    /// Read the request, then close the connection without answering.
    Reset,
    /// `StartRoomCompositeEgress` answers an `EgressInfo` with an empty
    /// `egress_id` (and starts nothing).
    EmptyEgressId,
    /// Answer exactly this status and body (no state change).
    Answer { status: u16, body: String },
}

impl Fault {
    /// A Twirp error with this status and code.
    pub fn twirp(status: u16, code: &str) -> Fault {
        Fault::Twirp {
            status,
            code: code.to_string(),
            msg: format!("injected {code}"),
        }
    }
}

/// One call as the server received it.
#[derive(Debug, Clone)]
pub struct Call {
    /// `<Service>/<Method>`, e.g. `RoomService/SendData` (for any other path,
    /// the path itself).
    pub method: String,
    /// The request body as JSON (`Value::Null` if it is not JSON).
    pub body: Value,
    /// The token's `video` and `sip` grants as sent (`{}` without a valid
    /// token).
    pub grant: Value,
    /// Whether the token verified and carried the grant the method needs.
    pub authorized: bool,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    /// Whether the body came chunked.
    pub chunked: bool,
    /// The fault applied to this call, if any.
    pub fault: Option<Fault>,
}

impl Call {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The decoded `data` field of a `SendData` call.
    pub fn data(&self) -> Option<Vec<u8>> {
        let text = self.body.get("data")?.as_str()?;
        base64::engine::general_purpose::STANDARD.decode(text).ok()
    }
}

#[derive(Debug, Clone)]
struct Egress {
    info: Map<String, Value>,
}

#[derive(Default)]
struct State {
    calls: Vec<Call>,
    running_rooms: BTreeSet<String>,
    egresses: BTreeMap<String, Egress>,
    dispatch_rules: BTreeMap<String, Value>,
    next_faults: HashMap<String, VecDeque<Fault>>,
    standing_faults: HashMap<String, Fault>,
    counter: u64,
}

struct Shared {
    api_key: String,
    api_secret: String,
    state: Mutex<State>,
    arrived: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A running fake LiveKit; its threads end with the test process.
pub struct FakeLiveKit {
    port: u16,
    shared: Arc<Shared>,
}

impl FakeLiveKit {
    /// Starts the server, accepting tokens issued by `api_key` and signed
    /// with `api_secret`. No room is running.
    pub fn start(api_key: &str, api_secret: &str) -> FakeLiveKit {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = listener.local_addr().expect("local address").port();
        let shared = Arc::new(Shared {
            api_key: api_key.to_string(),
            api_secret: api_secret.to_string(),
            state: Mutex::new(State::default()),
            arrived: Condvar::new(),
        });
        let accepting = shared.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let shared = accepting.clone();
                std::thread::spawn(move || serve_connection(stream, &shared));
            }
        });
        FakeLiveKit { port, shared }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>`: the server API base, and the origin for
    /// `allowed_outbound_hosts`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `ws://127.0.0.1:<port>`, as `livekit_api_url` is usually written.
    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    /// Every call received so far, oldest first.
    pub fn calls(&self) -> Vec<Call> {
        self.shared.lock().calls.clone()
    }

    /// The calls to `method` (`"RoomService/SendData"`, …), oldest first.
    pub fn calls_to(&self, method: &str) -> Vec<Call> {
        self.shared
            .lock()
            .calls
            .iter()
            .filter(|call| call.method == method)
            .cloned()
            .collect()
    }

    /// Waits until at least `count` calls to `method` arrived (or `timeout`
    /// passed) and returns them.
    pub fn wait_for_calls(&self, method: &str, count: usize, timeout: Duration) -> Vec<Call> {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.lock();
        loop {
            let matching: Vec<Call> = state
                .calls
                .iter()
                .filter(|call| call.method == method)
                .cloned()
                .collect();
            let left = deadline.saturating_duration_since(Instant::now());
            if matching.len() >= count || left.is_zero() {
                return matching;
            }
            state = match self.shared.arrived.wait_timeout(state, left) {
                Ok((state, _)) => state,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }

    /// Forgets the recorded calls (state and faults stay).
    pub fn clear_calls(&self) {
        self.shared.lock().calls.clear();
    }

    /// Whether LiveKit reports room `name` (someone connected to it).
    pub fn set_room_running(&self, name: &str, running: bool) {
        let mut state = self.shared.lock();
        if running {
            state.running_rooms.insert(name.to_string());
        } else {
            state.running_rooms.remove(name);
        }
    }

    /// Applies `fault` to the next call to `method` only (faults queue up).
    pub fn fail_next(&self, method: &str, fault: Fault) {
        self.shared
            .lock()
            .next_faults
            .entry(method.to_string())
            .or_default()
            .push_back(fault);
    }

    /// Applies `fault` to every call to `method` until [`clear_faults`].
    ///
    /// [`clear_faults`]: FakeLiveKit::clear_faults
    pub fn fail_always(&self, method: &str, fault: Fault) {
        self.shared
            .lock()
            .standing_faults
            .insert(method.to_string(), fault);
    }

    pub fn clear_faults(&self) {
        let mut state = self.shared.lock();
        state.next_faults.clear();
        state.standing_faults.clear();
    }

    /// Sets an egress's status (`"EGRESS_ACTIVE"`, `"EGRESS_ABORTED"`, …),
    /// as if the worker had moved on. `StopEgress` answers `EGRESS_ENDING`
    /// for a running egress, and `failed_precondition` for one that ended.
    pub fn set_egress_status(&self, egress_id: &str, status: &str) {
        let mut state = self.shared.lock();
        if let Some(egress) = state.egresses.get_mut(egress_id) {
            egress.info.insert("status".into(), json!(status));
            egress
                .info
                .insert("updated_at".into(), json!(now_nanos().to_string()));
        }
    }

    /// The egress as `ListEgress` would answer it.
    pub fn egress(&self, egress_id: &str) -> Option<Value> {
        self.shared
            .lock()
            .egresses
            .get(egress_id)
            .map(|egress| Value::Object(egress.info.clone()))
    }

    /// Every egress started, by id.
    pub fn egresses(&self) -> Vec<Value> {
        self.shared
            .lock()
            .egresses
            .values()
            .map(|egress| Value::Object(egress.info.clone()))
            .collect()
    }

    /// The dispatch rules currently defined (`SIPDispatchRuleInfo`s).
    pub fn dispatch_rules(&self) -> Vec<Value> {
        self.shared
            .lock()
            .dispatch_rules
            .values()
            .cloned()
            .collect()
    }
}

/// The grant each method needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Needs {
    RoomList,
    /// `roomAdmin` for the request's `room`.
    RoomAdmin,
    RoomRecord,
    SipAdmin,
}

fn needs(method: &str) -> Option<Needs> {
    Some(match method {
        "RoomService/ListRooms" => Needs::RoomList,
        "RoomService/SendData"
        | "RoomService/UpdateParticipant"
        | "RoomService/RemoveParticipant" => Needs::RoomAdmin,
        "Egress/StartRoomCompositeEgress" | "Egress/StopEgress" | "Egress/ListEgress" => {
            Needs::RoomRecord
        }
        "SIP/ListSIPDispatchRule" | "SIP/CreateSIPDispatchRule" | "SIP/DeleteSIPDispatchRule" => {
            Needs::SipAdmin
        }
        _ => return None,
    })
}

/// One request as read off the connection.
struct RawRequest {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    chunked: bool,
}

impl RawRequest {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

type Answer = (u16, Value);

fn twirp_error(status: u16, code: &str, msg: &str) -> Answer {
    (status, json!({"code": code, "msg": msg}))
}

/// Serves requests on one connection until the client closes it, asks to
/// close, or a fault drops it.
fn serve_connection(stream: TcpStream, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        let request = match read_request(&mut reader, &mut writer) {
            Ok(Some(request)) => request,
            Ok(None) => return,
            Err(_) => {
                let _ = write_answer(
                    &mut writer,
                    400,
                    &json!({"code": "malformed", "msg": "bad HTTP request"}),
                    true,
                );
                return;
            }
        };
        let close = request
            .header("connection")
            .is_some_and(|value| value.eq_ignore_ascii_case("close"));
        let Some((status, body)) = handle(&request, shared) else {
            // A reset: drop the connection without a word.
            return;
        };
        if write_answer(&mut writer, status, &body, close).is_err() || close {
            return;
        }
    }
}

fn write_answer(
    writer: &mut TcpStream,
    status: u16,
    body: &Value,
    close: bool,
) -> std::io::Result<()> {
    let text = body.to_string();
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        412 => "Precondition Failed",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    };
    write!(
        writer,
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{}\r\n{text}",
        text.len(),
        if close { "connection: close\r\n" } else { "" },
    )?;
    writer.flush()
}

/// The answer to one request; `None` to reset the connection.
fn handle(request: &RawRequest, shared: &Shared) -> Option<Answer> {
    let path = request.target.split('?').next().unwrap_or("");
    let method = path
        .strip_prefix("/twirp/livekit.")
        .unwrap_or(path)
        .to_string();
    let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
    let token = request
        .header("authorization")
        .and_then(|value| value.strip_prefix("Bearer "));
    let grant = token
        .and_then(|token| verified_grant(token, &shared.api_key, &shared.api_secret))
        .unwrap_or_else(|| json!({}));
    let required = needs(&method);
    let authorized = required.is_some_and(|needs| grant_allows(&grant, needs, &body));

    let fault = {
        let mut state = shared.lock();
        let fault = match state
            .next_faults
            .get_mut(&method)
            .and_then(VecDeque::pop_front)
        {
            Some(fault) => Some(fault),
            None => state.standing_faults.get(&method).cloned(),
        };
        state.calls.push(Call {
            method: method.clone(),
            body: body.clone(),
            grant: grant.clone(),
            authorized,
            headers: request.headers.clone(),
            chunked: request.chunked,
            fault: fault.clone(),
        });
        shared.arrived.notify_all();
        fault
    };

    match &fault {
        Some(Fault::Reset) => return None,
        Some(Fault::Delay(delay)) => std::thread::sleep(*delay),
        Some(Fault::Twirp { status, code, msg }) => return Some(twirp_error(*status, code, msg)),
        Some(Fault::Answer { status, body }) => {
            let body = serde_json::from_str(body).unwrap_or_else(|_| json!(body));
            return Some((*status, body));
        }
        Some(Fault::EmptyEgressId) | None => {}
    }

    if request.method != "POST" {
        return Some(twirp_error(405, "bad_route", "only POST is supported"));
    }
    if required.is_none() {
        return Some(twirp_error(
            404,
            "bad_route",
            &format!("no handler for path {path:?}"),
        ));
    }
    let content_type = request.header("content-type").unwrap_or("");
    if !content_type.starts_with("application/json") {
        return Some(twirp_error(
            404,
            "bad_route",
            &format!("unexpected Content-Type: {content_type:?}"),
        ));
    }
    if !body.is_object() {
        return Some(twirp_error(
            400,
            "malformed",
            "the body is not a JSON object",
        ));
    }
    if !authorized {
        return Some(twirp_error(
            401,
            "unauthenticated",
            "invalid token or missing permissions",
        ));
    }
    let empty_egress_id = fault == Some(Fault::EmptyEgressId);
    let mut state = shared.lock();
    Some(serve(&method, &body, &mut state, empty_egress_id))
}

/// The `video` and `sip` grants of a token that verifies, else `None`.
fn verified_grant(token: &str, api_key: &str, api_secret: &str) -> Option<Value> {
    let untrusted = UntrustedToken::new(token).ok()?;
    let verified = Hs256
        .validator::<Map<String, Value>>(&Hs256Key::new(api_secret.as_bytes()))
        .validate(&untrusted)
        .ok()?;
    let claims = &verified.claims().custom;
    if claims.get("iss").and_then(Value::as_str) != Some(api_key) {
        return None;
    }
    let now = unix_seconds();
    let time = &verified.claims();
    if time
        .expiration
        .is_some_and(|exp| exp.timestamp() <= now - LEEWAY_SECONDS)
        || time
            .not_before
            .is_some_and(|nbf| nbf.timestamp() > now + LEEWAY_SECONDS)
    {
        return None;
    }
    let mut grant = Map::new();
    for key in ["video", "sip"] {
        if let Some(value) = claims.get(key) {
            grant.insert(key.to_string(), value.clone());
        }
    }
    Some(Value::Object(grant))
}

fn grant_allows(grant: &Value, needs: Needs, body: &Value) -> bool {
    let flag = |section: &str, name: &str| grant[section][name].as_bool() == Some(true);
    match needs {
        Needs::RoomList => flag("video", "roomList"),
        Needs::RoomRecord => flag("video", "roomRecord"),
        Needs::SipAdmin => flag("sip", "admin"),
        Needs::RoomAdmin => {
            let room = body["room"].as_str().unwrap_or("");
            flag("video", "roomAdmin") && !room.is_empty() && grant["video"]["room"] == room
        }
    }
}

/// The normal answer of an authorized call.
fn serve(method: &str, body: &Value, state: &mut State, empty_egress_id: bool) -> Answer {
    let text = |name: &str| body[name].as_str().unwrap_or("").to_string();
    match method {
        "RoomService/ListRooms" => {
            let names: Vec<String> = body["names"]
                .as_array()
                .map(|names| {
                    names
                        .iter()
                        .filter_map(|name| name.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            let rooms: Vec<Value> = state
                .running_rooms
                .iter()
                .filter(|room| names.is_empty() || names.contains(room))
                .map(|room| room_json(room))
                .collect();
            (200, json!({ "rooms": rooms }))
        }
        "RoomService/SendData" => {
            let room = text("room");
            if !state.running_rooms.contains(&room) {
                return twirp_error(404, "not_found", "requested room does not exist");
            }
            let data = body["data"].as_str().unwrap_or("");
            if base64::engine::general_purpose::STANDARD
                .decode(data)
                .is_err()
            {
                return twirp_error(400, "malformed", "data is not base64");
            }
            (200, json!({}))
        }
        "RoomService/UpdateParticipant" => {
            let room = text("room");
            if !state.running_rooms.contains(&room) {
                return twirp_error(404, "not_found", "requested room does not exist");
            }
            let identity = text("identity");
            let mut participant = Map::new();
            participant.insert("sid".into(), json!(format!("PA_{identity}")));
            participant.insert("identity".into(), json!(identity));
            participant.insert("state".into(), json!("ACTIVE"));
            for field in ["metadata", "name", "permission", "attributes"] {
                if let Some(value) = body.get(field) {
                    participant.insert(field.into(), value.clone());
                }
            }
            (200, Value::Object(participant))
        }
        "RoomService/RemoveParticipant" => {
            if !state.running_rooms.contains(&text("room")) {
                return twirp_error(404, "not_found", "requested room does not exist");
            }
            (200, json!({}))
        }
        "Egress/StartRoomCompositeEgress" => start_egress(body, state, empty_egress_id),
        "Egress/StopEgress" => {
            let egress_id = text("egress_id");
            let Some(egress) = state.egresses.get_mut(&egress_id) else {
                return twirp_error(404, "not_found", "egress does not exist");
            };
            let status = egress.info["status"].as_str().unwrap_or("").to_string();
            if !matches!(status.as_str(), "EGRESS_STARTING" | "EGRESS_ACTIVE") {
                return twirp_error(
                    412,
                    "failed_precondition",
                    &format!("egress with status {status} cannot be stopped"),
                );
            }
            egress.info.insert("status".into(), json!("EGRESS_ENDING"));
            egress
                .info
                .insert("updated_at".into(), json!(now_nanos().to_string()));
            (200, Value::Object(egress.info.clone()))
        }
        "Egress/ListEgress" => {
            let room_name = text("room_name");
            let egress_id = text("egress_id");
            let active_only = body["active"].as_bool() == Some(true);
            let items: Vec<Value> = state
                .egresses
                .values()
                .filter(|egress| room_name.is_empty() || egress.info["room_name"] == room_name)
                .filter(|egress| egress_id.is_empty() || egress.info["egress_id"] == egress_id)
                .filter(|egress| {
                    !active_only
                        || matches!(
                            egress.info["status"].as_str(),
                            Some("EGRESS_STARTING" | "EGRESS_ACTIVE" | "EGRESS_ENDING")
                        )
                })
                .map(|egress| Value::Object(egress.info.clone()))
                .collect();
            (200, json!({ "items": items }))
        }
        "SIP/ListSIPDispatchRule" => {
            let items: Vec<Value> = state.dispatch_rules.values().cloned().collect();
            (200, json!({ "items": items }))
        }
        "SIP/CreateSIPDispatchRule" => create_dispatch_rule(body, state),
        "SIP/DeleteSIPDispatchRule" => {
            match state.dispatch_rules.remove(&text("sip_dispatch_rule_id")) {
                Some(rule) => (200, rule),
                None => twirp_error(404, "not_found", "dispatch rule does not exist"),
            }
        }
        _ => twirp_error(404, "bad_route", "no handler"),
    }
}

fn room_json(name: &str) -> Value {
    json!({
        "sid": format!("RM_{name}"),
        "name": name,
        "empty_timeout": 300,
        "departure_timeout": 20,
        "creation_time": unix_seconds().to_string(),
        "num_participants": 1,
    })
}

fn start_egress(body: &Value, state: &mut State, empty_egress_id: bool) -> Answer {
    let room_name = body["room_name"].as_str().unwrap_or("");
    if room_name.is_empty() {
        return twirp_error(400, "invalid_argument", "room_name is required");
    }
    let outputs = body["file_outputs"].as_array().map_or(0, Vec::len);
    if outputs == 0 {
        return twirp_error(400, "invalid_argument", "no outputs");
    }
    let egress_id = if empty_egress_id {
        String::new()
    } else {
        state.counter += 1;
        format!("EG_fake{:06}", state.counter)
    };
    let mut info = Map::new();
    info.insert("egress_id".into(), json!(egress_id));
    info.insert("room_id".into(), json!(format!("RM_{room_name}")));
    info.insert("room_name".into(), json!(room_name));
    info.insert("status".into(), json!("EGRESS_STARTING"));
    info.insert("updated_at".into(), json!(now_nanos().to_string()));
    info.insert("room_composite".into(), body.clone());
    if !empty_egress_id {
        state
            .egresses
            .insert(egress_id, Egress { info: info.clone() });
    }
    (200, Value::Object(info))
}

/// Accepts the request's top-level fields (`rule`, `trunk_ids`, `name`)
/// or a whole `dispatch_rule`.
fn create_dispatch_rule(body: &Value, state: &mut State) -> Answer {
    let source = body.get("dispatch_rule").unwrap_or(body);
    let rule = source.get("rule").cloned().unwrap_or(Value::Null);
    let Some(room_name) = rule["dispatch_rule_direct"]["room_name"].as_str() else {
        return twirp_error(
            400,
            "invalid_argument",
            "a direct dispatch rule is required",
        );
    };
    if room_name.is_empty() {
        return twirp_error(400, "invalid_argument", "room_name is required");
    }
    state.counter += 1;
    let id = format!("SDR_fake{:06}", state.counter);
    let mut info = Map::new();
    info.insert("sip_dispatch_rule_id".into(), json!(id));
    info.insert("rule".into(), rule);
    for field in ["trunk_ids", "name", "metadata"] {
        if let Some(value) = source.get(field) {
            info.insert(field.into(), value.clone());
        }
    }
    let info = Value::Object(info);
    state.dispatch_rules.insert(id, info.clone());
    (200, info)
}

fn unix_seconds() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs() as i64)
        .unwrap_or(0)
}

fn now_nanos() -> i128 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos() as i128)
        .unwrap_or(0)
}

/// Reads one request; `None` when the client closed the connection first.
fn read_request(
    reader: &mut impl BufRead,
    writer: &mut TcpStream,
) -> std::io::Result<Option<RawRequest>> {
    let invalid =
        |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Err(invalid("bad request line"));
    };
    let (method, target) = (method.to_string(), target.to_string());
    let mut headers: Vec<(String, String)> = Vec::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 {
            return Err(invalid("headers cut short"));
        }
        let header = header.trim_end_matches(['\r', '\n']);
        if header.is_empty() {
            break;
        }
        let (name, value) = header
            .split_once(':')
            .ok_or_else(|| invalid("bad header"))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        if headers.len() > 100 {
            return Err(invalid("too many headers"));
        }
    }
    let request = RawRequest {
        method,
        target,
        headers,
        body: Vec::new(),
        chunked: false,
    };
    if request
        .header("expect")
        .is_some_and(|value| value.eq_ignore_ascii_case("100-continue"))
    {
        writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    let chunked = request
        .header("transfer-encoding")
        .is_some_and(|value| value.to_ascii_lowercase().contains("chunked"));
    let body = if chunked {
        read_chunked(reader)?
    } else {
        let length: usize = match request.header("content-length") {
            Some(value) => value.parse().map_err(|_| invalid("bad content-length"))?,
            None => 0,
        };
        if length > MAX_BODY_BYTES {
            return Err(invalid("body too large"));
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        body
    };
    Ok(Some(RawRequest {
        body,
        chunked,
        ..request
    }))
}

fn read_chunked(reader: &mut impl BufRead) -> std::io::Result<Vec<u8>> {
    let invalid =
        |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let mut body = Vec::new();
    loop {
        let mut size_line = String::new();
        if reader.read_line(&mut size_line)? == 0 {
            return Err(invalid("chunks cut short"));
        }
        let size_text = size_line.trim().split(';').next().unwrap_or("");
        let size = usize::from_str_radix(size_text, 16).map_err(|_| invalid("bad chunk size"))?;
        if body.len() + size > MAX_BODY_BYTES {
            return Err(invalid("body too large"));
        }
        if size == 0 {
            loop {
                let mut trailer = String::new();
                if reader.read_line(&mut trailer)? == 0 || trailer.trim().is_empty() {
                    return Ok(body);
                }
            }
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        let mut end = [0u8; 2];
        reader.read_exact(&mut end)?;
        if end != *b"\r\n" {
            return Err(invalid("chunk not followed by CRLF"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jwt_compact::{Claims, Header};
    use std::io::Read;

    const KEY: &str = "devkey";
    const SECRET: &str = "secret-of-at-least-32-characters!";

    fn token(grant: Value) -> String {
        token_with(grant, KEY, SECRET)
    }

    fn token_with(grant: Value, issuer: &str, secret: &str) -> String {
        let now = unix_seconds();
        let mut claims = json!({"iss": issuer, "sub": "", "nbf": now, "exp": now + 600});
        for (key, value) in grant.as_object().unwrap() {
            claims[key] = value.clone();
        }
        let claims: Claims<Value> = serde_json::from_value(claims).unwrap();
        Hs256
            .token(
                &Header::empty().with_token_type("JWT"),
                &claims,
                &Hs256Key::new(secret.as_bytes()),
            )
            .unwrap()
    }

    /// Sends one request on a fresh connection: `(status, body)`, or `None`
    /// when the connection closed without an answer.
    fn post(server: &FakeLiveKit, method: &str, token: &str, body: &Value) -> Option<(u16, Value)> {
        let body = body.to_string();
        let raw = format!(
            "POST /twirp/livekit.{method} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Bearer {token}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        send_raw(server, &raw)
    }

    fn send_raw(server: &FakeLiveKit, raw: &str) -> Option<(u16, Value)> {
        let mut stream = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.write_all(raw.as_bytes()).unwrap();
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        let status = answer.split_whitespace().nth(1)?.parse().ok()?;
        let body = answer.split_once("\r\n\r\n").map_or("", |(_, body)| body);
        Some((status, serde_json::from_str(body).unwrap_or(Value::Null)))
    }

    fn room_admin(room: &str) -> Value {
        json!({"video": {"roomAdmin": true, "room": room}})
    }

    fn room_record() -> String {
        token(json!({"video": {"roomRecord": true}}))
    }

    #[test]
    fn lists_running_rooms_and_sends_data() {
        let server = FakeLiveKit::start(KEY, SECRET);
        let list = token(json!({"video": {"roomList": true}}));
        let names = json!({"names": ["room-a"]});
        assert_eq!(
            post(&server, "RoomService/ListRooms", &list, &names),
            Some((200, json!({"rooms": []})))
        );
        server.set_room_running("room-a", true);
        server.set_room_running("room-b", true);
        let (status, body) = post(&server, "RoomService/ListRooms", &list, &names).unwrap();
        assert_eq!(status, 200);
        assert_eq!(body["rooms"].as_array().unwrap().len(), 1);
        assert_eq!(body["rooms"][0]["name"], "room-a");
        let (_, all) = post(&server, "RoomService/ListRooms", &list, &json!({})).unwrap();
        assert_eq!(all["rooms"].as_array().unwrap().len(), 2);

        let data = json!({"room": "room-a", "data": "eyJ0eXBlIjogInBhcnRpY2lwYW50V2FpdGluZyJ9", "kind": "RELIABLE"});
        let admin = token(room_admin("room-a"));
        assert_eq!(
            post(&server, "RoomService/SendData", &admin, &data),
            Some((200, json!({})))
        );
        let calls = server.calls_to("RoomService/SendData");
        assert_eq!(calls.len(), 1);
        assert!(calls[0].authorized);
        assert_eq!(
            calls[0].data().unwrap(),
            br#"{"type": "participantWaiting"}"#
        );
        assert_eq!(calls[0].grant["video"]["roomAdmin"], true);
        assert_eq!(calls[0].header("content-type"), Some("application/json"));

        server.set_room_running("room-a", false);
        let (status, body) = post(&server, "RoomService/SendData", &admin, &data).unwrap();
        assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
        assert_eq!(server.calls().len(), 5);
    }

    #[test]
    fn checks_tokens_and_grants() {
        let server = FakeLiveKit::start(KEY, SECRET);
        server.set_room_running("room-a", true);
        let data = json!({"room": "room-a", "data": "", "kind": "RELIABLE"});
        let unauthenticated = |token: &str| {
            let (status, body) = post(&server, "RoomService/SendData", token, &data).unwrap();
            status == 401 && body["code"] == "unauthenticated"
        };
        assert!(unauthenticated("not-a-token"));
        assert!(unauthenticated(&token_with(
            room_admin("room-a"),
            KEY,
            "other secret"
        )));
        assert!(unauthenticated(&token_with(
            room_admin("room-a"),
            "otherkey",
            SECRET
        )));
        assert!(unauthenticated(&token(room_admin("room-b"))));
        assert!(unauthenticated(&token(
            json!({"video": {"roomList": true}})
        )));
        assert!(!unauthenticated(&token(room_admin("room-a"))));
        let (status, _) = post(
            &server,
            "Egress/StopEgress",
            &token(json!({"video": {"roomAdmin": true}})),
            &json!({"egress_id": "EG_1"}),
        )
        .unwrap();
        assert_eq!(status, 401);
        let (status, _) = post(
            &server,
            "SIP/ListSIPDispatchRule",
            &token(json!({"video": {}, "sip": {"call": true}})),
            &json!({}),
        )
        .unwrap();
        assert_eq!(status, 401);
        let authorized: Vec<bool> = server.calls().iter().map(|call| call.authorized).collect();
        assert_eq!(
            authorized,
            [false, false, false, false, false, true, false, false]
        );
        assert_eq!(server.calls()[0].grant, json!({}));
    }

    #[test]
    fn egresses_start_stop_and_list() {
        let server = FakeLiveKit::start(KEY, SECRET);
        let request = json!({
            "room_name": "room-a",
            "audio_only": true,
            "file_outputs": [{"file_type": "OGG", "filepath": "recordings/r.ogg", "s3": {"bucket": "b", "force_path_style": true}}],
        });
        let (status, started) = post(
            &server,
            "Egress/StartRoomCompositeEgress",
            &room_record(),
            &request,
        )
        .unwrap();
        assert_eq!(status, 200);
        let egress_id = started["egress_id"].as_str().unwrap().to_string();
        assert!(egress_id.starts_with("EG_"));
        assert_eq!(started["status"], "EGRESS_STARTING");
        assert_eq!(
            server.egress(&egress_id).unwrap()["room_composite"],
            request
        );

        server.set_egress_status(&egress_id, "EGRESS_ACTIVE");
        let stop = json!({"egress_id": egress_id});
        let (status, stopped) = post(&server, "Egress/StopEgress", &room_record(), &stop).unwrap();
        assert_eq!(
            (status, stopped["status"].as_str()),
            (200, Some("EGRESS_ENDING"))
        );
        server.set_egress_status(&egress_id, "EGRESS_COMPLETE");
        let (status, body) = post(&server, "Egress/StopEgress", &room_record(), &stop).unwrap();
        assert_eq!(
            (status, body["code"].as_str()),
            (412, Some("failed_precondition"))
        );
        let (status, body) = post(
            &server,
            "Egress/StopEgress",
            &room_record(),
            &json!({"egress_id": "EG_nope"}),
        )
        .unwrap();
        assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));

        let (_, listed) = post(&server, "Egress/ListEgress", &room_record(), &stop).unwrap();
        assert_eq!(listed["items"][0]["status"], "EGRESS_COMPLETE");
        let active = json!({"room_name": "room-a", "active": true});
        let (_, listed) = post(&server, "Egress/ListEgress", &room_record(), &active).unwrap();
        assert_eq!(listed["items"], json!([]));
    }

    #[test]
    fn dispatch_rules_are_created_listed_and_deleted() {
        let server = FakeLiveKit::start(KEY, SECRET);
        let sip = token(json!({"video": {}, "sip": {"admin": true}}));
        let create = json!({
            "rule": {"dispatch_rule_direct": {"room_name": "room-a", "pin": "0123456789"}},
            "trunk_ids": ["ST_1"],
            "name": "room-a",
        });
        let (status, created) = post(&server, "SIP/CreateSIPDispatchRule", &sip, &create).unwrap();
        assert_eq!(status, 200);
        let id = created["sip_dispatch_rule_id"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(created["rule"], create["rule"]);
        assert_eq!(created["trunk_ids"], json!(["ST_1"]));
        let (_, listed) = post(&server, "SIP/ListSIPDispatchRule", &sip, &json!({})).unwrap();
        assert_eq!(listed["items"], json!([created]));
        let delete = json!({"sip_dispatch_rule_id": id});
        let (status, _) = post(&server, "SIP/DeleteSIPDispatchRule", &sip, &delete).unwrap();
        assert_eq!(status, 200);
        assert!(server.dispatch_rules().is_empty());
        let (status, _) = post(&server, "SIP/DeleteSIPDispatchRule", &sip, &delete).unwrap();
        assert_eq!(status, 404);
    }

    #[test]
    fn faults_apply_per_method() {
        let server = FakeLiveKit::start(KEY, SECRET);
        let list = token(json!({"video": {"roomList": true}}));
        server.fail_next("RoomService/ListRooms", Fault::twirp(503, "unavailable"));
        server.fail_next("RoomService/ListRooms", Fault::Reset);
        server.fail_next(
            "RoomService/ListRooms",
            Fault::Delay(Duration::from_millis(300)),
        );
        let (status, body) = post(&server, "RoomService/ListRooms", &list, &json!({})).unwrap();
        assert_eq!((status, body["code"].as_str()), (503, Some("unavailable")));
        assert_eq!(
            post(&server, "RoomService/ListRooms", &list, &json!({})),
            None
        );
        let started = Instant::now();
        let (status, _) = post(&server, "RoomService/ListRooms", &list, &json!({})).unwrap();
        assert_eq!(status, 200);
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert_eq!(
            post(&server, "RoomService/ListRooms", &list, &json!({})),
            Some((200, json!({"rooms": []})))
        );

        let request = json!({"room_name": "room-a", "file_outputs": [{"filepath": "r.mp4"}]});
        server.fail_next("Egress/StartRoomCompositeEgress", Fault::EmptyEgressId);
        let (status, body) = post(
            &server,
            "Egress/StartRoomCompositeEgress",
            &room_record(),
            &request,
        )
        .unwrap();
        assert_eq!((status, body["egress_id"].as_str()), (200, Some("")));
        assert!(server.egresses().is_empty());

        server.fail_always(
            "Egress/StopEgress",
            Fault::Answer {
                status: 200,
                body: r#"{"egress_id": "EG_1", "status": "EGRESS_ABORTED"}"#.to_string(),
            },
        );
        for _ in 0..2 {
            let (_, body) = post(&server, "Egress/StopEgress", &room_record(), &json!({})).unwrap();
            assert_eq!(body["status"], "EGRESS_ABORTED");
        }
        server.clear_faults();
        let (status, _) = post(&server, "Egress/StopEgress", &room_record(), &json!({})).unwrap();
        assert_eq!(status, 404);
        assert_eq!(
            server.calls_to("RoomService/ListRooms")[1].fault,
            Some(Fault::Reset)
        );
    }

    #[test]
    fn reads_chunked_bodies_and_keeps_connections_alive() {
        let server = FakeLiveKit::start(KEY, SECRET);
        let list = token(json!({"video": {"roomList": true}}));
        let chunked = format!(
            "POST /twirp/livekit.RoomService/ListRooms HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Bearer {list}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{{\"nam\r\n8;ext=1\r\nes\": []}}\r\n0\r\n\r\n"
        );
        let mut stream = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        for _ in 0..2 {
            stream.write_all(chunked.as_bytes()).unwrap();
            let mut status_line = String::new();
            reader.read_line(&mut status_line).unwrap();
            assert!(status_line.starts_with("HTTP/1.1 200"), "{status_line}");
            let mut length = 0;
            loop {
                let mut header = String::new();
                reader.read_line(&mut header).unwrap();
                if header.trim().is_empty() {
                    break;
                }
                if let Some(value) = header.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            assert_eq!(
                serde_json::from_slice::<Value>(&body).unwrap(),
                json!({"rooms": []})
            );
        }
        let calls = server.calls();
        assert_eq!(calls.len(), 2);
        assert!(calls[0].chunked);
        assert_eq!(calls[0].body, json!({"names": []}));
    }

    #[test]
    fn unknown_routes_and_bad_bodies_are_twirp_errors() {
        let server = FakeLiveKit::start(KEY, SECRET);
        let list = token(json!({"video": {"roomList": true}}));
        let (status, body) = post(&server, "RoomService/CreateRoom", &list, &json!({})).unwrap();
        assert_eq!((status, body["code"].as_str()), (404, Some("bad_route")));
        let raw = format!(
            "POST /twirp/livekit.RoomService/ListRooms HTTP/1.1\r\nHost: x\r\nContent-Type: application/protobuf\r\nAuthorization: Bearer {list}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        assert_eq!(send_raw(&server, &raw).unwrap().0, 404);
        let raw = format!(
            "POST /twirp/livekit.RoomService/ListRooms HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Bearer {list}\r\nContent-Length: 3\r\nConnection: close\r\n\r\n[1]"
        );
        let (status, body) = send_raw(&server, &raw).unwrap();
        assert_eq!((status, body["code"].as_str()), (400, Some("malformed")));
    }
}
