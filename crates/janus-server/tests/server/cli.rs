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
    // The DNS access rule from the CLI.
    let hidden = janus(&["namespaces", "create", "hidden", "--mode", "cp", "--no-dns", "--addr", &addr], &[]).await;
    assert_eq!(stdout(&hidden), "created namespace hidden (cp, not answered over DNS)\n", "{}", stderr(&hidden));
    let listed = janus(&["namespaces", "list", "--addr", &addr], &[]).await;
    assert!(stdout(&listed).lines().any(|l| l.starts_with("hidden") && l.ends_with("(no DNS)")), "{}", stdout(&listed));
    let opened = janus(&["namespaces", "dns", "hidden", "on", "--addr", &addr], &[]).await;
    assert_eq!(stdout(&opened), "namespace hidden: answered over DNS\n", "{}", stderr(&opened));

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
    let args = ["--http-addr", "127.0.0.1:0", "--dns-addr", "127.0.0.1:0", "--log", "debug", "--data-dir"];
    let args: Vec<&str> = args.into_iter().chain([data.path().to_str().unwrap()]).collect();
    let log = start_up_log(&args, &[("JANUS_CLUSTER_SECRET", "never-logged-compose-secret")]);
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
        "auth off: every listener is on loopback and no cluster is configured".to_owned(),
        "recovered from disk: 1 namespace, 0 service definitions, 0 persistent instances".to_owned(),
    ] {
        assert!(log.contains(&wanted), "{wanted:?} missing from\n{log}");
    }
    assert!(!log.contains("never-logged-compose-secret"), "{log}");
    assert!(!log.lines().any(|l| l.contains("DEBUG") && l.contains("openraft")), "openraft stays at warn:\n{log}");
}

/// The log lines of a `janus` process started with `args` and `env`, up to
/// the line saying it serves.
fn start_up_log(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut child = Command::new(JANUS)
        .args(args)
        .env_clear()
        .env("JANUS_HEALTH__PROBE_ALLOW", "127.0.0.0/8")
        .envs(env.iter().copied())
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
    log.join("\n")
}

/// Secure by default: a node listening beyond loopback checks tokens unless
/// told not to, which it warns about at every start.
#[test]
fn a_node_off_loopback_has_auth_on_and_turning_it_off_warns() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap();
    let args = ["--http-addr", "0.0.0.0:0", "--dns-addr", "127.0.0.1:0", "--data-dir", dir];
    let log = start_up_log(&args, &[("JANUS_GRPC__ENABLED", "false")]);
    assert!(log.contains("auth on, since http.addr 0.0.0.0:0 is not a loopback address"), "{log}");
    assert!(!log.contains("WARN") || !log.contains("auth is off"), "{log}");

    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap();
    let args = ["--http-addr", "0.0.0.0:0", "--dns-addr", "127.0.0.1:0", "--data-dir", dir];
    let log = start_up_log(&args, &[("JANUS_GRPC__ENABLED", "false"), ("JANUS_AUTH__ENABLED", "false")]);
    let warning = log.lines().find(|l| l.contains("auth is off (auth.enabled = false) although http.addr 0.0.0.0:0"));
    assert!(warning.is_some_and(|l| l.contains("WARN")), "{log}");
}

/// A node whose cluster address is not loopback refuses a secret from our
/// own files, and one that is too short.
#[test]
fn a_sample_or_short_cluster_secret_stops_a_node_off_loopback() {
    let data = tempfile::tempdir().unwrap();
    for (secret, said) in [
        ("compose-demo-secret-change-me", "is a sample secret from Janus's own files"),
        ("change-me-to-a-long-random-secret", "is a sample secret"),
        ("short", "at least 16 characters"),
    ] {
        let output = Command::new(JANUS)
            .env_clear()
            .env("JANUS_NODE__DATA_DIR", data.path())
            .env("JANUS_HTTP__ADDR", "127.0.0.1:0")
            .env("JANUS_CLUSTER__ADDR", "0.0.0.0:0")
            .env("JANUS_CLUSTER__MEMBERS", "1@10.0.0.1:7848")
            .env("JANUS_CLUSTER__SECRET", secret)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(64), "{secret}");
        let text = stderr(&output);
        assert!(text.contains("cluster.secret") && text.contains(said), "{secret}: {text}");
        assert!(!text.contains(secret) || secret == "short", "the secret is not echoed: {text}");
    }
}

