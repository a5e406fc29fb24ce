//! CONFIG GET / SET / RESETSTAT / REWRITE / HELP over the node's [`Config`]. Each parameter
//! has a getter and (when mutable) a validating setter with Redis's error texts. Some are
//! stored and reported only (save, appendonly, appendfsync, ...) so client probes work.

use super::{help_reply, sub_arity, Session};
use crate::cmd::args::{self, is};
use crate::cmd::glob;
use crate::config::reported::{self, REPORTED};
use crate::config::Config;
use crate::protocol::{parse_i64, Frame};
use bytes::Bytes;

type Getter = fn(&Config) -> String;
type Setter = fn(&mut Config, &str) -> Result<(), String>;

/// How a parameter can be changed.
enum Access {
    Mutable(Setter),
    /// Fixed at start: "can't set immutable config".
    Immutable,
    /// Redis refuses to change it at run time unless enabled: "can't set protected config".
    Protected,
}

struct Param {
    name: &'static str,
    get: Getter,
    access: Access,
}

const IMMUTABLE: &str = "can't set immutable config";

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_string()
}

fn int_in(v: &str, min: i64, max: i64) -> Result<i64, String> {
    let n = parse_i64(v.as_bytes()).ok_or("argument couldn't be parsed into an integer")?;
    if n < min || n > max {
        return Err(format!("argument must be between {min} and {max} inclusive"));
    }
    Ok(n)
}

/// Redis's `memtoull`: digits with an optional b/k/kb/m/mb/g/gb unit.
fn memory(v: &str) -> Option<u64> {
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
        _ => return None,
    };
    num.parse::<u64>().ok()?.checked_mul(mul)
}

fn one_of(v: &str, allowed: &[&str]) -> Result<String, String> {
    let lower = v.to_ascii_lowercase();
    if allowed.contains(&lower.as_str()) {
        Ok(lower)
    } else {
        Err(format!("argument(s) must be one of the following: {}", allowed.join(", ")))
    }
}

fn set_yes_no(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err("argument must be 'yes' or 'no'".into()),
    }
}

/// `save` is "" or pairs of "<seconds> <changes>".
fn set_save(c: &mut Config, v: &str) -> Result<(), String> {
    let parts: Vec<&str> = v.split_whitespace().collect();
    let valid = parts.len().is_multiple_of(2) && parts.iter().all(|p| p.parse::<u64>().is_ok());
    if !valid {
        return Err("Invalid save parameters".into());
    }
    c.save = parts.join(" ");
    Ok(())
}

const POLICIES: &[&str] = &[
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "noeviction",
];

