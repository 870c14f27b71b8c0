//! Rooms in `meet_room`, read together with the caller's role (and, for
//! administrators, the room's accesses) in one statement.

use serde_json::Value;
use time::OffsetDateTime;

use crate::auth::store::{CallerQuery, CallerRecord};
use crate::ports::{Database, DbError};
use crate::roles::{role_of_rank, sql_rank_of_user, AccessLevel, Role};
use crate::sql::{rows, timestamp, Row};

#[derive(Debug, Clone, PartialEq)]
pub struct Room {
    pub id: String,
    pub name: String,
    pub slug: String,
    pub access_level: AccessLevel,
    pub configuration: Value,
}

/// A room as one caller sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct RoomView {
    pub room: Room,
    pub role: Option<Role>,
    /// The room's accesses (user objects inlined), newest first; only
    /// loaded for administrators and owners, who alone may see them.
    pub accesses: Option<Vec<Value>>,
    /// The telephony PIN and its trunk (`""` without trunk namespaces).
    pub pin: Option<(String, String)>,
}

/// How a room detail URL names its room (api.md §2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomKey {
    Id(String),
    Slug(String),
}

impl RoomKey {
    /// A UUID (Python's lenient parsing) is an id; anything else a slug.
    pub fn from_path(value: &str) -> RoomKey {
        match crate::ids::parse_uuid_like(value) {
            Some(id) => RoomKey::Id(id),
            None => RoomKey::Slug(crate::rooms::slug::slugify(value)),
        }
    }
}

/// Columns of a room view of table (or alias) `room` for the user whose id
/// is the SQL expression `user` (`?1`, or `caller.user_id` under a
/// [`CallerQuery`]). `RETURNING` cannot use an alias: it passes `meet_room`.
fn view_columns(room: &str, user: &str) -> String {
    let role = sql_rank_of_user(&format!("{room}.id"), user);
    let administrator = Role::Administrator.rank();
    format!(
        "{}, {role} AS role_rank, \
         CASE WHEN {role} >= {administrator} THEN ( \
           SELECT json_group_array(json(item)) FROM ( \
             SELECT json_object('id', a.id, 'user', json_object('id', u.id, 'email', u.email, \
               'full_name', u.full_name, 'short_name', u.short_name, 'timezone', u.timezone, \
               'language', u.language), 'resource', a.resource_id, 'role', a.role) AS item \
             FROM meet_resource_access a JOIN meet_user u ON u.id = a.user_id \
             WHERE a.resource_id = {room}.id ORDER BY a.created_at DESC, a.id)) END AS accesses",
        room_columns(room)
    )
}

/// The columns of a room view as an anonymous caller sees it: no role, no
/// accesses. Without the role and accesses sub-queries the statement is
/// several times cheaper to prepare, which a fresh connection per request
/// (Spin) pays on every request.
fn anonymous_view_columns(room: &str) -> String {
    format!(
        "{}, NULL AS role_rank, NULL AS accesses",
        room_columns(room)
    )
}

fn room_columns(room: &str) -> String {
    format!(
        "{room}.id, {room}.name, {room}.slug, {room}.access_level, {room}.configuration, \
         {room}.telephony_trunk, {room}.telephony_pin"
    )
}

fn view_from_row(row: &Row) -> Result<RoomView, DbError> {
    let access_level = row
        .text("access_level")?
        .parse()
        .map_err(|_| DbError::Other("unknown access level in meet_room".into()))?;
    let configuration = serde_json::from_str(&row.text("configuration")?)
        .map_err(|e| DbError::Other(format!("room configuration: {e}")))?;
    let role = role_of_rank(row.value("role_rank")?);
    let accesses = match row.optional_text("accesses")? {
        Some(text) => match serde_json::from_str(&text) {
            Ok(Value::Array(items)) => Some(items),
            _ => return Err(DbError::Other("room accesses are not a JSON array".into())),
        },
        None => None,
    };
    Ok(RoomView {
        room: Room {
            id: row.text("id")?,
            name: row.text("name")?,
            slug: row.optional_text("slug")?.unwrap_or_default(),
            access_level,
            configuration,
        },
        role,
        accesses,
        pin: match row.optional_text("telephony_pin")? {
            Some(pin) => Some((row.text("telephony_trunk")?, pin)),
            None => None,
        },
    })
}

