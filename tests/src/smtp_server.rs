//! A fake SMTP server on loopback for tests: speaks enough ESMTP (EHLO with
//! AUTH PLAIN LOGIN, HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT), records every
//! accepted message, and can be told to refuse or misbehave.
//!
//! Standard library only (plus `base64` to check AUTH and decode bodies), a
//! thread per connection, any chunking of the client's bytes accepted.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

/// One accepted message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The envelope sender (`MAIL FROM:<…>`).
    pub from: String,
    /// The envelope recipients (`RCPT TO:<…>`), in order.
    pub recipients: Vec<String>,
    /// The content after DATA, dot-unstuffed, without the final `.` line.
    pub data: Vec<u8>,
    /// The user that authenticated on this session, if any.
    pub user: Option<String>,
}

/// What the server does at a given command verb.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Misbehaviour {
    /// Close the connection without answering.
    Drop,
    /// Never answer (the client should time out).
    Stall,
    /// Answer with this code and text.
    Reply(u16, String),
}

#[derive(Debug, Clone, Default)]
struct Policy {
    /// Credentials AUTH accepts; `None` = AUTH not offered.
    credentials: Option<(String, String)>,
    /// Mechanisms offered in EHLO (default PLAIN LOGIN when credentials are set).
    mechanisms: Vec<String>,
    /// Refuse MAIL until authenticated (530).
    require_auth: bool,
    starttls: bool,
    reject_ehlo: bool,
    /// Refusals of RCPT for these addresses.
    refused_recipients: Vec<(String, u16)>,
    /// Refusal of the message once its content is received (after the final dot).
    refuse_content: Option<u16>,
    /// Misbehaviour keyed by upper-case verb ("GREETING" for the banner,
    /// "CONTENT" for the end of the message content).
    at: Vec<(String, Misbehaviour)>,
}

#[derive(Default)]
struct State {
    policy: Policy,
    messages: Vec<Received>,
    /// Every command line received, across sessions (AUTH payloads included).
    commands: Vec<String>,
    sessions: usize,
}

/// The running server; stops accepting when dropped (open sessions finish).
pub struct SmtpServer {
    pub address: SocketAddr,
    shared: Arc<(Mutex<State>, Condvar)>,
}

