//! The redis.conf-style config file: one `key value...` directive per line, whole-line `#`
//! comments, blank lines, and arguments split and unquoted the way Redis does it
//! (`sdssplitargs`: `"..."` with `\n \r \t \b \a \\ \" \xHH` escapes, `'...'` with `\'`, a
//! closing quote must end the argument). Keys are case-insensitive. This module only splits
//! and reports errors with their place; what a key means lives in `settings.rs`. Also the
//! value parsers shared by file and flags: Redis's yes/no booleans and memory sizes.

use super::settings::{self, Arity};
use super::Config;
use std::fmt;

/// One directive of a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// 1-based line number.
    pub line: usize,
    /// The key, lower-cased.
    pub key: String,
    /// The arguments after the key, unquoted.
    pub args: Vec<String>,
}

/// What is wrong with one line (the caller adds file and line).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("unknown key '{0}'")]
    UnknownKey(String),
    #[error("key '{0}': missing value")]
    MissingValue(String),
    #[error("key '{key}': too many arguments ({got}); quote a value that contains spaces")]
    TooMany { key: String, got: usize },
    #[error("key '{key}': invalid value '{value}': {why}")]
    BadValue { key: String, value: String, why: String },
    #[error("key '{0}': unbalanced quotes")]
    UnbalancedQuotes(String),
    #[error("key '{0}': not valid UTF-8")]
    NotUtf8(String),
}

/// A [`LineError`] with its place: `file:line: what`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    pub file: String,
    pub line: usize,
    pub error: LineError,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.error)
    }
}

impl std::error::Error for FileError {}

/// Splits the text of a config file into directives. `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<Vec<Directive>, FileError> {
    let mut out = Vec::new();
    for (i, raw) in text.split('\n').enumerate() {
        let line = raw.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'));
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = |error| FileError { file: file.to_string(), line: i + 1, error };
        // The first word names the key in errors even when the rest cannot be split.
        let first = line.split_whitespace().next().unwrap_or("").to_ascii_lowercase();
        let words = split_args(line.as_bytes()).ok_or_else(|| at(LineError::UnbalancedQuotes(first.clone())))?;
        let words: Result<Vec<String>, _> = words.into_iter().map(String::from_utf8).collect();
        let mut words = words.map_err(|_| at(LineError::NotUtf8(first)))?.into_iter();
        let Some(key) = words.next() else { continue };
        let args = words.collect();
        out.push(Directive { line: i + 1, key: key.to_ascii_lowercase(), args });
    }
    Ok(out)
}

/// The keys that name the data directory, strongest first: raftis keeps its keyspace in its
/// Raft log and snapshots, so seed 003's `raft-data-dir` is the truest name; `db-path` (where
/// other engines keep their database) and Redis's `dir` are accepted when it is absent.
const DIR_KEYS: [&str; 3] = ["raft-data-dir", "db-path", "dir"];

/// Applies the directives of `file` over `config`, in order (a key given twice: the last wins;
/// `save` lines add up, as in Redis). Returns warnings to log once logging is up (ignored
/// `rocksdb-*` keys, data-directory keys that lost to a stronger one).
pub fn apply(config: &mut Config, file: &str, directives: &[Directive]) -> Result<Vec<String>, FileError> {
    let mut warnings = Vec::new();
    let mut dirs: [Option<&Directive>; 3] = [None; 3];
    let mut saw_save = false;
    for d in directives {
        let at = |error| FileError { file: file.to_string(), line: d.line, error };
        if d.key.starts_with("rocksdb-") {
            warnings.push(format!("{file}:{}: ignoring '{}': raftis does not use RocksDB", d.line, d.key));
            continue;
        }
        if let Some(r) = settings::find(&d.key).is_none().then(|| super::reported::find(d.key.as_bytes())).flatten() {
            // A Redis parameter raftis reports (slowlog-*, encoding thresholds, ...).
            let value = argument(Arity::One, d).map_err(at)?;
            config.reported.set(r, &value).map_err(|why| at(LineError::BadValue { key: d.key.clone(), value, why }))?;
            continue;
        }
        let setting = settings::find(&d.key).ok_or_else(|| at(LineError::UnknownKey(d.key.clone())))?;
        let mut value = argument(setting.arity, d).map_err(at)?;
        if let Some(rank) = DIR_KEYS.iter().position(|k| *k == d.key) {
            dirs[rank] = Some(d);
            continue;
        }
        if setting.key == "save" {
            if saw_save && !value.trim().is_empty() {
                value = format!("{} {value}", config.save);
            }
            saw_save = true;
        }
        (setting.set)(config, &value)
            .map_err(|why| at(LineError::BadValue { key: d.key.clone(), value: value.clone(), why }))?;
    }
    apply_dir(config, file, &dirs, &mut warnings)?;
    Ok(warnings)
}

