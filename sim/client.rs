//! A minimal RESP client for simulated hosts (madsim's TCP sends only on flush).

use bytes::{Bytes, BytesMut};
use raftis::protocol::{parse_frame, Frame, Limits, ParseError};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct SimClient {
    stream: TcpStream,
    buf: BytesMut,
}

impl SimClient {
    /// Connects, retrying until `deadline` of virtual time passes.
    pub async fn connect(addr: SocketAddr, deadline: Duration) -> std::io::Result<SimClient> {
        let start = tokio::time::Instant::now();
        loop {
            match TcpStream::connect(addr).await {
                Ok(stream) => return Ok(SimClient { stream, buf: BytesMut::new() }),
                Err(e) if start.elapsed() > deadline => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// Sends one command and reads its reply.
    pub async fn cmd(&mut self, args: &[&[u8]]) -> std::io::Result<Frame> {
        let mut out = Vec::new();
        encode(&mut out, args);
        self.stream.write_all(&out).await?;
        self.stream.flush().await?;
        self.read_frame().await
    }

    /// `SET key value`: true if it was acknowledged (`+OK`) within `deadline` of virtual time.
    pub async fn set_acked(&mut self, key: &str, value: &str, deadline: Duration) -> bool {
        let reply = tokio::time::timeout(deadline, self.cmd(&[b"SET", key.as_bytes(), value.as_bytes()])).await;
        matches!(reply, Ok(Ok(ref f)) if *f == Frame::ok())
    }

    /// Sends several commands at once (e.g. MULTI ... EXEC) and reads one reply for each.
    pub async fn pipeline(&mut self, cmds: &[Vec<&[u8]>]) -> std::io::Result<Vec<Frame>> {
        let mut out = Vec::new();
        for args in cmds {
            encode(&mut out, args);
        }
        self.stream.write_all(&out).await?;
        self.stream.flush().await?;
        let mut replies = Vec::with_capacity(cmds.len());
        for _ in cmds {
            replies.push(self.read_frame().await?);
        }
        Ok(replies)
    }

    async fn read_frame(&mut self) -> std::io::Result<Frame> {
        loop {
            let snapshot = Bytes::copy_from_slice(&self.buf);
            match parse_frame(&snapshot, &Limits::default()) {
                Ok((frame, len)) => {
                    let _ = self.buf.split_to(len);
                    return Ok(frame);
                }
                Err(ParseError::Incomplete) => {}
                Err(e) => return Err(std::io::Error::other(e.to_string())),
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
    }
}

/// Appends `args` as a RESP array of bulk strings.
fn encode(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}
