//! Redis Cluster hash slots: CRC16-XMODEM of the key (or of its `{hash tag}`) modulo 16384,
//! exactly as Redis's `keyHashSlot`, and the slot queries on the keyspace
//! (`CLUSTER KEYSLOT`, `COUNTKEYSINSLOT`, `GETKEYSINSLOT`).

use crate::cmd::args;
use crate::protocol::Frame;
use crate::store::Keyspace;
use bytes::Bytes;

/// Number of hash slots of a Redis Cluster.
pub const SLOTS: u16 = 16384;

/// CRC16 with polynomial 0x1021, initial value 0, no reflection (XMODEM), as Redis uses.
pub fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in data {
        crc ^= (b as u16) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
        }
    }
    crc
}

/// The hash slot of `key`: if the key contains `{...}` with at least one byte between the
/// first `{` and the first `}` after it, only those bytes are hashed.
pub fn key_slot(key: &[u8]) -> u16 {
    let hashed = match key.iter().position(|&c| c == b'{') {
        Some(open) => match key[open + 1..].iter().position(|&c| c == b'}') {
            Some(len) if len > 0 => &key[open + 1..open + 1 + len],
            _ => key,
        },
        None => key,
    };
    crc16(hashed) & (SLOTS - 1)
}

/// A slot argument (`Err` is the reply: not an integer, or `invalid` when out of range).
fn slot_arg(arg: &[u8], invalid: &str) -> Result<u16, Frame> {
    let n = args::int(arg)?;
    if (0..SLOTS as i64).contains(&n) {
        Ok(n as u16)
    } else {
        Err(Frame::error(invalid))
    }
}

/// CLUSTER KEYSLOT key
pub fn keyslot(argv: &[Bytes]) -> Frame {
    Frame::Integer(key_slot(&argv[2]) as i64)
}

/// CLUSTER COUNTKEYSINSLOT slot: live keys of DB 0 in `slot` (a scan of the keyspace).
pub fn countkeysinslot(ks: &Keyspace, now_ms: u64, argv: &[Bytes]) -> Frame {
    match slot_arg(&argv[2], "ERR Invalid slot") {
        Ok(slot) => Frame::Integer(ks.db(0).iter_live(now_ms).filter(|(k, _)| key_slot(k) == slot).count() as i64),
        Err(e) => e,
    }
}

/// CLUSTER GETKEYSINSLOT slot count: up to `count` live keys of DB 0 in `slot`, sorted.
pub fn getkeysinslot(ks: &Keyspace, now_ms: u64, argv: &[Bytes]) -> Frame {
    const INVALID: &str = "ERR Invalid slot or number of keys";
    let slot = match args::int(&argv[2]) {
        Ok(n) => n,
        Err(e) => return e,
    };
    let count = match args::int(&argv[3]) {
        Ok(n) => n,
        Err(e) => return e,
    };
    if !(0..SLOTS as i64).contains(&slot) || count < 0 {
        return Frame::error(INVALID);
    }
    let mut keys: Vec<&Bytes> =
        ks.db(0).iter_live(now_ms).filter(|(k, _)| key_slot(k) == slot as u16).map(|(k, _)| k).collect();
    // Sorted: the reply must not depend on the hash order of this node's copy.
    keys.sort();
    keys.truncate(count as usize);
    Frame::Array(keys.into_iter().map(|k| Frame::Bulk(k.clone())).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_redis() {
        // Values from redis-cli CLUSTER KEYSLOT against Redis 7 and the cluster spec.
        assert_eq!(crc16(b"123456789"), 0x31c3);
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"bar"), 5061);
        assert_eq!(key_slot(b"hello"), 866);
        assert_eq!(key_slot(b""), 0);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"{user1000}.followers"));
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        // Only the first {...} counts; an empty tag hashes the whole key.
        assert_eq!(key_slot(b"foo{bar}{zap}"), key_slot(b"bar"));
        assert_eq!(key_slot(b"foo{}{bar}"), crc16(b"foo{}{bar}") & 16383);
        assert_eq!(key_slot(b"foo{{bar}}zap"), key_slot(b"{bar"));
        assert_eq!(key_slot(b"foo{bar"), crc16(b"foo{bar") & 16383);
    }

    fn argv(parts: &[&str]) -> Vec<Bytes> {
        parts.iter().map(|p| Bytes::copy_from_slice(p.as_bytes())).collect()
    }

    #[test]
    fn slot_queries_check_their_arguments() {
        let ks = Keyspace::new(1);
        let count = |s: &str| countkeysinslot(&ks, 0, &argv(&["cluster", "countkeysinslot", s]));
        assert_eq!(count("0"), Frame::Integer(0));
        assert_eq!(count("16384"), Frame::error("ERR Invalid slot"));
        assert_eq!(count("-1"), Frame::error("ERR Invalid slot"));
        assert_eq!(count("x"), Frame::error(args::NOT_INTEGER));
        let get = |s: &str, n: &str| getkeysinslot(&ks, 0, &argv(&["cluster", "getkeysinslot", s, n]));
        assert_eq!(get("1", "10"), Frame::Array(vec![]));
        assert_eq!(get("1", "-1"), Frame::error("ERR Invalid slot or number of keys"));
        assert_eq!(get("16384", "1"), Frame::error("ERR Invalid slot or number of keys"));
        assert_eq!(get("a", "1"), Frame::error(args::NOT_INTEGER));
        assert_eq!(get("1", "b"), Frame::error(args::NOT_INTEGER));
    }
}
