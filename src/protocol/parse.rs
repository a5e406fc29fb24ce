//! Incremental RESP parsing. A prefix of a valid frame is `Incomplete` (never an error, never
//! a panic); anything Redis would reject is `Invalid` with Redis's own protocol-error text.

use super::frame::Frame;
use super::inline::split_args;
use bytes::{Buf, Bytes, BytesMut};

/// Why a buffer did not yield a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// More bytes are needed.
    #[error("incomplete frame")]
    Incomplete,
    /// The bytes can never become a valid frame; the text follows `Protocol error: `.
    #[error("Protocol error: {0}")]
    Invalid(String),
}

/// Size limits, as Redis's `proto-max-bulk-len` and its fixed multibulk/inline limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest bulk argument (`proto-max-bulk-len`, 512 MiB by default).
    pub max_bulk_len: i64,
    /// Largest multibulk count. Redis 7.0 accepts up to `INT_MAX` (the 1024*1024 cap of
    /// older versions only survives for unauthenticated clients, which raftis has not).
    pub max_multibulk_len: i64,
    /// Longest inline line or count line without its terminator (`PROTO_INLINE_MAX_SIZE`).
    pub max_inline_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_bulk_len: 512 * 1024 * 1024, max_multibulk_len: i32::MAX as i64, max_inline_len: 64 * 1024 }
    }
}

fn invalid<T>(msg: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError::Invalid(msg.into()))
}

/// Position of the `\r` ending the line that starts at `from`, if the `\n` after it is there
/// too. Like Redis, the byte after `\r` is assumed to be `\n`.
fn find_line(buf: &[u8], from: usize) -> Option<usize> {
    let rel = buf.get(from..)?.iter().position(|&b| b == b'\r')?;
    let cr = from + rel;
    (cr + 1 < buf.len()).then_some(cr)
}

/// Like [`find_line`] for requests, searching for `stop` the way Redis's `strchr` does: a NUL
/// byte ends the search, so a request line holding a NUL never completes (Redis waits until
/// the size limit trips). Returns the position of `stop`.
fn find_request_byte(buf: &[u8], from: usize, stop: u8) -> Option<usize> {
    let rel = buf.get(from..)?.iter().position(|&b| b == stop || b == 0)?;
    (buf[from + rel] == stop).then_some(from + rel)
}

/// A request header line ending at `\r`, which must have one more byte after it.
fn find_request_line(buf: &[u8], from: usize) -> Option<usize> {
    let cr = find_request_byte(buf, from, b'\r')?;
    (cr + 1 < buf.len()).then_some(cr)
}

/// Redis's `addReplyErrorFormat` turns CR and LF into spaces so the reply stays one line.
fn shown_byte(b: u8) -> char {
    match b {
        b'\r' | b'\n' => ' ',
        // Redis sends the raw byte; a `String` cannot carry a lone non-ASCII byte.
        b if b.is_ascii() => b as char,
        _ => char::REPLACEMENT_CHARACTER,
    }
}

/// Redis's `string2ll`: optional '-', digits, no leading zeros, no '+', fits in i64.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s.split_first()? {
        (b'-', rest) => (true, rest),
        _ => (false, s),
    };
    if digits.is_empty() || (digits[0] == b'0' && (digits.len() > 1 || neg)) {
        return None;
    }
    let mut v: i64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        let d = (c - b'0') as i64;
        v = if neg { v.checked_mul(10)?.checked_sub(d)? } else { v.checked_mul(10)?.checked_add(d)? };
    }
    Some(v)
}

/// Parses one client command from the front of `buf`, consuming its bytes when complete.
/// `Ok(None)` means more bytes are needed. An empty command (blank inline line, `*0`) is
/// consumed and returned as an empty vector.
pub fn parse_command(buf: &mut BytesMut, limits: &Limits) -> Result<Option<Vec<Bytes>>, ParseError> {
    let mut scan = CommandScan::default();
    let mut argv = Vec::new();
    Ok(parse_command_into(buf, limits, &mut scan, &mut argv)?.then_some(argv))
}

/// How far the scan of an incomplete multibulk request got, so the next call resumes there
/// instead of walking the arguments already seen again (a request of millions of small
/// arguments arriving in many reads would otherwise cost time quadratic in its size). Valid
/// only while the buffer it was made on is appended to and not consumed: [`parse_command_into`]
/// resets it whenever it consumes bytes or fails.
#[derive(Debug, Default)]
pub struct CommandScan {
    /// Byte spans of the arguments found so far.
    spans: Vec<(usize, usize)>,
    /// The request's argument count, once its header line was read.
    count: Option<usize>,
    /// Where the next argument's header starts.
    pos: usize,
}

impl CommandScan {
    fn reset(&mut self) {
        self.spans.clear();
        self.count = None;
        self.pos = 0;
    }
}

