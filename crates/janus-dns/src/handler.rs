//! [`RegistryHandler`]: hickory's request handler over the registry. It maps
//! each query to a [`ParsedName`] and each outcome to a response code.

use std::collections::HashMap;
use std::sync::Arc;

use hickory_server::net::NetError;
use hickory_server::net::runtime::Time;
use hickory_server::net::xfer::Protocol;
use hickory_server::proto::op::{Edns, Header, HeaderCounts, MessageType, Metadata, OpCode, ResponseCode};
use hickory_server::proto::rr::rdata::SOA;
use hickory_server::proto::rr::{DNSClass, LowerName, Name, RData, Record, RecordType};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use janus_core::RegistryService;
use tracing::debug;

use crate::answer::{Answerer, Outcome};
use crate::name::{self, ParsedName};

/// The default cap on UDP answers, in bytes: the DNS Flag Day 2020 value,
/// which fits the 1280-byte minimum IPv6 MTU without fragmentation.
pub const DEFAULT_MAX_UDP_PAYLOAD: u16 = 1232;

/// The UDP payload every DNS client accepts (RFC 1035), and the floor of
/// [`RegistryHandler::with_max_udp_payload`].
pub const MIN_UDP_PAYLOAD: u16 = 512;

/// Answers queries under one domain from a registry.
pub struct RegistryHandler {
    domain: LowerName,
    domain_labels: usize,
    soa: Record,
    answerer: Answerer,
    max_udp_payload: u16,
}

impl RegistryHandler {
    /// A handler for `domain` (e.g. `janus.`) over `registry`.
    ///
    /// # Errors
    /// The domain is not a valid DNS name.
    pub fn new(
        registry: Arc<dyn RegistryService>,
        domain: &str,
        default_ttl: u32,
        namespace_ttl: HashMap<String, u32>,
        cache_entries: u64,
    ) -> Result<Self, hickory_server::proto::ProtoError> {
        let mut domain = Name::from_ascii(domain)?.to_lowercase();
        domain.set_fqdn(true);
        let soa = Record::from_rdata(
            domain.clone(),
            default_ttl,
            RData::SOA(SOA::new(
                Name::from_ascii("ns")?.append_domain(&domain)?,
                Name::from_ascii("hostmaster")?.append_domain(&domain)?,
                1,
                3600,
                600,
                86_400,
                default_ttl,
            )),
        );
        let domain_labels = usize::from(domain.num_labels());
        let answerer = Answerer::new(registry, domain.clone(), default_ttl, namespace_ttl, cache_entries);
        Ok(Self {
            domain: LowerName::from(domain),
            domain_labels,
            soa,
            answerer,
            max_udp_payload: DEFAULT_MAX_UDP_PAYLOAD,
        })
    }

    /// Caps UDP answers at `bytes` (raised to [`MIN_UDP_PAYLOAD`] if below),
    /// whatever EDNS payload size a client offers; the default is
    /// [`DEFAULT_MAX_UDP_PAYLOAD`].
    #[must_use]
    pub fn with_max_udp_payload(mut self, bytes: u16) -> Self {
        self.max_udp_payload = bytes.max(MIN_UDP_PAYLOAD);
        self
    }

    /// The cap on UDP answers, in bytes.
    #[must_use]
    pub fn max_udp_payload(&self) -> u16 {
        self.max_udp_payload
    }

    /// The OPT record of the answer to `request`, if it has EDNS: the payload
    /// size used (and advertised) is the client's, capped at our maximum, and
    /// at least 512 bytes.
    fn response_edns(&self, request: &Request) -> Option<Edns> {
        request.edns.as_ref().map(|req| {
            let mut edns = Edns::new();
            edns.set_max_payload(req.max_payload().min(self.max_udp_payload).max(MIN_UDP_PAYLOAD));
            edns.set_version(0);
            edns
        })
    }

    /// Answers `request` with TC set and no records: the slip of response
    /// rate limiting, which sends a client that is really there to TCP.
    pub(crate) async fn send_truncated<R: ResponseHandler>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> Result<ResponseInfo, NetError> {
        let response_edns = self.response_edns(request);
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.authoritative = true;
        metadata.truncation = true;
        let builder = MessageResponseBuilder::new(&request.queries, response_edns.as_ref());
        let response = builder.build(metadata, [].iter(), [].iter(), [].iter(), [].iter());
        response_handle.send_response(response).await
    }