impl SmtpServer {
    /// Starts on `127.0.0.1:<ephemeral>`.
    pub fn start() -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let address = listener.local_addr().expect("local address");
        let shared = Arc::new((Mutex::new(State::default()), Condvar::new()));
        let accepting = Arc::downgrade(&shared);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Some(shared) = accepting.upgrade() else {
                    return;
                };
                let Ok(stream) = stream else { continue };
                std::thread::spawn(move || {
                    let _ = Session::new(stream, shared).run();
                });
            }
        });
        SmtpServer { address, shared }
    }

    pub fn ip(&self) -> String {
        self.address.ip().to_string()
    }

    pub fn port(&self) -> u16 {
        self.address.port()
    }

    fn policy(&self, change: impl FnOnce(&mut Policy)) -> &SmtpServer {
        change(&mut self.shared.0.lock().unwrap().policy);
        self
    }

    /// Offers AUTH PLAIN LOGIN and accepts only these credentials.
    pub fn require_auth(&self, user: &str, password: &str) -> &SmtpServer {
        self.policy(|policy| {
            policy.credentials = Some((user.to_string(), password.to_string()));
            policy.require_auth = true;
            if policy.mechanisms.is_empty() {
                policy.mechanisms = vec!["PLAIN".into(), "LOGIN".into()];
            }
        })
    }

    /// Offers only these AUTH mechanisms (e.g. `["LOGIN"]`).
    pub fn offer_mechanisms(&self, mechanisms: &[&str]) -> &SmtpServer {
        self.policy(|policy| policy.mechanisms = mechanisms.iter().map(|m| m.to_string()).collect())
    }

    /// Advertises STARTTLS; a client that uses it gets `220` followed by bytes
    /// that are not TLS (its handshake must fail cleanly).
    pub fn advertise_starttls(&self) -> &SmtpServer {
        self.policy(|policy| policy.starttls = true)
    }

    /// Answers EHLO with 502, as a server that only knows HELO.
    pub fn reject_ehlo(&self) -> &SmtpServer {
        self.policy(|policy| policy.reject_ehlo = true)
    }

    /// Refuses `RCPT TO:<address>` with `code`.
    pub fn refuse_recipient(&self, address: &str, code: u16) -> &SmtpServer {
        self.policy(|policy| policy.refused_recipients.push((address.to_string(), code)))
    }

    /// Refuses the DATA command itself with `code` (e.g. 554).
    pub fn refuse_data(&self, code: u16) -> &SmtpServer {
        self.at(
            "DATA",
            Misbehaviour::Reply(code, "Transaction failed".into()),
        )
    }

    /// Accepts DATA but refuses the message after its final dot with `code`.
    pub fn refuse_content(&self, code: u16) -> &SmtpServer {
        self.policy(|policy| policy.refuse_content = Some(code))
    }

    /// Misbehaves at `verb` (`GREETING`, `EHLO`, `MAIL`, `RCPT`, `DATA`, `CONTENT`, `QUIT`, …).
    pub fn at(&self, verb: &str, misbehaviour: Misbehaviour) -> &SmtpServer {
        self.policy(|policy| {
            policy.at.push((verb.to_ascii_uppercase(), misbehaviour));
        })
    }

    /// Every message accepted so far.
    pub fn messages(&self) -> Vec<Received> {
        self.shared.0.lock().unwrap().messages.clone()
    }

    /// Waits until at least `count` messages were accepted (or `timeout`).
    pub fn wait_for_messages(&self, count: usize, timeout: Duration) -> Vec<Received> {
        let (lock, ready) = &*self.shared;
        let deadline = Instant::now() + timeout;
        let mut state = lock.lock().unwrap();
        while state.messages.len() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            state = ready.wait_timeout(state, left).unwrap().0;
        }
        state.messages.clone()
    }

    /// Every command line received so far, across sessions.
    pub fn commands(&self) -> Vec<String> {
        self.shared.0.lock().unwrap().commands.clone()
    }

    /// How many connections were accepted.
    pub fn sessions(&self) -> usize {
        self.shared.0.lock().unwrap().sessions
    }
}

struct Session {
    stream: TcpStream,
    shared: Arc<(Mutex<State>, Condvar)>,
    buffer: Vec<u8>,
    user: Option<String>,
    from: Option<String>,
    recipients: Vec<String>,
}

/// What a handler decided.
enum Next {
    Continue,
    Close,
}

impl Session {
    fn new(stream: TcpStream, shared: Arc<(Mutex<State>, Condvar)>) -> Session {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
        Session {
            stream,
            shared,
            buffer: Vec::new(),
            user: None,
            from: None,
            recipients: Vec::new(),
        }
    }

    fn policy(&self) -> Policy {
        self.shared.0.lock().unwrap().policy.clone()
    }

    fn misbehaviour(&self, verb: &str) -> Option<Misbehaviour> {
        self.policy()
            .at
            .into_iter()
            .find(|(at, _)| at == verb)
            .map(|(_, what)| what)
    }

    /// Applies a misbehaviour; `Some(next)` when it replaced the normal answer.
    fn misbehave(&mut self, verb: &str) -> std::io::Result<Option<Next>> {
        match self.misbehaviour(verb) {
            None => Ok(None),
            Some(Misbehaviour::Drop) => {
                let _ = self.stream.shutdown(Shutdown::Both);
                Ok(Some(Next::Close))
            }
            Some(Misbehaviour::Stall) => {
                // Hold the connection open without a word until the client gives up.
                let mut sink = [0u8; 256];
                while matches!(self.stream.read(&mut sink), Ok(n) if n > 0) {}
                Ok(Some(Next::Close))
            }
            Some(Misbehaviour::Reply(code, text)) => {
                self.reply(code, &text)?;
                Ok(Some(Next::Continue))
            }
        }
    }

    fn reply(&mut self, code: u16, text: &str) -> std::io::Result<()> {
        self.stream
            .write_all(format!("{code} {text}\r\n").as_bytes())
    }

    fn reply_lines(&mut self, code: u16, lines: &[String]) -> std::io::Result<()> {
        let mut out = String::new();
        for (index, line) in lines.iter().enumerate() {
            let separator = if index + 1 == lines.len() { ' ' } else { '-' };
            out.push_str(&format!("{code}{separator}{line}\r\n"));
        }
        self.stream.write_all(out.as_bytes())
    }

