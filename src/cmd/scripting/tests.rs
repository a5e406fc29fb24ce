use crate::cmd::{apply, lookup, run_read, Kind};
use crate::protocol::Frame;
use crate::store::{Keyspace, WriteBatch};
use bytes::Bytes;

fn argv(parts: &[&str]) -> Vec<Bytes> {
    parts.iter().map(|s| Bytes::copy_from_slice(s.as_bytes())).collect()
}

fn write(ks: &mut Keyspace, seed: u64, parts: &[&str]) -> Frame {
    let batch = WriteBatch { db: 0, now_ms: 1_000_000, seed, cmds: vec![argv(parts)], transaction: None };
    apply(ks, &batch)
}

fn read(ks: &Keyspace, parts: &[&str]) -> Frame {
    let argv = argv(parts);
    let Some(Kind::Read(f)) = lookup(&argv[0]).map(|s| s.kind) else { panic!("not a read") };
    run_read(ks, 0, 1_000_000, 9, f, &argv)
}

fn err(s: &str) -> Frame {
    Frame::error(s)
}

#[test]
fn eval_returns_converted_values_and_writes() {
    let mut ks = Keyspace::default();
    assert_eq!(write(&mut ks, 1, &["EVAL", "return redis.call('set', KEYS[1], ARGV[1])", "1", "k", "v"]), Frame::ok());
    assert_eq!(write(&mut ks, 1, &["EVAL", "return redis.call('get', KEYS[1])", "1", "k"]), Frame::bulk("v"));
    let reply = write(&mut ks, 1, &["EVAL", "return {1, 2.9, 'x', false, true, nil, 5}", "0"]);
    assert_eq!(
        reply,
        Frame::Array(vec![Frame::Integer(1), Frame::Integer(2), Frame::bulk("x"), Frame::Null, Frame::Integer(1)])
    );
    assert_eq!(write(&mut ks, 1, &["EVAL", "return 1e20", "0"]), Frame::Integer(i64::MIN));
    assert_eq!(write(&mut ks, 1, &["EVAL", "return {err='MY oops'}", "0"]), err("MY oops"));
    assert_eq!(write(&mut ks, 1, &["EVAL", "return redis.status_reply('FINE')", "0"]), Frame::simple("FINE"));
}

#[test]
fn errors_carry_redis_texts_and_positions() {
    let mut ks = Keyspace::default();
    let sha = crate::store::scripts::sha1_hex(b"x = 1");
    assert_eq!(
        write(&mut ks, 1, &["EVAL", "x = 1", "0"]),
        err(&format!("ERR user_script:1: Attempt to modify a readonly table script: {sha}, on @user_script:1."))
    );
    let body = "local a = 1\nreturn redis.call('nosuch')";
    let sha = crate::store::scripts::sha1_hex(body.as_bytes());
    assert_eq!(
        write(&mut ks, 1, &["EVAL", body, "0"]),
        err(&format!("ERR Unknown Redis command called from script script: {sha}, on @user_script:2."))
    );
    assert_eq!(
        write(&mut ks, 1, &["EVAL", "return +", "0"]),
        err("ERR Error compiling script (new function): user_script:1: unexpected symbol near '+'")
    );
    assert_eq!(write(&mut ks, 1, &["EVAL", "return 1", "-1"]), err("ERR Number of keys can't be negative"));
    assert_eq!(
        write(&mut ks, 1, &["EVAL", "return 1", "99999999999"]),
        err("ERR Number of keys can't be greater than number of args")
    );
    assert_eq!(
        write(&mut ks, 1, &["EVALSHA", "ffffffffffffffffffffffffffffffffffffffff", "0"]),
        err("NOSCRIPT No matching script. Please use EVAL.")
    );
    let pcall = "local ok, e = pcall(redis.call, 'incr', KEYS[1]) return e";
    write(&mut ks, 1, &["SET", "s", "abc"]);
    assert_eq!(
        write(&mut ks, 1, &["EVAL", pcall, "1", "s"]),
        Frame::bulk("ERR value is not an integer or out of range")
    );
}

#[test]
fn eval_caches_the_script_and_script_commands_manage_the_cache() {
    let mut ks = Keyspace::default();
    let sha = crate::store::scripts::sha1_hex(b"return 7");
    write(&mut ks, 1, &["EVAL", "return 7", "0"]);
    assert_eq!(write(&mut ks, 1, &["EVALSHA", &sha.to_uppercase(), "0"]), Frame::Integer(7));
    assert_eq!(read(&ks, &["EVALSHA_RO", &sha, "0"]), Frame::Integer(7));
    assert_eq!(
        write(&mut ks, 1, &["SCRIPT", "EXISTS", &sha, "nope"]),
        Frame::Array(vec![Frame::Integer(1), Frame::Integer(0)])
    );
    assert_eq!(write(&mut ks, 1, &["SCRIPT", "FLUSH"]), Frame::ok());
    assert_eq!(write(&mut ks, 1, &["SCRIPT", "EXISTS", &sha]), Frame::Array(vec![Frame::Integer(0)]));
    assert_eq!(write(&mut ks, 1, &["SCRIPT", "LOAD", "return 7"]), Frame::bulk(sha.clone()));
    assert_eq!(write(&mut ks, 1, &["SCRIPT", "KILL"]), err("NOTBUSY No scripts in execution right now."));
    assert_eq!(write(&mut ks, 1, &["SCRIPT", "FLUSH", "bad"]), err("ERR SCRIPT FLUSH only support SYNC|ASYNC option"));
    // A script that does not compile is not cached.
    write(&mut ks, 1, &["EVAL", "return +", "0"]);
    assert_eq!(ks.scripts.len(), 1);
}

