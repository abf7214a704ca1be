//! The limits every field is checked against, and the checks.
//!
//! Sizes are bounded so that one client cannot grow the registry's memory or a
//! response without limit. Each failure names the field and the rule.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::error::RegistryError;

/// Which characters a name may hold and how long it may be.
#[derive(Debug)]
pub struct NameRule {
    /// Maximum length in bytes.
    pub max_len: usize,
    /// Extra characters allowed beside ASCII letters and digits.
    pub extra: &'static str,
}

/// Namespace ids: letters, digits, `_ . : -`, at most 128.
pub const NAMESPACE_ID: NameRule = NameRule { max_len: 128, extra: "_.:-" };
/// Group names: letters, digits, `_ . : -`, at most 128.
pub const GROUP_NAME: NameRule = NameRule { max_len: 128, extra: "_.:-" };
/// Service names: letters, digits, `_ . : -`, at most 255 (no `@@`: the group is separate).
pub const SERVICE_NAME: NameRule = NameRule { max_len: 255, extra: "_.:-" };
/// Cluster names: letters, digits and `-`, at most 64 (Nacos's rule).
pub const CLUSTER_NAME: NameRule = NameRule { max_len: 64, extra: "-" };

/// Longest display name of a namespace.
pub const MAX_DISPLAY_NAME: usize = 128;
/// Longest namespace description.
pub const MAX_DESCRIPTION: usize = 256;
/// Longest custom instance id.
pub const MAX_INSTANCE_ID: usize = 256;
/// Most metadata entries on one instance or service.
pub const MAX_METADATA_ENTRIES: usize = 64;
/// Longest metadata key.
pub const MAX_METADATA_KEY: usize = 128;
/// Longest metadata value.
pub const MAX_METADATA_VALUE: usize = 1024;
/// Most bytes of keys and values together.
pub const MAX_METADATA_TOTAL: usize = 16 * 1024;
/// Largest weight (Nacos's bound).
pub const MAX_WEIGHT: f64 = 10_000.0;
/// Longest lease timing accepted through metadata overrides: one day.
pub const MAX_LEASE_MS: u64 = 86_400_000;
/// Shortest lease timing accepted through metadata overrides.
pub const MIN_LEASE_MS: u64 = 100;

/// Checks a name against its rule.
///
/// # Errors
/// [`RegistryError::Invalid`] naming `field`.
pub fn check_name(field: &'static str, value: &str, rule: &NameRule) -> Result<(), RegistryError> {
    if value.is_empty() {
        return Err(RegistryError::invalid(field, "must not be empty"));
    }
    if value.len() > rule.max_len {
        return Err(RegistryError::invalid(
            field,
            format!("must be at most {} bytes, got {}", rule.max_len, value.len()),
        ));
    }
    if let Some(bad) = value.chars().find(|c| !(c.is_ascii_alphanumeric() || rule.extra.contains(*c))) {
        return Err(RegistryError::invalid(
            field,
            format!("may hold only ASCII letters, digits and '{}', found {bad:?}", rule.extra),
        ));
    }
    Ok(())
}

/// Names no namespace, group, service or cluster may take: they read as
/// "this" and "the parent" in paths, DNS names and file names.
pub const RESERVED_NAMES: [&str; 2] = [".", ".."];

/// Refuses the reserved names `.` and `..`.
///
/// # Errors
/// [`RegistryError::Invalid`] naming `field` and the rule.
pub fn check_not_reserved(field: &'static str, value: &str) -> Result<(), RegistryError> {
    if RESERVED_NAMES.contains(&value) {
        return Err(RegistryError::invalid(field, "'.' and '..' are reserved"));
    }
    Ok(())
}

