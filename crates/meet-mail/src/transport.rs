//! The connection to the configured server: TCP (wasi:sockets on Spin),
//! optionally TLS, and a [`Mailer`] sending several messages over it.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use crate::smtp::{MailError, SmtpClient, Step};
use crate::{EmailSettings, Message};

/// The byte stream under the SMTP session.
pub enum Connection {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Read for Connection {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        match self {
            Connection::Plain(stream) => stream.read(buffer),
            Connection::Tls(stream) => stream.read(buffer),
        }
    }
}

impl Write for Connection {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            Connection::Plain(stream) => stream.write(bytes),
            Connection::Tls(stream) => stream.write(bytes),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Connection::Plain(stream) => stream.flush(),
            Connection::Tls(stream) => stream.flush(),
        }
    }
}

/// Opens a TCP connection within `timeout`, with read and write timeouts of
/// `timeout` on the socket (wasi-libc implements `SO_RCVTIMEO`/`SO_SNDTIMEO`
/// for TCP on wasip2 by polling with a deadline).
pub fn connect_tcp(address: SocketAddr, timeout: Duration) -> Result<TcpStream, MailError> {
    let failed = |error: io::Error| match error.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => MailError::Timeout {
            step: Step::Connect,
            timeout,
        },
        _ => MailError::Connect {
            address: address.to_string(),
            reason: error.to_string(),
        },
    };
    let stream = match TcpStream::connect_timeout(&address, timeout) {
        Ok(stream) => stream,
        // A platform without a bounded connect: a plain connect is all there is.
        Err(error) if error.kind() == io::ErrorKind::Unsupported => {
            TcpStream::connect(address).map_err(failed)?
        }
        Err(error) => return Err(failed(error)),
    };
    let socket_error = |error: io::Error| MailError::Io {
        step: Step::Connect,
        reason: format!("setting the socket timeouts: {error}"),
    };
    stream
        .set_read_timeout(Some(timeout))
        .map_err(socket_error)?;
    stream
        .set_write_timeout(Some(timeout))
        .map_err(socket_error)?;
    Ok(stream)
}

/// TLS client settings: the RustCrypto provider (pure Rust, builds for
/// wasm32-wasip2) and the bundled Mozilla roots.
pub fn tls_config() -> Result<Arc<ClientConfig>, MailError> {
    let roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    tls_config_with_roots(roots)
}

