//! The server's part of auth (`docs/auth.md`): the gRPC front end's
//! [`Authorizer`] over the node's users, tokens and grants, and the
//! bootstrap admin of a node that starts with auth on and no admin.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use janus_auth::{AuthCommand, AuthError, AuthStore, IssuedToken, Role, Scope, TokenKind, UserName};
use janus_core::{NamespaceId, RegistryError, RegistryService};
use janus_grpc::{Access, Authorizer, RequestContext};
use tracing::{info, warn};

use crate::node::Node;

/// The file in the data directory the bootstrap admin's token is written to.
pub const BOOTSTRAP_TOKEN_FILE: &str = "bootstrap-token";
/// The bootstrap admin's name.
pub const BOOTSTRAP_ADMIN: &str = "admin";

fn unix_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Checks Nacos gRPC requests: the `accessToken` of the request's metadata
/// (which Nacos SDKs get from `POST /nacos/v1/auth/login`) must be a valid
/// token whose user holds the role in the namespace.
#[derive(Debug)]
pub struct TokenAuthorizer(pub Arc<AuthStore>);

impl Authorizer for TokenAuthorizer {
    fn authorize(
        &self,
        context: &RequestContext,
        access: Access,
        namespace: &NamespaceId,
    ) -> Result<(), RegistryError> {
        let role = match access {
            Access::Read => Role::Read,
            Access::Write => Role::Write,
        };
        // Writes are audited (when the log takes the line): then the caller is named.
        let audited = access == Access::Write && tracing::enabled!(target: "janus::audit", tracing::Level::INFO);
        let token = context.access_token.as_deref().filter(|t| !t.is_empty());
        let admitted = match token {
            None => Err(AuthError::Missing),
            Some(token) => {
                let now = unix_millis();
                self.0.read(|state| state.admit(token, now, Some(role), Some(namespace.as_str()), audited))
            }
        };
        match admitted {
            Ok(principal) => {
                if let Some(principal) = principal {
                    info!(target: "janus::audit", user = %principal.user,
                        token = %principal.token.as_ref().map_or("-", |t| t.as_str()),
                        connection = %context.connection_id, %namespace, "gRPC write");
                }
                Ok(())
            }
            Err(error) => {
                info!(target: "janus::audit", connection = %context.connection_id, %namespace, needed = %role,
                    reason = %error, "gRPC request refused");
                Err(RegistryError::Auth(error))
            }
        }
    }
}

/// With auth on and no global admin yet (a new cluster): creates the user
/// `admin` with the global admin role and a token, and writes the token to
/// `file` (`auth.bootstrap_token_file`, by default
/// `<data_dir>/bootstrap-token`), readable by its owner only; logs where,
/// never the token. Retries until the Raft group can take the writes; every
/// node of a new cluster may do it, and each writes the token it made (all
/// of them work).
pub async fn bootstrap_admin(node: Arc<Node>, file: PathBuf) {
    let mut pause = Duration::from_millis(200);
    loop {
        match try_bootstrap(&node, &file).await {
            Ok(Some(path)) => {
                warn!(file = %path.display(), user = BOOTSTRAP_ADMIN,
                    "auth is on and there was no admin: created one; its token is in this file (readable by its owner \
                     only). Use it to create users and grants, then revoke it");
                return;
            }
            Ok(None) => return,
            Err(error) => {
                info!(%error, "bootstrap admin not created yet; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
        }
    }
}

async fn try_bootstrap(node: &Node, file: &Path) -> Result<Option<PathBuf>, RegistryError> {
    // Caught up with the leader first, so an admin created elsewhere is seen.
    node.cp().linearize().await.map_err(|e| RegistryError::Auth(AuthError::Unavailable(e.to_string())))?;
    if node.cp().auth().read(|s| s.has_global_admin()) {
        return Ok(None);
    }
    let admin = UserName::parse(BOOTSTRAP_ADMIN).map_err(RegistryError::Auth)?;
    let now = unix_millis();
    match node.auth_write(AuthCommand::CreateUser { name: admin.clone(), password: None, at_unix_ms: now }).await {
        Ok(_) | Err(RegistryError::Auth(AuthError::UserExists(_))) => {}
        Err(error) => return Err(error),
    }
    node.auth_write(AuthCommand::Grant { user: admin.clone(), scope: Scope::Global, role: Role::Admin }).await?;
    let mut random = [0u8; 40];
    rand::Rng::fill(&mut rand::rng(), &mut random[..]);
    let token = IssuedToken::mint(random);
    node.auth_write(AuthCommand::IssueToken {
        id: token.id.clone(),
        hash: token.hash.clone(),
        user: admin,
        kind: TokenKind::Bootstrap,
        at_unix_ms: now,
        expires_unix_ms: None,
    })
    .await?;
    let path = file.to_owned();
    write_private(&path, &format!("{}\n", token.text()))
        .map_err(|e| RegistryError::Internal(format!("cannot write {}: {e}", path.display())))?;
    Ok(Some(path))
}

/// Writes `text` to a new file only its owner may read.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}