/// The view of `row`, `None` when its room columns are NULL (outer joins).
fn optional_view(row: &Row) -> Result<Option<RoomView>, DbError> {
    if row.value("id")?.is_null() {
        return Ok(None);
    }
    view_from_row(row).map(Some)
}

/// The condition naming the room of `key` in table (or alias) `room`,
/// bound as `?4`.
fn key_condition<'a>(key: &'a RoomKey, room: &str) -> (String, &'a str) {
    match key {
        RoomKey::Id(id) => (format!("{room}.id = ?4"), id),
        RoomKey::Slug(slug) => (format!("{room}.slug = ?4"), slug),
    }
}

/// The room of a detail URL and the caller, resolved in the same
/// statement: `(caller row, room as the caller sees it)`.
pub fn find_with_caller(
    db: &dyn Database,
    caller: &CallerQuery,
    key: &RoomKey,
) -> Result<(Option<CallerRecord>, Option<RoomView>), DbError> {
    let (condition, value) = key_condition(key, "r");
    let result = db.execute(
        &format!(
            "WITH {} SELECT caller.*, {} \
             FROM (SELECT 1) LEFT JOIN caller ON 1 LEFT JOIN meet_room r ON {condition}",
            caller.cte,
            view_columns("r", "caller.user_id")
        ),
        &caller.with_params(vec![value.into()]),
    )?;
    let Some(row) = rows(&result).next() else {
        return Err(DbError::Other("the room lookup returned no row".into()));
    };
    Ok((CallerRecord::from_row(&row)?, optional_view(&row)?))
}

/// One page (by name) of the rooms the caller holds any role on, with the
/// caller, in one statement: `None` when there is no caller, otherwise the
/// caller row, the total and the page.
pub fn list_with_caller(
    db: &dyn Database,
    caller: &CallerQuery,
    limit: u64,
    offset: u64,
) -> Result<Option<(CallerRecord, u64, Vec<RoomView>)>, DbError> {
    let result = db.execute(
        &format!(
            "WITH {}, page AS ( \
               SELECT r.id, count(*) OVER () AS total FROM meet_room r \
               WHERE r.id IN (SELECT resource_id FROM meet_resource_access \
                 WHERE user_id = (SELECT user_id FROM caller)) \
               ORDER BY r.name, r.id LIMIT ?4 OFFSET ?5) \
             SELECT caller.*, {}, page.total FROM caller \
             LEFT JOIN page ON 1 LEFT JOIN meet_room r ON r.id = page.id \
             ORDER BY r.name, r.id",
            caller.cte,
            view_columns("r", "caller.user_id")
        ),
        &caller.with_params(vec![
            i64::try_from(limit).unwrap_or(i64::MAX).into(),
            i64::try_from(offset).unwrap_or(i64::MAX).into(),
        ]),
    )?;
    let mut found = None;
    let mut total = 0;
    let mut views = Vec::new();
    for row in rows(&result) {
        if found.is_none() {
            found = CallerRecord::from_row(&row)?;
        }
        if let Some(view) = optional_view(&row)? {
            total = u64::try_from(row.integer("total")?).unwrap_or(0);
            views.push(view);
        }
    }
    Ok(found.map(|caller| (caller, total, views)))
}

/// The room of a detail URL as `user_id` sees it.
pub fn find(
    db: &dyn Database,
    key: &RoomKey,
    user_id: Option<&str>,
) -> Result<Option<RoomView>, DbError> {
    let (condition, value) = match key {
        RoomKey::Id(id) => ("r.id = ?2", id),
        RoomKey::Slug(slug) => ("r.slug = ?2", slug),
    };
    let columns = match user_id {
        Some(_) => view_columns("r", "?1"),
        None => anonymous_view_columns("r"),
    };
    let result = db.execute(
        &format!("SELECT {columns} FROM meet_room r WHERE {condition}"),
        &[user_id.map(str::to_string).into(), value.as_str().into()],
    )?;
    let view = rows(&result)
        .next()
        .map(|row| view_from_row(&row))
        .transpose();
    view
}

