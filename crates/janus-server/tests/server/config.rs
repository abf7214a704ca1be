//! Every sample config parses; unknown keys and bad values are refused; the
//! environment and overrides win over the file.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use janus_server::ServerConfig;

fn docs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/config")
}

fn no_env() -> Vec<(String, String)> {
    Vec::new()
}

#[test]
fn every_sample_config_parses() {
    let mut seen = 0;
    for entry in std::fs::read_dir(docs()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            ServerConfig::load(Some(&path), no_env(), &[]).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            seen += 1;
        }
    }
    assert!(seen >= 1, "no sample configs found");
}

#[test]
fn the_reference_sample_documents_exactly_the_defaults() {
    let sample = ServerConfig::load(Some(&docs().join("janus.toml")), no_env(), &[]).unwrap();
    assert_eq!(sample, ServerConfig::default());
}

#[test]
fn unknown_keys_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("typo.toml");
    std::fs::write(&path, "[lease]\ndelete_after_sec = 30\n").unwrap();
    let err = ServerConfig::load(Some(&path), no_env(), &[]).unwrap_err().to_string();
    assert!(err.contains("delete_after_sec"), "{err}");
    let env = vec![("JANUS_HTTP__ADRESS".to_owned(), "x".to_owned())];
    assert!(ServerConfig::load(None, env, &[]).is_err());
}

#[test]
fn environment_overrides_file_and_flags_override_environment() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, "[http]\naddr = \"127.0.0.1:1000\"\n[lease]\ndelete_after_ms = 40000\n").unwrap();
    let env = vec![
        ("JANUS_HTTP__ADDR".to_owned(), "127.0.0.1:2000".to_owned()),
        ("JANUS_LEASE__DELETE_AFTER_MS".to_owned(), "50000".to_owned()),
        ("JANUS_CONFIG".to_owned(), "ignored.toml".to_owned()),
        ("PATH".to_owned(), "/bin".to_owned()),
    ];
    let config = ServerConfig::load(Some(&path), env.clone(), &[]).unwrap();
    assert_eq!(config.http.addr.port(), 2000);
    assert_eq!(config.lease.delete_after_ms, 50_000);
    let config = ServerConfig::load(Some(&path), env, &[("http.addr", "127.0.0.1:3000".to_owned())]).unwrap();
    assert_eq!(config.http.addr.port(), 3000);
}

#[test]
fn bad_values_name_the_setting() {
    let overrides = [("lease.delete_after_ms", "1000".to_owned())];
    let err = ServerConfig::load(None, no_env(), &overrides).unwrap_err().to_string();
    assert!(err.contains("lease.delete_after_ms"), "{err}");
    let overrides = [("self_preservation.renewal_threshold", "1.5".to_owned())];
    assert!(ServerConfig::load(None, no_env(), &overrides).is_err());
    let overrides = [("http.addr", "not an address".to_owned())];
    assert!(ServerConfig::load(None, no_env(), &overrides).is_err());
    let env = vec![("JANUS_DISTRO__PROBE_TIMEOUT_MS".to_owned(), "5000".to_owned())];
    let err = ServerConfig::load(None, env, &[]).unwrap_err().to_string();
    assert!(err.contains("probe_timeout_ms"), "{err}");
    let overrides = [("health.fall", "0".to_owned())];
    let err = ServerConfig::load(None, no_env(), &overrides).unwrap_err().to_string();
    assert!(err.contains("health"), "{err}");
}

#[test]
fn cluster_members_parse_from_file_and_environment() {
    let env = vec![
        ("JANUS_CLUSTER__MEMBERS".to_owned(), "1@janus-1:7848,2@janus-2:7848,3@10.0.0.3:7848".to_owned()),
        ("JANUS_CLUSTER__SECRET".to_owned(), "0123456789abcdef".to_owned()),
    ];
    let config = ServerConfig::load(None, env, &[]).unwrap();
    let members = config.cluster.member_map().unwrap();
    assert_eq!(members.len(), 3);
    assert_eq!(members[&2], "janus-2:7848");
    assert_eq!(config.cp_config().unwrap().members, members);

    let sample = ServerConfig::load(Some(&docs().join("cluster-node-1.toml")), no_env(), &[]).unwrap();
    assert_eq!(sample.cluster.member_map().unwrap()[&1], "10.0.0.1:7848");
}

#[test]
fn a_bad_cluster_is_refused_with_the_setting_named() {
    let load = |members: &str, secret: &str| {
        let env = vec![
            ("JANUS_CLUSTER__MEMBERS".to_owned(), members.to_owned()),
            ("JANUS_CLUSTER__SECRET".to_owned(), secret.to_owned()),
        ];
        ServerConfig::load(None, env, &[]).unwrap_err().to_string()
    };
    let good_secret = "0123456789abcdef";
    for (members, secret, named) in [
        ("1@a:7848,2@b:7848", "short", "cluster.secret"),
        ("1@a:7848,2@b:7848", "", "cluster.secret"),
        ("2@a:7848,3@b:7848", good_secret, "must include this node"),
        ("1@a:7848,1@b:7848", good_secret, "appears twice"),
        ("1@a,2@b:7848", good_secret, "is not <node id>@<host:port>"),
        ("one@a:7848", good_secret, "is not <node id>@<host:port>"),
        ("1@:7848", good_secret, "is not <node id>@<host:port>"),
        ("1@a:0", good_secret, "is not <node id>@<host:port>"),
    ] {
        let error = load(members, secret);
        assert!(error.contains(named), "{members} / {secret:?}: {error}");
    }
}

