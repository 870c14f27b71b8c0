//! Sending email from an endpoint: the `email_*` settings read from Spin
//! variables, and the [`Mailer`] port that delivers messages built with
//! `meet_mail` (invitations, recording-ready notices).
//!
//! A feature builds its messages with `meet_mail` (one per recipient) and
//! sends them through the port:
//!
//! ```ignore
//! let settings = email::settings(services.variables)?; // 500 naming a bad variable
//! let message = meet_mail::invitation_message(&settings, language, sender, name, slug, to)?;
//! let results = mailer.send_all(&settings, &[message]); // one SMTP session, one result each
//! ```
//!
//! Components pass `meet_spin::SpinMailer` (SMTP over `wasi:sockets`);
//! unit tests pass an [`Outbox`], which records instead of sending.

use std::cell::RefCell;

pub use meet_mail::{EmailSettings, Language, MailError, Message};

use crate::error::ApiError;
use crate::settings::{SettingError, Variables};

/// Delivers messages. Implementations bound every network step in time
/// (`email_timeout`) and never put the password in an error.
pub trait Mailer {
    /// Sends every message over one connection; one result per message, in
    /// order (a failed connection fails them all with the same error).
    fn send_all(
        &self,
        settings: &EmailSettings,
        messages: &[Message],
    ) -> Vec<Result<(), MailError>>;
}

/// The email settings from the component's Spin variables (every name in
/// `meet_mail::settings::VARIABLES` must be listed for the component).
/// A missing or unparsable variable is a 500 that names it; a host name in
/// `email_host` is refused here, since Spin components cannot look names up.
pub fn settings(variables: &dyn Variables) -> Result<EmailSettings, ApiError> {
    let mut values = Vec::with_capacity(meet_mail::settings::VARIABLES.len());
    for name in meet_mail::settings::VARIABLES {
        values.push((*name, variables.get(name)?));
    }
    EmailSettings::from_lookup(|name| {
        values
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.clone())
    })
    .map_err(|error| ApiError::Misconfigured(SettingError::new(error.variable, error.message)))
}

/// Settings that can deliver: `email_host` is set. The operator must fix an
/// unset host, so it is a 500 naming the variable, not a gateway error.
pub fn require_server(settings: &EmailSettings) -> Result<(), ApiError> {
    if settings.host.is_none() {
        return Err(ApiError::Misconfigured(SettingError::new(
            "email_host",
            "must be set to the SMTP server's IP address to send email",
        )));
    }
    Ok(())
}

/// A [`Mailer`] that records the messages instead of sending them, or fails
/// each of them with a given error: for unit tests of the features.
#[derive(Default)]
pub struct Outbox {
    sent: RefCell<Vec<Message>>,
    failure: RefCell<Option<MailError>>,
}

impl Outbox {
    pub fn new() -> Outbox {
        Outbox::default()
    }

    /// Every later message fails with `error` (and is not recorded).
    pub fn fail_with(&self, error: MailError) {
        *self.failure.borrow_mut() = Some(error);
    }

    /// The messages sent so far, in order.
    pub fn sent(&self) -> Vec<Message> {
        self.sent.borrow().clone()
    }
}

impl Mailer for Outbox {
    fn send_all(
        &self,
        _settings: &EmailSettings,
        messages: &[Message],
    ) -> Vec<Result<(), MailError>> {
        messages
            .iter()
            .map(|message| match self.failure.borrow().clone() {
                Some(error) => Err(error),
                None => {
                    self.sent.borrow_mut().push(message.clone());
                    Ok(())
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::StaticVariables;

    fn variables(pairs: &[(&str, &str)]) -> StaticVariables {
        let mut variables = StaticVariables::default();
        for name in meet_mail::settings::VARIABLES {
            variables.set(name, "");
        }
        for (name, value) in pairs {
            variables.set(name, value);
        }
        variables
    }

    #[test]
    fn reads_every_email_variable() {
        let parsed = settings(&variables(&[
            ("email_host", "192.0.2.1"),
            ("email_port", "2525"),
            ("email_from", "Meet <meet@example.org>"),
            ("email_app_base_url", "https://meet.example.org"),
        ]))
        .unwrap();
        assert_eq!(
            parsed.outbound_host().as_deref(),
            Some("tcp://192.0.2.1:2525")
        );
        assert_eq!(parsed.from.address, "meet@example.org");
        assert_eq!(parsed.app_base_url, "https://meet.example.org");
        assert!(require_server(&parsed).is_ok());
    }

    #[test]
    fn a_host_name_is_a_500_naming_email_host() {
        let error = settings(&variables(&[("email_host", "smtp.example.org")])).unwrap_err();
        assert_eq!(error.status(), 500);
        let detail = error.body()["detail"].as_str().unwrap().to_string();
        assert!(detail.contains("`email_host`"), "{detail}");
        assert!(detail.contains("cannot look up host names"), "{detail}");
    }

    #[test]
    fn a_variable_missing_from_the_component_is_named() {
        let mut vars = variables(&[]);
        vars.0.retain(|(name, _)| name != "email_timeout");
        let error = settings(&vars).unwrap_err();
        assert!(error.body()["detail"]
            .as_str()
            .unwrap()
            .contains("`email_timeout`"));
    }

    #[test]
    fn an_unset_host_cannot_send() {
        let parsed = settings(&variables(&[])).unwrap();
        let error = require_server(&parsed).unwrap_err();
        assert_eq!(error.status(), 500);
        assert!(error.body()["detail"]
            .as_str()
            .unwrap()
            .contains("`email_host`"));
    }

    #[test]
    fn errors_never_show_the_password() {
        let error = settings(&variables(&[
            ("email_host_password", "hunter2"),
            ("email_port", "nope"),
        ]))
        .unwrap_err();
        assert!(!error.body().to_string().contains("hunter2"));
    }
}
