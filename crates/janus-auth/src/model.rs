//! Names, roles and scopes.
//!
//! A **grant** gives a user a [`Role`] in a [`Scope`]: one namespace, or
//! every namespace and the cluster itself ([`Scope::Global`]). Roles are
//! ordered, each including the ones below it: `read` (queries, lists,
//! watches), `write` (register, deregister, edit instances and services),
//! `admin` (create and delete services, edit the namespace; in the global
//! scope also namespaces, users, tokens, grants and cluster membership).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::AuthError;

/// The longest user name.
pub const MAX_USER_NAME: usize = 64;

/// A user's name: 1 to 64 characters of `A-Z a-z 0-9 . _ @ -`, starting
/// with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct UserName(String);

impl UserName {
    /// Checks `name` against the rule above.
    ///
    /// # Errors
    /// [`AuthError::Invalid`] saying what is wrong.
    pub fn parse(name: &str) -> Result<Self, AuthError> {
        let rule = "a user name is 1 to 64 characters of letters, digits, '.', '_', '@' and '-', starting with a letter or digit";
        let valid_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-');
        let first_ok = name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
        if name.len() > MAX_USER_NAME || !first_ok || !name.chars().all(valid_char) {
            return Err(AuthError::Invalid(format!("invalid user name {name:?}: {rule}")));
        }
        Ok(Self(name.to_owned()))
    }

    /// The name as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a grant allows; each role includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Role {
    /// Read registrations and definitions.
    Read,
    /// Also change instances and service settings.
    Write,
    /// Also create and delete; in the global scope, administer Janus.
    Admin,
}

impl Role {
    /// The role's name in the API and the CLI.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Admin => "admin",
        }
    }

    /// Parses `read`, `write` or `admin`.
    ///
    /// # Errors
    /// [`AuthError::Invalid`] naming the accepted values.
    pub fn parse(text: &str) -> Result<Self, AuthError> {
        match text {
            "read" => Ok(Self::Read),
            "write" => Ok(Self::Write),
            "admin" => Ok(Self::Admin),
            other => Err(AuthError::Invalid(format!("unknown role {other:?}: the roles are read, write and admin"))),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a grant applies.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Scope {
    /// Every namespace, and what belongs to no namespace (namespaces
    /// themselves, users, tokens, grants, the cluster).
    Global,
    /// One namespace, by id.
    Namespace(String),
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Global => f.write_str("globally"),
            Self::Namespace(id) => write!(f, "in namespace {id}"),
        }
    }
}

/// Who a request comes from, once its token is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's user.
    pub user: UserName,
    /// The token presented (for audit lines; never its secret); none when
    /// the request came with a user name and password (Eureka's basic auth).
    pub token: Option<crate::TokenId>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_follow_the_rule() {
        for good in ["admin", "team-a", "ci.bot", "x@example.com", "7", &"a".repeat(64)] {
            assert!(UserName::parse(good).is_ok(), "{good}");
        }
        for bad in ["", "-lead", ".x", "a b", "a/b", "é", &"a".repeat(65)] {
            let err = UserName::parse(bad).expect_err(bad);
            assert!(err.to_string().contains("user name"), "{err}");
        }
    }

    #[test]
    fn roles_include_the_ones_below() {
        assert!(Role::Admin > Role::Write && Role::Write > Role::Read);
        for role in [Role::Read, Role::Write, Role::Admin] {
            assert_eq!(Role::parse(role.as_str()).ok(), Some(role));
        }
        assert!(Role::parse("owner").expect_err("unknown").to_string().contains("read, write and admin"));
    }
}
