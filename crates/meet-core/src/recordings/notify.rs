//! Owner notifications of saved recordings (recordings.md §3, correction
//! 12) as an outbox: the database owes one delivery per owner email (screen
//! recordings) or one summary-service call (transcripts) from the moment a
//! recording is saved; deliveries are claimed, attempted, and either
//! delivered (once), retried with exponential backoff, or abandoned after a
//! day. The recording becomes `notification_succeeded` when all succeeded.

use serde_json::{json, Value};
use time::Duration;

use meet_mail::{Language, MailError, RecordingReady};

use crate::email::{self, Mailer};
use crate::error::ApiError;
use crate::ports::{OutboundRequest, Services};
use crate::recordings::model::{expiration_days, output_folder, recording_key, Mode};
use crate::recordings::store::{self, AttemptResult, Delivery};
use crate::settings::Settings;

/// The summary service's timeout (recordings.md §3.2).
pub const SUMMARY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// How long a claim holds a delivery: longer than any attempt can take.
pub const CLAIM_LEASE: Duration = Duration::minutes(10);
/// First retry delay, doubled after each failure up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::minutes(1);
pub const MAX_BACKOFF: Duration = Duration::hours(1);
/// A delivery still failing this long after the recording was saved is
/// abandoned (and logged).
pub const GIVE_UP_AFTER: Duration = Duration::hours(24);

/// The delay before the next attempt, after `attempts` failed ones.
pub fn backoff(attempts: i64) -> Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 16)).unwrap_or(16);
    let delay = FIRST_BACKOFF * 2_i32.saturating_pow(doublings);
    delay.min(MAX_BACKOFF)
}

/// What one run of deliveries did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    pub attempted: usize,
    pub delivered: usize,
    pub retrying: usize,
    pub abandoned: usize,
}

impl DeliveryReport {
    pub fn to_json(self) -> Value {
        json!({
            "attempted": self.attempted,
            "delivered": self.delivered,
            "retrying": self.retrying,
            "abandoned": self.abandoned,
        })
    }

    fn add(&mut self, other: DeliveryReport) {
        self.attempted += other.attempted;
        self.delivered += other.delivered;
        self.retrying += other.retrying;
        self.abandoned += other.abandoned;
    }
}

/// Claims and attempts up to `limit` due deliveries (of `recording_id`
/// only, when given). Failures of the deliveries themselves are recorded,
/// never returned: only the database failing is an error.
pub fn deliver_due(
    services: &Services,
    mailer: &dyn Mailer,
    recording_id: Option<&str>,
    limit: u64,
) -> Result<DeliveryReport, ApiError> {
    let now = services.clock.now();
    let claim = services.new_uuid();
    let deliveries = store::claim_deliveries(
        services.db,
        recording_id,
        &claim,
        now,
        now + CLAIM_LEASE,
        limit,
    )?;
    if deliveries.is_empty() {
        return Ok(DeliveryReport::default());
    }
    let outcomes = attempt(services, mailer, &deliveries);
    let finished_at = services.clock.now();
    let mut report = DeliveryReport::default();
    let results: Vec<(i64, AttemptResult)> = deliveries
        .iter()
        .zip(outcomes)
        .map(|(delivery, outcome)| {
            report.attempted += 1;
            let result = match outcome {
                Ok(()) => {
                    report.delivered += 1;
                    AttemptResult::Delivered
                }
                Err(error) if finished_at - delivery.created_at >= GIVE_UP_AFTER => {
                    report.abandoned += 1;
                    eprintln!(
                        "recording {}: {} delivery {} abandoned after {} attempts: {error}",
                        delivery.recording_id, delivery.kind, delivery.id, delivery.attempts
                    );
                    AttemptResult::Abandoned { error }
                }
                Err(error) => {
                    report.retrying += 1;
                    eprintln!(
                        "recording {}: {} delivery {} failed (attempt {}), retrying: {error}",
                        delivery.recording_id, delivery.kind, delivery.id, delivery.attempts
                    );
                    AttemptResult::Retry {
                        at: finished_at + backoff(delivery.attempts),
                        error,
                    }
                }
            };
            (delivery.id, result)
        })
        .collect();
    store::finish_deliveries(services.db, &claim, &results, finished_at)?;
    Ok(report)
}

/// Like [`deliver_due`] in batches until nothing is due or `limit` were
/// attempted.
pub fn deliver_all_due(
    services: &Services,
    mailer: &dyn Mailer,
    limit: u64,
) -> Result<DeliveryReport, ApiError> {
    const BATCH: u64 = 20;
    let mut total = DeliveryReport::default();
    while (total.attempted as u64) < limit {
        let batch = BATCH.min(limit - total.attempted as u64);
        let report = deliver_due(services, mailer, None, batch)?;
        total.add(report);
        if (report.attempted as u64) < batch {
            break;
        }
    }
    Ok(total)
}

/// One outcome per delivery, in order.
fn attempt(
    services: &Services,
    mailer: &dyn Mailer,
    deliveries: &[Delivery],
) -> Vec<Result<(), String>> {
    let settings = services.settings();
    let mut outcomes: Vec<Option<Result<(), String>>> = vec![None; deliveries.len()];
    let emails: Vec<usize> = (0..deliveries.len())
        .filter(|&i| deliveries[i].kind == "email")
        .collect();
    if !emails.is_empty() {
        for (index, outcome) in emails.iter().zip(send_emails(
            services, mailer, &settings, deliveries, &emails,
        )) {
            outcomes[*index] = Some(outcome);
        }
    }
    for (index, delivery) in deliveries.iter().enumerate() {
        if delivery.kind == "summary" {
            outcomes[index] = Some(call_summary_service(services, &settings, delivery));
        }
    }
    outcomes
        .into_iter()
        .map(|outcome| outcome.unwrap_or_else(|| Err("unknown delivery kind".into())))
        .collect()
}

