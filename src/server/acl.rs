//! ACL at dispatch: the check before a command runs (against the node's published users,
//! `crate::acl::AclView`), and the ACL changes that go through the log (SETUSER, DELUSER,
//! LOAD, CONFIG SET requirepass) to every group that holds keys (docs/ARCHITECTURE.md).

use super::client::{Client, ClientHandle};
use super::shared::Shared;
use crate::cmd::{self, args, CommandSpec};
use crate::protocol::Frame;
use bytes::Bytes;
use std::sync::Arc;

/// EVAL and friends: a script whose calls are checked against its user's limits.
pub(super) fn is_script(spec: &CommandSpec) -> bool {
    matches!(spec.name, "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall" | "fcall_ro")
}

/// Redis's ACL check (`ACLCheckAllPerm`): the NOPERM error of a command the client's user may
/// not run (as it is: in MULTI, queued ones are checked again at EXEC), logged in ACL LOG.
pub(super) fn refusal(
    client: &mut Client,
    handle: &ClientHandle,
    shared: &Shared,
    spec: &'static CommandSpec,
    argv: &[Bytes],
    in_multi: bool,
) -> Option<String> {
    let version = shared.acl.version();
    if client.acl_open_at == version {
        return None;
    }
    let (denied, name) = {
        let acl = shared.acl();
        match acl.user(&client.user) {
            Some(user) if user.unrestricted => {
                client.acl_open_at = version;
                return None;
            }
            Some(user) => cmd::server::acl_check(user, spec, argv).err()?,
            None => {
                // Deleted (through another node): closed, as Redis closes a deleted user's
                // connections, after this refusal.
                client.close_after_reply = true;
                (crate::acl::Denied::Command, cmd::server::acl_name(spec, argv))
            }
        }
    };
    let context = if in_multi { "multi" } else { "toplevel" };
    let (reason, object) = cmd::server::acl_log_reason(denied, &name, argv);
    cmd::server::acl_log_denial(shared, &handle.info(), reason, context, object, &client.user);
    Some(cmd::server::noperm(denied, &name))
}

/// ACL SETUSER / DELUSER and CONFIG SET requirepass: the users are replicated state, changed
/// through the log in every group that holds keys (as replicated settings are); this node's
/// copy has caught up when the reply goes out, so an AUTH that follows sees the change.
pub(super) async fn write(
    client: &mut Client,
    handle: &ClientHandle,
    shared: &Arc<Shared>,
    argv: &[Bytes],
    now: u64,
) -> Frame {
    let write = if args::is(&argv[0], "acl") && args::is(&argv[1], "load") {
        let path = shared.config().aclfile.clone();
        if path.is_empty() {
            return Frame::error(cmd::server::NO_ACL_FILE);
        }
        // The file is this node's; what it read goes to every replica through the log.
        match crate::acl::file::read(&path).and_then(|text| crate::acl::file::parse(&path, &text)) {
            Ok(users) => cmd::acl::load_write(users),
            Err(e) => return Frame::error(e),
        }
    } else {
        match cmd::acl::replicated_write(argv) {
            Some(write) => write,
            None => return Frame::Null,
        }
    };
    let reply = super::fanout::write_to_every_keyspace(shared, client.db, now, write).await;
    // The groups' leaders answered: this node uses the new table once its own replicas have
    // applied it (each publishes the table it applies).
    let own = shared.cluster.as_ref().map_or_else(|| vec![0], |c| c.served_groups());
    for group in own {
        shared.engine.group(group).catch_up().await;
    }
    if args::is(&argv[0], "config") {
        if !matches!(reply, Frame::Error(_)) {
            let mut next = shared.config().clone();
            next.requirepass = String::from_utf8_lossy(&argv[3]).into_owned();
            shared.set_config(next);
        }
        return reply;
    }
    // Connections of deleted users are closed, as Redis closes them.
    let gone: Vec<Bytes> = {
        let acl = shared.acl();
        let clients: Vec<Bytes> = shared.clients().values().map(|h| h.peek(|i| i.user.clone())).collect();
        clients.into_iter().filter(|u| acl.user(u).is_none()).collect()
    };
    let mut s = cmd::server::Session { client, handle, shared };
    gone.iter().for_each(|name| cmd::server::disconnect_user(&mut s, name));
    reply
}
