//! List values: a double-ended queue of elements. Redis 7.0.15 reports every list as
//! `quicklist` (the listpack encoding for small lists arrived in 7.2), so there is a single
//! representation here.

use super::value::own_small;
use bytes::Bytes;
use std::collections::VecDeque;

/// A list; Redis 7.0 reports every list as `quicklist`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListValue {
    pub items: VecDeque<Bytes>,
}

impl ListValue {
    /// The name `OBJECT ENCODING` replies with (checked against redis-server 7.0.15).
    pub fn encoding(&self) -> &'static str {
        "quicklist"
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Rough memory footprint in bytes.
    pub fn approx_size(&self) -> usize {
        self.items.iter().map(|b| b.len() + 16).sum()
    }

    /// The position of a Redis index (negative counts from the tail), if inside the list.
    pub fn position(&self, index: i64) -> Option<usize> {
        let len = self.items.len() as i64;
        let i = if index < 0 { len.checked_add(index)? } else { index };
        (0..len).contains(&i).then_some(i as usize)
    }

    /// The inclusive range `start..=stop` of Redis indexes clamped to the list as LRANGE and
    /// LTRIM do; `None` when it is empty.
    pub fn range(&self, start: i64, stop: i64) -> Option<(usize, usize)> {
        let len = self.items.len() as i64;
        let start = if start < 0 { (len + start.max(-len)).max(0) } else { start };
        let stop = if stop < 0 { len + stop.max(-len - 1) } else { stop.min(len - 1) };
        (start <= stop && start < len).then_some((start as usize, stop as usize))
    }

    /// Pops from the head (`left`) or the tail.
    pub fn pop(&mut self, left: bool) -> Option<Bytes> {
        if left {
            self.items.pop_front()
        } else {
            self.items.pop_back()
        }
    }

    /// Pushes at the head (`left`) or the tail.
    pub fn push(&mut self, left: bool, item: Bytes) {
        let item = own_small(item);
        if left {
            self.items.push_front(item)
        } else {
            self.items.push_back(item)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(n: usize) -> ListValue {
        ListValue { items: (0..n).map(|i| Bytes::from(i.to_string())).collect() }
    }

    #[test]
    fn positions_count_from_both_ends() {
        let l = list(3);
        assert_eq!(l.position(0), Some(0));
        assert_eq!(l.position(-1), Some(2));
        assert_eq!(l.position(-3), Some(0));
        assert_eq!(l.position(-4), None);
        assert_eq!(l.position(3), None);
        assert_eq!(l.position(i64::MIN), None);
        assert_eq!(l.encoding(), "quicklist");
    }

    #[test]
    fn ranges_clamp_like_lrange() {
        let l = list(5);
        assert_eq!(l.range(0, -1), Some((0, 4)));
        assert_eq!(l.range(-100, 100), Some((0, 4)));
        assert_eq!(l.range(2, 1), None);
        assert_eq!(l.range(5, 10), None);
        assert_eq!(l.range(-2, -1), Some((3, 4)));
        assert_eq!(l.range(0, -6), None);
        assert_eq!(l.range(i64::MIN, i64::MAX), Some((0, 4)));
        assert_eq!(list(0).range(0, -1), None);
    }
}
