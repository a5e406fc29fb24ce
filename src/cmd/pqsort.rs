//! Redis's `pqsort` (a BSD quicksort that only sorts the part of the array holding a given
//! range of ranks), ported step for step. SORT with BY and LIMIT and the geo searches with
//! COUNT use it; it is not stable, so elements that compare equal end up in the order it
//! leaves them, and only the same algorithm gives Redis's order for them.

use std::cmp::Ordering;

/// Sorts enough of `v` that ranks `lrange..=rrange` hold what a full sort would put there.
pub fn pqsort<T>(v: &mut [T], cmp: &impl Fn(&T, &T) -> Ordering, lrange: usize, rrange: usize) {
    sort(v, 0, cmp, lrange, rrange);
}

/// `med3`: the index of the median of three.
fn med3<T>(v: &[T], a: usize, b: usize, c: usize, cmp: &impl Fn(&T, &T) -> Ordering) -> usize {
    let lt = |x: usize, y: usize| cmp(&v[x], &v[y]) == Ordering::Less;
    let gt = |x: usize, y: usize| cmp(&v[x], &v[y]) == Ordering::Greater;
    if lt(a, b) {
        if lt(b, c) {
            b
        } else if lt(a, c) {
            c
        } else {
            a
        }
    } else if gt(b, c) {
        b
    } else if lt(a, c) {
        a
    } else {
        c
    }
}

/// `vecswap`: swaps `n` elements from `a` with `n` from `b`, pairwise in order.
fn vecswap<T>(v: &mut [T], a: usize, b: usize, n: usize) {
    for i in 0..n {
        v.swap(a + i, b + i);
    }
}

/// Whether the ranks `[lo, lo + n)` (of the whole array) meet `lrange..=rrange`.
fn overlaps(lo: usize, n: usize, lrange: usize, rrange: usize) -> bool {
    !((lrange < lo && rrange < lo) || (lrange >= lo + n && rrange >= lo + n))
}

/// `_pqsort` on `v`, whose first element has rank `base` in the whole array.
fn sort<T>(mut v: &mut [T], mut base: usize, cmp: &impl Fn(&T, &T) -> Ordering, lrange: usize, rrange: usize) {
    loop {
        let n = v.len();
        if n < 7 {
            for m in 1..n {
                let mut l = m;
                while l > 0 && cmp(&v[l - 1], &v[l]) == Ordering::Greater {
                    v.swap(l, l - 1);
                    l -= 1;
                }
            }
            return;
        }
        let mut pm = n / 2;
        if n > 7 {
            let (mut pl, mut pn) = (0, n - 1);
            if n > 40 {
                let d = n / 8;
                pl = med3(v, pl, pl + d, pl + 2 * d, cmp);
                pm = med3(v, pm - d, pm, pm + d, cmp);
                pn = med3(v, pn - 2 * d, pn - d, pn, cmp);
            }
            pm = med3(v, pl, pm, pn, cmp);
        }
        v.swap(0, pm);
        let (mut pa, mut pb) = (1, 1);
        // pc and pd may go one below 0 in C (as pointers); they stay >= pb - 1 >= 0 here.
        let (mut pc, mut pd) = (n as isize - 1, n as isize - 1);
        loop {
            while pb as isize <= pc {
                let c = cmp(&v[pb], &v[0]);
                if c == Ordering::Greater {
                    break;
                }
                if c == Ordering::Equal {
                    v.swap(pa, pb);
                    pa += 1;
                }
                pb += 1;
            }
            while pb as isize <= pc {
                let c = cmp(&v[pc as usize], &v[0]);
                if c == Ordering::Less {
                    break;
                }
                if c == Ordering::Equal {
                    v.swap(pc as usize, pd as usize);
                    pd -= 1;
                }
                pc -= 1;
            }
            if pb as isize > pc {
                break;
            }
            v.swap(pb, pc as usize);
            pb += 1;
            pc -= 1;
        }
        let r = pa.min(pb - pa);
        vecswap(v, 0, pb - r, r);
        let (pc, pd) = (pc as usize, pd as usize);
        let r = (pd - pc).min(n - pd - 1);
        vecswap(v, pb, n - r, r);
        let left = pb - pa;
        if left > 1 && overlaps(base, left, lrange, rrange) {
            sort(&mut v[..left], base, cmp, lrange, rrange);
        }
        let right = pd - pc;
        if right <= 1 {
            return;
        }
        base += n - right;
        if !overlaps(base, right, lrange, rrange) {
            return;
        }
        v = &mut v[n - right..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_requested_ranks_come_out_sorted() {
        let mut seed = 12345u64;
        for len in [0usize, 1, 5, 7, 8, 41, 100, 1000] {
            let orig: Vec<u32> = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    (seed >> 40) as u32 % 50
                })
                .collect();
            let mut want = orig.clone();
            want.sort();
            for (l, r) in [(0, 0), (0, 9), (3, 7), (len.saturating_sub(5), len.saturating_sub(1))] {
                if len == 0 || r >= len {
                    continue;
                }
                let mut v = orig.clone();
                pqsort(&mut v, &|a, b| a.cmp(b), l, r);
                assert_eq!(v[l..=r], want[l..=r], "len {len} range {l}..={r}");
            }
        }
    }
}
