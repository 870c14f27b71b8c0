//! Resource accesses in `meet_resource_access`: who holds which role on which
//! room.
//!
//! Every request reads what its checks need in one statement and writes in a
//! second one. Writes repeat the permission rules in their `WHERE` clause so
//! that a role revoked between the two statements cannot be used, and the
//! last-owner rule is left to the database triggers of the schema, which
//! refuse atomically what two concurrent demotions would break together.

use time::OffsetDateTime;

use crate::ports::{Database, DbError, SqlValue};
use crate::roles::{role_of_rank, sql_rank, sql_rank_of_user, Role};
use crate::sql::{rows, timestamp, Row};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    pub id: String,
    pub user_id: String,
    pub resource_id: String,
    pub role: Role,
}

/// An access with the role of the caller on the access's room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessView {
    pub access: Access,
    pub caller_role: Option<Role>,
}

const ACCESS_COLUMNS: &str = "a.id, a.user_id, a.resource_id, a.role";
const ACCESS_RETURNING: &str = "id, user_id, resource_id, role";

/// The rank of the user bound as `?1` on the room `resource`, an SQL
/// expression (NULL without an access).
fn caller_rank(resource: &str) -> String {
    sql_rank_of_user(resource, "?1")
}

fn access_from_row(row: &Row) -> Result<Access, DbError> {
    Ok(Access {
        id: row.text("id")?,
        user_id: row.text("user_id")?,
        resource_id: row.text("resource_id")?,
        role: row
            .text("role")?
            .parse()
            .map_err(|_| DbError::Other("unknown role in meet_resource_access".into()))?,
    })
}

fn sql_integer(value: u64) -> SqlValue {
    i64::try_from(value).unwrap_or(i64::MAX).into()
}

/// One page of the accesses of every room on which `caller_id` is
/// administrator or owner, newest first, with their total count.
pub fn list_administered(
    db: &dyn Database,
    caller_id: &str,
    limit: u64,
    offset: u64,
) -> Result<(u64, Vec<Access>), DbError> {
    let result = db.execute(
        &format!(
            "SELECT {ACCESS_COLUMNS}, count(*) OVER () AS total FROM meet_resource_access a \
             WHERE a.resource_id IN (SELECT resource_id FROM meet_resource_access \
               WHERE user_id = ?1 AND {} >= {}) \
             ORDER BY a.created_at DESC, a.id LIMIT ?2 OFFSET ?3",
            sql_rank("role"),
            Role::Administrator.rank()
        ),
        &[caller_id.into(), sql_integer(limit), sql_integer(offset)],
    )?;
    let mut total = 0;
    let mut accesses = Vec::new();
    for row in rows(&result) {
        total = u64::try_from(row.integer("total")?).unwrap_or(0);
        accesses.push(access_from_row(&row)?);
    }
    Ok((total, accesses))
}

/// The access `id` with the role of `caller_id` on its room.
pub fn find(db: &dyn Database, id: &str, caller_id: &str) -> Result<Option<AccessView>, DbError> {
    let result = db.execute(
        &format!(
            "SELECT {ACCESS_COLUMNS}, {} AS caller_rank FROM meet_resource_access a WHERE a.id = ?2",
            caller_rank("a.resource_id")
        ),
        &[caller_id.into(), id.into()],
    )?;
    let view = rows(&result)
        .next()
        .map(|row| {
            Ok(AccessView {
                access: access_from_row(&row)?,
                caller_role: role_of_rank(row.value("caller_rank")?),
            })
        })
        .transpose();
    view
}

/// The `user` and `resource` a write names (each may be missing or invalid).
#[derive(Debug, Clone, Copy, Default)]
pub struct References<'a> {
    pub user_id: Option<&'a str>,
    pub resource_id: Option<&'a str>,
}

/// What validating a create or an update needs, read in one statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteContext {
    /// The access being updated (`None` on create, or when it does not exist).
    pub target: Option<AccessView>,
    pub user_exists: bool,
    pub resource_exists: bool,
    /// The caller's role on the named resource.
    pub role_on_resource: Option<Role>,
    /// Another access already holds the (user, resource) pair, the missing
    /// half of which is taken from the target (as DRF's unique-together
    /// validator does on update).
    pub duplicate: bool,
}

