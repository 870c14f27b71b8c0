//! Rooms in `meet_room`, read together with the caller's role (and, for
//! administrators, the room's accesses) in one statement.

use serde_json::Value;
use time::OffsetDateTime;

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

/// Columns of a room view for the caller bound as `?1`.
fn view_columns() -> String {
    let role = sql_rank_of_user("r.id", "?1");
    let administrator = Role::Administrator.rank();
    format!(
        "r.id, r.name, r.slug, r.access_level, r.configuration, {role} AS role_rank, \
         CASE WHEN {role} >= {administrator} THEN ( \
           SELECT json_group_array(json(item)) FROM ( \
             SELECT json_object('id', a.id, 'user', json_object('id', u.id, 'email', u.email, \
               'full_name', u.full_name, 'short_name', u.short_name, 'timezone', u.timezone, \
               'language', u.language), 'resource', a.resource_id, 'role', a.role) AS item \
             FROM meet_resource_access a JOIN meet_user u ON u.id = a.user_id \
             WHERE a.resource_id = r.id ORDER BY a.created_at DESC, a.id)) END AS accesses"
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
    })
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
    let result = db.execute(
        &format!(
            "SELECT {} FROM meet_room r WHERE {condition}",
            view_columns()
        ),
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
            view_columns()
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
    pub pin_code: Option<&'a str>,
    pub owner_id: &'a str,
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
    match &error {
        DbError::Constraint(message) if message.contains("meet_room.slug") => {
            RoomWriteError::SlugTaken
        }
        DbError::Constraint(message) if message.contains("meet_room.pin_code") => {
            RoomWriteError::PinTaken
        }
        _ => RoomWriteError::Db(error),
    }
}

/// Creates the room and its owner access atomically (one statement through
/// the `meet_room_creation` view).
pub fn create(
    db: &dyn Database,
    room: &NewRoom,
    now: OffsetDateTime,
) -> Result<(), RoomWriteError> {
    db.execute(
        "INSERT INTO meet_room_creation (id, created_at, name, slug, access_level, configuration, \
         pin_code, owner_access_id, owner_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        &[
            room.id.into(),
            timestamp(now).into(),
            room.name.into(),
            room.slug.into(),
            room.access_level.as_str().into(),
            room.configuration.to_string().into(),
            room.pin_code.map(str::to_string).into(),
            room.owner_access_id.into(),
            room.owner_id.into(),
        ],
    )
    .map_err(classify)?;
    Ok(())
}

/// Writes the editable fields of a room.
pub fn update(db: &dyn Database, room: &Room, now: OffsetDateTime) -> Result<(), RoomWriteError> {
    db.execute(
        "UPDATE meet_room SET name = ?, slug = ?, access_level = ?, configuration = ?, \
         updated_at = ? WHERE id = ?",
        &[
            room.name.as_str().into(),
            room.slug.as_str().into(),
            room.access_level.as_str().into(),
            room.configuration.to_string().into(),
            timestamp(now).into(),
            room.id.as_str().into(),
        ],
    )
    .map_err(classify)?;
    Ok(())
}

/// Deletes a room; triggers remove its accesses and recordings.
pub fn delete(db: &dyn Database, id: &str) -> Result<(), DbError> {
    db.execute("DELETE FROM meet_room WHERE id = ?", &[id.into()])?;
    Ok(())
}
