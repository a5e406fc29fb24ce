//! Redis's glob-style pattern matching (`stringmatchlen`), used by KEYS and the SCAN family:
//! `*`, `?`, `[abc]`, `[^a-z]`, and `\` escapes, optionally case-insensitive.

/// True if `s` matches `pattern`.
pub fn matches(pattern: &[u8], s: &[u8], nocase: bool) -> bool {
    match_from(pattern, s, nocase, 0)
}

fn eq(a: u8, b: u8, nocase: bool) -> bool {
    if nocase {
        a.eq_ignore_ascii_case(&b)
    } else {
        a == b
    }
}

fn match_from(mut p: &[u8], mut s: &[u8], nocase: bool, depth: usize) -> bool {
    // Redis bounds recursion the same way, so pathological patterns cannot blow the stack.
    if depth > 1000 {
        return false;
    }
    while let Some(&pc) = p.first() {
        match pc {
            b'*' => {
                while p.len() > 1 && p[1] == b'*' {
                    p = &p[1..];
                }
                if p.len() == 1 {
                    return true;
                }
                return (0..=s.len()).any(|i| match_from(&p[1..], &s[i..], nocase, depth + 1));
            }
            b'?' => {
                if s.is_empty() {
                    return false;
                }
                s = &s[1..];
            }
            b'[' => {
                let Some((&c, rest)) = s.split_first() else { return false };
                let (matched, after) = match_class(&p[1..], c, nocase);
                if !matched {
                    return false;
                }
                p = after;
                s = rest;
                continue;
            }
            b'\\' if p.len() >= 2 => {
                p = &p[1..];
                if s.is_empty() || !eq(p[0], s[0], nocase) {
                    return false;
                }
                s = &s[1..];
            }
            _ => {
                if s.is_empty() || !eq(pc, s[0], nocase) {
                    return false;
                }
                s = &s[1..];
            }
        }
        p = &p[1..];
    }
    s.is_empty()
}

/// Matches `c` against a class body (after `[`); returns the result and the pattern after `]`.
fn match_class(mut p: &[u8], c: u8, nocase: bool) -> (bool, &[u8]) {
    let not = p.first() == Some(&b'^');
    if not {
        p = &p[1..];
    }
    let mut matched = false;
    loop {
        match p {
            [] => break,
            [b']', rest @ ..] => {
                p = rest;
                return (matched != not, p);
            }
            [b'\\', x, rest @ ..] => {
                matched |= eq(*x, c, nocase);
                p = rest;
            }
            [a, b'-', z, rest @ ..] if *z != b']' => {
                let (mut lo, mut hi) = (*a, *z);
                if lo > hi {
                    std::mem::swap(&mut lo, &mut hi);
                }
                let cc = if nocase { c.to_ascii_lowercase() } else { c };
                let (lo, hi) = if nocase { (lo.to_ascii_lowercase(), hi.to_ascii_lowercase()) } else { (lo, hi) };
                matched |= cc >= lo && cc <= hi;
                p = rest;
            }
            [x, rest @ ..] => {
                matched |= eq(*x, c, nocase);
                p = rest;
            }
        }
    }
    // Unterminated class: Redis treats the end of the pattern as the closing bracket.
    (matched != not, p)
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn glob_cases() {
        assert!(matches(b"*", b"anything", false));
        assert!(matches(b"h?llo", b"hello", false));
        assert!(matches(b"h*llo", b"heeeello", false));
        assert!(matches(b"h[ae]llo", b"hallo", false));
        assert!(!matches(b"h[ae]llo", b"hillo", false));
        assert!(matches(b"h[^e]llo", b"hallo", false));
        assert!(!matches(b"h[^e]llo", b"hello", false));
        assert!(matches(b"h[a-b]llo", b"hbllo", false));
        assert!(matches(b"a\\*b", b"a*b", false));
        assert!(!matches(b"a\\*b", b"axb", false));
        assert!(matches(b"HELLO", b"hello", true));
        assert!(!matches(b"abc", b"abcd", false));
        assert!(matches(b"", b"", false));
    }
}
