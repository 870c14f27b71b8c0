//! An SMTP client (RFC 5321) over any byte stream, so it runs on a
//! `std::net::TcpStream` natively and on `wasm32-wasip2`, with or without TLS.
//!
//! Time: the caller sets read/write timeouts on the socket (each blocking call
//! is then bounded); on top of that every step checks its own deadline between
//! reads, so a server dripping bytes cannot hold a step much past the timeout.

use std::fmt;
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

/// One step of a session, named in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Connect,
    Greeting,
    Ehlo,
    Helo,
    StartTls,
    TlsHandshake,
    Auth,
    MailFrom,
    RcptTo,
    Data,
    MessageContent,
    Rset,
    Quit,
}

impl fmt::Display for Step {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Step::Connect => "connect",
            Step::Greeting => "the greeting",
            Step::Ehlo => "EHLO",
            Step::Helo => "HELO",
            Step::StartTls => "STARTTLS",
            Step::TlsHandshake => "the TLS handshake",
            Step::Auth => "AUTH",
            Step::MailFrom => "MAIL FROM",
            Step::RcptTo => "RCPT TO",
            Step::Data => "DATA",
            Step::MessageContent => "the message content",
            Step::Rset => "RSET",
            Step::Quit => "QUIT",
        })
    }
}

/// Why a message could not be sent. No variant ever carries the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailError {
    #[error("email is not configured (the variable `email_host` is empty)")]
    NotConfigured,
    #[error(transparent)]
    Settings(#[from] crate::SettingsError),
    #[error("invalid email address: {0}")]
    InvalidAddress(String),
    #[error("could not connect to the SMTP server at {address}: {reason}")]
    Connect { address: String, reason: String },
    #[error("the SMTP server did not complete {step} within {timeout:?}")]
    Timeout { step: Step, timeout: Duration },
    #[error("the SMTP server refused {step}: {code} {text}")]
    Refused { step: Step, code: u16, text: String },
    #[error("TLS failure during {step}: {reason}")]
    Tls { step: Step, reason: String },
    #[error("the SMTP server closed the connection during {step}")]
    Closed { step: Step },
    #[error("network error during {step}: {reason}")]
    Io { step: Step, reason: String },
    #[error("unexpected answer from the SMTP server during {step}: {reason}")]
    Protocol { step: Step, reason: String },
    #[error("the SMTP server does not offer {what}, needed for {step}")]
    Unsupported { step: Step, what: String },
}

impl MailError {
    /// A refusal with a 5xx code: sending the same message again will fail too.
    pub fn is_permanent(&self) -> bool {
        matches!(self, MailError::Refused { code, .. } if *code >= 500)
    }

    /// Whether the session can go on with the next message after this error.
    pub(crate) fn keeps_session(&self) -> bool {
        matches!(
            self,
            MailError::Refused {
                step: Step::MailFrom | Step::RcptTo | Step::Data | Step::MessageContent,
                ..
            } | MailError::InvalidAddress(_)
        )
    }

    /// Classifies an I/O error of `step` (timeouts, closed connections, TLS).
    pub(crate) fn from_io(step: Step, timeout: Duration, error: &io::Error) -> MailError {
        if let Some(tls) = error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return MailError::Tls {
                step,
                reason: tls.to_string(),
            };
        }
        match error.kind() {
            // A socket read timeout is `WouldBlock` on Unix (and wasi-libc), `TimedOut` elsewhere.
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                MailError::Timeout { step, timeout }
            }
            io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => MailError::Closed { step },
            _ => MailError::Io {
                step,
                reason: error.to_string(),
            },
        }
    }
}

/// A server reply: its code and its text lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    pub fn text(&self) -> String {
        self.lines.join(" / ")
    }
}

/// What the server's EHLO answer offered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extensions {
    /// `false` after a HELO fallback (no extensions at all).
    pub esmtp: bool,
    pub starttls: bool,
    /// Upper-case mechanism names, e.g. `PLAIN`, `LOGIN`.
    pub auth: Vec<String>,
    pub smtputf8: bool,
}

impl Extensions {
    fn from_ehlo(reply: &Reply) -> Extensions {
        let mut extensions = Extensions {
            esmtp: true,
            ..Extensions::default()
        };
        // The first line is the server's greeting name.
        for line in reply.lines.iter().skip(1) {
            let mut words = line.split_whitespace();
            let keyword = words.next().unwrap_or("").to_ascii_uppercase();
            match keyword.as_str() {
                "STARTTLS" => extensions.starttls = true,
                "SMTPUTF8" => extensions.smtputf8 = true,
                "AUTH" => extensions
                    .auth
                    .extend(words.map(|word| word.to_ascii_uppercase())),
                // Old servers write `AUTH=PLAIN LOGIN`.
                _ if keyword.starts_with("AUTH=") => {
                    extensions.auth.push(keyword["AUTH=".len()..].to_string());
                    extensions
                        .auth
                        .extend(words.map(|word| word.to_ascii_uppercase()));
                }
                _ => {}
            }
        }
        extensions
    }
}

