//! LCS: the longest common subsequence of two string keys (the string itself, its length, or
//! the matching ranges with IDX), computed with Redis's dynamic-programming table so ties
//! resolve the same way.

use super::MAX_STRING_LEN;
use crate::cmd::args::{self, err, is, syntax};
use crate::cmd::ReadCtx;
use crate::protocol::Frame;
use crate::store::Value;
use bytes::Bytes;

#[derive(Default)]
struct LcsOptions {
    idx: bool,
    len: bool,
    withmatchlen: bool,
    minmatchlen: i64,
}

fn parse_options(args: &[Bytes]) -> Result<LcsOptions, Frame> {
    let mut o = LcsOptions::default();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if is(a, "idx") {
            o.idx = true;
        } else if is(a, "len") {
            o.len = true;
        } else if is(a, "withmatchlen") {
            o.withmatchlen = true;
        } else if let (true, Some(n)) = (is(a, "minmatchlen"), args.get(i + 1)) {
            o.minmatchlen = args::int(n)?.max(0);
            i += 1;
        } else {
            return Err(syntax());
        }
        i += 1;
    }
    if o.idx && o.len {
        return Err(err("ERR If you want both the length and indexes, please just use IDX."));
    }
    Ok(o)
}

/// A string value or empty for an absent key; `None` for another type.
fn string_or_empty(ctx: &ReadCtx, key: &[u8]) -> Option<Bytes> {
    match ctx.value(key) {
        None => Some(Bytes::new()),
        Some(Value::Str(s)) => Some(s.clone()),
        Some(_) => None,
    }
}

pub(super) fn lcs(ctx: &mut ReadCtx, argv: &[Bytes]) -> Frame {
    let (Some(a), Some(b)) = (string_or_empty(ctx, &argv[1]), string_or_empty(ctx, &argv[2])) else {
        return err("ERR The specified keys must contain string values");
    };
    let o = match parse_options(&argv[3..]) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let cells = (a.len() as u64 + 1) * (b.len() as u64 + 1);
    if cells.saturating_mul(4) > MAX_STRING_LEN {
        return err("ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len");
    }
    let table = Table::build(&a, &b);
    if o.len && !o.idx {
        return Frame::Integer(table.at(a.len(), b.len()) as i64);
    }
    let (common, ranges) = table.walk(&a, &b);
    if !o.idx {
        return Frame::Bulk(Bytes::from(common));
    }
    let matches = ranges
        .into_iter()
        .filter(|r| o.minmatchlen == 0 || r.len() as i64 >= o.minmatchlen)
        .map(|r| r.reply(o.withmatchlen))
        .collect();
    Frame::Map(vec![
        (Frame::bulk("matches"), Frame::Array(matches)),
        (Frame::bulk("len"), Frame::Integer(table.at(a.len(), b.len()) as i64)),
    ])
}

/// One matching range: inclusive byte ranges in both strings.
struct Range {
    a: (usize, usize),
    b: (usize, usize),
}

impl Range {
    fn len(&self) -> usize {
        self.a.1 - self.a.0 + 1
    }

    fn reply(&self, withlen: bool) -> Frame {
        let pair = |(s, e): (usize, usize)| Frame::Array(vec![Frame::Integer(s as i64), Frame::Integer(e as i64)]);
        let mut v = vec![pair(self.a), pair(self.b)];
        if withlen {
            v.push(Frame::Integer(self.len() as i64));
        }
        Frame::Array(v)
    }
}

/// `LCS(i, j)`: the LCS length of `a[..i]` and `b[..j]`.
struct Table {
    cols: usize,
    cells: Vec<u32>,
}

impl Table {
    fn build(a: &[u8], b: &[u8]) -> Table {
        let cols = b.len() + 1;
        let mut cells = vec![0u32; (a.len() + 1) * cols];
        for i in 1..=a.len() {
            for j in 1..=b.len() {
                cells[i * cols + j] = if a[i - 1] == b[j - 1] {
                    cells[(i - 1) * cols + j - 1] + 1
                } else {
                    cells[(i - 1) * cols + j].max(cells[i * cols + j - 1])
                };
            }
        }
        Table { cols, cells }
    }

    fn at(&self, i: usize, j: usize) -> u32 {
        self.cells[i * self.cols + j]
    }

    /// Walks back from the end as Redis does: the common subsequence and its ranges, last
    /// range first.
    fn walk(&self, a: &[u8], b: &[u8]) -> (Vec<u8>, Vec<Range>) {
        let mut common = Vec::with_capacity(self.at(a.len(), b.len()) as usize);
        let mut ranges = Vec::new();
        let mut cur: Option<Range> = None;
        let (mut i, mut j) = (a.len(), b.len());
        while i > 0 && j > 0 {
            let emit;
            if a[i - 1] == b[j - 1] {
                common.push(a[i - 1]);
                match cur.as_mut() {
                    None => cur = Some(Range { a: (i - 1, i - 1), b: (j - 1, j - 1) }),
                    // Consecutive matches walk diagonally, so the range always extends.
                    Some(r) => {
                        r.a.0 -= 1;
                        r.b.0 -= 1;
                    }
                }
                emit = cur.as_ref().is_some_and(|r| r.a.0 == 0 || r.b.0 == 0);
                i -= 1;
                j -= 1;
            } else {
                if self.at(i - 1, j) > self.at(i, j - 1) {
                    i -= 1;
                } else {
                    j -= 1;
                }
                emit = cur.is_some();
            }
            if emit {
                ranges.extend(cur.take());
            }
        }
        common.reverse();
        (common, ranges)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lcs_of_redis_example() {
        let (a, b) = (b"ohmytext", b"mynewtext");
        let t = Table::build(a, b);
        assert_eq!(t.at(a.len(), b.len()), 6);
        let (common, ranges) = t.walk(a, b);
        assert_eq!(common, b"mytext");
        let spans: Vec<_> = ranges.iter().map(|r| (r.a, r.b)).collect();
        assert_eq!(spans, vec![((4, 7), (5, 8)), ((2, 3), (0, 1))]);
    }

    #[test]
    fn lcs_of_empty_strings() {
        let t = Table::build(b"", b"abc");
        assert_eq!(t.at(0, 3), 0);
        assert!(t.walk(b"", b"abc").0.is_empty());
    }
}
