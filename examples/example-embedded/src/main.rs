//! Run with `cargo run -p example-embedded`: a Janus node inside this program.

use janus_server::ServerConfig;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut config = ServerConfig::default();
    config.http.addr = ([127, 0, 0, 1], 0).into();
    config.dns.enabled = false;
    let data = std::env::temp_dir().join(format!("janus-example-{}", std::process::id()));
    config.node.data_dir = data.clone();
    let shutdown = CancellationToken::new();
    let server = janus_server::start(config, shutdown.clone()).await?;
    let addr = server.http_addr;
    println!("janus listening on {addr}");

    let form = "serviceName=greeter&ip=127.0.0.1&port=7000";
    let register = format!(
        "POST /nacos/v1/ns/instance HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{form}",
        form.len()
    );
    println!("register: {}", body_of(&exchange(addr, &register).await?));
    let list = format!(
        "GET /v1/namespaces/public/services/greeter/instances HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n"
    );
    println!("list: {}", body_of(&exchange(addr, &list).await?));

    shutdown.cancel();
    server.wait().await?;
    std::fs::remove_dir_all(&data)?;
    println!("stopped");
    Ok(())
}

/// Sends one request on a fresh connection and reads the whole answer.
async fn exchange(addr: std::net::SocketAddr, request: &str) -> anyhow::Result<String> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(request.as_bytes()).await?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await?;
    Ok(answer)
}

fn body_of(answer: &str) -> &str {
    answer.split_once("\r\n\r\n").map_or(answer, |(_, body)| body)
}
