//! ACL <subcommand>: the users (`crate::acl`) as Redis 7.0 shows and changes them. SETUSER,
//! DELUSER and LOAD change replicated state: the server proposes them through the log
//! (`crate::server::dispatch`); the rest is answered here from this node's copy.

use super::{help_reply, sub_arity, Session};
use crate::acl::universe::{category, universe, CATEGORIES};
use crate::acl::{Acl, Denied, User};
use crate::cmd::args::{self, is};
use crate::protocol::Frame;
use crate::server::now_ms;
use bytes::Bytes;

const HELP: &[&str] = &[
    "CAT [<category>]",
    "    List all commands that belong to <category>, or all command categories",
    "    when no category is specified.",
    "DELUSER <username> [<username> ...]",
    "    Delete a list of users.",
    "DRYRUN <username> <command> [<arg> ...]",
    "    Returns whether the user can execute the given command without executing the command.",
    "GETUSER <username>",
    "    Get the user's details.",
    "GENPASS [<bits>]",
    "    Generate a secure 256-bit user password. The optional `bits` argument can",
    "    be used to specify a different size.",
    "LIST",
    "    Show users details in config file format.",
    "LOAD",
    "    Reload users from the ACL file.",
    "LOG [<count> | RESET]",
    "    Show the ACL log entries.",
    "SAVE",
    "    Save the current config to the ACL file.",
    "SETUSER <username> <attribute> [<attribute> ...]",
    "    Create or modify a user with the specified attributes.",
    "USERS",
    "    List all the registered usernames.",
    "WHOAMI",
    "    Return the current connection username.",
    "HELP",
    "    Prints this help.",
];

pub const NO_ACL_FILE: &str = "ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.";

/// The arity of each subcommand (Redis's); `None` for an unknown one.
fn arity(sub: &str) -> Option<i32> {
    Some(match sub {
        "setuser" | "deluser" => -3,
        "getuser" => 3,
        "dryrun" => -4,
        "list" | "users" | "whoami" | "save" | "load" | "help" => 2,
        "cat" | "genpass" | "log" => -2,
        _ => return None,
    })
}

/// Checks the subcommand's name and arity; `Err` is the reply.
pub fn check_arity(argv: &[Bytes]) -> Result<String, Frame> {
    let sub = String::from_utf8_lossy(&argv[1]).to_ascii_lowercase();
    let Some(n) = arity(&sub) else { return Err(args::unknown_subcommand(&argv[1], "acl")) };
    if n == -2 && argv.len() > 3 {
        return Err(Frame::error(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try ACL HELP.",
            String::from_utf8_lossy(&argv[1])
        )));
    }
    sub_arity("acl", argv, n)?;
    Ok(sub)
}

/// ACL ... (arity checked by [`check_arity`]; SETUSER/DELUSER/LOAD come here only once
/// applied, see the module header).
pub fn acl(s: &mut Session, argv: &[Bytes]) -> Frame {
    let sub = match check_arity(argv) {
        Ok(sub) => sub,
        Err(e) => return e,
    };
    match sub.as_str() {
        "getuser" => s.shared.acl().user(&argv[2]).map_or(Frame::Null, getuser),
        "list" => Frame::Array(s.shared.acl().users.values().map(|u| Frame::bulk(u.describe())).collect()),
        "users" => Frame::Array(s.shared.acl().users.keys().map(|n| Frame::Bulk(n.clone())).collect()),
        "whoami" => Frame::Bulk(s.client.user.clone()),
        "cat" => cat(argv.get(2)),
        "genpass" => genpass(argv.get(2)),
        "dryrun" => dryrun(&s.shared.acl(), &argv[2..]),
        "log" => log(s, argv.get(2)),
        "save" => save(s),
        "load" => Frame::error(NO_ACL_FILE),
        "help" => help_reply("ACL", HELP),
        // SETUSER and DELUSER run through the log (`crate::server::dispatch`).
        _ => Frame::error("ERR ACL command not available here"),
    }
}

