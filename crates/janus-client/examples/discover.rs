//! Discovers a service and calls "it" once a second: each call picks an
//! instance (weighted random by default, from memory), and reports the
//! outcome so that instances that keep failing are ejected. Here a call is
//! a TCP connect to the instance.
//!
//! ```sh
//! cargo run -p janus-client --example discover -- 127.0.0.1:8848 public web
//! ```
//!
//! With `JANUS_FAILOVER_DIR` unset the failover cache is `./janus-failover`:
//! stop the registry and start the example again to see it serve from there.

use std::time::Duration;

use janus_client::discovery::{Discovery, DiscoveryConfig};
use janus_client::{Client, Options, ServiceRef};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(registry), Some(namespace), Some(name)) = (args.next(), args.next(), args.next()) else {
        eprintln!("usage: discover <registry host:port>[,<more>] <namespace> <service>");
        std::process::exit(64);
    };
    let client = Client::new(registry.split(','), Options::default())?;
    let failover_dir = std::env::var_os("JANUS_FAILOVER_DIR").map_or_else(|| "janus-failover".into(), Into::into);
    let discovery =
        Discovery::new(client, DiscoveryConfig { failover_dir: Some(failover_dir), ..DiscoveryConfig::default() });
    let service = discovery.service(&ServiceRef::new(namespace, name)).await;
    loop {
        let status = service.status();
        match service.pick() {
            Some(pick) => {
                let (ip, port) = (pick.instance().ip.clone(), pick.instance().port);
                let call =
                    tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect((ip.as_str(), port)));
                let ok = matches!(call.await, Ok(Ok(_)));
                println!(
                    "{ip}:{port} {} (list {:?} at revision {})",
                    if ok { "answered" } else { "failed" },
                    status.source,
                    status.revision
                );
                pick.finish(ok);
            }
            None => println!("no instance to call ({:?}; {})", status.source, status.last_error.unwrap_or_default()),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
