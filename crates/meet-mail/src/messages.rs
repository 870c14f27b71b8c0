//! The messages the backend sends: the room invitation (api.md §4) and the
//! recording-ready owner email (recordings.md §3.1). Each message has one
//! recipient, alone in `To:`.

use chrono::{DateTime, Utc};
use mail_builder::headers::address::Address;
use mail_builder::MessageBuilder;

use crate::i18n::{escape_html, Catalogue, Language};
use crate::settings::check_address;
use crate::{EmailSettings, MailError};

/// A formatted message for one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub recipient: String,
    pub language: Language,
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
    formatted: Vec<u8>,
}

impl Message {
    /// A message from `email_from` to `recipient` with a plain-text and an HTML part.
    pub fn new(
        settings: &EmailSettings,
        language: Language,
        recipient: &str,
        subject: &str,
        text_body: String,
        html_body: String,
    ) -> Result<Message, MailError> {
        check_address(recipient).map_err(MailError::InvalidAddress)?;
        let subject = one_line(subject);
        let from: Address<'_> = match &settings.from.name {
            Some(name) => (one_line(name), settings.from.address.clone()).into(),
            None => settings.from.address.as_str().into(),
        };
        let mut builder = MessageBuilder::new()
            .from(from)
            .to(recipient)
            .subject(subject.as_str())
            .header(
                "Content-Language",
                mail_builder::headers::raw::Raw::new(language.code()),
            )
            .text_body(text_body.as_str())
            .html_body(html_body.as_str());
        if let Some(id) = message_id(settings.from.domain()) {
            builder = builder.message_id(id);
        }
        let formatted = builder.write_to_vec().map_err(|error| MailError::Io {
            step: crate::Step::MessageContent,
            reason: error.to_string(),
        })?;
        Ok(Message {
            recipient: recipient.to_string(),
            language,
            subject,
            text_body,
            html_body,
            formatted,
        })
    }

    /// The whole message (headers and MIME body, CRLF line endings), as sent after DATA.
    pub fn formatted(&self) -> &[u8] {
        &self.formatted
    }
}

/// A random `Message-ID` at the sender's domain (`None` if no randomness).
fn message_id(domain: &str) -> Option<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).ok()?;
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    let domain = if domain.is_empty() {
        "localhost"
    } else {
        domain
    };
    Some(format!("{hex}@{domain}"))
}

/// Header text on one line: line breaks and other controls become spaces.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
}

fn join_url(base: &str, slug: &str) -> String {
    format!("{}/{}", base.trim_end_matches('/'), slug)
}

