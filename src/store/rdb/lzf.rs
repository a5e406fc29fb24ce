//! LZF, the compression of Redis's RDB strings (liblzf as Redis configures it: a 2^16-slot
//! hash table, the "very fast" variant). The one Rust crate for it is deprecated, so it is
//! written here. Compression reproduces what Redis emits for the same input, so DUMP payloads
//! match redis-server's byte for byte; decompression checks every length and back reference
//! against the buffers, so a corrupt payload is an error, never a panic or an overread.
//!
//! The format: `000LLLLL` + L+1 literal bytes; `LLLooooo oooooooo` a back reference of L+2
//! bytes at distance o+1; `111ooooo LLLLLLLL oooooooo` a back reference of L+9 bytes.

const HLOG: u32 = 16;
const HSIZE: usize = 1 << HLOG;
const MAX_LIT: usize = 1 << 5;
const MAX_OFF: usize = 1 << 13;
const MAX_REF: usize = (1 << 8) + (1 << 3);

/// The hash of the three bytes at `p` given the previous hash `h` of the two before.
fn next_hash(h: u32, input: &[u8], p: usize) -> u32 {
    (h << 8) | input[p + 2] as u32
}

fn first_hash(input: &[u8], p: usize) -> u32 {
    ((input[p] as u32) << 8) | input[p + 1] as u32
}

fn slot(h: u32) -> usize {
    ((h >> (3 * 8 - HLOG)).wrapping_sub(h.wrapping_mul(5)) as usize) & (HSIZE - 1)
}

/// Compresses `input` into at most `max_out` bytes; `None` when it does not fit (Redis then
/// stores the string uncompressed).
pub fn compress(input: &[u8], max_out: usize) -> Option<Vec<u8>> {
    if input.len() < 3 || max_out == 0 {
        return None;
    }
    // Positions + 1 (0: empty slot). Redis leaves the table uninitialised and relies on the
    // checks below; an empty table behaves the same on every input.
    let mut table = vec![0u32; HSIZE];
    let mut out = Vec::with_capacity(max_out);
    let end = input.len();
    let mut ip = 0usize;
    let mut lit = 0usize;
    out.push(0); // the length byte of the literal run in progress
    let mut h = first_hash(input, ip);
    while ip + 2 < end {
        h = next_hash(h, input, ip);
        let s = slot(h);
        let candidate = table[s] as usize;
        table[s] = ip as u32 + 1;
        // Redis requires the match to start after the first byte (`ref > in_data`).
        let matched = candidate > 1 && {
            let r = candidate - 1;
            r < ip
                && ip - r - 1 < MAX_OFF
                && input[r] == input[ip]
                && input[r + 1] == input[ip + 1]
                && input[r + 2] == input[ip + 2]
        };
        if !matched {
            if out.len() >= max_out {
                return None;
            }
            lit += 1;
            out.push(input[ip]);
            ip += 1;
            if lit == MAX_LIT {
                close_run(&mut out, lit);
                lit = 0;
                out.push(0);
            }
            continue;
        }
        let r = candidate - 1;
        let off = ip - r - 1;
        let maxlen = (end - ip - 2).min(MAX_REF);
        close_run(&mut out, lit);
        if lit == 0 {
            out.pop();
        }
        if out.len() + 4 >= max_out {
            return None;
        }
        let len = match_len(input, r, ip, maxlen) - 2; // the format counts from 2
        ip += 1;
        if len < 7 {
            out.push(((off >> 8) + (len << 5)) as u8);
        } else {
            out.push(((off >> 8) + (7 << 5)) as u8);
            out.push((len - 7) as u8);
        }
        out.push(off as u8);
        lit = 0;
        out.push(0);
        ip += len + 1;
        if ip + 2 >= end {
            break;
        }
        // Very fast mode: hash the last two positions of the match only.
        ip -= 2;
        h = first_hash(input, ip);
        for _ in 0..2 {
            h = next_hash(h, input, ip);
            table[slot(h)] = ip as u32 + 1;
            ip += 1;
        }
    }
    if out.len() + 3 > max_out {
        return None;
    }
    while ip < end {
        lit += 1;
        out.push(input[ip]);
        ip += 1;
        if lit == MAX_LIT {
            close_run(&mut out, lit);
            lit = 0;
            out.push(0);
        }
    }
    close_run(&mut out, lit);
    if lit == 0 {
        out.pop();
    }
    (out.len() <= max_out).then_some(out)
}

