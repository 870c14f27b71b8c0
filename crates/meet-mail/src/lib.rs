//! Outbound email for the Meet backend on Spin.
//!
//! A Spin component has no mail interface: the only way out is a TCP
//! connection (`wasi:sockets`, through `std::net::TcpStream` on
//! `wasm32-wasip2`) to an address its `allowed_outbound_hosts` lists as
//! `tcp://<ip>:<port>`. Spin cannot look up names, so `email_host` must be an
//! IP address; the certificate name for TLS comes from `email_tls_server_name`.
//!
//! * [`EmailSettings`]: the `email_*` variables;
//! * [`invitation_message`], [`recording_ready_message`]: translated messages
//!   ([`Language`], catalogues in `locales/*.json`);
//! * [`send`], [`send_all`], [`Mailer`]: delivery over one SMTP session
//!   ([`SmtpClient`] works over any `Read + Write` stream).

pub mod i18n;
pub mod messages;
pub mod settings;
pub mod smtp;
pub mod transport;

pub use i18n::Language;
pub use messages::{invitation_message, recording_ready_message, Message, RecordingReady};
pub use settings::{EmailSettings, Mailbox, Secret, SettingsError};
pub use smtp::{data_payload, MailError, SmtpClient, Step};
pub use transport::{send, send_all, tls_config, tls_config_with_roots, Mailer};
