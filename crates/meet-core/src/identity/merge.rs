//! Merging users who share an email (domain.md §1.1, as the later upstream
//! `merge_duplicate_users` command does it): per email, compared without
//! case, the most recently created user is kept; the others' room and
//! recording accesses move to it, the higher role winning where both had
//! one; then the others are deleted. One transaction per email.

use crate::ports::{Database, DbError, SqlValue};
use crate::roles::sql_rank as rank;
use crate::sql::rows;

/// What was (or, in a dry run, would be) merged for one email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergedEmail {
    pub email: String,
    pub kept_user: String,
    pub removed_users: Vec<String>,
}

/// Finds the groups of users sharing an email (ASCII case-insensitively, as
/// SQLite's `lower`), optionally only emails containing `email_filter`.
pub fn duplicate_groups(
    db: &dyn Database,
    email_filter: Option<&str>,
) -> Result<Vec<MergedEmail>, DbError> {
    let result = db.execute(
        "SELECT lower(email) AS email_key, id FROM meet_user \
         WHERE email IS NOT NULL AND email <> '' \
           AND (?1 IS NULL OR instr(lower(email), lower(?1)) > 0) \
           AND lower(email) IN (SELECT lower(email) FROM meet_user WHERE email IS NOT NULL \
                                GROUP BY lower(email) HAVING count(*) > 1) \
         ORDER BY email_key, created_at DESC, id",
        &[email_filter.map(str::to_string).into()],
    )?;
    let mut groups: Vec<MergedEmail> = Vec::new();
    for row in rows(&result) {
        let email = row.text("email_key")?;
        let id = row.text("id")?;
        match groups.last_mut() {
            Some(group) if group.email == email => group.removed_users.push(id),
            _ => groups.push(MergedEmail {
                email,
                kept_user: id,
                removed_users: Vec::new(),
            }),
        }
    }
    Ok(groups)
}

/// Merges every group; with `dry_run`, only reports what it would do.
pub fn merge_duplicate_users(
    db: &dyn Database,
    email_filter: Option<&str>,
    dry_run: bool,
) -> Result<Vec<MergedEmail>, DbError> {
    let groups = duplicate_groups(db, email_filter)?;
    if !dry_run {
        for group in &groups {
            merge_group(db, group)?;
        }
    }
    Ok(groups)
}

fn merge_group(db: &dyn Database, group: &MergedEmail) -> Result<(), DbError> {
    db.execute("BEGIN IMMEDIATE", &[])?;
    let outcome = group
        .removed_users
        .iter()
        .try_for_each(|duplicate| merge_into(db, &group.kept_user, duplicate));
    match outcome {
        Ok(()) => db.execute("COMMIT", &[]).map(|_| ()),
        Err(error) => {
            // Leave nothing half-merged.
            let _ = db.execute("ROLLBACK", &[]);
            Err(error)
        }
    }
}