    /// Resolves one question (`qname` as sent, `lower` its lowercase form);
    /// `REFUSED` outside our domain.
    fn resolve(
        &self,
        qname: &Name,
        lower: &LowerName,
        qclass: DNSClass,
        qtype: RecordType,
        max_payload: Option<u16>,
    ) -> Result<Outcome, ResponseCode> {
        if qclass != DNSClass::IN && qclass != DNSClass::ANY {
            return Err(ResponseCode::Refused);
        }
        if !self.domain.zone_of(lower) {
            return Err(ResponseCode::Refused);
        }
        let own = usize::from(qname.num_labels()).saturating_sub(self.domain_labels);
        if own > name::MAX_LABELS {
            return Ok(Outcome::NxDomain);
        }
        let mut labels: [&[u8]; name::MAX_LABELS] = [&[]; name::MAX_LABELS];
        for (slot, label) in labels.iter_mut().zip(qname.iter().take(own)) {
            *slot = label;
        }
        Ok(match name::parse(&labels[..own]) {
            ParsedName::Apex => match qtype {
                RecordType::SOA | RecordType::ANY => {
                    let mut soa = self.soa.clone();
                    soa.name = qname.clone();
                    Outcome::Records { answers: vec![soa], additionals: Vec::new() }
                }
                _ => Outcome::NoData,
            },
            ParsedName::Service(query) => self.answerer.service(&query, qtype, qname, max_payload),
            ParsedName::Address(ip) => self.answerer.address(ip, qtype, qname),
            ParsedName::Unknown => Outcome::NxDomain,
        })
    }
}

#[async_trait::async_trait]
impl RequestHandler for RegistryHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        // Answer EDNS with EDNS (as hickory's Catalog does), or every UDP answer is cut at 512 bytes.
        let response_edns = self.response_edns(request);
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.authoritative = true;
        let code = if request.edns.as_ref().is_some_and(|e| e.version() > 0) {
            Err(ResponseCode::BADVERS)
        } else if request.metadata.message_type != MessageType::Query || request.metadata.op_code != OpCode::Query {
            Err(ResponseCode::NotImp)
        } else {
            match request.request_info() {
                Ok(info) => {
                    let query = info.query.original();
                    let max_payload = match request.protocol() {
                        Protocol::Udp => Some(response_edns.as_ref().map_or(MIN_UDP_PAYLOAD, Edns::max_payload)),
                        _ => None,
                    };
                    self.resolve(query.name(), info.query.name(), query.query_class(), query.query_type(), max_payload)
                }
                // Not exactly one question.
                Err(_) => Err(ResponseCode::FormErr),
            }
        };
        let builder = MessageResponseBuilder::new(&request.queries, response_edns.as_ref());
        let sent = match code {
            Ok(Outcome::Records { answers, additionals }) => {
                let response = builder.build(metadata, answers.iter(), [].iter(), [].iter(), additionals.iter());
                response_handle.send_response(response).await
            }
            Ok(Outcome::Truncated) => {
                metadata.truncation = true;
                let response = builder.build(metadata, [].iter(), [].iter(), [].iter(), [].iter());
                response_handle.send_response(response).await
            }
            Ok(Outcome::NoData) => {
                let response = builder.build(metadata, [].iter(), [].iter(), std::iter::once(&self.soa), [].iter());
                response_handle.send_response(response).await
            }
            Ok(Outcome::NxDomain) => {
                metadata.response_code = ResponseCode::NXDomain;
                let response = builder.build(metadata, [].iter(), [].iter(), std::iter::once(&self.soa), [].iter());
                response_handle.send_response(response).await
            }
            Ok(Outcome::Refused) => {
                debug!(id = request.metadata.id, "refusing a query for a namespace closed to DNS");
                response_handle.send_response(builder.error_msg(&request.metadata, ResponseCode::Refused)).await
            }
            Err(code) => {
                debug!(%code, id = request.metadata.id, "refusing query");
                response_handle.send_response(builder.error_msg(&request.metadata, code)).await
            }
        };
        sent.unwrap_or_else(|error| {
            debug!(%error, "cannot send DNS response");
            let mut metadata = Metadata::response_from_request(&request.metadata);
            metadata.response_code = ResponseCode::ServFail;
            ResponseInfo::from(Header { metadata, counts: HeaderCounts::default() })
        })
    }
}
