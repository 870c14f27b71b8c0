//! PIN allocation for new rooms (domain.md §8, issue 11): unique by
//! construction, O(1), no retry loop.
//!
//! Each trunk (namespace) has a counter per PIN length in `meet_pin_counter`;
//! one statement picks the least-used trunk and takes its next counter value
//! atomically, and the room's PIN is [`meet_pin::PinPermutation`] of that
//! value under the secret `room_telephony_pin_secret`. Distinct counter values
//! of one trunk give distinct PINs, so the UNIQUE (trunk, pin) index only
//! guards against PINs given before the counters existed (random draws):
//! such a collision takes the next counter, at most
//! `room_telephony_pin_max_retries` times.

use meet_pin::{PinError, PinPermutation};

use crate::error::ApiError;
use crate::ports::{Database, DbError};
use crate::settings::{SettingError, Settings};
use crate::telephony::store;

/// The trunk of a deployment without trunk namespaces.
pub const DEFAULT_TRUNK: &str = "";

/// The telephony settings that PIN allocation and lookups need.
#[derive(Clone)]
pub struct PinSettings {
    pub length: u32,
    /// Trunk namespaces in configuration order; `[""]` without trunks.
    pub trunks: Vec<String>,
    /// Bound of the guard case (a PIN taken by an older room).
    pub max_collisions: u64,
    secret: String,
}

impl std::fmt::Debug for PinSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret stays out of logs.
        f.debug_struct("PinSettings")
            .field("length", &self.length)
            .field("trunks", &self.trunks)
            .finish_non_exhaustive()
    }
}

/// A PIN given to a new room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllocatedPin {
    /// `""` without trunk namespaces.
    pub trunk: String,
    pub pin: String,
    pub counter: u64,
}

/// Why no PIN could be allocated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AllocationError {
    #[error(transparent)]
    Pin(#[from] PinError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<AllocationError> for ApiError {
    fn from(error: AllocationError) -> ApiError {
        match error {
            // Not the operator's variables but their capacity: name the length.
            AllocationError::Pin(error) => ApiError::Misconfigured(SettingError::new(
                "room_telephony_pin_length",
                error.to_string(),
            )),
            AllocationError::Db(error) => error.into(),
        }
    }
}

impl PinSettings {
    /// `None` when `room_telephony_enabled` is false. When it is true the
    /// secret is required and the length must be usable, each error naming
    /// its variable.
    pub fn load(settings: &Settings) -> Result<Option<PinSettings>, SettingError> {
        if !settings.bool("room_telephony_enabled")? {
            return Ok(None);
        }
        let length_variable = "room_telephony_pin_length";
        let length = u32::try_from(settings.u64(length_variable)?)
            .map_err(|_| SettingError::new(length_variable, "is far too long"))?;
        let secret = settings
            .required_string("room_telephony_pin_secret")
            .map_err(|_| {
                SettingError::new(
                    "room_telephony_pin_secret",
                    "must be set when room_telephony_enabled is true (the key of the PIN permutation)",
                )
            })?;
        // Check the length now rather than at the first room.
        PinPermutation::new(secret.as_bytes(), length, DEFAULT_TRUNK)
            .map_err(|error| SettingError::new(length_variable, error.to_string()))?;
        let mut trunks = settings.list("room_telephony_trunks")?;
        trunks.dedup();
        if trunks.is_empty() {
            trunks.push(DEFAULT_TRUNK.to_string());
        }
        Ok(Some(PinSettings {
            length,
            trunks,
            max_collisions: settings.u64("room_telephony_pin_max_retries")?,
            secret,
        }))
    }

    /// Settings built directly (tests, tools).
    pub fn new(secret: &str, length: u32, trunks: &[&str], max_collisions: u64) -> PinSettings {
        let mut trunks: Vec<String> = trunks.iter().map(|t| t.to_string()).collect();
        if trunks.is_empty() {
            trunks.push(DEFAULT_TRUNK.to_string());
        }
        PinSettings {
            length,
            trunks,
            max_collisions,
            secret: secret.to_string(),
        }
    }

    /// Whether several trunks share the deployment (the trunk is then part
    /// of a PIN's address).
    pub fn has_several_trunks(&self) -> bool {
        self.trunks.len() > 1
    }

    /// The permutation of one trunk.
    pub fn permutation(&self, trunk: &str) -> Result<PinPermutation, PinError> {
        PinPermutation::new(self.secret.as_bytes(), self.length, trunk)
    }