/// The one argument of a directive (or its arguments joined, for [`Arity::Rest`]).
fn argument(arity: Arity, d: &Directive) -> Result<String, LineError> {
    match (arity, d.args.len()) {
        (_, 0) => Err(LineError::MissingValue(d.key.clone())),
        (Arity::Rest, _) => Ok(d.args.join(" ")),
        (_, 1) => Ok(d.args[0].clone()),
        (_, got) => Err(LineError::TooMany { key: d.key.clone(), got }),
    }
}

/// Sets the data directory from the strongest of [`DIR_KEYS`] given; warns about the others.
fn apply_dir(
    config: &mut Config,
    file: &str,
    dirs: &[Option<&Directive>; 3],
    warnings: &mut Vec<String>,
) -> Result<(), FileError> {
    let Some(chosen) = dirs.iter().flatten().next() else { return Ok(()) };
    let value = &chosen.args[0];
    for other in dirs.iter().flatten().filter(|d| d.line != chosen.line && d.args[0] != *value) {
        warnings.push(format!(
            "{file}:{}: '{} {}' not used: the data directory is {} (from '{}')",
            other.line, other.key, other.args[0], value, chosen.key
        ));
    }
    let setting = settings::find(&chosen.key).ok_or_else(|| FileError {
        file: file.to_string(),
        line: chosen.line,
        error: LineError::UnknownKey(chosen.key.clone()),
    })?;
    (setting.set)(config, value).map_err(|why| FileError {
        file: file.to_string(),
        line: chosen.line,
        error: LineError::BadValue { key: chosen.key.clone(), value: value.clone(), why },
    })
}

/// Redis's `sdssplitargs`: `None` on unbalanced quotes or a closing quote not followed by a
/// space.
pub fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while i < line.len() && is_space(line[i]) {
            i += 1;
        }
        if i == line.len() {
            return Some(args);
        }
        let mut cur = Vec::new();
        let mut mode = Quote::None;
        loop {
            let Some(&c) = line.get(i) else {
                // The line ended: fine outside quotes, unbalanced inside.
                if mode != Quote::None {
                    return None;
                }
                break;
            };
            match mode {
                Quote::None if is_space(c) => break,
                Quote::None if c == b'"' => mode = Quote::Double,
                Quote::None if c == b'\'' => mode = Quote::Single,
                Quote::None => cur.push(c),
                Quote::Double => {
                    if c == b'"' {
                        closing_ok(line, i)?;
                        i += 1;
                        break;
                    }
                    i += double_quoted_char(&line[i..], &mut cur);
                    continue;
                }
                Quote::Single => {
                    if c == b'\\' && line.get(i + 1) == Some(&b'\'') {
                        cur.push(b'\'');
                        i += 1;
                    } else if c == b'\'' {
                        closing_ok(line, i)?;
                        i += 1;
                        break;
                    } else {
                        cur.push(c);
                    }
                }
            }
            i += 1;
        }
        args.push(cur);
    }
}

#[derive(PartialEq, Eq)]
enum Quote {
    None,
    Double,
    Single,
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\n' | b'\r' | b'\t' | b'\x0b' | b'\x0c' | b'\0')
}

/// A closing quote must be followed by a space or the end of the line.
fn closing_ok(line: &[u8], quote_at: usize) -> Option<()> {
    match line.get(quote_at + 1) {
        Some(&c) if !is_space(c) => None,
        _ => Some(()),
    }
}

/// One character inside double quotes starting at `s[0]` (not the closing quote): pushes its
/// value and returns how many bytes it took.
fn double_quoted_char(s: &[u8], out: &mut Vec<u8>) -> usize {
    if s[0] != b'\\' || s.len() < 2 {
        out.push(s[0]);
        return 1;
    }
    if s[1] == b'x' && s.len() >= 4 {
        if let (Some(h), Some(l)) = (hex(s[2]), hex(s[3])) {
            out.push(h * 16 + l);
            return 4;
        }
    }
    out.push(match s[1] {
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        b'b' => b'\x08',
        b'a' => b'\x07',
        other => other,
    });
    2
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Redis's booleans: `yes` / `no` (case-insensitive); `true` / `false` are accepted too so
/// that flags read naturally (`--is-bootstrap=false`).
pub fn parse_bool(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "yes" | "true" => Ok(true),
        "no" | "false" => Ok(false),
        _ => Err("argument must be 'yes' or 'no'".into()),
    }
}

