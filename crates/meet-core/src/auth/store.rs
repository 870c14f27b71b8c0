//! Server-side sessions in `meet_session`, keyed by the hash of the cookie.

use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::identity::store::{user_from_row, USER_COLUMNS};
use crate::identity::users::User;
use crate::ports::{Database, DbError, SqlRows, SqlValue};
use crate::sql::{rows, timestamp, Row};

/// A live session and, when logged in, its user.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub key_hash: String,
    pub data: Map<String, Value>,
    pub csrf_token: Option<String>,
    pub user: Option<User>,
}

/// Loads a live session with its user in one statement.
pub fn load(
    db: &dyn Database,
    key_hash: &str,
    now: OffsetDateTime,
) -> Result<Option<Session>, DbError> {
    let result = db.execute(
        &format!(
            "SELECT s.data AS session_data, s.csrf_token AS session_csrf_token, \
             s.user_id AS session_user_id, {USER_COLUMNS} \
             FROM meet_session s LEFT JOIN meet_user u ON u.id = s.user_id \
             WHERE s.key_hash = ? AND s.expires_at > ?"
        ),
        &[key_hash.into(), timestamp(now).into()],
    )?;
    let Some(row) = rows(&result).next() else {
        return Ok(None);
    };
    let data = match serde_json::from_str(&row.text("session_data")?) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    let user = match row.optional_text("session_user_id")? {
        Some(_) => Some(user_from_row(&row)?),
        None => None,
    };
    Ok(Some(Session {
        key_hash: key_hash.to_string(),
        data,
        csrf_token: row.optional_text("session_csrf_token")?,
        user,
    }))
}

/// The `caller AS (…)` common table expression that folds the caller's
/// resolution into a feature's statement (one round trip instead of two):
/// zero or one row of the credential's active user, with the columns of
/// [`USER_COLUMNS`] plus `session_data` and `session_csrf_token`.
///
/// It binds `?1`, `?2` and `?3` ([`CallerQuery::params`]); the statement
/// around it numbers its own parameters from `?4` ([`CALLER_PARAMS`] + 1).
/// A variant need not use all three: SQLite counts parameters up to the
/// largest number used.
#[derive(Debug, Clone, PartialEq)]
pub struct CallerQuery {
    pub cte: String,
    pub params: Vec<SqlValue>,
    /// The CTE matches no row whatever the database holds (an anonymous
    /// credential): [`CallerQuery::returning_column`] is then a constant.
    matches_nobody: bool,
}

/// How many parameters [`CallerQuery`] binds.
pub const CALLER_PARAMS: usize = 3;

/// The column of [`CallerQuery::returning_column`].
pub const RETURNED_CALLER: &str = "caller_row";

/// The columns of a caller row, in the order of the CTE.
pub const CALLER_COLUMNS: [&str; 11] = [
    "user_id",
    "user_sub",
    "user_email",
    "user_admin_email",
    "user_full_name",
    "user_short_name",
    "user_language",
    "user_timezone",
    "user_is_active",
    "session_data",
    "session_csrf_token",
];

impl CallerQuery {
    /// The caller of `credential` at `now`. `csrf_token`, for an unsafe
    /// request by session, is the token the session must hold (see
    /// [`crate::auth::csrf_token_to_match`]); `None` for safe requests.
    pub fn of(
        credential: &crate::auth::Credential,
        csrf_token: Option<&str>,
        now: OffsetDateTime,
    ) -> CallerQuery {
        use crate::auth::Credential;
        let now: SqlValue = timestamp(now).into();
        match credential {
            Credential::Anonymous => CallerQuery {
                cte: format!(
                    "caller AS (SELECT {USER_COLUMNS}, NULL AS session_data, \
                     NULL AS session_csrf_token FROM meet_user u WHERE 0)"
                ),
                params: vec![SqlValue::Null, SqlValue::Null, SqlValue::Null],
                matches_nobody: true,
            },
            Credential::Session { key_hash } => CallerQuery {
                cte: format!(
                    "caller AS (SELECT {USER_COLUMNS}, s.data AS session_data, \
                     s.csrf_token AS session_csrf_token \
                     FROM meet_session s JOIN meet_user u ON u.id = s.user_id \
                     WHERE s.key_hash = ?1 AND s.expires_at > ?2 AND u.is_active = 1 \
                       AND (?3 IS NULL OR s.csrf_token = ?3))"
                ),
                params: vec![
                    key_hash.as_str().into(),
                    now,
                    csrf_token.map(str::to_string).into(),
                ],
                matches_nobody: false,
            },
            Credential::Bearer { token_hash, .. } => CallerQuery {
                cte: format!(
                    "caller AS (SELECT {USER_COLUMNS}, NULL AS session_data, \
                     NULL AS session_csrf_token \
                     FROM meet_bearer_token b JOIN meet_user u ON u.id = b.user_id \
                     WHERE b.token_hash = ?1 AND b.expires_at > ?2 AND u.is_active = 1)"
                ),
                params: vec![token_hash.as_str().into(), now, SqlValue::Null],
                matches_nobody: false,
            },
        }
    }

