//! Runs in a row on this thread's shared interpreter: a run cannot see what an earlier one did,
//! and every run answers what a fresh interpreter answers (the fallback included).

use super::env::Mode;
use super::*;
use std::collections::BTreeMap;

/// A keyspace of counters: INCR and GET, and how many commands ran.
#[derive(Default)]
struct Counters {
    values: BTreeMap<Vec<u8>, i64>,
    ran: usize,
}

impl Host for Counters {
    fn call(&mut self, argv: Vec<Bytes>) -> Frame {
        self.ran += 1;
        let key = argv.get(1).map(|k| k.to_vec()).unwrap_or_default();
        match argv[0].to_ascii_lowercase().as_slice() {
            b"incr" => {
                let v = self.values.entry(key).or_default();
                *v += 1;
                Frame::Integer(*v)
            }
            b"get" => self.values.get(&key).map_or(Frame::Null, |v| Frame::bulk(v.to_string())),
            _ => Frame::error("ERR Unknown Redis command called from script"),
        }
    }

    fn knows_command(&self, name: &[u8]) -> bool {
        matches!(name.to_ascii_lowercase().as_slice(), b"incr" | b"get")
    }
}

fn limits(seed: u64) -> Limits {
    Limits { max_steps: 50_000_000, seed, kill: None }
}

fn bytes(items: &[&str]) -> Vec<Bytes> {
    items.iter().map(|s| Bytes::copy_from_slice(s.as_bytes())).collect()
}

/// EVAL on the shared interpreter (or its fallback).
fn shared_run(host: &mut dyn Host, body: &str, keys: &[&str], seed: u64) -> Outcome {
    let (keys, args) = (bytes(keys), bytes(&[]));
    let script = Script { name: "f0", body: body.as_bytes(), keys: &keys, args: &args };
    eval(host, &script, limits(seed))
}

fn shared(body: &str) -> Outcome {
    shared_run(&mut Counters::default(), body, &[], 1)
}

/// The same script in a fresh interpreter, as every run was before the shared one.
fn fresh(body: &str, seed: u64) -> Outcome {
    let chunk = Chunk { name: "@user_script", body: body.as_bytes(), compile_error: "Error compiling script" };
    let ran = in_vm(&mut Counters::default(), limits(seed), Mode::Eval, &chunk, |lua, env, f, resp3| {
        env.globals.raw_set("KEYS", string_array(lua, &[])?)?;
        env.globals.raw_set("ARGV", string_array(lua, &[])?)?;
        Ok(match env.run.call::<(bool, Value)>(f)? {
            (true, value) => lua_to_reply(&value, resp3.get()),
            (false, err) => error_reply(&err, "f0"),
        })
    });
    ran.map_or_else(|o| o, Outcome::Done)
}

fn done(s: &str) -> Outcome {
    Outcome::Done(Frame::bulk(s.to_string()))
}

fn is_error(o: &Outcome, text: &str) -> bool {
    matches!(o, Outcome::Done(Frame::Error(e)) if String::from_utf8_lossy(e).contains(text))
}

#[test]
fn a_global_set_by_a_run_is_refused_and_not_seen_later() {
    assert!(is_error(&shared("x = 1"), "Attempt to modify a readonly table"));
    assert!(is_error(&shared("rawset(_G, 'x', 1)"), "Attempt to modify a readonly table"));
    assert!(is_error(&shared("setmetatable(_G, {})"), "cannot change a protected metatable"));
    assert!(is_error(&shared("string.upper = nil"), "Attempt to modify a readonly table"));
    assert_eq!(shared("return type(rawget(_G, 'x'))"), done("nil"));
    assert_eq!(shared("return string.upper('a')"), done("A"));
}

#[test]
fn the_string_metatable_cannot_be_changed() {
    let attempts = [
        "getmetatable('').__index = nil",
        "getmetatable('').__index.upper = nil",
        "getmetatable('').__add = function() return 1 end",
        "rawset(getmetatable(''), '__index', {})",
        "rawset(getmetatable('').__index, 'upper', nil)",
    ];
    for attempt in attempts {
        assert!(is_error(&shared(attempt), "Attempt to modify a readonly table"), "{attempt}");
    }
    assert_eq!(shared("return ('a'):upper() .. tostring(getmetatable('').__index == string)"), done("Atrue"));
    assert!(is_error(&shared("return 'a' + {}"), "attempt to perform arithmetic"));
}

