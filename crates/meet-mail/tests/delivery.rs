//! SMTP sessions against the project's fake SMTP server on loopback.

#[path = "../../../tests/src/smtp_server.rs"]
#[allow(dead_code)]
mod smtp_server;

use std::time::{Duration, Instant};

use meet_mail::{
    invitation_message, send, send_all, EmailSettings, Language, MailError, Mailer, Message,
    Secret, Step,
};
use smtp_server::{Misbehaviour, SmtpServer};

fn settings_for(server: &SmtpServer) -> EmailSettings {
    EmailSettings {
        host: Some(server.address.ip()),
        port: server.port(),
        from: meet_mail::Mailbox::parse("Visio Étoile <noreply@visio.example>").unwrap(),
        brand_name: "Visio".into(),
        support_email: "help@visio.example".into(),
        logo_img: "https://visio.example/logo.png".into(),
        domain: "visio.example".into(),
        app_base_url: "https://visio.example/".into(),
        timeout: Duration::from_secs(5),
        ..EmailSettings::default()
    }
}

fn invitation(settings: &EmailSettings, recipient: &str) -> Message {
    invitation_message(
        settings,
        Language::Fr,
        "alice@example.org",
        "Réunion d'équipe",
        "reunion-dequipe",
        recipient,
    )
    .unwrap()
}

#[test]
fn a_batch_goes_over_one_authenticated_session_one_recipient_each() {
    let server = SmtpServer::start();
    server.require_auth("meet", "p@ss word");
    let mut settings = settings_for(&server);
    settings.host_user = "meet".into();
    settings.host_password = Secret::new("p@ss word");
    let recipients = ["bob@example.org", "carol@example.org", "dave@example.org"];
    let messages: Vec<Message> = recipients
        .iter()
        .map(|to| invitation(&settings, to))
        .collect();

    let results = send_all(&settings, &messages);

    assert_eq!(results, vec![Ok(()), Ok(()), Ok(())]);
    assert_eq!(server.sessions(), 1);
    let received = server.messages();
    assert_eq!(received.len(), 3);
    for (message, recipient) in received.iter().zip(recipients) {
        assert_eq!(message.from, "noreply@visio.example");
        assert_eq!(message.recipients, [recipient]);
        assert_eq!(message.user.as_deref(), Some("meet"));
        let to = message.header("To").unwrap();
        assert_eq!(
            to.trim_matches(['<', '>']),
            recipient,
            "only the recipient in To:"
        );
        assert!(message.header("Cc").is_none() && message.header("Bcc").is_none());
        assert_eq!(
            message.subject().unwrap(),
            "Appel vidéo en cours : alice@example.org attend que vous vous connectiez"
        );
        assert!(
            message.header("Subject").unwrap().is_ascii(),
            "subject is RFC 2047 encoded"
        );
        let from = message.header("From").unwrap();
        assert!(
            from.is_ascii() && from.contains("<noreply@visio.example>"),
            "{from}"
        );
        let decoded = smtp_server::decode_words(&from);
        assert_eq!(
            decoded.replace('"', ""),
            "Visio Étoile <noreply@visio.example>",
            "{from}"
        );
        let text = message.text_body().unwrap();
        assert!(
            text.contains("alice@example.org vous invite à rejoindre un appel vidéo en cours"),
            "{text}"
        );
        assert!(
            text.contains("https://visio.example/reunion-dequipe"),
            "{text}"
        );
        let html = message.html_body().unwrap();
        assert!(
            html.contains("href=\"https://visio.example/reunion-dequipe\""),
            "{html}"
        );
        assert!(html.contains(">visio.example/reunion-dequipe<"), "{html}");
        assert!(html.contains("src=\"https://visio.example/logo.png\""));
        assert!(message
            .header("Message-ID")
            .unwrap()
            .ends_with("@visio.example>"));
    }
    let commands = server.commands();
    assert!(
        commands.iter().any(|line| line.starts_with("AUTH PLAIN ")),
        "{commands:?}"
    );
    assert_eq!(commands.last().map(String::as_str), Some("QUIT"));
}

#[test]
fn auth_login_is_used_when_plain_is_not_offered() {
    let server = SmtpServer::start();
    server
        .offer_mechanisms(&["LOGIN"])
        .require_auth("meet", "secret");
    let mut settings = settings_for(&server);
    settings.host_user = "meet".into();
    settings.host_password = Secret::new("secret");
    send(&settings, &invitation(&settings, "bob@example.org")).unwrap();
    assert_eq!(server.messages()[0].user.as_deref(), Some("meet"));
    assert!(server.commands().contains(&"AUTH LOGIN".to_string()));
}

