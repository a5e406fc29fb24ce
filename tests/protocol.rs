//! Property tests of the RESP parser and encoder: round trips, incremental feeding of
//! pipelined commands split at every byte, prefixes of valid frames, and arbitrary input.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use raftis::protocol::{
    encode, parse_command, parse_command_into, parse_frame, CommandScan, Frame, Limits, ParseError, RespVersion,
};

/// One line of text (simple string, error): anything but CR and LF.
fn line_text() -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>().prop_filter("no CR/LF", |b| *b != b'\r' && *b != b'\n'), 0..24)
        .prop_map(Bytes::from)
}

fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

/// Doubles that survive `%.17g` and back exactly: everything but NaN (which is not equal
/// to itself), with the infinities made likely.
fn double() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>().prop_filter("not NaN", |d| !d.is_nan()),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        (-1000i64..1000).prop_map(|n| n as f64 / 8.0),
    ]
}

fn big_number() -> impl Strategy<Value = Bytes> {
    "-?[1-9][0-9]{0,40}".prop_map(Bytes::from)
}

/// Leaves shared by RESP2 and RESP3.
fn resp2_leaf() -> impl Strategy<Value = Frame> {
    prop_oneof![
        line_text().prop_map(Frame::Simple),
        line_text().prop_map(Frame::Error),
        any::<i64>().prop_map(Frame::Integer),
        bytes(40).prop_map(Frame::Bulk),
        Just(Frame::Null),
    ]
}

/// Every frame kind that reads back as itself in RESP3. `NullArray` is absent: RESP3 has
/// one null, `_`, which reads back as `Null`.
fn resp3_frame() -> impl Strategy<Value = Frame> {
    let leaf = prop_oneof![
        resp2_leaf(),
        double().prop_map(Frame::Double),
        any::<bool>().prop_map(Frame::Boolean),
        (any::<[u8; 3]>(), bytes(30)).prop_map(|(f, t)| Frame::Verbatim(f, t)),
        big_number().prop_map(Frame::BigNumber),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let items = proptest::collection::vec(inner.clone(), 0..6);
        prop_oneof![
            items.clone().prop_map(Frame::Array),
            items.clone().prop_map(Frame::Set),
            items.prop_map(Frame::Push),
            proptest::collection::vec((inner.clone(), inner), 0..4).prop_map(Frame::Map),
        ]
    })
}

/// Frames that read back as themselves in RESP2.
fn resp2_frame() -> impl Strategy<Value = Frame> {
    prop_oneof![resp2_leaf(), Just(Frame::NullArray)]
        .prop_recursive(4, 48, 6, |inner| proptest::collection::vec(inner, 0..6).prop_map(Frame::Array))
}

fn wire(frame: &Frame, ver: RespVersion) -> Bytes {
    let mut out = BytesMut::new();
    encode(frame, ver, &mut out);
    out.freeze()
}

/// A client command and its wire form: multibulk with arbitrary bytes, or inline with plain
/// words (inline cannot carry every byte).
fn command() -> impl Strategy<Value = (Vec<Bytes>, Vec<u8>)> {
    let multibulk = proptest::collection::vec(bytes(20), 1..5).prop_map(|argv| {
        let mut out = format!("*{}\r\n", argv.len()).into_bytes();
        for a in &argv {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        (argv, out)
    });
    let inline = (proptest::collection::vec("[a-zA-Z0-9_:.-]{1,8}", 1..5), any::<bool>()).prop_map(|(words, crlf)| {
        let mut out = words.join(" ").into_bytes();
        out.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
        (words.into_iter().map(Bytes::from).collect(), out)
    });
    prop_oneof![3 => multibulk, 1 => inline]
}

/// Parses every complete command in `buf`, panicking on a protocol error.
fn drain(buf: &mut BytesMut, out: &mut Vec<Vec<Bytes>>) {
    while let Some(argv) = parse_command(buf, &Limits::default()).expect("valid stream") {
        out.push(argv);
    }
}

/// Bytes skewed towards RESP syntax, so random input gets past the first line.
fn resp_ish() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        4 => proptest::sample::select(b"*$:+-_,#!=(%~>|\r\n0123456789-".to_vec()),
        1 => any::<u8>(),
    ];
    proptest::collection::vec(byte, 0..200)
}