/// Checks the address an instance registers at: a unicast address clients can
/// connect to. Unspecified (`0.0.0.0`, `::`), broadcast (`255.255.255.255`)
/// and multicast (`224.0.0.0/4`, `ff00::/8`) addresses are refused, also in
/// their IPv4-mapped IPv6 form (`::ffff:0.0.0.0`).
///
/// Only registrations and full updates are checked: looking up, changing or
/// deleting an instance stored before the rule took effect still works.
///
/// # Errors
/// [`RegistryError::Invalid`] naming `field` and the rule.
pub fn check_instance_ip(field: &'static str, ip: IpAddr) -> Result<(), RegistryError> {
    let ip = ip.to_canonical();
    let kind = if ip.is_unspecified() {
        "unspecified"
    } else if ip.is_multicast() {
        "multicast"
    } else if matches!(ip, IpAddr::V4(v4) if v4.is_broadcast()) {
        "broadcast"
    } else {
        return Ok(());
    };
    Err(RegistryError::invalid(
        field,
        format!(
            "must be a unicast address clients can connect to; unspecified (0.0.0.0, ::), broadcast \
             (255.255.255.255) and multicast addresses are refused, got {kind} address {ip}"
        ),
    ))
}

/// Checks free text (display names, descriptions, custom ids): bounded, no control characters.
///
/// # Errors
/// [`RegistryError::Invalid`] naming `field`.
pub fn check_text(field: &'static str, value: &str, max_len: usize) -> Result<(), RegistryError> {
    if value.len() > max_len {
        return Err(RegistryError::invalid(field, format!("must be at most {max_len} bytes, got {}", value.len())));
    }
    if value.chars().any(char::is_control) {
        return Err(RegistryError::invalid(field, "must not contain control characters"));
    }
    Ok(())
}

/// Parses an IPv4 or IPv6 address.
///
/// # Errors
/// [`RegistryError::Invalid`] for anything else (host names included).
pub fn parse_ip(value: &str) -> Result<IpAddr, RegistryError> {
    let trimmed = value.strip_prefix('[').and_then(|v| v.strip_suffix(']')).unwrap_or(value);
    trimmed.parse().map_err(|_| RegistryError::invalid("ip", format!("must be an IPv4 or IPv6 address, got {value:?}")))
}

/// Checks a port given as a wider integer: 1..=65535.
///
/// # Errors
/// [`RegistryError::Invalid`] naming `port`.
pub fn check_port(port: i64) -> Result<u16, RegistryError> {
    u16::try_from(port)
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| RegistryError::invalid("port", format!("must be between 1 and 65535, got {port}")))
}

/// Checks a weight: finite and in `[0, 10000]`.
///
/// # Errors
/// [`RegistryError::Invalid`] naming `weight`.
pub fn check_weight(weight: f64) -> Result<f64, RegistryError> {
    if weight.is_finite() && (0.0..=MAX_WEIGHT).contains(&weight) {
        Ok(weight)
    } else {
        Err(RegistryError::invalid("weight", format!("must be between 0 and 10000, got {weight}")))
    }
}

/// Checks a protect threshold: finite and in `[0, 1]`.
///
/// # Errors
/// [`RegistryError::Invalid`] naming `protect_threshold`.
pub fn check_protect_threshold(value: f64) -> Result<f64, RegistryError> {
    if value.is_finite() && (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(RegistryError::invalid("protect_threshold", format!("must be between 0 and 1, got {value}")))
    }
}

/// Checks a metadata map: entry count, key and value sizes, total size.
///
/// # Errors
/// [`RegistryError::Invalid`] naming `metadata`.
pub fn check_metadata(metadata: &BTreeMap<String, String>) -> Result<(), RegistryError> {
    if metadata.len() > MAX_METADATA_ENTRIES {
        return Err(RegistryError::invalid(
            "metadata",
            format!("may hold at most {MAX_METADATA_ENTRIES} entries, got {}", metadata.len()),
        ));
    }
    let mut total = 0;
    for (key, value) in metadata {
        if key.is_empty() || key.len() > MAX_METADATA_KEY {
            return Err(RegistryError::invalid(
                "metadata",
                format!("keys must be 1 to {MAX_METADATA_KEY} bytes, got {} for {key:.32?}", key.len()),
            ));
        }
        if value.len() > MAX_METADATA_VALUE {
            return Err(RegistryError::invalid(
                "metadata",
                format!("values must be at most {MAX_METADATA_VALUE} bytes, got {} for key {key:?}", value.len()),
            ));
        }
        if key.chars().any(char::is_control) {
            return Err(RegistryError::invalid("metadata", "keys must not contain control characters"));
        }
        total += key.len() + value.len();
    }
    if total > MAX_METADATA_TOTAL {
        return Err(RegistryError::invalid(
            "metadata",
            format!("must total at most {MAX_METADATA_TOTAL} bytes, got {total}"),
        ));
    }
    Ok(())
}