#[test]
fn read_only_scripts_refuse_writes() {
    let ks = Keyspace::default();
    let reply = read(&ks, &["EVAL_RO", "return redis.call('set', 'a', 1)", "0"]);
    let Frame::Error(e) = reply else { panic!("not an error") };
    assert!(e.starts_with(b"ERR Write commands are not allowed from read-only scripts. script: "));
}

#[test]
fn a_runaway_script_is_aborted_and_its_writes_rolled_back() {
    let mut ks = Keyspace::default();
    write(&mut ks, 1, &["SET", "keep", "old"]);
    assert_eq!(write(&mut ks, 1, &["raftis.luasteps", "100000"]), Frame::ok());
    let body = "redis.call('set', 'keep', 'new') redis.call('rpush', 'l', 1) redis.call('flushall') \
                redis.call('set', 'other', 1) while true do pcall(function() while true do end end) end";
    let reply = write(&mut ks, 1, &["EVAL", body, "0"]);
    assert_eq!(reply, crate::script::exhausted_reply(100000, true));
    assert_eq!(write(&mut ks, 1, &["GET", "keep"]), Frame::bulk("old"));
    assert_eq!(write(&mut ks, 1, &["EXISTS", "l", "other"]), Frame::Integer(0));
    // Coroutines do not escape the budget either.
    let co = "local c = coroutine.create(function() while true do end end) coroutine.resume(c) return 1";
    assert_eq!(write(&mut ks, 1, &["EVAL", co, "0"]), crate::script::exhausted_reply(100000, true));
}

#[test]
fn math_random_follows_the_entry_seed() {
    let body = "return {math.random(1000000), math.random(1000000)}";
    let (mut a, mut b) = (Keyspace::default(), Keyspace::default());
    assert_eq!(write(&mut a, 5, &["EVAL", body, "0"]), write(&mut b, 5, &["EVAL", body, "0"]));
    assert_ne!(write(&mut a, 5, &["EVAL", body, "0"]), write(&mut b, 6, &["EVAL", body, "0"]));
}

#[test]
fn functions_load_call_and_roll_back_like_scripts() {
    let mut ks = Keyspace::default();
    let lib = "#!lua name=l\nredis.register_function('incr2', function(keys) redis.call('incr', keys[1]) \
               return redis.call('incr', keys[1]) end)\nredis.register_function('spin', function(keys) \
               redis.call('set', keys[1], 'x') while true do end end)";
    assert_eq!(write(&mut ks, 1, &["FUNCTION", "LOAD", lib]), Frame::bulk("l"));
    assert_eq!(write(&mut ks, 1, &["FCALL", "incr2", "1", "c"]), Frame::Integer(2));
    write(&mut ks, 1, &["raftis.luasteps", "5000"]);
    assert_eq!(write(&mut ks, 1, &["FCALL", "spin", "1", "c"]), crate::script::exhausted_reply(5000, true));
    assert_eq!(write(&mut ks, 1, &["GET", "c"]), Frame::bulk("2"), "the SET before the loop was undone");
    assert_eq!(
        read(&ks, &["FCALL_RO", "incr2", "1", "c"]),
        err("ERR Can not execute a script with write flag using *_ro command.")
    );
    assert_eq!(write(&mut ks, 1, &["FUNCTION", "DELETE", "l"]), Frame::ok());
    assert_eq!(write(&mut ks, 1, &["FCALL", "incr2", "1", "c"]), err("ERR Function not found"));
}

/// The run `running` lists first, waited for (another thread is starting it).
fn first_run(running: &crate::store::running::Running) -> std::sync::Arc<crate::store::running::Run> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Some(run) = running.oldest() {
            return run;
        }
        assert!(std::time::Instant::now() < deadline, "the script never started");
        std::thread::yield_now();
    }
}

#[test]
fn a_read_path_run_is_killable_even_under_pcall() {
    let mut ks = Keyspace::default();
    assert_eq!(write(&mut ks, 1, &["raftis.luasteps", "100000000000000"]), Frame::ok());
    let running = ks.running.clone();
    let body = "while true do pcall(function() while true do end end) end";
    std::thread::scope(|s| {
        let ks = &ks;
        let reader = s.spawn(move || read(ks, &["EVAL_RO", body, "0"]));
        let run = first_run(&running);
        assert!(run.killable);
        assert_eq!(super::kill(Some(&run), true), Frame::ok());
        assert_eq!(reader.join().expect("reader"), err("ERR Script killed by user with SCRIPT KILL..."));
    });
    assert!(running.oldest().is_none(), "the run unregistered");
}

#[test]
fn an_applied_run_is_unkillable_and_ends_at_its_budget() {
    let mut ks = Keyspace::default();
    assert_eq!(write(&mut ks, 1, &["raftis.luasteps", "20000000"]), Frame::ok());
    let running = ks.running.clone();
    std::thread::scope(|s| {
        let ks = &mut ks;
        // EVAL_RO inside a transaction runs in the apply too: not killable either.
        let writer = s.spawn(move || {
            let cmds = vec![argv(&["EVAL_RO", "while true do end", "0"])];
            let batch = WriteBatch { db: 0, now_ms: 1, seed: 1, cmds, transaction: Some(Vec::new()) };
            apply(ks, &batch)
        });
        let run = first_run(&running);
        assert!(!run.killable);
        assert!(matches!(super::kill(Some(&run), true), Frame::Error(e) if e.starts_with(b"UNKILLABLE")));
        let reply = writer.join().expect("writer");
        let Frame::Array(replies) = reply else { panic!("EXEC's array: {reply:?}") };
        assert!(matches!(&replies[0], Frame::Error(e) if e.starts_with(b"ERR Script aborted")), "{replies:?}");
    });
}