#[test]
fn a_wrong_password_is_a_refusal_that_does_not_show_it() {
    let server = SmtpServer::start();
    server.require_auth("meet", "right");
    let mut settings = settings_for(&server);
    settings.host_user = "meet".into();
    settings.host_password = Secret::new("wrong-password");
    let error = send(&settings, &invitation(&settings, "bob@example.org")).unwrap_err();
    assert!(
        matches!(
            error,
            MailError::Refused {
                step: Step::Auth,
                code: 535,
                ..
            }
        ),
        "{error}"
    );
    assert!(!format!("{error} {error:?}").contains("wrong-password"));
    assert!(server.messages().is_empty());
}

#[test]
fn auth_configured_but_not_offered_is_a_clear_error() {
    let server = SmtpServer::start();
    let mut settings = settings_for(&server);
    settings.host_user = "meet".into();
    let error = send(&settings, &invitation(&settings, "bob@example.org")).unwrap_err();
    assert!(
        matches!(
            error,
            MailError::Unsupported {
                step: Step::Auth,
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn a_refused_recipient_fails_only_its_own_message() {
    let server = SmtpServer::start();
    server.refuse_recipient("nobody@example.org", 550);
    let settings = settings_for(&server);
    let messages = [
        invitation(&settings, "bob@example.org"),
        invitation(&settings, "nobody@example.org"),
        invitation(&settings, "carol@example.org"),
    ];
    let results = send_all(&settings, &messages);
    assert_eq!(results[0], Ok(()));
    match &results[1] {
        Err(
            error @ MailError::Refused {
                step: Step::RcptTo,
                code: 550,
                ..
            },
        ) => {
            assert!(error.is_permanent());
            assert!(error.to_string().contains("RCPT TO"), "{error}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(results[2], Ok(()));
    let delivered: Vec<_> = server
        .messages()
        .into_iter()
        .map(|m| m.recipients)
        .collect();
    assert_eq!(delivered, [["bob@example.org"], ["carol@example.org"]]);
    assert!(server.commands().contains(&"RSET".to_string()));
    assert_eq!(server.sessions(), 1);
}

#[test]
fn refusals_of_data_and_of_the_content_name_their_step() {
    let server = SmtpServer::start();
    server.refuse_data(554);
    let settings = settings_for(&server);
    let error = send(&settings, &invitation(&settings, "bob@example.org")).unwrap_err();
    assert!(
        matches!(
            error,
            MailError::Refused {
                step: Step::Data,
                code: 554,
                ..
            }
        ),
        "{error}"
    );

    let server = SmtpServer::start();
    server.refuse_content(554);
    let settings = settings_for(&server);
    let error = send(&settings, &invitation(&settings, "bob@example.org")).unwrap_err();
    assert!(
        matches!(
            error,
            MailError::Refused {
                step: Step::MessageContent,
                code: 554,
                ..
            }
        ),
        "{error}"
    );
    assert!(server.messages().is_empty());
}

#[test]
fn a_dropped_connection_fails_the_rest_of_the_batch() {
    let server = SmtpServer::start();
    server.at("MAIL", Misbehaviour::Drop);
    let settings = settings_for(&server);
    let messages = [
        invitation(&settings, "bob@example.org"),
        invitation(&settings, "carol@example.org"),
    ];
    let results = send_all(&settings, &messages);
    for result in results {
        let error = result.unwrap_err();
        assert!(
            matches!(
                error,
                MailError::Closed {
                    step: Step::MailFrom
                } | MailError::Io {
                    step: Step::MailFrom,
                    ..
                }
            ),
            "{error}"
        );
    }
    assert_eq!(server.sessions(), 1);

    let server = SmtpServer::start();
    server.at("GREETING", Misbehaviour::Drop);
    let error = send(
        &settings_for(&server),
        &invitation(&settings, "bob@example.org"),
    )
    .unwrap_err();
    assert!(
        matches!(
            error,
            MailError::Closed {
                step: Step::Greeting
            } | MailError::Io { .. }
        ),
        "{error}"
    );
}

#[test]
fn a_silent_server_times_out_at_each_step() {
    for verb in ["GREETING", "EHLO", "DATA", "CONTENT"] {
        let server = SmtpServer::start();
        server.at(verb, Misbehaviour::Stall);
        let mut settings = settings_for(&server);
        settings.timeout = Duration::from_millis(300);
        let started = Instant::now();
        let error = send(&settings, &invitation(&settings, "bob@example.org")).unwrap_err();
        let expected = match verb {
            "GREETING" => Step::Greeting,
            "EHLO" => Step::Ehlo,
            "DATA" => Step::Data,
            _ => Step::MessageContent,
        };
        assert_eq!(
            error,
            MailError::Timeout {
                step: expected,
                timeout: settings.timeout
            },
            "{verb}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{verb}: {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn a_closed_port_is_a_connect_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let settings = EmailSettings {
        host: Some(address.ip()),
        port: address.port(),
        ..EmailSettings::default()
    };
    let message = invitation(&settings, "bob@example.org");
    match send(&settings, &message).unwrap_err() {
        MailError::Connect { address: shown, .. } => assert_eq!(shown, address.to_string()),
        other => panic!("{other}"),
    }
    assert_eq!(
        send(&EmailSettings::default(), &message),
        Err(MailError::NotConfigured)
    );
}

#[test]
fn helo_is_used_when_ehlo_is_unknown() {
    let server = SmtpServer::start();
    server.reject_ehlo();
    let settings = settings_for(&server);
    send(&settings, &invitation(&settings, "bob@example.org")).unwrap();
    let commands = server.commands();
    assert_eq!(commands[..2], ["EHLO visio.example", "HELO visio.example"]);
    assert_eq!(server.messages().len(), 1);
}

#[test]
fn tls_failures_are_reported_as_such() {
    // STARTTLS required but not offered: never continue in clear.
    let server = SmtpServer::start();
    let mut settings = settings_for(&server);
    settings.use_tls = true;
    let error = send(&settings, &invitation(&settings, "bob@example.org")).unwrap_err();
    assert!(
        matches!(
            error,
            MailError::Unsupported {
                step: Step::StartTls,
                ..
            }
        ),
        "{error}"
    );
    assert!(server.messages().is_empty());

    // STARTTLS offered, but the peer does not speak TLS.
    let server = SmtpServer::start();
    server.advertise_starttls();
    let mut settings = settings_for(&server);
    settings.use_tls = true;
    settings.tls_server_name = "smtp.visio.example".into();
    let error = send(&settings, &invitation(&settings, "bob@example.org")).unwrap_err();
    assert!(
        matches!(
            error,
            MailError::Tls {
                step: Step::TlsHandshake,
                ..
            }
        ),
        "{error}"
    );

    // Implicit TLS against a plain server.
    let server = SmtpServer::start();
    let mut settings = settings_for(&server);
    settings.use_ssl = true;
    let error = send(&settings, &invitation(&settings, "bob@example.org")).unwrap_err();
    assert!(
        matches!(
            error,
            MailError::Tls {
                step: Step::TlsHandshake,
                ..
            }
        ),
        "{error}"
    );
    assert!(server.commands().is_empty());
}

#[test]
fn lines_starting_with_a_dot_arrive_intact() {
    let server = SmtpServer::start();
    let settings = settings_for(&server);
    let text = ".leading dot\n..two dots\n.\nlast line".to_string();
    let message = Message::new(
        &settings,
        Language::En,
        "bob@example.org",
        "Dots",
        text.clone(),
        "<p>.</p>".into(),
    )
    .unwrap();
    let mut mailer = Mailer::connect(&settings).unwrap();
    mailer.send(&message).unwrap();
    mailer.quit().unwrap();
    let received = &server.messages()[0];
    assert_eq!(received.text_body().unwrap().replace("\r\n", "\n"), text);
    assert_eq!(
        received.data,
        message
            .formatted()
            .to_vec()
            .into_iter()
            .collect::<Vec<u8>>()
    );
}

#[test]
fn a_recipient_that_could_inject_commands_is_refused_before_sending() {
    let settings = EmailSettings::default();
    let error = invitation_message(
        &settings,
        Language::En,
        "a@b.example",
        "r",
        "r",
        "x@y.example>\r\nRCPT TO:<z@w.example",
    )
    .unwrap_err();
    assert!(matches!(error, MailError::InvalidAddress(_)), "{error}");
}
