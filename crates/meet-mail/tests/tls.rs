//! STARTTLS and implicit TLS against a small TLS SMTP server on loopback,
//! with a throwaway test CA (`tests/fixtures`, certificate for `smtp.visio.test`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::{channel, Receiver};
use std::sync::Arc;
use std::time::Duration;

use meet_mail::{invitation_message, EmailSettings, Language, MailError, Mailer, Secret, Step};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{RootCertStore, ServerConfig, ServerConnection, StreamOwned};

const CA: &[u8] = include_bytes!("fixtures/ca.pem");
const CERTIFICATE: &[u8] = include_bytes!("fixtures/server.pem");
const KEY: &[u8] = include_bytes!("fixtures/server.key");

fn server_config() -> Arc<ServerConfig> {
    let certificates = vec![CertificateDer::from_pem_slice(CERTIFICATE).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(KEY).unwrap();
    let config = ServerConfig::builder_with_provider(Arc::new(rustls_rustcrypto::provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certificates, key)
        .unwrap();
    Arc::new(config)
}

fn client_config() -> Arc<rustls::ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(CA).unwrap())
        .unwrap();
    meet_mail::tls_config_with_roots(roots).unwrap()
}

/// Serves one connection; sends back each message's data and the AUTH line seen.
fn serve_once(implicit: bool) -> (SocketAddr, Receiver<(String, Vec<u8>)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let (sender, receiver) = channel();
    std::thread::spawn(move || {
        let Ok((mut tcp, _)) = listener.accept() else {
            return;
        };
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        if !implicit {
            tcp.write_all(b"220 plain hello\r\n").unwrap();
            let mut reader = BufReader::new(tcp.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap(); // EHLO
            tcp.write_all(b"250-plain\r\n250 STARTTLS\r\n").unwrap();
            line.clear();
            reader.read_line(&mut line).unwrap();
            assert_eq!(line, "STARTTLS\r\n");
            tcp.write_all(b"220 go ahead\r\n").unwrap();
        }
        let connection = ServerConnection::new(server_config()).unwrap();
        let mut tls = StreamOwned::new(connection, tcp);
        if implicit {
            // The handshake runs on the first write.
            if tls.write_all(b"220 tls hello\r\n").is_err() {
                return;
            }
        }
        let _ = dialog(tls, &sender);
    });
    (address, receiver)
}

fn dialog(
    stream: StreamOwned<ServerConnection, TcpStream>,
    sender: &std::sync::mpsc::Sender<(String, Vec<u8>)>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    let mut auth = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
        let answer: &[u8] = match verb.as_str() {
            "EHLO" => b"250-tls\r\n250 AUTH PLAIN\r\n",
            "AUTH" => {
                auth = line.trim_end().to_string();
                b"235 ok\r\n"
            }
            "MAIL" | "RCPT" => b"250 ok\r\n",
            "DATA" => {
                reader.get_mut().write_all(b"354 go\r\n")?;
                let mut data = Vec::new();
                while !data.ends_with(b"\r\n.\r\n") {
                    let mut byte = [0u8; 1];
                    reader.read_exact(&mut byte)?;
                    data.push(byte[0]);
                }
                sender.send((auth.clone(), data)).unwrap();
                b"250 queued\r\n"
            }
            "QUIT" => {
                reader.get_mut().write_all(b"221 bye\r\n")?;
                return Ok(());
            }
            _ => b"502 no\r\n",
        };
        reader.get_mut().write_all(answer)?;
    }
}

fn settings(address: SocketAddr) -> EmailSettings {
    EmailSettings {
        host: Some(address.ip()),
        port: address.port(),
        tls_server_name: "smtp.visio.test".into(),
        timeout: Duration::from_secs(5),
        ..EmailSettings::default()
    }
}

fn message(settings: &EmailSettings) -> meet_mail::Message {
    invitation_message(
        settings,
        Language::En,
        "a@example.org",
        "Room",
        "room",
        "b@example.org",
    )
    .unwrap()
}

#[test]
fn implicit_tls_delivers_with_a_verified_certificate() {
    let (address, received) = serve_once(true);
    let mut settings = settings(address);
    settings.use_ssl = true;
    let mut mailer = Mailer::connect_with(&settings, Some(client_config())).unwrap();
    mailer.send(&message(&settings)).unwrap();
    mailer.quit().unwrap();
    let (_, data) = received.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(String::from_utf8_lossy(&data).contains("To: <b@example.org>"));
}

#[test]
fn starttls_upgrades_before_authenticating() {
    let (address, received) = serve_once(false);
    let mut settings = settings(address);
    settings.use_tls = true;
    settings.host_user = "meet".into();
    settings.host_password = Secret::new("secret");
    let mut mailer = Mailer::connect_with(&settings, Some(client_config())).unwrap();
    mailer.send(&message(&settings)).unwrap();
    mailer.quit().unwrap();
    let (auth, _) = received.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(
        auth.starts_with("AUTH PLAIN "),
        "AUTH went over TLS: {auth}"
    );
}

#[test]
fn a_certificate_for_another_name_is_refused() {
    let (address, _received) = serve_once(true);
    let mut settings = settings(address);
    settings.use_ssl = true;
    settings.tls_server_name = "other.visio.test".into();
    let error = Mailer::connect_with(&settings, Some(client_config()))
        .err()
        .unwrap();
    match &error {
        MailError::Tls {
            step: Step::TlsHandshake,
            reason,
        } => {
            assert!(reason.contains("email_tls_server_name"), "{reason}");
        }
        other => panic!("{other}"),
    }
}

#[test]
fn a_certificate_outside_the_bundled_roots_is_refused() {
    let (address, _received) = serve_once(true);
    let mut settings = settings(address);
    settings.use_ssl = true;
    let error = Mailer::connect(&settings).err().unwrap();
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
}
