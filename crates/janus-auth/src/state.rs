//! The replicated auth state, the commands that change it, and the checks.
//!
//! [`AuthState`] lives in every node's Raft state machine. It changes only
//! by [`AuthState::apply`] of an [`AuthCommand`] taken from the log, and a
//! command's effect depends only on the state and the command (times are in
//! the command, stamped by the node that proposed it), so every node agrees.
//! [`AuthState::check`] is the same decision without the change: the node
//! taking a request runs it before proposing, to answer a refusal at once.
//!
//! A token belongs to a user and carries no rights of its own: what it may
//! do is what its user's grants allow when it is presented, so a revoked
//! grant, a revoked token or a deleted user holds for every token at once.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::AuthError;
use crate::model::{Principal, Role, Scope, UserName};
use crate::password::PasswordHash;
use crate::token::{self, SecretHash, TokenId};

/// Users at most.
pub const MAX_USERS: usize = 10_000;
/// Tokens at most, all users together.
pub const MAX_TOKENS: usize = 100_000;
/// Tokens at most per user (logins included).
pub const MAX_TOKENS_PER_USER: usize = 1_000;
/// The longest API token name.
pub const MAX_TOKEN_NAME: usize = 64;

/// How a token came to be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TokenKind {
    /// Created through the admin API or the CLI, with a name saying what for.
    Api {
        /// What the token is for.
        name: String,
    },
    /// Issued by a login (Nacos's `accessToken`), with the login's lifetime.
    Login,
    /// Created at the first start of a node with auth on and no admin yet.
    Bootstrap,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct User {
    password: Option<PasswordHash>,
    created_unix_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct TokenRecord {
    user: UserName,
    kind: TokenKind,
    hash: SecretHash,
    created_unix_ms: u64,
    expires_unix_ms: Option<u64>,
}

/// Users, tokens and grants.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthState {
    users: BTreeMap<UserName, User>,
    tokens: BTreeMap<TokenId, TokenRecord>,
    grants: BTreeMap<UserName, BTreeMap<Scope, Role>>,
}

/// A change of the auth state, as the Raft log carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthCommand {
    /// Create a user, with a password (to log in) or without (tokens only).
    CreateUser {
        /// The new user.
        name: UserName,
        /// Its password's hash, computed before proposing.
        password: Option<PasswordHash>,
        /// The proposer's wall clock.
        at_unix_ms: u64,
    },
    /// Set or change a user's password.
    SetPassword {
        /// Whose.
        name: UserName,
        /// The new hash.
        password: PasswordHash,
    },
    /// Delete a user with its tokens and grants.
    DeleteUser {
        /// Whom.
        name: UserName,
    },
    /// Record a token minted by the proposer (only its secret's hash).
    IssueToken {
        /// The token's id.
        id: TokenId,
        /// Its secret's hash.
        hash: SecretHash,
        /// Its user.
        user: UserName,
        /// How it came to be.
        kind: TokenKind,
        /// The proposer's wall clock; the user's tokens expired by then are
        /// dropped.
        at_unix_ms: u64,
        /// When it stops working, if ever.
        expires_unix_ms: Option<u64>,
    },
    /// Revoke a token.
    RevokeToken {
        /// Which.
        id: TokenId,
    },
    /// Give a user a role in a scope (replacing its role there).
    Grant {
        /// To whom.
        user: UserName,
        /// Where.
        scope: Scope,
        /// What.
        role: Role,
    },
    /// Take a user's role in a scope away.
    RevokeGrant {
        /// From whom.
        user: UserName,
        /// Where.
        scope: Scope,
    },
}

/// What applying a command produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthOutcome {
    /// The user after the change.
    User(UserInfo),
    /// The token recorded.
    Token(TokenInfo),
    /// A deletion or revocation.
    Done,
}

