//! Eureka REST: the shapes py-eureka-client and Spring clients read, and the
//! behaviour they rely on.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::TestApp;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::{Value, json};

/// The body py-eureka-client 0.13 sends (field for field).
fn registration(app: &str, id: &str, ip: &str, port: u16) -> Value {
    json!({"instance": {
        "instanceId": id, "hostName": ip, "app": app, "ipAddr": ip, "status": "UP", "overriddenstatus": "UNKNOWN",
        "port": {"$": port, "@enabled": "true"}, "securePort": {"$": 443, "@enabled": "false"}, "countryId": 1,
        "dataCenterInfo": {"@class": "com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo", "name": "MyOwn"},
        "leaseInfo": {"renewalIntervalInSecs": 2, "durationInSecs": 6, "registrationTimestamp": 0, "lastRenewalTimestamp": 0,
                      "evictionTimestamp": 0, "serviceUpTimestamp": 0},
        "metadata": {"management.port": "9091"},
        "homePageUrl": format!("http://{ip}:{port}/"), "statusPageUrl": format!("http://{ip}:{port}/info"),
        "healthCheckUrl": format!("http://{ip}:{port}/health"), "secureHealthCheckUrl": "",
        "vipAddress": app.to_lowercase(), "secureVipAddress": app.to_lowercase(),
        "lastUpdatedTimestamp": "1700000000000", "lastDirtyTimestamp": "1700000000000", "isCoordinatingDiscoveryServer": "false"
    }})
}

async fn register(app: &TestApp, name: &str, id: &str, ip: &str, port: u16) {
    let reply = app.post(&format!("/eureka/apps/{name}"), registration(name, id, ip, port)).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text());
}

async fn get_json(app: &TestApp, uri: &str) -> (StatusCode, Value) {
    let request = Request::get(uri).header(header::ACCEPT, "application/json").body(Body::empty()).unwrap();
    let reply = app.send(request).await;
    (reply.status, serde_json::from_slice(&reply.body).unwrap_or_default())
}

