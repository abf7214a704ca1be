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
    /// The records do not fit the UDP payload: answer with TC and no records
    /// at all, so the client asks again over TCP (RFC 2181 §9 tells it to
    /// ignore a truncated answer anyway).
    Truncated,
    /// The name does not exist.
    NxDomain,
    /// The namespace is not answered over DNS (the DNS access rule).
    Refused,
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

/// Type, class, TTL and data length of a record (its owner name aside).
const RECORD_HEAD_BYTES: usize = 10;

/// Wire size of a compressed name: a pointer.
const POINTER_BYTES: usize = 2;

/// Most names hickory compresses in one message (Unbound's limit, from the fix
/// of CVE-2024-8508); later names are written in full.
const COMPRESSED_NAMES: usize = 120;

/// Wire size of `name`: a length byte per label, the labels, the root label.
fn wire_len(name: &Name) -> usize {
    name.len() + 1
}

/// Bytes the owner names of `n` answer records take when each is the
/// question's name (`name_bytes` long on the wire), as hickory's encoder
/// writes them: the first in full (hickory does not point into the question),
/// the next ones as pointers to it, and every name after the
/// [`COMPRESSED_NAMES`]th of the message in full again.
fn owner_bytes(n: usize, name_bytes: usize) -> usize {
    let pointers = n.saturating_sub(1).min(COMPRESSED_NAMES - 1);
    (n - pointers) * name_bytes + pointers * POINTER_BYTES
}

/// Room for records in a UDP answer of `max_payload` bytes, after the header
/// (12), the question (its name and 4) and an OPT record (11, counted also
/// when the answer has none).
fn room(max_payload: u16, qname: &Name) -> usize {
    usize::from(max_payload).saturating_sub(12 + wire_len(qname) + 4 + 11)
}

/// How many answer records of one type a service has, and their wire size
/// without owner names.
#[derive(Debug, Clone, Copy, Default)]
struct Section {
    records: usize,
    bytes: usize,
}

impl Section {
    fn add(&mut self, bytes: usize) {
        self.records += 1;
        self.bytes += RECORD_HEAD_BYTES + bytes;
    }

    /// Wire size of the records asked as `qname`.
    fn wire_bytes(self, qname: &Name) -> usize {
        self.bytes + owner_bytes(self.records, wire_len(qname))
    }
}

/// The cached answer material of one (service, cluster filter).
#[derive(Debug)]
struct Candidates {
    revision: u64,
    ttl: u32,
    items: Vec<Candidate>,
    /// The A records.
    a: Section,
    /// The AAAA records.
    aaaa: Section,
    /// The TXT records: each string is a length byte and its bytes.
    txt: Section,
    /// The SRV records: their targets are written uncompressed (RFC 2782).
    srv: Section,
    /// Wire size of all glue records, at most (owner names uncompressed).
    glue_bytes: usize,
}

