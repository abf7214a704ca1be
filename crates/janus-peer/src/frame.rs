//! The peer stream's frames, for both sides (`docs/consistency.md`,
//! "Cluster traffic").
//!
//! A node that sends to a peer opens one TCP connection to the peer's cluster
//! address and turns it into a stream of frames with an HTTP/1.1 upgrade
//! (`POST /internal/stream`, `Upgrade: janus-peer/1`, the cluster secret as
//! for every call; `101 Switching Protocols`). Calls then travel as frames,
//! many in flight at once, each answered by id, in any order:
//!
//! - a call: `len: u32` (bytes after it), `id: u64`, `channel: u8` (0 Raft,
//!   1 Distro), `kind_len: u8`, the kind's name, the message;
//! - a reply: `len: u32`, `id: u64`, `status: u8` (0 the reply follows; 1–4
//!   a refusal as malformed, forbidden, misdirected, unavailable, its reason
//!   follows).
//!
//! Integers are little-endian.

use janus_core::transport::{Channel, Refusal, RefusalKind};
use tokio::io::{AsyncRead, AsyncReadExt as _};

/// The path a stream is opened on.
pub(crate) const STREAM_PATH: &str = "/internal/stream";

/// The protocol named in the `Upgrade` header.
pub(crate) const PROTOCOL: &str = "janus-peer/1";

/// Bytes of a call's header after its length: id, channel, kind length.
const CALL_HEADER: usize = 8 + 1 + 1;

/// Bytes of a reply's header after its length: id, status.
const REPLY_HEADER: usize = 8 + 1;

fn channel_byte(channel: Channel) -> u8 {
    match channel {
        Channel::Raft => 0,
        Channel::Distro => 1,
    }
}

fn channel_of(byte: u8) -> Option<Channel> {
    Channel::ALL.into_iter().find(|channel| channel_byte(*channel) == byte)
}

fn status_byte(kind: RefusalKind) -> u8 {
    match kind {
        RefusalKind::Malformed => 1,
        RefusalKind::Forbidden => 2,
        RefusalKind::Misdirected => 3,
        RefusalKind::Unavailable => 4,
    }
}

fn refusal_kind(status: u8) -> RefusalKind {
    RefusalKind::ALL.into_iter().find(|kind| status_byte(*kind) == status).unwrap_or(RefusalKind::Malformed)
}

fn length(len: usize) -> std::io::Result<[u8; 4]> {
    u32::try_from(len)
        .map(u32::to_le_bytes)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "a peer frame over 4 GiB"))
}

/// The frame of call `id`.
pub(crate) fn call(id: u64, channel: Channel, kind: &str, body: &[u8]) -> std::io::Result<Vec<u8>> {
    let kind = kind.as_bytes();
    let kind_len = u8::try_from(kind.len())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "a message kind over 255 bytes"))?;
    let len = CALL_HEADER + kind.len() + body.len();
    let mut frame = Vec::with_capacity(4 + len);
    frame.extend_from_slice(&length(len)?);
    frame.extend_from_slice(&id.to_le_bytes());
    frame.push(channel_byte(channel));
    frame.push(kind_len);
    frame.extend_from_slice(kind);
    frame.extend_from_slice(body);
    Ok(frame)
}

/// The frame answering call `id` with `outcome`.
pub(crate) fn reply(id: u64, outcome: &Result<Vec<u8>, Refusal>) -> std::io::Result<Vec<u8>> {
    let (status, body) = match outcome {
        Ok(reply) => (0, reply.as_slice()),
        Err(refusal) => (status_byte(refusal.kind), refusal.reason.as_bytes()),
    };
    let mut frame = Vec::with_capacity(4 + REPLY_HEADER + body.len());
    frame.extend_from_slice(&length(REPLY_HEADER + body.len())?);
    frame.extend_from_slice(&id.to_le_bytes());
    frame.push(status);
    frame.extend_from_slice(body);
    Ok(frame)
}

/// A call as the serving side reads it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Call {
    pub(crate) id: u64,
    /// `None` for a channel this node does not know.
    pub(crate) channel: Option<Channel>,
    pub(crate) kind: String,
    /// The message, or its size when it was over the limit (and skipped).
    pub(crate) body: Result<Vec<u8>, usize>,
}

/// A reply as the calling side reads it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Reply {
    pub(crate) id: u64,
    /// The reply or the refusal, or the reply's size when it was over the
    /// limit (and skipped).
    pub(crate) outcome: Result<Result<Vec<u8>, Refusal>, usize>,
}

fn malformed(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, format!("a malformed peer frame: {what}"))
}

/// Reads `len` bytes, or skips them (returning `Err(len)`) when there are
/// more than `limit`.
async fn body(
    reader: &mut (impl AsyncRead + Unpin),
    len: usize,
    limit: usize,
) -> std::io::Result<Result<Vec<u8>, usize>> {
    if len > limit {
        let skipped = tokio::io::copy(&mut reader.take(len as u64), &mut tokio::io::sink()).await?;
        if skipped < len as u64 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        return Ok(Err(len));
    }
    let mut bytes = vec![0; len];
    reader.read_exact(&mut bytes).await?;
    Ok(Ok(bytes))
}

/// A frame's length; `None` if the stream ends before it (between frames).
async fn read_length(reader: &mut (impl AsyncRead + Unpin)) -> std::io::Result<Option<usize>> {
    let mut len = [0; 4];
    if reader.read(&mut len[..1]).await? == 0 {
        return Ok(None);
    }
    reader.read_exact(&mut len[1..]).await?;
    Ok(Some(u32::from_le_bytes(len) as usize))
}

