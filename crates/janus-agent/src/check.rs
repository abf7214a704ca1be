//! Checking the local app: an HTTP GET, a TCP connect or a command, each
//! within a timeout.

use std::process::Stdio;
use std::time::Duration;

use janus_client::{Client, Method, Options, Request};
use tokio::net::TcpStream;

use crate::config::CheckConfig;

/// One way of checking the app.
#[derive(Debug)]
pub(crate) enum Check {
    /// No check: always passing.
    None,
    /// `GET path` on the app's address: passing on 2xx.
    Http { client: Client, path: String },
    /// A TCP connection to `addr` opens.
    Tcp { addr: String },
    /// The program exits 0.
    Command { program: String, args: Vec<String> },
}

/// `http://host:port/path` → (`host:port`, `/path`).
pub(crate) fn split_http_url(url: &str) -> Result<(String, String), String> {
    let rest =
        url.strip_prefix("http://").ok_or_else(|| format!("`app.check.http` must be an http:// URL, not `{url}`"))?;
    let (authority, path) = rest.find('/').map_or((rest, "/"), |at| (&rest[..at], &rest[at..]));
    if authority.is_empty() || !authority.contains(':') {
        return Err(format!(
            "`app.check.http` must name a host and a port, as in http://127.0.0.1:8080/health, not `{url}`"
        ));
    }
    Ok((authority.to_owned(), path.to_owned()))
}

impl Check {
    /// The check `config` describes (validated with the configuration).
    pub(crate) fn new(config: &CheckConfig) -> Result<Self, String> {
        if let Some(url) = &config.http {
            let (addr, path) = split_http_url(url)?;
            let options = Options::default().request_timeout(config.timeout()).connect_timeout(config.timeout());
            let client = Client::new([addr], options).map_err(|error| error.to_string())?;
            return Ok(Self::Http { client, path });
        }
        if let Some(addr) = &config.tcp {
            return Ok(Self::Tcp { addr: addr.clone() });
        }
        if let Some(command) = &config.command {
            let (program, args) = command.split_first().ok_or("`app.check.command` names no program")?;
            return Ok(Self::Command { program: program.clone(), args: args.to_vec() });
        }
        Ok(Self::None)
    }

    /// Runs the check once: `Ok` when it passes, else why not.
    pub(crate) async fn run(&self, timeout: Duration) -> Result<(), String> {
        match self {
            Self::None => Ok(()),
            Self::Http { client, path } => match client.send(Request::new(Method::GET, path.clone())).await {
                Ok(answer) if answer.status.is_success() => Ok(()),
                Ok(answer) => Err(format!("GET {path} answered {}", answer.status)),
                Err(error) => Err(format!("GET {path}: {error}")),
            },
            Self::Tcp { addr } => match tokio::time::timeout(timeout, TcpStream::connect(addr.as_str())).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(error)) => Err(format!("connecting to {addr}: {error}")),
                Err(_) => Err(format!("connecting to {addr} took more than {} ms", timeout.as_millis())),
            },
            Self::Command { program, args } => {
                let child = tokio::process::Command::new(program)
                    .args(args)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .kill_on_drop(true)
                    .spawn();
                let mut child = child.map_err(|error| format!("cannot run `{program}`: {error}"))?;
                match tokio::time::timeout(timeout, child.wait()).await {
                    Ok(Ok(status)) if status.success() => Ok(()),
                    Ok(Ok(status)) => Err(format!("`{program}` exited with {status}")),
                    Ok(Err(error)) => Err(format!("waiting for `{program}`: {error}")),
                    // Dropping the child kills it.
                    Err(_) => Err(format!("`{program}` took more than {} ms", timeout.as_millis())),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_urls_are_split_into_address_and_path() {
        assert_eq!(
            split_http_url("http://127.0.0.1:8080/health").unwrap(),
            ("127.0.0.1:8080".to_owned(), "/health".to_owned())
        );
        assert_eq!(split_http_url("http://localhost:80").unwrap(), ("localhost:80".to_owned(), "/".to_owned()));
        assert!(split_http_url("https://127.0.0.1:8443/").is_err());
        assert!(split_http_url("http://127.0.0.1/health").is_err());
    }

    #[tokio::test]
    async fn tcp_and_command_checks_pass_and_fail() {
        let timeout = Duration::from_secs(2);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open = Check::Tcp { addr: listener.local_addr().unwrap().to_string() };
        assert_eq!(open.run(timeout).await, Ok(()));
        drop(listener);
        assert!(open.run(timeout).await.is_err());

        let passing = Check::Command { program: "true".to_owned(), args: vec![] };
        assert_eq!(passing.run(timeout).await, Ok(()));
        let failing = Check::Command { program: "false".to_owned(), args: vec![] };
        assert!(failing.run(timeout).await.unwrap_err().contains("exited"));
        let slow = Check::Command { program: "sleep".to_owned(), args: vec!["5".to_owned()] };
        assert!(slow.run(Duration::from_millis(100)).await.unwrap_err().contains("took more than"));
        let missing = Check::Command { program: "/nonexistent/check".to_owned(), args: vec![] };
        assert!(missing.run(timeout).await.unwrap_err().contains("cannot run"));
    }
}