    /// The next line without CRLF; `None` when the client closed.
    fn read_line(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        loop {
            if let Some(end) = self.buffer.windows(2).position(|pair| pair == b"\r\n") {
                let line = self.buffer[..end].to_vec();
                self.buffer.drain(..end + 2);
                return Ok(Some(line));
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk)? {
                0 => return Ok(None),
                read => self.buffer.extend_from_slice(&chunk[..read]),
            }
        }
    }

    fn run(mut self) -> std::io::Result<()> {
        self.shared.0.lock().unwrap().sessions += 1;
        if self.misbehave("GREETING")?.is_some() {
            if let Some(Misbehaviour::Reply(..)) = self.misbehaviour("GREETING") {
                // A refusing banner: wait for QUIT like real servers do.
            } else {
                return Ok(());
            }
        } else {
            self.reply(220, "fake.smtp.test ESMTP ready")?;
        }
        while let Some(line) = self.read_line()? {
            let line = String::from_utf8_lossy(&line).into_owned();
            self.shared.0.lock().unwrap().commands.push(line.clone());
            let verb = line
                .split_whitespace()
                .next()
                .unwrap_or("")
                .split(':')
                .next()
                .unwrap_or("")
                .to_ascii_uppercase();
            if let Some(next) = self.misbehave(&verb)? {
                match next {
                    Next::Close => return Ok(()),
                    Next::Continue => continue,
                }
            }
            match self.command(&verb, &line)? {
                Next::Continue => {}
                Next::Close => return Ok(()),
            }
        }
        Ok(())
    }

    fn command(&mut self, verb: &str, line: &str) -> std::io::Result<Next> {
        let policy = self.policy();
        let argument = line.get(verb.len()..).unwrap_or("").trim().to_string();
        match verb {
            "EHLO" if policy.reject_ehlo => self.reply(502, "EHLO not implemented")?,
            "EHLO" => {
                let mut lines = vec![
                    "fake.smtp.test greets you".to_string(),
                    "8BITMIME".to_string(),
                ];
                if policy.starttls {
                    lines.push("STARTTLS".into());
                }
                if !policy.mechanisms.is_empty() {
                    lines.push(format!("AUTH {}", policy.mechanisms.join(" ")));
                }
                lines.push("SIZE 10485760".into());
                self.reply_lines(250, &lines)?;
            }
            "HELO" => self.reply(250, "fake.smtp.test")?,
            "STARTTLS" if policy.starttls => {
                self.reply(220, "Go ahead")?;
                // Not a TLS server: the client's ClientHello gets an SMTP line back.
                let mut hello = [0u8; 512];
                let _ = self.stream.read(&mut hello)?;
                self.stream.write_all(b"500 this is not TLS\r\n")?;
                let _ = self.stream.shutdown(Shutdown::Both);
                return Ok(Next::Close);
            }
            "AUTH" => self.auth(&policy, &argument)?,
            "MAIL" => {
                if policy.require_auth && self.user.is_none() {
                    self.reply(530, "5.7.0 Authentication required")?;
                } else {
                    self.from = Some(angle_address(&argument));
                    self.recipients.clear();
                    self.reply(250, "2.1.0 Ok")?;
                }
            }
            "RCPT" => {
                let address = angle_address(&argument);
                if self.from.is_none() {
                    self.reply(503, "5.5.1 MAIL first")?;
                } else if let Some((_, code)) = policy
                    .refused_recipients
                    .iter()
                    .find(|(refused, _)| *refused == address)
                {
                    self.reply(*code, "5.1.1 Recipient address rejected")?;
                } else {
                    self.recipients.push(address);
                    self.reply(250, "2.1.5 Ok")?;
                }
            }
            "DATA" => {
                if self.recipients.is_empty() {
                    self.reply(503, "5.5.1 RCPT first")?;
                } else {
                    self.reply(354, "End data with <CR><LF>.<CR><LF>")?;
                    return self.data(&policy);
                }
            }
            "RSET" => {
                self.from = None;
                self.recipients.clear();
                self.reply(250, "2.0.0 Ok")?;
            }
            "NOOP" => self.reply(250, "2.0.0 Ok")?,
            "QUIT" => {
                self.reply(221, "2.0.0 Bye")?;
                return Ok(Next::Close);
            }
            _ => self.reply(502, "5.5.2 Command not recognised")?,
        }
        Ok(Next::Continue)
    }