/// Closes the connections authenticated as `name` (the caller's after its reply).
pub fn disconnect_user(s: &mut Session, name: &[u8]) {
    let handles: Vec<_> = s.shared.clients().values().cloned().collect();
    for h in handles.into_iter().filter(|h| h.peek(|i| i.user == name)) {
        if h.peek(|i| i.id) == s.client.id {
            s.client.close_after_reply = true;
        } else {
            h.kill.notify_one();
        }
    }
}

/// ACL SAVE: this node's users to the `aclfile`.
fn save(s: &Session) -> Frame {
    let path = s.shared.config().aclfile.clone();
    if path.is_empty() {
        return Frame::error(NO_ACL_FILE);
    }
    match crate::acl::file::write(&path, &s.shared.acl()) {
        Ok(()) => Frame::ok(),
        Err(e) => {
            tracing::warn!(%path, error = %e, "ACL SAVE failed");
            Frame::error(
                "ERR There was an error trying to save the ACLs. Please check the server logs for more information",
            )
        }
    }
}

/// ACL GETUSER's map.
pub fn getuser(u: &User) -> Frame {
    let b = |s: &str| Frame::bulk(s.to_string());
    let selector = |sel: &crate::acl::selector::Selector| {
        vec![
            (b("commands"), b(&sel.describe_commands())),
            (b("keys"), Frame::bulk(sel.describe_keys())),
            (b("channels"), Frame::bulk(sel.describe_channels())),
        ]
    };
    let mut map = vec![
        (b("flags"), Frame::Set(u.flags().into_iter().map(b).collect())),
        (b("passwords"), Frame::Array(u.passwords.iter().map(|p| b(p)).collect())),
    ];
    map.extend(selector(&u.root));
    let selectors = u.selectors.iter().map(|s| Frame::Map(selector(s))).collect();
    map.push((b("selectors"), Frame::Array(selectors)));
    Frame::Map(map)
}

fn cat(name: Option<&Bytes>) -> Frame {
    let Some(name) = name else {
        return Frame::Array(CATEGORIES.iter().map(|c| Frame::bulk(*c)).collect());
    };
    let Some(c) = category(name) else {
        return Frame::error(format!("ERR Unknown category '{}'", String::from_utf8_lossy(name)));
    };
    let u = universe();
    let names = (0..u.len()).filter(|&id| u.categories[id] & (1 << c) != 0).map(|id| Frame::bulk(u.names[id].clone()));
    Frame::Array(names.collect())
}

