//! Where settings come from, and the checks that name the source of a
//! mistake: environment variables follow one rule, `JANUS_<SECTION>__<KEY>`
//! (a `JANUS_` variable that matches no setting is an error naming the
//! closest one), keys of the file must be settings too, and a refused value
//! names the file, variable or flag it came from.
//!
//! The settings are read off [`ServerConfig::default`] serialized, so a new
//! setting is known here without a list to keep in step.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::{ConfigError, ServerConfig};

/// One source of a setting's value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Origin {
    /// The built-in defaults.
    Defaults,
    /// The TOML file.
    File(PathBuf),
    /// An environment variable, by name.
    Env(String),
    /// A command-line flag, such as `--http-addr`.
    Flag(String),
    /// An override given by dotted key (a caller of [`ServerConfig::load`]).
    Override(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Defaults => f.write_str("the defaults"),
            Self::File(path) => write!(f, "the file {}", path.display()),
            Self::Env(name) => write!(f, "the environment variable {name}"),
            Self::Flag(name) => write!(f, "the flag {name}"),
            Self::Override(key) => write!(f, "the override {key}"),
        }
    }
}

/// Several origins as one phrase: "the file a.toml and the flag --log".
pub(crate) fn describe(origins: &[Origin]) -> String {
    origins.iter().map(ToString::to_string).collect::<Vec<_>>().join(" and ")
}

/// What a load read, for the start-up log: names only, never values (a
/// secret may be among them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigSources {
    /// The TOML file, if one was given.
    pub file: Option<PathBuf>,
    /// The `JANUS_` environment variables that were read, by name, sorted.
    pub env: Vec<String>,
    /// The flags that set a setting, such as `--data-dir`.
    pub flags: Vec<String>,
    /// `JANUS_` variables that are not the server's and were ignored, each
    /// with why (an old name of the CLI's, or a variable of
    /// `docker-compose.yml`).
    pub warnings: Vec<String>,
}

/// A setting set on the command line: the flag, the dotted key and the value.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Set<'a> {
    pub(crate) flag: Option<&'a str>,
    pub(crate) key: &'a str,
    pub(crate) value: &'a str,
}

/// What a `JANUS_` variable that is not a setting is to the server.
enum NotASetting {
    /// Read by the server for something else (the file's path).
    Read,
    /// Ignored with a warning.
    Warn(&'static str),
    /// Ignored quietly: a variable of the repository's scripts.
    Quiet,
}

/// `JANUS_` variables that are not settings.
const NOT_SETTINGS: &[(&str, NotASetting)] = &[
    ("JANUS_CONFIG", NotASetting::Read),
    (
        "JANUS_ADDR",
        NotASetting::Warn(
            "is the old name of the CLI's node address; the CLI now reads JANUS_HTTP__ADDR, and the server ignores it",
        ),
    ),
    (
        "JANUS_CLUSTER_ADDR",
        NotASetting::Warn(
            "is the old name of the CLI's cluster address; the server ignores it (cluster.addr is JANUS_CLUSTER__ADDR, \
             which the CLI reads too)",
        ),
    ),
    (
        "JANUS_CLUSTER_SECRET",
        NotASetting::Warn(
            "is read by docker-compose.yml, not by janus; the server ignores it (cluster.secret is \
             JANUS_CLUSTER__SECRET)",
        ),
    ),
    // The CLI's API token (`janus … --token`).
    ("JANUS_TOKEN", NotASetting::Quiet),
    // bench/compare.sh's own variables.
    ("JANUS_PORT", NotASetting::Quiet),
    ("JANUS_DNS_PORT", NotASetting::Quiet),
    ("JANUS_CLUSTER_HTTP", NotASetting::Quiet),
    ("JANUS_CLUSTER_TARGETS", NotASetting::Quiet),
];

/// The environment variable rule, as error messages state it.
pub(crate) const ENV_RULE: &str = "Settings are set by variables named JANUS_<SECTION>__<KEY>, with two underscores \
                                   between section and key (JANUS_HTTP__ADDR for http.addr); every setting is in \
                                   docs/config/janus.toml";

/// Every setting by dotted key; `true` marks a map (any key below it is one
/// of its entries, such as `dns.namespace_ttl_secs.<namespace>`).
pub(crate) struct Settings(BTreeMap<String, bool>);

impl Settings {
    /// The settings of [`ServerConfig`], read off its defaults.
    pub(crate) fn of_server() -> Self {
        let mut settings = BTreeMap::new();
        // Serializing plain data with string keys does not fail; if it ever
        // did, every key would be reported unknown, which a test would catch.
        if let Ok(serde_json::Value::Object(sections)) = serde_json::to_value(ServerConfig::default()) {
            for (section, value) in sections {
                collect(&section, &value, &mut settings);
            }
        }
        Self(settings)
    }