/// The invitation to a room (`POST /rooms/{id}/invite/`), from `sender_email`,
/// to one recipient, in `language`.
pub fn invitation_message(
    settings: &EmailSettings,
    language: Language,
    sender_email: &str,
    room_name: &str,
    room_slug: &str,
    recipient: &str,
) -> Result<Message, MailError> {
    let catalogue = Catalogue::new(language);
    let sender = one_line(sender_email);
    let room_url = join_url(&settings.app_base_url, room_slug);
    let room_link = join_url(&settings.domain, room_slug);
    let subject = catalogue.render("invitation.subject", &[("sender", &sender)]);
    let brand = settings.brand_name.as_str();
    let tips = [
        "invitation.tip_browser",
        "invitation.tip_devices",
        "invitation.tip_network",
    ];

    let mut text = String::new();
    text.push_str(&catalogue.render("invitation.invites", &[("sender", &sender)]));
    text.push_str("\n\n");
    if !room_name.is_empty() {
        text.push_str(&catalogue.render("invitation.room", &[("room", room_name)]));
        text.push_str("\n\n");
    }
    text.push_str(&format!(
        "{}: {room_url}\n\n",
        catalogue.text("invitation.join")
    ));
    text.push_str(catalogue.text("invitation.copy_link"));
    text.push_str("\n\n");
    text.push_str(catalogue.text("invitation.tips"));
    text.push('\n');
    for tip in tips {
        text.push_str(&format!("- {}\n", catalogue.text(tip)));
    }
    text.push('\n');
    text.push_str(&catalogue.render("common.thanks", &[("brand", brand)]));
    text.push('\n');
    push_support_text(&mut text, &catalogue, settings);

    let sender_html = format!("<a href=\"mailto:{0}\">{0}</a>", escape_html(&sender));
    let mut content = String::new();
    content.push_str(&format!(
        "<p style=\"font-size:18px\">{}</p>",
        catalogue.render_html("invitation.invites", &[("sender", &sender_html)])
    ));
    if !room_name.is_empty() {
        content.push_str(&format!(
            "<p style=\"font-size:16px\">{}</p>",
            catalogue.render_html("invitation.room", &[("room", &escape_html(room_name))])
        ));
    }
    content.push_str(&button(
        &room_url,
        catalogue.text("invitation.join"),
        "#1A73E8",
    ));
    content.push_str(&format!(
        "<p style=\"text-align:center;color:#5F6368;font-size:14px\">{}</p>",
        escape_html(&room_link)
    ));
    content.push_str("<hr style=\"border:none;border-top:1px solid #EEEEEE;margin:30px 0\">");
    content.push_str(&format!(
        "<p style=\"font-size:14px\">{}</p>",
        escape_html(catalogue.text("invitation.copy_link"))
    ));
    content.push_str(&format!(
        "<p style=\"font-size:14px\">{}</p><ul style=\"font-size:14px\">",
        escape_html(catalogue.text("invitation.tips"))
    ));
    for tip in tips {
        content.push_str(&format!("<li>{}</li>", escape_html(catalogue.text(tip))));
    }
    content.push_str("</ul>");
    content.push_str(&format!(
        "<p style=\"font-size:14px\">{}</p>",
        catalogue.render_html("common.thanks", &[("brand", &escape_html(brand))])
    ));
    let html = layout(&catalogue, settings, &subject, &content);
    Message::new(settings, language, recipient, &subject, text, html)
}

/// What the recording-ready email tells the owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingReady<'a> {
    pub room_name: &'a str,
    pub created_at: DateTime<Utc>,
    /// `recording_expiration_days`; `None` (or 0) = no expiry sentence.
    pub expiration_days: Option<u32>,
    /// `<screen_recording_base_url>/<recording id>`.
    pub link: &'a str,
}

/// The "your recording is ready" email to one owner, in their language,
/// with the recording's date and time in `time_zone` (an IANA name; an
/// unknown one falls back to UTC).
pub fn recording_ready_message(
    settings: &EmailSettings,
    language: Language,
    time_zone: &str,
    recipient: &str,
    recording: &RecordingReady<'_>,
) -> Result<Message, MailError> {
    let catalogue = Catalogue::new(language);
    let zone: chrono_tz::Tz = time_zone.parse().unwrap_or(chrono_tz::UTC);
    let local = recording.created_at.with_timezone(&zone);
    let date = local.format("%Y-%m-%d").to_string();
    let time = local.format("%H:%M").to_string();
    let subject = catalogue.text("recording.subject").to_string();
    let brand = settings.brand_name.as_str();
    let days = recording
        .expiration_days
        .filter(|days| *days > 0)
        .map(|days| days.to_string());
    let steps = [
        "recording.step_open",
        "recording.step_download",
        "recording.step_save",
    ];

    let mut text = String::new();
    text.push_str(catalogue.text("recording.title"));
    text.push_str("\n\n");
    text.push_str(&catalogue.render(
        "recording.ready",
        &[
            ("room", recording.room_name),
            ("date", &date),
            ("time", &time),
        ],
    ));
    if let Some(days) = &days {
        text.push(' ');
        text.push_str(&catalogue.render("recording.expires", &[("days", days)]));
    }
    text.push_str("\n\n");
    text.push_str(catalogue.text("recording.sharing"));
    text.push_str("\n\n");
    text.push_str(catalogue.text("recording.keep"));
    text.push('\n');
    for (number, step) in steps.iter().enumerate() {
        text.push_str(&format!("{}. {}\n", number + 1, catalogue.text(step)));
    }
    text.push_str(&format!(
        "\n{}: {}\n\n",
        catalogue.text("recording.open"),
        recording.link
    ));
    push_support_text(&mut text, &catalogue, settings);
    text.push_str(&catalogue.render("common.thanks", &[("brand", brand)]));
    text.push('\n');

    let escaped_room = escape_html(recording.room_name);
    let mut content = String::new();
    content.push_str(&format!(
        "<h1 style=\"text-align:center;font-size:24px\">{}</h1>",
        escape_html(catalogue.text("recording.title"))
    ));
    content.push_str("<p>");
    content.push_str(&catalogue.render_html(
        "recording.ready",
        &[("room", &escaped_room), ("date", &date), ("time", &time)],
    ));
    if let Some(days) = &days {
        content.push(' ');
        content.push_str(&catalogue.render_html("recording.expires", &[("days", days)]));
    }
    content.push_str("</p>");
    content.push_str(&format!(
        "<p>{}</p>",
        escape_html(catalogue.text("recording.sharing"))
    ));
    content.push_str(&format!(
        "<p>{}</p><ol>",
        escape_html(catalogue.text("recording.keep"))
    ));
    for step in steps {
        content.push_str(&format!("<li>{}</li>", escape_html(catalogue.text(step))));
    }
    content.push_str("</ol>");
    content.push_str(&button(
        recording.link,
        catalogue.text("recording.open"),
        "#000091",
    ));
    if !settings.support_email.is_empty() {
        content.push_str(&format!(
            "<p>{}</p>",
            catalogue.render_html(
                "common.support",
                &[("support_email", &escape_html(&settings.support_email))]
            )
        ));
    }
    content.push_str(
        "<hr style=\"border:none;border-top:1px solid #DDDDDD;width:30%;margin:20px auto\">",
    );
    content.push_str(&format!(
        "<p>{}</p>",
        catalogue.render_html("common.thanks", &[("brand", &escape_html(brand))])
    ));
    let html = layout(&catalogue, settings, &subject, &content);
    Message::new(settings, language, recipient, &subject, text, html)
}

