//! Roles on a room and access levels (domain.md §2.1, §3).

use std::fmt;
use std::str::FromStr;

use crate::ports::SqlValue;

/// A user's role on a room; the order is the order of privilege.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Member,
    Administrator,
    Owner,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Member, Role::Administrator, Role::Owner];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Administrator => "administrator",
            Role::Owner => "owner",
        }
    }

    /// The rank SQL compares roles by: 1 for member up to 3 for owner.
    pub fn rank(self) -> i64 {
        match self {
            Role::Member => 1,
            Role::Administrator => 2,
            Role::Owner => 3,
        }
    }

    pub fn from_rank(rank: i64) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.rank() == rank)
    }

    /// Administrators and owners manage a room.
    pub fn is_privileged(self) -> bool {
        self >= Role::Administrator
    }
}

impl FromStr for Role {
    type Err = ();

    fn from_str(text: &str) -> Result<Role, ()> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == text)
            .ok_or(())
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who may join a room without going through the lobby.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessLevel {
    Public,
    Trusted,
    Restricted,
}

impl AccessLevel {
    pub const ALL: [AccessLevel; 3] = [
        AccessLevel::Public,
        AccessLevel::Trusted,
        AccessLevel::Restricted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AccessLevel::Public => "public",
            AccessLevel::Trusted => "trusted",
            AccessLevel::Restricted => "restricted",
        }
    }

    /// Whether a caller may join directly (gets a LiveKit token from the
    /// room endpoint): public rooms, trusted rooms for logged-in callers,
    /// and anyone with a role on the room.
    pub fn lets_join(self, authenticated: bool, role: Option<Role>) -> bool {
        role.is_some()
            || match self {
                AccessLevel::Public => true,
                AccessLevel::Trusted => authenticated,
                AccessLevel::Restricted => false,
            }
    }
}

impl FromStr for AccessLevel {
    type Err = ();

    fn from_str(text: &str) -> Result<AccessLevel, ()> {
        AccessLevel::ALL
            .into_iter()
            .find(|level| level.as_str() == text)
            .ok_or(())
    }
}

/// Role ranks in SQL, built from [`Role::rank`] so that the order of
/// privilege is defined once: `CASE <column> WHEN 'member' THEN 1 … END`,
/// 0 for anything else. Used for `max()` over a user's accesses and "higher
/// role wins" comparisons.
pub fn sql_rank(column: &str) -> String {
    let arms: String = Role::ALL
        .iter()
        .map(|role| format!(" WHEN '{}' THEN {}", role.as_str(), role.rank()))
        .collect();
    format!("CASE {column}{arms} ELSE 0 END")
}

/// The rank of user `user` on room `resource` (SQL expressions both), NULL
/// without an access: the one sub-query every permission check compares.
pub fn sql_rank_of_user(resource: &str, user: &str) -> String {
    format!(
        "(SELECT max({}) FROM meet_resource_access ra WHERE ra.resource_id = {resource} AND ra.user_id = {user})",
        sql_rank("ra.role")
    )
}

/// The role a rank computed by [`sql_rank`] stands for; `None` for NULL or 0.
pub fn role_of_rank(value: &SqlValue) -> Option<Role> {
    value.as_i64().and_then(Role::from_rank)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_and_order_by_privilege() {
        assert_eq!("owner".parse(), Ok(Role::Owner));
        assert!("admin".parse::<Role>().is_err());
        assert!(Role::Owner > Role::Administrator && Role::Administrator > Role::Member);
        assert!(Role::Administrator.is_privileged() && !Role::Member.is_privileged());
    }

    #[test]
    fn ranks_follow_the_order_of_privilege() {
        for pair in Role::ALL.windows(2) {
            assert!(pair[0].rank() < pair[1].rank());
        }
        for role in Role::ALL {
            assert_eq!(role_of_rank(&SqlValue::Integer(role.rank())), Some(role));
        }
        assert_eq!(role_of_rank(&SqlValue::Null), None);
        assert_eq!(role_of_rank(&SqlValue::Integer(0)), None);
        assert_eq!(
            sql_rank("r"),
            "CASE r WHEN 'member' THEN 1 WHEN 'administrator' THEN 2 WHEN 'owner' THEN 3 ELSE 0 END"
        );
    }

    #[test]
    fn who_joins_directly() {
        use AccessLevel::*;
        assert!(Public.lets_join(false, None));
        assert!(!Trusted.lets_join(false, None));
        assert!(Trusted.lets_join(true, None));
        assert!(!Restricted.lets_join(true, None));
        assert!(Restricted.lets_join(true, Some(Role::Member)));
    }
}
