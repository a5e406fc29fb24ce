//! The frame format of the internal RPC protocol, and reading and writing frames.
//!
//! ```text
//! len u32 | version u8 | kind u8 | group u64 | request_id u64 | body (postcard)
//! ```
//! All integers are big-endian. `len` counts every byte after itself (header and body), so a
//! reader knows the whole frame size before allocating for it. `kind` says whether the body is
//! an [`RpcRequest`](super::RpcRequest) or an [`RpcResponse`](super::RpcResponse); `group` is the
//! Raft group the message belongs to (0 until multi-raft); `request_id` pairs a response with
//! its request on a multiplexed connection.
//!
//! Every violation (oversized or undersized frame, unknown version or kind, undecodable body)
//! is a [`WireError`]: the connection that carried it is closed, nothing panics.

use bytes::Bytes;
use serde::{de::DeserializeOwned, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt};

/// The protocol version this build speaks (and the only one it accepts).
pub const VERSION: u8 = 1;
/// Bytes after the length prefix that every frame has: version, kind, group, request id.
pub const HEADER_BYTES: usize = 1 + 1 + 8 + 8;
/// Default limit on `len`: above Redis's 512 MB `proto-max-bulk-len`, so that any single
/// command (a log entry, a forwarded command, its reply) fits in a frame. Readers allocate as
/// bytes arrive, so a corrupt length costs nothing until that much data actually comes.
pub const DEFAULT_MAX_FRAME: u32 = 1 << 30;

/// What the body of a frame holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An [`RpcRequest`](super::RpcRequest).
    Request,
    /// An [`RpcResponse`](super::RpcResponse).
    Response,
}

impl Kind {
    fn code(self) -> u8 {
        match self {
            Kind::Request => 1,
            Kind::Response => 2,
        }
    }

    fn from_code(code: u8) -> Option<Kind> {
        match code {
            1 => Some(Kind::Request),
            2 => Some(Kind::Response),
            _ => None,
        }
    }
}

/// The fixed part of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub kind: Kind,
    /// The Raft group.
    pub group: u64,
    /// Chosen by the client, echoed by the server.
    pub request_id: u64,
}

/// A frame that could not be read, written or decoded.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The peer closed the connection cleanly between frames.
    #[error("connection closed")]
    Closed,
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    TooLarge { len: u64, max: u32 },
    #[error("frame of {0} bytes is shorter than its header")]
    TooShort(u32),
    #[error("unknown protocol version {0} (this node speaks {VERSION})")]
    Version(u8),
    #[error("unknown frame kind {0}")]
    Kind(u8),
    #[error("undecodable frame body: {0}")]
    Decode(postcard::Error),
    #[error("unencodable frame body: {0}")]
    Encode(postcard::Error),
}

/// Encodes one whole frame (length prefix included), refusing bodies over `max`.
pub fn encode<T: Serialize>(header: Header, body: &T, max: u32) -> Result<Bytes, WireError> {
    let mut buf = Vec::with_capacity(4 + HEADER_BYTES + 64);
    buf.extend_from_slice(&[0; 4]);
    buf.push(VERSION);
    buf.push(header.kind.code());
    buf.extend_from_slice(&header.group.to_be_bytes());
    buf.extend_from_slice(&header.request_id.to_be_bytes());
    let mut buf = postcard::to_extend(body, buf).map_err(WireError::Encode)?;
    let len = (buf.len() - 4) as u64;
    if len > u64::from(max) {
        return Err(WireError::TooLarge { len, max });
    }
    buf[..4].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(Bytes::from(buf))
}

/// Decodes a frame body read by [`read_frame`].
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, WireError> {
    postcard::from_bytes(body).map_err(WireError::Decode)
}

