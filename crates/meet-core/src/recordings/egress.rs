//! `rooms/{id}/start-recording/` and `rooms/{id}/stop-recording/` (api.md
//! §4): the permission chain, the recording created with its owner access
//! in one statement, and LiveKit Egress (livekit.md §4).

use serde_json::json;
use time::Duration;

use meet_livekit::{EgressFilter, EgressInfo, EgressStatus, RoomCompositeEgress, S3Upload};

use crate::auth::authenticate;
use crate::body::parse_body;
use crate::error::ApiError;
use crate::http::{ApiRequest, ApiResponse, Method};
use crate::livekit::{describe, with_server_api, LiveKit};
use crate::ports::Services;
use crate::recordings::model::{output_folder, recording_key, Mode, Status};
use crate::recordings::store::{self, CreateError, InProgress, RecordingRoom};
use crate::roles::Role;
use crate::rooms::store::RoomKey;
use crate::routing::method_not_allowed;
use crate::settings::Settings;

/// An `initiated` recording without egress older than this was left by a
/// request that died between its two statements: it no longer holds the room.
pub const STALE_START: Duration = Duration::minutes(2);

fn recording_disabled() -> ApiError {
    ApiError::PermissionDenied("Access denied, recording is disabled.".into())
}

fn no_privileges() -> ApiError {
    ApiError::PermissionDenied("You must have privileges on room to perform this action.".into())
}

fn in_progress_conflict() -> ApiError {
    ApiError::Custom {
        status: 400,
        body: json!({"__all__": ["Constraint \u{201c}unique_initiated_or_active_recording_per_room\u{201d} is violated."]}),
    }
}

/// 401 → 405 → 403 disabled; the caller is a user.
fn recording_request<'a>(
    request: &ApiRequest,
    services: &'a Services,
) -> Result<(crate::auth::Caller, Settings<'a>), ApiError> {
    let caller = authenticate(request, services)?;
    caller.require_user()?;
    if request.method != Method::POST {
        return Err(method_not_allowed(request));
    }
    let settings = services.settings();
    if !settings.bool("recording_enable")? {
        return Err(recording_disabled());
    }
    Ok((caller, settings))
}

/// 404 room → 403 privileges.
fn privileged_room(
    services: &Services,
    room: &str,
    user_id: &str,
) -> Result<RecordingRoom, ApiError> {
    let room = store::find_room(services.db, &RoomKey::from_path(room), user_id)?
        .ok_or(ApiError::NotFound("Room"))?;
    if !room.role.is_some_and(Role::is_privileged) {
        return Err(no_privileges());
    }
    Ok(room)
}

/// `{"mode": "screen_recording" | "transcript"}`; anything else is the
/// one `Invalid request.` answer (field errors are not shown).
fn parse_mode(request: &ApiRequest) -> Result<Mode, ApiError> {
    let invalid = || ApiError::Custom {
        status: 400,
        body: json!({"detail": "Invalid request."}),
    };
    let body = parse_body(request)?;
    body.get("mode")
        .and_then(|mode| mode.as_str())
        .and_then(|mode| mode.parse().ok())
        .ok_or_else(invalid)
}

/// The S3 upload block of every egress (livekit.md §4).
fn s3_upload(settings: &Settings) -> Result<S3Upload, ApiError> {
    Ok(S3Upload {
        access_key: settings.string("aws_s3_access_key_id")?,
        secret: settings.string("aws_s3_secret_access_key")?,
        region: settings.string("aws_s3_region_name")?,
        endpoint: settings.string("aws_s3_endpoint_url")?,
        bucket: settings.string("aws_storage_bucket_name")?,
        force_path_style: true,
    })
}

/// `POST /rooms/{id}/start-recording/`.
pub fn start_recording(
    request: &ApiRequest,
    services: &Services,
    room: &str,
) -> Result<ApiResponse, ApiError> {
    let (caller, settings) = recording_request(request, services)?;
    let user = caller.require_user()?;
    let mode = parse_mode(request)?;
    let room = privileged_room(services, room, &user.id)?;
    // Misconfiguration is found before anything is written.
    LiveKit::load(&settings)?;
    let folder = output_folder(&settings)?;
    let s3 = s3_upload(&settings)?;

    if let Some(existing) = &room.in_progress {
        if !free_if_over(services, existing)? {
            return Err(in_progress_conflict());
        }
    }
    let id = services.new_uuid();
    let now = services.clock.now();
    match store::create(
        services.db,
        &id,
        &room.id,
        mode,
        &user.id,
        &services.new_uuid(),
        now,
    ) {
        Ok(()) => {}
        Err(CreateError::InProgress) => return Err(in_progress_conflict()),
        Err(CreateError::Db(error)) => return Err(error.into()),
    }

    let key = recording_key(&folder, &id, mode);
    let egress = match mode {
        Mode::ScreenRecording => RoomCompositeEgress::screen_recording(&room.id, &key, s3),
        Mode::Transcript => RoomCompositeEgress::transcript(&room.id, &key, s3),
    };
    let started = with_server_api(services, |api| api.start_room_composite_egress(&egress))?;
    let now = services.clock.now();
    match started {
        Ok(info) if !info.egress_id.is_empty() => {
            store::mark_started(services.db, &id, &info.egress_id, now)?;
            Ok(ApiResponse::json(
                201,
                &json!({"message": format!("Recording successfully started for room {}", room.slug)}),
            ))
        }
        outcome => {
            match outcome {
                Err(error) => eprintln!("start-recording {id}: {}", describe(&error)),
                Ok(_) => eprintln!("start-recording {id}: LiveKit answered an empty egress id"),
            }
            store::transition(
                services.db,
                &id,
                &[Status::Initiated],
                Status::FailedToStart,
                None,
                now,
            )?;
            Err(ApiError::Custom {
                status: 500,
                body: json!({"error": format!("Recording failed to start for room {}", room.slug)}),
            })
        }
    }
}

