//! Registers an instance and keeps it registered until Ctrl-C, then
//! deregisters it: the SDK's `Client::keep_registered` (heartbeats at the
//! interval the server asks for in an `ap` namespace, a new registration if
//! the lease was lost).
//!
//! ```sh
//! cargo run -p janus-client --example register -- 127.0.0.1:8848 public web 127.0.0.1 8080
//! ```

use std::time::Duration;

use janus_client::{Client, Options, ServiceRef, registration};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [registry, namespace, name, ip, port] = args.as_slice() else {
        eprintln!("usage: register <registry host:port>[,<more>] <namespace> <service> <ip> <port>");
        std::process::exit(64);
    };
    let client = Client::new(registry.split(','), Options::default())?;
    let service = ServiceRef::new(namespace.as_str(), name.as_str());
    let kept = client.keep_registered(&service, registration(ip.as_str(), port.parse()?)).await?;
    let mode = format!("{:?}", kept.status().mode).to_lowercase();
    println!("registered {ip}:{port} in {service} (a namespace in {mode} mode); Ctrl-C to deregister");
    let mut report = tokio::time::interval(Duration::from_secs(10));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = report.tick() => {
                let status = kept.status();
                println!(
                    "alive: {}, beats: {}, registrations: {}, every {:?}{}",
                    status.alive,
                    status.beats,
                    status.registrations,
                    status.beat_interval,
                    status.last_error.map(|e| format!(", last error: {e}")).unwrap_or_default()
                );
            }
        }
    }
    kept.deregister().await?;
    println!("deregistered");
    Ok(())
}