    fn auth(&mut self, policy: &Policy, argument: &str) -> std::io::Result<()> {
        let mut words = argument.split_whitespace();
        let mechanism = words.next().unwrap_or("").to_ascii_uppercase();
        let initial = words.next().map(str::to_string);
        if !policy.mechanisms.contains(&mechanism) {
            return self.reply(504, "5.5.4 Unrecognized authentication type");
        }
        let credentials = match mechanism.as_str() {
            "PLAIN" => {
                let payload = match initial {
                    Some(payload) => payload,
                    None => {
                        self.reply(334, "")?;
                        let Some(line) = self.read_line()? else {
                            return Ok(());
                        };
                        String::from_utf8_lossy(&line).into_owned()
                    }
                };
                let decoded = BASE64.decode(payload.trim()).unwrap_or_default();
                let mut parts = decoded.split(|&byte| byte == 0).skip(1);
                let user = String::from_utf8_lossy(parts.next().unwrap_or(b"")).into_owned();
                let password = String::from_utf8_lossy(parts.next().unwrap_or(b"")).into_owned();
                (user, password)
            }
            _ => {
                self.reply(334, "VXNlcm5hbWU6")?;
                let Some(user) = self.read_line()? else {
                    return Ok(());
                };
                self.reply(334, "UGFzc3dvcmQ6")?;
                let Some(password) = self.read_line()? else {
                    return Ok(());
                };
                let decode = |line: &[u8]| {
                    String::from_utf8_lossy(&BASE64.decode(line).unwrap_or_default()).into_owned()
                };
                (decode(&user), decode(&password))
            }
        };
        if policy.credentials.as_ref() == Some(&credentials) {
            self.user = Some(credentials.0);
            self.reply(235, "2.7.0 Authentication successful")
        } else {
            self.reply(535, "5.7.8 Authentication credentials invalid")
        }
    }

    fn data(&mut self, policy: &Policy) -> std::io::Result<Next> {
        let mut data = Vec::new();
        loop {
            let Some(line) = self.read_line()? else {
                return Ok(Next::Close);
            };
            if line == b"." {
                break;
            }
            // Dot-unstuffing (RFC 5321 §4.5.2).
            let line = line.strip_prefix(b".").unwrap_or(&line);
            data.extend_from_slice(line);
            data.extend_from_slice(b"\r\n");
        }
        if let Some(next) = self.misbehave("CONTENT")? {
            return Ok(next);
        }
        if let Some(code) = policy.refuse_content {
            self.reply(code, "5.7.1 Message refused")?;
        } else {
            let received = Received {
                from: self.from.take().unwrap_or_default(),
                recipients: std::mem::take(&mut self.recipients),
                data,
                user: self.user.clone(),
            };
            let (lock, ready) = &*self.shared;
            lock.lock().unwrap().messages.push(received);
            ready.notify_all();
            self.reply(250, "2.0.0 Ok: queued")?;
        }
        self.from = None;
        self.recipients.clear();
        Ok(Next::Continue)
    }
}

/// `FROM:<a@b> SIZE=1` → `a@b`.
fn angle_address(argument: &str) -> String {
    match (argument.find('<'), argument.find('>')) {
        (Some(open), Some(close)) if open < close => argument[open + 1..close].to_string(),
        _ => argument
            .split_once(':')
            .map_or(argument, |(_, rest)| rest)
            .trim()
            .to_string(),
    }
}

impl Received {
    /// The raw content as text.
    pub fn raw(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }

    /// The unfolded value of the first header `name` (case-insensitive), undecoded.
    pub fn header(&self, name: &str) -> Option<String> {
        header(&headers_of(&self.raw()), name)
    }

    /// Every header of the message, unfolded, in order.
    pub fn headers(&self) -> Vec<(String, String)> {
        headers_of(&self.raw())
    }

    /// The `Subject:` with RFC 2047 encoded words decoded.
    pub fn subject(&self) -> Option<String> {
        self.header("subject").map(|value| decode_words(&value))
    }

