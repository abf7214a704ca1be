//! A Nacos SDK client in its own process, for tests that kill or stop a
//! client (the Rust `nacos-sdk` has no shutdown: only a process ending
//! closes its connection).
//!
//! Usage: `nacos-sdk-client <http addr> <grpc port> <namespace> <service> <ip> <port>`.
//! Registers one ephemeral instance over gRPC, prints `ready`, then waits
//! until it is killed.

use std::time::Duration;

use nacos_sdk::api::naming::{NamingServiceBuilder, ServiceInstance};
use nacos_sdk::api::props::ClientProps;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [http, grpc_port, namespace, service, ip, port] = args.as_slice() else {
        eprintln!("usage: nacos-sdk-client <http addr> <grpc port> <namespace> <service> <ip> <port>");
        std::process::exit(2);
    };
    let cache = std::env::temp_dir().join(format!("nacos-sdk-client-{}", std::process::id()));
    let props = ClientProps::new()
        .server_addr(http.clone())
        .remote_grpc_port(grpc_port.parse().unwrap_or_else(|_| exit("grpc port is not a number")))
        .namespace(namespace.clone())
        .env_first(false)
        .naming_load_cache_at_start(false)
        .cache_dir(cache);
    let naming = NamingServiceBuilder::new(props).build().await.unwrap_or_else(|e| exit(&format!("build: {e}")));
    let instance = ServiceInstance {
        ip: ip.clone(),
        port: port.parse().unwrap_or_else(|_| exit("port is not a number")),
        ..ServiceInstance::default()
    };
    naming.register_instance(service.clone(), None, instance).await.unwrap_or_else(|e| exit(&format!("register: {e}")));
    println!("ready");
    loop {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
}

fn exit(message: &str) -> ! {
    eprintln!("nacos-sdk-client: {message}");
    std::process::exit(1);
}
