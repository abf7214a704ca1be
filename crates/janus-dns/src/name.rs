//! The DNS name scheme, parsed from the labels below our domain.
//!
//! ```text
//! <service>.svc[.<value>.<key>]*.<domain>          standard form
//! _<service>._<proto>[.<value>.<key>]*.<domain>    RFC 2782 form (for SRV)
//! <hex-address>.addr.<domain>                      SRV targets: 8 hex digits (IPv4) or 32 (IPv6)
//! ```
//!
//! `<key>` is `ns` (namespace, default `public`), `group` (default
//! `DEFAULT_GROUP`) or `cluster` (a filter; default: every cluster); each may
//! appear once, in any order. The protocol label of the RFC 2782 form is
//! accepted and ignored (Janus does not record protocols). A service name is
//! one label: a name holding `.` is still one label on the wire (write it as
//! `nacos\.test.svc.janus.` in `dig`); names are matched as sent, then without
//! regard to ASCII case.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What a query name asks for; borrows the labels it was parsed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParsedName<'a> {
    /// The domain itself.
    Apex,
    /// Instances of a service.
    Service(ServiceQuery<'a>),
    /// An SRV target: the address it encodes.
    Address(IpAddr),
    /// Inside our domain but not a name of the scheme.
    Unknown,
}

/// A service query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceQuery<'a> {
    /// Service name as sent.
    pub service: &'a str,
    /// Namespace, if given.
    pub namespace: Option<&'a str>,
    /// Group, if given.
    pub group: Option<&'a str>,
    /// Cluster filter, if given.
    pub cluster: Option<&'a str>,
    /// Whether the RFC 2782 form (`_service._proto`) was used.
    pub rfc2782: bool,
}

/// Most labels a name of the scheme has: service, `svc` and three key pairs.
pub const MAX_LABELS: usize = 8;

/// Parses the labels in front of the domain, leftmost first.
#[must_use]
pub fn parse<'a>(raw: &[&'a [u8]]) -> ParsedName<'a> {
    if raw.len() > MAX_LABELS {
        return ParsedName::Unknown;
    }
    let mut text = [""; MAX_LABELS];
    for (slot, label) in text.iter_mut().zip(raw) {
        let Ok(label) = std::str::from_utf8(label) else { return ParsedName::Unknown };
        *slot = label;
    }
    match &text[..raw.len()] {
        [] => ParsedName::Apex,
        [hex, addr] if addr.eq_ignore_ascii_case("addr") => {
            parse_address(hex).map_or(ParsedName::Unknown, ParsedName::Address)
        }
        [first, second, rest @ ..] => {
            let (service, rfc2782) =
                if let (Some(service), Some(proto)) = (first.strip_prefix('_'), second.strip_prefix('_')) {
                    if service.is_empty() || proto.is_empty() {
                        return ParsedName::Unknown;
                    }
                    (service, true)
                } else if second.eq_ignore_ascii_case("svc") {
                    (*first, false)
                } else {
                    return ParsedName::Unknown;
                };
            let mut query = ServiceQuery { service, namespace: None, group: None, cluster: None, rfc2782 };
            let mut pairs = rest.chunks_exact(2);
            for pair in pairs.by_ref() {
                let key = pair[1];
                let slot = if key.eq_ignore_ascii_case("ns") {
                    &mut query.namespace
                } else if key.eq_ignore_ascii_case("group") {
                    &mut query.group
                } else if key.eq_ignore_ascii_case("cluster") {
                    &mut query.cluster
                } else {
                    return ParsedName::Unknown;
                };
                if slot.replace(pair[0]).is_some() {
                    return ParsedName::Unknown;
                }
            }
            if pairs.remainder().is_empty() { ParsedName::Service(query) } else { ParsedName::Unknown }
        }
        _ => ParsedName::Unknown,
    }
}

fn parse_address(hex: &str) -> Option<IpAddr> {
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    match hex.len() {
        8 => u32::from_str_radix(hex, 16).ok().map(|v| IpAddr::V4(Ipv4Addr::from(v))),
        32 => u128::from_str_radix(hex, 16).ok().map(|v| IpAddr::V6(Ipv6Addr::from(v))),
        _ => None,
    }
}

/// The `<hex-address>` label of an SRV target.
#[must_use]
pub fn address_label(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("{:08x}", u32::from(v4)),
        IpAddr::V6(v6) => format!("{:032x}", u128::from(v6)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(name: &str) -> ParsedName<'_> {
        let labels: Vec<&[u8]> =
            if name.is_empty() { Vec::new() } else { name.split('.').map(str::as_bytes).collect() };
        parse(&labels)
    }

    fn service(name: &str) -> ServiceQuery<'_> {
        match p(name) {
            ParsedName::Service(q) => q,
            other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn standard_and_rfc2782_forms() {
        let q = service("orders.svc");
        assert_eq!((q.service, q.namespace, q.group, q.cluster, q.rfc2782), ("orders", None, None, None, false));
        let q = service("orders.SVC.payments.ns.backend.group.blue.cluster");
        assert_eq!(q.namespace, Some("payments"));
        assert_eq!(q.group, Some("backend"));
        assert_eq!(q.cluster, Some("blue"));
        let q = service("_orders._tcp.payments.ns");
        assert!(q.rfc2782);
        assert_eq!((q.service, q.namespace), ("orders", Some("payments")));
        assert_eq!(service("Orders.svc").service, "Orders", "case is kept as sent");
    }

    #[test]
    fn anything_else_is_unknown() {
        for name in
            ["orders", "orders.svc.payments", "orders.svc.a.ns.b.ns", "orders.svc.x.colour", "a.b.c", "_.tcp", "_x._"]
        {
            assert_eq!(p(name), ParsedName::Unknown, "{name}");
        }
        assert_eq!(p(""), ParsedName::Apex);
    }

    #[test]
    fn addresses_round_trip() {
        for ip in ["10.0.0.1", "255.255.255.255", "::1", "2001:db8::7"] {
            let ip: IpAddr = ip.parse().unwrap();
            let label = address_label(ip);
            assert_eq!(p(&format!("{label}.addr")), ParsedName::Address(ip));
        }
        assert_eq!(p("0a00001.addr"), ParsedName::Unknown);
        assert_eq!(p("zz000001.addr"), ParsedName::Unknown);
    }
}