/// The next call; `None` at the end of the stream.
pub(crate) async fn read_call(reader: &mut (impl AsyncRead + Unpin), limit: usize) -> std::io::Result<Option<Call>> {
    let Some(len) = read_length(reader).await? else { return Ok(None) };
    let mut header = [0; CALL_HEADER];
    if len < CALL_HEADER {
        return Err(malformed("a call shorter than its header"));
    }
    reader.read_exact(&mut header).await?;
    let id = u64::from_le_bytes(header[..8].try_into().map_err(|_| malformed("id"))?);
    let kind_len = usize::from(header[9]);
    let rest = len - CALL_HEADER;
    if kind_len > rest {
        return Err(malformed("a kind longer than the call"));
    }
    let mut kind = vec![0; kind_len];
    reader.read_exact(&mut kind).await?;
    let kind = String::from_utf8(kind).map_err(|_| malformed("a kind that is not UTF-8"))?;
    let body = body(reader, rest - kind_len, limit).await?;
    Ok(Some(Call { id, channel: channel_of(header[8]), kind, body }))
}

/// The next reply; `None` at the end of the stream.
pub(crate) async fn read_reply(reader: &mut (impl AsyncRead + Unpin), limit: usize) -> std::io::Result<Option<Reply>> {
    let Some(len) = read_length(reader).await? else { return Ok(None) };
    if len < REPLY_HEADER {
        return Err(malformed("a reply shorter than its header"));
    }
    let mut header = [0; REPLY_HEADER];
    reader.read_exact(&mut header).await?;
    let id = u64::from_le_bytes(header[..8].try_into().map_err(|_| malformed("id"))?);
    let status = header[8];
    // A refusal's reason is short; only a reply is held to the limit.
    let limit = if status == 0 { limit } else { limit.max(64 << 10) };
    let outcome = body(reader, len - REPLY_HEADER, limit).await?.map(|bytes| {
        if status == 0 {
            Ok(bytes)
        } else {
            Err(Refusal::new(refusal_kind(status), String::from_utf8_lossy(&bytes).into_owned()))
        }
    });
    Ok(Some(Reply { id, outcome }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test]
    async fn calls_and_replies_read_back_as_written() {
        let mut wire = call(7, Channel::Distro, "sync", b"hello").unwrap();
        wire.extend(call(8, Channel::Raft, "append", &[]).unwrap());
        let mut reader = wire.as_slice();
        let first = read_call(&mut reader, 1024).await.unwrap().unwrap();
        assert_eq!(
            first,
            Call { id: 7, channel: Some(Channel::Distro), kind: "sync".into(), body: Ok(b"hello".to_vec()) }
        );
        let second = read_call(&mut reader, 1024).await.unwrap().unwrap();
        assert_eq!((second.id, second.channel, second.body), (8, Some(Channel::Raft), Ok(Vec::new())));
        assert_eq!(read_call(&mut reader, 1024).await.unwrap(), None);

        for kind in RefusalKind::ALL {
            let refusal = Refusal::new(kind, format!("no: {kind}"));
            let wire = reply(3, &Err(refusal.clone())).unwrap();
            let read = read_reply(&mut wire.as_slice(), 4).await.unwrap().unwrap();
            assert_eq!(read, Reply { id: 3, outcome: Ok(Err(refusal)) });
        }
        let wire = reply(4, &Ok(b"done".to_vec())).unwrap();
        assert_eq!(read_reply(&mut wire.as_slice(), 4).await.unwrap().unwrap().outcome, Ok(Ok(b"done".to_vec())));
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_skipped_and_the_next_frame_still_reads() {
        let mut wire = call(1, Channel::Raft, "append", &[9; 100]).unwrap();
        wire.extend(call(2, Channel::Raft, "vote", b"ok").unwrap());
        let mut reader = wire.as_slice();
        assert_eq!(read_call(&mut reader, 99).await.unwrap().unwrap().body, Err(100));
        assert_eq!(read_call(&mut reader, 99).await.unwrap().unwrap().body, Ok(b"ok".to_vec()));
        let wire = reply(5, &Ok(vec![1; 10])).unwrap();
        assert_eq!(read_reply(&mut wire.as_slice(), 9).await.unwrap().unwrap().outcome, Err(10));
    }

    #[tokio::test]
    async fn cut_or_nonsense_frames_are_errors_not_panics() {
        let wire = call(1, Channel::Raft, "append", b"abcdef").unwrap();
        for cut in 1..wire.len() {
            assert!(read_call(&mut &wire[..cut], 1024).await.is_err(), "cut at {cut}");
        }
        // A length shorter than the header, and a kind longer than the call.
        assert!(read_call(&mut &[3, 0, 0, 0, 1, 2, 3][..], 1024).await.is_err());
        let mut lying = call(1, Channel::Raft, "append", b"").unwrap();
        lying[13] = 200;
        assert!(read_call(&mut lying.as_slice(), 1024).await.is_err());
        assert!(read_reply(&mut &[2, 0, 0, 0, 0, 0][..], 1024).await.is_err());
        // An unknown channel reads, and is refused by the server.
        let mut unknown = call(1, Channel::Raft, "append", b"").unwrap();
        unknown[12] = 9;
        assert_eq!(read_call(&mut unknown.as_slice(), 1024).await.unwrap().unwrap().channel, None);
    }
}