/// [`tls_config`] trusting `roots` instead (tests, private CAs).
pub fn tls_config_with_roots(roots: RootCertStore) -> Result<Arc<ClientConfig>, MailError> {
    let config = ClientConfig::builder_with_provider(Arc::new(rustls_rustcrypto::provider()))
        .with_safe_default_protocol_versions()
        .map_err(|error| MailError::Tls {
            step: Step::TlsHandshake,
            reason: error.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The name the certificate must match: `email_tls_server_name`, else the IP.
fn server_name(
    settings: &EmailSettings,
    address: SocketAddr,
) -> Result<ServerName<'static>, MailError> {
    if settings.tls_server_name.is_empty() {
        return Ok(ServerName::IpAddress(address.ip().into()));
    }
    ServerName::try_from(settings.tls_server_name.clone()).map_err(|_| {
        MailError::Settings(crate::SettingsError {
            variable: "email_tls_server_name",
            message: "not a DNS name or an IP address".to_string(),
        })
    })
}

/// Runs the TLS handshake over `tcp` to completion (bounded by the socket timeouts).
pub fn start_tls(
    mut tcp: TcpStream,
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
    timeout: Duration,
) -> Result<StreamOwned<ClientConnection, TcpStream>, MailError> {
    let shown_name = name.to_str().into_owned();
    let mut connection = ClientConnection::new(config, name).map_err(|error| MailError::Tls {
        step: Step::TlsHandshake,
        reason: error.to_string(),
    })?;
    while connection.is_handshaking() {
        if let Err(error) = connection.complete_io(&mut tcp) {
            let mut mapped = MailError::from_io(Step::TlsHandshake, timeout, &error);
            if let MailError::Tls { reason, .. } = &mut mapped {
                if reason.contains("certificate") {
                    reason.push_str(&format!(
                        " (checked against {shown_name:?}; set email_tls_server_name to the \
                         name in the server's certificate)"
                    ));
                }
            } else if let MailError::Closed { .. } | MailError::Io { .. } = mapped {
                // A peer that does not speak TLS usually answers with bytes rustls rejects
                // or closes; say what was being attempted.
                mapped = MailError::Tls {
                    step: Step::TlsHandshake,
                    reason: format!("the handshake did not complete: {mapped}"),
                };
            }
            return Err(mapped);
        }
    }
    Ok(StreamOwned::new(connection, tcp))
}

/// An open, authenticated session with the configured server.
pub struct Mailer {
    client: Option<SmtpClient<Connection>>,
    from: String,
    /// Set after an error that ends the session; later sends fail with it.
    broken: Option<MailError>,
}

impl Mailer {
    /// Connects, greets, says EHLO, starts TLS as configured and authenticates.
    pub fn connect(settings: &EmailSettings) -> Result<Mailer, MailError> {
        let tls = if settings.use_tls || settings.use_ssl {
            Some(tls_config()?)
        } else {
            None
        };
        Mailer::connect_with(settings, tls)
    }

    /// [`Mailer::connect`] with these TLS client settings (e.g. from
    /// [`tls_config_with_roots`] for a private CA); `None` = [`tls_config`].
    pub fn connect_with(
        settings: &EmailSettings,
        tls: Option<Arc<ClientConfig>>,
    ) -> Result<Mailer, MailError> {
        let address = settings.server_address().ok_or(MailError::NotConfigured)?;
        let client_config = || match &tls {
            Some(config) => Ok(config.clone()),
            None => tls_config(),
        };
        let timeout = settings.timeout;
        let hello_name = hello_name(settings);
        let tcp = connect_tcp(address, timeout)?;
        let mut client = if settings.use_ssl {
            let tls = start_tls(
                tcp,
                client_config()?,
                server_name(settings, address)?,
                timeout,
            )?;
            let mut client = SmtpClient::greet(Connection::Tls(Box::new(tls)), timeout)?;
            client.hello(&hello_name)?;
            client
        } else {
            let mut client = SmtpClient::greet(Connection::Plain(tcp), timeout)?;
            client.hello(&hello_name)?;
            if settings.use_tls {
                let config = client_config()?;
                let name = server_name(settings, address)?;
                client.starttls(&hello_name, |stream| match stream {
                    Connection::Plain(tcp) => start_tls(tcp, config, name, timeout)
                        .map(|tls| Connection::Tls(Box::new(tls))),
                    Connection::Tls(_) => Err(MailError::Protocol {
                        step: Step::StartTls,
                        reason: "already encrypted".to_string(),
                    }),
                })?
            } else {
                client
            }
        };
        if !settings.host_user.is_empty() {
            client.authenticate(&settings.host_user, settings.host_password.expose())?;
        }
        Ok(Mailer {
            client: Some(client),
            from: settings.from.address.clone(),
            broken: None,
        })
    }

    /// Sends one message to its recipient. A refusal of this message (RCPT,
    /// DATA) leaves the session usable for the next one; any other error ends it.
    pub fn send(&mut self, message: &Message) -> Result<(), MailError> {
        if let Some(error) = &self.broken {
            return Err(error.clone());
        }
        let Some(client) = self.client.as_mut() else {
            return Err(MailError::Closed {
                step: Step::MailFrom,
            });
        };
        let result = client.send(
            &self.from,
            &[message.recipient.as_str()],
            message.formatted(),
        );
        if let Err(error) = &result {
            if !error.keeps_session() {
                self.broken = Some(error.clone());
                self.client = None;
            }
        }
        result
    }

    /// Says QUIT and closes the connection.
    pub fn quit(mut self) -> Result<(), MailError> {
        match self.client.take() {
            Some(client) => client.quit().map(drop),
            None => Ok(()),
        }
    }
}

/// Sends one message over its own connection.
pub fn send(settings: &EmailSettings, message: &Message) -> Result<(), MailError> {
    send_all(settings, std::slice::from_ref(message))
        .pop()
        .unwrap_or(Ok(()))
}

/// Sends every message over one connection; one result per message, in order.
/// A connection failure fails every message not yet sent with the same error.
/// The QUIT at the end is best effort: the messages were already accepted.
pub fn send_all(settings: &EmailSettings, messages: &[Message]) -> Vec<Result<(), MailError>> {
    if messages.is_empty() {
        return Vec::new();
    }
    let mut mailer = match Mailer::connect(settings) {
        Ok(mailer) => mailer,
        Err(error) => return messages.iter().map(|_| Err(error.clone())).collect(),
    };
    let results = messages
        .iter()
        .map(|message| mailer.send(message))
        .collect();
    let _ = mailer.quit();
    results
}

/// The EHLO argument: the sender's domain (components have no host name).
fn hello_name(settings: &EmailSettings) -> String {
    let domain = settings.from.domain();
    let valid = !domain.is_empty()
        && domain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if valid {
        domain.to_string()
    } else {
        "localhost".to_string()
    }
}
