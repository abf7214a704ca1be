//! `janus auth …`: users, grants and API tokens through the node's access
//! API (`/v1/auth/`, global admin only except `whoami`; docs/auth.md).
//! Passwords are read from standard input, never from the command line
//! (where `ps` and shell history would show them).

use std::process::ExitCode;

use clap::Subcommand;
use janus_client::api::auth::{CreateToken, Grant, User};

use super::{CliError, Target, node_client};

/// `janus auth …`.
#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Who the token given is: its user, token id and grants.
    Whoami(Target),
    /// Users.
    #[command(subcommand)]
    Users(UserCommand),
    /// Grants of a role on a namespace (or everywhere, with `*`).
    #[command(subcommand)]
    Grants(GrantCommand),
    /// API tokens.
    #[command(subcommand)]
    Tokens(TokenCommand),
}

/// `janus auth users …`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Users with their grants (never a password).
    List(Target),
    /// Create a user; with --password-stdin it can log in (Nacos SDKs,
    /// Eureka basic auth), else it only uses API tokens.
    Create {
        #[command(flatten)]
        target: Target,
        /// The user's name.
        name: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a user's password, read from the first line of standard input.
    Password {
        #[command(flatten)]
        target: Target,
        /// The user's name.
        name: String,
    },
    /// Delete a user with its tokens and grants.
    Delete {
        #[command(flatten)]
        target: Target,
        /// The user's name.
        name: String,
    },
}

/// `janus auth grants …`.
#[derive(Debug, Subcommand)]
pub enum GrantCommand {
    /// Give a user a role on a namespace, replacing the one it had there.
    Set {
        #[command(flatten)]
        target: Target,
        /// The user's name.
        user: String,
        /// The namespace id, or `*` for every namespace (a global role).
        namespace: String,
        /// What the role allows.
        #[arg(value_parser = ["read", "write", "admin"])]
        role: String,
    },
    /// Take a user's role on a namespace away (`*`: the global one).
    Revoke {
        #[command(flatten)]
        target: Target,
        /// The user's name.
        user: String,
        /// The namespace id, or `*`.
        namespace: String,
    },
}

/// `janus auth tokens …`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Tokens (ids, kinds, expiry; never a secret).
    List {
        #[command(flatten)]
        target: Target,
        /// Only this user's.
        #[arg(long)]
        user: Option<String>,
    },
    /// Create an API token and print it: the only time it is shown.
    Create {
        #[command(flatten)]
        target: Target,
        /// What the token is for (shown in lists and audit lines).
        name: String,
        /// Whose token [default: the caller's own]
        #[arg(long)]
        user: Option<String>,
        /// Lifetime in seconds [default: until revoked]
        #[arg(long)]
        ttl_seconds: Option<u64>,
    },
    /// Revoke a token: refused on every node as soon as the revocation commits.
    Revoke {
        #[command(flatten)]
        target: Target,
        /// The token id (`jns_<id>_…`, or the id alone).
        id: String,
    },
}

/// Runs `janus auth …`.
pub(super) async fn execute(command: AuthCommand) -> Result<ExitCode, CliError> {
    match command {
        AuthCommand::Whoami(target) => {
            let me = node_client(&target)?.whoami().await.map_err(CliError::from_node)?;
            if !me.auth_enabled {
                println!("auth is off on this node: every request is allowed");
            }
            match me.user {
                Some(user) => println!("user {user}, token {}", me.token.as_deref().unwrap_or("-")),
                None => println!("no user (no token given)"),
            }
            print_grants(&me.grants);
        }
        AuthCommand::Users(UserCommand::List(target)) => {
            let users = node_client(&target)?.list_users().await.map_err(CliError::from_node)?;
            for user in &users {
                print_user(user);
            }
        }
        AuthCommand::Users(UserCommand::Create { target, name, password_stdin }) => {
            let password = if password_stdin { Some(read_password()?) } else { None };
            let client = node_client(&target)?;
            let user = client.create_user(&name, password.as_deref()).await.map_err(CliError::from_node)?;
            println!("created user {}{}", user.name, if user.has_password { " (with a password)" } else { "" });
        }
        AuthCommand::Users(UserCommand::Password { target, name }) => {
            let password = read_password()?;
            node_client(&target)?.set_password(&name, &password).await.map_err(CliError::from_node)?;
            println!("set the password of {name}");
        }
        AuthCommand::Users(UserCommand::Delete { target, name }) => {
            node_client(&target)?.delete_user(&name).await.map_err(CliError::from_node)?;
            println!("deleted user {name} with its tokens and grants");
        }
        AuthCommand::Grants(GrantCommand::Set { target, user, namespace, role }) => {
            let user = node_client(&target)?.grant(&user, &namespace, &role).await.map_err(CliError::from_node)?;
            print_user(&user);
        }
        AuthCommand::Grants(GrantCommand::Revoke { target, user, namespace }) => {
            let user = node_client(&target)?.revoke_grant(&user, &namespace).await.map_err(CliError::from_node)?;
            print_user(&user);
        }
        AuthCommand::Tokens(TokenCommand::List { target, user }) => {
            let tokens = node_client(&target)?.list_tokens(user.as_deref()).await.map_err(CliError::from_node)?;
            for token in &tokens {
                let expires = token.expires_at_ms.map_or_else(|| "never".to_owned(), |at| format!("{at} (unix ms)"));
                let name = token.name.as_deref().unwrap_or("-");
                println!("{:<24} {:<16} {:<9} {name:<20} expires {expires}", token.id, token.user, token.kind);
            }
        }
        AuthCommand::Tokens(TokenCommand::Create { target, name, user, ttl_seconds }) => {
            let request = CreateToken { user, name, ttl_seconds };
            let issued = node_client(&target)?.create_token(&request).await.map_err(CliError::from_node)?;
            let expires = issued.expires_at_ms.map_or_else(|| "never".to_owned(), |at| format!("at {at} (unix ms)"));
            eprintln!("token {} of {}, expires {expires}; shown this once:", issued.id, issued.user);
            println!("{}", issued.token);
        }
        AuthCommand::Tokens(TokenCommand::Revoke { target, id }) => {
            let id = token_id(&id);
            node_client(&target)?.revoke_token(id).await.map_err(CliError::from_node)?;
            println!("revoked token {id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The id of a token given whole (`jns_<id>_<secret>`) or as its id.
fn token_id(given: &str) -> &str {
    given.strip_prefix("jns_").and_then(|rest| rest.split('_').next()).unwrap_or(given)
}

/// The first line of standard input, without its line end.
fn read_password() -> Result<String, CliError> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|error| CliError::Refused(format!("cannot read the password from standard input: {error}")))?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        return Err(CliError::Refused(
            "no password on standard input: pipe it in, e.g. `printf '%s\\n' \"$PASSWORD\" | janus auth …`".to_owned(),
        ));
    }
    Ok(password)
}

fn print_user(user: &User) {
    let password = if user.has_password { "password" } else { "tokens only" };
    println!("{:<24} {password:<12} {} tokens", user.name, user.tokens);
    print_grants(&user.grants);
}

fn print_grants(grants: &[Grant]) {
    for grant in grants {
        let namespace = if grant.namespace == "*" { "* (every namespace)" } else { grant.namespace.as_str() };
        println!("  {:<6} on {namespace}", grant.role);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whole_token_is_revoked_by_its_id() {
        assert_eq!(token_id("jns_0123456789abcdef_ffff"), "0123456789abcdef");
        assert_eq!(token_id("0123456789abcdef"), "0123456789abcdef");
    }
}