    /// One statement: takes the next counter of the least-used trunk and
    /// maps it to that trunk's PIN. A full namespace is an error, not a loop.
    pub fn allocate(&self, db: &dyn Database) -> Result<AllocatedPin, AllocationError> {
        let (trunk, counter) = store::take_pin_counter(db, &self.trunks, self.length)?;
        let pin = self.permutation(&trunk)?.pin_for(counter)?;
        Ok(AllocatedPin {
            trunk,
            pin,
            counter,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::native::migrated_database;
    use crate::settings::StaticVariables;
    use std::collections::HashSet;

    const SECRET: &str = "telephony-secret";

    #[test]
    fn pins_are_distinct_without_retry() {
        let db = migrated_database().unwrap();
        let pins = PinSettings::new(SECRET, 4, &[], 5);
        let mut seen = HashSet::new();
        for expected_counter in 0..2000 {
            let allocated = pins.allocate(&db).unwrap();
            assert_eq!(allocated.counter, expected_counter);
            assert_eq!(allocated.trunk, "");
            assert_eq!(allocated.pin.len(), 4);
            assert!(allocated.pin.bytes().all(|b| b.is_ascii_digit()));
            assert!(seen.insert(allocated.pin), "duplicate PIN");
        }
    }

    #[test]
    fn the_sequence_is_not_the_counter() {
        let db = migrated_database().unwrap();
        let pins = PinSettings::new(SECRET, 10, &[], 5);
        let first: Vec<String> = (0..5).map(|_| pins.allocate(&db).unwrap().pin).collect();
        assert_ne!(first[0], "0000000000");
        assert_ne!(first[1], "0000000001");
        // Another secret gives other PINs for the same counters.
        let db = migrated_database().unwrap();
        let other = PinSettings::new("another-secret", 10, &[], 5);
        let second: Vec<String> = (0..5).map(|_| other.allocate(&db).unwrap().pin).collect();
        assert_ne!(first, second);
    }

    #[test]
    fn trunks_share_new_rooms_evenly() {
        let db = migrated_database().unwrap();
        let pins = PinSettings::new(SECRET, 6, &["trunk-a", "trunk-b", "trunk-c"], 5);
        let mut per_trunk = std::collections::BTreeMap::<String, HashSet<String>>::new();
        for _ in 0..300 {
            let allocated = pins.allocate(&db).unwrap();
            assert!(per_trunk
                .entry(allocated.trunk)
                .or_default()
                .insert(allocated.pin));
        }
        let counts: Vec<usize> = per_trunk.values().map(HashSet::len).collect();
        assert_eq!(counts, vec![100, 100, 100]);
        // A trunk added later catches up before the others get more.
        let more = PinSettings::new(SECRET, 6, &["trunk-a", "trunk-b", "trunk-c", "trunk-d"], 5);
        for _ in 0..10 {
            assert_eq!(more.allocate(&db).unwrap().trunk, "trunk-d");
        }
    }

    #[test]
    fn a_full_namespace_is_an_error_not_a_loop() {
        let db = migrated_database().unwrap();
        db.execute(
            "INSERT INTO meet_pin_counter (namespace, length, next) VALUES ('', 4, 9999)",
            &[],
        )
        .unwrap();
        let pins = PinSettings::new(SECRET, 4, &[], 5);
        assert_eq!(pins.allocate(&db).unwrap().counter, 9999);
        let error = pins.allocate(&db).unwrap_err();
        assert_eq!(
            error,
            AllocationError::Pin(PinError::NamespaceFull {
                length: 4,
                capacity: 10_000
            })
        );
        let api: ApiError = error.into();
        assert_eq!(api.status(), 500);
        assert!(api.body().to_string().contains("no telephony PIN left"));
    }

    #[test]
    fn settings_name_what_is_missing() {
        let mut variables = StaticVariables::new(&[
            ("room_telephony_enabled", "true"),
            ("room_telephony_pin_length", "10"),
            ("room_telephony_pin_max_retries", "5"),
            ("room_telephony_trunks", ""),
            ("room_telephony_pin_secret", ""),
        ]);
        let error = PinSettings::load(&Settings::new(&variables)).unwrap_err();
        assert_eq!(error.variable, "room_telephony_pin_secret");

        variables.set("room_telephony_pin_secret", SECRET);
        variables.set("room_telephony_pin_length", "3");
        let error = PinSettings::load(&Settings::new(&variables)).unwrap_err();
        assert_eq!(error.variable, "room_telephony_pin_length");
        assert!(error.problem.contains("at least 4 digits"), "{error}");

        variables.set("room_telephony_pin_length", "10");
        variables.set("room_telephony_trunks", "a, b");
        let loaded = PinSettings::load(&Settings::new(&variables))
            .unwrap()
            .unwrap();
        assert_eq!(loaded.trunks, vec!["a", "b"]);
        assert!(loaded.has_several_trunks());
        assert!(!format!("{loaded:?}").contains(SECRET));

        variables.set("room_telephony_enabled", "false");
        assert!(PinSettings::load(&Settings::new(&variables))
            .unwrap()
            .is_none());
    }
}
