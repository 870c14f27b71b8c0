//! Users in `meet_user`.

use crate::identity::users::{ClaimedUser, User, UserUpdate};
use crate::ports::{Database, DbError, SqlValue};
use crate::sql::{rows, timestamp, Row};
use time::OffsetDateTime;

/// The columns of a user as `u.<column> AS user_<column>`, for selects and
/// joins where the user table is aliased `u`.
pub const USER_COLUMNS: &str = "u.id AS user_id, u.sub AS user_sub, u.email AS user_email, \
     u.admin_email AS user_admin_email, u.full_name AS user_full_name, \
     u.short_name AS user_short_name, u.language AS user_language, \
     u.timezone AS user_timezone, u.is_active AS user_is_active";

/// The same columns for `RETURNING`, which cannot use a table alias.
const USER_RETURNING: &str = "id AS user_id, sub AS user_sub, email AS user_email, \
     admin_email AS user_admin_email, full_name AS user_full_name, \
     short_name AS user_short_name, language AS user_language, \
     timezone AS user_timezone, is_active AS user_is_active";

/// Reads a user selected with [`USER_COLUMNS`].
pub fn user_from_row(row: &Row) -> Result<User, DbError> {
    Ok(User {
        id: row.text("user_id")?,
        sub: row.optional_text("user_sub")?,
        email: row.optional_text("user_email")?,
        admin_email: row.optional_text("user_admin_email")?,
        full_name: row.optional_text("user_full_name")?,
        short_name: row.optional_text("user_short_name")?,
        language: row.text("user_language")?,
        timezone: row.text("user_timezone")?,
        is_active: row.boolean("user_is_active")?,
    })
}

fn first_user(db: &dyn Database, sql: &str, params: &[SqlValue]) -> Result<Option<User>, DbError> {
    let result = db.execute(sql, params)?;
    let user = rows(&result)
        .next()
        .map(|row| user_from_row(&row))
        .transpose();
    user
}

pub fn find(db: &dyn Database, id: &str) -> Result<Option<User>, DbError> {
    first_user(
        db,
        &format!("SELECT {USER_COLUMNS} FROM meet_user u WHERE u.id = ?"),
        &[id.into()],
    )
}

/// Applies a self-service update and returns the user as stored.
pub fn update_preferences(
    db: &dyn Database,
    id: &str,
    update: &UserUpdate,
    now: OffsetDateTime,
) -> Result<Option<User>, DbError> {
    first_user(
        db,
        &format!(
            "UPDATE meet_user SET language = coalesce(?, language), \
             timezone = coalesce(?, timezone), updated_at = ? WHERE id = ? \
             RETURNING {USER_RETURNING}"
        ),
        &[
            update.language.clone().into(),
            update.timezone.clone().into(),
            timestamp(now).into(),
            id.into(),
        ],
    )
}

/// One page of users, newest first, optionally filtered by an email search,
/// with the total count of matches (one statement).
pub fn list(
    db: &dyn Database,
    email_query: Option<&str>,
    limit: u64,
    offset: u64,
) -> Result<(u64, Vec<User>), DbError> {
    // pg_trgm's word similarity is not available in SQLite: a
    // case-insensitive substring match finds what the upstream search finds
    // for the queries it is used with (`oole` → `frank_poole@…`).
    let result = db.execute(
        &format!(
            "SELECT {USER_COLUMNS}, count(*) OVER () AS total FROM meet_user u \
             WHERE ?1 IS NULL OR instr(lower(u.email), lower(?1)) > 0 \
             ORDER BY u.created_at DESC, u.id LIMIT ?2 OFFSET ?3"
        ),
        &[
            email_query.map(str::to_string).into(),
            i64::try_from(limit).unwrap_or(i64::MAX).into(),
            i64::try_from(offset).unwrap_or(i64::MAX).into(),
        ],
    )?;
    let mut total = 0;
    let mut users = Vec::new();
    for row in rows(&result) {
        total = u64::try_from(row.integer("total")?).unwrap_or(0);
        users.push(user_from_row(&row)?);
    }
    Ok((total, users))
}

/// Why a login cannot resolve to a user (auth.md §2.3–2.5).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginRefusal {
    #[error("Multiple user accounts share a common email.")]
    SharedEmail,
    #[error("User account is disabled")]
    Inactive,
    #[error("No user found and user creation is disabled")]
    CreationDisabled,
}

