//! The one statement of an invitation: the room of the URL with the
//! inviting user's role on it.

use crate::ports::{Database, DbError};
use crate::roles::{role_of_rank, sql_rank_of_user, Role};
use crate::rooms::store::RoomKey;
use crate::sql::rows;

/// What an invitation shows of its room, and whether the caller may send it.
#[derive(Debug, Clone, PartialEq)]
pub struct InvitationRoom {
    pub name: String,
    pub slug: String,
    pub role: Option<Role>,
}

/// The room named by a detail URL, with `user_id`'s role on it.
pub fn room_for_inviter(
    db: &dyn Database,
    key: &RoomKey,
    user_id: &str,
) -> Result<Option<InvitationRoom>, DbError> {
    let (condition, value) = match key {
        RoomKey::Id(id) => ("r.id = ?2", id),
        RoomKey::Slug(slug) => ("r.slug = ?2", slug),
    };
    let result = db.execute(
        &format!(
            "SELECT r.name, r.slug, {} AS role_rank FROM meet_room r WHERE {condition}",
            sql_rank_of_user("r.id", "?1")
        ),
        &[user_id.into(), value.as_str().into()],
    )?;
    let room = rows(&result)
        .next()
        .map(|row| -> Result<InvitationRoom, DbError> {
            Ok(InvitationRoom {
                name: row.text("name")?,
                slug: row.optional_text("slug")?.unwrap_or_default(),
                role: role_of_rank(row.value("role_rank")?),
            })
        })
        .transpose();
    room
}
