//! `POST /api/v1.0/maintenance/run/` (ours): called by a scheduler (a
//! Kubernetes CronJob, say every minute) with `Authorization: Bearer
//! <maintenance_api_token>`. Retries due recording notifications and purges
//! expired rows of every table with an `expires_at` column, each step bounded.

use serde_json::{json, Map, Value};
use subtle::ConstantTimeEq;

use crate::email::Mailer;
use crate::error::ApiError;
use crate::http::{ApiRequest, ApiResponse, Method};
use crate::ports::Services;
use crate::recordings::notify::deliver_all_due;
use crate::recordings::store;
use crate::routing::method_not_allowed;

/// Deliveries attempted per run.
pub const DELIVERIES_PER_RUN: u64 = 50;
/// Rows deleted per table per run.
pub const PURGE_LIMIT: u64 = 5_000;
/// Finished deliveries are kept this long for the record.
pub const KEEP_FINISHED_DELIVERIES: time::Duration = time::Duration::days(30);

fn unauthorized() -> ApiResponse {
    ApiResponse::json(401, &json!({"detail": "Invalid token."}))
        .with_header("www-authenticate", "Bearer realm=\"maintenance\"")
}

/// The run.
pub fn run(
    request: &ApiRequest,
    services: &Services,
    mailer: &dyn Mailer,
) -> Result<ApiResponse, ApiError> {
    let Some(expected) = services
        .settings()
        .optional_string("maintenance_api_token")?
    else {
        return Err(ApiError::PermissionDenied(
            "Maintenance is disabled: `maintenance_api_token` is not set.".into(),
        ));
    };
    let token = request
        .header("authorization")
        .and_then(|header| header.strip_prefix("Bearer "));
    match token {
        Some(token) if bool::from(token.as_bytes().ct_eq(expected.trim().as_bytes())) => {}
        _ => return Ok(unauthorized()),
    }
    if request.method != Method::POST {
        return Err(method_not_allowed(request));
    }

    let deliveries = deliver_all_due(services, mailer, DELIVERIES_PER_RUN)?;
    let now = services.clock.now();
    let mut purged = Map::new();
    for table in store::expiring_tables(services.db)? {
        match store::purge_expired(services.db, &table, now, PURGE_LIMIT) {
            Ok(count) => {
                purged.insert(table, json!(count));
            }
            Err(error) => eprintln!("maintenance: purging {table} failed: {error}"),
        }
    }
    let finished =
        store::purge_finished_deliveries(services.db, now - KEEP_FINISHED_DELIVERIES, PURGE_LIMIT)?;
    purged.insert("meet_recording_delivery".into(), json!(finished));
    Ok(ApiResponse::json(
        200,
        &json!({"deliveries": deliveries.to_json(), "purged": Value::Object(purged)}),
    ))
}