/// One page of the rooms `user_id` holds any role on, by name.
pub fn list_for_user(
    db: &dyn Database,
    user_id: &str,
    limit: u64,
    offset: u64,
) -> Result<(u64, Vec<RoomView>), DbError> {
    // Page first (names and the total only), then the views of that page:
    // the per-room subqueries run for 20 rooms, not for all of them.
    let result = db.execute(
        &format!(
            "WITH page AS ( \
               SELECT r.id, count(*) OVER () AS total FROM meet_room r \
               WHERE r.id IN (SELECT resource_id FROM meet_resource_access WHERE user_id = ?1) \
               ORDER BY r.name, r.id LIMIT ?2 OFFSET ?3) \
             SELECT {}, page.total FROM page JOIN meet_room r ON r.id = page.id \
             ORDER BY r.name, r.id",
            view_columns("r", "?1")
        ),
        &[
            user_id.into(),
            i64::try_from(limit).unwrap_or(i64::MAX).into(),
            i64::try_from(offset).unwrap_or(i64::MAX).into(),
        ],
    )?;
    let mut total = 0;
    let mut views = Vec::new();
    for row in rows(&result) {
        total = u64::try_from(row.integer("total")?).unwrap_or(0);
        views.push(view_from_row(&row)?);
    }
    Ok((total, views))
}

/// A room to create with its owner's access.
#[derive(Debug, Clone)]
pub struct NewRoom<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub slug: &'a str,
    pub access_level: AccessLevel,
    pub configuration: &'a Value,
    /// The telephony PIN and its trunk (`""` without trunk namespaces).
    pub pin: Option<(&'a str, &'a str)>,
    pub owner_access_id: &'a str,
}

/// Why a room could not be written.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RoomWriteError {
    #[error("slug taken")]
    SlugTaken,
    #[error("PIN code taken")]
    PinTaken,
    #[error(transparent)]
    Db(DbError),
}

fn classify(error: DbError) -> RoomWriteError {
    if error.is_unique("meet_room.slug") {
        RoomWriteError::SlugTaken
    } else if error.is_unique("meet_room.telephony_trunk, meet_room.telephony_pin") {
        RoomWriteError::PinTaken
    } else {
        RoomWriteError::Db(error)
    }
}

/// Creates the room and its owner access atomically, in one statement
/// through the `meet_room_creation` view, for the caller of `owner` (a
/// [`CallerQuery`], so that the caller is resolved by the same statement):
/// the caller row, or `None` when there is no caller and nothing was written.
pub fn create(
    db: &dyn Database,
    owner: &CallerQuery,
    room: &NewRoom,
    now: OffsetDateTime,
) -> Result<Option<CallerRecord>, RoomWriteError> {
    let result = db
        .execute(
            &format!(
                "WITH {} INSERT INTO meet_room_creation (id, created_at, name, slug, access_level, \
                 configuration, telephony_trunk, telephony_pin, owner_access_id, owner_id) \
                 SELECT ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, caller.user_id FROM caller \
                 RETURNING {}",
                owner.cte,
                owner.returning_column()
            ),
            &owner.with_params(vec![
                room.id.into(),
                timestamp(now).into(),
                room.name.into(),
                room.slug.into(),
                room.access_level.as_str().into(),
                room.configuration.to_string().into(),
                room.pin.map_or("", |(trunk, _)| trunk).into(),
                room.pin.map(|(_, pin)| pin.to_string()).into(),
                room.owner_access_id.into(),
            ]),
        )
        .map_err(classify)?;
    let record = match rows(&result).next() {
        Some(row) => CallerRecord::from_returning(&row).map_err(RoomWriteError::Db)?,
        None => None,
    };
    Ok(record)
}

/// The editable fields of a room to write; `None` keeps the stored value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoomChanges {
    /// The new name and the slug made from it.
    pub name_and_slug: Option<(String, String)>,
    pub access_level: Option<AccessLevel>,
    pub configuration: Option<Value>,
}

/// Updates the room of `key` if the caller is administrator or owner of it,
/// the permission checked by the statement that writes (issue 12 item 5):
/// the caller and the room as the caller now sees it, or `None` when no
/// room matched (missing, or the caller may not: the full path tells which).
pub fn update_as_caller(
    db: &dyn Database,
    caller: &CallerQuery,
    key: &RoomKey,
    changes: &RoomChanges,
    now: OffsetDateTime,
) -> Result<Option<(Option<CallerRecord>, RoomView)>, RoomWriteError> {
    let (condition, value) = key_condition(key, "meet_room");
    let (name, slug) = changes.name_and_slug.clone().unzip();
    let result = db
        .execute(
            &format!(
                "WITH {} UPDATE meet_room SET name = coalesce(?5, name), \
                 slug = coalesce(?6, slug), access_level = coalesce(?7, access_level), \
                 configuration = coalesce(?8, configuration), updated_at = ?9 \
                 WHERE {condition} AND {} >= {} \
                 RETURNING {}, {}",
                caller.cte,
                sql_rank_of_user("meet_room.id", "(SELECT user_id FROM caller)"),
                Role::Administrator.rank(),
                view_columns("meet_room", "(SELECT user_id FROM caller)"),
                caller.returning_column()
            ),
            &caller.with_params(vec![
                value.into(),
                name.into(),
                slug.into(),
                changes.access_level.map(AccessLevel::as_str).into(),
                changes.configuration.as_ref().map(Value::to_string).into(),
                timestamp(now).into(),
            ]),
        )
        .map_err(classify)?;
    let Some(row) = rows(&result).next() else {
        return Ok(None);
    };
    let caller = CallerRecord::from_returning(&row).map_err(RoomWriteError::Db)?;
    let view = view_from_row(&row).map_err(RoomWriteError::Db)?;
    Ok(Some((caller, view)))
}