/// Parses a lease override from metadata: whole milliseconds in `[100, 86400000]`.
///
/// # Errors
/// [`RegistryError::Invalid`] naming `metadata` and the key.
pub fn parse_lease_ms(key: &str, value: &str) -> Result<u64, RegistryError> {
    value.trim().parse::<u64>().ok().filter(|ms| (MIN_LEASE_MS..=MAX_LEASE_MS).contains(ms)).ok_or_else(|| {
        RegistryError::invalid(
            "metadata",
            format!("{key} must be whole milliseconds between {MIN_LEASE_MS} and {MAX_LEASE_MS}, got {value:?}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_weights_and_ips() {
        assert!(check_port(0).is_err());
        assert!(check_port(65536).is_err());
        assert!(check_port(-1).is_err());
        assert_eq!(check_port(8080).unwrap(), 8080);
        assert!(check_weight(10_000.5).is_err());
        assert!(check_weight(f64::NAN).is_err());
        assert!(check_weight(-0.1).is_err());
        assert_eq!(check_weight(0.0).unwrap(), 0.0);
        assert!(parse_ip("10.0.0.1").unwrap().is_ipv4());
        assert!(parse_ip("[::1]").unwrap().is_ipv6());
        assert!(parse_ip("example.com").is_err());
        assert!(parse_ip("10.0.0.256").is_err());
    }

    #[test]
    fn instance_addresses_must_be_unicast() {
        for ok in ["10.0.0.1", "127.0.0.1", "::1", "2001:db8::7", "192.168.1.255"] {
            assert!(check_instance_ip("ip", ok.parse().unwrap()).is_ok(), "{ok}");
        }
        for (bad, kind) in [
            ("0.0.0.0", "unspecified"),
            ("::", "unspecified"),
            ("::ffff:0.0.0.0", "unspecified"),
            ("255.255.255.255", "broadcast"),
            ("::ffff:255.255.255.255", "broadcast"),
            ("224.0.0.1", "multicast"),
            ("239.255.255.250", "multicast"),
            ("ff02::1", "multicast"),
        ] {
            let err = check_instance_ip("ip", bad.parse().unwrap()).unwrap_err().to_string();
            assert!(err.starts_with("invalid ip: must be a unicast address"), "{bad}: {err}");
            assert!(err.contains(kind), "{bad}: {err}");
        }
    }

    #[test]
    fn dot_names_are_reserved() {
        assert_eq!(
            check_not_reserved("service", ".").unwrap_err().to_string(),
            "invalid service: '.' and '..' are reserved"
        );
        assert!(check_not_reserved("group", "..").is_err());
        assert!(check_not_reserved("group", "...").is_ok());
        assert!(check_not_reserved("group", ".hidden").is_ok());
    }

    #[test]
    fn metadata_is_bounded() {
        let mut m = BTreeMap::new();
        m.insert("k".to_owned(), "v".repeat(MAX_METADATA_VALUE + 1));
        assert!(check_metadata(&m).unwrap_err().to_string().contains("values must be at most"));
        let many: BTreeMap<_, _> = (0..=MAX_METADATA_ENTRIES).map(|i| (format!("k{i}"), String::new())).collect();
        assert!(check_metadata(&many).is_err());
        let big: BTreeMap<_, _> = (0..20).map(|i| (format!("k{i}"), "v".repeat(1000))).collect();
        assert!(check_metadata(&big).unwrap_err().to_string().contains("total"));
    }

    #[test]
    fn lease_overrides_are_ranged() {
        assert_eq!(parse_lease_ms("preserved.heart.beat.interval", "3000").unwrap(), 3000);
        assert!(parse_lease_ms("preserved.heart.beat.interval", "0").is_err());
        assert!(parse_lease_ms("preserved.heart.beat.interval", "soon").is_err());
    }
}