    /// The first `text/plain` part, transfer-decoded.
    pub fn text_body(&self) -> Option<String> {
        find_part(&self.raw(), "text/plain")
    }

    /// The first `text/html` part, transfer-decoded.
    pub fn html_body(&self) -> Option<String> {
        find_part(&self.raw(), "text/html")
    }
}

/// Splits an entity into (unfolded headers, body).
fn split_entity(entity: &str) -> (Vec<(String, String)>, String) {
    let (head, body) = entity.split_once("\r\n\r\n").unwrap_or((entity, ""));
    (headers_of(head), body.to_string())
}

fn headers_of(text: &str) -> Vec<(String, String)> {
    let head = text.split("\r\n\r\n").next().unwrap_or("");
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = headers.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    headers
}

fn header(headers: &[(String, String)], name: &str) -> Option<String> {
    headers
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.clone())
}

/// A `Content-Type` parameter, e.g. `boundary`.
fn parameter(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|item| {
        let (key, value) = item.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| value.trim().trim_matches('"').to_string())
    })
}

fn find_part(entity: &str, wanted: &str) -> Option<String> {
    let (headers, body) = split_entity(entity);
    let content_type = header(&headers, "content-type").unwrap_or_else(|| "text/plain".into());
    let kind = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if kind.starts_with("multipart/") {
        let boundary = parameter(&content_type, "boundary")?;
        let delimiter = format!("--{boundary}");
        return body
            .split(delimiter.as_str())
            .skip(1)
            .take_while(|part| !part.starts_with("--"))
            .find_map(|part| find_part(part.trim_start_matches("\r\n"), wanted));
    }
    if kind != wanted {
        return None;
    }
    let encoding = header(&headers, "content-transfer-encoding")
        .unwrap_or_default()
        .to_ascii_lowercase();
    let bytes = match encoding.as_str() {
        "base64" => BASE64
            .decode(body.split_whitespace().collect::<String>())
            .unwrap_or_default(),
        "quoted-printable" => decode_quoted_printable(&body, false),
        _ => body.trim_end_matches("\r\n").as_bytes().to_vec(),
    };
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// Quoted-printable (RFC 2045) or, with `header`, RFC 2047's Q encoding.
fn decode_quoted_printable(text: &str, header: bool) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'=' if bytes.get(index + 1..index + 3) == Some(b"\r\n") => index += 3,
            b'=' if bytes.get(index + 1) == Some(&b'\n') => index += 2,
            b'=' => {
                let hex = bytes
                    .get(index + 1..index + 3)
                    .and_then(|hex| std::str::from_utf8(hex).ok())
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok());
                match hex {
                    Some(byte) => {
                        out.push(byte);
                        index += 3;
                    }
                    None => {
                        out.push(b'=');
                        index += 1;
                    }
                }
            }
            b'_' if header => {
                out.push(b' ');
                index += 1;
            }
            byte => {
                out.push(byte);
                index += 1;
            }
        }
    }
    if !header && out.ends_with(b"\r\n") {
        out.truncate(out.len() - 2);
    }
    out
}

/// Decodes RFC 2047 encoded words (`=?utf-8?B?…?=` / `?Q?`); whitespace
/// between two encoded words is dropped, as the RFC says.
pub fn decode_words(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    let mut last_was_word = false;
    while !rest.is_empty() {
        let Some(start) = rest.find("=?") else {
            out.push_str(rest);
            break;
        };
        let (before, candidate) = rest.split_at(start);
        let decoded = candidate[2..]
            .split_once('?')
            .and_then(|(_charset, after)| {
                let (encoding, after) = after.split_once('?')?;
                let (text, after) = after.split_once("?=")?;
                let bytes = match encoding.to_ascii_uppercase().as_str() {
                    "B" => BASE64.decode(text).ok()?,
                    "Q" => decode_quoted_printable(text, true),
                    _ => return None,
                };
                Some((String::from_utf8_lossy(&bytes).into_owned(), after))
            });
        match decoded {
            Some((word, after)) => {
                if !(last_was_word && before.trim().is_empty()) {
                    out.push_str(before);
                }
                out.push_str(&word);
                rest = after;
                last_was_word = true;
            }
            None => {
                out.push_str(before);
                out.push_str("=?");
                rest = &candidate[2..];
                last_was_word = false;
            }
        }
    }
    out
}
