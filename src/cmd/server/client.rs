//! CLIENT: the connection's own settings (ID, SETNAME, GETNAME, REPLY, NO-EVICT, NO-TOUCH)
//! and the registry of every connection (LIST, INFO, KILL), in Redis's text formats.

use super::{help_reply, secs_since, sub_arity, Session};
use crate::cmd::args::{self, is};
use crate::protocol::{parse_i64, Frame, RespVersion};
use crate::server::ClientInfo;
use bytes::Bytes;

const HELP: &[&str] = &[
    "CACHING (YES|NO)",
    "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
    "GETREDIR",
    "    Return the client ID we are redirecting to when tracking is enabled.",
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "KILL <ip:port>",
    "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections. Options are:",
    "    * ADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made from the specified address",
    "    * LADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made to specified local address",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Kill connections by type.",
    "    * USER <username>",
    "      Kill connections authenticated by <username>.",
    "    * SKIPME (YES|NO)",
    "      Skip killing current connection (default: yes).",
    "LIST [options ...]",
    "    Return information about client connections. Options:",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Return clients of specified type.",
    "UNPAUSE",
    "    Stop the current client pause, resuming traffic.",
    "PAUSE <timeout> [WRITE|ALL]",
    "    Suspend all, or just write, clients for <timeout> milliseconds.",
    "REPLY (ON|OFF|SKIP)",
    "    Control the replies sent to the current connection.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "UNBLOCK <clientid> [TIMEOUT|ERROR]",
    "    Unblock the specified blocked client.",
    "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
    "         [OPTIN] [OPTOUT] [NOLOOP]",
    "    Control server assisted client side caching.",
    "TRACKINGINFO",
    "    Report tracking status for the current connection.",
    "NO-EVICT (ON|OFF)",
    "    Protect current client connection from eviction.",
    "NO-TOUCH (ON|OFF)",
    "    Will not touch LRU/LFU stats when this mode is on.",
    "HELP",
    "    Prints this help.",
];

/// CLIENT <subcommand> ...
pub fn client(s: &mut Session, argv: &[Bytes]) -> Frame {
    let sub = String::from_utf8_lossy(&argv[1]).to_ascii_lowercase();
    let arity = match sub.as_str() {
        "id" | "getname" | "info" | "help" | "unpause" | "getredir" | "trackinginfo" => 2,
        "setname" | "reply" | "no-evict" | "no-touch" | "caching" => 3,
        "list" => -2,
        "kill" | "pause" | "tracking" => -3,
        _ => return args::unknown_subcommand(&argv[1], "client"),
    };
    if let Err(e) = sub_arity("client", argv, arity) {
        return e;
    }
    match sub.as_str() {
        "id" => Frame::Integer(s.client.id as i64),
        "getname" if s.client.name.is_empty() => Frame::Null,
        "getname" => Frame::Bulk(s.client.name.clone()),
        "setname" => setname(s, &argv[2]),
        "info" => Frame::Verbatim(*b"txt", Bytes::from(client_line(&s.handle.info()))),
        "list" => list(s, argv),
        "kill" => kill(s, argv),
        "reply" => reply(s, &argv[2]),
        "no-evict" => flag(s, &argv[2], |c, on| c.no_evict = on, |i, on| i.no_evict = on),
        "no-touch" => flag(s, &argv[2], |c, on| c.no_touch = on, |i, on| i.no_touch = on),
        "unpause" => {
            s.shared.pause.unpause();
            Frame::ok()
        }
        "pause" => pause(s, argv),
        "tracking" => super::tracking::tracking(s, argv),
        "caching" => super::tracking::caching(s, &argv[2]),
        "getredir" => super::tracking::getredir(s),
        "trackinginfo" => super::tracking::trackinginfo(s),
        _ => help_reply("CLIENT", HELP),
    }
}

/// CLIENT PAUSE timeout [WRITE|ALL], with Redis's checks in its order (the mode first).
fn pause(s: &mut Session, argv: &[Bytes]) -> Frame {
    if argv.len() > 4 {
        return super::slowlog::syntax_error_of("CLIENT", &argv[1]);
    }
    let all = match argv.get(3) {
        None => true,
        Some(m) if is(m, "all") => true,
        Some(m) if is(m, "write") => false,
        Some(_) => return Frame::error("ERR CLIENT PAUSE mode must be WRITE or ALL"),
    };
    let ms = match parse_i64(&argv[2]) {
        None => return Frame::error("ERR timeout is not an integer or out of range"),
        Some(ms) if ms < 0 => return Frame::error("ERR timeout is negative"),
        Some(ms) => ms as u64,
    };
    // Far deadlines are capped (a year): a pause that long is ended by UNPAUSE anyway.
    let end = tokio::time::Instant::now() + std::time::Duration::from_millis(ms.min(365 * 86_400_000));
    s.shared.pause.pause(all, end);
    Frame::ok()
}