/// A user as the admin API shows it (never its password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    /// The name.
    pub name: UserName,
    /// Whether the user can log in with a password.
    pub has_password: bool,
    /// When it was created.
    pub created_unix_ms: u64,
    /// Its grants.
    pub grants: Vec<(Scope, Role)>,
    /// How many tokens it holds.
    pub tokens: usize,
}

/// A token as the admin API shows it (never its secret or hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    /// Its id.
    pub id: TokenId,
    /// Its user.
    pub user: UserName,
    /// How it came to be.
    pub kind: TokenKind,
    /// When it was issued.
    pub created_unix_ms: u64,
    /// When it stops working, if ever.
    pub expires_unix_ms: Option<u64>,
}

impl AuthState {
    /// Whether some user holds the global admin role (else a node with auth
    /// on creates the bootstrap admin).
    #[must_use]
    pub fn has_global_admin(&self) -> bool {
        self.grants.values().any(|grants| grants.get(&Scope::Global) == Some(&Role::Admin))
    }

    /// Who presents `token_text`, at wall-clock time `now_unix_ms`.
    ///
    /// # Errors
    /// [`AuthError::MalformedToken`], [`AuthError::UnknownToken`] (never
    /// issued, revoked, wrong secret) or [`AuthError::Expired`].
    pub fn authenticate(&self, token_text: &str, now_unix_ms: u64) -> Result<Principal, AuthError> {
        let (id, record) = self.live_token(token_text, now_unix_ms)?;
        Ok(Principal { user: record.user.clone(), token: Some(id.clone()) })
    }

    /// The token `token_text` presents, if it is well formed, known, its
    /// secret matches and it has not expired at `now_unix_ms`.
    fn live_token(&self, token_text: &str, now_unix_ms: u64) -> Result<(&TokenId, &TokenRecord), AuthError> {
        let presented = token::split(token_text)?;
        let (id, record) = self.tokens.get_key_value(presented.id).ok_or(AuthError::UnknownToken)?;
        if !record.hash.matches(presented.secret) {
            return Err(AuthError::UnknownToken);
        }
        if record.expires_unix_ms.is_some_and(|expires| expires <= now_unix_ms) {
            return Err(AuthError::Expired);
        }
        Ok((id, record))
    }

    /// [`authenticate`](Self::authenticate) and, with `needed`,
    /// [`authorize`](Self::authorize) in one look, for the check of every
    /// request: `namespace` is where the request acts (`None`: globally).
    /// Allocates nothing unless `identify` asks for the [`Principal`] (for
    /// an audit line or a handler that needs it) or the request is refused.
    ///
    /// # Errors
    /// What `authenticate` or `authorize` refuses.
    pub fn admit(
        &self,
        token_text: &str,
        now_unix_ms: u64,
        needed: Option<Role>,
        namespace: Option<&str>,
        identify: bool,
    ) -> Result<Option<Principal>, AuthError> {
        let (id, record) = self.live_token(token_text, now_unix_ms)?;
        if let Some(needed) = needed {
            let holds = self.grants.get(&record.user).is_some_and(|grants| {
                grants.iter().any(|(scope, role)| {
                    *role >= needed
                        && match scope {
                            Scope::Global => true,
                            Scope::Namespace(id) => Some(id.as_str()) == namespace,
                        }
                })
            });
            if !holds {
                let scope = namespace.map_or(Scope::Global, |ns| Scope::Namespace(ns.to_owned()));
                return Err(AuthError::Forbidden { user: record.user.clone(), needed, scope });
            }
        }
        Ok(identify.then(|| Principal { user: record.user.clone(), token: Some(id.clone()) }))
    }

