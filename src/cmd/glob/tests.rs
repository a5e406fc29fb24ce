//! The matcher against Redis's own cases and regression patterns, and a property test against a
//! simple reference: the pattern parsed into tokens, matched by dynamic programming.

use super::matches;
use proptest::prelude::*;

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
    assert!(matches(b"a*", b"a", false));
    assert!(matches(b"a**", b"a", false));
    assert!(!matches(b"a[", b"a", false));
}

/// Redis's quirks, kept for byte-identical replies.
#[test]
fn redis_quirks() {
    // An empty string matches no non-empty pattern (KEYS and SCAN special-case a lone `*`).
    assert!(!matches(b"*", b"", false));
    // `[a-]` is the range `]`..`a`, and it swallows the `]`: the class runs to the pattern's end.
    assert!(matches(b"[a-]", b"^", false));
    // An unterminated class is closed by the end of the pattern.
    assert!(matches(b"x[ab", b"xb", false));
    assert!(matches(b"[^", b"z", false));
    assert!(!matches(b"[", b"z", false));
    // Escapes inside a class compare case-sensitively even with nocase.
    assert!(!matches(b"[\\A]", b"a", true));
    assert!(matches(b"[A]", b"a", true));
}

/// Redis's regression tests for CVE-2022-36021 (keyspace.tcl): both answer at once. The first
/// never returned with plain backtracking; the second nests `*` 50000 deep.
#[test]
fn abusive_patterns_fail_fast() {
    let key = vec![b'a'; 57];
    assert!(!matches(b"a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b", &key, false));
    let key = vec![b'a'; 50000];
    assert!(!matches(&b"*?".repeat(50000), &key, false));
    // The same shapes still match when they should.
    assert!(matches(b"a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a", &[b'a'; 57], false));
    let mut key = vec![b'a'; 4000];
    key.push(b'b');
    assert!(matches(&b"a*".repeat(200).iter().chain(b"b").copied().collect::<Vec<u8>>(), &key, false));
}

#[derive(Debug, Clone)]
enum ClassItem {
    Byte(u8, bool),
    Range(u8, u8),
}

#[derive(Debug, Clone)]
enum Token {
    Star,
    Any,
    Lit(u8),
    Class { not: bool, items: Vec<ClassItem> },
}

/// Splits a pattern into tokens the way Redis reads it.
fn tokenize(p: &[u8]) -> Vec<Token> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            b'*' => out.push(Token::Star),
            b'?' => out.push(Token::Any),
            b'\\' if i + 1 < p.len() => {
                out.push(Token::Lit(p[i + 1]));
                i += 1;
            }
            b'[' => {
                i += 1;
                let not = p.get(i) == Some(&b'^');
                if not {
                    i += 1;
                }
                let mut items = Vec::new();
                while i < p.len() && p[i] != b']' {
                    if p[i] == b'\\' && i + 1 < p.len() {
                        items.push(ClassItem::Byte(p[i + 1], true));
                        i += 1;
                    } else if i + 2 < p.len() && p[i + 1] == b'-' {
                        items.push(ClassItem::Range(p[i], p[i + 2]));
                        i += 2;
                    } else {
                        items.push(ClassItem::Byte(p[i], false));
                    }
                    i += 1;
                }
                out.push(Token::Class { not, items });
            }
            c => out.push(Token::Lit(c)),
        }
        i += 1;
    }
    out
}

fn token_matches(t: &Token, c: u8, nocase: bool) -> bool {
    let eq = |a: u8| if nocase { a.eq_ignore_ascii_case(&c) } else { a == c };
    match t {
        Token::Star | Token::Any => true,
        Token::Lit(a) => eq(*a),
        Token::Class { not, items } => {
            let hit = items.iter().any(|item| match *item {
                ClassItem::Byte(a, escaped) => {
                    if escaped {
                        a == c
                    } else {
                        eq(a)
                    }
                }
                ClassItem::Range(a, b) => {
                    let (lo, hi) = (a.min(b), a.max(b));
                    if nocase {
                        (lo.to_ascii_lowercase()..=hi.to_ascii_lowercase()).contains(&c.to_ascii_lowercase())
                    } else {
                        (lo..=hi).contains(&c)
                    }
                }
            });
            hit != *not
        }
    }
}

/// The reference: `dp[i][j]` = tokens `i..` match string `j..`.
fn reference(p: &[u8], s: &[u8], nocase: bool) -> bool {
    if s.is_empty() {
        return p.is_empty();
    }
    let t = tokenize(p);
    let mut dp = vec![vec![false; s.len() + 1]; t.len() + 1];
    dp[t.len()][s.len()] = true;
    for i in (0..t.len()).rev() {
        for j in (0..=s.len()).rev() {
            dp[i][j] = match t[i] {
                Token::Star => dp[i + 1][j] || (j < s.len() && dp[i][j + 1]),
                _ => j < s.len() && token_matches(&t[i], s[j], nocase) && dp[i + 1][j + 1],
            };
        }
    }
    dp[0][0]
}

fn bytes_of(alphabet: &'static [u8], max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(alphabet), 0..max)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]

    #[test]
    fn agrees_with_reference(
        p in bytes_of(b"ab*?[]^-\\A", 12),
        s in bytes_of(b"abA]-\\^", 10),
        nocase: bool,
    ) {
        prop_assert_eq!(matches(&p, &s, nocase), reference(&p, &s, nocase));
    }
}