/// Longest reply line accepted (RFC 5321 says 512; be generous).
const MAX_LINE: usize = 4096;
/// Most lines in one reply.
const MAX_LINES: usize = 128;

/// One SMTP session over `S`.
pub struct SmtpClient<S> {
    stream: S,
    /// Bytes read past the end of the last reply.
    pending: Vec<u8>,
    timeout: Duration,
    extensions: Extensions,
    /// Strings scrubbed from every error text (the password and its encodings).
    secrets: Vec<String>,
}

impl<S: Read + Write> SmtpClient<S> {
    /// Reads the server's greeting (220) on a freshly opened stream.
    pub fn greet(stream: S, timeout: Duration) -> Result<SmtpClient<S>, MailError> {
        let mut client = SmtpClient {
            stream,
            pending: Vec::new(),
            timeout,
            extensions: Extensions::default(),
            secrets: Vec::new(),
        };
        let reply = client.read_reply(Step::Greeting)?;
        client.expect(Step::Greeting, reply, &[220])?;
        Ok(client)
    }

    pub fn extensions(&self) -> &Extensions {
        &self.extensions
    }

    /// EHLO, or HELO when the server does not know EHLO.
    pub fn hello(&mut self, name: &str) -> Result<(), MailError> {
        let reply = self.command(Step::Ehlo, &format!("EHLO {name}"))?;
        if reply.code == 250 {
            self.extensions = Extensions::from_ehlo(&reply);
            return Ok(());
        }
        if !(500..600).contains(&reply.code) {
            return Err(self.refused(Step::Ehlo, &reply));
        }
        let reply = self.command(Step::Helo, &format!("HELO {name}"))?;
        self.expect(Step::Helo, reply, &[250])?;
        self.extensions = Extensions::default();
        Ok(())
    }

    /// STARTTLS, then `upgrade` wraps the stream (the TLS handshake), then EHLO again.
    pub fn starttls<T: Read + Write>(
        mut self,
        hello_name: &str,
        upgrade: impl FnOnce(S) -> Result<T, MailError>,
    ) -> Result<SmtpClient<T>, MailError> {
        if !self.extensions.starttls {
            return Err(MailError::Unsupported {
                step: Step::StartTls,
                what: "STARTTLS (email_use_tls is true)".to_string(),
            });
        }
        let reply = self.command(Step::StartTls, "STARTTLS")?;
        self.expect(Step::StartTls, reply, &[220])?;
        // Anything already buffered was sent in clear before the handshake:
        // accepting it would let a man in the middle inject replies.
        if !self.pending.is_empty() {
            return Err(MailError::Protocol {
                step: Step::StartTls,
                reason: "data received after the STARTTLS reply, before the TLS handshake"
                    .to_string(),
            });
        }
        let stream = upgrade(self.stream)?;
        let mut client = SmtpClient {
            stream,
            pending: Vec::new(),
            timeout: self.timeout,
            extensions: Extensions::default(),
            secrets: self.secrets,
        };
        client.hello(hello_name)?;
        Ok(client)
    }

    /// AUTH PLAIN or LOGIN, whichever the server offers (PLAIN first).
    pub fn authenticate(&mut self, user: &str, password: &str) -> Result<(), MailError> {
        let plain = BASE64.encode(format!("\0{user}\0{password}"));
        let encoded_password = BASE64.encode(password);
        for secret in [
            password.to_string(),
            plain.clone(),
            encoded_password.clone(),
        ] {
            if !secret.is_empty() {
                self.secrets.push(secret);
            }
        }
        let offers = |name: &str| self.extensions.auth.iter().any(|offered| offered == name);
        if offers("PLAIN") {
            let reply = self.command(Step::Auth, &format!("AUTH PLAIN {plain}"))?;
            let reply = if reply.code == 334 {
                // The server asked for the credentials on their own line.
                self.command(Step::Auth, &plain)?
            } else {
                reply
            };
            self.expect(Step::Auth, reply, &[235])?;
            return Ok(());
        }
        if offers("LOGIN") {
            let reply = self.command(Step::Auth, "AUTH LOGIN")?;
            self.expect(Step::Auth, reply, &[334])?;
            let reply = self.command(Step::Auth, &BASE64.encode(user))?;
            self.expect(Step::Auth, reply, &[334])?;
            let reply = self.command(Step::Auth, &encoded_password)?;
            self.expect(Step::Auth, reply, &[235])?;
            return Ok(());
        }
        Err(MailError::Unsupported {
            step: Step::Auth,
            what: if self.extensions.auth.is_empty() {
                "authentication (email_host_user is set)".to_string()
            } else {
                format!(
                    "AUTH PLAIN or LOGIN (it offers {})",
                    self.extensions.auth.join(" ")
                )
            },
        })
    }

