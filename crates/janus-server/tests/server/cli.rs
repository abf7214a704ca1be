//! The `janus` binary as a new user meets it: `--version`, the operator
//! commands against a running single node (errors are sentences, cluster
//! commands say the node is not clustered, `--group`), the environment
//! variables the CLI reads, and the start-up log of a node.
//!
//! Every child process starts with an empty environment plus what the test
//! sets, so the developer's `JANUS_*` variables change nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Output, Stdio};

use janus_server::{RunningServer, ServerConfig};
use tokio_util::sync::CancellationToken;

const JANUS: &str = env!("CARGO_BIN_EXE_janus");

/// A port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    janus_testkit::ports::unused_loopback_ports(1)[0]
}

struct Node {
    server: Option<RunningServer>,
    shutdown: CancellationToken,
    _data: tempfile::TempDir,
}

impl Node {
    async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    async fn start_with(tweak: impl FnOnce(&mut ServerConfig)) -> Self {
        let data = tempfile::tempdir().unwrap();
        let mut config = ServerConfig::default();
        config.http.addr = "127.0.0.1:0".parse().unwrap();
        config.dns.enabled = false;
        config.node.data_dir = data.path().to_owned();
        config.health.probe_allow = vec!["127.0.0.0/8".to_owned()];
        tweak(&mut config);
        let shutdown = CancellationToken::new();
        let server = janus_server::start(config, shutdown.clone()).await.unwrap();
        Self { server: Some(server), shutdown, _data: data }
    }

    fn addr(&self) -> String {
        self.server.as_ref().unwrap().http_addr.to_string()
    }

    async fn stop(mut self) {
        self.shutdown.cancel();
        self.server.take().unwrap().wait().await.unwrap();
    }
}

