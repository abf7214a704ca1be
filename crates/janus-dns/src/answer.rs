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
    /// The records do not fit the UDP payload: answer with TC and no records,
    /// so the client asks again over TCP (RFC 2181 §9 tells it to ignore a
    /// truncated answer anyway).
    Truncated,
    /// The name does not exist.
    NxDomain,
}

/// One instance as DNS sees it, with the record data built once per revision.
#[derive(Debug)]
struct Candidate {
    ip: IpAddr,
    weight: f64,
    /// A or AAAA.
    address: RData,
    srv: RData,
    /// The SRV target's address record, for the additional section.
    glue: Record,
    txt: RData,
}

/// Fixed part of a record: a compressed owner name (2) and type, class, TTL
/// and length (10).
const RECORD_HEAD_BYTES: usize = 12;

/// The fewest bytes one A, AAAA or TXT answer record takes on the wire.
fn min_record_bytes(qtype: RecordType) -> usize {
    match qtype {
        RecordType::AAAA => RECORD_HEAD_BYTES + 16,
        RecordType::TXT => RECORD_HEAD_BYTES + 1,
        _ => RECORD_HEAD_BYTES + 4,
    }
}

/// Room for records in a UDP answer of `max_payload` bytes, after the header
/// (12), the question (name + 4) and an OPT record (11).
fn room(max_payload: u16, qname: &Name) -> usize {
    usize::from(max_payload).saturating_sub(12 + qname.len() + 2 + 4 + 11)
}

/// The cached answer material of one (service, cluster filter).
#[derive(Debug)]
struct Candidates {
    revision: u64,
    ttl: u32,
    items: Vec<Candidate>,
    /// Wire size of all SRV records: exact, since SRV targets are written
    /// uncompressed (RFC 2782) and owner names point to the question.
    srv_bytes: usize,
    /// Wire size of all glue records, at most (owner names uncompressed).
    glue_bytes: usize,
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

