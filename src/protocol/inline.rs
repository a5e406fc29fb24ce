//! Inline commands (`SET a b\r\n` typed by hand): splitting with Redis's `sdssplitargs` rules.

/// Splits an inline command line into arguments. `None` means unbalanced quotes.
/// `sdssplitargs` reads a C string, so a NUL byte ends the line.
pub fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let line = line.split(|&b| b == 0).next().unwrap_or_default();
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while i < line.len() && is_c_space(line[i]) {
            i += 1;
        }
        if i >= line.len() {
            return Some(args);
        }
        let (arg, next) = split_one(line, i)?;
        args.push(arg);
        i = next;
    }
}

/// Reads one argument starting at `i`; returns it and the index after it.
fn split_one(line: &[u8], mut i: usize) -> Option<(Vec<u8>, usize)> {
    let mut cur = Vec::new();
    let (mut in_dq, mut in_sq) = (false, false);
    loop {
        let c = line.get(i).copied();
        if in_dq {
            let c = c?;
            if c == b'\\' && i + 3 < line.len() && line[i + 1] == b'x' {
                if let (Some(h), Some(l)) = (hex(line[i + 2]), hex(line[i + 3])) {
                    cur.push(h * 16 + l);
                    i += 4;
                    continue;
                }
            }
            if c == b'\\' && i + 1 < line.len() {
                cur.push(unescape(line[i + 1]));
                i += 2;
                continue;
            }
            if c == b'"' {
                // A closing quote must be followed by a space or the end.
                if line.get(i + 1).is_some_and(|&n| !is_c_space(n)) {
                    return None;
                }
                return Some((cur, i + 1));
            }
            cur.push(c);
        } else if in_sq {
            let c = c?;
            if c == b'\\' && line.get(i + 1) == Some(&b'\'') {
                cur.push(b'\'');
                i += 2;
                continue;
            }
            if c == b'\'' {
                if line.get(i + 1).is_some_and(|&n| !is_c_space(n)) {
                    return None;
                }
                return Some((cur, i + 1));
            }
            cur.push(c);
        } else {
            match c {
                None => return Some((cur, i)),
                // Unlike the blank skipping, a bare token only ends at these four.
                Some(b' ' | b'\n' | b'\r' | b'\t') => return Some((cur, i)),
                Some(b'"') => in_dq = true,
                Some(b'\'') => in_sq = true,
                Some(c) => cur.push(c),
            }
        }
        i += 1;
    }
}

/// C's `isspace`: Rust's `is_ascii_whitespace` lacks the vertical tab.
fn is_c_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn unescape(c: u8) -> u8 {
    match c {
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        b'b' => 8,
        b'a' => 7,
        other => other,
    }
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(s: &str) -> Option<Vec<String>> {
        split_args(s.as_bytes()).map(|v| v.into_iter().map(|a| String::from_utf8(a).unwrap()).collect())
    }

    #[test]
    fn splits_like_sdssplitargs() {
        assert_eq!(split("set a b").unwrap(), ["set", "a", "b"]);
        assert_eq!(split("  set   \"a b\" 'c d'  ").unwrap(), ["set", "a b", "c d"]);
        assert_eq!(split("echo \"\\x41\\n\"").unwrap(), ["echo", "A\n"]);
        assert_eq!(split("echo 'it\\'s'").unwrap(), ["echo", "it's"]);
        assert_eq!(split("").unwrap(), Vec::<String>::new());
        assert_eq!(split("echo \"\"").unwrap(), ["echo", ""]);
    }

    #[test]
    fn unbalanced_quotes_are_rejected() {
        assert!(split("echo \"abc").is_none());
        assert!(split("echo 'abc").is_none());
        assert!(split("echo \"a\"b").is_none());
    }
}