#[test]
fn keys_and_argv_are_those_of_the_run() {
    let mut host = Counters::default();
    let out = shared_run(&mut host, "KEYS[3] = 'z' return #KEYS", &["a", "b"], 1);
    assert_eq!(out, Outcome::Done(Frame::Integer(3)));
    assert_eq!(shared_run(&mut host, "return #KEYS + #ARGV", &[], 1), Outcome::Done(Frame::Integer(0)));
    assert_eq!(shared_run(&mut host, "return KEYS[1]", &["c"], 1), done("c"));
}

#[test]
fn math_random_restarts_from_each_runs_seed() {
    let draw = "return tostring(math.random()) .. ' ' .. math.random(1000) .. ' ' .. math.random(5, 9)";
    let first = shared_run(&mut Counters::default(), draw, &[], 42);
    assert_eq!(shared_run(&mut Counters::default(), "math.randomseed(7) return math.random(9)", &[], 42), {
        fresh("math.randomseed(7) return math.random(9)", 42)
    });
    assert_eq!(shared_run(&mut Counters::default(), draw, &[], 42), first);
    assert_eq!(first, fresh(draw, 42));
    assert_ne!(shared_run(&mut Counters::default(), draw, &[], 43), first);
}

#[test]
fn tostring_names_restart_every_run() {
    let body = "local t = {} return tostring(t) .. tostring(function() end) .. tostring(t)";
    let first = shared(body);
    assert_eq!(first, done("table: 0x00000001function: 0x00000002table: 0x00000001"));
    assert_eq!(shared(body), first);
}

/// Scripts whose every result must be the same on a shared interpreter (after other runs) as
/// on a fresh one.
const SAME_EVERYWHERE: &[&str] = &[
    "return redis.call('INCR', 'k')",
    "return redis.pcall('NOPE')",
    "local ok, e = pcall(error, {err='x'}) return e",
    "error('boom')",
    "return cjson.encode({a = {1, 2}, b = 'c'})",
    "local t = {} for i = 1, 1000 do t[i] = string.rep('y', i) end return #table.concat(t)",
    "local w = setmetatable({}, {__mode = 'v'}) w[1] = {} for i = 1, 20000 do local x = {i} end return w[1] ~= nil",
    "return {1, 'two', {3}, redis.status_reply('OK')}",
    "return redis.sha1hex('abc')",
    "local co = coroutine.create(function() coroutine.yield(1) end) coroutine.resume(co) return coroutine.status(co)",
];

#[test]
fn shared_runs_answer_what_fresh_runs_answer() {
    for _ in 0..3 {
        for body in SAME_EVERYWHERE {
            assert_eq!(shared(body), fresh(body, 1), "{body}");
        }
    }
}

#[test]
fn the_memory_limit_fails_at_the_same_point_after_a_big_run() {
    let fill = "local n = 0 pcall(function() local t = {} while true do n = n + 1 t[n] = string.rep('x', 100000) .. n end end) return n";
    let expected = fresh(fill, 1);
    assert!(matches!(expected, Outcome::Done(Frame::Integer(n)) if n > 1000), "{expected:?}");
    // A run that left 10 MB of garbage, then the limit is reached at the same element.
    assert_eq!(
        shared("local s = {} for i = 1, 100 do s[i] = string.rep('z', 100000) .. i end return #s"),
        Outcome::Done(Frame::Integer(100))
    );
    assert_eq!(shared(fill), expected);
    assert_eq!(shared(fill), expected);
}