#[test]
fn probe_lists_load_from_file_and_environment_and_a_bad_network_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("probe.toml");
    std::fs::write(&path, "[health]\nprobe_allow = [\"10.0.0.0/8\", \"192.0.2.7\"]\nprobe_deny = [\"10.9.0.0/16\"]\n")
        .unwrap();
    let config = ServerConfig::load(Some(&path), no_env(), &[]).unwrap();
    let policy = config.health_config().probe_policy;
    assert_eq!(policy.check("10.1.2.3".parse().unwrap()), Ok(()));
    assert!(policy.check("10.9.0.1".parse().unwrap()).is_err(), "deny wins");
    assert!(policy.check("127.0.0.1".parse().unwrap()).is_err(), "not in the allow-list");
    assert_eq!(policy.check("192.0.2.7".parse().unwrap()), Ok(()));

    let env = vec![("JANUS_HEALTH__PROBE_DENY".to_owned(), "10.0.0.0/8,169.254.0.0/16".to_owned())];
    let config = ServerConfig::load(None, env, &[]).unwrap();
    assert_eq!(config.health.probe_deny, ["10.0.0.0/8", "169.254.0.0/16"]);
    assert!(config.health_config().probe_policy.check("10.0.0.1".parse().unwrap()).is_err());

    let defaults = ServerConfig::default().health_config().probe_policy;
    assert!(defaults.check("169.254.169.254".parse().unwrap()).is_err());
    assert_eq!(defaults.check("10.0.0.1".parse().unwrap()), Ok(()));

    for (key, value) in [("PROBE_ALLOW", "10.0.0.0/33"), ("PROBE_DENY", "metadata.internal")] {
        let env = vec![(format!("JANUS_HEALTH__{key}"), value.to_owned())];
        let error = ServerConfig::load(None, env, &[]).unwrap_err().to_string();
        let named = format!("health.{}", key.to_lowercase());
        assert!(error.contains(&named) && error.contains(value), "{error}");
    }
}

#[test]
fn the_eviction_window_must_be_positive_and_reaches_the_registry() {
    let overrides = [("self_preservation.eviction_window_ms", "0".to_owned())];
    let err = ServerConfig::load(None, no_env(), &overrides).unwrap_err().to_string();
    assert!(err.contains("self_preservation.eviction_window_ms"), "{err}");
    let overrides = [("self_preservation.eviction_window_ms", "120000".to_owned())];
    let config = ServerConfig::load(None, no_env(), &overrides).unwrap();
    assert_eq!(config.registry_config().preservation.eviction_window_ms, 120_000);
}

#[test]
fn dns_payload_cap_and_rate_limit_settings_are_checked() {
    for (key, value) in [("dns.max_udp_payload", "511"), ("dns.max_udp_payload", "65536"), ("dns.rrl_slip", "101")] {
        let overrides = [(key, value.to_owned())];
        let err = ServerConfig::load(None, no_env(), &overrides).unwrap_err().to_string();
        assert!(err.contains(key), "{key} = {value}: {err}");
    }
    let overrides = [
        ("dns.max_udp_payload", "4096".to_owned()),
        ("dns.rrl_responses_per_second", "50".to_owned()),
        ("dns.rrl_slip", "0".to_owned()),
    ];
    let config = ServerConfig::load(None, no_env(), &overrides).unwrap();
    assert_eq!(config.dns.max_udp_payload_bytes(), 4096);
    assert_eq!((config.dns.rrl().responses_per_second, config.dns.rrl().slip), (50, 0));
    let defaults = ServerConfig::default();
    assert_eq!((defaults.dns.max_udp_payload_bytes(), defaults.dns.rrl().responses_per_second), (1232, 0));
}

#[test]
fn the_grpc_address_follows_the_http_port_unless_given() {
    let config = ServerConfig::default();
    let http = "127.0.0.1:8848".parse().unwrap();
    assert_eq!(config.grpc.listen_addr(http).unwrap().to_string(), "127.0.0.1:9848");
    assert_eq!(config.grpc.listen_addr("0.0.0.0:0".parse().unwrap()).unwrap().to_string(), "0.0.0.0:0");
    let env = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    };
    let given = ServerConfig::load(None, env(&[("JANUS_GRPC__ADDR", "127.0.0.1:7000")]), &[]).unwrap();
    assert_eq!(given.grpc.listen_addr(http).unwrap().to_string(), "127.0.0.1:7000");
    let bad = ServerConfig::load(None, env(&[("JANUS_GRPC__ADDR", "nowhere")]), &[]).unwrap_err().to_string();
    assert!(bad.contains("grpc.addr") && bad.contains("JANUS_GRPC__ADDR"), "{bad}");
    // No room for port + 1000: refused while gRPC is on, fine once it is off.
    let high = ServerConfig::load(None, env(&[("JANUS_HTTP__ADDR", "127.0.0.1:65000")]), &[]).unwrap_err();
    assert!(high.to_string().contains("grpc.addr"), "{high}");
    let off = [("JANUS_HTTP__ADDR", "127.0.0.1:65000"), ("JANUS_GRPC__ENABLED", "false")];
    ServerConfig::load(None, env(&off), &[]).unwrap();
}
