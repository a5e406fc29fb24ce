//! The ACL file (`aclfile`): `ACL SAVE` writes this node's users as `ACL LIST` lines; `ACL
//! LOAD` reads one, refusing it whole with Redis 7.0's error texts when a line is wrong, and
//! gives the users it holds (their rules in canonical form) for the log entry that replaces
//! the table on every replica.

use super::{merge_selector_args, Acl, AclError, User};
use bytes::Bytes;

/// The file's text for `acl`.
pub fn render(acl: &Acl) -> Vec<u8> {
    let mut out = Vec::new();
    for user in acl.users.values() {
        out.extend_from_slice(&user.describe());
        out.push(b'\n');
    }
    out
}

/// The users of the file at `path` whose text is `text`, each as its name and rules (the
/// default user added when the file has none), or the `ACL LOAD` error.
pub fn parse(path: &str, text: &[u8]) -> Result<Vec<(Bytes, Bytes)>, String> {
    let mut errors = String::new();
    let mut users: Vec<User> = Vec::new();
    for (i, line) in text.split(|&c| c == b'\n').enumerate() {
        let n = i + 1;
        let line = line.trim_ascii();
        if line.is_empty() {
            continue;
        }
        let Some(args) = crate::config::file::split_args(line) else {
            errors.push_str(&format!("{path}:{n}: unbalanced quotes in acl line. "));
            continue;
        };
        if args.len() < 2 || args[0] != b"user" {
            errors.push_str(&format!("{path}:{n} should start with user keyword followed by the username. "));
            continue;
        }
        let name = Bytes::from(args[1].clone());
        if users.iter().any(|u| u.name == name) {
            let shown = String::from_utf8_lossy(&name);
            errors.push_str(&format!("WARNING: Duplicate user '{shown}' found on line {n}. "));
            continue;
        }
        let rules: Vec<Bytes> = args[2..].iter().map(|a| Bytes::from(a.clone())).collect();
        let Ok(merged) = merge_selector_args(&rules) else {
            errors.push_str(&format!("{path}:{n}: Unmatched parenthesis in selector definition. "));
            continue;
        };
        let mut user = User::new(name);
        let mut syntax_error = false;
        for rule in &merged {
            match user.apply(rule) {
                Ok(()) => {}
                Err(AclError::UnknownCommand) => errors.push_str(&format!(
                    "{path}:{n}: Error in applying operation '{}': {}. ",
                    String::from_utf8_lossy(rule),
                    AclError::UnknownCommand.message()
                )),
                Err(e) if !syntax_error => {
                    errors.push_str(&format!("{path}:{n}: {}. ", e.message()));
                    syntax_error = true;
                }
                Err(_) => {}
            }
        }
        users.push(user);
    }
    if !errors.is_empty() {
        return Err(format!(
            "ERR {errors}WARNING: ACL errors detected, no change to the previously active ACL rules was performed"
        ));
    }
    if !users.iter().any(|u| u.name.as_ref() == b"default") {
        users.push(
            Acl::default().users.remove(&b"default"[..]).unwrap_or_else(|| User::new(Bytes::from_static(b"default"))),
        );
    }
    Ok(users.into_iter().map(|u| (u.name.clone(), Bytes::from(u.describe_rules()))).collect())
}

/// Reads the file for `ACL LOAD`, with Redis's error when it cannot be opened.
pub fn read(path: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("ERR Error loading ACLs, opening file '{path}': {}", os_error_text(&e)))
}

/// Writes the file for `ACL SAVE`: a temporary file renamed over it (never half written).
pub fn write(path: &str, acl: &Acl) -> std::io::Result<()> {
    let tmp = format!("{path}.tmp-raftis");
    std::fs::write(&tmp, render(acl))?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// C's `strerror` text of an I/O error, as Redis prints it.
fn os_error_text(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}
