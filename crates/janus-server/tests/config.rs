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
}