    /// Whether `user` holds `needed` (or more) in `scope`: a global grant
    /// counts in every namespace.
    ///
    /// # Errors
    /// [`AuthError::Forbidden`] naming the user, the role and the scope.
    pub fn authorize(&self, user: &UserName, needed: Role, scope: &Scope) -> Result<(), AuthError> {
        let grants = self.grants.get(user);
        let held = |at: &Scope| grants.and_then(|g| g.get(at)).is_some_and(|role| *role >= needed);
        if held(&Scope::Global) || (*scope != Scope::Global && held(scope)) {
            return Ok(());
        }
        Err(AuthError::Forbidden { user: user.clone(), needed, scope: scope.clone() })
    }

    /// The grants of `name`, by scope.
    #[must_use]
    pub fn grants_of(&self, name: &UserName) -> Vec<(Scope, Role)> {
        self.grants.get(name).map(|g| g.iter().map(|(s, r)| (s.clone(), *r)).collect()).unwrap_or_default()
    }

    /// The password hash of `name`, to verify a login outside any lock.
    #[must_use]
    pub fn password_of(&self, name: &UserName) -> Option<PasswordHash> {
        self.users.get(name).and_then(|user| user.password.clone())
    }

    /// One user.
    #[must_use]
    pub fn user(&self, name: &UserName) -> Option<UserInfo> {
        self.users.get(name).map(|user| self.user_info(name, user))
    }

    /// Every user, by name.
    #[must_use]
    pub fn users(&self) -> Vec<UserInfo> {
        self.users.iter().map(|(name, user)| self.user_info(name, user)).collect()
    }

    /// The tokens of `user`, or every token, by id.
    #[must_use]
    pub fn tokens(&self, user: Option<&UserName>) -> Vec<TokenInfo> {
        self.tokens
            .iter()
            .filter(|(_, record)| user.is_none_or(|u| &record.user == u))
            .map(|(id, record)| token_info(id, record))
            .collect()
    }

    fn user_info(&self, name: &UserName, user: &User) -> UserInfo {
        UserInfo {
            name: name.clone(),
            has_password: user.password.is_some(),
            created_unix_ms: user.created_unix_ms,
            grants: self.grants.get(name).map(|g| g.iter().map(|(s, r)| (s.clone(), *r)).collect()).unwrap_or_default(),
            tokens: self.tokens.values().filter(|t| &t.user == name).count(),
        }
    }