/// Redis's memory values (`memtoull`): digits with an optional unit, case-insensitive:
/// `b`, `k` = 1000, `kb` = 1024, `m` = 1000², `mb` = 1024², `g` = 1000³, `gb` = 1024³.
pub fn parse_size(v: &str) -> Result<u64, String> {
    const WHY: &str = "argument must be a memory value (e.g. 1gb, 512mb, 100k)";
    let lower = v.to_ascii_lowercase();
    let digits_end = lower.find(|c: char| !c.is_ascii_digit()).unwrap_or(lower.len());
    let (num, unit) = lower.split_at(digits_end);
    let mul: u64 = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return Err(WHY.into()),
    };
    num.parse::<u64>().ok().and_then(|n| n.checked_mul(mul)).ok_or_else(|| WHY.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(s: &str) -> Option<Vec<String>> {
        split_args(s.as_bytes()).map(|v| v.into_iter().map(|a| String::from_utf8(a).unwrap()).collect())
    }

    #[test]
    fn splits_like_redis() {
        assert_eq!(split("port 7379").unwrap(), ["port", "7379"]);
        assert_eq!(split("  save  \t 900 1  ").unwrap(), ["save", "900", "1"]);
        assert_eq!(split(r#"requirepass "a b""#).unwrap(), ["requirepass", "a b"]);
        assert_eq!(split(r#"x "\x41\n\"\\""#).unwrap(), ["x", "A\n\"\\"]);
        assert_eq!(split(r"x 'it\'s'").unwrap(), ["x", "it's"]);
        assert_eq!(split(r#"save """#).unwrap(), ["save", ""]);
        assert_eq!(split(r#"x ab"cd""#).unwrap(), ["x", "abcd"]);
        assert_eq!(split("").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn rejects_unbalanced_quotes() {
        assert_eq!(split(r#"x "abc"#), None);
        assert_eq!(split("x 'abc"), None);
        assert_eq!(split(r#"x "abc"d"#), None);
        assert_eq!(split("x 'abc'd"), None);
    }

    #[test]
    fn parse_skips_comments_and_blank_lines_and_numbers_lines() {
        let text = "# comment\n\nPORT 7379\r\n   # indented comment\nbinding 127.0.0.1\n";
        let d = parse("n.conf", text).unwrap();
        assert_eq!(
            d,
            [
                Directive { line: 3, key: "port".into(), args: vec!["7379".into()] },
                Directive { line: 5, key: "binding".into(), args: vec!["127.0.0.1".into()] },
            ]
        );
    }

    #[test]
    fn parse_reports_unbalanced_quotes_with_place_and_key() {
        let e = parse("n.conf", "port 1\nrequirepass \"abc\n").unwrap_err();
        assert_eq!(e.to_string(), "n.conf:2: key 'requirepass': unbalanced quotes");
    }

    #[test]
    fn parse_reports_invalid_utf8() {
        let e = parse("n.conf", "requirepass \"\\xff\"\n").unwrap_err();
        assert_eq!(e.error, LineError::NotUtf8("requirepass".into()));
    }

    #[test]
    fn booleans() {
        assert_eq!(parse_bool("yes"), Ok(true));
        assert_eq!(parse_bool("NO"), Ok(false));
        assert_eq!(parse_bool("false"), Ok(false));
        assert!(parse_bool("maybe").is_err());
        assert!(parse_bool("").is_err());
    }

    #[test]
    fn sizes_follow_redis() {
        assert_eq!(parse_size("100"), Ok(100));
        assert_eq!(parse_size("1GB"), Ok(1 << 30));
        assert_eq!(parse_size("512mb"), Ok(512 << 20));
        assert_eq!(parse_size("100k"), Ok(100_000));
        assert_eq!(parse_size("1kb"), Ok(1024));
        assert_eq!(parse_size("2g"), Ok(2_000_000_000));
        assert_eq!(parse_size("7b"), Ok(7));
        for bad in ["", "gb", "1.5gb", "-1", "1tb", "99999999999999999999", "18446744073709551615kb"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    fn load(text: &str) -> Result<(Config, Vec<String>), String> {
        let mut c = Config::default();
        let d = parse("node.conf", text).map_err(|e| e.to_string())?;
        let w = apply(&mut c, "node.conf", &d).map_err(|e| e.to_string())?;
        Ok((c, w))
    }

    #[test]
    fn reported_redis_parameters_are_read_and_checked() {
        let (c, _) = load("slowlog-log-slower-than 0\nSLOWLOG-MAX-LEN 7\nlist-max-ziplist-size 5\n").unwrap();
        let get = |name: &str| c.reported.get(super::super::reported::find(name.as_bytes()).unwrap());
        assert_eq!((get("slowlog-log-slower-than"), get("slowlog-max-len")), ("0".into(), "7".into()));
        assert_eq!(get("list-max-listpack-size"), "5", "an alias sets its parameter");
        let err = load("slowlog-max-len -1\n").unwrap_err();
        assert!(err.starts_with("node.conf:1: key 'slowlog-max-len': invalid value '-1'"), "{err}");
        assert!(load("slowlog-max-len 1 2\n").unwrap_err().contains("too many arguments"));
    }

    #[test]
    fn every_error_names_file_line_and_key() {
        let cases = [
            ("port 1\n\nfoo bar\n", "node.conf:3: unknown key 'foo'"),
            ("port abc\n", "node.conf:1: key 'port': invalid value 'abc': must be an integer between 0 and 65535"),
            (
                "# c\nappendonly maybe\n",
                "node.conf:2: key 'appendonly': invalid value 'maybe': argument must be 'yes' or 'no'",
            ),
            ("memory 1.5GB\n", "node.conf:1: key 'memory': invalid value '1.5GB': argument must be a memory value"),
            ("raft-node-id\n", "node.conf:1: key 'raft-node-id': missing value"),
            ("port 1 2\n", "node.conf:1: key 'port': too many arguments (2)"),
            ("requirepass \"abc\n", "node.conf:1: key 'requirepass': unbalanced quotes"),
            ("is-bootstrap\n", "node.conf:1: key 'is-bootstrap': missing value"),
            ("db-path \"\"\n", "node.conf:1: key 'db-path': invalid value '': must not be empty"),
        ];
        for (text, want) in cases {
            let e = load(text).unwrap_err();
            assert!(e.starts_with(want), "{text:?}: got {e:?}, want {want:?}");
        }
    }

    #[test]
    fn the_seed_003_example_loads() {
        let text = "# Kiwi Cluster Node 1 Configuration\n\n# Basic server settings\nport 7379\nbinding 127.0.0.1\n\n\
            db-path ./db_node1\n\nraft-node-id 1\nraft-addr 127.0.0.1:8001\nraft-resp-addr 127.0.0.1:7379\n\
            raft-data-dir ./raft_data_1\n\nmemory 1GB\nrocksdb-max-background-jobs 4\n\
            rocksdb-max-write-buffer-number 2\nrocksdb-write-buffer-size 67108864\n\nlog-dir ./cluster_logs\n";
        let (c, warnings) = load(text).unwrap();
        assert_eq!((c.port, c.bind.as_str(), c.node_id), (7379, "127.0.0.1", 1));
        assert_eq!((c.raft_addr.as_str(), c.raft_resp_addr.as_str()), ("127.0.0.1:8001", "127.0.0.1:7379"));
        assert_eq!(c.data_dir, std::path::PathBuf::from("./raft_data_1"));
        assert_eq!(c.maxmemory, 1 << 30);
        assert_eq!(c.log_dir.as_deref(), Some(std::path::Path::new("./cluster_logs")));
        assert_eq!(warnings.len(), 4, "{warnings:?}");
        assert!(warnings[0].starts_with("node.conf:15: ignoring 'rocksdb-max-background-jobs'"), "{warnings:?}");
        assert!(warnings[3].contains("'db-path ./db_node1' not used"), "{warnings:?}");
    }

    #[test]
    fn data_dir_keys_rank_regardless_of_order() {
        let (c, w) = load("raft-data-dir /a\ndb-path /b\ndir /c\n").unwrap();
        assert_eq!(c.data_dir, std::path::PathBuf::from("/a"));
        assert_eq!(w.len(), 2);
        let (c, w) = load("dir /c\ndb-path /b\n").unwrap();
        assert_eq!(c.data_dir, std::path::PathBuf::from("/b"));
        assert_eq!(w.len(), 1);
        let (c, w) = load("dir /c\n").unwrap();
        assert_eq!((c.data_dir, w.len()), (std::path::PathBuf::from("/c"), 0));
    }

    #[test]
    fn later_lines_win_and_save_lines_add_up() {
        let (c, _) = load("port 1\nport 2\nsave 900 1\nsave 300 10\n").unwrap();
        assert_eq!((c.port, c.save.as_str()), (2, "900 1 300 10"));
        let (c, _) = load("save 900 1\nsave \"\"\n").unwrap();
        assert_eq!(c.save, "");
        let (c, _) = load("requirepass \"a b\"\nMAXMEMORY-POLICY allkeys-lru\nappendonly YES\n").unwrap();
        assert_eq!((c.requirepass.as_str(), c.maxmemory_policy.as_str(), c.appendonly), ("a b", "allkeys-lru", true));
    }
}
