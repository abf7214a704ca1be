//! Commit-only AppendEntries held back to ride on the next request.
//!
//! openraft sends a follower an AppendEntries with no entries as soon as
//! the commit index moves and no new entry is there to carry it. With one
//! writer that is every write: each follower gets two requests per entry,
//! the entry and then its commit (`docs/benchmarks.md`, "CP writes with one
//! client"). [`coalesced`] sends a replication stream's requests one after
//! the other as openraft's sequential default does, except that it holds an
//! entry-less request for up to `hold`:
//! - if the next request of the stream follows on from it (the same vote
//!   and `prev_log_id`), only that one is sent: it carries a commit index at
//!   least as new, and its answer (the follower matched at least
//!   `prev_log_id`) answers the held one too;
//! - otherwise (`hold` passed, the stream ended, as a heartbeat's one-request
//!   stream does at once, or the next request does not follow on) the held
//!   request is sent as it was, before anything after it.
//!
//! Nothing is held while the follower waits for a write it forwarded (it
//! applies it before it answers its client, `CpEngine::write`): the leader
//! marks such writes on the stream's [`Flush`] while they are in progress,
//! which also sends a request already held, and once more as they end (the
//! commit of the write may be made just after).
//!
//! Answers come out in the order of the requests, one per request; the
//! stream ends after an error, a refusal or a partial success, as the
//! sequential one does. A follower learns a commit at most `hold` later
//! than it would have when no write follows.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::{Stream, StreamExt as _};
use openraft::base::BoxStream;
use openraft::entry::RaftEntry as _;
use openraft::error::RPCError;
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse, StreamAppendResult};
use openraft::type_config::alias::LogIdOf;
use tokio::sync::Notify;

use crate::TypeConfig;

type Request = AppendEntriesRequest<TypeConfig>;
type LogId = Option<LogIdOf<TypeConfig>>;

/// What one request gets back through the stream.
pub(crate) type Answer = Result<StreamAppendResult<TypeConfig>, RPCError<TypeConfig>>;

/// What sending one request returns.
pub(crate) type Reply = Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>>;

/// How long a commit-only request waits for a request to ride on.
pub(crate) const COMMIT_HOLD: Duration = Duration::from_millis(2);

/// Forwarded writes in progress on a follower's replication stream.
#[derive(Default)]
pub(crate) struct Flush {
    /// Notified: send the held request now.
    now: Notify,
    /// Writes the follower forwarded and waits for.
    waiting: AtomicUsize,
}

impl Flush {
    /// Whether commit-only requests may be held.
    fn may_hold(&self) -> bool {
        self.waiting.load(Ordering::Acquire) == 0
    }
}

/// A forwarded write in progress ([`Flush`]), until dropped.
pub(crate) struct FlushGuard(Arc<Flush>);

impl FlushGuard {
    pub(crate) fn new(flush: Arc<Flush>) -> Self {
        flush.waiting.fetch_add(1, Ordering::AcqRel);
        flush.now.notify_one();
        Self(flush)
    }
}

impl Drop for FlushGuard {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::AcqRel);
        // The write's commit may be made just after its answer: not held either.
        self.0.now.notify_one();
    }
}

/// Sends `input`'s requests with `send`, one at a time, holding commit-only
/// ones as the module docs say (up to `hold`, and not while `flush` has a
/// forwarded write in progress); the answers in request order.
pub(crate) fn coalesced<'s, S, F, Fut>(input: S, hold: Duration, flush: Arc<Flush>, send: F) -> BoxStream<'s, Answer>
where
    S: Stream<Item = Request> + Send + Unpin + 's,
    F: FnMut(Request) -> Fut + Send + 's,
    Fut: Future<Output = Reply> + Send + 's,
{
    let state = Coalescer {
        input,
        send,
        hold,
        flush,
        held: None,
        riders: 0,
        answers: VecDeque::new(),
        input_done: false,
        stopped: false,
    };
    Box::pin(futures_util::stream::unfold(state, Coalescer::next))
}