    /// Whether `key` (dotted, lower case) is a setting or an entry of a map.
    pub(crate) fn knows(&self, key: &str) -> bool {
        self.0.contains_key(key)
            || self.0.iter().any(|(setting, map)| {
                *map && key.strip_prefix(setting.as_str()).is_some_and(|rest| rest.starts_with('.'))
            })
    }

    /// Whether `key` is a section or a struct holding settings.
    fn is_group(&self, key: &str) -> bool {
        self.0.keys().any(|setting| setting.strip_prefix(key).is_some_and(|rest| rest.starts_with('.')))
    }

    /// The settings of a section, by dotted key.
    fn in_section<'a>(&'a self, section: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0.keys().filter(move |k| k.split('.').next() == Some(section)).map(String::as_str)
    }

    /// The setting closest to `wanted` when `name` spells each one, if one is close.
    fn closest(&self, wanted: &str, name: impl Fn(&str) -> String) -> Option<&str> {
        let (distance, best) =
            self.0.keys().map(|key| (edit_distance(wanted, &name(key)), key.as_str())).min_by_key(|(d, _)| *d)?;
        (distance <= (wanted.chars().count() / 4).max(2)).then_some(best)
    }
}

fn collect(prefix: &str, value: &serde_json::Value, settings: &mut BTreeMap<String, bool>) {
    match value {
        // A struct of settings (distro) has fields; an empty object is a map.
        serde_json::Value::Object(fields) if !fields.is_empty() => {
            for (field, value) in fields {
                collect(&format!("{prefix}.{field}"), value, settings);
            }
        }
        serde_json::Value::Object(_) => {
            settings.insert(prefix.to_owned(), true);
        }
        _ => {
            settings.insert(prefix.to_owned(), false);
        }
    }
}

/// The environment variable of a dotted key: `http.addr` is `JANUS_HTTP__ADDR`.
pub(crate) fn env_name(key: &str) -> String {
    format!("JANUS_{}", key.replace('.', "__").to_uppercase())
}

/// The environment checked against the rule.
pub(crate) struct CheckedEnv {
    /// The variables that set settings, with their values.
    pub(crate) settings: Vec<(String, String)>,
    /// Their dotted keys, by variable.
    pub(crate) keys: BTreeMap<String, String>,
    /// Every `JANUS_` variable read, by name.
    pub(crate) read: Vec<String>,
    /// Ignored variables worth a warning.
    pub(crate) warnings: Vec<String>,
}

