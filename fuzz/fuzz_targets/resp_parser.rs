//! Fuzz target: the RESP parsers on arbitrary bytes. Neither may panic; whatever parses must
//! encode to bytes that parse back to the same encoding (RESP3 and RESP2), and every command
//! must survive being re-encoded as a multibulk request.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use raftis::protocol::{encode, parse_command, parse_frame, Frame, Limits, RespVersion};

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    frames(data, &limits);
    commands(data, &limits);
});

fn wire(frame: &Frame, ver: RespVersion) -> Bytes {
    let mut out = BytesMut::new();
    encode(frame, ver, &mut out);
    out.freeze()
}

/// Encoding is a fixed point after one parse: attributes are dropped, `!` becomes `-`,
/// NaN stays NaN, so compare bytes rather than frames.
fn frames(data: &[u8], limits: &Limits) {
    let input = Bytes::copy_from_slice(data);
    let Ok((frame, used)) = parse_frame(&input, limits) else { return };
    assert!(used > 0 && used <= data.len());
    for ver in [RespVersion::Resp3, RespVersion::Resp2] {
        let first = wire(&frame, ver);
        let (again, used) = parse_frame(&first, limits).expect("an encoded frame parses");
        assert_eq!(used, first.len(), "the whole encoding is one frame");
        if ver == RespVersion::Resp3 {
            assert_eq!(wire(&again, ver), first, "RESP3 encoding is stable");
        }
    }
}

/// Every command parsed from the stream re-encodes to a request that yields it again.
fn commands(data: &[u8], limits: &Limits) {
    let mut buf = BytesMut::from(data);
    while let Ok(Some(argv)) = parse_command(&mut buf, limits) {
        let mut req = BytesMut::new();
        encode(&Frame::Array(argv.iter().cloned().map(Frame::Bulk).collect()), RespVersion::Resp2, &mut req);
        let again = parse_command(&mut req, limits).expect("valid").expect("complete");
        assert_eq!(again, argv);
        assert!(req.is_empty());
    }
}