proptest! {
    #[test]
    fn resp3_round_trip(frame in resp3_frame()) {
        let bytes = wire(&frame, RespVersion::Resp3);
        let (parsed, used) = parse_frame(&bytes, &Limits::default()).expect("parses");
        prop_assert_eq!(used, bytes.len());
        prop_assert_eq!(parsed, frame);
    }

    #[test]
    fn resp2_round_trip(frame in resp2_frame()) {
        let bytes = wire(&frame, RespVersion::Resp2);
        let (parsed, used) = parse_frame(&bytes, &Limits::default()).expect("parses");
        prop_assert_eq!(used, bytes.len());
        prop_assert_eq!(parsed, frame);
    }

    #[test]
    fn proper_prefixes_of_frames_are_incomplete(frame in resp3_frame()) {
        let bytes = wire(&frame, RespVersion::Resp3);
        for cut in 0..bytes.len() {
            let prefix = bytes.slice(..cut);
            prop_assert_eq!(parse_frame(&prefix, &Limits::default()), Err(ParseError::Incomplete));
        }
    }

    #[test]
    fn proper_prefixes_of_commands_wait((argv, bytes) in command()) {
        for cut in 0..bytes.len() {
            let mut buf = BytesMut::from(&bytes[..cut]);
            prop_assert_eq!(parse_command(&mut buf, &Limits::default()), Ok(None));
            prop_assert_eq!(&buf[..], &bytes[..cut], "nothing consumed");
        }
        let mut buf = BytesMut::from(&bytes[..]);
        prop_assert_eq!(parse_command(&mut buf, &Limits::default()), Ok(Some(argv)));
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn pipelines_split_anywhere_parse_the_same(cmds in proptest::collection::vec(command(), 1..6)) {
        let want: Vec<Vec<Bytes>> = cmds.iter().map(|(argv, _)| argv.clone()).collect();
        let stream: Vec<u8> = cmds.iter().flat_map(|(_, b)| b.iter().copied()).collect();
        for cut in 0..=stream.len() {
            let (mut buf, mut got) = (BytesMut::new(), Vec::new());
            buf.extend_from_slice(&stream[..cut]);
            drain(&mut buf, &mut got);
            buf.extend_from_slice(&stream[cut..]);
            drain(&mut buf, &mut got);
            prop_assert!(buf.is_empty());
            prop_assert_eq!(&got, &want, "split at {}", cut);
        }
    }

    #[test]
    fn pipelines_fed_in_random_chunks_parse_the_same(
        cmds in proptest::collection::vec(command(), 1..8),
        chunks in proptest::collection::vec(1usize..12, 1..40),
    ) {
        let want: Vec<Vec<Bytes>> = cmds.iter().map(|(argv, _)| argv.clone()).collect();
        let stream: Vec<u8> = cmds.iter().flat_map(|(_, b)| b.iter().copied()).collect();
        let (mut buf, mut got, mut pos) = (BytesMut::new(), Vec::new(), 0);
        // The server's way: one scan state kept across reads, so a request resumes where it
        // stopped.
        let (mut scan, mut argv) = (CommandScan::default(), Vec::new());
        for size in chunks.iter().cycle() {
            if pos >= stream.len() {
                break;
            }
            let end = (pos + size).min(stream.len());
            buf.extend_from_slice(&stream[pos..end]);
            pos = end;
            while parse_command_into(&mut buf, &Limits::default(), &mut scan, &mut argv).expect("valid stream") {
                got.push(std::mem::take(&mut argv));
            }
        }
        prop_assert_eq!(got, want);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        exercise(&data);
    }

    #[test]
    fn resp_like_bytes_never_panic(data in resp_ish()) {
        exercise(&data);
    }
}

/// Runs both parsers over `data`; a panic fails the test. Every `Ok` must make progress.
fn exercise(data: &[u8]) {
    let bytes = Bytes::copy_from_slice(data);
    if let Ok((_, used)) = parse_frame(&bytes, &Limits::default()) {
        assert!(used > 0 && used <= data.len());
    }
    let mut buf = BytesMut::from(data);
    loop {
        let before = buf.len();
        match parse_command(&mut buf, &Limits::default()) {
            Ok(Some(_)) => assert!(buf.len() < before, "a command consumes bytes"),
            Ok(None) | Err(_) => break,
        }
    }
}