pub fn write_context(
    db: &dyn Database,
    caller_id: &str,
    target_id: Option<&str>,
    references: References,
) -> Result<WriteContext, DbError> {
    let result = db.execute(
        &format!(
            "SELECT {ACCESS_COLUMNS}, {} AS caller_rank, \
               EXISTS (SELECT 1 FROM meet_user WHERE id = ?3) AS user_exists, \
               EXISTS (SELECT 1 FROM meet_room WHERE id = ?4) AS resource_exists, \
               {} AS resource_rank, \
               EXISTS (SELECT 1 FROM meet_resource_access d \
                 WHERE d.user_id = coalesce(?3, a.user_id) \
                   AND d.resource_id = coalesce(?4, a.resource_id) \
                   AND d.id IS NOT a.id) AS duplicate \
             FROM (SELECT 1) LEFT JOIN meet_resource_access a ON a.id = ?2",
            caller_rank("a.resource_id"),
            caller_rank("?4")
        ),
        &[
            caller_id.into(),
            target_id.map(str::to_string).into(),
            references.user_id.map(str::to_string).into(),
            references.resource_id.map(str::to_string).into(),
        ],
    )?;
    let Some(row) = rows(&result).next() else {
        return Err(DbError::Other("the write context has no row".into()));
    };
    let target = if row.value("id")?.is_null() {
        None
    } else {
        Some(AccessView {
            access: access_from_row(&row)?,
            caller_role: role_of_rank(row.value("caller_rank")?),
        })
    };
    Ok(WriteContext {
        target,
        user_exists: row.boolean("user_exists")?,
        resource_exists: row.boolean("resource_exists")?,
        role_on_resource: role_of_rank(row.value("resource_rank")?),
        duplicate: row.boolean("duplicate")?,
    })
}

/// Why an access could not be written.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AccessWriteError {
    #[error("the user already has an access to this resource")]
    Duplicate,
    #[error("a resource should keep at least one owner")]
    LastOwner,
    #[error(transparent)]
    Db(DbError),
}

fn classify(error: DbError) -> AccessWriteError {
    match &error {
        // The last-owner triggers: RAISE(ABORT, 'meet_refused:last_owner: …').
        _ if error.is_refused("last_owner") => AccessWriteError::LastOwner,
        DbError::Unique { table_column } if table_column.starts_with("meet_resource_access.") => {
            AccessWriteError::Duplicate
        }
        _ => AccessWriteError::Db(error),
    }
}

/// The rank a caller needs on a room to grant or set the role bound as `?3`
/// there: owner to grant `owner`, administrator otherwise.
fn required_rank() -> String {
    format!(
        "CASE WHEN ?3 = '{}' THEN {} ELSE {} END",
        Role::Owner.as_str(),
        Role::Owner.rank(),
        Role::Administrator.rank()
    )
}

fn first_access(result: &crate::ports::SqlRows) -> Result<Option<Access>, DbError> {
    rows(result)
        .next()
        .map(|row| access_from_row(&row))
        .transpose()
}

/// An access to create on behalf of a caller.
#[derive(Debug, Clone, Copy)]
pub struct NewAccess<'a> {
    pub id: &'a str,
    pub user_id: &'a str,
    pub resource_id: &'a str,
    pub role: Role,
}