/// Finds the user of a login and brings its fields up to date, or creates it.
/// Concurrent first logins of one new user create exactly one row.
pub fn resolve_login(
    db: &dyn Database,
    claimed: &ClaimedUser,
    fallback_to_email: bool,
    create_user: bool,
    new_id: &str,
    now: OffsetDateTime,
) -> Result<Result<User, LoginRefusal>, DbError> {
    let email = claimed.email.clone().filter(|_| fallback_to_email);
    let result = db.execute(
        &format!(
            "SELECT {USER_COLUMNS}, u.sub = ?1 AS by_sub FROM meet_user u \
             WHERE u.sub = ?1 OR (?2 IS NOT NULL AND lower(u.email) = lower(?2)) \
             ORDER BY by_sub DESC LIMIT 3"
        ),
        &[claimed.sub.as_str().into(), email.into()],
    )?;
    let mut by_sub = None;
    let mut by_email = Vec::new();
    for row in rows(&result) {
        let user = user_from_row(&row)?;
        if row.integer("by_sub").unwrap_or(0) == 1 {
            by_sub = Some(user);
        } else {
            by_email.push(user);
        }
    }
    let existing = match (by_sub, by_email.len()) {
        (Some(user), _) => Some(user),
        (None, 0) => None,
        (None, 1) => by_email.pop(),
        (None, _) => return Ok(Err(LoginRefusal::SharedEmail)),
    };
    let now = timestamp(now);
    let user = match existing {
        Some(user) if !user.is_active => return Ok(Err(LoginRefusal::Inactive)),
        Some(user) if !needs_update(&user, claimed) => user,
        Some(user) => first_user(
            db,
            &format!(
                "UPDATE meet_user SET sub = ?1, email = coalesce(?2, email), \
                 full_name = coalesce(?3, full_name), short_name = coalesce(?4, short_name), \
                 updated_at = ?5 WHERE id = ?6 RETURNING {USER_RETURNING}"
            ),
            &[
                claimed.sub.as_str().into(),
                claimed.email.clone().into(),
                claimed.full_name.clone().into(),
                claimed.short_name.clone().into(),
                now.into(),
                user.id.into(),
            ],
        )?
        .ok_or_else(|| DbError::Other("the user vanished during login".into()))?,
        None if !create_user => return Ok(Err(LoginRefusal::CreationDisabled)),
        None => first_user(
            db,
            &format!(
                "INSERT INTO meet_user AS u (id, created_at, updated_at, sub, email, full_name, short_name) \
                 VALUES (?1, ?2, ?2, ?3, ?4, ?5, ?6) \
                 ON CONFLICT (sub) DO UPDATE SET email = coalesce(excluded.email, u.email), \
                 full_name = coalesce(excluded.full_name, u.full_name), \
                 short_name = coalesce(excluded.short_name, u.short_name), updated_at = excluded.updated_at \
                 RETURNING {USER_RETURNING}"
            ),
            &[
                new_id.into(),
                now.into(),
                claimed.sub.as_str().into(),
                claimed.email.clone().into(),
                claimed.full_name.clone().into(),
                claimed.short_name.clone().into(),
            ],
        )?
        .ok_or_else(|| DbError::Other("creating the user returned nothing".into()))?,
    };
    if !user.is_active {
        return Ok(Err(LoginRefusal::Inactive));
    }
    Ok(Ok(user))
}

