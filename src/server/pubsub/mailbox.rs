//! A subscriber's mailbox: the messages published to it and not yet written to its socket,
//! bounded by the `client-output-buffer-limit` of the pubsub class. Publishers push (they never
//! wait for a subscriber); the connection drains the mailbox into its output buffer and reports
//! what it wrote. A subscriber past the hard limit, or past the soft limit for longer than its
//! seconds, is marked overflowed: it gets nothing more and its connection closes (as Redis's
//! `closeClientOnOutputBufferLimitReached`), so a subscriber that never reads cannot make the
//! node's memory grow without bound.

use crate::protocol::{encode, Frame, RespVersion};
use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use tokio::sync::Notify;
use tokio::time::Instant;

/// One message for a subscriber.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// `message <channel> <payload>` (PUBLISH to a subscribed channel).
    Channel { channel: Bytes, payload: Bytes },
    /// `pmessage <pattern> <channel> <payload>` (PUBLISH to a channel a pattern matches).
    Pattern { pattern: Bytes, channel: Bytes, payload: Bytes },
    /// `smessage <shardchannel> <payload>` (SPUBLISH).
    Shard { channel: Bytes, payload: Bytes },
    /// A MONITOR line (`crate::server::monitor`), sent as a simple string.
    Monitor(Bytes),
    /// A client-side caching message (`crate::server::tracking`): `invalidate` (a push, or a
    /// `__redis__:invalidate` message for a RESP2 redirection) or `tracking-redir-broken`,
    /// built for the connection it goes to; `.1` is about its encoded size.
    Tracking(Frame, usize),
}

impl Message {
    /// The push frame a subscriber receives.
    pub fn frame(&self) -> Frame {
        let b = |s: &'static str| Frame::Bulk(Bytes::from_static(s.as_bytes()));
        match self {
            Message::Channel { channel, payload } => {
                Frame::Push(vec![b("message"), Frame::Bulk(channel.clone()), Frame::Bulk(payload.clone())])
            }
            Message::Pattern { pattern, channel, payload } => Frame::Push(vec![
                b("pmessage"),
                Frame::Bulk(pattern.clone()),
                Frame::Bulk(channel.clone()),
                Frame::Bulk(payload.clone()),
            ]),
            Message::Shard { channel, payload } => {
                Frame::Push(vec![b("smessage"), Frame::Bulk(channel.clone()), Frame::Bulk(payload.clone())])
            }
            Message::Monitor(line) => Frame::Simple(line.clone()),
            Message::Tracking(frame, _) => frame.clone(),
        }
    }

    /// About the bytes the message takes in an output buffer (its encoding's size).
    fn size(&self) -> usize {
        match self {
            Message::Channel { channel, payload } | Message::Shard { channel, payload } => {
                channel.len() + payload.len() + 48
            }
            Message::Pattern { pattern, channel, payload } => pattern.len() + channel.len() + payload.len() + 64,
            Message::Monitor(line) => line.len() + 3,
            Message::Tracking(_, size) => *size,
        }
    }
}

/// The `client-output-buffer-limit` of the pubsub class.
pub type Limit = crate::config::ClassLimit;

#[derive(Default)]
struct State {
    queue: VecDeque<Message>,
    /// Bytes of the messages in `queue`.
    queued: usize,
    /// Bytes drained into the connection's output buffer and not yet written.
    unsent: usize,
    /// Since when the output has been over the soft limit.
    over_soft_since: Option<Instant>,
    overflowed: bool,
}

/// The mailbox of one subscribed connection.
#[derive(Default)]
pub struct Mailbox {
    state: Mutex<State>,
    ready: Notify,
}

impl Mailbox {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `msg` unless the mailbox overflowed; checks `limit` (with the message counted)
    /// and wakes the connection.
    pub fn push(&self, msg: Message, limit: &Limit, now: Instant) {
        let mut st = self.lock();
        if st.overflowed {
            return;
        }
        st.queued += msg.size();
        st.queue.push_back(msg);
        if over_limit(&mut st, limit, now) {
            // What is queued will never be sent: free it now.
            st.overflowed = true;
            st.queue.clear();
            st.queued = 0;
        }
        drop(st);
        self.ready.notify_one();
    }

    /// Encodes every queued message into `out` (for a client speaking `resp`); the bytes stay
    /// counted against the limit until [`sent`](Self::sent) reports them written. Returns them.
    pub fn drain_into(&self, resp: RespVersion, out: &mut BytesMut) -> usize {
        let mut st = self.lock();
        let queue = std::mem::take(&mut st.queue);
        let n = std::mem::take(&mut st.queued);
        st.unsent += n;
        drop(st);
        for msg in &queue {
            encode(&msg.frame(), resp, out);
        }
        n
    }

