//! CLIENT TRACKING, CACHING, GETREDIR and TRACKINGINFO: the options and replies of Redis 7.0
//! (`networking.c`), errors in its order. The table itself is `crate::server::tracking`.

use super::Session;
use crate::cmd::args::{self, is};
use crate::protocol::Frame;
use crate::server::tracking::Mode;
use bytes::Bytes;
use std::sync::Arc;

/// CLIENT TRACKING ON|OFF [REDIRECT id] [PREFIX p ...] [BCAST] [OPTIN] [OPTOUT] [NOLOOP].
pub fn tracking(s: &mut Session, argv: &[Bytes]) -> Frame {
    let (mode, prefixes) = match parse(s, &argv[3..]) {
        Ok(parsed) => parsed,
        Err(e) => return e,
    };
    if is(&argv[2], "off") {
        s.shared.tracking.disable(s.client.id);
        s.client.tracking = None;
        s.client.caching = false;
        s.handle.update(|i| {
            i.tracking = None;
            i.tracking_broken = false;
        });
        return Frame::ok();
    }
    if !is(&argv[2], "on") {
        return Frame::error(args::SYNTAX);
    }
    if let Err(e) = check_on(s, &mode, &prefixes) {
        return e;
    }
    let Some(handle) = s.shared.clients().get(&s.client.id).cloned() else { return Frame::ok() };
    let redirect_to =
        (mode.redirect != 0).then(|| s.shared.clients().get(&mode.redirect).map(Arc::downgrade)).flatten();
    let subs = s.client.pubsub.get_or_insert_with(Default::default);
    handle.mailbox.get_or_init(|| subs.mailbox.clone());
    s.shared.tracking.enable(&handle, &subs.mailbox, mode.clone(), redirect_to, &prefixes);
    s.client.tracking = Some(mode.clone());
    s.handle.update(|i| {
        i.tracking = Some(mode);
        i.tracking_broken = false;
    });
    Frame::ok()
}

/// The options after ON|OFF, checked as Redis parses them (before looking at ON|OFF).
fn parse(s: &Session, opts: &[Bytes]) -> Result<(Mode, Vec<Bytes>), Frame> {
    let mut mode = Mode::default();
    let mut prefixes = Vec::new();
    let mut j = 0;
    while j < opts.len() {
        let more = j + 1 < opts.len();
        let opt = &opts[j];
        if is(opt, "redirect") && more {
            j += 1;
            if mode.redirect != 0 {
                return Err(Frame::error("ERR A client can only redirect to a single other client"));
            }
            let id = args::int(&opts[j])?;
            if id <= 0 || !s.shared.clients().contains_key(&(id as u64)) {
                return Err(Frame::error("ERR The client ID you want redirect to does not exist"));
            }
            mode.redirect = id as u64;
        } else if is(opt, "bcast") {
            mode.bcast = true;
        } else if is(opt, "optin") {
            mode.optin = true;
        } else if is(opt, "optout") {
            mode.optout = true;
        } else if is(opt, "noloop") {
            mode.noloop = true;
        } else if is(opt, "prefix") && more {
            j += 1;
            prefixes.push(opts[j].clone());
        } else {
            return Err(Frame::error(args::SYNTAX));
        }
        j += 1;
    }
    Ok((mode, prefixes))
}

/// Redis's checks before enabling: options compatible with each other and with the mode
/// the client is already in, and BCAST prefixes that do not overlap.
fn check_on(s: &Session, mode: &Mode, prefixes: &[Bytes]) -> Result<(), Frame> {
    let err = |m: &str| Err(Frame::error(format!("ERR {m}")));
    if !mode.bcast && !prefixes.is_empty() {
        return err("PREFIX option requires BCAST mode to be enabled");
    }
    if let Some(cur) = &s.client.tracking {
        if cur.bcast != mode.bcast {
            return err("You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.");
        }
    }
    if mode.bcast && (mode.optin || mode.optout) {
        return err("OPTIN and OPTOUT are not compatible with BCAST");
    }
    if mode.optin && mode.optout {
        return err("You can't specify both OPTIN mode and OPTOUT mode");
    }
    if let Some(cur) = &s.client.tracking {
        if (mode.optin && cur.optout) || (mode.optout && cur.optin) {
            return err("You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.");
        }
    }
    if mode.bcast {
        check_overlaps(&s.shared.tracking.prefixes(s.client.id), prefixes)?;
    }
    Ok(())
}