fn needs_update(user: &User, claimed: &ClaimedUser) -> bool {
    let differs = |new: &Option<String>, old: &Option<String>| new.is_some() && new != old;
    user.sub.as_deref() != Some(claimed.sub.as_str())
        || differs(&claimed.email, &user.email)
        || differs(&claimed.full_name, &user.full_name)
        || differs(&claimed.short_name, &user.short_name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::native::migrated_database;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2025-06-30 12:00 UTC);

    fn claimed(sub: &str, email: Option<&str>) -> ClaimedUser {
        ClaimedUser {
            sub: sub.into(),
            email: email.map(str::to_string),
            full_name: Some("John Doe".into()),
            short_name: Some("John".into()),
        }
    }

    fn id(n: u8) -> String {
        format!("00000000-0000-4000-8000-0000000000{n:02}")
    }

    #[test]
    fn first_login_creates_the_user_and_later_logins_update_it() {
        let db = migrated_database().unwrap();
        let created = resolve_login(
            &db,
            &claimed("s1", Some("j@x.org")),
            false,
            true,
            &id(1),
            NOW,
        )
        .unwrap()
        .unwrap();
        assert_eq!(created.id, id(1));
        assert_eq!(created.email.as_deref(), Some("j@x.org"));
        assert_eq!(created.language, "en-us");

        let mut next = claimed("s1", None);
        next.full_name = Some("John Smith".into());
        let updated = resolve_login(&db, &next, false, true, &id(2), NOW)
            .unwrap()
            .unwrap();
        assert_eq!(updated.id, id(1));
        assert_eq!(updated.full_name.as_deref(), Some("John Smith"));
        // An empty claim never erases what is stored.
        assert_eq!(updated.email.as_deref(), Some("j@x.org"));
    }

    #[test]
    fn a_new_id_racing_an_existing_sub_updates_instead_of_duplicating() {
        let db = migrated_database().unwrap();
        resolve_login(&db, &claimed("s1", None), false, true, &id(1), NOW)
            .unwrap()
            .unwrap();
        // As if a concurrent login had inserted between our lookup and insert.
        let user = first_user(
            &db,
            &format!(
                "INSERT INTO meet_user AS u (id, created_at, updated_at, sub) VALUES (?1, ?2, ?2, ?3) \
                 ON CONFLICT (sub) DO UPDATE SET updated_at = excluded.updated_at RETURNING {USER_RETURNING}"
            ),
            &[id(2).into(), timestamp(NOW).into(), "s1".into()],
        )
        .unwrap()
        .unwrap();
        assert_eq!(user.id, id(1));
        let count = db.execute("SELECT count(*) FROM meet_user", &[]).unwrap();
        assert_eq!(count.rows[0][0], SqlValue::Integer(1));
    }

    #[test]
    fn email_fallback_adopts_the_new_sub_and_refuses_shared_emails() {
        let db = migrated_database().unwrap();
        resolve_login(
            &db,
            &claimed("old", Some("Jo@X.org")),
            false,
            true,
            &id(1),
            NOW,
        )
        .unwrap()
        .unwrap();
        let without_fallback = resolve_login(
            &db,
            &claimed("new", Some("jo@x.org")),
            false,
            true,
            &id(2),
            NOW,
        )
        .unwrap()
        .unwrap();
        assert_eq!(without_fallback.id, id(2));

        let db = migrated_database().unwrap();
        resolve_login(
            &db,
            &claimed("old", Some("Jo@X.org")),
            false,
            true,
            &id(1),
            NOW,
        )
        .unwrap()
        .unwrap();
        let adopted = resolve_login(
            &db,
            &claimed("new", Some("jo@x.org")),
            true,
            true,
            &id(2),
            NOW,
        )
        .unwrap()
        .unwrap();
        assert_eq!(adopted.id, id(1));
        assert_eq!(adopted.sub.as_deref(), Some("new"));

        resolve_login(
            &db,
            &claimed("other", Some("JO@x.org")),
            false,
            true,
            &id(3),
            NOW,
        )
        .unwrap()
        .unwrap();
        let shared = resolve_login(
            &db,
            &claimed("third", Some("jo@x.org")),
            true,
            true,
            &id(4),
            NOW,
        )
        .unwrap();
        assert_eq!(shared, Err(LoginRefusal::SharedEmail));
    }

    #[test]
    fn inactive_users_and_disabled_creation_are_refused() {
        let db = migrated_database().unwrap();
        assert_eq!(
            resolve_login(&db, &claimed("s1", None), false, false, &id(1), NOW).unwrap(),
            Err(LoginRefusal::CreationDisabled)
        );
        resolve_login(&db, &claimed("s1", None), false, true, &id(1), NOW)
            .unwrap()
            .unwrap();
        db.execute("UPDATE meet_user SET is_active = 0", &[])
            .unwrap();
        assert_eq!(
            resolve_login(&db, &claimed("s1", None), false, true, &id(1), NOW).unwrap(),
            Err(LoginRefusal::Inactive)
        );
    }

    #[test]
    fn preferences_update_and_listing() {
        let db = migrated_database().unwrap();
        for (n, email) in [
            (1, "frank_poole@x.org"),
            (2, "nicole_foole@x.org"),
            (3, "dave@x.org"),
        ] {
            let at = NOW + time::Duration::minutes(n.into());
            resolve_login(
                &db,
                &claimed(&format!("s{n}"), Some(email)),
                false,
                true,
                &id(n),
                at,
            )
            .unwrap()
            .unwrap();
        }
        let update = UserUpdate {
            language: Some("fr-fr".into()),
            timezone: None,
        };
        let user = update_preferences(&db, &id(1), &update, NOW)
            .unwrap()
            .unwrap();
        assert_eq!(
            (user.language.as_str(), user.timezone.as_str()),
            ("fr-fr", "UTC")
        );
        assert_eq!(update_preferences(&db, &id(9), &update, NOW).unwrap(), None);

        let (total, users) = list(&db, None, 2, 0).unwrap();
        assert_eq!(total, 3);
        assert_eq!(
            users.iter().map(|u| u.id.clone()).collect::<Vec<_>>(),
            [id(3), id(2)]
        );
        let (total, users) = list(&db, Some("OOLE"), 20, 0).unwrap();
        assert_eq!(total, 2);
        assert_eq!(users.len(), 2);
    }
}
