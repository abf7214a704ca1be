//! The Nacos gRPC front end at the protocol level, with a raw client (tonic
//! over one HTTP/2 connection, as every Nacos SDK): the order of checks and
//! their codes, bad input, the bi-stream (setup, pushes and their
//! acknowledgements, client detection, slow clients), the connection cap and
//! shutdown. The real-SDK tests are in `tests/janus-e2e` (`grpc`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http::uri::PathAndQuery;
use janus_grpc::wire::proto::{Any, Metadata, Payload};
use janus_grpc::{BI_STREAM_PATH, UNARY_PATH};
use janus_server::{RunningServer, ServerConfig};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status, Streaming};
use tonic_prost::ProstCodec;

use crate::support::LOOPBACK_ONLY;

struct Server {
    server: RunningServer,
    shutdown: CancellationToken,
    _data: tempfile::TempDir,
}

async fn server(tweak: impl FnOnce(&mut ServerConfig)) -> Server {
    let data = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::default();
    config.http.addr = ([127, 0, 0, 1], 0).into();
    config.dns.enabled = false;
    config.node.data_dir = data.path().to_owned();
    config.health.probe_allow = vec![LOOPBACK_ONLY.to_owned()];
    tweak(&mut config);
    let shutdown = CancellationToken::new();
    let server = janus_server::start(config, shutdown.clone()).await.unwrap();
    Server { server, shutdown, _data: data }
}

impl Server {
    async fn client(&self) -> Client {
        self.client_with_window(None).await
    }

    /// A client whose HTTP/2 streams take at most `window` bytes it has not read.
    async fn client_with_window(&self, window: Option<u32>) -> Client {
        let addr = self.server.grpc_addr.expect("gRPC is served");
        let endpoint = Endpoint::from_shared(format!("http://{addr}")).unwrap().initial_stream_window_size(window);
        let channel = endpoint.connect().await.unwrap();
        Client { grpc: tonic::client::Grpc::new(channel), to_server: None, from_server: None }
    }

    /// The ports of a service's instances, over the registry (any front end sees the same).
    fn ports(&self, service: &str) -> Vec<u16> {
        let key = janus_nacos::input::service_key(None, None, service).unwrap();
        let node: &dyn janus_core::RegistryService = &*self.server.node;
        let mut ports: Vec<u16> = node.snapshot(&key).unwrap().instances.iter().map(|i| i.instance.key.port).collect();
        ports.sort_unstable();
        ports
    }