#[test]
fn a_refused_run_is_replayed_without_running_its_commands_twice() {
    let mut host = Counters::default();
    let body =
        "redis.call('INCR', 'k') local s = string.rep('x', 20 * 1024 * 1024) return redis.call('INCR', 'k') + #s";
    let out = shared_run(&mut host, body, &[], 1);
    assert_eq!(out, Outcome::Done(Frame::Integer(2 + 20 * 1024 * 1024)));
    assert_eq!((host.ran, host.values.get(&b"k"[..])), (2, Some(&2)));
    // collectgarbage cannot be answered by a shared interpreter: the run is replayed fresh.
    let out = shared_run(&mut host, "redis.call('INCR', 'k') return collectgarbage('count') > 0", &[], 1);
    assert_eq!(out, Outcome::Done(Frame::Integer(1)));
    assert_eq!((host.ran, host.values.get(&b"k"[..])), (3, Some(&3)));
    let pcalled = "redis.call('INCR', 'k') local ok = pcall(collectgarbage, 'count') return tostring(ok)";
    assert_eq!(shared_run(&mut host, pcalled, &[], 1), done("true"));
    assert_eq!(host.ran, 4);
}

#[test]
fn a_stopped_run_leaves_nothing_for_the_next() {
    let spin = Script { name: "f0", body: b"while true do end", keys: &[], args: &[] };
    let small = Limits { max_steps: 10_000, seed: 1, kill: None };
    assert_eq!(eval(&mut Counters::default(), &spin, small.clone()), Outcome::Exhausted);
    assert_eq!(shared("return 1"), Outcome::Done(Frame::Integer(1)));
    assert!(matches!(shared("return ("), Outcome::CompileError(_)));
    assert_eq!(shared("return 2"), Outcome::Done(Frame::Integer(2)));
    vm::discard_shared();
    assert_eq!(shared("return 3"), Outcome::Done(Frame::Integer(3)));
}

#[test]
fn one_interpreter_answers_many_runs() {
    let (built, answered) = vm::shared_stats();
    for i in 0..20 {
        assert_eq!(shared(&format!("return {i}")), Outcome::Done(Frame::Integer(i)));
    }
    let (built_after, answered_after) = vm::shared_stats();
    assert!(built_after - built <= 1, "{built} -> {built_after}");
    assert_eq!(answered_after - answered, 20);
    // A refused run is not answered by the shared interpreter (it falls back).
    assert_eq!(shared("return collectgarbage('count') > 0"), Outcome::Done(Frame::Integer(1)));
    assert_eq!(vm::shared_stats().1, answered_after);
}

/// EVALs of a small write script (`RAFTIS_EVALS_N`, 2000 by default) on the shared interpreter
/// or (`RAFTIS_EVALS=fresh`) each in a fresh one: counted under `valgrind --tool=callgrind` or
/// `perf stat -e instructions` to compare the two.
#[test]
#[ignore = "instruction-count micro benchmark"]
fn evals_in_a_row() {
    let fresh_each = std::env::var("RAFTIS_EVALS").is_ok_and(|m| m == "fresh");
    let body = "return redis.call('INCR', KEYS[1])";
    let keys = bytes(&["counter"]);
    let mut host = Counters::default();
    let n: i64 = std::env::var("RAFTIS_EVALS_N").ok().and_then(|n| n.parse().ok()).unwrap_or(2000);
    for i in 1..=n {
        let out = if fresh_each {
            let chunk = Chunk { name: "@user_script", body: body.as_bytes(), compile_error: "Error compiling script" };
            in_vm(&mut host, limits(1), Mode::Eval, &chunk, |lua, env, f, resp3| {
                env.globals.raw_set("KEYS", string_array(lua, &keys)?)?;
                env.globals.raw_set("ARGV", string_array(lua, &[])?)?;
                Ok(match env.run.call::<(bool, Value)>(f)? {
                    (true, value) => lua_to_reply(&value, resp3.get()),
                    (false, err) => error_reply(&err, "f0"),
                })
            })
            .map_or_else(|o| o, Outcome::Done)
        } else {
            let script = Script { name: "f0", body: body.as_bytes(), keys: &keys, args: &[] };
            eval(&mut host, &script, limits(1))
        };
        assert_eq!(out, Outcome::Done(Frame::Integer(i)));
    }
}

#[test]
fn a_run_that_outgrows_its_record_is_replayed_once() {
    let mut host = Counters::default();
    // 2000 calls with a 10 KB argument: past the record's 16 MiB, the rest runs fresh.
    let body = "local big = string.rep('a', 10000) for i = 1, 2000 do redis.call('INCR', 'k', big) end return redis.call('GET', 'k')";
    assert_eq!(shared_run(&mut host, body, &[], 1), done("2000"));
    assert_eq!(host.ran, 2001);
}