/// Sorts the `JANUS_` variables of `env` into settings, known other
/// variables and mistakes. Variables not starting with `JANUS_` (`RUST_LOG`,
/// `PATH`, …) are not ours and are left alone.
///
/// # Errors
/// [`ConfigError::Unknown`] naming every `JANUS_` variable that matches no
/// setting, with the closest setting or the rule.
pub(crate) fn check_env(
    env: impl IntoIterator<Item = (String, String)>,
    settings: &Settings,
) -> Result<CheckedEnv, ConfigError> {
    let mut checked =
        CheckedEnv { settings: Vec::new(), keys: BTreeMap::new(), read: Vec::new(), warnings: Vec::new() };
    let mut unknown = Vec::new();
    let mut env: Vec<(String, String)> = env.into_iter().filter(|(name, _)| name.starts_with("JANUS_")).collect();
    env.sort();
    for (name, value) in env {
        if let Some((_, what)) = NOT_SETTINGS.iter().find(|(known, _)| *known == name) {
            match what {
                NotASetting::Read => checked.read.push(name),
                NotASetting::Warn(why) => checked.warnings.push(format!("{name} {why}")),
                NotASetting::Quiet => {}
            }
            continue;
        }
        match setting_of_env(&name).filter(|key| settings.knows(key)) {
            Some(key) => {
                checked.keys.insert(name.clone(), key);
                checked.read.push(name.clone());
                checked.settings.push((name, value));
            }
            None => unknown.push(unknown_env(&name, settings)),
        }
    }
    if unknown.is_empty() { Ok(checked) } else { Err(ConfigError::Unknown(unknown.join("; "))) }
}

/// The `JANUS_` variables of `env` that match no setting and no other
/// variable janus knows, as one sentence each (for the CLI, which warns).
#[must_use]
pub fn environment_problems(env: impl IntoIterator<Item = (String, String)>) -> Vec<String> {
    match check_env(env, &Settings::of_server()) {
        Ok(_) => Vec::new(),
        Err(error) => vec![error.to_string()],
    }
}

/// The dotted key a variable names by the rule, if it follows the rule's shape.
fn setting_of_env(name: &str) -> Option<String> {
    let rest = name.strip_prefix("JANUS_")?;
    let parts: Vec<&str> = rest.split("__").collect();
    (parts.len() >= 2 && parts.iter().all(|p| !p.is_empty())).then(|| parts.join(".").to_lowercase())
}

fn unknown_env(name: &str, settings: &Settings) -> String {
    let section = name.strip_prefix("JANUS_").unwrap_or(name).to_lowercase();
    let hint = if settings.is_group(&section) && !section.contains('.') {
        let keys: Vec<String> = settings.in_section(&section).take(4).map(env_name).collect();
        format!(": the settings of [{section}] are {}{}", keys.join(", "), if keys.len() == 4 { ", …" } else { "" })
    } else if let Some(key) = settings.closest(name, env_name) {
        format!(": did you mean {} ({key})?", env_name(key))
    } else {
        String::new()
    };
    let stop = if hint.ends_with('?') { "" } else { "." };
    format!("the environment variable {name} matches no setting{hint}{stop} {ENV_RULE}")
}

/// The settings a TOML file sets, by dotted key.
///
/// # Errors
/// The file cannot be read or parsed, or sets a key that is no setting (with
/// the closest setting).
pub(crate) fn check_file(path: &Path, settings: &Settings) -> Result<Vec<String>, ConfigError> {
    use config::Source as _;
    let file = config::File::from(path).format(config::FileFormat::Toml).required(true);
    let table = file.collect().map_err(|error| {
        let detail = match error {
            config::ConfigError::FileParse { cause, .. } => cause.to_string(),
            other => other.to_string(),
        };
        ConfigError::Unknown(format!("cannot load the configuration file {}: {detail}", path.display()))
    })?;
    let (mut set, mut unknown) = (Vec::new(), Vec::new());
    walk_file("", &table, settings, &mut set, &mut unknown);
    if unknown.is_empty() {
        return Ok(set);
    }
    let described: Vec<String> = unknown
        .iter()
        .map(|key| {
            let hint =
                settings.closest(key, str::to_owned).map_or_else(String::new, |near| format!(": did you mean {near}?"));
            format!("the file {} sets {key}, which is not a setting{hint}", path.display())
        })
        .collect();
    Err(ConfigError::Unknown(described.join("; ")))
}

fn walk_file(
    prefix: &str,
    table: &config::Map<String, config::Value>,
    settings: &Settings,
    set: &mut Vec<String>,
    unknown: &mut Vec<String>,
) {
    for (name, value) in table {
        let key = if prefix.is_empty() { name.to_lowercase() } else { format!("{prefix}.{}", name.to_lowercase()) };
        if settings.knows(&key) {
            set.push(key);
        } else if let (config::ValueKind::Table(inner), true) = (&value.kind, settings.is_group(&key)) {
            walk_file(&key, inner, settings, set, unknown);
        } else {
            unknown.push(key);
        }
    }
}

