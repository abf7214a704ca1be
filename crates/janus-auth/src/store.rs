//! [`AuthStore`]: a node's [`AuthState`] behind a lock, written by the Raft
//! state machine as commands commit and read by every front end's check.
//! Reads are short (a map lookup, a hash, a comparison) and writes rare, so
//! a read-write lock apart from the registry's keeps the checks off the
//! registry's write path.

use parking_lot::RwLock;

use crate::{AuthCommand, AuthError, AuthOutcome, AuthState};

/// The auth state of a node.
#[derive(Debug, Default)]
pub struct AuthStore {
    state: RwLock<AuthState>,
}

impl AuthStore {
    /// Runs `read` on the current state.
    pub fn read<T>(&self, read: impl FnOnce(&AuthState) -> T) -> T {
        read(&self.state.read())
    }

    /// Applies a committed command (see [`AuthState::apply`]).
    ///
    /// # Errors
    /// The command's deterministic refusal.
    pub fn apply(&self, command: AuthCommand) -> Result<AuthOutcome, AuthError> {
        self.state.write().apply(command)
    }

    /// A copy of the state, for a snapshot.
    #[must_use]
    pub fn export(&self) -> AuthState {
        self.state.read().clone()
    }

    /// Replaces the state with a snapshot's.
    pub fn import(&self, state: AuthState) {
        *self.state.write() = state;
    }
}
