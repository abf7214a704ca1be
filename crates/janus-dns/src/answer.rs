//! Building answers from the registry: which instances, in which order, as
//! which records. The instance set of a (service, cluster) is cached and
//! checked against the service's revision on every hit, so a registry change
//! shows on the very next query; only ordering and record building run per query.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use hickory_server::proto::rr::rdata::{A, AAAA, SRV, TXT};
use hickory_server::proto::rr::{Name, RData, Record, RecordType};
use janus_core::RegistryService;
use janus_core::name::{ClusterName, DEFAULT_GROUP, PUBLIC_NAMESPACE, ServiceKey};
use janus_core::select::select;
use rand::Rng;

use crate::name::{ServiceQuery, address_label};

/// Service metadata key that sets the TTL (seconds) of a service's records.
pub const TTL_METADATA_KEY: &str = "janus.dns.ttl";

/// Longest character-string in a TXT record.
const MAX_TXT_STRING: usize = 255;

/// What a query resolves to.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Records to answer with.
    Records { answers: Vec<Record>, additionals: Vec<Record> },
    /// The name exists but has no records of the asked type.
    NoData,
    /// The name does not exist.
    NxDomain,
}

/// One instance as DNS sees it.
#[derive(Debug)]
struct Candidate {
    ip: IpAddr,
    port: u16,
    weight: f64,
    txt: Vec<String>,
}

/// The cached answer material of one (service, cluster filter).
#[derive(Debug)]
struct Candidates {
    revision: u64,
    ttl: u32,
    items: Vec<Candidate>,
}

type CacheKey = (ServiceKey, Option<ClusterName>);

/// Resolves service queries against the registry.
pub(crate) struct Answerer {
    registry: Arc<dyn RegistryService>,
    domain: Name,
    default_ttl: u32,
    namespace_ttl: HashMap<String, u32>,
    cache: moka::sync::Cache<CacheKey, Arc<Candidates>>,
}

impl Answerer {
    pub(crate) fn new(
        registry: Arc<dyn RegistryService>,
        domain: Name,
        default_ttl: u32,
        namespace_ttl: HashMap<String, u32>,
        cache_entries: u64,
    ) -> Self {
        Self { registry, domain, default_ttl, namespace_ttl, cache: moka::sync::Cache::new(cache_entries) }
    }

    /// Answers a service query of type `qtype` asked as `qname`.
    pub(crate) fn service(&self, query: &ServiceQuery, qtype: RecordType, qname: &Name) -> Outcome {
        let namespace = query.namespace.as_deref().unwrap_or(PUBLIC_NAMESPACE);
        let group = query.group.as_deref().unwrap_or(DEFAULT_GROUP);
        let found = self.registry.store().read(|r| {
            r.resolve_service(namespace, group, &query.service).map(|key| {
                let revision = r.service_revision(&key);
                (key, revision)
            })
        });
        let Some((key, revision)) = found else { return Outcome::NxDomain };
        let Ok(cluster) = query.cluster.as_deref().map(ClusterName::new).transpose() else {
            return Outcome::NxDomain;
        };
        let Some(candidates) = self.candidates(key, cluster, revision) else { return Outcome::NxDomain };
        let order = weighted_order(&candidates.items, &mut rand::rng());
        let ttl = candidates.ttl;
        let mut answers = Vec::new();
        let mut additionals = Vec::new();
        for c in order.into_iter().map(|i| &candidates.items[i]) {
            match qtype {
                RecordType::A | RecordType::AAAA | RecordType::ANY => {
                    if let Some(rdata) = address_rdata(c.ip, qtype) {
                        answers.push(Record::from_rdata(qname.clone(), ttl, rdata));
                    }
                }
                RecordType::SRV => {
                    let Some(target) = self.target(c.ip) else { continue };
                    let weight = u16::try_from(c.weight.round() as i64).unwrap_or(u16::MAX);
                    let srv = SRV::new(1, weight, c.port, target.clone());
                    answers.push(Record::from_rdata(qname.clone(), ttl, RData::SRV(srv)));
                    if let Some(rdata) = address_rdata(c.ip, RecordType::ANY) {
                        additionals.push(Record::from_rdata(target, ttl, rdata));
                    }
                }
                RecordType::TXT => {
                    answers.push(Record::from_rdata(qname.clone(), ttl, RData::TXT(TXT::new(c.txt.clone()))))
                }
                _ => {}
            }
        }
        if answers.is_empty() { Outcome::NoData } else { Outcome::Records { answers, additionals } }
    }

    /// A query for an SRV target, `<hex>.addr.<domain>`.
    pub(crate) fn address(&self, ip: IpAddr, qtype: RecordType, qname: &Name) -> Outcome {
        match address_rdata(ip, qtype) {
            Some(rdata) => Outcome::Records {
                answers: vec![Record::from_rdata(qname.clone(), self.default_ttl, rdata)],
                additionals: Vec::new(),
            },
            None => Outcome::NoData,
        }
    }