/// [`parse_command`] into caller-owned buffers, so a connection parsing a stream of commands
/// allocates nothing per command: `argv` is cleared and receives the arguments; `scan` keeps
/// the progress on an incomplete request between calls (pass the same one, with the same
/// buffer, until a command completes). Returns `Ok(true)` when a complete command (possibly
/// empty) was consumed, `Ok(false)` when more bytes are needed.
pub fn parse_command_into(
    buf: &mut BytesMut,
    limits: &Limits,
    scan: &mut CommandScan,
    argv: &mut Vec<Bytes>,
) -> Result<bool, ParseError> {
    argv.clear();
    if buf.is_empty() {
        scan.reset();
        return Ok(false);
    }
    if buf[0] != b'*' {
        scan.reset();
        return Ok(match parse_inline(buf, limits)? {
            Some(args) => {
                argv.extend(args);
                true
            }
            None => false,
        });
    }
    match scan_multibulk(buf, limits, scan) {
        Ok(len) => {
            let mut frame = buf.split_to(len).freeze();
            if let Some((&(last_start, last_end), rest)) = scan.spans.split_last() {
                argv.extend(rest.iter().map(|&(s, e)| frame.slice(s..e)));
                // The last argument takes over the frame's own reference (one atomic
                // increment fewer per command).
                frame.truncate(last_end);
                frame.advance(last_start);
                argv.push(frame);
            }
            scan.reset();
            Ok(true)
        }
        Err(ParseError::Incomplete) => Ok(false),
        Err(e) => {
            scan.reset();
            Err(e)
        }
    }
}

fn parse_inline(buf: &mut BytesMut, limits: &Limits) -> Result<Option<Vec<Bytes>>, ParseError> {
    let Some(nl) = find_request_byte(buf, 0, b'\n') else {
        if buf.len() > limits.max_inline_len {
            return invalid("too big inline request");
        }
        return Ok(None);
    };
    let line = buf.split_to(nl + 1);
    let line = line[..nl].strip_suffix(b"\r").unwrap_or(&line[..nl]);
    match split_args(line) {
        Some(args) => Ok(Some(args.into_iter().map(Bytes::from).collect())),
        None => invalid("unbalanced quotes in request"),
    }
}

/// The argument count of a multibulk request whose header line ends at or after the start.
fn multibulk_count(buf: &[u8], limits: &Limits) -> Result<(usize, usize), ParseError> {
    let Some(cr) = find_request_line(buf, 0) else {
        if buf.len() > limits.max_inline_len {
            return invalid("too big mbulk count string");
        }
        return Err(ParseError::Incomplete);
    };
    match parse_i64(&buf[1..cr]) {
        Some(n) if n <= limits.max_multibulk_len => Ok((n.max(0) as usize, cr + 2)),
        _ => invalid("invalid multibulk length"),
    }
}

/// Validates a complete multibulk request and records each argument's byte span in `scan`,
/// resuming where the last call stopped. Returns the frame's total length.
fn scan_multibulk(buf: &[u8], limits: &Limits, scan: &mut CommandScan) -> Result<usize, ParseError> {
    let count = match scan.count {
        Some(n) => n,
        None => {
            let (n, pos) = multibulk_count(buf, limits)?;
            // Never reserve what a client merely announces.
            scan.spans.reserve(n.min(1024));
            (scan.count, scan.pos) = (Some(n), pos);
            n
        }
    };
    while scan.spans.len() < count {
        let pos = scan.pos;
        let Some(cr) = find_request_line(buf, pos) else {
            if buf.len() - pos > limits.max_inline_len {
                return invalid("too big bulk count string");
            }
            return Err(ParseError::Incomplete);
        };
        if buf[pos] != b'$' {
            return invalid(format!("expected '$', got '{}'", shown_byte(buf[pos])));
        }
        let len = match parse_i64(&buf[pos + 1..cr]) {
            Some(n) if (0..=limits.max_bulk_len).contains(&n) => n as usize,
            _ => return invalid("invalid bulk length"),
        };
        let start = cr + 2;
        if buf.len() < start + len + 2 {
            return Err(ParseError::Incomplete);
        }
        scan.spans.push((start, start + len));
        scan.pos = start + len + 2;
    }
    Ok(scan.pos)
}

/// Parses one RESP2/RESP3 frame of any type from the front of `buf` (replies, pushes, and
/// requests alike). Returns the frame and the number of bytes it used.
pub fn parse_frame(buf: &Bytes, limits: &Limits) -> Result<(Frame, usize), ParseError> {
    let mut cur = Cursor { buf, pos: 0, limits, depth: 0 };
    let frame = cur.frame()?;
    Ok((frame, cur.pos))
}

struct Cursor<'a> {
    buf: &'a Bytes,
    pos: usize,
    limits: &'a Limits,
    depth: usize,
}

const MAX_DEPTH: usize = 128;