#[tokio::test]
async fn register_and_read_back_in_json_and_xml() {
    let app = TestApp::new().await;
    register(&app, "PY-SERVICE", "host-1:py-service:9090", "127.0.0.1", 9090).await;
    let (status, apps) = get_json(&app, "/eureka/apps").await;
    assert_eq!(status, StatusCode::OK);
    let root = &apps["applications"];
    assert_eq!(root["apps__hashcode"], "UP_1_");
    assert!(root["versions__delta"].as_str().unwrap().parse::<u64>().is_ok());
    let instance = &root["application"][0]["instance"][0];
    assert_eq!(root["application"][0]["name"], "PY-SERVICE");
    assert_eq!(instance["instanceId"], "host-1:py-service:9090");
    assert_eq!(instance["port"], json!({"$": 9090, "@enabled": "true"}));
    assert_eq!(instance["securePort"], json!({"$": 443, "@enabled": "false"}));
    assert_eq!(instance["status"], "UP");
    assert_eq!(instance["leaseInfo"]["renewalIntervalInSecs"], 2);
    assert_eq!(instance["leaseInfo"]["durationInSecs"], 6);
    assert_eq!(instance["metadata"], json!({"management.port": "9091"}), "eureka.* and preserved.* keys stay internal");
    assert_eq!(instance["dataCenterInfo"]["@class"], "com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo");
    assert_eq!(instance["vipAddress"], "py-service");
    assert_eq!(instance["homePageUrl"], "http://127.0.0.1:9090/");

    // XML is the default, in Eureka's element and attribute layout.
    let xml = app.get("/eureka/apps").await;
    assert_eq!(xml.headers["content-type"], "application/xml");
    let text = xml.text();
    for needle in [
        "<applications>",
        "<apps__hashcode>UP_1_</apps__hashcode>",
        "<name>PY-SERVICE</name>",
        r#"<port enabled="true">9090</port>"#,
        r#"<dataCenterInfo class="com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo">"#,
        "<management.port>9091</management.port>",
    ] {
        assert!(text.contains(needle), "{needle} missing from {text}");
    }

    let (status, one) = get_json(&app, "/eureka/apps/py-service").await;
    assert_eq!(
        (status, one["application"]["name"].as_str()),
        (StatusCode::OK, Some("PY-SERVICE")),
        "app names match without case"
    );
    let (status, one) = get_json(&app, "/eureka/apps/PY-SERVICE/host-1:py-service:9090").await;
    assert_eq!((status, one["instance"]["ipAddr"].as_str()), (StatusCode::OK, Some("127.0.0.1")));
    let (status, by_id) = get_json(&app, "/eureka/instances/host-1:py-service:9090").await;
    assert_eq!((status, by_id["instance"]["app"].as_str()), (StatusCode::OK, Some("PY-SERVICE")));
    let (_, vips) = get_json(&app, "/eureka/vips/py-service").await;
    assert_eq!(vips["applications"]["application"].as_array().unwrap().len(), 1);
    let (_, none) = get_json(&app, "/eureka/svips/other").await;
    assert_eq!(none["applications"]["application"].as_array().unwrap().len(), 0);
    let (_, delta) = get_json(&app, "/eureka/apps/delta").await;
    assert_eq!(
        (
            delta["applications"]["apps__hashcode"].as_str(),
            delta["applications"]["application"].as_array().map(Vec::len)
        ),
        (Some("UP_1_"), Some(0))
    );
    assert_eq!(get_json(&app, "/eureka/apps/NOBODY").await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn xml_registrations_are_accepted() {
    let app = TestApp::new().await;
    let body = r#"<instance><instanceId>x1</instanceId><hostName>web-1</hostName><app>WEB</app><ipAddr>10.0.0.7</ipAddr>
        <status>UP</status><port enabled="true">8080</port><securePort enabled="false">443</securePort>
        <dataCenterInfo class="com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo"><name>MyOwn</name></dataCenterInfo>
        <leaseInfo><renewalIntervalInSecs>30</renewalIntervalInSecs><durationInSecs>90</durationInSecs></leaseInfo>
        <metadata><zone>a &amp; b</zone></metadata><vipAddress>web</vipAddress></instance>"#;
    let reply = app.raw(Method::POST, "/eureka/apps/WEB", "application/xml", body).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text());
    let (_, got) = get_json(&app, "/eureka/apps/WEB/x1").await;
    assert_eq!(got["instance"]["hostName"], "web-1");
    assert_eq!(got["instance"]["metadata"]["zone"], "a & b");
    assert_eq!(got["instance"]["leaseInfo"]["durationInSecs"], 90);
}

#[tokio::test]
async fn renew_cancel_status_and_metadata() {
    let app = TestApp::new().await;
    register(&app, "WEB", "w1", "10.0.0.1", 80).await;
    let renew = app.call(Method::PUT, "/eureka/apps/WEB/w1?status=UP&lastDirtyTimestamp=1", None).await;
    assert_eq!(renew.status, StatusCode::OK);
    let unknown = app.call(Method::PUT, "/eureka/apps/WEB/w9?status=UP&lastDirtyTimestamp=1", None).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "404 makes the client register again");

    let down =
        app.call(Method::PUT, "/eureka/apps/WEB/w1/status?value=OUT_OF_SERVICE&lastDirtyTimestamp=1", None).await;
    assert_eq!(down.status, StatusCode::OK);
    let (_, got) = get_json(&app, "/eureka/apps/WEB/w1").await;
    assert_eq!(
        (got["instance"]["status"].as_str(), got["instance"]["overriddenStatus"].as_str()),
        (Some("OUT_OF_SERVICE"), Some("OUT_OF_SERVICE"))
    );
    let nacos = app.get("/nacos/v1/ns/instance/list?serviceName=web").await.json();
    assert_eq!(nacos["hosts"].as_array().unwrap().len(), 0, "out of service instances take no traffic");
    let up = app.call(Method::DELETE, "/eureka/apps/WEB/w1/status?lastDirtyTimestamp=1", None).await;
    assert_eq!(up.status, StatusCode::OK);
    let (_, got) = get_json(&app, "/eureka/apps/WEB/w1").await;
    assert_eq!(got["instance"]["status"], "UP");
    assert_eq!(
        app.call(Method::PUT, "/eureka/apps/WEB/w1/status?value=SIDEWAYS", None).await.status,
        StatusCode::BAD_REQUEST
    );

    let meta = app.call(Method::PUT, "/eureka/apps/WEB/w1/metadata?version=2", None).await;
    assert_eq!(meta.status, StatusCode::OK);
    let (_, got) = get_json(&app, "/eureka/apps/WEB/w1").await;
    assert_eq!(got["instance"]["metadata"]["version"], "2");
    assert_eq!(
        app.call(Method::PUT, "/eureka/apps/WEB/w1/metadata?eureka.status=UP", None).await.status,
        StatusCode::BAD_REQUEST
    );

    assert_eq!(app.call(Method::DELETE, "/eureka/apps/WEB/w1", None).await.status, StatusCode::OK);
    assert_eq!(app.call(Method::DELETE, "/eureka/apps/WEB/w1", None).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn nacos_and_eureka_clients_see_each_other() {
    let app = TestApp::new().await;
    register(&app, "PY-SERVICE", "py-1", "10.0.0.3", 9090).await;
    let nacos = app.get("/nacos/v1/ns/instance/list?serviceName=py-service").await.json();
    let host = &nacos["hosts"][0];
    assert_eq!((host["ip"].as_str(), host["port"].as_u64()), (Some("10.0.0.3"), Some(9090)));
    assert_eq!(
        (host["instanceHeartBeatInterval"].as_u64(), host["ipDeleteTimeout"].as_u64()),
        (Some(2000), Some(6000)),
        "lease from leaseInfo"
    );
    assert_eq!(host["instanceId"], "py-1");

    app.nacos(Method::POST, "/nacos/v1/ns/instance", &[("serviceName", "orders"), ("ip", "10.0.0.4"), ("port", "80")])
        .await;
    let (_, apps) = get_json(&app, "/eureka/apps").await;
    let names: Vec<&str> =
        apps["applications"]["application"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["ORDERS", "PY-SERVICE"]);
    let orders = &apps["applications"]["application"][0]["instance"][0];
    assert_eq!((orders["ipAddr"].as_str(), orders["status"].as_str()), (Some("10.0.0.4"), Some("UP")));
    assert_eq!(orders["port"]["$"], 80);
}

#[tokio::test]
async fn gzip_when_asked_and_bad_registrations_refused() {
    let app = TestApp::new().await;
    register(&app, "WEB", "w1", "10.0.0.1", 80).await;
    let request = Request::get("/eureka/apps").header(header::ACCEPT_ENCODING, "gzip").body(Body::empty()).unwrap();
    let reply = app.send(request).await;
    assert_eq!(reply.headers.get("content-encoding").map(|v| v.to_str().unwrap()), Some("gzip"));
    assert_eq!(&reply.body[..2], &[0x1f, 0x8b], "a gzip stream");

    let mut missing = registration("WEB", "w2", "10.0.0.2", 80);
    missing["instance"].as_object_mut().unwrap().remove("instanceId");
    let reply = app.post("/eureka/apps/WEB", missing).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.text().contains("instanceId"));
    let mismatch = app.post("/eureka/apps/OTHER", registration("WEB", "w3", "10.0.0.3", 80)).await;
    assert_eq!(mismatch.status, StatusCode::BAD_REQUEST);
    let broken = app.raw(Method::POST, "/eureka/apps/WEB", "application/xml", "<instance><instanceId>").await;
    assert_eq!(broken.status, StatusCode::BAD_REQUEST);
    let bad_ip = app.post("/eureka/apps/WEB", registration("WEB", "w4", "not-an-ip", 80)).await;
    assert_eq!(bad_ip.status, StatusCode::BAD_REQUEST);
}

fn epoch_ms() -> u64 {
    u64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()).unwrap()
}