fn push_support_text(text: &mut String, catalogue: &Catalogue, settings: &EmailSettings) {
    if !settings.support_email.is_empty() {
        text.push_str(&catalogue.render(
            "common.support",
            &[("support_email", &settings.support_email)],
        ));
        text.push('\n');
    }
}

fn button(href: &str, label: &str, colour: &str) -> String {
    format!(
        "<p style=\"text-align:center;padding:20px 0\"><a href=\"{}\" style=\"display:inline-block;\
         background:{colour};color:#ffffff;border-radius:4px;font-weight:bold;font-size:16px;\
         padding:10px 25px;text-decoration:none\">{}</a></p>",
        escape_html(href),
        escape_html(label)
    )
}

/// The page around every message's content: logo on top, white card.
fn layout(catalogue: &Catalogue, settings: &EmailSettings, title: &str, content: &str) -> String {
    let logo = if settings.logo_img.is_empty() {
        String::new()
    } else {
        let alt = format!(
            "{} {}",
            catalogue.text("common.logo_alt"),
            settings.brand_name
        );
        format!(
            "<tr><td align=\"center\" style=\"padding:20px 0\"><img src=\"{}\" width=\"320\" \
             alt=\"{}\" style=\"max-width:100%\"></td></tr>",
            escape_html(&settings.logo_img),
            escape_html(alt.trim())
        )
    };
    format!(
        "<!DOCTYPE html>\n<html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\"><title>{title}</title></head>\n\
         <body style=\"margin:0;padding:0;background:#EEF1F8;font-family:Arial,Helvetica,sans-serif;color:#202124\">\n\
         <table role=\"presentation\" width=\"100%\" cellpadding=\"0\" cellspacing=\"0\"><tr><td align=\"center\" style=\"padding:0 16px 40px\">\n\
         <table role=\"presentation\" width=\"600\" cellpadding=\"0\" cellspacing=\"0\" style=\"max-width:600px\">\n\
         {logo}\n<tr><td style=\"background:#FFFFFF;padding:30px 20px 60px\">\n{content}\n</td></tr>\n\
         </table></td></tr></table>\n</body></html>\n",
        lang = catalogue.language().code(),
        title = escape_html(title),
    )
}