    /// A caller already resolved to `user_id` (the full path's writes
    /// guard their permission with the same statements).
    pub fn user(user_id: &str) -> CallerQuery {
        CallerQuery {
            cte: format!(
                "caller AS (SELECT {USER_COLUMNS}, NULL AS session_data, \
                 NULL AS session_csrf_token FROM meet_user u WHERE u.id = ?1)"
            ),
            params: vec![user_id.into(), SqlValue::Null, SqlValue::Null],
            matches_nobody: false,
        }
    }

    /// Whether the CTE has its row, as an SQL condition: a constant for an
    /// anonymous credential, which SQLite then needs no sub-query to plan
    /// (every request prepares its statements afresh, see
    /// [`CallerQuery::returning_column`]).
    pub fn exists(&self) -> &'static str {
        if self.matches_nobody {
            "0"
        } else {
            "EXISTS (SELECT 1 FROM caller)"
        }
    }

    /// The caller's row for `RETURNING` (which cannot join), read back by
    /// [`CallerRecord::from_returning`]: one column, [`RETURNED_CALLER`],
    /// with the row's [`CALLER_COLUMNS`] as a JSON array, NULL without a
    /// caller. One scalar sub-query, not one per column: SQLite expands the
    /// CTE for each sub-query of each `RETURNING` it codes (an upsert codes
    /// two), and every request prepares its statements afresh, since each
    /// component instance has a new connection. Eleven sub-queries made the
    /// lobby poll's statement take ~0.85 ms to prepare, one takes ~0.25 ms.
    pub fn returning_column(&self) -> String {
        if self.matches_nobody {
            return format!("NULL AS {RETURNED_CALLER}");
        }
        format!(
            "(SELECT json_array({}) FROM caller) AS {RETURNED_CALLER}",
            CALLER_COLUMNS.join(", ")
        )
    }

    /// The caller's parameters followed by the statement's own.
    pub fn with_params(&self, own: Vec<SqlValue>) -> Vec<SqlValue> {
        let mut params = self.params.clone();
        params.extend(own);
        params
    }
}

/// The caller row of a statement built on [`CallerQuery`].
#[derive(Debug, Clone, PartialEq)]
pub struct CallerRecord {
    pub user: User,
    pub session_data: Option<Map<String, Value>>,
    pub csrf_token: Option<String>,
}

impl CallerRecord {
    /// The caller of `row`; `None` when its `user_id` is NULL (no caller).
    pub fn from_row(row: &Row) -> Result<Option<CallerRecord>, DbError> {
        if row.value("user_id")?.is_null() {
            return Ok(None);
        }
        let session_data = match row.optional_text("session_data")? {
            Some(text) => match serde_json::from_str(&text) {
                Ok(Value::Object(map)) => Some(map),
                _ => Some(Map::new()),
            },
            None => None,
        };
        Ok(Some(CallerRecord {
            user: user_from_row(row)?,
            session_data,
            csrf_token: row.optional_text("session_csrf_token")?,
        }))
    }