fn merge_into(db: &dyn Database, kept: &str, duplicate: &str) -> Result<(), DbError> {
    let params: [SqlValue; 2] = [kept.into(), duplicate.into()];
    for (table, parent) in [
        ("meet_resource_access", "resource_id"),
        ("meet_recording_access", "recording_id"),
    ] {
        // Where both hold an access, the kept one takes the higher role.
        db.execute(
            &format!(
                "UPDATE {table} AS kept SET role = dup.role, updated_at = dup.updated_at \
                 FROM {table} AS dup \
                 WHERE kept.user_id = ?1 AND dup.user_id = ?2 AND dup.{parent} = kept.{parent} \
                   AND {} > {}",
                rank("dup.role"),
                rank("kept.role")
            ),
            &params,
        )?;
        // Where only the duplicate has one, it moves over.
        db.execute(
            &format!(
                "UPDATE {table} SET user_id = ?1 WHERE user_id = ?2 \
                 AND {parent} NOT IN (SELECT {parent} FROM {table} WHERE user_id = ?1)"
            ),
            &params,
        )?;
    }
    // What is left of the duplicate (accesses the kept user also had,
    // sessions) goes with it.
    db.execute("DELETE FROM meet_user WHERE id = ?", &[duplicate.into()])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::native::{migrated_database, SqliteDatabase};

    const T: &str = "2025-01-01T00:00:00.000000Z";

    fn uuid(prefix: char, n: u8) -> String {
        format!(
            "{}{}-0000-4000-8000-0000000000{n:02}",
            prefix.to_string().repeat(2),
            "0".repeat(6)
        )
    }

    fn add_user(db: &SqliteDatabase, n: u8, email: &str, created: &str) -> String {
        let id = uuid('a', n);
        db.execute(
            "INSERT INTO meet_user (id, created_at, updated_at, sub, email) VALUES (?, ?, ?, ?, ?)",
            &[
                id.clone().into(),
                created.into(),
                created.into(),
                format!("sub{n}").into(),
                email.into(),
            ],
        )
        .unwrap();
        id
    }

    fn add_room(db: &SqliteDatabase, n: u8) -> String {
        let id = uuid('b', n);
        db.execute(
            "INSERT INTO meet_room (id, created_at, updated_at, name, slug) VALUES (?, ?, ?, ?, ?)",
            &[
                id.clone().into(),
                T.into(),
                T.into(),
                format!("room {n}").into(),
                format!("room-{n}").into(),
            ],
        )
        .unwrap();
        id
    }

    fn grant(db: &SqliteDatabase, n: u8, room: &str, user: &str, role: &str) {
        db.execute(
            "INSERT INTO meet_resource_access (id, created_at, updated_at, resource_id, user_id, role) VALUES (?, ?, ?, ?, ?, ?)",
            &[uuid('c', n).into(), T.into(), T.into(), room.into(), user.into(), role.into()],
        )
        .unwrap();
    }

    fn role(db: &SqliteDatabase, room: &str, user: &str) -> Option<String> {
        let result = db
            .execute(
                "SELECT role FROM meet_resource_access WHERE resource_id = ? AND user_id = ?",
                &[room.into(), user.into()],
            )
            .unwrap();
        result
            .rows
            .first()
            .and_then(|row| row[0].as_str().map(str::to_string))
    }

    #[test]
    fn keeps_the_newest_user_and_moves_accesses_with_the_higher_role() {
        let db = migrated_database().unwrap();
        let old = add_user(&db, 1, "Jane@Example.org", "2024-01-01T00:00:00.000000Z");
        let new = add_user(&db, 2, "jane@example.org", "2025-01-01T00:00:00.000000Z");
        let other = add_user(&db, 3, "other@example.org", T);
        let (only_old, both, both_owner) = (add_room(&db, 1), add_room(&db, 2), add_room(&db, 3));
        grant(&db, 1, &only_old, &old, "owner");
        grant(&db, 2, &both, &old, "administrator");
        grant(&db, 3, &both, &new, "member");
        grant(&db, 4, &both_owner, &old, "member");
        grant(&db, 5, &both_owner, &new, "owner");
        grant(&db, 6, &both, &other, "owner");

        let dry = merge_duplicate_users(&db, None, true).unwrap();
        assert_eq!(
            dry,
            vec![MergedEmail {
                email: "jane@example.org".into(),
                kept_user: new.clone(),
                removed_users: vec![old.clone()]
            }]
        );
        assert_eq!(
            role(&db, &only_old, &old).as_deref(),
            Some("owner"),
            "a dry run changes nothing"
        );

        let merged = merge_duplicate_users(&db, None, false).unwrap();

        assert_eq!(merged, dry);
        assert_eq!(role(&db, &only_old, &new).as_deref(), Some("owner"));
        assert_eq!(role(&db, &both, &new).as_deref(), Some("administrator"));
        assert_eq!(role(&db, &both_owner, &new).as_deref(), Some("owner"));
        assert_eq!(role(&db, &both, &other).as_deref(), Some("owner"));
        let users = db
            .execute("SELECT id FROM meet_user ORDER BY id", &[])
            .unwrap();
        assert_eq!(users.rows.len(), 2);
        let leftovers = db
            .execute(
                "SELECT count(*) FROM meet_resource_access WHERE user_id = ?",
                &[old.into()],
            )
            .unwrap();
        assert_eq!(leftovers.rows[0][0], SqlValue::Integer(0));
        assert!(
            merge_duplicate_users(&db, None, false).unwrap().is_empty(),
            "nothing left to merge"
        );
    }

    #[test]
    fn recording_accesses_move_too_and_the_filter_limits_the_merge() {
        let db = migrated_database().unwrap();
        let old = add_user(&db, 1, "a@x.org", "2024-01-01T00:00:00.000000Z");
        let new = add_user(&db, 2, "A@X.org", "2025-01-01T00:00:00.000000Z");
        add_user(&db, 3, "b@x.org", "2024-01-01T00:00:00.000000Z");
        add_user(&db, 4, "b@x.org", "2025-01-01T00:00:00.000000Z");
        let room = add_room(&db, 1);
        let recording = uuid('d', 1);
        db.execute(
            "INSERT INTO meet_recording (id, created_at, updated_at, room_id, status) VALUES (?, ?, ?, ?, 'saved')",
            &[recording.clone().into(), T.into(), T.into(), room.into()],
        )
        .unwrap();
        db.execute(
            "INSERT INTO meet_recording_access (id, created_at, updated_at, recording_id, user_id, role) VALUES (?, ?, ?, ?, ?, 'owner')",
            &[uuid('e', 1).into(), T.into(), T.into(), recording.clone().into(), old.into()],
        )
        .unwrap();

        let merged = merge_duplicate_users(&db, Some("a@"), false).unwrap();

        assert_eq!(merged.len(), 1);
        let owner = db
            .execute(
                "SELECT user_id FROM meet_recording_access WHERE recording_id = ?",
                &[recording.into()],
            )
            .unwrap();
        assert_eq!(owner.rows[0][0], SqlValue::Text(new));
        let remaining = db.execute("SELECT count(*) FROM meet_user", &[]).unwrap();
        assert_eq!(
            remaining.rows[0][0],
            SqlValue::Integer(3),
            "b@x.org was filtered out"
        );
    }
}