/// Creates the access if the user and the room exist and `caller_id` may
/// grant the role there (administrator, or owner to grant `owner`);
/// `None` when they do not (any more).
pub fn create(
    db: &dyn Database,
    caller_id: &str,
    access: &NewAccess,
    now: OffsetDateTime,
) -> Result<Option<Access>, AccessWriteError> {
    let now = timestamp(now);
    let result = db
        .execute(
            &format!(
                "INSERT INTO meet_resource_access (id, created_at, updated_at, resource_id, user_id, role) \
                 SELECT ?2, ?6, ?6, ?4, ?5, ?3 \
                 WHERE EXISTS (SELECT 1 FROM meet_user WHERE id = ?5) \
                   AND EXISTS (SELECT 1 FROM meet_room WHERE id = ?4) \
                   AND {} >= {} \
                 RETURNING {ACCESS_RETURNING}",
                caller_rank("?4"),
                required_rank()
            ),
            &[
                caller_id.into(),
                access.id.into(),
                access.role.as_str().into(),
                access.resource_id.into(),
                access.user_id.into(),
                now.into(),
            ],
        )
        .map_err(classify)?;
    first_access(&result).map_err(AccessWriteError::Db)
}

/// Sets the role of access `id` (or only touches it when `role` is `None`)
/// if `caller_id` is administrator of its room, owner to give `owner`, and
/// the access is not someone else's `owner` access; `None` otherwise.
pub fn update_role(
    db: &dyn Database,
    caller_id: &str,
    id: &str,
    role: Option<Role>,
    now: OffsetDateTime,
) -> Result<Option<Access>, AccessWriteError> {
    let result = db
        .execute(
            &format!(
                "UPDATE meet_resource_access SET role = coalesce(?3, role), updated_at = ?4 \
                 WHERE id = ?2 \
                   AND {} >= {} \
                   AND (role <> 'owner' OR user_id = ?1) \
                 RETURNING {ACCESS_RETURNING}",
                caller_rank("meet_resource_access.resource_id"),
                required_rank()
            ),
            &[
                caller_id.into(),
                id.into(),
                role.map(Role::as_str).into(),
                timestamp(now).into(),
            ],
        )
        .map_err(classify)?;
    first_access(&result).map_err(AccessWriteError::Db)
}

