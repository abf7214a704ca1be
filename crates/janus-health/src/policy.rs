//! [`ProbePolicy`]: which addresses the checker may probe.
//!
//! Clients choose the address of the instances they register, so a checker
//! without a policy connects wherever it is told: to the cloud metadata
//! service at 169.254.169.254, to link-local hosts, to any port the node can
//! reach. The policy is an allow-list and a deny-list of networks; an
//! address must be in the allow-list and in no network of the deny-list
//! (deny wins). An IPv4-mapped IPv6 address (`::ffff:169.254.169.254`) is
//! matched as its IPv4 address as well.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

/// The allow-list by default: every IPv4 and IPv6 address.
pub const DEFAULT_PROBE_ALLOW: &[&str] = &["0.0.0.0/0", "::/0"];

/// The deny-list by default: IPv4 and IPv6 link-local addresses (the cloud
/// metadata services answer at 169.254.169.254) and AWS's IPv6 metadata
/// address.
pub const DEFAULT_PROBE_DENY: &[&str] = &["169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128"];

/// Which list of a [`ProbePolicy`] a value belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyList {
    /// The networks that may be probed.
    Allow,
    /// The networks that are never probed.
    Deny,
}

impl fmt::Display for PolicyList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Allow => "allow-list",
            Self::Deny => "deny-list",
        })
    }
}

/// A network of a policy list does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{list} entry {value:?} is not a network such as 10.0.0.0/8 or fd00::/8, nor an address")]
pub struct ProbePolicyError {
    /// The list it was in.
    pub list: PolicyList,
    /// The value as given.
    pub value: String,
}

/// Why an address is not probed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProbeRule {
    /// The address is in this network of the deny-list.
    Denied(IpNet),
    /// The address is in no network of the allow-list.
    NotAllowed,
}

impl fmt::Display for ProbeRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Denied(net) => write!(f, "deny-list network {net}"),
            Self::NotAllowed => f.write_str("outside every allow-list network"),
        }
    }
}

/// Which addresses health checks may probe: in a network of the allow-list
/// and in none of the deny-list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbePolicy {
    allow: Vec<IpNet>,
    deny: Vec<IpNet>,
}

impl Default for ProbePolicy {
    /// Everything but [`DEFAULT_PROBE_DENY`].
    fn default() -> Self {
        let nets = |list: &[&str]| list.iter().filter_map(|value| parse_net(value)).collect();
        Self { allow: nets(DEFAULT_PROBE_ALLOW), deny: nets(DEFAULT_PROBE_DENY) }
    }
}

impl ProbePolicy {
    /// A policy from its two lists. An empty allow-list allows nothing.
    #[must_use]
    pub fn new(allow: Vec<IpNet>, deny: Vec<IpNet>) -> Self {
        Self { allow, deny }
    }

    /// A policy that refuses every address: nothing is probed.
    #[must_use]
    pub fn refuse_all() -> Self {
        Self { allow: Vec::new(), deny: Vec::new() }
    }

    /// Parses the two lists. Each entry is a network in CIDR notation
    /// (`10.0.0.0/8`, `fd00::/8`) or a single address (`10.1.2.3`).
    ///
    /// # Errors
    /// The first entry that is neither, with its list.
    pub fn parse<S: AsRef<str>>(allow: &[S], deny: &[S]) -> Result<Self, ProbePolicyError> {
        let nets = |list: PolicyList, values: &[S]| {
            values
                .iter()
                .map(|value| {
                    parse_net(value.as_ref()).ok_or_else(|| ProbePolicyError { list, value: value.as_ref().to_owned() })
                })
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Self { allow: nets(PolicyList::Allow, allow)?, deny: nets(PolicyList::Deny, deny)? })
    }

    /// The networks that may be probed.
    #[must_use]
    pub fn allow(&self) -> &[IpNet] {
        &self.allow
    }

    /// The networks that are never probed.
    #[must_use]
    pub fn deny(&self) -> &[IpNet] {
        &self.deny
    }

    /// Whether `ip` may be probed; if not, the rule that refuses it. The
    /// deny-list is read first, and an IPv4-mapped IPv6 address is matched
    /// both as itself and as its IPv4 address.
    ///
    /// # Errors
    /// The rule refusing `ip`.
    pub fn check(&self, ip: IpAddr) -> Result<(), ProbeRule> {
        let forms = [Some(ip), mapped_v4(ip)];
        let forms = forms.iter().flatten();
        if let Some(net) = self.deny.iter().find(|net| forms.clone().any(|form| net.contains(form))) {
            return Err(ProbeRule::Denied(*net));
        }
        if self.allow.iter().any(|net| forms.clone().any(|form| net.contains(form))) {
            Ok(())
        } else {
            Err(ProbeRule::NotAllowed)
        }
    }
}

/// The IPv4 address an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) stands for.
fn mapped_v4(ip: IpAddr) -> Option<IpAddr> {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4),
        IpAddr::V4(_) => None,
    }
}

