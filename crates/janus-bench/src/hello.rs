//! `janus-bench hello`: the HTTP ceiling of this machine, a hyper server
//! answering `200 ok` to every request (as any registry answers a request at
//! best), on a multi-thread runtime. `bench/compare.sh` loads it with the
//! same requests as the registries, so their throughput can be read as a
//! share of what an HTTP/1.1 server on hyper can do here at all.

use std::convert::Infallible;
use std::net::SocketAddr;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

#[derive(Debug, Clone, clap::Args)]
pub(crate) struct HelloArgs {
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:18099")]
    addr: SocketAddr,
}

pub(crate) async fn run(args: &HelloArgs) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(args.addr).await.with_context(|| format!("binding {}", args.addr))?;
    eprintln!("hello world serving on {}", args.addr);
    serve(listener).await;
    Ok(())
}

/// `200 ok` to every request on every connection, keep-alive.
pub(crate) async fn serve(listener: tokio::net::TcpListener) {
    while let Ok((stream, _)) = listener.accept().await {
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service = service_fn(|_request| async {
                Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(b"ok"))))
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}
