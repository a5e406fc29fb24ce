//! Unit tests of the parser: every frame type, and every request error path with the exact
//! text Redis 7.0.15 sends (each case below was checked against a real redis-server).

use super::*;

fn frame(s: &[u8]) -> Result<(Frame, usize), ParseError> {
    parse_frame(&Bytes::copy_from_slice(s), &Limits::default())
}

fn one(s: &[u8]) -> Frame {
    let (f, used) = frame(s).expect("valid frame");
    assert_eq!(used, s.len(), "whole input used for {s:?}");
    f
}

fn b(s: &str) -> Frame {
    Frame::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

fn cmd(s: &[u8]) -> Result<Option<Vec<Bytes>>, ParseError> {
    cmd_with(s, &Limits::default())
}

fn cmd_with(s: &[u8], limits: &Limits) -> Result<Option<Vec<Bytes>>, ParseError> {
    parse_command(&mut BytesMut::from(s), limits)
}

fn args(s: &[u8]) -> Vec<&'static str> {
    let argv = cmd(s).expect("valid").expect("complete");
    argv.iter().map(|a| &*String::from_utf8(a.to_vec()).unwrap().leak()).collect()
}

fn err(s: &[u8]) -> String {
    match cmd(s) {
        Err(ParseError::Invalid(m)) => m,
        other => panic!("expected an error for {s:?}, got {other:?}"),
    }
}

/// Every proper prefix of a valid frame needs more bytes.
fn prefixes_incomplete(s: &[u8]) {
    for cut in 0..s.len() {
        assert_eq!(frame(&s[..cut]), Err(ParseError::Incomplete), "prefix {:?}", &s[..cut]);
    }
}

#[test]
fn resp2_scalars() {
    assert_eq!(one(b"+OK\r\n"), Frame::simple("OK"));
    assert_eq!(one(b"+\r\n"), Frame::simple(""));
    assert_eq!(one(b"-ERR bad thing\r\n"), Frame::error("ERR bad thing"));
    assert_eq!(one(b":0\r\n"), Frame::Integer(0));
    assert_eq!(one(b":-42\r\n"), Frame::Integer(-42));
    assert_eq!(one(b":9223372036854775807\r\n"), Frame::Integer(i64::MAX));
    assert_eq!(one(b":-9223372036854775808\r\n"), Frame::Integer(i64::MIN));
    assert_eq!(one(b"$3\r\nfoo\r\n"), b("foo"));
    assert_eq!(one(b"$0\r\n\r\n"), b(""));
    assert_eq!(one(b"$4\r\na\r\nb\r\n"), b("a\r\nb"));
    assert_eq!(one(b"$-1\r\n"), Frame::Null);
    assert_eq!(one(b"*-1\r\n"), Frame::NullArray);
}

#[test]
fn resp2_arrays() {
    assert_eq!(one(b"*0\r\n"), Frame::Array(vec![]));
    assert_eq!(one(b"*3\r\n:1\r\n$1\r\na\r\n$-1\r\n"), Frame::Array(vec![Frame::Integer(1), b("a"), Frame::Null]));
    let nested = one(b"*2\r\n*1\r\n+x\r\n*-1\r\n");
    assert_eq!(nested, Frame::Array(vec![Frame::Array(vec![Frame::simple("x")]), Frame::NullArray]));
}

#[test]
fn resp3_scalars() {
    assert_eq!(one(b"_\r\n"), Frame::Null);
    assert_eq!(one(b"#t\r\n"), Frame::Boolean(true));
    assert_eq!(one(b"#f\r\n"), Frame::Boolean(false));
    assert_eq!(one(b",1.5\r\n"), Frame::Double(1.5));
    assert_eq!(one(b",-0.25\r\n"), Frame::Double(-0.25));
    assert_eq!(one(b",3\r\n"), Frame::Double(3.0));
    assert_eq!(one(b",1e+20\r\n"), Frame::Double(1e20));
    assert_eq!(one(b",inf\r\n"), Frame::Double(f64::INFINITY));
    assert_eq!(one(b",-inf\r\n"), Frame::Double(f64::NEG_INFINITY));
    assert!(matches!(one(b",nan\r\n"), Frame::Double(d) if d.is_nan()));
    assert_eq!(one(b"(3492890328409238509324850943850943825024385\r\n"), {
        Frame::BigNumber(Bytes::from_static(b"3492890328409238509324850943850943825024385"))
    });
    assert_eq!(one(b"=15\r\ntxt:Some string\r\n"), Frame::Verbatim(*b"txt", Bytes::from_static(b"Some string")));
    assert_eq!(one(b"=4\r\nmkd:\r\n"), Frame::Verbatim(*b"mkd", Bytes::new()));
    assert_eq!(one(b"!21\r\nSYNTAX invalid syntax\r\n"), Frame::error("SYNTAX invalid syntax"));
}

