//! The recording lifecycle driven by LiveKit's egress webhooks (livekit.md
//! §5–6), matched by egress id (`worker_id`). Every move is a guarded
//! UPDATE that names its predecessors, so a late or repeated event changes
//! nothing.

use meet_livekit::{EgressStatus, WebhookEvent};

use crate::email::Mailer;
use crate::error::ApiError;
use crate::ports::Services;
use crate::recordings::model::Status;
use crate::recordings::notify::deliver_due;
use crate::recordings::store;

/// Due deliveries attempted opportunistically per webhook.
pub const DELIVERIES_PER_WEBHOOK: u64 = 3;

/// The moves an egress status asks for: `(from, to)`, tried in order.
fn moves(status: EgressStatus, ever_active: bool) -> Vec<(&'static [Status], Status)> {
    match status {
        EgressStatus::Active => vec![(&[Status::Initiated], Status::Active)],
        EgressStatus::Ending | EgressStatus::Complete | EgressStatus::LimitReached => {
            vec![(&[Status::Active], Status::Stopped)]
        }
        EgressStatus::Failed if !ever_active => {
            vec![(&[Status::Initiated, Status::Active], Status::FailedToStart)]
        }
        EgressStatus::Failed | EgressStatus::Aborted => {
            vec![(&[Status::Initiated, Status::Active], Status::Aborted)]
        }
        EgressStatus::Starting | EgressStatus::Other => Vec::new(),
    }
}

/// Applies an `egress_started` / `egress_updated` / `egress_ended` event.
/// With storage events disabled (`recording_storage_event_enable` false), a
/// complete egress saves the recording and notifies its owners as the
/// storage hook would. Then a few due deliveries are retried.
pub fn on_egress_event(
    services: &Services,
    mailer: &dyn Mailer,
    event: &WebhookEvent,
) -> Result<(), ApiError> {
    if let Some(info) = event
        .egress_info
        .as_ref()
        .filter(|info| !info.egress_id.is_empty())
    {
        let now = services.clock.now();
        for (from, to) in moves(info.status, info.started_at > 0) {
            if let Some(moved) =
                store::transition_by_worker(services.db, &info.egress_id, from, to, now)?
            {
                eprintln!(
                    "egress {} ({}): recording {} is now {}",
                    info.egress_id,
                    info.status.name().unwrap_or("unknown"),
                    moved.id,
                    moved.status
                );
            }
        }
        if matches!(
            info.status,
            EgressStatus::Complete | EgressStatus::LimitReached
        ) && !services.settings().bool("recording_storage_event_enable")?
        {
            if let Some(id) = store::save_by_worker(services.db, &info.egress_id, now)? {
                eprintln!(
                    "egress {}: recording {id} saved (storage events are disabled)",
                    info.egress_id
                );
                if let Err(error) = deliver_due(services, mailer, Some(&id), 100) {
                    eprintln!("recording {id}: notifying the owners failed: {error}");
                }
            }
        }
    }
    retry_some(services, mailer);
    Ok(())
}

/// The entry of the webhooks dispatch table for `egress_started`,
/// `egress_updated` and `egress_ended`.
pub fn egress_webhook(services: &Services, event: &WebhookEvent) -> Result<(), ApiError> {
    on_egress_event(services, &Smtp, event)
}

/// SMTP through `meet_mail` (a `std::net::TcpStream`: `wasi:sockets` in a
/// component), for handlers whose signature carries no mailer; the same
/// delivery as `meet_spin::SpinMailer`.
pub struct Smtp;

impl Mailer for Smtp {
    fn send_all(
        &self,
        settings: &crate::email::EmailSettings,
        messages: &[crate::email::Message],
    ) -> Vec<Result<(), crate::email::MailError>> {
        meet_mail::send_all(settings, messages)
    }
}

/// A few due deliveries, on any webhook; never fails the webhook.
pub fn retry_some(services: &Services, mailer: &dyn Mailer) {
    if let Err(error) = deliver_due(services, mailer, None, DELIVERIES_PER_WEBHOOK) {
        eprintln!("retrying recording notifications failed: {error}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_before_and_after_the_start_differ() {
        assert_eq!(
            moves(EgressStatus::Failed, false)[0].1,
            Status::FailedToStart
        );
        assert_eq!(moves(EgressStatus::Failed, true)[0].1, Status::Aborted);
        assert!(moves(EgressStatus::Starting, true).is_empty());
        assert_eq!(
            moves(EgressStatus::LimitReached, true)[0],
            (&[Status::Active][..], Status::Stopped)
        );
    }
}