/// Redis's `checkPrefixCollisionsOrReply`: two prefixes overlap when one starts the other.
fn check_overlaps(existing: &[Bytes], new: &[Bytes]) -> Result<(), Frame> {
    let overlap =
        |a: &[u8], b: &[u8]| a.len().min(b.len()) == 0 || a[..a.len().min(b.len())] == b[..a.len().min(b.len())];
    let show = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    for (i, p) in new.iter().enumerate() {
        if let Some(old) = existing.iter().find(|old| overlap(old, p)) {
            return Err(Frame::error(format!(
                "ERR Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single client must not overlap.",
                show(p),
                show(old)
            )));
        }
        if let Some(other) = new[i + 1..].iter().find(|q| overlap(p, q)) {
            return Err(Frame::error(format!(
                "ERR Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single client must not overlap.",
                show(p),
                show(other)
            )));
        }
    }
    Ok(())
}

/// CLIENT CACHING YES|NO: the next command's keys are (YES, OPTIN) or are not (NO, OPTOUT)
/// tracked.
pub fn caching(s: &mut Session, arg: &[u8]) -> Frame {
    let Some(mode) = &s.client.tracking else {
        return Frame::error(
            "ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled",
        );
    };
    if is(arg, "yes") {
        if !mode.optin {
            return Frame::error("ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.");
        }
    } else if is(arg, "no") {
        if !mode.optout {
            return Frame::error("ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.");
        }
    } else {
        return Frame::error(args::SYNTAX);
    }
    s.client.caching = true;
    Frame::ok()
}

/// CLIENT GETREDIR: the redirection (0 for none), -1 when tracking is off.
pub fn getredir(s: &Session) -> Frame {
    Frame::Integer(s.client.tracking.as_ref().map_or(-1, |m| m.redirect as i64))
}

/// CLIENT TRACKINGINFO: flags (a set), redirect, prefixes.
pub fn trackinginfo(s: &Session) -> Frame {
    let bulk = |f: &'static str| Frame::Bulk(Bytes::from_static(f.as_bytes()));
    let mode = s.client.tracking.as_ref();
    let mut flags = vec![bulk(if mode.is_some() { "on" } else { "off" })];
    if let Some(m) = mode {
        let caching = s.client.caching;
        for (on, name) in [
            (m.bcast, "bcast"),
            (m.optin, "optin"),
            (m.optin && caching, "caching-yes"),
            (m.optout, "optout"),
            (m.optout && caching, "caching-no"),
            (m.noloop, "noloop"),
            (s.handle.peek(|i| i.tracking_broken), "broken_redirect"),
        ] {
            if on {
                flags.push(bulk(name));
            }
        }
    }
    let redirect = Frame::Integer(mode.map_or(-1, |m| m.redirect as i64));
    let prefixes = s.shared.tracking.prefixes(s.client.id).into_iter().map(Frame::Bulk).collect();
    Frame::Map(vec![
        (bulk("flags"), Frame::Set(flags)),
        (bulk("redirect"), redirect),
        (bulk("prefixes"), Frame::Array(prefixes)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_overlap_when_one_starts_the_other() {
        let b = |s: &str| Bytes::from(s.to_owned());
        assert!(check_overlaps(&[b("ab")], &[b("abc")]).is_err());
        assert!(check_overlaps(&[], &[b("a"), b("b")]).is_ok());
        assert!(check_overlaps(&[], &[b(""), b("b")]).is_err(), "the empty prefix overlaps everything");
        let Err(Frame::Error(e)) = check_overlaps(&[], &[b("x"), b("xy")]) else { panic!("no overlap found") };
        assert_eq!(
            &e[..],
            b"ERR Prefix 'x' overlaps with another provided prefix 'xy'. Prefixes for a single client must not overlap."
        );
    }
}