/// Reads one frame: its header and its still-encoded body. A clean end of stream before the
/// first byte of a frame is [`WireError::Closed`]; one inside a frame is an I/O error.
///
/// Not cancel-safe: callers read frames from a task of their own and never drop this future
/// half-way except when abandoning the connection.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R, max: u32) -> Result<(Header, Vec<u8>), WireError> {
    let mut len = [0u8; 4];
    let n = r.read(&mut len).await?;
    if n == 0 {
        return Err(WireError::Closed);
    }
    r.read_exact(&mut len[n..]).await?;
    let len = u32::from_be_bytes(len);
    if len > max {
        return Err(WireError::TooLarge { len: u64::from(len), max });
    }
    if (len as usize) < HEADER_BYTES {
        return Err(WireError::TooShort(len));
    }
    let mut head = [0u8; HEADER_BYTES];
    r.read_exact(&mut head).await?;
    if head[0] != VERSION {
        return Err(WireError::Version(head[0]));
    }
    let kind = Kind::from_code(head[1]).ok_or(WireError::Kind(head[1]))?;
    let group = u64::from_be_bytes(head[2..10].try_into().unwrap_or_default());
    let request_id = u64::from_be_bytes(head[10..18].try_into().unwrap_or_default());
    // Grow the buffer as bytes arrive rather than trusting `len` for one big allocation.
    let body_len = len as usize - HEADER_BYTES;
    let mut body = Vec::with_capacity(body_len.min(64 * 1024));
    let got = r.take(body_len as u64).read_to_end(&mut body).await?;
    if got != body_len {
        return Err(WireError::Io(std::io::ErrorKind::UnexpectedEof.into()));
    }
    Ok((Header { kind, group, request_id }, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;

    const H: Header = Header { kind: Kind::Request, group: 7, request_id: 0x0102_0304_0506_0708 };

    /// Reading from a byte slice never waits, so one poll completes the future.
    fn read(bytes: &[u8], max: u32) -> Result<(Header, Vec<u8>), WireError> {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let mut src = bytes;
        let fut = std::pin::pin!(read_frame(&mut src, max));
        match fut.poll(&mut cx) {
            std::task::Poll::Ready(r) => r,
            std::task::Poll::Pending => panic!("reading a slice never waits"),
        }
    }

    #[test]
    fn frames_round_trip_with_the_documented_layout() {
        let frame = encode(H, &(1u8, String::from("x")), DEFAULT_MAX_FRAME).unwrap();
        assert_eq!(&frame[..4], &((HEADER_BYTES + 3) as u32).to_be_bytes());
        assert_eq!(frame[4], VERSION);
        assert_eq!(frame[5], 1);
        assert_eq!(&frame[6..14], &7u64.to_be_bytes());
        let (h, body) = read(&frame, DEFAULT_MAX_FRAME).unwrap();
        assert_eq!(h, H);
        assert_eq!(decode::<(u8, String)>(&body).unwrap(), (1, "x".into()));
    }

    #[test]
    fn violations_are_errors() {
        let good = encode(H, &5u32, DEFAULT_MAX_FRAME).unwrap().to_vec();
        assert!(matches!(read(&[], 100), Err(WireError::Closed)));
        assert!(matches!(read(&good[..3], 100), Err(WireError::Io(_))));
        assert!(matches!(read(&good[..good.len() - 1], 100), Err(WireError::Io(_))));
        assert!(matches!(read(&u32::MAX.to_be_bytes(), 100), Err(WireError::TooLarge { .. })));
        assert!(matches!(read(&3u32.to_be_bytes(), 100), Err(WireError::TooShort(3))));
        let mut bad = good.clone();
        bad[4] = 9;
        assert!(matches!(read(&bad, 100), Err(WireError::Version(9))));
        let mut bad = good.clone();
        bad[5] = 0;
        assert!(matches!(read(&bad, 100), Err(WireError::Kind(0))));
        let (_, body) = read(&good, 100).unwrap();
        assert!(matches!(decode::<String>(&body), Err(WireError::Decode(_))));
        assert!(matches!(encode(H, &vec![0u8; 200], 100), Err(WireError::TooLarge { .. })));
    }
}
