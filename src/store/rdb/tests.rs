//! Round trips of every value kind through DUMP and RESTORE's format, known bytes from
//! redis-server 7.0.15, and corrupt or truncated payloads (refused, never a panic).

use super::*;
use crate::store::hash::HashValue;
use crate::store::list::ListValue;
use crate::store::set::SetValue;
use crate::store::stream::{Group, NodeLimits, StreamId, StreamValue};
use crate::store::zset::ZSetValue;
use bytes::Bytes;

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn samples() -> Vec<Value> {
    let mut stream = StreamValue::default();
    for i in 1..=250u64 {
        let pairs = if i % 7 == 0 { vec![b("other"), b("x")] } else { vec![b("f"), b(&i.to_string()), b("g"), b("v")] };
        stream.append(StreamId::new(i, 0), &pairs, NodeLimits::default());
        stream.last_id = StreamId::new(i, 0);
    }
    stream.delete(StreamId::new(3, 0));
    let mut g = Group::new(StreamId::new(5, 0), 5);
    g.create_consumer(&b("alice"), 1234);
    g.deliver(StreamId::new(4, 0), &b("alice"), 999);
    g.deliver(StreamId::new(5, 0), &b("alice"), 1000);
    stream.groups.insert(b("grp"), g);
    let big_hash: Vec<(Bytes, Bytes)> = (0..600).map(|i| (b(&format!("f{i}")), b(&format!("v{i}")))).collect();
    let mut table = crate::store::KeyMap::new();
    big_hash.iter().for_each(|(f, v)| {
        table.insert(f.clone(), v.clone());
    });
    vec![
        Value::Str(b("hello")),
        Value::Str(b("12345")),
        Value::Str(b("-9223372036854775808")),
        Value::Str(Bytes::from(vec![b'a'; 500])),
        Value::Str(Bytes::from((0..3000u32).map(|i| (i * 7919 % 256) as u8).collect::<Vec<_>>())),
        Value::List(Box::new(ListValue { items: (0..3000).map(|i| b(&format!("item-{i}"))).collect() })),
        Value::List(Box::new(ListValue {
            items: [b("1"), b("x"), Bytes::from(vec![b'z'; 10_000])].into_iter().collect(),
        })),
        Value::Hash(Box::new(HashValue::Listpack(vec![(b("a"), b("1")), (b("b"), b("two"))]))),
        Value::Hash(Box::new(HashValue::Table(table))),
        Value::Set(Box::new(SetValue::from_members([b("1"), b("-5"), b("70000"), b("9000000000")]))),
        Value::Set(Box::new(SetValue::from_members((0..100).map(|i| b(&format!("m{i}")))))),
        Value::ZSet(Box::new(ZSetValue::from_entries(vec![(b("a"), 1.0), (b("b"), 2.5), (b("c"), f64::INFINITY)]))),
        Value::ZSet(Box::new(ZSetValue::from_entries(
            (0..300).map(|i| (b(&format!("m{i}")), i as f64 / 3.0)).collect(),
        ))),
        Value::Stream(Box::new(stream)),
    ]
}

#[test]
fn every_kind_round_trips_with_its_encoding() {
    for v in samples() {
        let payload = dump(&v);
        let back = load(&payload).unwrap_or_else(|e| panic!("{e:?} for {}", v.type_name()));
        assert_eq!(back.encoding(), v.encoding());
        assert_eq!(back, v, "{} {}", v.type_name(), v.encoding());
        assert_eq!(dump(&back), payload, "re-dump of {}", v.type_name());
    }
}

#[test]
fn known_payloads_of_redis_7_0_15() {
    // DUMP of SET k hello / SET k 12345 / RPUSH l a b c on redis-server 7.0.15.
    let hello = b"\x00\x05hello\x0a\x00cr\xdfve4 \n";
    assert_eq!(dump(&Value::Str(b("hello"))), hello);
    assert_eq!(load(hello), Ok(Value::Str(b("hello"))));
    let num = b"\x00\xc190\n\x00\x9d\x94\xea'\x93\xfc\x08\xb9";
    assert_eq!(dump(&Value::Str(b("12345"))), num);
    let list =
        b"\x12\x01\x02\x10\x10\x00\x00\x00\x03\x00\x81a\x02\x81b\x02\x81c\x02\xff\n\x00\xc8\x18\xb9\x0c\x953R\x9e";
    assert_eq!(dump(&Value::List(Box::new(ListValue { items: [b("a"), b("b"), b("c")].into_iter().collect() }))), list);
}

