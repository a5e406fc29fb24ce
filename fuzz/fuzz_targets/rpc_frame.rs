//! Fuzz target: the internal RPC protocol's frame reader and body decoder on arbitrary bytes
//! (what a peer, or anyone reaching the Raft port, can send). Reading frames from the stream
//! and decoding each body as the request or response its header names must never panic or
//! allocate from a bogus length; whatever decodes must encode to a frame that reads and
//! decodes again to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use raftis::raft::rpc::message::{RpcRequest, RpcResponse};
use raftis::raft::rpc::wire::{decode, encode, read_frame, Header, Kind, WireError};
use std::future::Future;

/// Frames above this are refused (the real limit is 1 GiB; a small one reaches that path).
const MAX: u32 = 1 << 20;

/// Reading from a byte slice never waits, so one poll completes the future.
fn read(src: &mut &[u8]) -> Result<(Header, Vec<u8>), WireError> {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let fut = std::pin::pin!(read_frame(src, MAX));
    match fut.poll(&mut cx) {
        std::task::Poll::Ready(r) => r,
        std::task::Poll::Pending => panic!("reading a slice never waits"),
    }
}

/// Encodes `body` under `header`, reads the frame back, decodes it and encodes it again:
/// the two encodings must be equal (postcard may accept non-canonical input, so the first
/// decode is not compared with the fuzzer's bytes).
fn round_trip<T: serde::Serialize + serde::de::DeserializeOwned>(header: Header, body: &T) {
    let first = encode(header, body, MAX).expect("a decoded body encodes");
    let mut src = &first[..];
    let (again_header, again_body) = read(&mut src).expect("an encoded frame reads");
    assert!(src.is_empty(), "one frame, all of it");
    assert_eq!(again_header, header);
    let again: T = decode(&again_body).expect("an encoded body decodes");
    assert_eq!(encode(header, &again, MAX).expect("encodes"), first, "re-encoding is a fixed point");
}

fuzz_target!(|data: &[u8]| {
    let mut src = data;
    while let Ok((header, body)) = read(&mut src) {
        match header.kind {
            Kind::Request => {
                if let Ok(req) = decode::<RpcRequest>(&body) {
                    round_trip(header, &req);
                }
            }
            Kind::Response => {
                if let Ok(resp) = decode::<RpcResponse>(&body) {
                    round_trip(header, &resp);
                }
            }
        }
    }
});
