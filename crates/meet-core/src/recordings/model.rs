//! The recording's vocabulary (domain.md §5): statuses, modes, file keys,
//! expiration, and the recording settings read from Spin variables.

use std::fmt;
use std::str::FromStr;

use time::OffsetDateTime;

use crate::settings::{SettingError, Settings};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Initiated,
    Active,
    Stopped,
    Saved,
    Aborted,
    FailedToStart,
    FailedToStop,
    NotificationSucceeded,
}

impl Status {
    pub const ALL: [Status; 8] = [
        Status::Initiated,
        Status::Active,
        Status::Stopped,
        Status::Saved,
        Status::Aborted,
        Status::FailedToStart,
        Status::FailedToStop,
        Status::NotificationSucceeded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Initiated => "initiated",
            Status::Active => "active",
            Status::Stopped => "stopped",
            Status::Saved => "saved",
            Status::Aborted => "aborted",
            Status::FailedToStart => "failed_to_start",
            Status::FailedToStop => "failed_to_stop",
            Status::NotificationSucceeded => "notification_succeeded",
        }
    }

    /// The flow is over and the recording may be deleted
    /// (`notification_succeeded` is not in this set upstream).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Status::Stopped
                | Status::Saved
                | Status::Aborted
                | Status::FailedToStart
                | Status::FailedToStop
        )
    }

    /// A storage event may save it.
    pub fn is_savable(self) -> bool {
        matches!(self, Status::Active | Status::Stopped)
    }

    /// Its file may be downloaded.
    pub fn is_saved(self) -> bool {
        matches!(self, Status::Saved | Status::NotificationSucceeded)
    }

    /// `'a', 'b'` for an SQL `IN (…)` list of statuses.
    pub fn sql_list(statuses: &[Status]) -> String {
        statuses
            .iter()
            .map(|status| format!("'{}'", status.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn final_statuses() -> Vec<Status> {
        Status::ALL.into_iter().filter(|s| s.is_final()).collect()
    }
}

impl FromStr for Status {
    type Err = ();

    fn from_str(text: &str) -> Result<Status, ()> {
        Status::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
            .ok_or(())
    }
}

impl fmt::Display for Status {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    ScreenRecording,
    Transcript,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::ScreenRecording => "screen_recording",
            Mode::Transcript => "transcript",
        }
    }

    /// The file extension of the egress output (domain.md §5.1).
    pub fn extension(self) -> &'static str {
        match self {
            Mode::ScreenRecording => "mp4",
            Mode::Transcript => "ogg",
        }
    }
}

impl FromStr for Mode {
    type Err = ();

    fn from_str(text: &str) -> Result<Mode, ()> {
        match text {
            "screen_recording" => Ok(Mode::ScreenRecording),
            "transcript" => Ok(Mode::Transcript),
            _ => Err(()),
        }
    }
}

/// `<folder>/<id>.<ext>`: the object key in the bucket and the egress path.
pub fn recording_key(folder: &str, id: &str, mode: Mode) -> String {
    format!("{folder}/{id}.{}", mode.extension())
}

/// `created_at + days`, or `None` without expiration (unset or 0).
pub fn expired_at(created_at: OffsetDateTime, days: Option<u64>) -> Option<OffsetDateTime> {
    let days = days.filter(|days| *days > 0)?;
    let days = i64::try_from(days).ok()?;
    created_at.checked_add(time::Duration::days(days))
}

/// An ISO-8601 UTC datetime as DRF renders it: `Z`, microseconds only
/// when non-zero.
pub fn api_datetime(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    let base = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    );
    match at.microsecond() {
        0 => format!("{base}Z"),
        micros => format!("{base}.{micros:06}Z"),
    }
}

/// `recording_output_folder` (default `recordings`).
pub fn output_folder(settings: &Settings) -> Result<String, SettingError> {
    let folder = settings.string("recording_output_folder")?;
    let folder = folder.trim().trim_matches('/');
    if folder.is_empty() {
        return Err(SettingError::new("recording_output_folder", "must be set"));
    }
    Ok(folder.to_string())
}

/// `recording_expiration_days`: empty = never.
pub fn expiration_days(settings: &Settings) -> Result<Option<u64>, SettingError> {
    settings.optional_u64("recording_expiration_days")
}

/// The S3 settings shared by the egress upload and media access.
#[derive(Clone)]
pub struct S3Settings {
    pub endpoint_url: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub region: String,
    pub bucket: String,
}

impl fmt::Debug for S3Settings {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("S3Settings")
            .field("endpoint_url", &self.endpoint_url)
            .field("access_key_id", &self.access_key_id)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .finish_non_exhaustive()
    }
}

impl S3Settings {
    pub fn load(settings: &Settings) -> Result<S3Settings, SettingError> {
        Ok(S3Settings {
            endpoint_url: settings.required_string("aws_s3_endpoint_url")?,
            access_key_id: settings.required_string("aws_s3_access_key_id")?,
            secret_access_key: settings.required_string("aws_s3_secret_access_key")?,
            region: settings.string("aws_s3_region_name")?.trim().to_string(),
            bucket: settings.required_string("aws_storage_bucket_name")?,
        })
    }

    /// The bucket for signing, with the SigV4 default region when unset.
    pub fn bucket(&self) -> Result<meet_s3::Bucket, SettingError> {
        let region = if self.region.is_empty() {
            meet_s3::DEFAULT_REGION
        } else {
            &self.region
        };
        meet_s3::Bucket::new(
            &self.endpoint_url,
            &self.bucket,
            region,
            meet_s3::Credentials::new(&self.access_key_id, &self.secret_access_key),
        )
        .map_err(|error| SettingError::new("aws_s3_endpoint_url", error.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn statuses_round_trip_and_classify() {
        for status in Status::ALL {
            assert_eq!(status.as_str().parse(), Ok(status));
        }
        assert!(!Status::NotificationSucceeded.is_final());
        assert!(Status::FailedToStop.is_final());
        assert!(Status::Stopped.is_savable() && !Status::Saved.is_savable());
        assert_eq!(
            Status::sql_list(&[Status::Initiated, Status::Active]),
            "'initiated', 'active'"
        );
    }

    #[test]
    fn keys_and_expiration() {
        assert_eq!(
            recording_key("recordings", "abc", Mode::Transcript),
            "recordings/abc.ogg"
        );
        let at = datetime!(2024-01-31 10:00 UTC);
        assert_eq!(expired_at(at, Some(0)), None);
        assert_eq!(
            expired_at(at, Some(2)),
            Some(datetime!(2024-02-02 10:00 UTC))
        );
        assert_eq!(api_datetime(at), "2024-01-31T10:00:00Z");
        assert_eq!(
            api_datetime(datetime!(2024-01-31 10:00:00.5 UTC)),
            "2024-01-31T10:00:00.500000Z"
        );
    }
}