/// A network in CIDR notation, or one address.
fn parse_net(value: &str) -> Option<IpNet> {
    let value = value.trim();
    value.parse::<IpNet>().ok().or_else(|| value.parse::<IpAddr>().ok().map(IpNet::from))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn net(text: &str) -> IpNet {
        text.parse().unwrap()
    }

    #[test]
    fn defaults_refuse_link_local_and_metadata_addresses_and_accept_the_rest() {
        let policy = ProbePolicy::default();
        assert_eq!(policy.check(ip("169.254.169.254")), Err(ProbeRule::Denied(net("169.254.0.0/16"))));
        assert_eq!(policy.check(ip("fe80::1")), Err(ProbeRule::Denied(net("fe80::/10"))));
        assert_eq!(policy.check(ip("fd00:ec2::254")), Err(ProbeRule::Denied(net("fd00:ec2::254/128"))));
        for allowed in ["127.0.0.1", "10.0.0.1", "192.168.1.20", "::1", "2001:db8::7", "fd00:ec2::253"] {
            assert_eq!(policy.check(ip(allowed)), Ok(()), "{allowed}");
        }
        assert_eq!(policy.allow().len(), DEFAULT_PROBE_ALLOW.len());
        assert_eq!(policy.deny().len(), DEFAULT_PROBE_DENY.len());
    }

    #[test]
    fn deny_beats_allow() {
        let policy = ProbePolicy::parse(&["10.0.0.0/8"], &["10.1.0.0/16"]).unwrap();
        assert_eq!(policy.check(ip("10.2.3.4")), Ok(()));
        assert_eq!(policy.check(ip("10.1.2.3")), Err(ProbeRule::Denied(net("10.1.0.0/16"))));
        let everything = ProbePolicy::parse(&["0.0.0.0/0"], &["0.0.0.0/0"]).unwrap();
        assert_eq!(everything.check(ip("127.0.0.1")), Err(ProbeRule::Denied(net("0.0.0.0/0"))));
    }

    #[test]
    fn ipv4_mapped_ipv6_addresses_match_as_their_ipv4_address() {
        let policy = ProbePolicy::default();
        assert_eq!(policy.check(ip("::ffff:169.254.169.254")), Err(ProbeRule::Denied(net("169.254.0.0/16"))));
        assert_eq!(policy.check(ip("::ffff:10.0.0.1")), Ok(()));
        let loopback_only = ProbePolicy::parse(&["127.0.0.0/8"], &[] as &[&str]).unwrap();
        assert_eq!(loopback_only.check(ip("::ffff:127.0.0.1")), Ok(()), "allowed as its IPv4 address");
        assert_eq!(loopback_only.check(ip("::ffff:10.0.0.1")), Err(ProbeRule::NotAllowed));
        let mapped_deny = ProbePolicy::parse(&["::/0"], &["::ffff:0:0/96"]).unwrap();
        assert!(matches!(mapped_deny.check(ip("::ffff:127.0.0.1")), Err(ProbeRule::Denied(_))));
    }

    #[test]
    fn an_allow_list_refuses_what_it_does_not_list() {
        let policy = ProbePolicy::parse(&["127.0.0.0/8"], &[] as &[&str]).unwrap();
        assert_eq!(policy.check(ip("127.0.0.1")), Ok(()));
        assert_eq!(policy.check(ip("10.0.0.1")), Err(ProbeRule::NotAllowed));
        assert_eq!(policy.check(ip("::1")), Err(ProbeRule::NotAllowed), "an IPv4 network never holds IPv6");
        assert_eq!(ProbePolicy::refuse_all().check(ip("127.0.0.1")), Err(ProbeRule::NotAllowed));
    }

    #[test]
    fn lists_take_networks_and_single_addresses_and_name_a_bad_entry() {
        let policy = ProbePolicy::parse(&[" 10.0.0.0/8 ", "192.0.2.7"], &["2001:db8::1"]).unwrap();
        assert_eq!(policy.allow(), &[net("10.0.0.0/8"), net("192.0.2.7/32")]);
        assert_eq!(policy.check(ip("192.0.2.7")), Ok(()));
        assert_eq!(policy.check(ip("192.0.2.8")), Err(ProbeRule::NotAllowed));
        assert_eq!(policy.deny(), &[net("2001:db8::1/128")]);
        let error = ProbePolicy::parse(&["10.0.0.0/8"], &["169.254.0.0/33"]).unwrap_err();
        assert_eq!(error, ProbePolicyError { list: PolicyList::Deny, value: "169.254.0.0/33".to_owned() });
        assert!(error.to_string().contains("169.254.0.0/33"), "{error}");
        let error = ProbePolicy::parse(&["localhost"], &[] as &[&str]).unwrap_err();
        assert_eq!(error.list, PolicyList::Allow);
    }
}
