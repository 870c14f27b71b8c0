//! A stand-in for the summary service (spec/recordings.md §3.2): a loopback
//! HTTP/1.1 server that accepts `POST` with a `Content-Length` or chunked
//! body, checks `Authorization: Bearer <token>`, records every request, and
//! can be set down (503, dropped connections, slow answers) and up again.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// How long a connection may stay silent before the server gives up on it.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest body accepted.
const MAX_BODY_BYTES: usize = 1 << 20;

/// How the service answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `200 {"id": <task id>, "message": "Task created"}` to authorized POSTs.
    Up,
    /// `503` to every request.
    Unavailable,
    /// Read the request, then close the connection without answering.
    DropConnection,
    /// Answer as `Up`, after this delay.
    Slow(Duration),
}

/// One request as the service received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    /// Header names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Whether the body came chunked.
    pub chunked: bool,
    /// Whether the bearer token matched.
    pub authorized: bool,
    /// The mode the service was in when it received the request.
    pub mode: Mode,
}

impl RecordedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The body as JSON, if it is.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

struct State {
    mode: Mode,
    requests: Vec<RecordedRequest>,
}

struct Shared {
    token: String,
    state: Mutex<State>,
    arrived: Condvar,
}

/// A running fake summary service; its threads end with the test process.
pub struct SummaryService {
    port: u16,
    shared: Arc<Shared>,
}