    /// Answers a service query of type `qtype` asked as `qname`. `max_payload`
    /// is the UDP size limit (`None` over TCP): records beyond what can fit are
    /// not built, but always one more than fits, so the encoder sets TC.
    pub(crate) fn service(
        &self,
        query: &ServiceQuery<'_>,
        qtype: RecordType,
        qname: &Name,
        max_payload: Option<u16>,
    ) -> Outcome {
        let namespace = query.namespace.unwrap_or(PUBLIC_NAMESPACE);
        let group = query.group.unwrap_or(DEFAULT_GROUP);
        let found = self.registry.store().read(|r| {
            r.resolve_service(namespace, group, query.service).map(|key| {
                let revision = r.service_revision(&key);
                (key, revision)
            })
        });
        let Some((key, revision)) = found else { return Outcome::NxDomain };
        let Ok(cluster) = query.cluster.map(ClusterName::new).transpose() else {
            return Outcome::NxDomain;
        };
        let Some(candidates) = self.candidates(key, cluster, revision) else { return Outcome::NxDomain };
        let ttl = candidates.ttl;
        // Filter by type before deciding what fits, so that a cut answer always says so.
        let eligible = |c: &Candidate| match qtype {
            RecordType::A => c.ip.is_ipv4(),
            RecordType::AAAA => c.ip.is_ipv6(),
            RecordType::ANY | RecordType::SRV | RecordType::TXT => true,
            _ => false,
        };
        let mut with_glue = qtype == RecordType::SRV;
        if let Some(max) = max_payload {
            let room = room(max, qname);
            if qtype == RecordType::SRV {
                if candidates.srv_bytes > room {
                    return Outcome::Truncated;
                }
                // Glue is optional: leave it out rather than cut the answer.
                with_glue = candidates.srv_bytes + candidates.glue_bytes <= room;
            } else if candidates.items.iter().filter(|c| eligible(c)).count() > room / min_record_bytes(qtype) {
                return Outcome::Truncated;
            }
        }
        let order = weighted_order(&candidates.items, eligible, usize::MAX, &mut rand::rng());
        let mut answers = Vec::with_capacity(order.len());
        let mut additionals = Vec::with_capacity(if with_glue { order.len() } else { 0 });
        for c in order.into_iter().map(|i| &candidates.items[i]) {
            match qtype {
                RecordType::A | RecordType::AAAA | RecordType::ANY => {
                    answers.push(Record::from_rdata(qname.clone(), ttl, c.address.clone()));
                }
                RecordType::SRV => {
                    answers.push(Record::from_rdata(qname.clone(), ttl, c.srv.clone()));
                    if with_glue {
                        let mut glue = c.glue.clone();
                        glue.ttl = ttl;
                        additionals.push(glue);
                    }
                }
                RecordType::TXT => answers.push(Record::from_rdata(qname.clone(), ttl, c.txt.clone())),
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
        let items: Vec<Candidate> = selection
            .instances
            .iter()
            .filter_map(|s| {
                let ip = s.instance.key.ip;
                let address = address_rdata(ip, RecordType::ANY)?;
                let target = self.target(ip)?;
                // Weights are 0..=10000, so rounding fits a u16.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let weight = s.instance.weight.round() as u16;
                Some(Candidate {
                    ip,
                    weight: s.instance.weight,
                    srv: RData::SRV(SRV::new(1, weight, s.instance.key.port, target.clone())),
                    glue: Record::from_rdata(target, ttl, address.clone()),
                    address,
                    txt: RData::TXT(TXT::new(txt_strings(s))),
                })
            })
            .collect();
        // SRV: head, priority, weight and port (6), then the target (its text
        // length plus the first length byte and the root label). Glue: the
        // target as owner, head, and the address.
        let (mut srv_bytes, mut glue_bytes) = (0, 0);
        for c in &items {
            if let RData::SRV(srv) = &c.srv {
                let target = srv.target.len() + 1;
                srv_bytes += RECORD_HEAD_BYTES + 6 + target;
                glue_bytes += target + 10 + if c.ip.is_ipv4() { 4 } else { 16 };
            }
        }
        let built = Arc::new(Candidates { revision: snapshot.revision, ttl, items, srv_bytes, glue_bytes });
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

/// The first `limit` indices of the `eligible` items in a random order in
/// which heavier instances tend to come first (Efraimidis–Spirakis: sort by
/// `u^(1/w)`); weight-0 instances go last, shuffled. When all eligible weights
/// are equal (the common case) that is a uniform shuffle, done partially.
fn weighted_order<R: Rng>(
    items: &[Candidate],
    eligible: impl Fn(&Candidate) -> bool,
    limit: usize,
    rng: &mut R,
) -> Vec<usize> {
    let mut chosen: Vec<usize> = (0..items.len()).filter(|&i| eligible(&items[i])).collect();
    let first = chosen.first().map(|&i| items[i].weight);
    if chosen.iter().all(|&i| Some(items[i].weight) == first) {
        let take = limit.min(chosen.len());
        for slot in 0..take {
            let pick = rng.random_range(slot..chosen.len());
            chosen.swap(slot, pick);
        }
        chosen.truncate(take);
        return chosen;
    }
    let mut keyed: Vec<(f64, usize)> = chosen
        .into_iter()
        .map(|i| {
            let u: f64 = rng.random_range(f64::EPSILON..1.0);
            let weight = items[i].weight;
            let key = if weight > 0.0 { u.powf(1.0 / weight) } else { -u };
            (key, i)
        })
        .collect();
    let by_key_desc = |a: &(f64, usize), b: &(f64, usize)| b.0.total_cmp(&a.0);
    if limit < keyed.len() {
        keyed.select_nth_unstable_by(limit, by_key_desc);
        keyed.truncate(limit);
    }
    keyed.sort_unstable_by(by_key_desc);
    keyed.into_iter().map(|(_, i)| i).collect()
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    fn candidate(weight: f64) -> Candidate {
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let address = address_rdata(ip, RecordType::ANY).unwrap();
        let target = Name::from_ascii("0a000001.addr.janus.").unwrap();
        Candidate {
            ip,
            weight,
            srv: RData::SRV(SRV::new(1, 1, 1, target.clone())),
            glue: Record::from_rdata(target, 0, address.clone()),
            address,
            txt: RData::TXT(TXT::new(Vec::new())),
        }
    }

    #[test]
    fn heavier_instances_come_first_more_often_and_zero_weight_last() {
        let items = vec![candidate(1.0), candidate(9.0), candidate(0.0)];
        let mut rng = StdRng::seed_from_u64(3);
        let mut heavy_first = 0;
        for _ in 0..2000 {
            let order = weighted_order(&items, |_| true, usize::MAX, &mut rng);
            assert_eq!(order[2], 2, "weight 0 is always last");
            if order[0] == 1 {
                heavy_first += 1;
            }
        }
        // P(weight 9 before weight 1) = 9/10.
        assert!((1700..=1900).contains(&heavy_first), "{heavy_first}");
    }

    #[test]
    fn equal_weights_shuffle_uniformly() {
        let items: Vec<_> = (0..4).map(|_| candidate(1.0)).collect();
        let mut rng = StdRng::seed_from_u64(9);
        let mut first = [0; 4];
        for _ in 0..4000 {
            let order = weighted_order(&items, |_| true, 2, &mut rng);
            assert_eq!(order.len(), 2);
            assert_ne!(order[0], order[1]);
            first[order[0]] += 1;
        }
        assert!(first.iter().all(|&n| (850..=1150).contains(&n)), "{first:?}");
    }

    #[test]
    fn a_limit_keeps_the_heaviest_draws() {
        let items: Vec<_> = (0..50).map(|i| candidate(f64::from(i % 5))).collect();
        let mut rng = StdRng::seed_from_u64(5);
        let order = weighted_order(&items, |_| true, 10, &mut rng);
        assert_eq!(order.len(), 10);
        assert!(order.iter().all(|&i| items[i].weight > 0.0), "weight-0 instances never beat weighted ones");
    }
}
