//! What a peer call looks like on the wire, for both sides: the path a
//! [`Route`] is posted to, and the HTTP status a [`Refusal`] travels as.
//!
//! Paths and statuses are what nodes of different versions agree on during
//! a rolling upgrade: `/internal/raft/{kind}` and `/internal/distro/{kind}`,
//! 200 with the reply, 421 for a node that does not lead (nothing was
//! acted on; the sender tries the leader), any other status a refusal.

use axum::http::StatusCode;
use janus_core::transport::{Channel, Refusal, RefusalKind, Route};

use crate::{DISTRO_PATH, RAFT_PATH};

/// The path prefix of `channel`'s messages.
pub(crate) const fn channel_path(channel: Channel) -> &'static str {
    match channel {
        Channel::Raft => RAFT_PATH,
        Channel::Distro => DISTRO_PATH,
    }
}

/// The path a message of `route` is posted to.
pub(crate) fn path(route: Route) -> String {
    format!("{}/{}", channel_path(route.channel), route.kind)
}

/// The status a refusal of `kind` is answered with.
pub(crate) const fn status(kind: RefusalKind) -> StatusCode {
    match kind {
        RefusalKind::Malformed => StatusCode::BAD_REQUEST,
        RefusalKind::Forbidden => StatusCode::FORBIDDEN,
        // "Sent to a server that cannot answer it": the sender retries at the leader.
        RefusalKind::Misdirected => StatusCode::MISDIRECTED_REQUEST,
        RefusalKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// The refusal an error `status` with `body` carries. A status that is not
/// one [`status`] answers with (401 from the secret check, 413 from the
/// body limit, a proxy's 502, an older node's 404 or 409) keeps its number
/// in the reason.
pub(crate) fn refusal(status: StatusCode, body: &[u8]) -> Refusal {
    let kind = match status {
        StatusCode::MISDIRECTED_REQUEST => RefusalKind::Misdirected,
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => RefusalKind::Forbidden,
        StatusCode::CONFLICT => RefusalKind::Unavailable,
        status if status.is_server_error() => RefusalKind::Unavailable,
        _ => RefusalKind::Malformed,
    };
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let reason = match (status == self::status(kind), text.is_empty()) {
        (true, false) => text.to_owned(),
        (_, true) => status.to_string(),
        (false, false) => format!("{status}: {text}"),
    };
    Refusal::new(kind, reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_what_older_nodes_serve() {
        assert_eq!(path(Route::raft("append")), "/internal/raft/append");
        assert_eq!(path(Route::distro("sync")), "/internal/distro/sync");
    }

    #[test]
    fn every_refusal_survives_the_trip() {
        for kind in RefusalKind::ALL {
            let sent = Refusal::new(kind, format!("refused as {kind}"));
            assert_eq!(refusal(status(kind), format!("{}\n", sent.reason).as_bytes()), sent);
        }
    }

    #[test]
    fn other_statuses_keep_their_number() {
        let unauthorized = refusal(StatusCode::UNAUTHORIZED, b"cluster traffic needs the cluster secret\n");
        assert_eq!(unauthorized.kind, RefusalKind::Forbidden);
        assert_eq!(unauthorized.reason, "401 Unauthorized: cluster traffic needs the cluster secret");
        // An older node answers an unknown kind with 404 and a lone node with 409.
        assert_eq!(refusal(StatusCode::NOT_FOUND, b"no such kind").kind, RefusalKind::Malformed);
        assert_eq!(refusal(StatusCode::CONFLICT, b"not in a cluster").kind, RefusalKind::Unavailable);
        let gateway = refusal(StatusCode::BAD_GATEWAY, b"");
        assert_eq!((gateway.kind, gateway.reason.as_str()), (RefusalKind::Unavailable, "502 Bad Gateway"));
    }
}
