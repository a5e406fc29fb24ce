//! The reply/request value model shared by RESP2 and RESP3.

use bytes::Bytes;

/// Protocol version negotiated with `HELLO` (RESP2 is the default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RespVersion {
    #[default]
    Resp2,
    Resp3,
}

/// One RESP value. RESP3-only kinds are downgraded by the encoder when talking RESP2,
/// exactly as Redis does (maps become flat arrays, doubles bulk strings, ...). Serializable
/// because a write's reply travels back from the replica that applied it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Frame {
    /// `+OK`
    Simple(Bytes),
    /// `-ERR ...` (the text includes the error code prefix, e.g. `ERR`, `WRONGTYPE`).
    Error(Bytes),
    /// `:42`
    Integer(i64),
    /// `$3\r\nfoo`
    Bulk(Bytes),
    /// A missing value: `$-1` in RESP2, `_` in RESP3.
    Null,
    /// A missing aggregate: `*-1` in RESP2, `_` in RESP3.
    NullArray,
    /// `*N`
    Array(Vec<Frame>),
    /// `%N` in RESP3, a flat array of 2N elements in RESP2.
    Map(Vec<(Frame, Frame)>),
    /// `~N` in RESP3, an array in RESP2.
    Set(Vec<Frame>),
    /// `,1.5` in RESP3, a bulk string in RESP2.
    Double(f64),
    /// A double written as Redis's `addReplyHumanLongDouble` writes it (`%.17Lf` without
    /// trailing zeros: GEOPOS's coordinates): `,13.36138933897018433` in RESP3, a bulk string
    /// in RESP2.
    HumanDouble(f64),
    /// `#t` in RESP3, `:1` / `:0` in RESP2.
    Boolean(bool),
    /// `=N\r\ntxt:...` in RESP3 (format is 3 bytes), a bulk string in RESP2.
    Verbatim([u8; 3], Bytes),
    /// `(123...` in RESP3, a bulk string in RESP2.
    BigNumber(Bytes),
    /// `>N` out-of-band data in RESP3, an array in RESP2.
    Push(Vec<Frame>),
    /// A reply-only shape: a list of pairs, sent as an array of 2-element arrays in RESP3
    /// and as one flat array in RESP2 (Redis 7's `WITHSCORES` / `WITHVALUES` replies).
    Pairs(Vec<(Frame, Frame)>),
    /// A reply-only shape: `%N` in RESP3, an array of N 2-element arrays in RESP2 (XREAD and
    /// XREADGROUP's streams, as Redis 7 replies them).
    PairsMap(Vec<(Frame, Frame)>),
}

impl Frame {
    /// `+OK`
    pub fn ok() -> Frame {
        Frame::Simple(Bytes::from_static(b"OK"))
    }

    /// A simple string from static text.
    pub fn simple(s: &'static str) -> Frame {
        Frame::Simple(Bytes::from_static(s.as_bytes()))
    }

    /// An error reply; `msg` must carry its code (`"ERR syntax error"`).
    pub fn error(msg: impl Into<String>) -> Frame {
        Frame::Error(Bytes::from(msg.into()))
    }

    /// A bulk string copied from any byte source.
    pub fn bulk(b: impl Into<Bytes>) -> Frame {
        Frame::Bulk(b.into())
    }

    /// A bulk string holding the decimal form of an integer.
    pub fn bulk_int(n: i64) -> Frame {
        Frame::Bulk(Bytes::from(n.to_string()))
    }

    /// An array of bulk strings.
    pub fn bulks<I, B>(items: I) -> Frame
    where
        I: IntoIterator<Item = B>,
        B: Into<Bytes>,
    {
        Frame::Array(items.into_iter().map(|b| Frame::Bulk(b.into())).collect())
    }

    /// True for `Frame::Error`.
    pub fn is_error(&self) -> bool {
        matches!(self, Frame::Error(_))
    }
}