#[tokio::test]
async fn lease_timestamps_come_from_the_lease() {
    let app = TestApp::new().await;
    let before = epoch_ms();
    register(&app, "WEB", "web-1", "127.0.0.1", 8080).await;
    let after = epoch_ms();
    let (_, read) = get_json(&app, "/eureka/apps/WEB/web-1").await;
    let lease = read["instance"]["leaseInfo"].clone();
    let registered = lease["registrationTimestamp"].as_u64().unwrap();
    // The registry's clock and the wall clock are read a moment apart: allow a little slack.
    assert!(registered + 50 >= before && registered <= after + 50, "{before} ≤ {registered} ≤ {after}");
    assert_eq!(lease["lastRenewalTimestamp"], lease["registrationTimestamp"], "not renewed yet: {lease}");
    assert_eq!(lease["serviceUpTimestamp"], lease["registrationTimestamp"], "registered UP: {lease}");
    assert_eq!(lease["evictionTimestamp"], 0);
    assert_eq!(read["instance"]["lastUpdatedTimestamp"], registered.to_string());

    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let renew = app.call(Method::PUT, "/eureka/apps/WEB/web-1", None).await;
    assert_eq!(renew.status, StatusCode::OK);
    let (_, read) = get_json(&app, "/eureka/apps").await;
    let lease = &read["applications"]["application"][0]["instance"][0]["leaseInfo"];
    assert!(lease["registrationTimestamp"].as_u64().unwrap().abs_diff(registered) <= 50, "{lease}");
    assert!(lease["lastRenewalTimestamp"].as_u64().unwrap() >= registered + 60, "renewed: {lease}");

    // An instance that registered STARTING has not been up yet.
    let mut starting = registration("JOB", "job-1", "127.0.0.1", 9000);
    starting["instance"]["status"] = json!("STARTING");
    let reply = app.post("/eureka/apps/JOB", starting).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    let (_, read) = get_json(&app, "/eureka/apps/JOB/job-1").await;
    assert_eq!(read["instance"]["leaseInfo"]["serviceUpTimestamp"], 0);
    assert!(read["instance"]["leaseInfo"]["registrationTimestamp"].as_u64().unwrap() >= registered);
}

#[tokio::test]
async fn registration_needs_a_unicast_ip_addr() {
    let app = TestApp::new().await;
    for ip in ["0.0.0.0", "255.255.255.255", "224.0.0.251", "::"] {
        let reply = app.post("/eureka/apps/WEB", registration("WEB", "web-1", ip, 8080)).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{ip}");
        let message = reply.json()["message"].as_str().unwrap().to_owned();
        assert!(message.starts_with("invalid ipAddr: must be a unicast address"), "{ip}: {message}");
    }
    let reply = app.post("/eureka/apps/WEB", registration("WEB", "web-1", "web.example", 8080)).await;
    assert!(reply.json()["message"].as_str().unwrap().starts_with("invalid ipAddr: must be an IPv4 or IPv6 address"));
}