static PARAMS: &[Param] = &[
    Param {
        name: "requirepass",
        get: |c| c.requirepass.clone(),
        access: Access::Mutable(|c, v| {
            c.requirepass = v.to_string();
            Ok(())
        }),
    },
    Param {
        name: "maxclients",
        get: |c| c.maxclients.to_string(),
        access: Access::Mutable(|c, v| {
            c.maxclients = int_in(v, 1, 4294967295)? as usize;
            Ok(())
        }),
    },
    Param {
        name: "timeout",
        get: |c| c.timeout_secs.to_string(),
        access: Access::Mutable(|c, v| {
            c.timeout_secs = int_in(v, 0, 2147483647)? as u64;
            Ok(())
        }),
    },
    Param {
        name: "proto-max-bulk-len",
        get: |c| c.proto_max_bulk_len.to_string(),
        access: Access::Mutable(|c, v| {
            let n = memory(v).ok_or("argument must be a memory value")?;
            if n < 1024 * 1024 || n > i64::MAX as u64 {
                return Err("argument must be between 1048576 and 9223372036854775807 inclusive".into());
            }
            c.proto_max_bulk_len = n as i64;
            Ok(())
        }),
    },
    Param {
        name: "client-query-buffer-limit",
        get: |c| c.client_query_buffer_limit.to_string(),
        access: Access::Mutable(|c, v| {
            let n = memory(v).ok_or("argument must be a memory value")?;
            if n < 1024 * 1024 || n > i64::MAX as u64 {
                return Err("argument must be between 1048576 and 9223372036854775807 inclusive".into());
            }
            c.client_query_buffer_limit = n;
            Ok(())
        }),
    },
    Param { name: "save", get: |c| c.save.clone(), access: Access::Mutable(set_save) },
    Param {
        name: "appendonly",
        get: |c| yes_no(c.appendonly),
        access: Access::Mutable(|c, v| {
            c.appendonly = set_yes_no(v)?;
            Ok(())
        }),
    },
    Param {
        name: "appendfsync",
        get: |c| c.appendfsync.clone(),
        access: Access::Mutable(|c, v| {
            c.appendfsync = one_of(v, &["everysec", "always", "no"])?;
            Ok(())
        }),
    },
    Param {
        name: "maxmemory",
        get: |c| c.maxmemory.to_string(),
        access: Access::Mutable(|c, v| {
            c.maxmemory = memory(v).ok_or("argument must be a memory value")?;
            Ok(())
        }),
    },
    Param {
        name: "maxmemory-policy",
        get: |c| c.maxmemory_policy.clone(),
        access: Access::Mutable(|c, v| {
            c.maxmemory_policy = one_of(v, POLICIES)?;
            Ok(())
        }),
    },
    Param {
        name: "maxmemory-samples",
        get: |c| c.maxmemory_samples.to_string(),
        access: Access::Mutable(|c, v| {
            c.maxmemory_samples = int_in(v, 1, 2147483647)? as usize;
            Ok(())
        }),
    },
    Param {
        name: "client-output-buffer-limit",
        get: |c| c.output_limits.to_string(),
        access: Access::Mutable(|c, v| c.output_limits.set(v)),
    },
    Param {
        name: "notify-keyspace-events",
        get: |c| crate::store::notify::flags_to_string(c.notify_keyspace_events),
        access: Access::Mutable(|c, v| {
            c.notify_keyspace_events = crate::config::settings::notify_flags(v)?;
            Ok(())
        }),
    },
    Param {
        name: "loglevel",
        get: |c| c.loglevel.clone(),
        access: Access::Mutable(|c, v| {
            c.loglevel = one_of(v, &["debug", "verbose", "notice", "warning"])?;
            Ok(())
        }),
    },
    Param { name: "logfile", get: |c| c.logfile.clone(), access: Access::Immutable },
    Param { name: "aclfile", get: |c| c.aclfile.clone(), access: Access::Immutable },
    Param { name: "databases", get: |c| c.databases.to_string(), access: Access::Immutable },
    Param { name: "io-threads", get: |c| c.io_threads.to_string(), access: Access::Immutable },
    Param {
        name: "port",
        get: |c| c.port.to_string(),
        // The listener is not rebound at run time: only the current port is accepted.
        access: Access::Mutable(|c, v| match int_in(v, 0, 65535)? {
            n if n == c.port as i64 => Ok(()),
            _ => Err("Unable to listen on this port".into()),
        }),
    },
    Param { name: "bind", get: |c| c.bind.clone(), access: Access::Immutable },
    Param { name: "dir", get: |c| c.data_dir.display().to_string(), access: Access::Protected },
    Param { name: "cluster-enabled", get: |c| yes_no(c.cluster_enabled), access: Access::Immutable },
    Param { name: "daemonize", get: |_| "no".into(), access: Access::Immutable },
    Param { name: "appendfilename", get: |_| "appendonly.aof".into(), access: Access::Immutable },
    Param { name: "dbfilename", get: |_| "dump.rdb".into(), access: Access::Protected },
    // raftis's own: fixed at start (openraft takes its settings when the group starts).
    Param { name: "node-id", get: |c| c.node_id.to_string(), access: Access::Immutable },
    Param { name: "raft-addr", get: |c| c.raft_addr.clone(), access: Access::Immutable },
    Param { name: "snapshot-logs", get: |c| c.snapshot_logs.to_string(), access: Access::Immutable },
];

const HELP: &[&str] = &[
    "GET <pattern>",
    "    Return parameters matching the glob-like <pattern> and their values.",
    "SET <directive> <value>",
    "    Set the configuration <directive> to <value>.",
    "RESETSTAT",
    "    Reset statistics reported by the INFO command.",
    "REWRITE",
    "    Rewrite the configuration file.",
    "HELP",
    "    Prints this help.",
];

/// CONFIG <subcommand> ...
pub fn config(s: &mut Session, argv: &[Bytes]) -> Frame {
    let sub = String::from_utf8_lossy(&argv[1]).to_ascii_lowercase();
    let arity = match sub.as_str() {
        "get" => -3,
        "set" => -4,
        "resetstat" | "rewrite" | "help" => 2,
        _ => return args::unknown_subcommand(&argv[1], "config"),
    };
    if let Err(e) = sub_arity("config", argv, arity) {
        return e;
    }
    match sub.as_str() {
        "get" => {
            let (steps, settings) = s.shared.engine.with_data_keyspace(|ks| (ks.scripts.max_steps, ks.settings));
            let [entries, bytes] = crate::cmd::stream::settings::config_values(&settings);
            let replicated = [(crate::cmd::scripting::MAX_STEPS_PARAM, steps.to_string()), entries, bytes];
            get(&s.shared.config(), &argv[2..], &replicated)
        }
        "set" => set(s, &argv[2..]),
        "resetstat" => {
            s.shared.stats.reset();
            s.shared.latency.reset_stats();
            Frame::ok()
        }
        "rewrite" => Frame::error("ERR The server is running without a config file"),
        _ => help_reply("CONFIG", HELP),
    }
}