/// Deletes access `id` if `caller_id` may: an `owner` access only by its
/// own user, any other by an administrator of the room. `false` otherwise.
pub fn delete(db: &dyn Database, caller_id: &str, id: &str) -> Result<bool, AccessWriteError> {
    let result = db
        .execute(
            &format!(
                "DELETE FROM meet_resource_access WHERE id = ?2 \
                   AND CASE WHEN role = 'owner' THEN user_id = ?1 ELSE {} >= {} END \
                 RETURNING id",
                caller_rank("meet_resource_access.resource_id"),
                Role::Administrator.rank()
            ),
            &[caller_id.into(), id.into()],
        )
        .map_err(classify)?;
    Ok(!result.rows.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::native::{migrated_database, SqliteDatabase};
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2025-03-01 10:00 UTC);

    fn uuid(n: u32) -> String {
        format!("00000000-0000-4000-8000-{n:012}")
    }

    fn user(db: &SqliteDatabase, n: u32) -> String {
        let id = uuid(n);
        db.execute(
            "INSERT INTO meet_user (id, created_at, updated_at, sub) VALUES (?1, '2025-01-01T00:00:00.000000Z', '2025-01-01T00:00:00.000000Z', ?1)",
            &[id.as_str().into()],
        )
        .unwrap();
        id
    }

    fn room(db: &SqliteDatabase, n: u32) -> String {
        let id = uuid(n);
        db.execute(
            "INSERT INTO meet_room (id, created_at, updated_at, name, slug) VALUES (?1, '2025-01-01T00:00:00.000000Z', '2025-01-01T00:00:00.000000Z', ?1, ?1)",
            &[id.as_str().into()],
        )
        .unwrap();
        id
    }

    /// Inserts an access directly, created at second `n` of the day.
    fn grant(db: &SqliteDatabase, n: u32, room: &str, user: &str, role: Role) -> String {
        let id = uuid(n);
        let at = format!("2025-01-01T00:00:{:02}.000000Z", n % 60);
        db.execute(
            "INSERT INTO meet_resource_access (id, created_at, updated_at, resource_id, user_id, role) VALUES (?, ?, ?, ?, ?, ?)",
            &[
                id.as_str().into(),
                at.as_str().into(),
                at.into(),
                room.into(),
                user.into(),
                role.as_str().into(),
            ],
        )
        .unwrap();
        id
    }

    fn role_of(db: &SqliteDatabase, id: &str) -> Option<String> {
        let result = db
            .execute(
                "SELECT role FROM meet_resource_access WHERE id = ?",
                &[id.into()],
            )
            .unwrap();
        let role = rows(&result).next().map(|row| row.text("role").unwrap());
        role
    }

    #[test]
    fn lists_every_access_of_administered_rooms_newest_first() {
        let db = migrated_database().unwrap();
        let (me, other, third) = (user(&db, 1), user(&db, 2), user(&db, 3));
        let (owned, administered, joined, unrelated) =
            (room(&db, 10), room(&db, 11), room(&db, 12), room(&db, 13));
        let a = grant(&db, 20, &owned, &me, Role::Owner);
        let b = grant(&db, 21, &owned, &other, Role::Member);
        let c = grant(&db, 22, &administered, &me, Role::Administrator);
        let d = grant(&db, 23, &administered, &third, Role::Owner);
        grant(&db, 24, &joined, &me, Role::Member);
        grant(&db, 25, &joined, &other, Role::Owner);
        grant(&db, 26, &unrelated, &third, Role::Owner);

        let (total, page) = list_administered(&db, &me, 3, 0).unwrap();
        assert_eq!(total, 4);
        let ids: Vec<_> = page.iter().map(|access| access.id.clone()).collect();
        assert_eq!(ids, [d.clone(), c.clone(), b.clone()]);
        let (total, rest) = list_administered(&db, &me, 3, 3).unwrap();
        assert_eq!((total, rest.len()), (4, 1));
        assert_eq!(rest[0].id, a);
        assert_eq!(list_administered(&db, &third, 20, 0).unwrap().0, 3);
        assert_eq!(list_administered(&db, &uuid(99), 20, 0).unwrap().0, 0);
    }

    #[test]
    fn finds_an_access_with_the_callers_role() {
        let db = migrated_database().unwrap();
        let (me, other) = (user(&db, 1), user(&db, 2));
        let room_id = room(&db, 10);
        grant(&db, 20, &room_id, &me, Role::Administrator);
        let theirs = grant(&db, 21, &room_id, &other, Role::Owner);
        let view = find(&db, &theirs, &me).unwrap().unwrap();
        assert_eq!(view.access.user_id, other);
        assert_eq!(view.access.resource_id, room_id);
        assert_eq!(view.access.role, Role::Owner);
        assert_eq!(view.caller_role, Some(Role::Administrator));
        assert_eq!(
            find(&db, &theirs, &uuid(99)).unwrap().unwrap().caller_role,
            None
        );
        assert_eq!(find(&db, &uuid(98), &me).unwrap(), None);
    }

    #[test]
    fn the_write_context_resolves_references_and_duplicates() {
        let db = migrated_database().unwrap();
        let (me, other) = (user(&db, 1), user(&db, 2));
        let (room_id, second_room) = (room(&db, 10), room(&db, 11));
        let mine = grant(&db, 20, &room_id, &me, Role::Owner);
        let theirs = grant(&db, 21, &room_id, &other, Role::Member);

        let create = write_context(
            &db,
            &me,
            None,
            References {
                user_id: Some(&other),
                resource_id: Some(&room_id),
            },
        )
        .unwrap();
        assert_eq!(create.target, None);
        assert!(create.user_exists && create.resource_exists && create.duplicate);
        assert_eq!(create.role_on_resource, Some(Role::Owner));

        let unknown = write_context(
            &db,
            &me,
            None,
            References {
                user_id: Some(&uuid(98)),
                resource_id: Some(&second_room),
            },
        )
        .unwrap();
        assert!(!unknown.user_exists && unknown.resource_exists && !unknown.duplicate);
        assert_eq!(unknown.role_on_resource, None);

        // On update the pair is completed from the target and the target
        // itself is no duplicate.
        let update = write_context(&db, &me, Some(&theirs), References::default()).unwrap();
        assert_eq!(update.target.unwrap().caller_role, Some(Role::Owner));
        assert!(!update.duplicate);
        let clash = write_context(
            &db,
            &me,
            Some(&theirs),
            References {
                user_id: Some(&me),
                resource_id: None,
            },
        )
        .unwrap();
        assert!(clash.duplicate, "{me} already has {mine}");
        let missing = write_context(&db, &me, Some(&uuid(97)), References::default()).unwrap();
        assert_eq!(missing.target, None);
    }

    #[test]
    fn creates_only_what_the_caller_may_grant() {
        let db = migrated_database().unwrap();
        let (owner, admin, member, newcomer) =
            (user(&db, 1), user(&db, 2), user(&db, 3), user(&db, 4));
        let room_id = room(&db, 10);
        grant(&db, 20, &room_id, &owner, Role::Owner);
        grant(&db, 21, &room_id, &admin, Role::Administrator);
        grant(&db, 22, &room_id, &member, Role::Member);
        let ids: Vec<String> = (30..35).map(uuid).collect();
        let new = |n: usize, role| NewAccess {
            id: &ids[n],
            user_id: &newcomer,
            resource_id: &room_id,
            role,
        };
        assert_eq!(create(&db, &member, &new(0, Role::Member), NOW), Ok(None));
        assert_eq!(create(&db, &admin, &new(1, Role::Owner), NOW), Ok(None));
        let created = create(&db, &admin, &new(2, Role::Administrator), NOW)
            .unwrap()
            .unwrap();
        assert_eq!(created.role, Role::Administrator);
        assert_eq!(created.user_id, newcomer);
        assert_eq!(
            create(&db, &owner, &new(3, Role::Owner), NOW),
            Err(AccessWriteError::Duplicate)
        );
        let unknown_user = NewAccess {
            user_id: "00000000-0000-4000-8000-000000000098",
            ..new(4, Role::Member)
        };
        assert_eq!(create(&db, &owner, &unknown_user, NOW), Ok(None));
    }

    #[test]
    fn updates_follow_the_owner_rules() {
        let db = migrated_database().unwrap();
        let (owner, co_owner, admin, member) =
            (user(&db, 1), user(&db, 2), user(&db, 3), user(&db, 4));
        let room_id = room(&db, 10);
        let owner_access = grant(&db, 20, &room_id, &owner, Role::Owner);
        let co_owner_access = grant(&db, 21, &room_id, &co_owner, Role::Owner);
        let admin_access = grant(&db, 22, &room_id, &admin, Role::Administrator);
        let member_access = grant(&db, 23, &room_id, &member, Role::Member);

        // Administrators manage members but neither grant nor touch owners.
        let set = |caller: &str, id: &str, role| update_role(&db, caller, id, role, NOW);
        assert_eq!(set(&member, &admin_access, Some(Role::Member)), Ok(None));
        assert_eq!(
            set(&admin, &member_access, Some(Role::Administrator))
                .unwrap()
                .map(|a| a.role),
            Some(Role::Administrator)
        );
        assert_eq!(set(&admin, &member_access, Some(Role::Owner)), Ok(None));
        assert_eq!(set(&admin, &owner_access, Some(Role::Member)), Ok(None));
        // Owners cannot edit other owners, only themselves.
        assert_eq!(set(&owner, &co_owner_access, Some(Role::Member)), Ok(None));
        assert_eq!(
            set(&owner, &admin_access, Some(Role::Owner))
                .unwrap()
                .map(|a| a.role),
            Some(Role::Owner)
        );
        // No role: only the timestamp moves.
        assert_eq!(
            set(&admin, &member_access, None).unwrap().map(|a| a.role),
            Some(Role::Administrator)
        );
        assert_eq!(role_of(&db, &co_owner_access).as_deref(), Some("owner"));
    }

    #[test]
    fn the_only_owner_cannot_be_demoted_or_deleted() {
        let db = migrated_database().unwrap();
        let (owner, member) = (user(&db, 1), user(&db, 2));
        let room_id = room(&db, 10);
        let owner_access = grant(&db, 20, &room_id, &owner, Role::Owner);
        grant(&db, 21, &room_id, &member, Role::Member);
        for role in [Role::Administrator, Role::Member] {
            assert_eq!(
                update_role(&db, &owner, &owner_access, Some(role), NOW),
                Err(AccessWriteError::LastOwner)
            );
        }
        assert_eq!(
            delete(&db, &owner, &owner_access),
            Err(AccessWriteError::LastOwner)
        );
        assert_eq!(role_of(&db, &owner_access).as_deref(), Some("owner"));
        // Keeping the role is no demotion.
        assert!(
            update_role(&db, &owner, &owner_access, Some(Role::Owner), NOW)
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn of_two_owners_demoting_themselves_exactly_one_succeeds() {
        let db = migrated_database().unwrap();
        let (first, second) = (user(&db, 1), user(&db, 2));
        let room_id = room(&db, 10);
        let first_access = grant(&db, 20, &room_id, &first, Role::Owner);
        let second_access = grant(&db, 21, &room_id, &second, Role::Owner);
        // Both read the room with two owners before either writes: the
        // check of a read-then-write would let both through.
        for (caller, id) in [(&first, &first_access), (&second, &second_access)] {
            let context = write_context(&db, caller, Some(id), References::default()).unwrap();
            assert_eq!(context.target.unwrap().caller_role, Some(Role::Owner));
        }
        let outcomes = [
            update_role(&db, &first, &first_access, Some(Role::Member), NOW),
            update_role(&db, &second, &second_access, Some(Role::Member), NOW),
        ];
        let succeeded = outcomes
            .iter()
            .filter(|outcome| matches!(outcome, Ok(Some(_))))
            .count();
        assert_eq!(succeeded, 1, "{outcomes:?}");
        assert!(outcomes.contains(&Err(AccessWriteError::LastOwner)));
        let owners = db
            .execute(
                "SELECT count(*) AS n FROM meet_resource_access WHERE resource_id = ? AND role = 'owner'",
                &[room_id.as_str().into()],
            )
            .unwrap();
        assert_eq!(rows(&owners).next().unwrap().integer("n").unwrap(), 1);
    }

    #[test]
    fn two_owners_deleting_themselves_leave_one() {
        let db = migrated_database().unwrap();
        let (first, second) = (user(&db, 1), user(&db, 2));
        let room_id = room(&db, 10);
        let first_access = grant(&db, 20, &room_id, &first, Role::Owner);
        let second_access = grant(&db, 21, &room_id, &second, Role::Owner);
        // An owner cannot delete another owner.
        assert_eq!(delete(&db, &first, &second_access), Ok(false));
        assert_eq!(delete(&db, &first, &first_access), Ok(true));
        assert_eq!(
            delete(&db, &second, &second_access),
            Err(AccessWriteError::LastOwner)
        );
    }

    #[test]
    fn deletes_non_owner_accesses_for_administrators_only() {
        let db = migrated_database().unwrap();
        let (admin, member, other) = (user(&db, 1), user(&db, 2), user(&db, 3));
        let room_id = room(&db, 10);
        grant(&db, 20, &room_id, &admin, Role::Administrator);
        let member_access = grant(&db, 21, &room_id, &member, Role::Member);
        let other_access = grant(&db, 22, &room_id, &other, Role::Member);
        assert_eq!(delete(&db, &member, &other_access), Ok(false));
        assert_eq!(delete(&db, &admin, &member_access), Ok(true));
        assert_eq!(role_of(&db, &member_access), None);
        assert_eq!(delete(&db, &admin, &member_access), Ok(false));
    }

    #[test]
    fn deleting_a_room_or_user_is_no_demotion() {
        let db = migrated_database().unwrap();
        let owner = user(&db, 1);
        let room_id = room(&db, 10);
        let access = grant(&db, 20, &room_id, &owner, Role::Owner);
        db.execute("DELETE FROM meet_room WHERE id = ?", &[room_id.into()])
            .unwrap();
        assert_eq!(role_of(&db, &access), None);
    }
}