/// Redis refuses names with spaces, newlines or other characters outside '!'..='~'.
pub fn validate_name(name: &[u8]) -> Result<(), Frame> {
    if name.iter().all(|&c| (b'!'..=b'~').contains(&c)) {
        Ok(())
    } else {
        Err(Frame::error("ERR Client names cannot contain spaces, newlines or special characters."))
    }
}

fn setname(s: &mut Session, name: &Bytes) -> Frame {
    if let Err(e) = validate_name(name) {
        return e;
    }
    s.client.name = name.clone();
    s.handle.update(|i| i.name = name.clone());
    Frame::ok()
}

fn reply(s: &mut Session, mode: &[u8]) -> Frame {
    if is(mode, "on") {
        s.client.reply_off = false;
        s.client.skip_replies = 0;
    } else if is(mode, "off") {
        s.client.reply_off = true;
    } else if is(mode, "skip") {
        // This command's own reply and the next command's.
        s.client.skip_replies = 2;
    } else {
        return Frame::error(args::SYNTAX);
    }
    Frame::ok()
}

fn flag(
    s: &mut Session,
    arg: &[u8],
    on_client: fn(&mut crate::server::Client, bool),
    on_info: fn(&mut ClientInfo, bool),
) -> Frame {
    let on = if is(arg, "on") {
        true
    } else if is(arg, "off") {
        false
    } else {
        return Frame::error(args::SYNTAX);
    };
    on_client(s.client, on);
    s.handle.update(|i| on_info(i, on));
    Frame::ok()
}

/// One CLIENT LIST / CLIENT INFO line, fields as Redis 7.0 prints them (newline included).
pub fn client_line(i: &ClientInfo) -> String {
    let mut flags = String::new();
    let (sub, psub, ssub) = i.subs;
    if i.monitor {
        flags.push('O');
    }
    if sub + psub + ssub > 0 {
        flags.push('P');
    }
    if i.multi >= 0 {
        flags.push('x');
    }
    if i.blocked {
        flags.push('b');
    }
    if let Some(m) = &i.tracking {
        flags.push('t');
        if i.tracking_broken {
            flags.push('R');
        }
        if m.bcast {
            flags.push('B');
        }
    }
    if i.readonly {
        flags.push('r');
    }
    if i.no_evict {
        flags.push('e');
    }
    if i.no_touch {
        flags.push('T');
    }
    if flags.is_empty() {
        flags.push('N');
    }
    let resp = if i.resp == RespVersion::Resp3 { 3 } else { 2 };
    format!(
        "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={flags} db={} sub={sub} psub={psub} ssub={ssub} multi={} \
         qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=16384 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r \
         cmd={} user={} redir={} resp={resp}\n",
        i.id,
        i.addr,
        i.laddr,
        i.id + 7,
        String::from_utf8_lossy(&i.name),
        secs_since(i.created_ms),
        secs_since(i.last_interaction_ms),
        i.db,
        i.multi,
        i.last_cmd,
        String::from_utf8_lossy(&i.user),
        i.tracking.as_ref().map_or(-1, |m| m.redirect as i64),
    )
}

fn list(s: &mut Session, argv: &[Bytes]) -> Frame {
    // Redis 7.0 takes one filter: `TYPE t` alone, or `ID id...`.
    let ids: Option<Vec<i64>> = match argv.get(2) {
        None => None,
        Some(opt) if is(opt, "type") && argv.len() == 4 => {
            let t = String::from_utf8_lossy(&argv[3]).to_ascii_lowercase();
            match t.as_str() {
                "normal" => None,
                // No replica, master or pub/sub connections exist in raftis.
                "master" | "replica" | "slave" | "pubsub" => Some(Vec::new()),
                _ => return Frame::error(format!("ERR Unknown client type '{}'", String::from_utf8_lossy(&argv[3]))),
            }
        }
        Some(opt) if is(opt, "id") && argv.len() >= 4 => {
            let mut v = Vec::new();
            for a in &argv[3..] {
                match parse_i64(a) {
                    Some(n) => v.push(n),
                    None => return Frame::error("ERR Invalid client ID"),
                }
            }
            Some(v)
        }
        Some(_) => return Frame::error(args::SYNTAX),
    };
    let handles: Vec<_> = s.shared.clients().values().cloned().collect();
    let mut out = String::new();
    for h in handles {
        let info = h.info();
        if ids.as_ref().is_none_or(|v| v.contains(&(info.id as i64))) {
            out.push_str(&client_line(&info));
        }
    }
    Frame::Verbatim(*b"txt", Bytes::from(out))
}