fn genpass(bits: Option<&Bytes>) -> Frame {
    let bits = match bits.map(|b| args::int(b)) {
        None => 256,
        Some(Ok(n)) => n,
        Some(Err(e)) => return e,
    };
    if bits <= 0 || bits > 4096 {
        return Frame::error(
            "ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096",
        );
    }
    use rand::RngCore;
    // A password must not be guessable: the operating system's random source, as Redis's
    // `getRandomBytes` (the node's seeded generator derives from its id). Under madsim,
    // getrandom is the simulator's, so runs stay deterministic.
    let mut rng = rand::rngs::OsRng;
    let chars = (bits as usize).div_ceil(4);
    let mut bytes = vec![0u8; chars.div_ceil(2)];
    rng.fill_bytes(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Frame::bulk(hex[..chars].to_string())
}

/// The text of a denial, as ACL DRYRUN replies it (and NOPERM errors say it in lower case).
pub fn denial_text(denied: Denied, name: &str, argv: &[Bytes]) -> String {
    match denied {
        Denied::Command => format!("This user has no permissions to run the '{name}' command"),
        Denied::Key(i) => {
            format!("This user has no permissions to access the '{}' key", String::from_utf8_lossy(&argv[i]))
        }
        Denied::Channel(i) => {
            format!("This user has no permissions to access the '{}' channel", String::from_utf8_lossy(&argv[i]))
        }
    }
}

/// The NOPERM error of a denial.
pub fn noperm(denied: Denied, name: &str) -> String {
    match denied {
        Denied::Command => format!("NOPERM this user has no permissions to run the '{name}' command"),
        Denied::Key(_) => "NOPERM this user has no permissions to access one of the keys used as arguments".into(),
        Denied::Channel(_) => {
            "NOPERM this user has no permissions to access one of the channels used as arguments".into()
        }
    }
}

/// The channel arguments of a Pub/Sub command that ACL rules check (is each a pattern).
pub fn channels(name: &str, argc: usize) -> Vec<(usize, bool)> {
    match name {
        "publish" | "spublish" if argc > 1 => vec![(1, false)],
        "subscribe" | "ssubscribe" => (1..argc).map(|i| (i, false)).collect(),
        "psubscribe" => (1..argc).map(|i| (i, true)).collect(),
        _ => Vec::new(),
    }
}

/// Checks `argv` (a known command, arity checked) for `user`: `Err((denial, acl name))`.
pub fn check(user: &User, spec: &'static crate::cmd::CommandSpec, argv: &[Bytes]) -> Result<(), (Denied, String)> {
    if user.unrestricted {
        return Ok(());
    }
    let name = super::acl_name(spec, argv);
    let Some(id) = universe().id(&name) else { return Ok(()) };
    let keys = super::acl_keys(spec, argv);
    let channels = channels(spec.name, argv.len());
    Acl::check(user, id, argv, &keys, &channels).map_err(|d| (d, name))
}

fn dryrun(acl: &Acl, rest: &[Bytes]) -> Frame {
    let Some(user) = acl.user(&rest[0]) else {
        return Frame::error(format!("ERR User '{}' not found", String::from_utf8_lossy(&rest[0])));
    };
    let line = &rest[1..];
    let Some(spec) = crate::cmd::lookup(&line[0]).filter(|c| !c.has_flag("internal")) else {
        return Frame::error(format!("ERR Command '{}' not found", String::from_utf8_lossy(&line[0])));
    };
    if !spec.arity_ok(line.len()) {
        return args::wrong_arity(spec.name);
    }
    match check(user, spec, line) {
        Ok(()) => Frame::ok(),
        Err((d, name)) => Frame::bulk(denial_text(d, &name, line)),
    }
}

fn log(s: &Session, arg: Option<&Bytes>) -> Frame {
    let count = match arg {
        None => 10,
        Some(a) if is(a, "reset") => {
            s.shared.acl_log.reset();
            return Frame::ok();
        }
        Some(a) => match args::int(a) {
            Ok(n) => n.max(0) as usize,
            Err(e) => return e,
        },
    };
    s.shared.acl_log.reply(count, now_ms())
}

/// Logs a denial in the node's ACL LOG, with the client's CLIENT INFO line.
pub fn log_denial(
    shared: &crate::server::Shared,
    info: &crate::server::ClientInfo,
    reason: &'static str,
    context: &'static str,
    object: String,
    username: &[u8],
) {
    let client_info = super::client::client_line(info).trim_end().to_string();
    let username = String::from_utf8_lossy(username).into_owned();
    let entry = crate::acl::log::Entry { count: 1, reason, context, object, username, at_ms: now_ms(), client_info };
    shared.acl_log.add(entry);
}

/// The reason and object an ACL LOG entry gives a denial.
pub fn log_reason(denied: Denied, name: &str, argv: &[Bytes]) -> (&'static str, String) {
    match denied {
        Denied::Command => ("command", name.to_string()),
        Denied::Key(i) => ("key", String::from_utf8_lossy(&argv[i]).into_owned()),
        Denied::Channel(i) => ("channel", String::from_utf8_lossy(&argv[i]).into_owned()),
    }
}
