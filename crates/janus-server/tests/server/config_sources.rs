//! Where settings come from: one rule for environment variables,
//! `JANUS_<SECTION>__<KEY>`, a `JANUS_` variable that matches no setting
//! refused with the closest one, the variables janus and its scripts use
//! still accepted, and every refused value naming the file, variable or flag
//! it came from. The environment is always passed as a list, never set on
//! the process, so nothing leaks into tests running in parallel.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use janus_server::ServerConfig;
use janus_server::config::{ConfigSources, Origin, environment_problems};

fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
    vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn refused(vars: &[(&str, &str)]) -> String {
    ServerConfig::load(None, env(vars), &[]).unwrap_err().to_string()
}

#[test]
fn a_janus_variable_matching_no_setting_is_refused_naming_the_closest_setting() {
    for (name, closest) in [
        ("JANUS_HTTP_ADDR", "JANUS_HTTP__ADDR (http.addr)"),
        ("JANUS_HTTP__ADRR", "JANUS_HTTP__ADDR (http.addr)"),
        ("JANUS_LEASE__DELETE_AFTER", "JANUS_LEASE__DELETE_AFTER_MS (lease.delete_after_ms)"),
        ("JANUS_NODE_DATA_DIR", "JANUS_NODE__DATA_DIR (node.data_dir)"),
        ("JANUS_LOG", "JANUS_LOG__FILTER"),
    ] {
        let error = refused(&[(name, "127.0.0.1:1"), ("PATH", "/bin")]);
        assert!(error.contains(name) && error.contains(closest), "{name}: {error}");
        assert!(error.contains("JANUS_<SECTION>__<KEY>"), "the rule is stated: {error}");
    }
    let error = refused(&[("JANUS_SOMETHING_ELSE", "1")]);
    assert!(error.contains("JANUS_SOMETHING_ELSE") && error.contains("JANUS_<SECTION>__<KEY>"), "{error}");
    let error = refused(&[("JANUS_HTTP_ADDR", "x"), ("JANUS_DNS_ADDR", "y")]);
    assert!(error.contains("JANUS_HTTP_ADDR") && error.contains("JANUS_DNS_ADDR"), "every one is named: {error}");
}

#[test]
fn variables_that_are_not_settings_but_ours_still_load() {
    let vars = env(&[
        ("JANUS_CONFIG", "ignored.toml"),
        ("JANUS_CLUSTER_SECRET", "compose-demo-secret"),
        ("JANUS_PORT", "18848"),
        ("JANUS_DNS_PORT", "18600"),
        ("JANUS_CLUSTER_HTTP", "18851"),
        ("JANUS_CLUSTER_TARGETS", "http://127.0.0.1:18851"),
        ("JANUS_ADDR", "127.0.0.1:8848"),
        ("JANUS_CLUSTER_ADDR", "127.0.0.1:7848"),
        ("RUST_LOG", "debug"),
        ("JANUS_HTTP__ADDR", "127.0.0.1:2000"),
    ]);
    let (config, sources) = ServerConfig::load_with_flags(None, vars, &[]).unwrap();
    assert_eq!(config.http.addr.port(), 2000);
    assert_eq!(sources.env, ["JANUS_CONFIG", "JANUS_HTTP__ADDR"]);
    let warnings = sources.warnings.join("\n");
    for old in ["JANUS_ADDR", "JANUS_CLUSTER_ADDR", "JANUS_CLUSTER_SECRET"] {
        assert!(warnings.contains(old), "{old} is ignored with a warning: {warnings}");
    }
    assert!(!warnings.contains("JANUS_PORT"), "the bench script's variables are ignored quietly: {warnings}");
}

/// Every `JANUS_` variable the repository's scripts, images and tests set
/// is one janus knows.
#[test]
fn every_variable_the_repository_uses_is_known() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = vec![
        root.join("Dockerfile"),
        root.join("docker-compose.yml"),
        root.join("README.md"),
        root.join("crates/janus-server/tests/server/process.rs"),
        root.join("crates/janus-server/tests/server/cluster_process.rs"),
    ];
    for dir in ["bench", "scripts", "tests", "docs"] {
        walk(&root.join(dir), &mut files);
    }
    let mut names = std::collections::BTreeSet::new();
    for file in &files {
        let Ok(text) = std::fs::read_to_string(file) else { continue };
        for (at, _) in text.match_indices("JANUS_") {
            let name: String =
                text[at..].chars().take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_').collect();
            // `JANUS_<SECTION>__<KEY>` in prose, or a name cut by a line end.
            if !name.ends_with('_') {
                names.insert(name);
            }
        }
    }
    assert!(names.contains("JANUS_HTTP__ADDR") && names.contains("JANUS_CLUSTER_SECRET"), "{names:?}");
    for name in names {
        let problems = environment_problems(vec![(name.clone(), String::new())]);
        assert!(problems.is_empty(), "{name} is used in the repository but refused: {problems:?}");
    }
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            if !path.ends_with("target") && !path.ends_with("e2e-venv") {
                walk(&path, files);
            }
        } else if path.extension().is_some_and(|e| ["sh", "yml", "rs", "toml", "md", "py"].iter().any(|x| e == *x)) {
            files.push(path);
        }
    }
}