#[test]
fn resp3_aggregates() {
    let map = one(b"%2\r\n+first\r\n:1\r\n$6\r\nsecond\r\n,2.5\r\n");
    let want = vec![(Frame::simple("first"), Frame::Integer(1)), (b("second"), Frame::Double(2.5))];
    assert_eq!(map, Frame::Map(want));
    assert_eq!(one(b"%0\r\n"), Frame::Map(vec![]));
    assert_eq!(one(b"~2\r\n+a\r\n+b\r\n"), Frame::Set(vec![Frame::simple("a"), Frame::simple("b")]));
    assert_eq!(one(b"~0\r\n"), Frame::Set(vec![]));
    let push = one(b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n");
    assert_eq!(push, Frame::Push(vec![b("message"), b("ch"), b("hi")]));
}

#[test]
fn attributes_are_skipped() {
    assert_eq!(one(b"|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.19\r\n:5\r\n"), Frame::Integer(5));
    // Inside an aggregate too, and several in a row.
    let arr = one(b"*2\r\n|1\r\n+k\r\n+v\r\n:1\r\n|0\r\n|0\r\n:2\r\n");
    assert_eq!(arr, Frame::Array(vec![Frame::Integer(1), Frame::Integer(2)]));
    prefixes_incomplete(b"|1\r\n+k\r\n+v\r\n:1\r\n");
}

#[test]
fn attribute_chains_cannot_blow_the_stack() {
    let chain = b"|0\r\n".repeat(100_000);
    assert!(matches!(frame(&chain), Err(ParseError::Invalid(_))));
}

#[test]
fn deep_nesting_is_rejected() {
    let deep = b"*1\r\n".repeat(200);
    assert_eq!(frame(&deep), Err(ParseError::Invalid("nesting too deep".into())));
    let mut ok = b"*1\r\n".repeat(100);
    ok.extend_from_slice(b":1\r\n");
    assert!(frame(&ok).is_ok());
}

#[test]
fn frame_length_excludes_what_follows() {
    let (f, used) = frame(b"+OK\r\n:1\r\n").unwrap();
    assert_eq!((f, used), (Frame::ok(), 5));
    let (f, used) = frame(b"$1\r\nx\r\n$").unwrap();
    assert_eq!((f, used), (b("x"), 7));
}

#[test]
fn every_proper_prefix_is_incomplete() {
    let samples: &[&[u8]] = &[
        b"+OK\r\n",
        b"-ERR x\r\n",
        b":12\r\n",
        b"$3\r\nfoo\r\n",
        b"$-1\r\n",
        b"*-1\r\n",
        b"*2\r\n$1\r\na\r\n:2\r\n",
        b"%1\r\n+a\r\n#t\r\n",
        b"~1\r\n,inf\r\n",
        b">1\r\n(12\r\n",
        b"=6\r\ntxt:hi\r\n",
        b"!3\r\nERR\r\n",
        b"_\r\n",
    ];
    for s in samples {
        prefixes_incomplete(s);
        one(s);
    }
}

#[test]
fn malformed_frames_are_invalid() {
    let bad: &[(&[u8], &str)] = &[
        (b"?x\r\n", "unknown type byte '?'"),
        (b":12a\r\n", "invalid integer"),
        (b":\r\n", "invalid integer"),
        (b"$3\r\nfooXY", "bulk string not terminated by CRLF"),
        (b"$-2\r\n", "invalid bulk length"),
        (b"*-2\r\n", "invalid multibulk length"),
        (b"#x\r\n", "invalid boolean"),
        (b",abc\r\n", "invalid double"),
        (b"=2\r\nab\r\n", "invalid verbatim string"),
        (b"+OK\rX", "expected CRLF"),
    ];
    for (input, msg) in bad {
        assert_eq!(frame(input), Err(ParseError::Invalid(msg.to_string())), "{input:?}");
    }
}

#[test]
fn multibulk_commands() {
    assert_eq!(args(b"*2\r\n$4\r\necho\r\n$3\r\nabc\r\n"), ["echo", "abc"]);
    assert_eq!(args(b"*1\r\n$0\r\n\r\n"), [""]);
    // Redis does not check the two bytes after a bulk argument.
    assert_eq!(args(b"*1\r\n$4\r\npingXX"), ["ping"]);
    // Zero and negative counts are empty commands, which the server skips.
    assert!(args(b"*0\r\n").is_empty());
    assert!(args(b"*-1\r\n").is_empty());
    assert!(args(b"*-5\r\n").is_empty());
}

#[test]
fn commands_are_consumed_one_at_a_time() {
    let mut buf = BytesMut::from(&b"*1\r\n$4\r\nping\r\nping\r\n*1\r\n$4\r\nPI"[..]);
    let limits = Limits::default();
    assert_eq!(parse_command(&mut buf, &limits).unwrap().unwrap(), vec![Bytes::from_static(b"ping")]);
    assert_eq!(parse_command(&mut buf, &limits).unwrap().unwrap(), vec![Bytes::from_static(b"ping")]);
    assert_eq!(parse_command(&mut buf, &limits), Ok(None));
    assert_eq!(&buf[..], b"*1\r\n$4\r\nPI", "an incomplete command stays buffered");
}

#[test]
fn multibulk_count_errors() {
    for input in [&b"*abc\r\n"[..], b"*+1\r\n", b"*01\r\n", b"*\r\n", b"*2147483648\r\n", b"*1 \r\n"] {
        assert_eq!(err(input), "invalid multibulk length", "{input:?}");
    }
    // Redis 7.0 accepts any count up to INT_MAX (1024*1024 is only for unauthenticated clients).
    assert_eq!(cmd(b"*1048577\r\n"), Ok(None));
    assert_eq!(cmd(b"*2147483647\r\n"), Ok(None));
    let long = [b"*".as_slice(), &b"1".repeat(64 * 1024)].concat();
    assert_eq!(err(&long), "too big mbulk count string");
    assert_eq!(cmd(&long[..64 * 1024]), Ok(None));
    // A long count line that does end is judged by its number.
    let ended = [b"*".as_slice(), &b"1".repeat(65534), b"\r\n"].concat();
    assert_eq!(err(&ended), "invalid multibulk length");
}

#[test]
fn bulk_length_errors() {
    for input in [
        &b"*1\r\n$-1\r\n"[..],
        b"*1\r\n$-5\r\n",
        b"*1\r\n$abc\r\n",
        b"*1\r\n$\r\n",
        b"*1\r\n$+3\r\nfoo\r\n",
        b"*1\r\n$04\r\nping\r\n",
        b"*2\r\n$4\r\necho\r\n$-0\r\n",
        b"*1\r\n$536870913\r\n",
    ] {
        assert_eq!(err(input), "invalid bulk length", "{input:?}");
    }
    assert_eq!(cmd(b"*1\r\n$536870912\r\n"), Ok(None), "exactly proto-max-bulk-len is allowed");
    let small = Limits { max_bulk_len: 3, ..Limits::default() };
    assert_eq!(cmd_with(b"*1\r\n$4\r\n", &small), Err(ParseError::Invalid("invalid bulk length".into())));
    let long = [b"*1\r\n$".as_slice(), &b"1".repeat(64 * 1024)].concat();
    assert_eq!(err(&long), "too big bulk count string");
}

#[test]
fn expected_dollar_errors() {
    assert_eq!(err(b"*1\r\nx3\r\n"), "expected '$', got 'x'");
    assert_eq!(err(b"*1\r\n:3\r\n"), "expected '$', got ':'");
    // Redis finds the count line's end by its '\r' and skips the byte after it blindly.
    assert_eq!(err(b"*1\r$4\r\nping\r\n"), "expected '$', got '4'");
    // CR and LF are shown as spaces (addReplyErrorFormat keeps replies on one line).
    assert_eq!(err(b"*1\r\n\r\n"), "expected '$', got ' '");
    assert_eq!(err(b"*1\rx\n$4\r\nping\r\n"), "expected '$', got ' '");
}

#[test]
fn nul_bytes_in_request_lines_stall_like_redis() {
    // Redis searches header lines with strchr, which stops at a NUL: it waits for more.
    assert_eq!(cmd(b"*1\x00\r\n$4\r\nping\r\n"), Ok(None));
    assert_eq!(cmd(b"*1\r\n$4\x00\r\nping\r\n"), Ok(None));
    assert_eq!(cmd(b"*1\r\n\x003\r\n"), Ok(None));
    assert_eq!(cmd(b"ping\x00\r\n"), Ok(None));
    let big = [b"ping\x00\r\n".as_slice(), &b"x".repeat(70_000)].concat();
    assert_eq!(err(&big), "too big inline request");
    // Bulk payloads are binary safe.
    assert_eq!(cmd(b"*1\r\n$2\r\n\x00\x00\r\n").unwrap().unwrap(), vec![Bytes::from_static(b"\x00\x00")]);
}

#[test]
fn inline_commands() {
    assert_eq!(args(b"ping\r\n"), ["ping"]);
    assert_eq!(args(b"ping\n"), ["ping"]);
    assert_eq!(args(b"set k \"a b\"\r\n"), ["set", "k", "a b"]);
    assert_eq!(args(b"echo \"\"\r\n"), ["echo", ""]);
    assert_eq!(args(b"echo '' \r\n"), ["echo", ""]);
    assert!(args(b"\r\n").is_empty());
    assert!(args(b"\n").is_empty());
    assert!(args(b"   \r\n").is_empty());
    assert_eq!(cmd(b"ping"), Ok(None));
    assert_eq!(cmd(b"ping\r"), Ok(None));
}

#[test]
fn inline_whitespace_follows_sdssplitargs() {
    // Blanks are skipped with isspace (vertical tab and form feed included) ...
    assert_eq!(args(b"\x0becho a\r\n"), ["echo", "a"]);
    assert_eq!(args(b"echo \"a\"\x0b\r\n"), ["echo", "a"]);
    // ... but a bare token only ends at space, tab, CR or LF.
    assert_eq!(args(b"echo a\x0bb\r\n"), ["echo", "a\x0bb"]);
    assert_eq!(args(b"echo a\x0cb\r\n"), ["echo", "a\x0cb"]);
    assert_eq!(args(b"echo a\rb\r\n"), ["echo", "a", "b"]);
    assert_eq!(args(b"echo \"a\rb\"\r\n"), ["echo", "a\rb"]);
    assert_eq!(args(b"echo \"a\"\r\r\n"), ["echo", "a"]);
}

#[test]
fn inline_escapes() {
    assert_eq!(args(b"echo \"\\x4g\"\r\n"), ["echo", "x4g"]);
    assert_eq!(args(b"echo \"\\x41\\q\"\r\n"), ["echo", "Aq"]);
    assert_eq!(args(b"echo 'a\\'b'\r\n"), ["echo", "a'b"]);
    assert_eq!(args(b"echo 'a\\nb'\r\n"), ["echo", "a\\nb"]);
}

#[test]
fn inline_errors() {
    assert_eq!(err(b"echo \"abc\r\n"), "unbalanced quotes in request");
    assert_eq!(err(b"echo 'a\r\n"), "unbalanced quotes in request");
    assert_eq!(err(b"echo \"a\"b\r\n"), "unbalanced quotes in request");
    assert_eq!(err(b"echo \"a\\\"\r\n"), "unbalanced quotes in request");
    let long = b"x".repeat(64 * 1024 + 1);
    assert_eq!(err(&long), "too big inline request");
    assert_eq!(cmd(&long[..64 * 1024]), Ok(None), "exactly the limit still waits");
}
