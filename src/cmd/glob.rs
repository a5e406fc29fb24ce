//! Redis's glob-style pattern matching (`stringmatchlen` of Redis 7.0.9+), used by KEYS, the
//! SCAN family, CONFIG GET and COMMAND LIST: `*`, `?`, `[abc]`, `[^a-z]`, and `\` escapes,
//! optionally case-insensitive.
//!
//! A port of Redis's algorithm, quirks included (an empty string matches no pattern, not even
//! `*`, which callers special-case as Redis does; `[a-]` is a range up to `]`), with its bound
//! on backtracking (CVE-2022-36021): when the rest of the pattern after a `*` matches at no
//! position of the rest of the string, no earlier `*` can help by consuming more, so the whole
//! match fails at once (`skip_longer`). That keeps patterns like `a*a*a*...*b` linear in
//! practice instead of exponential.

/// Deeper nesting of `*` than this gives "no match", as in Redis (protects the stack).
const MAX_NESTING: usize = 1000;

/// True if `s` matches `pattern`.
pub fn matches(pattern: &[u8], s: &[u8], nocase: bool) -> bool {
    let mut skip_longer = false;
    Matcher { nocase, skip_longer: &mut skip_longer }.run(pattern, s, 0)
}

struct Matcher<'a> {
    nocase: bool,
    /// Set once a `*` found no position where the rest of the pattern matches.
    skip_longer: &'a mut bool,
}

impl Matcher<'_> {
    fn eq(&self, a: u8, b: u8) -> bool {
        if self.nocase {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    }

    fn run(&mut self, mut p: &[u8], mut s: &[u8], nesting: usize) -> bool {
        if nesting > MAX_NESTING {
            return false;
        }
        while !p.is_empty() && !s.is_empty() {
            p = match p[0] {
                b'*' => return self.star(p, s, nesting),
                b'?' => &p[1..],
                b'[' => {
                    let (matched, rest) = self.class(p, s[0]);
                    if !matched {
                        return false;
                    }
                    rest
                }
                c => {
                    let (lit, rest) = if c == b'\\' && p.len() >= 2 { (p[1], &p[2..]) } else { (c, &p[1..]) };
                    if !self.eq(lit, s[0]) {
                        return false;
                    }
                    rest
                }
            };
            s = &s[1..];
            if s.is_empty() {
                while p.first() == Some(&b'*') {
                    p = &p[1..];
                }
                break;
            }
        }
        p.is_empty() && s.is_empty()
    }

    /// `p` starts with `*` and `s` is not empty.
    fn star(&mut self, mut p: &[u8], mut s: &[u8], nesting: usize) -> bool {
        while p.len() > 1 && p[1] == b'*' {
            p = &p[1..];
        }
        if p.len() == 1 {
            return true;
        }
        while !s.is_empty() {
            if self.run(&p[1..], s, nesting + 1) {
                return true;
            }
            if *self.skip_longer {
                return false;
            }
            s = &s[1..];
        }
        *self.skip_longer = true;
        false
    }

    /// Matches `c` against the class that starts `p` (at its `[`). Returns whether it matched
    /// and the pattern after the class: after its `]`, or empty if the class is unterminated
    /// (the end of the pattern closes it).
    fn class<'p>(&self, p: &'p [u8], c: u8) -> (bool, &'p [u8]) {
        let body = &p[1..];
        let not = body.first() == Some(&b'^');
        let mut i = usize::from(not);
        let mut matched = false;
        loop {
            match body.get(i) {
                Some(b'\\') if body.len() - i >= 2 => {
                    i += 1;
                    matched |= body[i] == c;
                }
                Some(b']') => return (matched != not, &body[i + 1..]),
                None => return (matched != not, &[]),
                Some(&a) if body.len() - i >= 3 && body[i + 1] == b'-' => {
                    let (mut lo, mut hi, mut c) = (a.min(body[i + 2]), a.max(body[i + 2]), c);
                    if self.nocase {
                        (lo, hi, c) = (lo.to_ascii_lowercase(), hi.to_ascii_lowercase(), c.to_ascii_lowercase());
                    }
                    matched |= lo <= c && c <= hi;
                    i += 2;
                }
                Some(&x) => matched |= self.eq(x, c),
            }
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests;