/// Parameters matching any pattern, each once, as name/value pairs (a map in RESP3). Like
/// Redis, a pattern without glob characters is looked up exactly and echoed as given.
/// `replicated` are the parameters kept in the replicated state (`lua-max-steps`).
fn get(c: &Config, patterns: &[Bytes], replicated: &[(&'static str, String)]) -> Frame {
    let reported = REPORTED.iter().flat_map(|r| {
        let value = c.reported.get(r);
        std::iter::once((r.name, value.clone())).chain(r.alias.map(|a| (a, value)))
    });
    let params = PARAMS.iter().map(|p| (p.name, (p.get)(c))).chain(replicated.iter().cloned()).chain(reported);
    let params: Vec<(&str, String)> = params.collect();
    let mut pairs = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for pat in patterns {
        let is_glob = pat.iter().any(|b| matches!(b, b'*' | b'?' | b'['));
        for (name, value) in &params {
            if seen.contains(name) {
                continue;
            }
            if is_glob && glob::matches(pat, name.as_bytes(), true) {
                pairs.push((Frame::bulk(*name), Frame::bulk(value.clone())));
                seen.push(name);
            } else if !is_glob && is(pat, name) {
                pairs.push((Frame::Bulk(pat.clone()), Frame::bulk(value.clone())));
                seen.push(name);
            }
        }
    }
    Frame::Map(pairs)
}

/// Sets every pair or none (Redis 7 applies CONFIG SET atomically).
fn set(s: &mut Session, pairs: &[Bytes]) -> Frame {
    if !pairs.len().is_multiple_of(2) {
        return Frame::error(args::SYNTAX);
    }
    let failed = |name: &str, why: &str| {
        Frame::error(format!("ERR CONFIG SET failed (possibly related to argument '{name}') - {why}"))
    };
    let mut next = s.shared.config().clone();
    let mut seen: Vec<&str> = Vec::new();
    let mut seen_reported: Vec<String> = Vec::new();
    for pair in pairs.chunks(2) {
        if is(&pair[0], crate::cmd::scripting::MAX_STEPS_PARAM) {
            // Replicated state, set through the log by dispatch when it is set on its own.
            return failed(crate::cmd::scripting::MAX_STEPS_PARAM, "set it on its own (it goes through the Raft log)");
        }
        if crate::cmd::stream::settings::is_param(&pair[0]) {
            let name = String::from_utf8_lossy(&pair[0]).to_ascii_lowercase();
            return failed(&name, "set it on its own (it goes through the Raft log)");
        }
        if let Some(r) = reported::find(&pair[0]) {
            // Redis tells duplicates by the name given: an alias and its name may both
            // appear, and the later one wins.
            let given = String::from_utf8_lossy(&pair[0]).to_ascii_lowercase();
            if seen_reported.contains(&given) {
                return failed(&given, "duplicate parameter");
            }
            seen_reported.push(given.clone());
            if let Err(why) = next.reported.set(r, &String::from_utf8_lossy(&pair[1])) {
                return failed(&given, &why);
            }
            continue;
        }
        let Some(param) = PARAMS.iter().find(|p| is(&pair[0], p.name)) else {
            return Frame::error(format!(
                "ERR Unknown option or number of arguments for CONFIG SET - '{}'",
                String::from_utf8_lossy(&pair[0])
            ));
        };
        let setter = match param.access {
            Access::Mutable(f) => f,
            Access::Immutable => return failed(param.name, IMMUTABLE),
            Access::Protected => return failed(param.name, "can't set protected config"),
        };
        if seen.contains(&param.name) {
            return failed(param.name, "duplicate parameter");
        }
        seen.push(param.name);
        if let Err(why) = setter(&mut next, &String::from_utf8_lossy(&pair[1])) {
            return failed(param.name, &why);
        }
    }
    s.shared.set_config(next);
    Frame::ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_units_follow_redis() {
        assert_eq!(memory("10"), Some(10));
        assert_eq!(memory("1kb"), Some(1024));
        assert_eq!(memory("1K"), Some(1000));
        assert_eq!(memory("2mb"), Some(2 * 1024 * 1024));
        assert_eq!(memory("1x"), None);
        assert_eq!(memory(""), None);
    }

    #[test]
    fn save_accepts_pairs_only() {
        let mut c = Config::default();
        assert!(set_save(&mut c, "").is_ok());
        assert!(set_save(&mut c, "3600 1 300 100").is_ok());
        assert_eq!(c.save, "3600 1 300 100");
        assert!(set_save(&mut c, "1 2 3").is_err());
        assert!(set_save(&mut c, "bad").is_err());
    }

    #[test]
    fn get_matches_globs_case_insensitively() {
        let c = Config::default();
        let Frame::Map(pairs) = get(&c, &[Bytes::from_static(b"MAXCLIENTS"), Bytes::from_static(b"max*")], &[]) else {
            panic!("not a map")
        };
        let names: Vec<_> = pairs.iter().map(|(k, _)| k.clone()).collect();
        assert!(names.contains(&Frame::bulk("MAXCLIENTS")));
        assert!(names.contains(&Frame::bulk("maxmemory-policy")));
        assert!(!names.contains(&Frame::bulk("maxclients")));
    }
}