    /// The caller of a row returned with [`CallerQuery::returning_column`];
    /// `None` when there is no caller.
    pub fn from_returning(row: &Row) -> Result<Option<CallerRecord>, DbError> {
        let Some(text) = row.optional_text(RETURNED_CALLER)? else {
            return Ok(None);
        };
        // Not the text itself: it holds the session's data and CSRF token.
        let invalid = || DbError::Other("the returned caller is not a caller row".into());
        let values: Vec<Value> = serde_json::from_str(&text).map_err(|_| invalid())?;
        let values = values
            .into_iter()
            .map(|value| match value {
                Value::Null => Ok(SqlValue::Null),
                Value::String(text) => Ok(SqlValue::Text(text)),
                Value::Number(number) => number.as_i64().map(SqlValue::Integer).ok_or_else(invalid),
                _ => Err(invalid()),
            })
            .collect::<Result<Vec<_>, _>>()?;
        if values.len() != CALLER_COLUMNS.len() {
            return Err(invalid());
        }
        let caller = SqlRows {
            columns: CALLER_COLUMNS.map(String::from).to_vec(),
            rows: vec![values],
        };
        let record = rows(&caller).next().map(|row| CallerRecord::from_row(&row));
        record.unwrap_or(Ok(None))
    }
}

/// A session as written.
#[derive(Debug, Clone, Copy)]
pub struct SessionRecord<'a> {
    pub key_hash: &'a str,
    pub user_id: Option<&'a str>,
    pub data: &'a Map<String, Value>,
    pub csrf_token: Option<&'a str>,
    pub expires_at: OffsetDateTime,
}

/// Creates or replaces a session.
pub fn save(db: &dyn Database, record: &SessionRecord, now: OffsetDateTime) -> Result<(), DbError> {
    db.execute(
        "INSERT INTO meet_session (key_hash, user_id, data, csrf_token, created_at, expires_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
         ON CONFLICT (key_hash) DO UPDATE SET user_id = excluded.user_id, data = excluded.data, \
         csrf_token = excluded.csrf_token, expires_at = excluded.expires_at",
        &[
            record.key_hash.into(),
            record.user_id.map(str::to_string).into(),
            Value::Object(record.data.clone()).to_string().into(),
            record.csrf_token.map(str::to_string).into(),
            timestamp(now).into(),
            timestamp(record.expires_at).into(),
        ],
    )?;
    Ok(())
}

/// Updates only the data of a session, keeping its expiry.
pub fn save_data(
    db: &dyn Database,
    key_hash: &str,
    data: &Map<String, Value>,
) -> Result<(), DbError> {
    db.execute(
        "UPDATE meet_session SET data = ? WHERE key_hash = ?",
        &[
            Value::Object(data.clone()).to_string().into(),
            key_hash.into(),
        ],
    )?;
    Ok(())
}

pub fn delete(db: &dyn Database, key_hash: &str) -> Result<(), DbError> {
    db.execute(
        "DELETE FROM meet_session WHERE key_hash = ?",
        &[key_hash.into()],
    )?;
    Ok(())
}