    /// Whether `command` would be applied, decided as [`apply`](Self::apply)
    /// decides, without changing anything.
    ///
    /// # Errors
    /// What `apply` would refuse.
    pub fn check(&self, command: &AuthCommand) -> Result<(), AuthError> {
        match command {
            AuthCommand::CreateUser { name, .. } => {
                if self.users.contains_key(name) {
                    return Err(AuthError::UserExists(name.clone()));
                }
                if self.users.len() >= MAX_USERS {
                    return Err(AuthError::Limit(format!("there are {MAX_USERS} users already, the most Janus keeps")));
                }
            }
            AuthCommand::SetPassword { name, .. } => self.known(name)?,
            AuthCommand::DeleteUser { name } => {
                self.known(name)?;
                if self.is_last_global_admin(name) {
                    return Err(AuthError::Invalid(format!(
                        "{name} is the last global admin: grant another user the global admin role first"
                    )));
                }
            }
            AuthCommand::IssueToken { id, user, kind, at_unix_ms, .. } => {
                self.known(user)?;
                if let TokenKind::Api { name } = kind
                    && (name.is_empty() || name.len() > MAX_TOKEN_NAME || name.chars().any(char::is_control))
                {
                    return Err(AuthError::Invalid(format!(
                        "a token name has 1 to {MAX_TOKEN_NAME} printable characters"
                    )));
                }
                if self.tokens.contains_key(id) {
                    return Err(AuthError::Invalid(format!("token id {id} is taken; mint another token")));
                }
                let live = |t: &&TokenRecord| t.expires_unix_ms.is_none_or(|e| e > *at_unix_ms);
                if self.tokens.values().filter(|t| &t.user == user).filter(live).count() >= MAX_TOKENS_PER_USER {
                    return Err(AuthError::Limit(format!(
                        "{user} holds {MAX_TOKENS_PER_USER} tokens, the most a user may: revoke some first"
                    )));
                }
                if self.tokens.values().filter(live).count() >= MAX_TOKENS {
                    return Err(AuthError::Limit(format!("there are {MAX_TOKENS} tokens, the most Janus keeps")));
                }
            }
            AuthCommand::RevokeToken { id } => {
                if !self.tokens.contains_key(id) {
                    return Err(AuthError::NoSuchToken(id.to_string()));
                }
            }
            AuthCommand::Grant { user, .. } => self.known(user)?,
            AuthCommand::RevokeGrant { user, scope } => {
                self.known(user)?;
                if *scope == Scope::Global && self.is_last_global_admin(user) {
                    return Err(AuthError::Invalid(format!(
                        "{user} is the last global admin: grant another user the global admin role first"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Applies a command from the log.
    ///
    /// # Errors
    /// What [`check`](Self::check) refuses; the state is then unchanged.
    pub fn apply(&mut self, command: AuthCommand) -> Result<AuthOutcome, AuthError> {
        self.check(&command)?;
        Ok(match command {
            AuthCommand::CreateUser { name, password, at_unix_ms } => {
                self.users.insert(name.clone(), User { password, created_unix_ms: at_unix_ms });
                self.user_outcome(&name)
            }
            AuthCommand::SetPassword { name, password } => {
                if let Some(user) = self.users.get_mut(&name) {
                    user.password = Some(password);
                }
                self.user_outcome(&name)
            }
            AuthCommand::DeleteUser { name } => {
                self.users.remove(&name);
                self.grants.remove(&name);
                self.tokens.retain(|_, t| t.user != name);
                AuthOutcome::Done
            }
            AuthCommand::IssueToken { id, hash, user, kind, at_unix_ms, expires_unix_ms } => {
                // Expired tokens are dropped as new ones come, so they never pile up.
                self.tokens.retain(|_, t| t.expires_unix_ms.is_none_or(|e| e > at_unix_ms));
                let record = TokenRecord { user, kind, hash, created_unix_ms: at_unix_ms, expires_unix_ms };
                let info = token_info(&id, &record);
                self.tokens.insert(id, record);
                AuthOutcome::Token(info)
            }
            AuthCommand::RevokeToken { id } => {
                self.tokens.remove(&id);
                AuthOutcome::Done
            }
            AuthCommand::Grant { user, scope, role } => {
                self.grants.entry(user.clone()).or_default().insert(scope, role);
                self.user_outcome(&user)
            }
            AuthCommand::RevokeGrant { user, scope } => {
                if let Some(grants) = self.grants.get_mut(&user) {
                    grants.remove(&scope);
                    if grants.is_empty() {
                        self.grants.remove(&user);
                    }
                }
                self.user_outcome(&user)
            }
        })
    }

    fn known(&self, name: &UserName) -> Result<(), AuthError> {
        if self.users.contains_key(name) { Ok(()) } else { Err(AuthError::NoSuchUser(name.clone())) }
    }

    fn is_last_global_admin(&self, name: &UserName) -> bool {
        let is_admin = |grants: &BTreeMap<Scope, Role>| grants.get(&Scope::Global) == Some(&Role::Admin);
        self.grants.get(name).is_some_and(is_admin)
            && !self.grants.iter().any(|(other, grants)| other != name && is_admin(grants))
    }

    fn user_outcome(&self, name: &UserName) -> AuthOutcome {
        self.user(name).map_or(AuthOutcome::Done, AuthOutcome::User)
    }
}

fn token_info(id: &TokenId, record: &TokenRecord) -> TokenInfo {
    TokenInfo {
        id: id.clone(),
        user: record.user.clone(),
        kind: record.kind.clone(),
        created_unix_ms: record.created_unix_ms,
        expires_unix_ms: record.expires_unix_ms,
    }
}

#[cfg(test)]
mod tests;