/// How far the bytes at `r` and `ip` agree, as liblzf measures it: its first 16 steps are
/// unrolled without the `maxlen` bound (safe, as `maxlen > 16` leaves room), so a match may
/// run up to two bytes past `maxlen`; the output must reproduce that to equal Redis's.
fn match_len(input: &[u8], r: usize, ip: usize, maxlen: usize) -> usize {
    let mut len = 2;
    if maxlen > 16 {
        for _ in 0..16 {
            len += 1;
            if input[r + len] != input[ip + len] {
                return len;
            }
        }
    }
    loop {
        len += 1;
        if len >= maxlen || input[r + len] != input[ip + len] {
            return len;
        }
    }
}

/// Writes the length byte of the literal run of `lit` bytes that ends the output.
fn close_run(out: &mut [u8], lit: usize) {
    let at = out.len() - lit - 1;
    out[at] = (lit as u8).wrapping_sub(1);
}

/// Decompresses `input` into exactly `out_len` bytes; `None` if it is corrupt or the sizes
/// disagree.
pub fn decompress(input: &[u8], out_len: usize) -> Option<Vec<u8>> {
    // Grown as bytes are produced beyond the first MiB: a corrupt input claiming a huge size
    // fails before it costs that much.
    let mut out = Vec::with_capacity(out_len.min(1 << 20));
    let mut ip = 0usize;
    while ip < input.len() {
        let ctrl = input[ip] as usize;
        ip += 1;
        if ctrl < 32 {
            let n = ctrl + 1;
            let lit = input.get(ip..ip + n)?;
            if out.len() + n > out_len {
                return None;
            }
            out.extend_from_slice(lit);
            ip += n;
            continue;
        }
        let mut len = ctrl >> 5;
        if len == 7 {
            len += *input.get(ip)? as usize;
            ip += 1;
        }
        let back = ((ctrl & 0x1f) << 8) + *input.get(ip)? as usize + 1;
        ip += 1;
        let n = len + 2;
        if back > out.len() || out.len() + n > out_len {
            return None;
        }
        let from = out.len() - back;
        // Byte by byte: a reference may overlap what it produces (a run).
        for i in 0..n {
            let b = out[from + i];
            out.push(b);
        }
    }
    (out.len() == out_len).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_repetitive_and_random_input() {
        let inputs: Vec<Vec<u8>> = vec![
            b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".to_vec(),
            b"hello hello hello hello hello hello world".to_vec(),
            (0..5000u32).map(|i| (i % 251) as u8).collect(),
            (0..300u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect(),
        ];
        for input in inputs {
            if let Some(c) = compress(&input, input.len() + 64) {
                assert_eq!(decompress(&c, input.len()).as_deref(), Some(&input[..]));
            }
        }
    }

    #[test]
    fn a_long_run_compresses() {
        let input = vec![b'x'; 1000];
        let c = compress(&input, input.len() - 4).expect("compresses");
        assert!(c.len() < 40);
    }

    #[test]
    fn corrupt_input_is_refused() {
        // A back reference before the start of the output.
        assert_eq!(decompress(&[0x20, 0x05], 3), None);
        // A literal run longer than the input.
        assert_eq!(decompress(&[0x05, b'a'], 6), None);
        // Output longer than announced.
        assert_eq!(decompress(&[0x02, b'a', b'b', b'c'], 2), None);
        assert_eq!(decompress(&[0x00, b'a'], 1), Some(b"a".to_vec()));
    }
}