/// Deletes the room of `key` if the caller owns it, checked by the deleting
/// statement; triggers remove its accesses and recordings. `false` when no
/// room matched.
pub fn delete_as_caller(
    db: &dyn Database,
    caller: &CallerQuery,
    key: &RoomKey,
) -> Result<bool, DbError> {
    let (condition, value) = key_condition(key, "meet_room");
    let result = db.execute(
        &format!(
            "WITH {} DELETE FROM meet_room WHERE {condition} AND {} = {} RETURNING id",
            caller.cte,
            sql_rank_of_user("meet_room.id", "(SELECT user_id FROM caller)"),
            Role::Owner.rank()
        ),
        &caller.with_params(vec![value.into()]),
    )?;
    Ok(!result.rows.is_empty())
}

#[cfg(test)]
mod folded_tests {
    use super::*;
    use crate::auth::Credential;
    use crate::native::{migrated_database, SqliteDatabase};
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2025-06-30 12:00 UTC);
    const LATER: &str = "2025-07-01T00:00:00.000000Z";
    const EARLIER: &str = "2025-06-01T00:00:00.000000Z";

    fn uuid(n: u32) -> String {
        format!("00000000-0000-4000-8000-{n:012}")
    }

    fn hash(n: u8) -> String {
        format!("{n:064}")
    }

    /// Two users (1: owner of room 10 "alpha", 2: member), user 1 with a
    /// session (hash 1, CSRF "tok") and user 2 with a cached bearer token
    /// (hash 2); an expired session (hash 3) of user 1.
    fn fixture() -> SqliteDatabase {
        let db = migrated_database().unwrap();
        db.execute_batch(&format!(
            "INSERT INTO meet_user (id, created_at, updated_at, sub) VALUES \
               ('{u1}', '{EARLIER}', '{EARLIER}', 's1'), ('{u2}', '{EARLIER}', '{EARLIER}', 's2');
             INSERT INTO meet_room (id, created_at, updated_at, name, slug) VALUES \
               ('{r}', '{EARLIER}', '{EARLIER}', 'alpha', 'alpha');
             INSERT INTO meet_resource_access (id, created_at, updated_at, resource_id, user_id, role) VALUES \
               ('{a1}', '{EARLIER}', '{EARLIER}', '{r}', '{u1}', 'owner'), \
               ('{a2}', '{EARLIER}', '{EARLIER}', '{r}', '{u2}', 'member');
             INSERT INTO meet_session (key_hash, user_id, data, csrf_token, created_at, expires_at) VALUES \
               ('{h1}', '{u1}', '{{}}', 'tok', '{EARLIER}', '{LATER}'), \
               ('{h3}', '{u1}', '{{}}', 'tok', '{EARLIER}', '{EARLIER}');
             INSERT INTO meet_bearer_token (token_hash, user_id, expires_at) VALUES ('{h2}', '{u2}', '{LATER}');",
            u1 = uuid(1),
            u2 = uuid(2),
            r = uuid(10),
            a1 = uuid(20),
            a2 = uuid(21),
            h1 = hash(1),
            h2 = hash(2),
            h3 = hash(3),
        ))
        .unwrap();
        db
    }

    fn session(n: u8) -> Credential {
        Credential::Session { key_hash: hash(n) }
    }

    fn bearer(n: u8) -> Credential {
        Credential::Bearer {
            token: "t".into(),
            token_hash: hash(n),
        }
    }

    fn slug(text: &str) -> RoomKey {
        RoomKey::Slug(text.into())
    }

    #[test]
    fn one_statement_resolves_the_caller_and_the_room() {
        let db = fixture();
        let find = |credential: &Credential, key: &RoomKey| {
            find_with_caller(&db, &CallerQuery::of(credential, None, NOW), key).unwrap()
        };
        let (caller, view) = find(&session(1), &slug("alpha"));
        assert_eq!(caller.unwrap().csrf_token.as_deref(), Some("tok"));
        let view = view.unwrap();
        assert_eq!(view.role, Some(Role::Owner));
        assert_eq!(view.accesses.unwrap().len(), 2);

        let (caller, view) = find(&bearer(2), &RoomKey::Id(uuid(10)));
        assert_eq!(caller.unwrap().user.id, uuid(2));
        let view = view.unwrap();
        assert_eq!((view.role, view.accesses), (Some(Role::Member), None));

        // Expired session, unknown token, anonymous: no caller, same room.
        for credential in [session(3), bearer(9), Credential::Anonymous] {
            let (caller, view) = find(&credential, &slug("alpha"));
            assert_eq!(caller, None, "{credential:?}");
            assert_eq!(view.unwrap().role, None);
        }
        // An unknown room still resolves the caller (unregistered rooms).
        let (caller, view) = find(&session(1), &slug("nope"));
        assert!(caller.is_some() && view.is_none());
    }

    #[test]
    fn the_list_resolves_the_caller_even_without_rooms() {
        let db = fixture();
        let list = |credential: &Credential| {
            list_with_caller(&db, &CallerQuery::of(credential, None, NOW), 20, 0).unwrap()
        };
        let (caller, total, views) = list(&session(1)).unwrap();
        assert_eq!((caller.user.id, total, views.len()), (uuid(1), 1, 1));
        db.execute(
            "DELETE FROM meet_resource_access WHERE user_id = ?",
            &[uuid(2).into()],
        )
        .unwrap();
        let (caller, total, views) = list(&bearer(2)).unwrap();
        assert_eq!((caller.user.id, total, views.len()), (uuid(2), 0, 0));
        assert_eq!(list(&session(3)), None);
    }

    #[test]
    fn updates_and_deletes_check_the_permission_in_the_writing_statement() {
        let db = fixture();
        let changes = RoomChanges {
            name_and_slug: Some(("Beta".into(), "beta".into())),
            ..RoomChanges::default()
        };
        let update = |credential: &Credential, csrf: Option<&str>| {
            update_as_caller(
                &db,
                &CallerQuery::of(credential, csrf, NOW),
                &RoomKey::Id(uuid(10)),
                &changes,
                NOW,
            )
        };
        // A member, a wrong CSRF token, an expired session: nothing written.
        assert_eq!(update(&bearer(2), None), Ok(None));
        assert_eq!(update(&session(1), Some("wrong")), Ok(None));
        assert_eq!(update(&session(3), Some("tok")), Ok(None));
        let (caller, view) = update(&session(1), Some("tok")).unwrap().unwrap();
        assert_eq!(caller.unwrap().user.id, uuid(1));
        assert_eq!(
            (view.room.name.as_str(), view.room.slug.as_str()),
            ("Beta", "beta")
        );
        assert_eq!(view.role, Some(Role::Owner));
        assert_eq!(view.accesses.map(|a| a.len()), Some(2));

        db.execute_batch(&format!(
            "INSERT INTO meet_room (id, created_at, updated_at, name, slug) VALUES \
               ('{}', '{EARLIER}', '{EARLIER}', 'gamma', 'gamma')",
            uuid(11)
        ))
        .unwrap();
        let clash = RoomChanges {
            name_and_slug: Some(("Gamma".into(), "gamma".into())),
            ..RoomChanges::default()
        };
        assert_eq!(
            update_as_caller(
                &db,
                &CallerQuery::user(&uuid(1)),
                &slug("beta"),
                &clash,
                NOW
            ),
            Err(RoomWriteError::SlugTaken)
        );

        let delete = |caller: &CallerQuery| delete_as_caller(&db, caller, &slug("beta")).unwrap();
        assert!(
            !delete(&CallerQuery::of(&bearer(2), None, NOW)),
            "members may not"
        );
        assert!(!delete(&CallerQuery::user(&uuid(9))));
        assert!(delete(&CallerQuery::of(&session(1), Some("tok"), NOW)));
        assert_eq!(find(&db, &slug("beta"), None).unwrap(), None);
    }
}