/// Against a node with auth on, the CLI says how to give a token, and takes
/// it from `--token` or `JANUS_TOKEN`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_takes_a_token_for_a_node_with_auth_on() {
    let node = Node::start_with(|config| config.auth.enabled = Some(true)).await;
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

    // Users, grants and tokens from the CLI, with the admin's token.
    let admin = [("JANUS_TOKEN", token.as_str()), ("JANUS_HTTP__ADDR", addr.as_str())];
    let created =
        janus_with_stdin(&["auth", "users", "create", "team-a", "--password-stdin"], &admin, "a long pass\n").await;
    assert!(created.status.success(), "{}", stderr(&created));
    assert!(stdout(&created).contains("created user team-a (with a password)"), "{}", stdout(&created));
    let granted = janus(&["auth", "grants", "set", "team-a", "public", "read"], &admin).await;
    assert!(granted.status.success(), "{}", stderr(&granted));
    assert!(stdout(&granted).contains("read   on public"), "{}", stdout(&granted));
    let issued = janus(&["auth", "tokens", "create", "ci", "--user", "team-a", "--ttl-seconds", "3600"], &admin).await;
    assert!(issued.status.success(), "{}", stderr(&issued));
    let team_token = stdout(&issued).trim().to_owned();
    assert!(team_token.starts_with("jns_"), "only the token on stdout: {team_token}");
    assert!(stderr(&issued).contains("shown this once"), "{}", stderr(&issued));
    let team = [("JANUS_TOKEN", team_token.as_str()), ("JANUS_HTTP__ADDR", addr.as_str())];
    let me = janus(&["auth", "whoami"], &team).await;
    assert!(stdout(&me).contains("user team-a") && stdout(&me).contains("read   on public"), "{}", stdout(&me));
    assert!(janus(&["namespaces", "list"], &team).await.status.success());
    let denied = janus(&["namespaces", "create", "team-b", "--mode", "ap"], &team).await;
    assert_eq!(denied.status.code(), Some(1));
    assert!(stderr(&denied).contains("403") || stderr(&denied).contains("team-a"), "{}", stderr(&denied));
    let not_admin = janus(&["auth", "users", "list"], &team).await;
    assert_eq!(not_admin.status.code(), Some(1), "only a global admin manages users");
    let users = janus(&["auth", "users", "list"], &admin).await;
    assert!(stdout(&users).contains("team-a") && stdout(&users).contains("admin"), "{}", stdout(&users));
    let tokens = janus(&["auth", "tokens", "list", "--user", "team-a"], &admin).await;
    assert!(stdout(&tokens).contains("ci") && !stdout(&tokens).contains(&team_token), "{}", stdout(&tokens));
    let revoked = janus(&["auth", "tokens", "revoke", &team_token], &admin).await;
    assert!(revoked.status.success(), "{}", stderr(&revoked));
    let after = janus(&["namespaces", "list"], &team).await;
    assert!(stderr(&after).contains("give one with --token"), "a revoked token is refused: {}", stderr(&after));
    let no_password = janus_with_stdin(&["auth", "users", "password", "team-a"], &admin, "").await;
    assert!(stderr(&no_password).contains("no password on standard input"), "{}", stderr(&no_password));
    let deleted = janus(&["auth", "users", "delete", "team-a"], &admin).await;
    assert!(deleted.status.success(), "{}", stderr(&deleted));
    node.stop().await;
}

/// `janus` with `args`, only `vars` in its environment and `input` on stdin.
async fn janus_with_stdin(args: &[&str], vars: &[(&str, &str)], input: &str) -> Output {
    use std::io::Write as _;
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    let input = input.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new(JANUS)
            .args(&args)
            .env_clear()
            .envs(vars)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap()
}