    /// The counters once a slow client was reset (within 3 s, else `failure`).
    async fn until_slow_reset(&self, failure: &str) -> std::sync::Arc<janus_grpc::GrpcStats> {
        let stats = self.server.grpc_stats.clone().unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        while stats.slow_resets.load(Ordering::Relaxed) == 0 {
            assert!(tokio::time::Instant::now() < deadline, "{failure}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stats
    }

    async fn until_ports(&self, service: &str, wanted: &[u16], within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        while self.ports(service) != wanted {
            assert!(tokio::time::Instant::now() < deadline, "{service}: {:?}, not {wanted:?}", self.ports(service));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn payload(kind: &str, body: &Value) -> Payload {
    Payload {
        metadata: Some(Metadata {
            r#type: kind.to_owned(),
            client_ip: "127.0.0.1".to_owned(),
            headers: HashMap::new(),
        }),
        body: Some(Any { type_url: String::new(), value: Bytes::from(serde_json::to_vec(body).unwrap()) }),
    }
}

fn read(payload: &Payload) -> (String, Value) {
    let kind = payload.metadata.as_ref().map(|m| m.r#type.clone()).unwrap_or_default();
    let body = payload.body.as_ref().map_or(Value::Null, |b| serde_json::from_slice(&b.value).unwrap());
    (kind, body)
}

struct Client {
    grpc: tonic::client::Grpc<Channel>,
    to_server: Option<mpsc::Sender<Payload>>,
    from_server: Option<Streaming<Payload>>,
}

impl Client {
    async fn raw(&mut self, payload: Payload) -> Result<Payload, Status> {
        self.grpc.ready().await.unwrap();
        let path = PathAndQuery::from_static(UNARY_PATH);
        let codec = ProstCodec::<Payload, Payload>::default();
        self.grpc.unary(tonic::Request::new(payload), path, codec).await.map(tonic::Response::into_inner)
    }

    async fn call(&mut self, kind: &str, body: Value) -> (String, Value) {
        read(&self.raw(payload(kind, &body)).await.unwrap())
    }

    /// Opens the bi-stream, without a setup.
    async fn open(&mut self) {
        let (sender, receiver) = mpsc::channel(16);
        self.grpc.ready().await.unwrap();
        let path = PathAndQuery::from_static(BI_STREAM_PATH);
        let codec = ProstCodec::<Payload, Payload>::default();
        let response = self.grpc.streaming(tonic::Request::new(ReceiverStream::new(receiver)), path, codec).await;
        self.from_server = Some(response.unwrap().into_inner());
        self.to_server = Some(sender);
    }

    async fn send(&self, kind: &str, body: Value) {
        self.to_server.as_ref().unwrap().send(payload(kind, &body)).await.unwrap();
    }

    async fn set_up(&mut self) {
        self.open().await;
        self.send("ConnectionSetupRequest", json!({"clientVersion": "raw-test", "labels": {"module": "naming"}})).await;
        // A health check waits for the setup: once it answers, the connection is set up.
        let (kind, body) = self.call("HealthCheckRequest", json!({"requestId": "h"})).await;
        assert_eq!((kind.as_str(), body["resultCode"].as_i64()), ("HealthCheckResponse", Some(200)), "{body}");
    }

    /// The next request the server sends on the bi-stream, if one comes within `within`.
    async fn next(&mut self, within: Duration) -> Option<(String, Value)> {
        let stream = self.from_server.as_mut().unwrap();
        match tokio::time::timeout(within, stream.message()).await {
            Ok(Ok(Some(payload))) => Some(read(&payload)),
            _ => None,
        }
    }

    async fn answer(&self, kind: &str, request: &Value) {
        let id = request["requestId"].clone();
        self.send(kind, json!({"requestId": id, "resultCode": 200, "errorCode": 0})).await;
    }

    async fn register(&mut self, service: &str, port: u16) -> Value {
        let body = json!({"requestId": "r", "namespace": "", "serviceName": service, "groupName": "",
            "type": "registerInstance", "instance": {"ip": "127.0.0.1", "port": port}});
        let (kind, body) = self.call("InstanceRequest", body).await;
        assert_eq!(kind, "InstanceResponse", "{body}");
        body
    }
}

fn error_code(answer: &(String, Value)) -> (&str, i64, i64) {
    (answer.0.as_str(), answer.1["resultCode"].as_i64().unwrap(), answer.1["errorCode"].as_i64().unwrap())
}

#[tokio::test]
async fn checks_run_in_nacos_order_with_nacos_codes() {
    let node = server(|c| c.grpc.setup_wait_ms = 100).await;
    let mut client = node.client().await;
    // Server check needs no setup and names the connection.
    let (kind, body) = client.call("ServerCheckRequest", json!({"requestId": "1"})).await;
    assert_eq!(kind, "ServerCheckResponse");
    assert_eq!((body["resultCode"].as_i64(), body["requestId"].as_str()), (Some(200), Some("1")));
    let connection_id = body["connectionId"].as_str().unwrap().to_owned();
    assert!(connection_id.contains("_127.0.0.1_"), "{connection_id}");
    // An unknown type is 302 before anything else; a request before setup is 301.
    let unknown = client.call("NoSuchRequest", json!({})).await;
    assert_eq!(error_code(&unknown), ("ErrorResponse", 500, 302), "{}", unknown.1);
    let early = client.call("HealthCheckRequest", json!({})).await;
    assert_eq!(error_code(&early), ("ErrorResponse", 500, 301), "{}", early.1);
    // A missing body or metadata is refused like an unknown type.
    let no_body = read(&client.raw(Payload { body: None, ..payload("InstanceRequest", &json!({})) }).await.unwrap());
    assert_eq!(error_code(&no_body), ("ErrorResponse", 500, 302));
    let nothing = read(&client.raw(Payload::default()).await.unwrap());
    assert_eq!(error_code(&nothing), ("ErrorResponse", 500, 302));

    // The Rust SDK's order: the bi-stream and its setup, then a health check
    // that may race the setup (it waits for it), then the server check.
    client.open().await;
    let racing = {
        let mut second = Client { grpc: client.grpc.clone(), to_server: None, from_server: None };
        tokio::spawn(async move { second.call("HealthCheckRequest", json!({"requestId": "race"})).await })
    };
    tokio::time::sleep(Duration::from_millis(30)).await;
    client.send("ConnectionSetupRequest", json!({"clientVersion": "raw", "labels": null, "abilities": {}})).await;
    let raced = racing.await.unwrap();
    assert_eq!(error_code(&raced), ("HealthCheckResponse", 200, 0), "{}", raced.1);
    assert_eq!(raced.1["requestId"], "race");
    let (_, again) = client.call("ServerCheckRequest", json!({})).await;
    assert_eq!(again["connectionId"], connection_id.as_str(), "one connection, one id");

    // A second bi-stream on the connection is refused; the first goes on.
    let mut second = Client { grpc: client.grpc.clone(), to_server: None, from_server: None };
    let (_sender, receiver) = mpsc::channel::<Payload>(1);
    second.grpc.ready().await.unwrap();
    let codec = ProstCodec::<Payload, Payload>::default();
    let refused = second
        .grpc
        .streaming(tonic::Request::new(ReceiverStream::new(receiver)), PathAndQuery::from_static(BI_STREAM_PATH), codec)
        .await;
    assert_eq!(refused.err().map(|s| s.code()), Some(Code::FailedPrecondition));
    assert_eq!(error_code(&client.call("HealthCheckRequest", json!({})).await), ("HealthCheckResponse", 200, 0));
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_the_connection_lives_on() {
    let node = server(|_| {}).await;
    let mut client = node.client().await;
    client.set_up().await;
    let instance =
        |body: Value| json!({"requestId": "b", "serviceName": "svc", "type": "registerInstance", "instance": body});
    let cases = [
        ("InstanceRequest", json!("not an object"), 502),
        (
            "InstanceRequest",
            json!({"serviceName": "svc", "type": "upsertInstance", "instance": {"ip": "127.0.0.1", "port": 1}}),
            400,
        ),
        ("InstanceRequest", instance(json!({"ip": "127.0.0.1", "port": 0})), 400),
        ("InstanceRequest", instance(json!({"ip": "127.0.0.1", "port": 70000})), 400),
        ("InstanceRequest", instance(json!({"ip": "127.0.0.1", "port": 80, "weight": -1})), 400),
        ("InstanceRequest", instance(json!({"ip": "not-an-ip", "port": 80})), 400),
        ("InstanceRequest", instance(json!({"ip": "0.0.0.0", "port": 80})), 400),
        ("InstanceRequest", json!({"type": "registerInstance", "instance": {"ip": "127.0.0.1", "port": 1}}), 400),
        ("ServiceQueryRequest", json!({"serviceName": "svc", "cluster": "bad cluster!"}), 400),
        ("BatchInstanceRequest", json!({"serviceName": "svc", "type": "batchRegisterInstance", "instances": 5}), 502),
    ];
    for (kind, body, code) in cases {
        let answer = client.call(kind, body.clone()).await;
        assert_eq!(answer.1["errorCode"].as_i64(), Some(code), "{kind} {body}: {}", answer.1);
        assert_ne!(answer.1["resultCode"].as_i64(), Some(200));
        assert!(!answer.1["message"].as_str().unwrap().is_empty(), "a failure says why: {}", answer.1);
    }
    assert!(node.ports("svc").is_empty());
    // The mode rule: a cp namespace takes no ephemeral instance, and says which namespace and mode.
    janus_core::RegistryService::create_namespace(&*node.server.node, cp_namespace("prod")).await.unwrap();
    let body = json!({"namespace": "prod", "serviceName": "db", "type": "registerInstance", "instance": {"ip": "127.0.0.1", "port": 1}});
    let mismatch = client.call("InstanceRequest", body).await;
    let message = mismatch.1["message"].as_str().unwrap();
    assert!(message.contains("prod") && message.contains("cp"), "{}", mismatch.1);
    // A namespace that does not exist: the typed failure with Nacos's code.
    let body = json!({"namespace": "nowhere", "serviceName": "x", "type": "registerInstance", "instance": {"ip": "127.0.0.1", "port": 1}});
    let missing = client.call("InstanceRequest", body).await;
    assert_eq!(error_code(&missing), ("InstanceResponse", 500, 22001), "{}", missing.1);
    assert_eq!(missing.1["type"], "registerInstance", "{}", missing.1);

    // Not a Payload at all: a gRPC status, and the server goes on.
    #[derive(Clone, PartialEq, prost::Message)]
    struct NotAPayload {
        #[prost(uint64, tag = "2")]
        metadata: u64,
    }
    let mut raw = client.grpc.clone();
    raw.ready().await.unwrap();
    let garbage = raw
        .unary(
            tonic::Request::new(NotAPayload { metadata: 7 }),
            PathAndQuery::from_static(UNARY_PATH),
            ProstCodec::<NotAPayload, Payload>::default(),
        )
        .await;
    assert_eq!(garbage.err().map(|s| s.code()), Some(Code::Internal));
    // Over the 10 MiB limit: refused by size (tonic's codec answers OUT_OF_RANGE).
    let huge = "x".repeat(11 * 1024 * 1024);
    let oversize = client.raw(payload("InstanceRequest", &json!({"serviceName": huge}))).await;
    let status = oversize.expect_err("an oversize message is refused");
    assert_eq!(status.code(), Code::OutOfRange, "{status}");
    assert!(status.message().contains("too large"), "{status}");
    // An unknown method.
    raw.ready().await.unwrap();
    let unknown = raw
        .unary(
            tonic::Request::new(Payload::default()),
            PathAndQuery::from_static("/RequestStream/requestStream"),
            ProstCodec::<Payload, Payload>::default(),
        )
        .await;
    assert_eq!(unknown.err().map(|s| s.code()), Some(Code::Unimplemented));

    let after = node.client().await.call("ServerCheckRequest", json!({})).await;
    assert_eq!(error_code(&after), ("ServerCheckResponse", 200, 0), "a fresh connection is served");
    let (kind, _) = client.call("HealthCheckRequest", json!({})).await;
    assert_eq!(kind, "HealthCheckResponse", "the same connection is served");
}

fn cp_namespace(id: &str) -> janus_core::model::NamespaceSpec {
    janus_core::model::NamespaceSpec::new(janus_core::NamespaceId::new(id).unwrap(), None, None, janus_core::Mode::Cp)
        .unwrap()
}

#[tokio::test]
async fn pushes_are_coalesced_acknowledged_and_resent_until_a_slow_client_is_reset() {
    let node = server(|c| {
        c.grpc.push_ack_timeout_ms = 200;
        c.grpc.max_push_timeouts = 2;
    })
    .await;
    let mut subscriber = node.client().await;
    subscriber.set_up().await;
    let subscribe = json!({"requestId": "s", "serviceName": "live", "subscribe": true, "clusters": ""});
    let (kind, body) = subscriber.call("SubscribeServiceRequest", subscribe).await;
    assert_eq!(kind, "SubscribeServiceResponse");
    assert_eq!(body["serviceInfo"]["hosts"], json!([]), "{body}");
    assert_eq!(body["serviceInfo"]["name"], "live");

    // Three writes at once are one push (coalesced), carrying all three.
    let mut writer = node.client().await;
    writer.set_up().await;
    let batch = json!({"serviceName": "live", "type": "batchRegisterInstance",
        "instances": [{"ip": "127.0.0.1", "port": 1}, {"ip": "127.0.0.1", "port": 2}, {"ip": "127.0.0.1", "port": 3}]});
    assert_eq!(writer.call("BatchInstanceRequest", batch).await.1["resultCode"], 200);
    let (kind, push) = subscriber.next(Duration::from_secs(2)).await.expect("a push");
    assert_eq!(kind, "NotifySubscriberRequest");
    assert_eq!(push["serviceInfo"]["hosts"].as_array().unwrap().len(), 3, "{push}");
    assert_eq!((push["serviceName"].as_str(), push["module"].as_str()), (Some("live"), Some("naming")));
    subscriber.answer("NotifySubscriberResponse", &push).await;
    // Acknowledged: nothing more until the next change.
    assert!(subscriber.next(Duration::from_millis(400)).await.is_none());

    // Not acknowledged: sent again after the ack timeout, then the client is reset.
    writer.register("live", 9).await;
    let (_, first) = subscriber.next(Duration::from_secs(2)).await.expect("a push");
    let (_, again) = subscriber.next(Duration::from_secs(2)).await.expect("the push again");
    assert_eq!(first["serviceInfo"]["hosts"], again["serviceInfo"]["hosts"]);
    assert_eq!(first["requestId"], again["requestId"], "sent again under its id: the revision it shows");
    let stats = node.until_slow_reset("the slow client was not reset").await;
    assert!(stats.push_timeouts.load(Ordering::Relaxed) >= 2);
    // The writer's connection is untouched.
    assert_eq!(node.ports("live"), [9]);
}

#[tokio::test]
async fn a_client_that_does_not_read_its_stream_is_reset() {
    // Acknowledgements are given all the time they could want: the reset can
    // only come from the stream's body waiting, unread, for `slow_client`.
    let node = server(|c| {
        c.grpc.slow_client_ms = 300;
        c.grpc.push_ack_timeout_ms = 60_000;
    })
    .await;
    let mut subscriber = node.client_with_window(Some(1024)).await;
    subscriber.set_up().await;
    let services: Vec<String> = (0..12).map(|n| format!("wide-{n}")).collect();
    for service in &services {
        let subscribe = json!({"requestId": "s", "serviceName": service, "subscribe": true, "clusters": ""});
        assert_eq!(subscriber.call("SubscribeServiceRequest", subscribe).await.0, "SubscribeServiceResponse");
    }

    // A push of each service, about 34 KB each, which the subscriber never
    // reads: past its 1 KiB window and h2's 256 KiB send buffer, the body is
    // no longer polled.
    let mut writer = node.client().await;
    writer.set_up().await;
    let instances: Vec<Value> = (1..=100).map(|port| json!({"ip": "127.0.0.1", "port": port})).collect();
    for service in &services {
        let batch = json!({"serviceName": service, "type": "batchRegisterInstance", "instances": instances});
        assert_eq!(writer.call("BatchInstanceRequest", batch).await.1["resultCode"], 200);
    }
    let stats = node.until_slow_reset("the client that does not read was not reset").await;
    assert_eq!(stats.push_timeouts.load(Ordering::Relaxed), 0, "reset for not reading, not for not acknowledging");
    // The writer's connection is untouched.
    assert_eq!(node.ports(&services[0]).len(), 100);
}

#[tokio::test]
async fn a_client_that_stops_answering_detection_loses_its_instances() {
    let node = server(|c| {
        c.grpc.detect_idle_ms = 300;
        c.grpc.detect_timeout_ms = 300;
    })
    .await;
    let mut answering = node.client().await;
    answering.set_up().await;
    answering.register("kept", 1).await;
    let mut silent = node.client().await;
    silent.set_up().await;
    silent.register("lost", 2).await;
    let stats = node.server.grpc_stats.clone().unwrap();
    // The answering client answers every detection for two seconds.
    let watch = tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        let mut answered = 0;
        while let Some((kind, request)) = answering.next(deadline - tokio::time::Instant::now()).await {
            assert_eq!(kind, "ClientDetectionRequest");
            answering.answer("ClientDetectionResponse", &request).await;
            answered += 1;
        }
        (answering, answered)
    });
    node.until_ports("lost", &[], Duration::from_secs(2)).await;
    let (_answering, answered) = watch.await.unwrap();
    assert!(answered >= 2, "detections answered: {answered}");
    assert_eq!(node.ports("kept"), [1], "an answering client keeps its instances");
    assert_eq!(stats.undetected.load(Ordering::Relaxed), 1);
    assert!(stats.released.load(Ordering::Relaxed) >= 1);
}

#[tokio::test]
async fn closing_a_connection_releases_its_instances_and_not_the_ones_taken_over() {
    let node = server(|_| {}).await;
    let mut first = node.client().await;
    first.set_up().await;
    first.register("moved", 1).await;
    first.register("stays", 2).await;
    // The client's redo on a new connection takes one instance over before the old one closes.
    let mut second = node.client().await;
    second.set_up().await;
    second.register("moved", 1).await;
    drop(first);
    node.until_ports("stays", &[], Duration::from_secs(3)).await;
    assert_eq!(node.ports("moved"), [1], "the late cleanup did not undo the redo");
    // Connection-bound instances run no lease.
    assert_eq!(janus_core::RegistryService::health(&*node.server.node).stats.leases, 0);
}

#[tokio::test]
async fn the_connection_cap_refuses_new_connections() {
    let node = server(|c| c.grpc.max_connections = 1).await;
    let mut held = node.client().await;
    held.set_up().await;
    let addr = node.server.grpc_addr.unwrap();
    let refused = async {
        let channel = Endpoint::from_shared(format!("http://{addr}")).unwrap().connect().await?;
        let mut client = Client { grpc: tonic::client::Grpc::new(channel), to_server: None, from_server: None };
        client.raw(payload("ServerCheckRequest", &json!({}))).await.map_err(Into::into)
    };
    let outcome: Result<Payload, Box<dyn std::error::Error + Send + Sync>> = refused.await;
    assert!(outcome.is_err(), "a connection past the cap is refused: {outcome:?}");
    // (The client's channel tries again once, and is refused again.)
    assert!(node.server.grpc_stats.as_ref().unwrap().refused.load(Ordering::Relaxed) >= 1);
    let (kind, _) = held.call("HealthCheckRequest", json!({})).await;
    assert_eq!(kind, "HealthCheckResponse", "the held connection is served");
}

#[tokio::test]
async fn shutdown_asks_clients_to_reconnect_elsewhere() {
    let node = server(|c| c.grpc.reset_grace_ms = 300).await;
    let mut client = node.client().await;
    client.set_up().await;
    client.register("svc", 1).await;
    node.shutdown.cancel();
    let (kind, request) = client.next(Duration::from_secs(3)).await.expect("a reset before the close");
    assert_eq!(kind, "ConnectResetRequest", "{request}");
    tokio::time::timeout(Duration::from_secs(5), node.server.wait()).await.unwrap().unwrap();
}

/// Writes need the token `s3cret`; reads are open.
struct TokenForWrites;

impl janus_grpc::Authorizer for TokenForWrites {
    fn authorize(
        &self,
        context: &janus_grpc::RequestContext,
        access: janus_grpc::Access,
        namespace: &janus_core::NamespaceId,
    ) -> Result<(), janus_core::RegistryError> {
        if access == janus_grpc::Access::Read || context.access_token.as_deref() == Some("s3cret") {
            return Ok(());
        }
        Err(janus_core::RegistryError::Forbidden(format!("writing to namespace '{namespace}' needs a token")))
    }
}

#[tokio::test]
async fn the_access_token_reaches_the_authorizer() {
    let data = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::default();
    config.node.data_dir = data.path().to_owned();
    let shutdown = CancellationToken::new();
    let app = janus_server::build(&config, &shutdown).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let front = janus_grpc::GrpcServer::new(listener, app.nacos.clone(), 1, janus_grpc::GrpcConfig::default())
        .with_authorizer(std::sync::Arc::new(TokenForWrites));
    let addr = front.local_addr().unwrap();
    let stop = shutdown.clone();
    tokio::spawn(front.serve(stop.cancelled_owned()));
    let channel = Endpoint::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();
    let mut client = Client { grpc: tonic::client::Grpc::new(channel), to_server: None, from_server: None };
    client.set_up().await;

    let register = json!({"requestId": "w", "serviceName": "guarded", "type": "registerInstance",
        "instance": {"ip": "127.0.0.1", "port": 1}});
    let refused = read(&client.raw(payload("InstanceRequest", &register)).await.unwrap());
    assert_eq!(error_code(&refused), ("InstanceResponse", 500, 403), "{}", refused.1);
    assert!(refused.1["message"].as_str().unwrap().contains("needs a token"), "{}", refused.1);
    let mut with_token = payload("InstanceRequest", &register);
    with_token.metadata.as_mut().unwrap().headers.insert("accessToken".to_owned(), "s3cret".to_owned());
    let allowed = read(&client.raw(with_token).await.unwrap());
    assert_eq!(error_code(&allowed), ("InstanceResponse", 200, 0), "{}", allowed.1);
    let query = client.call("ServiceQueryRequest", json!({"serviceName": "guarded"})).await;
    assert_eq!(query.1["serviceInfo"]["hosts"].as_array().map(Vec::len), Some(1), "reads need no token");
    shutdown.cancel();
}

/// With auth on, the node's own users decide: the bootstrap admin's token
/// (written to the data directory, owner-only) registers over gRPC, a
/// request without a token or with a token of another namespace gets 403.
#[tokio::test]
async fn with_auth_on_grpc_requests_need_a_token_of_the_namespace() {
    let node = server(|config| config.auth.enabled = Some(true)).await;
    let file = node._data.path().join(janus_server::access::BOOTSTRAP_TOKEN_FILE);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !file.exists() {
        assert!(tokio::time::Instant::now() < deadline, "no bootstrap token was written");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600, "owner-only");
    }
    let admin = std::fs::read_to_string(&file).unwrap().trim().to_owned();
    let mut client = node.client().await;
    client.set_up().await;
    let register = json!({"requestId": "w", "serviceName": "guarded", "type": "registerInstance",
        "instance": {"ip": "127.0.0.1", "port": 1}});
    let with = |token: &str| {
        let mut request = payload("InstanceRequest", &register);
        request.metadata.as_mut().unwrap().headers.insert("accessToken".to_owned(), token.to_owned());
        request
    };
    let missing = read(&client.raw(payload("InstanceRequest", &register)).await.unwrap());
    assert_eq!(error_code(&missing), ("InstanceResponse", 500, 403), "{}", missing.1);
    let bad = read(&client.raw(with("jns_0000000000000000_00")).await.unwrap());
    assert_eq!(error_code(&bad), ("InstanceResponse", 500, 403), "{}", bad.1);
    let allowed = read(&client.raw(with(&admin)).await.unwrap());
    assert_eq!(error_code(&allowed), ("InstanceResponse", 200, 0), "{}", allowed.1);
    // A user of another namespace may not write to public.
    use janus_auth::{AuthCommand, IssuedToken, Role, Scope, TokenKind, UserName};
    use janus_core::RegistryService as _;
    let other = UserName::parse("team-b").unwrap();
    let registry = &node.server.node;
    registry.auth_write(AuthCommand::CreateUser { name: other.clone(), password: None, at_unix_ms: 1 }).await.unwrap();
    let grant = AuthCommand::Grant { user: other.clone(), scope: Scope::Namespace("team-b".into()), role: Role::Admin };
    registry.auth_write(grant).await.unwrap();
    let token = IssuedToken::mint([3; 40]);
    registry
        .auth_write(AuthCommand::IssueToken {
            id: token.id.clone(),
            hash: token.hash.clone(),
            user: other,
            kind: TokenKind::Login,
            at_unix_ms: 1,
            expires_unix_ms: None,
        })
        .await
        .unwrap();
    let elsewhere = read(&client.raw(with(token.text())).await.unwrap());
    assert_eq!(error_code(&elsewhere), ("InstanceResponse", 500, 403), "{}", elsewhere.1);
    assert!(
        elsewhere.1["message"].as_str().unwrap().contains("team-b may not write in namespace public"),
        "{}",
        elsewhere.1
    );
    assert_eq!(node.ports("guarded"), vec![1]);
    node.shutdown.cancel();
}

/// Every gRPC request type that touches the registry × every kind of caller:
/// a read type needs `read` on the request's namespace, a write type `write`;
/// anything less is refused with 403 in the request's response type, a
/// missing or bad token as much as a missing grant.
#[tokio::test]
async fn every_grpc_request_type_checks_its_role_for_every_kind_of_caller() {
    use janus_auth::{AuthCommand, IssuedToken, Role, Scope, TokenKind, UserName};
    use janus_core::RegistryService as _;
    let node = server(|config| config.auth.enabled = Some(true)).await;
    let registry = node.server.node.clone();
    let team = janus_core::NamespaceId::new("team-a").unwrap();
    let spec = janus_core::model::NamespaceSpec::new(team, None, None, janus_core::Mode::Ap).unwrap();
    registry.create_namespace(spec).await.unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    let mut seed = 10u8;
    let mut token_of = async |name: &str, grant: Option<(Scope, Role)>, expires: Option<u64>| {
        seed += 1;
        let user = UserName::parse(name).unwrap();
        registry
            .auth_write(AuthCommand::CreateUser { name: user.clone(), password: None, at_unix_ms: 1 })
            .await
            .unwrap();
        if let Some((scope, role)) = grant {
            registry.auth_write(AuthCommand::Grant { user: user.clone(), scope, role }).await.unwrap();
        }
        let token = IssuedToken::mint([seed; 40]);
        let issue = AuthCommand::IssueToken {
            id: token.id.clone(),
            hash: token.hash.clone(),
            user,
            kind: TokenKind::Login,
            at_unix_ms: 1,
            expires_unix_ms: expires,
        };
        registry.auth_write(issue).await.unwrap();
        token
    };
    let team_a = || Scope::Namespace("team-a".into());
    let revoked = token_of("gone", Some((Scope::Global, Role::Admin)), None).await;
    let expired = token_of("late", Some((Scope::Global, Role::Admin)), Some(now + 300)).await;
    let callers: Vec<(&str, Option<String>, Option<Role>)> = vec![
        ("no token", None, None),
        ("malformed", Some("secret".to_owned()), None),
        ("revoked", Some(revoked.text().to_owned()), None),
        ("expired", Some(expired.text().to_owned()), None),
        (
            "admin elsewhere",
            Some(
                token_of("other", Some((Scope::Namespace("team-b".into()), Role::Admin)), None).await.text().to_owned(),
            ),
            None,
        ),
        (
            "reader",
            Some(token_of("reader", Some((team_a(), Role::Read)), None).await.text().to_owned()),
            Some(Role::Read),
        ),
        (
            "writer",
            Some(token_of("writer", Some((team_a(), Role::Write)), None).await.text().to_owned()),
            Some(Role::Write),
        ),
        (
            "admin",
            Some(token_of("root", Some((Scope::Global, Role::Admin)), None).await.text().to_owned()),
            Some(Role::Admin),
        ),
    ];
    registry.auth_write(AuthCommand::RevokeToken { id: revoked.id.clone() }).await.unwrap();
    // Past its expiry (the check reads the wall clock).
    tokio::time::sleep(Duration::from_millis(400)).await;

    let service = json!({"namespace": "team-a", "serviceName": "svc", "groupName": "DEFAULT_GROUP"});
    let with = |extra: Value| {
        let mut body = service.clone();
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };
    let instance = json!({"ip": "127.0.0.1", "port": 7000, "ephemeral": true});
    let requests: Vec<(&str, Value, Role)> = vec![
        ("InstanceRequest", with(json!({"type": "registerInstance", "instance": instance})), Role::Write),
        ("BatchInstanceRequest", with(json!({"type": "batchRegisterInstance", "instances": [instance]})), Role::Write),
        (
            "PersistentInstanceRequest",
            with(
                json!({"type": "registerInstance", "instance": {"ip": "127.0.0.1", "port": 7001, "ephemeral": false}}),
            ),
            Role::Write,
        ),
        ("ServiceQueryRequest", with(json!({"cluster": "", "healthyOnly": false})), Role::Read),
        ("SubscribeServiceRequest", with(json!({"subscribe": true, "clusters": ""})), Role::Read),
        (
            "ServiceListRequest",
            json!({"namespace": "team-a", "groupName": "DEFAULT_GROUP", "pageNo": 1, "pageSize": 10}),
            Role::Read,
        ),
    ];
    let mut client = node.client().await;
    client.set_up().await;
    for (kind, body, needed) in &requests {
        for (label, token, held) in &callers {
            let mut request = payload(kind, body);
            if let Some(token) = token {
                request.metadata.as_mut().unwrap().headers.insert("accessToken".to_owned(), token.clone());
            }
            let answer = read(&client.raw(request).await.unwrap());
            let allowed = held.is_some_and(|held| held >= *needed);
            let error = answer.1["errorCode"].as_i64().unwrap_or_default();
            if allowed {
                assert_ne!(error, 403, "{kind} as {label} was refused: {}", answer.1);
            } else {
                assert_eq!(
                    (answer.1["resultCode"].as_i64(), error),
                    (Some(500), 403),
                    "{kind} as {label}: {}",
                    answer.1
                );
                assert!(answer.0.ends_with("Response"), "{kind} as {label}: answered as {}", answer.0);
            }
        }
    }
    node.shutdown.cancel();
}

/// Operators see who subscribes to a service on this node (the console's
/// service page, `GET …/subscribers`), and a subscription ends with its
/// unsubscribe.
#[tokio::test]
async fn subscriptions_are_visible_to_operators() {
    let node = server(|_| {}).await;
    let key = janus_nacos::input::service_key(None, None, "watched").unwrap();
    let registry: &dyn janus_core::RegistryService = &*node.server.node;
    assert!(registry.subscribers(&key).is_empty());
    let mut subscriber = node.client().await;
    subscriber.set_up().await;
    let subscribe = json!({"requestId": "s", "serviceName": "watched", "subscribe": true, "clusters": "blue"});
    assert_eq!(subscriber.call("SubscribeServiceRequest", subscribe).await.0, "SubscribeServiceResponse");
    let seen = registry.subscribers(&key);
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!((seen[0].client_version.as_str(), seen[0].clusters.as_str()), ("raw-test", "blue"));
    assert!(seen[0].remote.starts_with("127.0.0.1:"), "{seen:?}");
    assert!(!seen[0].connection.is_empty());
    // Over HTTP too, and the instances the connection registered say what keeps them.
    let listed = http_get(node.server.http_addr, "/v1/namespaces/public/services/watched/subscribers").await;
    assert_eq!(listed["subscribers"][0]["client_version"], "raw-test", "{listed}");
    subscriber.register("watched", 5).await;
    let all = http_get(node.server.http_addr, "/v1/namespaces/public/services/watched/instances?all=true").await;
    let instance = &all["instances"][0];
    assert_eq!((instance["port"].as_u64(), instance["connected_to"].as_u64()), (Some(5), Some(1)), "{all}");
    assert!(instance.get("last_renew_ms").is_none() && instance.get("owner").is_none(), "{all}");
    let unsubscribe = json!({"requestId": "u", "serviceName": "watched", "subscribe": false, "clusters": "blue"});
    assert_eq!(subscriber.call("SubscribeServiceRequest", unsubscribe).await.0, "SubscribeServiceResponse");
    assert!(registry.subscribers(&key).is_empty());
    node.shutdown.cancel();
}

/// A GET over a fresh HTTP/1.1 connection, its body as JSON.
async fn http_get(addr: std::net::SocketAddr, path: &str) -> Value {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nhost: janus\r\nconnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let body = answer.split_once("\r\n\r\n").unwrap().1;
    serde_json::from_str(body).unwrap_or_else(|err| panic!("{err}: {body}"))
}