/// Logs a user in on a fresh session key (no fixation): the old session,
/// if any, and every expired session are removed in the same statement batch.
pub fn start_login_session(
    db: &dyn Database,
    old_key_hash: Option<&str>,
    record: &SessionRecord,
    now: OffsetDateTime,
) -> Result<(), DbError> {
    db.execute(
        "DELETE FROM meet_session WHERE key_hash = ? OR expires_at <= ?",
        &[
            old_key_hash.map(str::to_string).into(),
            timestamp(now).into(),
        ],
    )?;
    save(db, record, now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::store::resolve_login;
    use crate::identity::users::ClaimedUser;
    use crate::native::migrated_database;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2025-06-30 12:00 UTC);

    fn anonymous<'a>(
        key_hash: &'a str,
        data: &'a Map<String, Value>,
        expires_at: OffsetDateTime,
    ) -> SessionRecord<'a> {
        SessionRecord {
            key_hash,
            user_id: None,
            data,
            csrf_token: None,
            expires_at,
        }
    }

    fn hash(n: u8) -> String {
        format!("{n:064}")
    }

    #[test]
    fn sessions_expire_and_logins_rotate_the_key() {
        let db = migrated_database().unwrap();
        let user = resolve_login(
            &db,
            &ClaimedUser {
                sub: "s".into(),
                email: None,
                full_name: None,
                short_name: None,
            },
            false,
            true,
            "00000000-0000-4000-8000-000000000001",
            NOW,
        )
        .unwrap()
        .unwrap();
        let mut data = Map::new();
        data.insert(
            "oidc_states".into(),
            serde_json::json!({"st": {"nonce": "n"}}),
        );
        let later = NOW + time::Duration::hours(12);
        let anonymous_record = |key_hash, expires_at| anonymous(key_hash, &data, expires_at);
        let (first, stranger) = (hash(1), hash(3));
        save(&db, &anonymous_record(&first, later), NOW).unwrap();
        let anonymous = load(&db, &hash(1), NOW).unwrap().unwrap();
        assert_eq!(anonymous.user, None);
        assert_eq!(anonymous.data, data);
        assert_eq!(load(&db, &hash(1), later).unwrap(), None, "expired");

        // An expired stranger's session is purged by the next login.
        save(
            &db,
            &anonymous_record(&stranger, NOW),
            NOW - time::Duration::hours(1),
        )
        .unwrap();
        let empty = Map::new();
        let login = SessionRecord {
            key_hash: &hash(2),
            user_id: Some(&user.id),
            data: &empty,
            csrf_token: Some("csrf"),
            expires_at: later,
        };
        start_login_session(&db, Some(&hash(1)), &login, NOW).unwrap();
        assert_eq!(load(&db, &hash(1), NOW).unwrap(), None, "old key is gone");
        let logged_in = load(&db, &hash(2), NOW).unwrap().unwrap();
        assert_eq!(logged_in.user.map(|u| u.id), Some(user.id.clone()));
        assert_eq!(logged_in.csrf_token.as_deref(), Some("csrf"));
        let count = db
            .execute("SELECT count(*) FROM meet_session", &[])
            .unwrap();
        assert_eq!(count.rows[0][0], crate::ports::SqlValue::Integer(1));

        delete(&db, &hash(2)).unwrap();
        assert_eq!(load(&db, &hash(2), NOW).unwrap(), None);
    }

    /// The caller as `RETURNING` reads it back is the caller as a join
    /// reads it, for a session (text, NULL and integer columns, session
    /// data), for no caller, and for an anonymous credential.
    #[test]
    fn the_returned_caller_is_the_joined_caller() {
        let db = migrated_database().unwrap();
        let claimed = ClaimedUser {
            sub: "s".into(),
            email: Some("ada@example.org".into()),
            full_name: Some("Ada \"L\" Lovelace".into()),
            short_name: None,
        };
        let user = resolve_login(
            &db,
            &claimed,
            false,
            true,
            "00000000-0000-4000-8000-000000000001",
            NOW,
        )
        .unwrap()
        .unwrap();
        let mut data = Map::new();
        data.insert("nested".into(), serde_json::json!({"list": [1, "two"]}));
        let later = NOW + time::Duration::hours(1);
        let session = SessionRecord {
            key_hash: &hash(1),
            user_id: Some(&user.id),
            data: &data,
            csrf_token: Some("csrf"),
            expires_at: later,
        };
        save(&db, &session, NOW).unwrap();
        let queries = [
            CallerQuery::of(
                &crate::auth::Credential::Session { key_hash: hash(1) },
                None,
                NOW,
            ),
            CallerQuery::user("00000000-0000-4000-8000-00000000dead"),
            CallerQuery::of(&crate::auth::Credential::Anonymous, None, NOW),
        ];
        let mut found = Vec::new();
        for query in &queries {
            let sql = format!(
                "WITH {} SELECT caller.*, {}, ?4 AS own FROM (SELECT 1) LEFT JOIN caller ON 1",
                query.cte,
                query.returning_column()
            );
            let result = db
                .execute(&sql, &query.with_params(vec![1.into()]))
                .unwrap();
            let row = rows(&result).next().unwrap();
            let joined = CallerRecord::from_row(&row).unwrap();
            assert_eq!(CallerRecord::from_returning(&row).unwrap(), joined, "{sql}");
            found.push(joined);
        }
        let session_caller = found[0].clone().expect("the session's caller");
        assert_eq!(session_caller.user, user);
        assert_eq!(session_caller.session_data, Some(data));
        assert_eq!(session_caller.csrf_token.as_deref(), Some("csrf"));
        assert_eq!(found[1..], [None, None]);
    }
}
