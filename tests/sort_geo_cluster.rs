//! SORT and the geo STORE forms on a cluster-enabled node: SORT's BY patterns and GET are
//! refused as Redis Cluster refuses them (they name keys of any slot), and the keys a STORE
//! names must share the source's slot.

mod common;

use common::Server;
use raftis::protocol::Frame;

fn err(s: &str) -> Frame {
    Frame::Error(s.to_string().into())
}

#[test]
fn cluster_mode_refuses_sort_patterns_and_cross_slot_stores() {
    let raftis = Server::raftis(&["--node-id", "1", "--cluster-enabled", "--is-bootstrap", "--num-groups", "1"]);
    let mut c = raftis.conn();
    common::wait_until("the data group to take writes", 30, || c.cmd(&["SET", "probe", "1"]) == Frame::ok());
    assert_eq!(c.cmd(&["RPUSH", "{l}", "3", "1", "2"]), Frame::Integer(3));
    let sorted = Frame::Array(vec![Frame::Bulk("1".into()), Frame::Bulk("2".into()), Frame::Bulk("3".into())]);
    assert_eq!(c.cmd(&["SORT", "{l}"]), sorted);
    let reversed = Frame::Array(vec![Frame::Bulk("2".into()), Frame::Bulk("1".into()), Frame::Bulk("3".into())]);
    assert_eq!(c.cmd(&["SORT_RO", "{l}", "BY", "nosort", "DESC"]), reversed);
    let by = "ERR BY option of SORT denied in Cluster mode.";
    let get = "ERR GET option of SORT denied in Cluster mode.";
    assert_eq!(c.cmd(&["SORT", "{l}", "BY", "w_*"]), err(by));
    assert_eq!(c.cmd(&["SORT_RO", "{l}", "GET", "#"]), err(get));
    assert_eq!(c.cmd(&["SORT", "{l}", "ASC", "GET", "x_*", "BY", "w_*"]), err(get));
    // A syntax error met first is reported instead, as Redis parses in order.
    assert_eq!(c.cmd(&["SORT", "{l}", "BOGUS", "GET", "#"]), err("ERR syntax error"));
    // Inside MULTI the refusal fails the transaction.
    assert_eq!(c.cmd(&["MULTI"]), Frame::ok());
    assert_eq!(c.cmd(&["SORT", "{l}", "BY", "w_*"]), err(by));
    assert!(matches!(c.cmd(&["EXEC"]), Frame::Error(e) if e.starts_with(b"EXECABORT")));
    let crossslot = "CROSSSLOT Keys in request don't hash to the same slot";
    assert_eq!(c.cmd(&["SORT", "{l}", "STORE", "elsewhere"]), err(crossslot));
    assert_eq!(c.cmd(&["SORT", "{l}", "STORE", "{l}dst"]), Frame::Integer(3));
    assert_eq!(c.cmd(&["GEOADD", "{g}", "13.361389", "38.115556", "Palermo"]), Frame::Integer(1));
    assert_eq!(c.cmd(&["GEORADIUS", "{g}", "15", "37", "200", "km", "STORE", "other"]), err(crossslot));
    assert_eq!(
        c.cmd(&["GEOSEARCHSTORE", "other", "{g}", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km"]),
        err(crossslot)
    );
    assert_eq!(c.cmd(&["GEORADIUS", "{g}", "15", "37", "200", "km", "STOREDIST", "{g}d"]), Frame::Integer(1));
    assert_eq!(c.cmd(&["ZCARD", "{g}d"]), Frame::Integer(1));
}