impl Candidates {
    /// Wire size of the whole answer section to a `qtype` query asked as `qname`.
    fn answer_bytes(&self, qtype: RecordType, qname: &Name) -> usize {
        match qtype {
            RecordType::A => self.a.wire_bytes(qname),
            RecordType::AAAA => self.aaaa.wire_bytes(qname),
            RecordType::ANY => {
                Section { records: self.a.records + self.aaaa.records, bytes: self.a.bytes + self.aaaa.bytes }
                    .wire_bytes(qname)
            }
            RecordType::TXT => self.txt.wire_bytes(qname),
            RecordType::SRV => self.srv.wire_bytes(qname),
            _ => 0,
        }
    }
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
    /// is the UDP size limit (`None` over TCP): when the answer records do not
    /// all fit, none is built and the answer is [`Outcome::Truncated`]; when
    /// only the SRV glue does not fit, the glue is left out.
    pub(crate) fn service(
        &self,
        query: &ServiceQuery<'_>,
        qtype: RecordType,
        qname: &Name,
        max_payload: Option<u16>,
    ) -> Outcome {
        let namespace = query.namespace.unwrap_or(PUBLIC_NAMESPACE);
        let group = query.group.unwrap_or(DEFAULT_GROUP);
        let found = self.registry.view().read(|r| {
            // The DNS access rule: a closed namespace answers nothing, not
            // even whether a service exists there (checked after the lookup,
            // so that an answer costs one more map lookup and no allocation).
            match r.resolve_service(namespace, group, query.service) {
                Some(key) if r.closed_to_dns(&key.namespace) => Err(()),
                Some(key) => {
                    let revision = r.service_revision(&key);
                    Ok(Some((key, revision)))
                }
                None if r.closed_to_dns_ignoring_case(namespace) => Err(()),
                None => Ok(None),
            }
        });
        let Ok(found) = found else { return Outcome::Refused };
        let Some((key, revision)) = found else { return Outcome::NxDomain };
        let Ok(cluster) = query.cluster.map(ClusterName::new).transpose() else {
            return Outcome::NxDomain;
        };
        let Some(candidates) = self.candidates(key, cluster, revision) else { return Outcome::NxDomain };
        let ttl = candidates.ttl;
        let eligible = |c: &Candidate| match qtype {
            RecordType::A => c.ip.is_ipv4(),
            RecordType::AAAA => c.ip.is_ipv6(),
            RecordType::ANY | RecordType::SRV | RecordType::TXT => true,
            _ => false,
        };
        let mut with_glue = qtype == RecordType::SRV;
        if let Some(max) = max_payload {
            // The size is exact, so the encoder does not have to cut records
            // (were it to, the UDP reply sends TC and no records instead).
            let room = room(max, qname);
            let answer_bytes = candidates.answer_bytes(qtype, qname);
            if answer_bytes > room {
                return Outcome::Truncated;
            }
            // Glue is optional: leave it out rather than cut the answer.
            with_glue = with_glue && answer_bytes + candidates.glue_bytes <= room;
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
        // Record data: A 4, AAAA 16; SRV priority, weight and port (6), then
        // the target; TXT each character-string as a length byte and its bytes.
        // Glue: the target as owner, head, and the address.
        let (mut a, mut aaaa, mut txt, mut srv) =
            (Section::default(), Section::default(), Section::default(), Section::default());
        let mut glue_bytes = 0;
        for c in &items {
            let address = if c.ip.is_ipv4() { 4 } else { 16 };
            if c.ip.is_ipv4() {
                a.add(address)
            } else {
                aaaa.add(address)
            }
            if let RData::SRV(data) = &c.srv {
                let target = wire_len(&data.target);
                srv.add(6 + target);
                glue_bytes += target + RECORD_HEAD_BYTES + address;
            }
            if let RData::TXT(data) = &c.txt {
                txt.add(data.txt_data.iter().map(|s| 1 + s.len()).sum());
            }
        }
        let built = Arc::new(Candidates { revision: snapshot.revision, ttl, items, a, aaaa, txt, srv, glue_bytes });
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
    use hickory_server::net::xfer::Protocol;
    use hickory_server::proto::op::{Edns, Message, MessageType, Metadata, OpCode, Query};
    use hickory_server::proto::serialize::binary::BinEncoder;
    use hickory_server::server::Request;
    use hickory_server::zone_handler::MessageResponseBuilder;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;
    use crate::tests::{Registry, v4, v6};

    /// Wire sizes of the answer and additional sections as the server encodes
    /// them in answer to `qname`/`qtype` (asked with EDNS).
    fn encoded(qname: &Name, qtype: RecordType, answers: &[Record], additionals: &[Record]) -> (usize, usize) {
        let mut ask = Message::new(7, MessageType::Query, OpCode::Query);
        ask.add_query(Query::query(qname.clone(), qtype));
        ask.set_edns(Edns::new());
        let request = Request::from_bytes(ask.to_vec().unwrap(), ([127, 0, 0, 1], 5300).into(), Protocol::Udp).unwrap();
        let edns = Edns::new();
        let emit = |additionals: &[Record]| {
            let metadata = Metadata::response_from_request(&request.metadata);
            let response = MessageResponseBuilder::new(&request.queries, Some(&edns)).build(
                metadata,
                answers.iter(),
                [].iter(),
                [].iter(),
                additionals.iter(),
            );
            let mut bytes = Vec::new();
            response.destructive_emit(&mut BinEncoder::new(&mut bytes)).unwrap();
            bytes.len()
        };
        let without = emit(&[]);
        (without - (12 + wire_len(qname) + 4 + 11), emit(additionals) - without)
    }

    #[test]
    fn answer_sizes_are_those_the_encoder_writes() {
        let registry = Registry::new();
        let answerer = Answerer::new(registry.clone(), Name::from_ascii("janus.").unwrap(), 0, HashMap::new(), 100);
        let long = "y".repeat(300);
        let mut registered = 0;
        for n in [1, 2, 3, 60, 119, 120, 121, 122, 200, 260] {
            for i in registered..n {
                let note = &long[..usize::try_from(i * 7 % 300).unwrap()];
                let ip = if i % 3 == 0 { v6(i) } else { v4(i) };
                registry.register("sized", ip, &[("note", note)]);
            }
            registered = n;
            let key = registry.view().read(|r| r.resolve_service("public", "DEFAULT_GROUP", "sized")).unwrap();
            let revision = registry.view().read(|r| r.service_revision(&key));
            let candidates = answerer.candidates(key, None, revision).unwrap();
            for (name, qtype) in [
                ("sized.svc.janus.", RecordType::A),
                ("sized.svc.janus.", RecordType::AAAA),
                ("sized.svc.janus.", RecordType::ANY),
                ("sized.svc.janus.", RecordType::TXT),
                ("_sized._tcp.janus.", RecordType::SRV),
                ("sized.svc.DEFAULT_GROUP.group.public.ns.janus.", RecordType::SRV),
            ] {
                let qname = Name::from_ascii(name).unwrap();
                let labels: Vec<&[u8]> = qname.iter().take(usize::from(qname.num_labels()) - 1).collect();
                let crate::name::ParsedName::Service(query) = crate::name::parse(&labels) else { panic!("{name}") };
                let (answers, additionals) = match answerer.service(&query, qtype, &qname, None) {
                    Outcome::Records { answers, additionals } => (answers, additionals),
                    Outcome::NoData => (Vec::new(), Vec::new()),
                    other => panic!("{name} {qtype}: {other:?}"),
                };
                let (answer_bytes, glue_bytes) = encoded(&qname, qtype, &answers, &additionals);
                assert_eq!(answer_bytes, candidates.answer_bytes(qtype, &qname), "{n} {qtype} for {name}");
                assert!(glue_bytes <= candidates.glue_bytes, "{n} {qtype}: {glue_bytes} bytes of glue");
            }
        }
    }

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