impl Cursor<'_> {
    fn line(&mut self) -> Result<&[u8], ParseError> {
        let Some(cr) = find_line(self.buf, self.pos) else {
            if self.buf.len() - self.pos > self.limits.max_inline_len {
                return invalid("too big line");
            }
            return Err(ParseError::Incomplete);
        };
        if self.buf[cr + 1] != b'\n' {
            return invalid("expected CRLF");
        }
        let line = &self.buf[self.pos..cr];
        self.pos = cr + 2;
        Ok(line)
    }

    fn int(&mut self) -> Result<i64, ParseError> {
        let line = self.line()?;
        parse_i64(line).map_or_else(|| invalid("invalid integer"), Ok)
    }

    fn frame(&mut self) -> Result<Frame, ParseError> {
        let Some(&tag) = self.buf.get(self.pos) else {
            return Err(ParseError::Incomplete);
        };
        self.pos += 1;
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return invalid("nesting too deep");
        }
        let frame = self.typed(tag);
        self.depth -= 1;
        frame
    }

    fn typed(&mut self, tag: u8) -> Result<Frame, ParseError> {
        Ok(match tag {
            b'+' => Frame::Simple(self.text()?),
            b'-' => Frame::Error(self.text()?),
            b':' => Frame::Integer(self.int()?),
            b'(' => Frame::BigNumber(self.text()?),
            b'_' => {
                self.line()?;
                Frame::Null
            }
            b'#' => match self.line()? {
                b"t" => Frame::Boolean(true),
                b"f" => Frame::Boolean(false),
                _ => return invalid("invalid boolean"),
            },
            b',' => Frame::Double(self.double()?),
            b'$' => self.bulk()?.map_or(Frame::Null, Frame::Bulk),
            b'!' => Frame::Error(self.bulk()?.unwrap_or_default()),
            b'=' => self.verbatim()?,
            b'*' => self.items()?.map_or(Frame::NullArray, Frame::Array),
            b'~' => Frame::Set(self.items()?.unwrap_or_default()),
            b'>' => Frame::Push(self.items()?.unwrap_or_default()),
            b'%' => Frame::Map(self.pairs()?),
            b'|' => {
                // Attributes carry metadata only: skip them. They count as a nesting level
                // each, so a long chain of them cannot exhaust the stack.
                self.pairs()?;
                self.frame()?
            }
            other => return invalid(format!("unknown type byte '{}'", other as char)),
        })
    }

    fn text(&mut self) -> Result<Bytes, ParseError> {
        let start = self.pos;
        let len = self.line()?.len();
        Ok(self.buf.slice(start..start + len))
    }

    fn double(&mut self) -> Result<f64, ParseError> {
        let line = self.line()?;
        let s = std::str::from_utf8(line).map_err(|_| ParseError::Invalid("invalid double".into()))?;
        match s {
            "inf" => Ok(f64::INFINITY),
            "-inf" => Ok(f64::NEG_INFINITY),
            _ => s.parse().map_err(|_| ParseError::Invalid("invalid double".into())),
        }
    }

    fn bulk(&mut self) -> Result<Option<Bytes>, ParseError> {
        let len = self.int()?;
        if len == -1 {
            return Ok(None);
        }
        if !(0..=self.limits.max_bulk_len).contains(&len) {
            return invalid("invalid bulk length");
        }
        let (start, len) = (self.pos, len as usize);
        if self.buf.len() < start + len + 2 {
            return Err(ParseError::Incomplete);
        }
        if &self.buf[start + len..start + len + 2] != b"\r\n" {
            return invalid("bulk string not terminated by CRLF");
        }
        self.pos = start + len + 2;
        Ok(Some(self.buf.slice(start..start + len)))
    }

    fn verbatim(&mut self) -> Result<Frame, ParseError> {
        let body = self.bulk()?.unwrap_or_default();
        if body.len() < 4 || body[3] != b':' {
            return invalid("invalid verbatim string");
        }
        let mut fmt = [0u8; 3];
        fmt.copy_from_slice(&body[..3]);
        let mut text = body;
        text.advance(4);
        Ok(Frame::Verbatim(fmt, text))
    }

    fn count(&mut self) -> Result<Option<usize>, ParseError> {
        match self.int()? {
            -1 => Ok(None),
            n if (0..=self.limits.max_multibulk_len).contains(&n) => Ok(Some(n as usize)),
            _ => invalid("invalid multibulk length"),
        }
    }

    fn items(&mut self) -> Result<Option<Vec<Frame>>, ParseError> {
        let Some(n) = self.count()? else { return Ok(None) };
        let mut items = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            items.push(self.frame()?);
        }
        Ok(Some(items))
    }

    fn pairs(&mut self) -> Result<Vec<(Frame, Frame)>, ParseError> {
        let n = self.count()?.unwrap_or(0);
        let mut pairs = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            let k = self.frame()?;
            pairs.push((k, self.frame()?));
        }
        Ok(pairs)
    }
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
