//! What `redis.call` runs on: the keyspace of the write being applied ([`WriteHost`], with an
//! undo log) or of a read ([`ReadHost`], for EVAL_RO). Both refuse what a script may not run
//! with Redis's texts, in Redis's order: unknown command, arity, `noscript`, write in a
//! read-only script.

use super::undo::Undo;
use crate::cmd::{args, lookup, CommandSpec, Kind, ReadCtx, WriteCtx};
use crate::protocol::Frame;
use crate::script::Host;
use crate::store::{Keyspace, Rng};
use bytes::Bytes;
use rand::RngCore;

/// A command a script may run: its table row, or the error reply.
fn check(argv: &[Bytes]) -> Result<&'static CommandSpec, Frame> {
    let Some(spec) = lookup(&argv[0]).filter(|s| !s.has_flag("internal")) else {
        return Err(Frame::error("ERR Unknown Redis command called from script"));
    };
    if !spec.arity_ok(argv.len()) {
        return Err(Frame::error("ERR Wrong number of args calling Redis command from script"));
    }
    if spec.has_flag("noscript") {
        return Err(Frame::error("ERR This Redis command is not allowed from script"));
    }
    if let Some(denial) = crate::cmd::acl::script_denial(spec, argv) {
        return Err(denial);
    }
    if matches!(spec.name, "xread" | "xreadgroup") && blocks(argv) {
        // Redis refuses it while parsing the options, naming the command as the script wrote it.
        let name = String::from_utf8_lossy(&argv[0]);
        return Err(Frame::error(format!("ERR {name} command is not allowed with BLOCK option from scripts")));
    }
    Ok(spec)
}

/// Whether XREAD / XREADGROUP `argv` asks to block: a BLOCK option (with its argument) among
/// the options before STREAMS, read as Redis's `xreadCommand` reads them.
fn blocks(argv: &[Bytes]) -> bool {
    let mut i = 1;
    while i < argv.len() {
        let more = argv.len() - i - 1;
        let opt = argv[i].to_ascii_lowercase();
        match opt.as_slice() {
            b"block" if more > 0 => return true,
            b"count" if more > 0 => i += 2,
            b"group" if more > 1 => i += 3,
            b"noack" => i += 1,
            // STREAMS ends the options; anything else is the command's own syntax error.
            _ => return false,
        }
    }
    false
}

/// `redis.acl_check_cmd`: the script's user (none: unrestricted) may run `argv`.
fn acl_allows(argv: &[Bytes]) -> bool {
    lookup(&argv[0]).is_none_or(|spec| crate::cmd::acl::script_denial(spec, argv).is_none())
}

fn knows(name: &[u8]) -> bool {
    lookup(name).is_some_and(|s| !s.has_flag("internal"))
}

/// The connection commands a script can run: SELECT (for the rest of the script), PING, ECHO
/// and TIME (the entry's time, as every replica must see the same).
fn session(spec: &CommandSpec, argv: &[Bytes], ks: &Keyspace, db: &mut usize, now_ms: u64) -> Frame {
    match spec.name {
        "select" => match args::int(&argv[1]) {
            Ok(n) if n >= 0 && (n as usize) < ks.db_count() => {
                *db = n as usize;
                Frame::ok()
            }
            Ok(_) => Frame::error("ERR DB index is out of range"),
            Err(e) => e,
        },
        "ping" => match argv.len() {
            1 => Frame::simple("PONG"),
            2 => Frame::Bulk(argv[1].clone()),
            _ => args::wrong_arity("ping"),
        },
        "echo" => Frame::Bulk(argv[1].clone()),
        "time" => {
            Frame::Array(vec![Frame::bulk_int((now_ms / 1000) as i64), Frame::bulk_int((now_ms % 1000 * 1000) as i64)])
        }
        _ => Frame::error("ERR This Redis command is not allowed from script"),
    }
}

/// A script applied as a write: commands run on the keyspace at the entry's time, every
/// change saved first in the undo log.
pub struct WriteHost<'a> {
    pub ks: &'a mut Keyspace,
    pub db: usize,
    pub now_ms: u64,
    pub rng: &'a mut Rng,
    pub undo: Undo,
}

impl Host for WriteHost<'_> {
    fn call(&mut self, argv: Vec<Bytes>) -> Frame {
        let spec = match check(&argv) {
            Ok(spec) => spec,
            Err(e) => return e,
        };
        let reply = match spec.kind {
            Kind::Write(f) => {
                self.undo.before(self.ks, self.db, spec, &argv);
                f(&mut WriteCtx { ks: self.ks, db: self.db, now_ms: self.now_ms, rng: self.rng }, &argv)
            }
            Kind::Read(f) => {
                f(&mut ReadCtx { ks: self.ks, db: self.db, now_ms: self.now_ms, rng: self.rng, local: false }, &argv)
            }
            Kind::Session => session(spec, &argv, self.ks, &mut self.db, self.now_ms),
        };
        // Shown after it ran, in the database it left selected, as Redis feeds its monitors.
        self.ks.notify.record_script_call(self.db, &argv);
        reply
    }

    fn knows_command(&self, name: &[u8]) -> bool {
        knows(name)
    }

    fn acl_allows(&self, argv: &[Bytes]) -> bool {
        acl_allows(argv)
    }
}

/// A read-only script (EVAL_RO, EVALSHA_RO): reads only.
pub struct ReadHost<'a> {
    pub ks: &'a Keyspace,
    pub db: usize,
    pub now_ms: u64,
    pub rng: &'a mut dyn RngCore,
}

impl Host for ReadHost<'_> {
    fn call(&mut self, argv: Vec<Bytes>) -> Frame {
        let spec = match check(&argv) {
            Ok(spec) => spec,
            Err(e) => return e,
        };
        match spec.kind {
            Kind::Write(_) => Frame::error("ERR Write commands are not allowed from read-only scripts."),
            Kind::Read(f) => {
                f(&mut ReadCtx { ks: self.ks, db: self.db, now_ms: self.now_ms, rng: self.rng, local: false }, &argv)
            }
            Kind::Session => session(spec, &argv, self.ks, &mut self.db, self.now_ms),
        }
    }

    fn knows_command(&self, name: &[u8]) -> bool {
        knows(name)
    }

    fn acl_allows(&self, argv: &[Bytes]) -> bool {
        acl_allows(argv)
    }
}