/// Whether the recording in progress is in fact over (its egress ended,
/// LiveKit does not know it, or its start died half-way), in which case it
/// is closed with the status the egress reports and no longer holds the room.
fn free_if_over(services: &Services, existing: &InProgress) -> Result<bool, ApiError> {
    let now = services.clock.now();
    let Some(worker_id) = existing.worker_id.as_deref() else {
        if existing.status == Status::Initiated && existing.created_at + STALE_START < now {
            store::transition(
                services.db,
                &existing.id,
                &[Status::Initiated],
                Status::FailedToStart,
                None,
                now,
            )?;
            return Ok(true);
        }
        return Ok(false);
    };
    let filter = EgressFilter {
        room_name: None,
        egress_id: Some(worker_id.to_string()),
        active: false,
    };
    let listed = with_server_api(services, |api| api.list_egress(&filter))?;
    let egress: Option<EgressInfo> = match listed {
        Ok(items) => items.into_iter().find(|info| info.egress_id == worker_id),
        Err(error) if error.twirp().is_some_and(|twirp| twirp.code == "not_found") => None,
        Err(error) => {
            // Cannot tell: the recording keeps the room.
            eprintln!(
                "start-recording: checking egress {worker_id}: {}",
                describe(&error)
            );
            return Ok(false);
        }
    };
    let closed = match egress.map(|info| info.status) {
        Some(EgressStatus::Starting | EgressStatus::Active) => return Ok(false),
        Some(EgressStatus::Ending | EgressStatus::Complete | EgressStatus::LimitReached) => {
            Status::Stopped
        }
        Some(EgressStatus::Failed) if existing.status == Status::Initiated => Status::FailedToStart,
        // Failed after it ran, aborted, or unknown to LiveKit.
        _ => Status::Aborted,
    };
    eprintln!(
        "start-recording: recording {} held its room with egress {worker_id} that is over; now {closed}",
        existing.id
    );
    store::transition(
        services.db,
        &existing.id,
        &[existing.status],
        closed,
        Some(worker_id),
        now,
    )?;
    Ok(true)
}

/// `POST /rooms/{id}/stop-recording/`.
pub fn stop_recording(
    request: &ApiRequest,
    services: &Services,
    room: &str,
) -> Result<ApiResponse, ApiError> {
    let (caller, settings) = recording_request(request, services)?;
    let user = caller.require_user()?;
    let room = privileged_room(services, room, &user.id)?;
    let active = room
        .in_progress
        .filter(|recording| recording.status == Status::Active)
        .ok_or_else(|| {
            ApiError::NotFoundDetail("No active recording found for this room.".into())
        })?;
    LiveKit::load(&settings)?;
    let failed = || ApiError::Custom {
        status: 500,
        body: json!({"error": format!("Recording failed to stop for room {}", room.slug)}),
    };
    let stopped = match active.worker_id.as_deref() {
        Some(worker_id) => with_server_api(services, |api| api.stop_egress(worker_id))?,
        None => Err(meet_livekit::ApiError::InvalidResponse {
            method: "Egress/StopEgress",
            reason: "the recording has no egress id".into(),
        }),
    };
    let (status, answer) = match stopped {
        Ok(info) => match info.status {
            EgressStatus::Ending => (Status::Stopped, Ok(())),
            EgressStatus::Aborted => (Status::Aborted, Ok(())),
            EgressStatus::Starting => {
                eprintln!(
                    "stop-recording {}: the egress answered no status",
                    active.id
                );
                (Status::FailedToStop, Err(failed()))
            }
            other => {
                eprintln!(
                    "stop-recording {}: the egress answered {}",
                    active.id,
                    other.name().unwrap_or("an unknown status")
                );
                (Status::FailedToStop, Ok(()))
            }
        },
        Err(error) => {
            eprintln!("stop-recording {}: {}", active.id, describe(&error));
            (Status::FailedToStop, Err(failed()))
        }
    };
    store::transition(
        services.db,
        &active.id,
        &[Status::Active],
        status,
        None,
        services.clock.now(),
    )?;
    answer?;
    Ok(ApiResponse::json(
        200,
        &json!({"message": format!("Recording stopped for room {}.", room.slug)}),
    ))
}