/// Which source set each setting, the highest priority winning.
#[derive(Debug, Default)]
pub(crate) struct Origins(BTreeMap<String, Origin>);

impl Origins {
    /// Records that `origin` set `key` (later calls win).
    pub(crate) fn set(&mut self, key: &str, origin: Origin) {
        self.0.insert(key.to_lowercase(), origin);
    }

    /// Where `key`'s value came from; for a section, every source of a
    /// setting in it. The defaults when nothing set it.
    pub(crate) fn of(&self, key: &str) -> Vec<Origin> {
        let key = key.to_lowercase();
        if let Some(origin) = self.0.get(&key) {
            return vec![origin.clone()];
        }
        let mut found: Vec<Origin> = self
            .0
            .iter()
            .filter(|(set, _)| set.strip_prefix(key.as_str()).is_some_and(|rest| rest.starts_with('.')))
            .map(|(_, origin)| origin.clone())
            .collect();
        found.sort();
        found.dedup();
        if found.is_empty() { vec![Origin::Defaults] } else { found }
    }

    /// `error` with where its setting came from, when it names one.
    pub(crate) fn name_source(&self, error: ConfigError) -> ConfigError {
        let key = match &error {
            ConfigError::Invalid { key, .. } => Some((*key).to_owned()),
            ConfigError::Load(config::ConfigError::Type { key: Some(key), .. })
            | ConfigError::Load(config::ConfigError::At { key: Some(key), .. })
            | ConfigError::Load(config::ConfigError::NotFound(key)) => Some(key.clone()),
            _ => None,
        };
        match key {
            Some(key) => ConfigError::Sourced { origins: self.of(&key), error: Box::new(error) },
            None => error,
        }
    }
}

/// Levenshtein distance, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != *cb)).min(above + 1).min(row[j] + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_come_from_the_defaults() {
        let settings = Settings::of_server();
        for key in ["http.addr", "node.data_dir", "distro.probe_timeout_ms", "log.filter", "cluster.members"] {
            assert!(settings.knows(key), "{key}");
        }
        assert!(settings.knows("dns.namespace_ttl_secs.team-a"), "map entries are settings");
        assert!(!settings.knows("http.adrr"));
        assert!(!settings.knows("http"), "a section is not a setting");
        assert!(settings.is_group("http"));
    }

    #[test]
    fn variables_follow_one_rule() {
        assert_eq!(setting_of_env("JANUS_HTTP__ADDR").as_deref(), Some("http.addr"));
        assert_eq!(
            setting_of_env("JANUS_DNS__NAMESPACE_TTL_SECS__TEAM").as_deref(),
            Some("dns.namespace_ttl_secs.team")
        );
        assert_eq!(setting_of_env("JANUS_HTTP_ADDR"), None);
        assert_eq!(setting_of_env("JANUS_HTTP____ADDR"), None);
        assert_eq!(env_name("lease.delete_after_ms"), "JANUS_LEASE__DELETE_AFTER_MS");
    }

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("JANUS_HTTP_ADDR", "JANUS_HTTP__ADDR"), 1);
        assert_eq!(edit_distance("abc", "abc"), 0);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn origins_name_the_winner_or_every_source_of_a_section() {
        let mut origins = Origins::default();
        origins.set("http.addr", Origin::File(PathBuf::from("a.toml")));
        origins.set("http.addr", Origin::Flag("--http-addr".to_owned()));
        origins.set("http.max_watchers", Origin::Env("JANUS_HTTP__MAX_WATCHERS".to_owned()));
        assert_eq!(origins.of("http.addr"), [Origin::Flag("--http-addr".to_owned())]);
        assert_eq!(origins.of("http").len(), 2);
        assert_eq!(origins.of("lease.delete_after_ms"), [Origin::Defaults]);
    }
}
