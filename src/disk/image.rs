//! The bytes of one simulated file ([`SimDisk`](super::SimDisk)): written bytes in memory and a
//! zero tail that costs no memory, so a preallocated 64 MiB log segment (mostly zeros) stays
//! cheap in a simulation running many nodes. Also what a crash leaves of the bytes written
//! since the last sync ([`torn`]).

use std::ops::Range;

/// A file's contents: `bytes`, then zeros up to `len`.
#[derive(Clone, Default, Debug)]
pub(super) struct Image {
    bytes: Vec<u8>,
    len: usize,
}

impl Image {
    pub fn len(&self) -> usize {
        self.len
    }

    /// The whole contents, zero tail included.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = self.bytes.clone();
        v.resize(self.len, 0);
        v
    }

    /// Copies bytes from `offset` into `buf`; returns how many (none past the end).
    pub fn read_at(&self, offset: usize, buf: &mut [u8]) -> usize {
        let start = offset.min(self.len);
        let n = buf.len().min(self.len - start);
        // Bytes from `start` to `stored` are in memory, the rest of the `n` are the zero tail.
        let stored = self.bytes.len().clamp(start, start + n);
        if stored > start {
            buf[..stored - start].copy_from_slice(&self.bytes[start..stored]);
        }
        buf[stored - start..n].fill(0);
        n
    }

    /// Writes `data` at `offset`, growing the file if it ends past the end.
    pub fn write_at(&mut self, offset: usize, data: &[u8]) {
        let end = offset + data.len();
        if self.bytes.len() < end {
            self.bytes.resize(end, 0);
        }
        self.bytes[offset..end].copy_from_slice(data);
        self.len = self.len.max(end);
    }

    /// Cuts the file to `len`, or grows it to `len` with zeros (that use no memory).
    pub fn set_len(&mut self, len: usize) {
        self.bytes.truncate(len);
        self.len = len;
    }

    /// Makes `range` read as zeros (within the current length).
    fn zero(&mut self, range: Range<usize>) {
        let end = range.end.min(self.bytes.len());
        if range.start >= end {
            return;
        }
        if end == self.bytes.len() {
            self.bytes.truncate(range.start);
        } else {
            self.bytes[range.start..end].fill(0);
        }
    }

    /// Makes the bytes of `range` what they are in `from` (the length is not changed).
    pub fn copy_from(&mut self, from: &Image, range: Range<usize>) {
        let end = range.end.min(self.len).min(from.len);
        if range.start >= end {
            return;
        }
        // Only the stored part of `from` is copied; its zero tail zeroes ours.
        let stored = from.bytes.len().clamp(range.start, end);
        if range.start < stored {
            self.write_at(range.start, &from.bytes[range.start..stored]);
        }
        self.zero(stored..end);
    }
}

/// A range covering every byte written since the last sync (length changes are not in it:
/// a sync or crash settles the length separately).
#[derive(Clone, Default, Debug)]
pub(super) struct Dirty(Option<Range<usize>>);

impl Dirty {
    pub fn add(&mut self, range: Range<usize>) {
        if range.is_empty() {
            return;
        }
        self.0 = Some(match self.0.take() {
            Some(r) => r.start.min(range.start)..r.end.max(range.end),
            None => range,
        });
    }

    pub fn take(&mut self) -> Option<Range<usize>> {
        self.0.take()
    }

    pub fn peek(&self) -> Option<Range<usize>> {
        self.0.clone()
    }
}

/// What a torn write leaves: the writes since the last sync landed in file order up to
/// `keep` (clamped into `dirty`), the old bytes from there on. A change of length lands
/// only if everything written landed (a grown file keeps what landed of its new bytes).
pub(super) fn torn(durable: &Image, current: &Image, dirty: Range<usize>, keep: usize) -> Image {
    let keep = keep.clamp(dirty.start, dirty.end);
    let len = if keep >= dirty.end { current.len } else { durable.len.max(keep.min(current.len)) };
    let mut out = durable.clone();
    out.set_len(len);
    // Below `keep` the bytes are the current ones; at and above it they stay the durable ones
    // (and a stretch past the durable end that did not land reads as zeros).
    out.copy_from(current, dirty.start..keep);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(bytes: &[u8], len: usize) -> Image {
        let mut i = Image::default();
        i.write_at(0, bytes);
        i.set_len(len);
        i
    }

    #[test]
    fn zero_tail_reads_as_zeros_and_uses_no_memory() {
        let i = image(b"abc", 1 << 30);
        assert_eq!(i.bytes.len(), 3);
        let mut buf = [9u8; 5];
        assert_eq!(i.read_at(1, &mut buf), 5);
        assert_eq!(&buf, b"bc\0\0\0");
        assert_eq!(i.read_at(1 << 30, &mut buf), 0, "nothing past the end");
    }

    #[test]
    fn copy_from_takes_bytes_and_zeros() {
        let mut durable = image(b"0123456789", 10);
        let current = image(b"0123ab", 10);
        durable.copy_from(&current, 4..10);
        assert_eq!(durable.to_vec(), b"0123ab\0\0\0\0");
    }

    #[test]
    fn torn_write_lands_in_file_order() {
        let durable = image(b"base", 16);
        let mut current = durable.clone();
        current.write_at(4, b"NEWDATA");
        for keep in 4..=11 {
            let t = torn(&durable, &current, 4..11, keep);
            let mut want = b"base".to_vec();
            want.extend_from_slice(&b"NEWDATA"[..keep - 4]);
            want.resize(16, 0);
            assert_eq!(t.to_vec(), want, "keep {keep}");
        }
    }

    #[test]
    fn torn_append_keeps_a_prefix_of_the_growth() {
        let durable = image(b"base", 4);
        let mut current = durable.clone();
        current.write_at(4, b"0123");
        assert_eq!(torn(&durable, &current, 4..8, 6).to_vec(), b"base01");
        assert_eq!(torn(&durable, &current, 4..8, 8).to_vec(), b"base0123");
    }

    #[test]
    fn truncation_lands_only_with_everything_after_it() {
        let durable = image(b"abcdef", 6);
        let mut current = durable.clone();
        current.set_len(2);
        current.write_at(2, b"X");
        assert_eq!(torn(&durable, &current, 2..6, 6).to_vec(), b"abX");
        assert_eq!(torn(&durable, &current, 2..6, 3).to_vec(), b"abXdef");
    }
}
