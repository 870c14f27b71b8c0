//! The invitation and recording-ready messages in every language.

use chrono::{TimeZone, Utc};
use meet_mail::{
    invitation_message, recording_ready_message, EmailSettings, Language, RecordingReady,
};

fn settings() -> EmailSettings {
    EmailSettings {
        from: meet_mail::Mailbox::parse("noreply@visio.example").unwrap(),
        brand_name: "Visio".into(),
        support_email: "help@visio.example".into(),
        logo_img: "https://visio.example/logo.png".into(),
        domain: "visio.example".into(),
        app_base_url: "https://visio.example".into(),
        ..EmailSettings::default()
    }
}

fn head(message: &meet_mail::Message) -> String {
    let raw = String::from_utf8(message.formatted().to_vec()).unwrap();
    raw.split("\r\n\r\n").next().unwrap().to_string()
}

#[test]
fn the_invitation_in_four_languages() {
    let expected = [
        (
            Language::En,
            "Video call in progress: alice@example.org is waiting for you to connect",
            "alice@example.org invites you to join an ongoing video call",
            "Thank you for using Visio.",
        ),
        (
            Language::Fr,
            "Appel vidéo en cours : alice@example.org attend que vous vous connectiez",
            "alice@example.org vous invite à rejoindre un appel vidéo en cours",
            "Merci d'utiliser Visio.",
        ),
        (
            Language::Nl,
            "Videogesprek bezig: alice@example.org wacht tot je verbinding maakt",
            "alice@example.org nodigt je uit voor een lopend videogesprek",
            "Bedankt voor het gebruik van Visio.",
        ),
        (
            Language::De,
            "Videoanruf läuft: alice@example.org wartet darauf, dass Sie sich verbinden",
            "alice@example.org lädt Sie zu einem laufenden Videoanruf ein",
            "Vielen Dank, dass Sie Visio nutzen.",
        ),
    ];
    for (language, subject, invites, thanks) in expected {
        let message = invitation_message(
            &settings(),
            language,
            "alice@example.org",
            "Daily <sync>",
            "daily-sync",
            "bob@example.org",
        )
        .unwrap();
        assert_eq!(message.subject, subject);
        assert_eq!(message.language, language);
        assert!(
            message.text_body.contains(invites),
            "{language:?}: {}",
            message.text_body
        );
        assert!(message.text_body.contains(thanks), "{language:?}");
        assert!(message
            .text_body
            .contains("https://visio.example/daily-sync"));
        assert!(message.text_body.contains("Daily <sync>"));
        assert!(message
            .html_body
            .contains("href=\"https://visio.example/daily-sync\""));
        assert!(message.html_body.contains(">visio.example/daily-sync<"));
        assert!(
            message.html_body.contains("Daily &lt;sync&gt;"),
            "room name escaped"
        );
        assert!(message
            .html_body
            .contains("<a href=\"mailto:alice@example.org\">alice@example.org</a>"));
        assert!(message
            .html_body
            .contains(&format!("lang=\"{}\"", language.code())));
        let head = head(&message);
        assert!(head.is_ascii(), "{head}");
        assert!(
            head.contains(&format!("Content-Language: {}", language.code())),
            "{head}"
        );
        assert!(head.contains("multipart/alternative"), "{head}");
        assert!(head.contains("To: <bob@example.org>"), "{head}");
    }
}

#[test]
fn the_recording_ready_email_in_four_languages_and_the_owners_time_zone() {
    // 23:30 UTC on 15 January is 00:30 on 16 January in Paris.
    let recording = RecordingReady {
        room_name: "Comité \"Budget\"",
        created_at: Utc.with_ymd_and_hms(2026, 1, 15, 23, 30, 0).unwrap(),
        expiration_days: Some(7),
        link: "https://visio.example/recording/0b4c0b5e-3b4c-4b1e-9a4e-2d3f6c1e2a10",
    };
    let expected = [
        (
            Language::En,
            "Your recording is ready",
            "is now ready to download",
            "The recording will expire in 7 days.",
        ),
        (
            Language::Fr,
            "Votre enregistrement est prêt",
            "est prêt à être téléchargé",
            "L'enregistrement expirera dans 7 jours.",
        ),
        (
            Language::Nl,
            "Je opname is klaar",
            "is klaar om te downloaden",
            "De opname verloopt over 7 dagen.",
        ),
        (
            Language::De,
            "Ihre Aufnahme ist fertig",
            "steht jetzt zum Herunterladen bereit",
            "Die Aufnahme läuft in 7 Tagen ab.",
        ),
    ];
    for (language, subject, ready, expires) in expected {
        let message = recording_ready_message(
            &settings(),
            language,
            "Europe/Paris",
            "owner@example.org",
            &recording,
        )
        .unwrap();
        assert_eq!(message.subject, subject);
        assert!(
            message.text_body.contains(ready),
            "{language:?}: {}",
            message.text_body
        );
        assert!(message.text_body.contains(expires), "{language:?}");
        assert!(
            message.text_body.contains("2026-01-16") && message.text_body.contains("00:30"),
            "{}",
            message.text_body
        );
        assert!(message.text_body.contains("Comité \"Budget\""));
        assert!(message.text_body.contains(recording.link));
        assert!(message.text_body.contains("help@visio.example"));
        assert!(message.html_body.contains("Comité &quot;Budget&quot;"));
        assert!(message
            .html_body
            .contains(&format!("href=\"{}\"", recording.link)));
        let head = head(&message);
        assert!(head.is_ascii(), "{head}");
        assert!(head.contains("To: <owner@example.org>"));
    }
}

#[test]
fn the_recording_date_uses_utc_for_an_unknown_zone_and_omits_a_missing_expiry() {
    let recording = RecordingReady {
        room_name: "Room",
        created_at: Utc.with_ymd_and_hms(2026, 1, 15, 23, 30, 0).unwrap(),
        expiration_days: None,
        link: "https://visio.example/recording/x",
    };
    let message = recording_ready_message(
        &settings(),
        Language::En,
        "Mars/Olympus",
        "o@example.org",
        &recording,
    )
    .unwrap();
    assert!(
        message.text_body.contains("on 2026-01-15 at 23:30"),
        "{}",
        message.text_body
    );
    assert!(!message.text_body.contains("expire"));
    let tokyo = recording_ready_message(
        &settings(),
        Language::En,
        "Asia/Tokyo",
        "o@example.org",
        &recording,
    )
    .unwrap();
    assert!(
        tokyo.text_body.contains("on 2026-01-16 at 08:30"),
        "{}",
        tokyo.text_body
    );
}

#[test]
fn language_from_a_request_or_a_user() {
    let from_header = Language::from_accept_language("nl-BE,nl;q=0.9,en;q=0.5").unwrap();
    assert_eq!(from_header, Language::Nl);
    let user = Language::first_supported([Some("de-de"), Some("en-us")]);
    let message = invitation_message(
        &settings(),
        user,
        "a@example.org",
        "r",
        "r",
        "b@example.org",
    )
    .unwrap();
    assert!(message.subject.starts_with("Videoanruf läuft"));
}

#[test]
fn header_values_cannot_carry_line_breaks() {
    let message = invitation_message(
        &settings(),
        Language::En,
        "alice@example.org\r\nBcc: eve@example.org",
        "r",
        "r",
        "bob@example.org",
    )
    .unwrap();
    let head = head(&message);
    assert!(!head.contains("\r\nBcc:"), "{head}");
    assert!(!message.subject.contains('\n'));
}