impl SummaryService {
    /// Starts the service, up, accepting `Bearer <token>`.
    pub fn start(token: &str) -> SummaryService {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = listener.local_addr().expect("local address").port();
        let shared = Arc::new(Shared {
            token: token.to_string(),
            state: Mutex::new(State {
                mode: Mode::Up,
                requests: Vec::new(),
            }),
            arrived: Condvar::new(),
        });
        let accepting = shared.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let shared = accepting.clone();
                std::thread::spawn(move || serve_connection(stream, &shared));
            }
        });
        SummaryService { port, shared }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The endpoint to configure (`SUMMARY_SERVICE_ENDPOINT`), upstream's
    /// `POST /tasks/` path on loopback.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/tasks/", self.port)
    }

    /// `http://127.0.0.1:<port>`, for `allowed_outbound_hosts`.
    pub fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn set_mode(&self, mode: Mode) {
        self.lock().mode = mode;
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    /// Waits until at least `count` requests arrived (or `timeout` passed)
    /// and returns them all.
    pub fn wait_for_requests(&self, count: usize, timeout: Duration) -> Vec<RecordedRequest> {
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        while state.requests.len() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            state = match self.shared.arrived.wait_timeout(state, left) {
                Ok((state, _)) => state,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        state.requests.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Serves requests on one connection until the client closes it, sends
/// `Connection: close`, or the service drops it.
fn serve_connection(stream: TcpStream, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        let Ok(Some(request)) = read_request(&mut reader) else {
            return;
        };
        let close = request
            .headers
            .iter()
            .any(|(name, value)| name == "connection" && value.eq_ignore_ascii_case("close"));
        let authorized = request.headers.iter().any(|(name, value)| {
            name == "authorization" && *value == format!("Bearer {}", shared.token)
        });
        let mode = {
            let mut state = shared
                .state
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let mode = state.mode;
            state.requests.push(RecordedRequest {
                authorized,
                mode,
                ..request.clone()
            });
            shared.arrived.notify_all();
            mode
        };
        let (status, body) = match mode {
            Mode::DropConnection => return,
            Mode::Unavailable => (503, json!({"detail": "Service unavailable"})),
            Mode::Up | Mode::Slow(_) => {
                if let Mode::Slow(delay) = mode {
                    std::thread::sleep(delay);
                }
                if request.method != "POST" {
                    (405, json!({"detail": "Method Not Allowed"}))
                } else if !authorized {
                    (401, json!({"detail": "Invalid token"}))
                } else if request.json().is_none() {
                    (422, json!({"detail": "The body is not JSON"}))
                } else {
                    (
                        200,
                        json!({"id": format!("task-{:016x}", rand::random::<u64>()), "message": "Task created"}),
                    )
                }
            }
        };
        let text = body.to_string();
        let reason = match status {
            200 => "OK",
            401 => "Unauthorized",
            405 => "Method Not Allowed",
            422 => "Unprocessable Entity",
            _ => "Service Unavailable",
        };
        let written = write!(
            writer,
            "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{}\r\n{text}",
            text.len(),
            if close { "connection: close\r\n" } else { "" },
        );
        if written.is_err() || writer.flush().is_err() || close {
            return;
        }
    }
}

/// Reads one request; `None` when the client closed the connection first.
fn read_request(reader: &mut impl BufRead) -> std::io::Result<Option<RecordedRequest>> {
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
    let mut headers = Vec::new();
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
    let find = |name: &str| {
        headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    };
    let chunked =
        find("transfer-encoding").is_some_and(|value| value.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        read_chunked(reader)?
    } else {
        let length: usize = match find("content-length") {
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
    Ok(Some(RecordedRequest {
        method,
        target,
        headers,
        body,
        chunked,
        authorized: false,
        mode: Mode::Up,
    }))
}

fn read_chunked(reader: &mut impl BufRead) -> std::io::Result<Vec<u8>> {
    let invalid =
        |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let mut body = Vec::new();
    loop {
        let mut size_line = String::new();
        reader.read_line(&mut size_line)?;
        let size_text = size_line.trim().split(';').next().unwrap_or("");
        let size = usize::from_str_radix(size_text, 16).map_err(|_| invalid("bad chunk size"))?;
        if body.len() + size > MAX_BODY_BYTES {
            return Err(invalid("body too large"));
        }
        if size == 0 {
            // Trailers, up to the empty line.
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
    use std::io::Read;

    const TOKEN: &str = "summary-token";

    /// Sends raw bytes on a fresh connection and returns the status code
    /// (`None` if the connection closed without an answer).
    fn send(service: &SummaryService, raw: &str) -> Option<u16> {
        let mut stream = TcpStream::connect(("127.0.0.1", service.port())).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream.write_all(raw.as_bytes()).unwrap();
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer.split_whitespace().nth(1)?.parse().ok()
    }

    fn post(body: &str, token: &str) -> String {
        format!(
            "POST /tasks/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Bearer {token}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    }

    #[test]
    fn records_content_length_and_chunked_posts_and_checks_the_token() {
        let service = SummaryService::start(TOKEN);
        let body = r#"{"filename": "recordings/1.ogg", "email": "a@example.org", "sub": "a"}"#;
        assert_eq!(send(&service, &post(body, TOKEN)), Some(200));
        assert_eq!(send(&service, &post(body, "wrong")), Some(401));
        let chunked = "POST /tasks/ HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer summary-token\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\n{\"a\":\r\n3;ext=1\r\n 1}\r\n0\r\n\r\n";
        assert_eq!(send(&service, chunked), Some(200));

        let requests = service.wait_for_requests(3, Duration::from_secs(5));
        assert_eq!(requests.len(), 3);
        assert!(requests[0].authorized && !requests[1].authorized);
        assert_eq!(requests[0].target, "/tasks/");
        assert_eq!(requests[0].header("Content-Type"), Some("application/json"));
        assert_eq!(requests[0].json().unwrap()["filename"], "recordings/1.ogg");
        assert!(requests[2].chunked);
        assert_eq!(requests[2].json(), Some(json!({"a": 1})));
    }

    #[test]
    fn can_be_set_down_and_up_again() {
        let service = SummaryService::start(TOKEN);
        let body = r#"{"filename": "f", "email": "e", "sub": "s"}"#;
        service.set_mode(Mode::Unavailable);
        assert_eq!(send(&service, &post(body, TOKEN)), Some(503));
        service.set_mode(Mode::DropConnection);
        assert_eq!(send(&service, &post(body, TOKEN)), None);
        service.set_mode(Mode::Slow(Duration::from_millis(200)));
        let started = Instant::now();
        assert_eq!(send(&service, &post(body, TOKEN)), Some(200));
        assert!(started.elapsed() >= Duration::from_millis(200));
        service.set_mode(Mode::Up);
        assert_eq!(send(&service, &post(body, TOKEN)), Some(200));
        let modes: Vec<Mode> = service.requests().iter().map(|r| r.mode).collect();
        assert_eq!(
            modes,
            [
                Mode::Unavailable,
                Mode::DropConnection,
                Mode::Slow(Duration::from_millis(200)),
                Mode::Up
            ]
        );
    }

    #[test]
    fn keeps_a_connection_alive_between_requests() {
        let service = SummaryService::start(TOKEN);
        let mut stream = TcpStream::connect(("127.0.0.1", service.port())).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        for _ in 0..2 {
            let body = "{}";
            write!(
                stream,
                "POST /tasks/ HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
            let mut status = String::new();
            reader.read_line(&mut status).unwrap();
            assert!(status.starts_with("HTTP/1.1 200"), "{status}");
            let mut length = 0;
            loop {
                let mut header = String::new();
                reader.read_line(&mut header).unwrap();
                if let Some(value) = header.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap();
                }
                if header == "\r\n" {
                    break;
                }
            }
            let mut answer = vec![0; length];
            reader.read_exact(&mut answer).unwrap();
            let answer: Value = serde_json::from_slice(&answer).unwrap();
            assert_eq!(answer["message"], "Task created");
        }
        assert_eq!(service.requests().len(), 2);
    }
}