fn text<'a>(payload: &'a Value, field: &str) -> Option<&'a str> {
    payload.get(field).and_then(Value::as_str)
}

/// One email per delivery over one SMTP session.
fn send_emails(
    services: &Services,
    mailer: &dyn Mailer,
    settings: &Settings,
    deliveries: &[Delivery],
    indexes: &[usize],
) -> Vec<Result<(), String>> {
    let prepared = (|| -> Result<_, ApiError> {
        let email_settings = email::settings(services.variables)?;
        email::require_server(&email_settings)?;
        let base_url = settings
            .optional_string("screen_recording_base_url")?
            .unwrap_or_default();
        let days = expiration_days(settings)?.map(|days| u32::try_from(days).unwrap_or(u32::MAX));
        let default_language = settings.string("language_code")?;
        Ok((email_settings, base_url, days, default_language))
    })();
    let (email_settings, base_url, days, default_language) = match prepared {
        Ok(prepared) => prepared,
        Err(error) => {
            let reason = describe_api_error(&error);
            return indexes.iter().map(|_| Err(reason.clone())).collect();
        }
    };
    let mut outcomes: Vec<Result<(), String>> = Vec::with_capacity(indexes.len());
    let mut messages = Vec::new();
    let mut message_slots = Vec::new();
    for &index in indexes {
        let delivery = &deliveries[index];
        let payload = &delivery.payload;
        let created_at = text(payload, "created_at")
            .and_then(crate::sql::parse_timestamp)
            .and_then(|at| chrono::DateTime::from_timestamp(at.unix_timestamp(), at.nanosecond()));
        let (Some(recipient), Some(created_at)) = (text(payload, "email"), created_at) else {
            outcomes.push(Err("the owner has no email address".into()));
            continue;
        };
        let language =
            Language::first_supported([text(payload, "language"), Some(default_language.as_str())]);
        let link = format!(
            "{}/{}",
            base_url.trim_end_matches('/'),
            delivery.recording_id
        );
        let ready = RecordingReady {
            room_name: text(payload, "room_name").unwrap_or_default(),
            created_at,
            expiration_days: days,
            link: &link,
        };
        match meet_mail::recording_ready_message(
            &email_settings,
            language,
            text(payload, "timezone").unwrap_or("UTC"),
            recipient,
            &ready,
        ) {
            Ok(message) => {
                message_slots.push(outcomes.len());
                outcomes.push(Ok(()));
                messages.push(message);
            }
            Err(error) => outcomes.push(Err(error.to_string())),
        }
    }
    if !messages.is_empty() {
        let results: Vec<Result<(), MailError>> = mailer.send_all(&email_settings, &messages);
        for (position, slot) in message_slots.iter().enumerate() {
            outcomes[*slot] = match results.get(position) {
                Some(result) => result.clone().map_err(|error| error.to_string()),
                None => Err("the mailer gave no result for this message".into()),
            };
        }
    }
    outcomes
}

fn describe_api_error(error: &ApiError) -> String {
    match error {
        ApiError::Misconfigured(setting) => setting.to_string(),
        other => other.to_string(),
    }
}

/// `POST <summary_service_endpoint>` (recordings.md §3.2), 30 s timeout;
/// any 2xx is a success.
fn call_summary_service(
    services: &Services,
    settings: &Settings,
    delivery: &Delivery,
) -> Result<(), String> {
    let configured = (|| -> Result<_, ApiError> {
        let endpoint = settings.optional_string("summary_service_endpoint")?;
        let token = settings.optional_string("summary_service_api_token")?;
        let folder = output_folder(settings)?;
        Ok((endpoint, token, folder))
    })()
    .map_err(|error| describe_api_error(&error))?;
    let (Some(endpoint), Some(token), folder) = configured else {
        return Err("Summary service not configured".into());
    };
    let payload = &delivery.payload;
    let mode: Mode = text(payload, "mode")
        .and_then(|m| m.parse().ok())
        .unwrap_or(Mode::Transcript);
    let body = json!({
        "filename": recording_key(&folder, &delivery.recording_id, mode),
        "email": payload.get("email").cloned().unwrap_or(Value::Null),
        "sub": payload.get("sub").cloned().unwrap_or(Value::Null),
    });
    let request = OutboundRequest {
        method: "POST".into(),
        url: endpoint.trim().to_string(),
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("authorization".into(), format!("Bearer {}", token.trim())),
        ],
        body: body.to_string().into_bytes(),
        timeout: Some(SUMMARY_TIMEOUT),
    };
    match services.http.send(request) {
        Ok(response) if (200..300).contains(&response.status) => Ok(()),
        Ok(response) => Err(format!("the summary service answered {}", response.status)),
        Err(error) => Err(format!(
            "the summary service could not be reached: {} (check `summary_service_endpoint` \
             and that `summary_service_origin` allows it)",
            error.reason
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_a_minute_to_an_hour() {
        assert_eq!(backoff(1), Duration::minutes(1));
        assert_eq!(backoff(2), Duration::minutes(2));
        assert_eq!(backoff(4), Duration::minutes(8));
        assert_eq!(backoff(7), Duration::hours(1));
        assert_eq!(backoff(1000), Duration::hours(1));
    }
}