    /// One transaction: MAIL FROM, RCPT TO each recipient, DATA. After a
    /// refusal the transaction is reset, so the session can send the next one.
    pub fn send(
        &mut self,
        from: &str,
        recipients: &[&str],
        message: &[u8],
    ) -> Result<(), MailError> {
        for address in std::iter::once(&from).chain(recipients) {
            crate::settings::check_address(address).map_err(MailError::InvalidAddress)?;
        }
        if recipients.is_empty() {
            return Err(MailError::InvalidAddress("no recipient".to_string()));
        }
        let result = self.transaction(from, recipients, message);
        if let Err(error) = &result {
            if error.keeps_session() {
                // Best effort; a failing RSET shows up on the next command.
                let _ = self.command(Step::Rset, "RSET");
            }
        }
        result
    }

    fn transaction(
        &mut self,
        from: &str,
        recipients: &[&str],
        message: &[u8],
    ) -> Result<(), MailError> {
        let utf8 = !from.is_ascii() || recipients.iter().any(|address| !address.is_ascii());
        if utf8 && !self.extensions.smtputf8 {
            return Err(MailError::Unsupported {
                step: Step::MailFrom,
                what: "SMTPUTF8 (an address is not ASCII)".to_string(),
            });
        }
        let parameters = if utf8 { " SMTPUTF8" } else { "" };
        let reply = self.command(Step::MailFrom, &format!("MAIL FROM:<{from}>{parameters}"))?;
        self.expect(Step::MailFrom, reply, &[250])?;
        for recipient in recipients {
            let reply = self.command(Step::RcptTo, &format!("RCPT TO:<{recipient}>"))?;
            self.expect(Step::RcptTo, reply, &[250, 251])?;
        }
        let reply = self.command(Step::Data, "DATA")?;
        self.expect(Step::Data, reply, &[354])?;
        self.write_all(Step::MessageContent, &data_payload(message))?;
        let reply = self.read_reply(Step::MessageContent)?;
        self.expect(Step::MessageContent, reply, &[250])?;
        Ok(())
    }

    /// QUIT, and the stream back.
    pub fn quit(mut self) -> Result<S, MailError> {
        let reply = self.command(Step::Quit, "QUIT")?;
        self.expect(Step::Quit, reply, &[221, 250])?;
        Ok(self.stream)
    }

    fn command(&mut self, step: Step, line: &str) -> Result<Reply, MailError> {
        if line.contains(['\r', '\n']) {
            return Err(MailError::InvalidAddress(
                "a command may not contain a line break".to_string(),
            ));
        }
        let mut bytes = Vec::with_capacity(line.len() + 2);
        bytes.extend_from_slice(line.as_bytes());
        bytes.extend_from_slice(b"\r\n");
        self.write_all(step, &bytes)?;
        self.read_reply(step)
    }

    fn write_all(&mut self, step: Step, bytes: &[u8]) -> Result<(), MailError> {
        let timeout = self.timeout;
        self.stream
            .write_all(bytes)
            .and_then(|()| self.stream.flush())
            .map_err(|error| MailError::from_io(step, timeout, &error))
    }

    fn expect(&self, step: Step, reply: Reply, accepted: &[u16]) -> Result<Reply, MailError> {
        if accepted.contains(&reply.code) {
            Ok(reply)
        } else {
            Err(self.refused(step, &reply))
        }
    }

    fn refused(&self, step: Step, reply: &Reply) -> MailError {
        MailError::Refused {
            step,
            code: reply.code,
            text: self.scrub(&reply.text()),
        }
    }

    fn scrub(&self, text: &str) -> String {
        self.secrets.iter().fold(text.to_string(), |text, secret| {
            text.replace(secret.as_str(), "***")
        })
    }