/// Runs `janus args…` with only `vars` in its environment.
async fn janus(args: &[&str], vars: &[(&str, &str)]) -> Output {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    tokio::task::spawn_blocking(move || Command::new(JANUS).args(&args).env_clear().envs(vars).output().unwrap())
        .await
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn version_names_the_program_janus() {
    let output = janus(&["--version"], &[]).await;
    assert!(output.status.success());
    assert_eq!(stdout(&output), format!("janus {}\n", env!("CARGO_PKG_VERSION")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_commands_on_a_single_node_say_it_is_not_clustered() {
    let node = Node::start().await;
    let addr = node.addr();
    let nowhere = format!("127.0.0.1:{}", closed_port());
    for args in [
        vec!["members", "list", "--addr", &addr, "--cluster-addr", &nowhere],
        vec!["members", "list", "--addr", &addr, "--cluster-addr", &nowhere, "--secret", "0123456789abcdef"],
        vec!["members", "add", "2", "10.0.0.2:7848", "--addr", &addr, "--cluster-addr", &nowhere, "--secret", "s"],
        vec!["members", "promote", "2", "--addr", &addr],
    ] {
        let output = janus(&args, &[]).await;
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let said = stderr(&output);
        assert!(said.contains(&format!("the node at {addr} is not clustered")), "{args:?}: {said}");
        assert!(said.contains("cluster.members") && said.contains("cluster.addr"), "{said}");
        assert!(!said.contains("refused"), "{said}");
    }
    let output = janus(&["status", "--addr", &addr], &[]).await;
    assert!(output.status.success());
    assert!(stdout(&output).contains("Not clustered"), "{}", stdout(&output));
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_sentences_and_instances_take_a_group() {
    let node = Node::start().await;
    let addr = node.addr();
    let create = ["namespaces", "create", "team", "--mode", "ap", "--addr", &addr];
    assert!(janus(&create, &[]).await.status.success());
    let output = janus(&create, &[]).await;
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stderr(&output), "janus: namespace 'team' already exists (HTTP 409)\n");

    let output =
        janus(&["instances", "register", "team", "web", "10.0.0.7", "80", "--group", "blue", "--addr", &addr], &[])
            .await;
    assert!(output.status.success(), "{}", stderr(&output));
    let output = janus(&["instances", "list", "team", "web", "--group", "blue", "--addr", &addr], &[]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).starts_with("blue@@web (ap)") && stdout(&output).contains("10.0.0.7:80"),
        "{}",
        stdout(&output)
    );
    let output = janus(&["instances", "list", "team", "web", "--addr", &addr], &[]).await;
    assert!(!stdout(&output).contains("10.0.0.7"), "another group: {}", stdout(&output));
    let output =
        janus(&["instances", "deregister", "team", "web", "10.0.0.7", "80", "--group", "blue", "--addr", &addr], &[])
            .await;
    assert!(output.status.success(), "{}", stderr(&output));

    let output = janus(&["instances", "list", "nowhere", "web", "--addr", &addr], &[]).await;
    assert_eq!(output.status.code(), Some(1));
    let said = stderr(&output);
    assert!(said.starts_with("janus: ") && said.contains("(HTTP 404)") && !said.contains('{'), "{said}");

    let closed = format!("127.0.0.1:{}", closed_port());
    let output = janus(&["status", "--addr", &closed], &[]).await;
    assert_eq!(output.status.code(), Some(1));
    let said = stderr(&output);
    assert!(said.contains(&format!("cannot reach {closed} (connection refused)")) && said.contains("--addr"), "{said}");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_reads_the_servers_variables_and_the_old_one_with_a_warning() {
    let node = Node::start().await;
    let addr = node.addr();
    let port = addr.rsplit(':').next().unwrap().to_owned();

    // The server's own variable, even as a listen address (0.0.0.0 is this host).
    let listen = format!("0.0.0.0:{port}");
    let output = janus(&["namespaces", "list"], &[("JANUS_HTTP__ADDR", &listen)]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("public"), "{}", stdout(&output));
    assert_eq!(stderr(&output), "");

    let output = janus(&["namespaces", "list"], &[("JANUS_ADDR", &addr)]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stderr(&output).contains("JANUS_ADDR is deprecated") && stderr(&output).contains("JANUS_HTTP__ADDR"));

    // A typo is pointed out, not silently ignored.
    let output = janus(&["health", "--addr", &addr], &[("JANUS_HTTP_ADDR", &addr)]).await;
    assert!(output.status.success());
    assert!(stderr(&output).contains("JANUS_HTTP_ADDR matches no setting: did you mean JANUS_HTTP__ADDR"));

    // The secret and the cluster address follow the rule too.
    let nowhere = format!("127.0.0.1:{}", closed_port());
    let vars = [("JANUS_HTTP__ADDR", addr.as_str()), ("JANUS_CLUSTER__ADDR", &nowhere), ("JANUS_CLUSTER__SECRET", "s")];
    let output = janus(&["members", "list"], &vars).await;
    assert!(stderr(&output).contains("is not clustered"), "{}", stderr(&output));
    node.stop().await;
}

#[test]
fn a_misspelt_variable_stops_the_server_naming_the_setting() {
    let output = Command::new(JANUS).env_clear().env("JANUS_HTTP_ADDR", "127.0.0.1:0").output().unwrap();
    assert_eq!(output.status.code(), Some(64));
    let said = stderr(&output);
    assert!(said.contains("JANUS_HTTP_ADDR") && said.contains("did you mean JANUS_HTTP__ADDR"), "{said}");
}

#[test]
fn the_start_up_log_says_what_is_running() {
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(JANUS)
        .args(["--http-addr", "127.0.0.1:0", "--dns-addr", "127.0.0.1:0", "--log", "debug"])
        .arg("--data-dir")
        .arg(data.path())
        .env_clear()
        .env("JANUS_HEALTH__PROBE_ALLOW", "127.0.0.0/8")
        .env("JANUS_CLUSTER_SECRET", "never-logged-compose-secret")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut log = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        let done = line.contains("janus serving");
        log.push(line);
        if done {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let log = log.join("\n");
    let dir = std::fs::canonicalize(data.path()).unwrap();
    for wanted in [
        format!("janus {} starting", env!("CARGO_PKG_VERSION")),
        "configuration from the defaults, the environment (JANUS_HEALTH__PROBE_ALLOW), the flags --http-addr, \
         --dns-addr, --data-dir, --log"
            .to_owned(),
        "log filter \"debug,openraft=warn,hickory_server=warn\"".to_owned(),
        "JANUS_CLUSTER_SECRET is read by docker-compose.yml".to_owned(),
        format!("node 1, data directory {}", dir.display()),
        "listening: HTTP 127.0.0.1:".to_owned(),
        "(UDP and TCP), cluster address none, this node is not clustered".to_owned(),
        "recovered from disk: 1 namespace, 0 service definitions, 0 persistent instances".to_owned(),
    ] {
        assert!(log.contains(&wanted), "{wanted:?} missing from\n{log}");
    }
    assert!(!log.contains("never-logged-compose-secret"), "{log}");
    assert!(!log.lines().any(|l| l.contains("DEBUG") && l.contains("openraft")), "openraft stays at warn:\n{log}");
}

/// Against a node with auth on, the CLI says how to give a token, and takes
/// it from `--token` or `JANUS_TOKEN`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_takes_a_token_for_a_node_with_auth_on() {
    let node = Node::start_with(|config| config.auth.enabled = true).await;
    let file = node._data.path().join(janus_server::access::BOOTSTRAP_TOKEN_FILE);
    for _ in 0..500 {
        if file.exists() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let token = std::fs::read_to_string(&file).expect("the bootstrap token").trim().to_owned();
    let addr = node.addr();
    let refused = janus(&["namespaces", "list", "--addr", &addr], &[]).await;
    assert_eq!(refused.status.code(), Some(1));
    assert!(stderr(&refused).contains("give one with --token or JANUS_TOKEN"), "{}", stderr(&refused));
    let by_flag = janus(&["namespaces", "list", "--addr", &addr, "--token", &token], &[]).await;
    assert!(by_flag.status.success(), "{}", stderr(&by_flag));
    assert!(stdout(&by_flag).contains("public"), "{}", stdout(&by_flag));
    let by_env = janus(&["namespaces", "list", "--addr", &addr], &[("JANUS_TOKEN", &token)]).await;
    assert!(by_env.status.success(), "{}", stderr(&by_env));
    assert!(!stderr(&by_env).contains(&token) && !stdout(&by_env).contains(&token), "the token is never printed");
    node.stop().await;
}
