//! The core's `Mailer` port over SMTP: `meet_mail` speaks SMTP over a
//! `std::net::TcpStream`, which is `wasi:sockets` in a component (allowed
//! only to the `tcp://<ip>:<port>` entries of `allowed_outbound_hosts`) and
//! an ordinary socket natively.

use meet_core::email::{EmailSettings, MailError, Mailer, Message};

/// Sends through the SMTP server of the `email_*` settings, one session per
/// call; each step is bounded by `email_timeout`.
pub struct SpinMailer;

impl Mailer for SpinMailer {
    fn send_all(
        &self,
        settings: &EmailSettings,
        messages: &[Message],
    ) -> Vec<Result<(), MailError>> {
        meet_mail::send_all(settings, messages)
    }
}
