//! A scripted HTTP/1.1 server on loopback for the client's tests: it
//! answers each request as its script says (or hangs, or hangs up),
//! remembers what it received and counts the connections it accepted.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A request as the server received it.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub(crate) method: String,
    /// Path and query.
    pub(crate) target: String,
    /// Header names in lower case.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Seen {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }
}

/// What the server does with a request.
#[derive(Debug, Clone)]
pub(crate) enum Reply {
    /// Answers after `delay`.
    Answer { status: u16, body: String, index: Option<u64>, delay: Duration },
    /// Never answers (the connection stays open).
    Hang,
    /// Closes the connection without answering.
    HangUp,
}

impl Reply {
    pub(crate) fn json(status: u16, body: &str) -> Self {
        Self::Answer { status, body: body.to_owned(), index: None, delay: Duration::ZERO }
    }

    pub(crate) fn with_index(self, index: u64) -> Self {
        match self {
            Self::Answer { status, body, delay, .. } => Self::Answer { status, body, index: Some(index), delay },
            other => other,
        }
    }

    pub(crate) fn after(self, delay: Duration) -> Self {
        match self {
            Self::Answer { status, body, index, .. } => Self::Answer { status, body, index, delay },
            other => other,
        }
    }
}

type Script = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;

pub(crate) struct FakeServer {
    pub(crate) addr: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    connections: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl FakeServer {
    /// Serves on a free loopback port, answering as `script` says.
    pub(crate) async fn start(script: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Self {
        Self::start_on("127.0.0.1:0", script).await
    }

    /// Serves on `addr` (a server coming back where one was), answering as `script` says.
    pub(crate) async fn start_on(addr: &str, script: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let script: Script = Arc::new(script);
        let task = {
            let (seen, connections) = (seen.clone(), connections.clone());
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    connections.fetch_add(1, Ordering::SeqCst);
                    tokio::spawn(serve(stream, script.clone(), seen.clone()));
                }
            })
        };
        Self { addr, seen, connections, task }
    }

    /// Always answers `status` with `body`.
    pub(crate) async fn answering(status: u16, body: &'static str) -> Self {
        Self::start(move |_| Reply::json(status, body)).await
    }

    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub(crate) fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `127.0.0.1:port` where nothing listens (bound, then released).
pub(crate) fn closed_addr() -> String {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string()
}

async fn serve(mut stream: TcpStream, script: Script, seen: Arc<Mutex<Vec<Seen>>>) {
    let mut buffer = Vec::new();
    loop {
        let Some(request) = read_request(&mut stream, &mut buffer).await else { return };
        seen.lock().unwrap().push(request.clone());
        match script(&request) {
            Reply::Answer { status, body, index, delay } => {
                tokio::time::sleep(delay).await;
                let index = index.map(|i| format!("x-janus-index: {i}\r\n")).unwrap_or_default();
                let answer = format!(
                    "HTTP/1.1 {status} Scripted\r\ncontent-type: application/json\r\n{index}content-length: {}\r\n\r\n{body}",
                    body.len()
                );
                if stream.write_all(answer.as_bytes()).await.is_err() {
                    return;
                }
            }
            Reply::Hang => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                return;
            }
            Reply::HangUp => return,
        }
    }
}

/// The next request on the connection (head and `content-length` body).
async fn read_request(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<Seen> {
    let end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
    buffer.drain(..end + 4);
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, target) = (first.next()?.to_owned(), first.next()?.to_owned());
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(key, value)| (key.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let length: usize =
        headers.iter().find(|(key, _)| key == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    while buffer.len() < length {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
        buffer.extend_from_slice(&chunk[..n]);
    }
    let body = buffer.drain(..length).collect();
    Some(Seen { method, target, headers, body })
}