    fn target(&self, ip: IpAddr) -> Option<Name> {
        Name::from_labels([address_label(ip).as_str(), "addr"]).ok()?.append_domain(&self.domain).ok()
    }

    /// The cached instance set, rebuilt when the service's revision moved.
    fn candidates(&self, service: ServiceKey, cluster: Option<ClusterName>, revision: u64) -> Option<Arc<Candidates>> {
        let key = (service, cluster);
        if let Some(hit) = self.cache.get(&key).filter(|hit| hit.revision == revision) {
            return Some(hit);
        }
        let (service, cluster) = &key;
        let snapshot = self.registry.snapshot(service).ok()?;
        if !snapshot.exists {
            return None;
        }
        let clusters: Vec<ClusterName> = cluster.iter().cloned().collect();
        let selection = select(&snapshot, &clusters, true);
        let ttl = self.ttl_of(service);
        let items = selection
            .instances
            .iter()
            .map(|s| Candidate {
                ip: s.instance.key.ip,
                port: s.instance.key.port,
                weight: s.instance.weight,
                txt: txt_strings(s),
            })
            .collect();
        let built = Arc::new(Candidates { revision: snapshot.revision, ttl, items });
        self.cache.insert(key, built.clone());
        Some(built)
    }

    /// TTL: the service's `janus.dns.ttl` metadata, else its namespace's setting, else the default.
    fn ttl_of(&self, service: &ServiceKey) -> u32 {
        let from_metadata = self
            .registry
            .service(service)
            .ok()
            .and_then(|info| info.settings.metadata.get(TTL_METADATA_KEY).and_then(|v| v.trim().parse().ok()));
        from_metadata
            .or_else(|| self.namespace_ttl.get(service.namespace.as_str()).copied())
            .unwrap_or(self.default_ttl)
    }
}

fn address_rdata(ip: IpAddr, qtype: RecordType) -> Option<RData> {
    match (ip, qtype) {
        (IpAddr::V4(v4), RecordType::A | RecordType::ANY) => Some(RData::A(A(v4))),
        (IpAddr::V6(v6), RecordType::AAAA | RecordType::ANY) => Some(RData::AAAA(AAAA(v6))),
        _ => None,
    }
}

/// `instance=ip:port`, `cluster=…`, `weight=…`, then each metadata entry as
/// `key=value`, split into 255-byte character-strings where longer.
fn txt_strings(selected: &janus_core::select::Selected) -> Vec<String> {
    let inst = &selected.instance;
    let mut entries = vec![
        format!("instance={}", std::net::SocketAddr::new(inst.key.ip, inst.key.port)),
        format!("cluster={}", inst.key.cluster),
        format!("weight={}", inst.weight),
    ];
    entries.extend(inst.metadata.iter().map(|(k, v)| format!("{k}={v}")));
    let mut strings = Vec::with_capacity(entries.len());
    for entry in entries {
        let mut rest = entry.as_str();
        while rest.len() > MAX_TXT_STRING {
            let mut cut = MAX_TXT_STRING;
            while !rest.is_char_boundary(cut) {
                cut -= 1;
            }
            strings.push(rest[..cut].to_owned());
            rest = &rest[cut..];
        }
        strings.push(rest.to_owned());
    }
    strings
}

/// A random order in which heavier instances tend to come first
/// (Efraimidis–Spirakis: sort by `u^(1/w)`); weight-0 instances go last, shuffled.
fn weighted_order<R: Rng>(items: &[Candidate], rng: &mut R) -> Vec<usize> {
    let mut keyed: Vec<(f64, usize)> = items
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let u: f64 = rng.random_range(f64::EPSILON..1.0);
            let key = if c.weight > 0.0 { u.powf(1.0 / c.weight) } else { -u };
            (key, i)
        })
        .collect();
    keyed.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
    keyed.into_iter().map(|(_, i)| i).collect()
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    fn candidate(weight: f64) -> Candidate {
        Candidate { ip: "10.0.0.1".parse().unwrap(), port: 1, weight, txt: Vec::new() }
    }

    #[test]
    fn heavier_instances_come_first_more_often_and_zero_weight_last() {
        let items = vec![candidate(1.0), candidate(9.0), candidate(0.0)];
        let mut rng = StdRng::seed_from_u64(3);
        let mut heavy_first = 0;
        for _ in 0..2000 {
            let order = weighted_order(&items, &mut rng);
            assert_eq!(order[2], 2, "weight 0 is always last");
            if order[0] == 1 {
                heavy_first += 1;
            }
        }
        // P(weight 9 before weight 1) = 9/10.
        assert!((1700..=1900).contains(&heavy_first), "{heavy_first}");
    }
}