    /// Reads one (possibly multi-line) reply within the step's deadline.
    fn read_reply(&mut self, step: Step) -> Result<Reply, MailError> {
        let deadline = Instant::now() + self.timeout;
        let mut code = None;
        let mut lines = Vec::new();
        loop {
            let line = self.read_line(step, deadline)?;
            let line = String::from_utf8_lossy(&line).into_owned();
            let malformed = || MailError::Protocol {
                step,
                reason: format!("malformed reply line {:?}", truncate(&line, 80)),
            };
            let digits = line.get(..3).ok_or_else(malformed)?;
            let this_code: u16 = digits
                .parse()
                .ok()
                .filter(|value| (200..600).contains(value))
                .ok_or_else(malformed)?;
            if *code.get_or_insert(this_code) != this_code {
                return Err(MailError::Protocol {
                    step,
                    reason: "reply lines with different codes".to_string(),
                });
            }
            let separator = line.as_bytes().get(3).copied();
            let text = line.get(4..).unwrap_or("").to_string();
            match separator {
                None | Some(b' ') => {
                    lines.push(text);
                    return Ok(Reply {
                        code: this_code,
                        lines,
                    });
                }
                Some(b'-') => lines.push(text),
                Some(_) => return Err(malformed()),
            }
            if lines.len() > MAX_LINES {
                return Err(MailError::Protocol {
                    step,
                    reason: format!("reply longer than {MAX_LINES} lines"),
                });
            }
        }
    }

    /// One line without its CRLF (a bare LF is accepted too).
    fn read_line(&mut self, step: Step, deadline: Instant) -> Result<Vec<u8>, MailError> {
        loop {
            if let Some(end) = self.pending.iter().position(|&byte| byte == b'\n') {
                let mut line: Vec<u8> = self.pending.drain(..=end).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(line);
            }
            if self.pending.len() > MAX_LINE {
                return Err(MailError::Protocol {
                    step,
                    reason: format!("reply line longer than {MAX_LINE} bytes"),
                });
            }
            if Instant::now() >= deadline {
                return Err(MailError::Timeout {
                    step,
                    timeout: self.timeout,
                });
            }
            let mut buffer = [0u8; 1024];
            match self.stream.read(&mut buffer) {
                Ok(0) => return Err(MailError::Closed { step }),
                Ok(read) => self.pending.extend_from_slice(&buffer[..read]),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(MailError::from_io(step, self.timeout, &error)),
            }
        }
    }
}

fn truncate(text: &str, limit: usize) -> &str {
    match text.char_indices().nth(limit) {
        Some((index, _)) => &text[..index],
        None => text,
    }
}