struct Coalescer<S, F> {
    input: S,
    send: F,
    hold: Duration,
    /// Forwarded writes in progress: nothing is held then.
    flush: Arc<Flush>,
    /// A commit-only request not sent yet.
    held: Option<Request>,
    /// Earlier commit-only requests at the same point, answered with `held`.
    riders: usize,
    /// Answers not handed out yet, in request order.
    answers: VecDeque<Answer>,
    input_done: bool,
    /// An answer ended the stream: hand out what is there, then stop.
    stopped: bool,
}

/// A request's `prev_log_id` and the last log id it carries.
fn range_of(request: &Request) -> (LogId, LogId) {
    let last = request.entries.last().map(|entry| entry.log_id()).or(request.prev_log_id);
    (request.prev_log_id, last)
}

impl<S, F, Fut> Coalescer<S, F>
where
    S: Stream<Item = Request> + Unpin,
    F: FnMut(Request) -> Fut,
    Fut: Future<Output = Reply>,
{
    async fn next(mut self) -> Option<(Answer, Self)> {
        loop {
            if let Some(answer) = self.answers.pop_front() {
                return Some((answer, self));
            }
            if self.stopped {
                return None;
            }
            let request = if self.held.is_some() {
                let next = if self.flush.may_hold() { self.follow_on().await } else { None };
                match next {
                    Some(request) => request,
                    None => {
                        self.flush().await;
                        continue;
                    }
                }
            } else {
                if self.input_done {
                    return None;
                }
                // `next` only borrows the stream: a request half made stays in it.
                let Some(request) = self.input.next().await else {
                    self.input_done = true;
                    return None;
                };
                request
            };
            if let Some(held) = self.held.take() {
                if request.vote == held.vote && request.prev_log_id == held.prev_log_id {
                    let riders = self.riders + 1;
                    if request.entries.is_empty() {
                        // A newer commit at the same point: it answers for both.
                        self.riders = riders;
                        self.held = Some(request);
                        continue;
                    }
                    self.riders = 0;
                    let range = range_of(&request);
                    let reply = (self.send)(request).await;
                    self.answer(reply, riders, held.prev_log_id, range);
                    continue;
                }
                self.held = Some(held);
                self.flush().await;
                if self.stopped {
                    continue;
                }
            }
            if request.entries.is_empty() {
                self.held = Some(request);
                continue;
            }
            let range = range_of(&request);
            let reply = (self.send)(request).await;
            self.answer(reply, 0, None, range);
        }
    }

    /// The next request if it comes within the hold; `None` if the hold
    /// passed, a flush was asked for or the stream ended.
    async fn follow_on(&mut self) -> Option<Request> {
        if self.input_done {
            return None;
        }
        tokio::select! {
            biased;
            next = self.input.next() => {
                self.input_done = next.is_none();
                next
            }
            () = self.flush.now.notified() => None,
            () = tokio::time::sleep(self.hold) => None,
        }
    }

    /// Sends the held request as it is.
    async fn flush(&mut self) {
        let Some(held) = self.held.take() else { return };
        let riders = std::mem::take(&mut self.riders);
        let at = held.prev_log_id;
        let reply = (self.send)(held).await;
        self.answer(reply, riders, at, (at, at));
    }

    /// Queues the answers `reply` gives: first to `riders` commit-only
    /// requests at `at` that rode on the sent one, then to the sent one,
    /// whose range is `range`.
    fn answer(&mut self, reply: Reply, riders: usize, at: LogId, range: (LogId, LogId)) {
        for _ in 0..riders {
            let answer = match &reply {
                Ok(response) => Ok(response.clone().into_stream_result(at, at)),
                Err(error) => Err(error.clone()),
            };
            let refused = !matches!(answer, Ok(Ok(_)));
            self.answers.push_back(answer);
            if refused {
                self.stopped = true;
                return;
            }
        }
        let (prev, last) = range;
        match reply {
            Ok(response) => {
                let partial = match &response {
                    AppendEntriesResponse::PartialSuccess(matched) => Some(*matched),
                    _ => None,
                };
                let result = response.into_stream_result(prev, last);
                // As the sequential stream: stop at a refusal or a partial success.
                if result.is_err() || partial.is_some_and(|matched| matched != last) {
                    self.stopped = true;
                }
                self.answers.push_back(Ok(result));
            }
            Err(error) => {
                self.stopped = true;
                self.answers.push_back(Err(error));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::{Arc, Mutex};

    use openraft::error::{NetworkError, RPCError};
    use openraft::raft::StreamAppendError;
    use openraft::type_config::alias::{CommittedLeaderIdOf, EntryOf, VoteOf};

    use super::*;

    fn log_id(index: u64) -> LogIdOf<TypeConfig> {
        LogIdOf::<TypeConfig>::new(CommittedLeaderIdOf::<TypeConfig> { term: 1, node_id: 1 }, index)
    }

    /// An AppendEntries after `prev` carrying the entries up to `last` and
    /// the commit `commit`.
    fn request(prev: u64, last: u64, commit: u64) -> Request {
        Request {
            vote: VoteOf::<TypeConfig>::new(1, 1),
            prev_log_id: Some(log_id(prev)),
            entries: (prev + 1..=last).map(|i| EntryOf::<TypeConfig>::new_blank(log_id(i))).collect(),
            leader_commit: Some(log_id(commit)),
        }
    }

    /// What was sent, as (prev, last, commit) indexes.
    type Sent = Arc<Mutex<Vec<(u64, u64, u64)>>>;

    /// A follower that takes everything, or answers `refuse` to the first request.
    fn follower(sent: &Sent, refuse: Option<Reply>) -> impl FnMut(Request) -> std::future::Ready<Reply> + Send {
        let sent = sent.clone();
        let mut refuse = refuse;
        move |request: Request| {
            let (prev, last) = range_of(&request);
            let index = |id: LogId| id.map_or(0, |id| id.index);
            sent.lock().unwrap().push((index(prev), index(last), index(request.leader_commit)));
            std::future::ready(refuse.take().unwrap_or(Ok(AppendEntriesResponse::Success)))
        }
    }

    fn matched(index: u64) -> Answer {
        Ok(Ok(Some(log_id(index))))
    }

    #[tokio::test(start_paused = true)]
    async fn a_commit_rides_on_the_next_entries_and_both_are_answered_in_order() {
        let sent = Sent::default();
        let input = futures_util::stream::iter([request(5, 6, 4), request(6, 6, 6), request(6, 7, 6)]);
        let answers: Vec<Answer> = coalesced(input, COMMIT_HOLD, Arc::default(), follower(&sent, None)).collect().await;
        assert_eq!(answers, vec![matched(6), matched(6), matched(7)]);
        assert_eq!(*sent.lock().unwrap(), vec![(5, 6, 4), (6, 7, 6)], "the commit-only request is not sent");
    }

    #[tokio::test(start_paused = true)]
    async fn commits_in_a_row_ride_together() {
        let sent = Sent::default();
        let input = futures_util::stream::iter([request(6, 6, 5), request(6, 6, 6), request(6, 8, 6)]);
        let answers: Vec<Answer> = coalesced(input, COMMIT_HOLD, Arc::default(), follower(&sent, None)).collect().await;
        assert_eq!(answers, vec![matched(6), matched(6), matched(8)]);
        assert_eq!(*sent.lock().unwrap(), vec![(6, 8, 6)]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_lone_commit_or_heartbeat_goes_at_once_when_its_stream_ends() {
        let sent = Sent::default();
        let input = futures_util::stream::iter([request(6, 6, 6)]);
        let started = tokio::time::Instant::now();
        let answers: Vec<Answer> = coalesced(input, COMMIT_HOLD, Arc::default(), follower(&sent, None)).collect().await;
        assert_eq!(answers, vec![matched(6)]);
        assert_eq!(*sent.lock().unwrap(), vec![(6, 6, 6)]);
        assert_eq!(started.elapsed(), Duration::ZERO, "not held: nothing could follow");
    }

    #[tokio::test(start_paused = true)]
    async fn a_commit_with_nothing_after_it_goes_once_the_hold_passes() {
        let sent = Sent::default();
        let input = futures_util::stream::iter([request(6, 6, 6)]).chain(futures_util::stream::pending());
        let mut answers = coalesced(input, COMMIT_HOLD, Arc::default(), follower(&sent, None));
        let started = tokio::time::Instant::now();
        assert_eq!(answers.next().await, Some(matched(6)));
        assert_eq!(started.elapsed(), COMMIT_HOLD);
        assert_eq!(*sent.lock().unwrap(), vec![(6, 6, 6)]);
    }

    #[tokio::test(start_paused = true)]
    async fn commits_are_not_held_while_the_follower_waits_for_a_forwarded_write() {
        let sent = Sent::default();
        let flush = Arc::new(Flush::default());
        let (requests, mut input) = tokio::sync::mpsc::unbounded_channel();
        let input = futures_util::stream::poll_fn(move |cx| input.poll_recv(cx));
        let hold = Duration::from_secs(3600);
        let mut answers = coalesced(input, hold, flush.clone(), follower(&sent, None));
        let started = tokio::time::Instant::now();
        let elapsed = || started.elapsed();

        // A commit held when a forwarded write begins goes at once.
        requests.send(request(6, 6, 5)).unwrap();
        let mut waiting = None;
        let begin = async {
            tokio::time::sleep(Duration::from_millis(1)).await;
            waiting = Some(FlushGuard::new(flush.clone()));
            std::future::pending::<()>().await;
        };
        let first = tokio::select! { answer = answers.next() => answer, () = begin => None };
        assert_eq!(first, Some(matched(6)));
        assert_eq!(elapsed(), Duration::from_millis(1), "sent when the write began, not after the hold");

        // While it is in progress, a commit is sent as it comes.
        requests.send(request(6, 6, 6)).unwrap();
        assert_eq!(answers.next().await, Some(matched(6)));
        assert_eq!(elapsed(), Duration::from_millis(1), "not held while the follower waits");
        drop(waiting);

        // Once it ended (and the permit its end leaves is spent), commits are held again.
        requests.send(request(6, 6, 7)).unwrap();
        assert_eq!(answers.next().await, Some(matched(6)));
        requests.send(request(6, 6, 8)).unwrap();
        let before = elapsed();
        assert_eq!(answers.next().await, Some(matched(6)));
        assert_eq!(elapsed() - before, hold, "held again for the whole hold");
        assert_eq!(sent.lock().unwrap().len(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_that_does_not_follow_on_goes_after_the_held_one() {
        let sent = Sent::default();
        // A new leader's vote: the held commit goes first, as it was.
        let mut other = request(6, 7, 6);
        other.vote = VoteOf::<TypeConfig>::new(2, 2);
        let input = futures_util::stream::iter([request(6, 6, 6), other, request(3, 4, 6)]);
        let answers: Vec<Answer> = coalesced(input, COMMIT_HOLD, Arc::default(), follower(&sent, None)).collect().await;
        assert_eq!(answers, vec![matched(6), matched(7), matched(4)]);
        assert_eq!(*sent.lock().unwrap(), vec![(6, 6, 6), (6, 7, 6), (3, 4, 6)]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_refusal_of_the_carrier_answers_the_held_commit_and_ends_the_stream() {
        let sent = Sent::default();
        let higher = VoteOf::<TypeConfig>::new(3, 3);
        let refusal = Ok(AppendEntriesResponse::HigherVote(higher));
        let input = futures_util::stream::iter([request(6, 6, 6), request(6, 7, 6), request(7, 8, 6)]);
        let answers: Vec<Answer> =
            coalesced(input, COMMIT_HOLD, Arc::default(), follower(&sent, Some(refusal))).collect().await;
        assert_eq!(answers, vec![Ok(Err(StreamAppendError::HigherVote(higher)))]);
        assert_eq!(sent.lock().unwrap().len(), 1);

        let sent = Sent::default();
        let failure: Reply = Err(RPCError::Network(NetworkError::new(&std::io::Error::other("reset"))));
        let input = futures_util::stream::iter([request(6, 6, 6), request(6, 7, 6)]);
        let answers: Vec<Answer> =
            coalesced(input, COMMIT_HOLD, Arc::default(), follower(&sent, Some(failure))).collect().await;
        assert_eq!(answers.len(), 1);
        assert!(matches!(answers[0], Err(RPCError::Network(_))));
    }
}