#[test]
fn the_checksum_and_version_are_checked() {
    let mut payload = dump(&Value::Str(b("hello")));
    assert!(load(&payload).is_ok());
    let n = payload.len();
    payload[n - 1] ^= 1;
    assert_eq!(load(&payload), Err(LoadError::VersionOrChecksum));
    let mut newer = dump(&Value::Str(b("hello")));
    let at = newer.len() - 10;
    newer[at] = 11;
    assert_eq!(load(&newer), Err(LoadError::VersionOrChecksum));
    assert_eq!(load(b"short"), Err(LoadError::VersionOrChecksum));
}

/// A payload whose body is `body`, with a correct trailer.
fn sealed(body: &[u8]) -> Vec<u8> {
    seal(body.to_vec())
}

#[test]
fn every_truncation_of_every_sample_is_refused() {
    for v in samples() {
        let mut body = Vec::new();
        write_object(&mut body, &v);
        // Cut inside the body (then sealed, so only the content check can catch it).
        let step = (body.len() / 97).max(1);
        for cut in (0..body.len()).step_by(step) {
            assert_eq!(load(&sealed(&body[..cut])), Err(LoadError::BadFormat), "{} cut {cut}", v.type_name());
        }
        // Trailing garbage is refused too.
        let mut long = body.clone();
        long.push(0);
        assert_eq!(load(&sealed(&long)), Err(LoadError::BadFormat));
    }
}

#[test]
fn flipped_bytes_never_panic() {
    for v in samples() {
        let mut body = Vec::new();
        write_object(&mut body, &v);
        let step = (body.len() / 211).max(1);
        for at in (0..body.len()).step_by(step) {
            for bit in [1u8, 0x40, 0x80] {
                let mut bad = body.clone();
                bad[at] ^= bit;
                // Whatever still loads must DUMP to a payload that is a fixed point.
                if let Ok(v) = load(&sealed(&bad)) {
                    let first = dump(&v);
                    assert_eq!(load(&first).map(|w| dump(&w)), Ok(first));
                }
            }
        }
    }
}

#[test]
fn bad_content_is_refused() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("unknown type", vec![99, 0]),
        ("module type", vec![7, 0]),
        ("empty set", vec![types::SET, 0]),
        // Found by the dump_payload fuzz target: an empty old-style list loaded, then its DUMP
        // (a quicklist of no nodes) did not.
        ("empty list", vec![types::LIST, 0]),
        ("empty quicklist", vec![types::LIST_QUICKLIST_2, 0]),
        ("empty hash", vec![types::HASH, 0]),
        ("empty zset", vec![types::ZSET_2, 0]),
        ("empty listpack hash", vec![types::HASH_LISTPACK, 7, 7, 0, 0, 0, 0, 0, 0xff]),
        ("duplicate set member", vec![types::SET, 2, 1, b'a', 1, b'a']),
        ("duplicate hash field", vec![types::HASH, 2, 1, b'a', 1, b'1', 1, b'a', 1, b'2']),
        ("NaN score", vec![types::ZSET, 1, 1, b'a', 253]),
        ("huge count", vec![types::LIST, 0x81, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
        ("huge string", vec![types::STRING, 0x80, 0x7f, 0xff, 0xff, 0xff, b'x']),
        ("huge LZF claim", vec![types::STRING, 0xC3, 2, 0x80, 0x7f, 0xff, 0xff, 0xff, 0, b'a']),
        ("bad quicklist container", vec![types::LIST_QUICKLIST_2, 1, 3, 1, b'a']),
    ];
    for (what, body) in cases {
        assert_eq!(load(&sealed(&body)), Err(LoadError::BadFormat), "{what}");
    }
}

#[test]
fn older_encodings_load() {
    // A version-1 list of one element, an old ZSET with text scores, a zipmap hash.
    let list = [types::LIST, 2, 1, b'a', 0xC0, 7];
    assert_eq!(
        load(&sealed(&list)),
        Ok(Value::List(Box::new(ListValue { items: [b("a"), b("7")].into_iter().collect() })))
    );
    let zset = [types::ZSET, 1, 1, b'm', 3, b'1', b'.', b'5'];
    assert_eq!(load(&sealed(&zset)), Ok(Value::ZSet(Box::new(ZSetValue::from_entries(vec![(b("m"), 1.5)])))));
    let zipmap = [2u8, 1, b'k', 2, 0, b'v', b'w', 255];
    let mut hash = vec![types::HASH_ZIPMAP, zipmap.len() as u8];
    hash.extend_from_slice(&zipmap);
    assert_eq!(load(&sealed(&hash)), Ok(Value::Hash(Box::new(HashValue::Listpack(vec![(b("k"), b("vw"))])))));
}
