//! Roles on a room and access levels (domain.md §2.1, §3).

use std::fmt;
use std::str::FromStr;

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

/// Role rank in SQL, for `max()` over a user's accesses and "higher role
/// wins" comparisons: `CASE <column> WHEN 'owner' THEN 3 … END`.
pub fn sql_rank(column: &str) -> String {
    format!("CASE {column} WHEN 'owner' THEN 3 WHEN 'administrator' THEN 2 WHEN 'member' THEN 1 ELSE 0 END")
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
    fn who_joins_directly() {
        use AccessLevel::*;
        assert!(Public.lets_join(false, None));
        assert!(!Trusted.lets_join(false, None));
        assert!(Trusted.lets_join(true, None));
        assert!(!Restricted.lets_join(true, None));
        assert!(Restricted.lets_join(true, Some(Role::Member)));
    }
}