    /// `n` drained bytes were written to the socket.
    pub fn sent(&self, n: usize) {
        let mut st = self.lock();
        st.unsent = st.unsent.saturating_sub(n);
    }

    /// Whether messages wait to be drained.
    pub fn has_queued(&self) -> bool {
        !self.lock().queue.is_empty()
    }

    /// Whether the subscriber passed its limit: its connection must close.
    pub fn overflowed(&self) -> bool {
        self.lock().overflowed
    }

    /// Bytes published to the subscriber and not yet written (CLIENT LIST's `omem`).
    pub fn pending_bytes(&self) -> usize {
        let st = self.lock();
        st.queued + st.unsent
    }

    /// Resolves when something was pushed since the last wait (or the mailbox overflowed).
    pub async fn wait(&self) {
        self.ready.notified().await;
    }
}

/// Redis's `checkClientOutputBufferLimits`: over the hard limit, or over the soft limit for
/// more than its seconds (the time counts from the first push seen over it; a push seen under
/// it starts the count again).
fn over_limit(st: &mut State, limit: &Limit, now: Instant) -> bool {
    let used = (st.queued + st.unsent) as u64;
    if limit.hard != 0 && used >= limit.hard {
        return true;
    }
    if limit.soft == 0 || used < limit.soft {
        st.over_soft_since = None;
        return false;
    }
    match st.over_soft_since {
        None => {
            st.over_soft_since = Some(now);
            false
        }
        Some(since) => now.duration_since(since).as_secs() > limit.soft_secs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn msg(n: usize) -> Message {
        Message::Channel { channel: Bytes::from_static(b"c"), payload: Bytes::from(vec![b'x'; n]) }
    }

    #[test]
    fn messages_encode_as_redis_pushes() {
        let mut out = BytesMut::new();
        let mb = Mailbox::default();
        let none = Limit { hard: 0, soft: 0, soft_secs: 0 };
        let now = Instant::now();
        mb.push(msg(2), &none, now);
        let p = Message::Pattern { pattern: "c*".into(), channel: "c1".into(), payload: "m".into() };
        mb.push(p, &none, now);
        mb.push(Message::Shard { channel: "s".into(), payload: "".into() }, &none, now);
        let n = mb.drain_into(RespVersion::Resp2, &mut out);
        assert_eq!(
            &out[..],
            b"*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$2\r\nxx\r\n*4\r\n$8\r\npmessage\r\n$2\r\nc*\r\n$2\r\nc1\r\n$1\r\nm\r\n\
              *3\r\n$8\r\nsmessage\r\n$1\r\ns\r\n$0\r\n\r\n"
        );
        assert_eq!(mb.pending_bytes(), n, "drained bytes count until written");
        mb.sent(n);
        assert_eq!(mb.pending_bytes(), 0);
        out.clear();
        mb.push(msg(1), &none, now);
        mb.drain_into(RespVersion::Resp3, &mut out);
        assert!(out.starts_with(b">3\r\n$7\r\nmessage\r\n"));
    }

    #[test]
    fn the_hard_limit_overflows_at_once_and_drops_everything() {
        let mb = Mailbox::default();
        let limit = Limit { hard: 1000, soft: 0, soft_secs: 0 };
        let now = Instant::now();
        mb.push(msg(500), &limit, now);
        let mut out = BytesMut::new();
        mb.drain_into(RespVersion::Resp2, &mut out);
        assert!(!mb.overflowed());
        // Unsent bytes count: the next 500 reach the limit.
        mb.push(msg(500), &limit, now);
        assert!(mb.overflowed());
        mb.push(msg(1), &limit, now);
        out.clear();
        assert_eq!(mb.drain_into(RespVersion::Resp2, &mut out), 0, "nothing is kept after overflowing");
    }

    #[test]
    fn the_soft_limit_overflows_only_after_its_seconds() {
        let mb = Mailbox::default();
        let limit = Limit { hard: 0, soft: 100, soft_secs: 2 };
        let t0 = Instant::now();
        mb.push(msg(200), &limit, t0);
        mb.push(msg(1), &limit, t0 + Duration::from_secs(2));
        assert!(!mb.overflowed(), "2 s over the soft limit is not more than 2 s");
        mb.push(msg(1), &limit, t0 + Duration::from_secs(3));
        assert!(mb.overflowed());
        // Dropping under the soft limit restarts the count.
        let mb = Mailbox::default();
        mb.push(msg(200), &limit, t0);
        let mut out = BytesMut::new();
        let n = mb.drain_into(RespVersion::Resp2, &mut out);
        mb.sent(n);
        mb.push(msg(1), &limit, t0 + Duration::from_secs(1));
        mb.push(msg(200), &limit, t0 + Duration::from_secs(5));
        assert!(!mb.overflowed());
    }
}