/// The bytes sent after DATA's 354: every line ending made CRLF (a bare CR
/// or LF becomes CRLF), lines starting with `.` doubled (RFC 5321 §4.5.2),
/// and the terminating `.` line.
pub fn data_payload(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 64 + 5);
    let mut at_line_start = true;
    let mut bytes = message.iter().copied().peekable();
    while let Some(byte) = bytes.next() {
        match byte {
            b'\r' => {
                if bytes.peek() == Some(&b'\n') {
                    bytes.next();
                }
                out.extend_from_slice(b"\r\n");
                at_line_start = true;
            }
            b'\n' => {
                out.extend_from_slice(b"\r\n");
                at_line_start = true;
            }
            _ => {
                if at_line_start && byte == b'.' {
                    out.push(b'.');
                }
                out.push(byte);
                at_line_start = false;
            }
        }
    }
    if !at_line_start {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_is_dot_stuffed_and_crlf_normalised() {
        assert_eq!(data_payload(b"a\r\nb"), b"a\r\nb\r\n.\r\n");
        assert_eq!(data_payload(b"a\nb\rc\r\n"), b"a\r\nb\r\nc\r\n.\r\n");
        assert_eq!(
            data_payload(b".start\n..two\nmid.dle\n.\n"),
            b"..start\r\n...two\r\nmid.dle\r\n..\r\n.\r\n"
        );
        assert_eq!(data_payload(b""), b".\r\n");
        assert_eq!(data_payload(b"x\r\n\r\n.\r\n"), b"x\r\n\r\n..\r\n.\r\n");
    }

    #[test]
    fn ehlo_extensions_are_read() {
        let reply = Reply {
            code: 250,
            lines: vec![
                "mail.example.org greets you".into(),
                "PIPELINING".into(),
                "auth login Plain".into(),
                "AUTH=CRAM-MD5".into(),
                "STARTTLS".into(),
            ],
        };
        let extensions = Extensions::from_ehlo(&reply);
        assert!(extensions.esmtp && extensions.starttls && !extensions.smtputf8);
        assert_eq!(extensions.auth, ["LOGIN", "PLAIN", "CRAM-MD5"]);
    }

    /// A scripted peer: hands out `input` in `chunk`-byte reads, records writes.
    struct Script {
        input: Vec<u8>,
        position: usize,
        chunk: usize,
        written: Vec<u8>,
    }

    impl Read for Script {
        fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
            let end = (self.position + self.chunk.min(buffer.len())).min(self.input.len());
            let read = end - self.position;
            buffer[..read].copy_from_slice(&self.input[self.position..end]);
            self.position = end;
            if read == 0 {
                return Err(io::Error::new(io::ErrorKind::WouldBlock, "no more input"));
            }
            Ok(read)
        }
    }

    impl Write for Script {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.written.extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn script(input: &str, chunk: usize) -> Script {
        Script {
            input: input.as_bytes().to_vec(),
            position: 0,
            chunk,
            written: Vec::new(),
        }
    }

    #[test]
    fn multi_line_replies_split_anywhere_are_read() {
        for chunk in [1, 3, 7, 1024] {
            let peer = script(
                "220 hi\r\n250-x greets\r\n250-AUTH PLAIN\r\n250 SIZE 10\r\n",
                chunk,
            );
            let mut client = SmtpClient::greet(peer, Duration::from_secs(1)).unwrap();
            client.hello("me.example").unwrap();
            assert_eq!(client.extensions().auth, ["PLAIN"]);
            assert_eq!(client.stream.written, b"EHLO me.example\r\n");
        }
    }

    #[test]
    fn ehlo_falls_back_to_helo() {
        let peer = script("220 old\r\n502 what\r\n250 ok\r\n", 1024);
        let mut client = SmtpClient::greet(peer, Duration::from_secs(1)).unwrap();
        client.hello("me.example").unwrap();
        assert!(!client.extensions().esmtp);
        assert_eq!(
            client.stream.written,
            b"EHLO me.example\r\nHELO me.example\r\n"
        );
    }

    #[test]
    fn malformed_and_mixed_replies_are_protocol_errors() {
        for input in ["hello\r\n", "220-a\r\n250 b\r\n", "220x\r\n", "999 no\r\n"] {
            let error = SmtpClient::greet(script(input, 1024), Duration::from_secs(1))
                .err()
                .unwrap();
            assert!(
                matches!(
                    error,
                    MailError::Protocol {
                        step: Step::Greeting,
                        ..
                    }
                ),
                "{input:?}: {error}"
            );
        }
        let error = SmtpClient::greet(script("554 go away\r\n", 1024), Duration::from_secs(1))
            .err()
            .unwrap();
        assert_eq!(
            error.to_string(),
            "the SMTP server refused the greeting: 554 go away"
        );
    }

    #[test]
    fn refused_auth_never_shows_the_password() {
        let peer = script(
            "220 hi\r\n250-x\r\n250 AUTH PLAIN\r\n535 bad credentials hunter2 AGJvYgBodW50ZXIy\r\n",
            1024,
        );
        let mut client = SmtpClient::greet(peer, Duration::from_secs(1)).unwrap();
        client.hello("me").unwrap();
        let error = client.authenticate("bob", "hunter2").unwrap_err();
        let text = error.to_string();
        assert!(matches!(
            error,
            MailError::Refused {
                step: Step::Auth,
                code: 535,
                ..
            }
        ));
        assert!(
            !text.contains("hunter2") && !text.contains("AGJvYgBodW50ZXIy"),
            "{text}"
        );
    }

    #[test]
    fn replies_injected_before_the_tls_handshake_are_refused() {
        let peer = script(
            "220 hi\r\n250-x\r\n250 STARTTLS\r\n220 go\r\n250 injected\r\n",
            1024,
        );
        let mut client = SmtpClient::greet(peer, Duration::from_secs(1)).unwrap();
        client.hello("me").unwrap();
        let upgraded = client.starttls("me", Ok);
        assert!(matches!(
            upgraded.err().unwrap(),
            MailError::Protocol {
                step: Step::StartTls,
                ..
            }
        ));
    }

    #[test]
    fn an_overlong_line_is_refused() {
        let long = format!("220 {}", "x".repeat(MAX_LINE + 10));
        let error = SmtpClient::greet(script(&long, 1024), Duration::from_secs(1))
            .err()
            .unwrap();
        assert!(matches!(error, MailError::Protocol { .. }), "{error}");
    }

    #[test]
    fn a_silent_peer_is_a_timeout() {
        let error = SmtpClient::greet(script("", 1024), Duration::from_secs(1))
            .err()
            .unwrap();
        assert!(
            matches!(
                error,
                MailError::Timeout {
                    step: Step::Greeting,
                    ..
                }
            ),
            "{error}"
        );
    }
}