#[test]
fn a_bad_value_names_the_file_variable_or_flag_it_came_from() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("janus.toml");

    std::fs::write(&file, "[lease]\ndelete_after_sec = 30\n").unwrap();
    let error = ServerConfig::load(Some(&file), Vec::new(), &[]).unwrap_err().to_string();
    let named = file.display().to_string();
    assert!(error.contains(&named) && error.contains("did you mean lease.delete_after_ms?"), "{error}");

    std::fs::write(&file, "[http]\naddr = \"not an address\"\n").unwrap();
    let error = ServerConfig::load(Some(&file), Vec::new(), &[]).unwrap_err().to_string();
    assert!(error.contains("http.addr") && error.contains(&format!("the file {named}")), "{error}");

    std::fs::write(&file, "[lease\n").unwrap();
    let error = ServerConfig::load(Some(&file), Vec::new(), &[]).unwrap_err().to_string();
    assert!(error.contains(&named), "{error}");

    let error = refused(&[("JANUS_LEASE__BEAT_INTERVAL_MS", "soon")]);
    assert!(error.contains("the environment variable JANUS_LEASE__BEAT_INTERVAL_MS"), "{error}");
    let error = refused(&[("JANUS_LEASE__DELETE_AFTER_MS", "10")]);
    assert!(
        error.contains("lease.delete_after_ms")
            && error.contains("the environment variable JANUS_LEASE__DELETE_AFTER_MS"),
        "{error}"
    );

    let flags = [("--http-addr", "http.addr", "nowhere".to_owned())];
    let error = ServerConfig::load_with_flags(None, Vec::new(), &flags).unwrap_err().to_string();
    assert!(error.contains("http.addr") && error.contains("the flag --http-addr"), "{error}");
    let flags = [("--log", "log.filter", "janus=[".to_owned())];
    let error = ServerConfig::load_with_flags(None, Vec::new(), &flags).unwrap_err().to_string();
    assert!(error.contains("log.filter") && error.contains("the flag --log"), "{error}");

    // A default made invalid by another setting says so.
    let error = refused(&[("JANUS_LEASE__UNHEALTHY_AFTER_MS", "40000")]);
    assert!(error.contains("lease.delete_after_ms") && error.contains("the defaults"), "{error}");
    // The flag wins over the variable and is the one named.
    let vars = env(&[("JANUS_HTTP__ADDR", "127.0.0.1:1")]);
    let error = ServerConfig::load_with_flags(None, vars, &flags).unwrap_err();
    assert!(
        matches!(&error, janus_server::config::ConfigError::Sourced { origins, .. }
        if origins == &[Origin::Flag("--log".to_owned())]),
        "{error:?}"
    );
}

#[test]
fn the_sources_name_variables_and_flags_never_values() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("janus.toml");
    std::fs::write(&file, "[node]\nid = 3\n").unwrap();
    let secret = "a-very-secret-cluster-secret";
    let vars =
        env(&[("JANUS_CLUSTER__SECRET", secret), ("JANUS_CLUSTER__MEMBERS", "3@127.0.0.1:7848"), ("HOME", "/root")]);
    let flags = [("--data-dir", "node.data_dir", "/tmp/j".to_owned())];
    let (config, sources) = ServerConfig::load_with_flags(Some(&file), vars, &flags).unwrap();
    assert_eq!((config.node.id, config.cluster.secret.as_str()), (3, secret));
    assert_eq!(
        sources,
        ConfigSources {
            file: Some(file.clone()),
            env: vec!["JANUS_CLUSTER__MEMBERS".to_owned(), "JANUS_CLUSTER__SECRET".to_owned()],
            flags: vec!["--data-dir".to_owned()],
            warnings: Vec::new(),
        }
    );
    assert!(!format!("{sources:?}").contains(secret));
}

#[test]
fn map_settings_take_their_entries_from_the_environment() {
    let (config, _) =
        ServerConfig::load_with_flags(None, env(&[("JANUS_DNS__NAMESPACE_TTL_SECS__TEAM", "5")]), &[]).unwrap();
    assert_eq!(config.dns.namespace_ttl_secs.get("team"), Some(&5));
}

/// Every cluster secret written in the repository's user-facing files (the
/// compose file, sample configurations, docs, scripts, the benchmark and
/// process-test harnesses) is one a node off loopback refuses.
#[test]
fn every_cluster_secret_in_the_repository_is_a_refused_sample() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = vec![
        root.join("Dockerfile"),
        root.join("docker-compose.yml"),
        root.join("README.md"),
        root.join("crates/janus-server/tests/server/cluster_process.rs"),
    ];
    for dir in ["bench", "scripts", "tests", "docs", "crates/janus-bench/src"] {
        walk(&root.join(dir), &mut files);
    }
    let mut found = std::collections::BTreeSet::new();
    for file in &files {
        let Ok(text) = std::fs::read_to_string(file) else { continue };
        for line in text.lines().filter(|l| l.to_ascii_lowercase().contains("secret")) {
            let quoted = line.split('"').skip(1).step_by(2);
            let assigned = line.split("SECRET=").skip(1).filter_map(|rest| rest.split_whitespace().next());
            let defaulted = line.split(":-").skip(1).filter_map(|rest| rest.split('}').next());
            for candidate in quoted.chain(assigned).chain(defaulted) {
                let candidate = candidate.trim_matches(|c| c == '\'' || c == '"');
                if candidate.len() >= 16
                    && candidate.bytes().all(|b| b.is_ascii_graphic())
                    && !candidate.starts_with("JANUS_")
                    && !candidate.contains(['$', '{', '/'])
                {
                    found.insert(candidate.to_owned());
                }
            }
        }
    }
    assert!(
        found.contains("compose-demo-secret-change-me") || found.contains("janus-bench-cluster-secret"),
        "{found:?}"
    );
    for secret in found {
        assert!(
            janus_server::config::is_sample_secret(&secret),
            "{secret:?} is in our files: add it to SAMPLE_SECRETS"
        );
    }
}