/// Which connections CLIENT KILL's new form selects.
#[derive(Default)]
struct KillFilter {
    id: Option<u64>,
    addr: Option<Vec<u8>>,
    laddr: Option<Vec<u8>>,
    /// TYPE other than normal: matches nobody here.
    none: bool,
    user: Option<Bytes>,
    skipme: bool,
}

fn parse_kill_filter(argv: &[Bytes]) -> Result<KillFilter, Frame> {
    let mut f = KillFilter { skipme: true, ..Default::default() };
    let mut i = 2;
    while i < argv.len() {
        let Some(val) = argv.get(i + 1) else {
            return Err(Frame::error(args::SYNTAX));
        };
        let opt = &argv[i];
        if is(opt, "id") {
            match parse_i64(val) {
                Some(n) if n > 0 => f.id = Some(n as u64),
                _ => return Err(Frame::error("ERR client-id should be greater than 0")),
            }
        } else if is(opt, "addr") {
            f.addr = Some(val.to_vec());
        } else if is(opt, "laddr") {
            f.laddr = Some(val.to_vec());
        } else if is(opt, "type") {
            let t = String::from_utf8_lossy(val).to_ascii_lowercase();
            match t.as_str() {
                "normal" => {}
                "master" | "replica" | "slave" | "pubsub" => f.none = true,
                _ => return Err(Frame::error(format!("ERR Unknown client type '{}'", String::from_utf8_lossy(val)))),
            }
        } else if is(opt, "user") {
            f.user = Some(val.clone());
        } else if is(opt, "skipme") {
            if is(val, "yes") {
                f.skipme = true;
            } else if is(val, "no") {
                f.skipme = false;
            } else {
                return Err(Frame::error(args::SYNTAX));
            }
        } else {
            return Err(Frame::error(args::SYNTAX));
        }
        i += 2;
    }
    Ok(f)
}

impl KillFilter {
    fn matches(&self, info: &ClientInfo, me: u64) -> bool {
        !(self.none || (self.skipme && info.id == me))
            && self.id.is_none_or(|id| id == info.id)
            && self.addr.as_ref().is_none_or(|a| a == info.addr.to_string().as_bytes())
            && self.laddr.as_ref().is_none_or(|a| a == info.laddr.to_string().as_bytes())
            && self.user.as_ref().is_none_or(|u| *u == info.user)
    }
}

/// CLIENT KILL addr (old form: OK or "No such client") or CLIENT KILL <filter> ... (new
/// form: the number killed). Killing the caller closes it after this reply.
fn kill(s: &mut Session, argv: &[Bytes]) -> Frame {
    let old_form = argv.len() == 3;
    let filter = if old_form {
        KillFilter { addr: Some(argv[2].to_vec()), ..Default::default() }
    } else {
        match parse_kill_filter(argv) {
            Ok(f) => f,
            Err(e) => return e,
        }
    };
    if let Some(user) = filter.user.as_ref().filter(|u| s.shared.acl().user(u).is_none()) {
        return Frame::error(format!("ERR No such user '{}'", String::from_utf8_lossy(user)));
    }
    let me = s.client.id;
    let handles: Vec<_> = s.shared.clients().values().cloned().collect();
    let mut killed = 0;
    for h in handles {
        if !filter.matches(&h.info(), me) {
            continue;
        }
        killed += 1;
        if h.info().id == me {
            s.client.close_after_reply = true;
        } else {
            h.kill.notify_one();
        }
    }
    match (old_form, killed) {
        (true, 0) => Frame::error("ERR No such client"),
        (true, _) => Frame::ok(),
        (false, n) => Frame::Integer(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_spaces_are_refused() {
        assert!(validate_name(b"ok-name").is_ok());
        assert!(validate_name(b"").is_ok());
        assert!(validate_name(b"a b").is_err());
        assert!(validate_name(b"a\nb").is_err());
    }
}
