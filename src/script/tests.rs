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
    fn acl_allows(&self, _argv: &[Bytes]) -> bool {
        true
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
            (true, value) => lua_to_reply(lua, &value, resp3.get()),
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
                    (true, value) => lua_to_reply(lua, &value, resp3.get()),
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

/// FCALL of `function` in `code` on the shared interpreter (or its fallback), and in a fresh one.
fn fcalls(host: &mut dyn Host, code: &str, function: &str, keys: &[&str]) -> (Outcome, Outcome) {
    let keys = bytes(keys);
    let call = Call { code: code.as_bytes(), function, keys: &keys, args: &[] };
    let shared = fcall(host, &call, limits(1));
    (shared, function::fcall_fresh(&mut Counters::default(), &call, limits(1)))
}

/// Libraries whose calls must answer on a shared interpreter (after other runs) what they
/// answer on a fresh one: (code, function).
const LIBRARIES: &[(&str, &str)] = &[
    ("#!lua name=a\nredis.register_function('f', function(k) return redis.call('GET', k[1]) end)", "f"),
    // A library's locals start afresh for every call, as in a fresh interpreter.
    ("#!lua name=b\nlocal n = 0\nredis.register_function('f', function() n = n + 1 return n end)", "f"),
    ("#!lua name=c\nlocal t = {}\nredis.register_function('f', function() t[#t + 1] = 1 return #t end)", "f"),
    ("#!lua name=d\nredis.register_function('f', function() return tostring({}) .. tostring(function() end) end)", "f"),
    ("#!lua name=e\nredis.register_function('f', function() error('boom') end)", "f"),
    ("#!lua name=g\nredis.register_function('f', function() return math.random(1000) end)", "f"),
    ("#!lua name=h\nredis.register_function('f', function() x = 1 end)", "f"),
    ("#!lua name=i\nredis.register_function('f', function() return 1 end)", "nope"),
    ("#!lua name=j\nredis.register_function{function_name='f', callback=function() return redis.register_function('g', function() end) end}", "f"),
];

#[test]
fn shared_fcalls_answer_what_fresh_fcalls_answer() {
    let mut host = Counters::default();
    for round in 0..3 {
        for (code, function) in LIBRARIES {
            let (shared, fresh) = fcalls(&mut host, code, function, &["k"]);
            assert_eq!(shared, fresh, "round {round}: {code}");
        }
        // An EVAL in between sees none of it, and the next FCALLs see nothing of the EVAL.
        assert!(is_error(&shared("return n"), "nonexistent global variable 'n'"));
    }
    let (counted, _) = fcalls(&mut host, LIBRARIES[1].0, "f", &[]);
    assert_eq!(counted, Outcome::Done(Frame::Integer(1)));
}

#[test]
fn fcalls_in_a_row_are_answered_by_one_interpreter() {
    let code = "#!lua name=lib\nredis.register_function('bump', function(k) return redis.call('INCR', k[1]) end)";
    let mut host = Counters::default();
    let (built, answered) = vm::shared_stats();
    for i in 1..=20 {
        assert_eq!(fcalls(&mut host, code, "bump", &["c"]).0, Outcome::Done(Frame::Integer(i)));
    }
    let (built_after, answered_after) = vm::shared_stats();
    assert!(built_after - built <= 1, "{built} -> {built_after}");
    assert_eq!(answered_after - answered, 20);
}

#[test]
fn a_script_and_a_library_with_one_body_keep_their_chunk_names() {
    // FUNCTION's `#!` line becomes `--`: this EVAL's body is the library's compiled code.
    let library = "#!lua name=t\nredis.register_function('f', function() return 1 end) error('top')";
    let (from_fcall, _) = fcalls(&mut Counters::default(), library, "f", &[]);
    assert!(is_error(&from_fcall, "user_function:2"), "{from_fcall:?}");
    let body = library.replacen("#!", "--", 1);
    assert!(is_error(&shared(&body), "user_script:2"));
}

#[test]
fn a_runaway_function_stops_at_the_same_step_shared_or_fresh() {
    let code = "#!lua name=spin\nlocal n = 0\nredis.register_function('f', function() while true do n = n + 1 redis.call('SET', 'n', n) end end)";
    let call = Call { code: code.as_bytes(), function: "f", keys: &[], args: &[] };
    let small = Limits { max_steps: 10_000, seed: 1, kill: None };
    let (mut a, mut b) = (Recording::default(), Recording::default());
    assert_eq!(fcall(&mut a, &call, small.clone()), Outcome::Exhausted);
    assert_eq!(function::fcall_fresh(&mut b, &call, small), Outcome::Exhausted);
    assert!(a.0.len() > 10 && a.0 == b.0, "{} vs {} commands", a.0.len(), b.0.len());
    assert_eq!(shared("return 1"), Outcome::Done(Frame::Integer(1)));
}

/// A host that records the commands it is asked to run.
#[derive(Default)]
struct Recording(Vec<Vec<Bytes>>);

impl Host for Recording {
    fn call(&mut self, argv: Vec<Bytes>) -> Frame {
        self.0.push(argv);
        Frame::ok()
    }

    fn knows_command(&self, _name: &[u8]) -> bool {
        true
    }
    fn acl_allows(&self, _argv: &[Bytes]) -> bool {
        true
    }
}

/// FCALLs of a small write function (`RAFTIS_FCALLS_N`, 2000 by default) on the shared
/// interpreter, or with `RAFTIS_FCALLS=fresh` on a fresh one each: run under
/// `valgrind --tool=callgrind` to compare the instructions per call.
#[test]
#[ignore = "instruction-count micro benchmark"]
fn fcalls_in_a_row() {
    let fresh_each = std::env::var("RAFTIS_FCALLS").is_ok_and(|m| m == "fresh");
    let code = "#!lua name=lib\nredis.register_function('bump', function(k) return redis.call('INCR', k[1]) end)";
    let keys = bytes(&["counter"]);
    let call = Call { code: code.as_bytes(), function: "bump", keys: &keys, args: &[] };
    let mut host = Counters::default();
    let n: i64 = std::env::var("RAFTIS_FCALLS_N").ok().and_then(|n| n.parse().ok()).unwrap_or(2000);
    for i in 1..=n {
        let out = if fresh_each {
            function::fcall_fresh(&mut host, &call, limits(1))
        } else {
            fcall(&mut host, &call, limits(1))
        };
        assert_eq!(out, Outcome::Done(Frame::Integer(i)));
    }
}

#[test]
fn cjson_settings_last_one_run() {
    let settings = "return {cjson.encode_max_depth(), cjson.decode_max_depth(), cjson.encode_number_precision(), \
                    tostring(cjson.encode_invalid_numbers()), tostring(cjson.decode_invalid_numbers()), \
                    tostring((cjson.encode_sparse_array())), tostring(cjson.encode_keep_buffer())}";
    let defaults = fresh(settings, 1);
    let set_all = "cjson.encode_max_depth(3) cjson.decode_max_depth(2) cjson.encode_number_precision(2) \
                   cjson.encode_invalid_numbers('null') cjson.decode_invalid_numbers(false) \
                   cjson.encode_sparse_array(true, 1, 0) cjson.encode_keep_buffer(false) \
                   return cjson.encode({1/3, 1/0, {[5] = 1}})";
    assert_eq!(shared(set_all), done("[0.33,null,{\"5\":1}]"));
    assert_eq!(shared(settings), defaults);
    // A failing script, and FCALL, leave nothing either.
    assert!(is_error(&shared("cjson.encode_max_depth(1) error('x')"), "x"));
    assert_eq!(shared(settings), defaults);
    let lib = "#!lua name=cfg\nredis.register_function('f', function() cjson.encode_number_precision(1) return cjson.encode({1/3}) end)";
    assert_eq!(fcalls(&mut Counters::default(), lib, "f", &[]).0, done("[0.3]"));
    assert_eq!(shared(settings), defaults);
    // cjson.new() has its own settings.
    let own = "local j = cjson.new() j.encode_number_precision(2) return j.encode({1/3}) .. cjson.encode({1/3})";
    assert_eq!(shared(own), done("[0.33][0.33333333333333]"));
}

#[test]
fn cjson_settings_refuse_bad_values() {
    let cases = [
        (
            "cjson.encode_max_depth(0)",
            "bad argument #1 to 'encode_max_depth' (expected integer between 1 and 2147483647)",
        ),
        (
            "cjson.decode_max_depth(-1)",
            "bad argument #1 to 'decode_max_depth' (expected integer between 1 and 2147483647)",
        ),
        ("cjson.decode_max_depth('deep')", "bad argument #1 to 'decode_max_depth' (number expected, got string)"),
        ("cjson.encode_number_precision(15)", "(expected integer between 1 and 14)"),
        ("cjson.encode_number_precision({})", "(number expected, got table)"),
        (
            "cjson.encode_sparse_array(true, 'x')",
            "bad argument #2 to 'encode_sparse_array' (number expected, got string)",
        ),
        (
            "cjson.encode_sparse_array(true, 1, -1)",
            "bad argument #1 to 'encode_sparse_array' (expected integer between 0 and 2147483647)",
        ),
        (
            "cjson.encode_keep_buffer(function() end)",
            "bad argument #1 to 'encode_keep_buffer' (string expected, got function)",
        ),
        ("cjson.encode_invalid_numbers('yes')", "(invalid option 'yes')"),
        (
            "cjson.decode_invalid_numbers(true, false)",
            "bad argument #2 to 'decode_invalid_numbers' (found too many arguments)",
        ),
    ];
    for (body, text) in cases {
        assert!(is_error(&shared(body), text), "{body}: {:?}", shared(body));
    }
}

#[test]
fn cjson_nesting_stops_where_lua_s_stack_does() {
    // With the depth settings out of the way, Lua's stack (8000 slots) bounds the nesting, as
    // in Redis: these are Redis 7.0.15's replies.
    let encode = "cjson.encode_max_depth(100000) local t = {} local c = t for i = 1, 9000 do c[1] = {} c = c[1] end \
                  local t2 = {} c = t2 for i = 1, 9000 do c.a = {} c = c.a end \
                  return {select(2, pcall(cjson.encode, t)), select(2, pcall(cjson.encode, t2))}";
    let expected =
        |a: &str, b: &str| Outcome::Done(Frame::Array(vec![Frame::bulk(a.to_string()), Frame::bulk(b.to_string())]));
    assert_eq!(
        shared(encode),
        expected("Cannot serialise, excessive nesting (7998)", "Cannot serialise, excessive nesting (4000)")
    );
    let decode = "cjson.decode_max_depth(100000) \
                  return {select(2, pcall(cjson.decode, string.rep('[', 9000))), select(2, pcall(cjson.decode, string.rep('{\"a\":', 9000)))}";
    assert_eq!(
        shared(decode),
        expected(
            "Found too many nested data structures (7999) at character 7999",
            "Found too many nested data structures (4000) at character 19996"
        )
    );
}

#[test]
fn a_command_may_have_thousands_of_arguments() {
    // Redis's TCL test "Script check unpack with massive arguments": 8001 arguments, more than
    // mlua has references for, so redis.call reads them from a table, one at a time.
    let mut host = Recording::default();
    let body = "local a = {} for i = 1, 7999 do a[i] = i end \
                redis.call('LPUSH', 'l', unpack(a)) redis.pcall('LPUSH', 'l', unpack(a)) \
                return redis.acl_check_cmd('LPUSH', 'l', unpack(a))";
    assert_eq!(shared_run(&mut host, body, &[], 1), Outcome::Done(Frame::Integer(1)));
    assert_eq!(host.0.len(), 2);
    assert!(host.0.iter().all(|argv| argv.len() == 8001 && argv[8000] == "7999"));
}

#[test]
fn a_reply_nested_past_the_limit_ends_in_redis_s_error() {
    // Redis's TCL test "Script return recursive object": a table containing itself.
    let mut reply = match shared("local a = {} local b = {a} a[1] = b return a") {
        Outcome::Done(f) => f,
        other => panic!("{other:?}"),
    };
    let mut depth = 0;
    while let Frame::Array(mut items) = reply {
        assert_eq!(items.len(), 1);
        reply = items.remove(0);
        depth += 1;
    }
    assert_eq!((depth, reply), (1000, Frame::error("ERR reached lua stack limit")));
    let nested = "return {map={a={set={x=true}}, b={1, {double=1.5}}}}";
    assert_eq!(shared(nested), fresh(nested, 1));
    let reply = shared("return {1, {map={k={2, 3}}}, {set={s=true}}, {err='E x'}, 'z'}");
    let expected = Frame::Array(vec![
        Frame::Integer(1),
        Frame::Map(vec![(Frame::bulk("k"), Frame::Array(vec![Frame::Integer(2), Frame::Integer(3)]))]),
        Frame::Set(vec![Frame::bulk("s")]),
        Frame::error("E x"),
        Frame::bulk("z"),
    ]);
    assert_eq!(reply, Outcome::Done(expected));
}
