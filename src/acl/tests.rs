use super::*;

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn rules(s: &str) -> Vec<Bytes> {
    s.split(' ').map(b).collect()
}

fn set(acl: &mut Acl, name: &str, r: &str) -> Result<(), String> {
    acl.set_user(&b(name), &rules(r))
}

#[test]
fn passwords_are_sha256_hex_as_in_redis() {
    assert_eq!(hash_password(b"a"), "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb");
}

#[test]
fn a_bad_rule_leaves_the_user_as_it_was() {
    let mut acl = Acl::default();
    set(&mut acl, "u", "on >p ~k*").unwrap();
    let before = acl.clone();
    let e = set(&mut acl, "u", "off ~x +nosuch").unwrap_err();
    assert_eq!(e, "ERR Error in ACL SETUSER modifier '+nosuch': Unknown command or category name in ACL");
    assert_eq!(acl, before);
    assert!(set(&mut acl, "new", "on bogus").is_err());
    assert!(acl.user(b"new").is_none(), "a failed SETUSER creates nobody");
}

#[test]
fn every_description_rebuilds_the_same_table() {
    let mut acl = Acl::default();
    set(
        &mut acl,
        "a",
        "on >x #ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb %R~r* ~k &c +@read -get +select|0",
    )
    .unwrap();
    set(&mut acl, "b", "+@all -@hash +hget allkeys (+set ~w*) (%W~x &y +client|list)").unwrap();
    set(&mut acl, "c", "nopass skip-sanitize-payload allchannels +@all -client|kill").unwrap();
    set(&mut acl, "d", "reset").unwrap();
    let image: Vec<(Bytes, Bytes)> =
        acl.users.iter().map(|(n, u)| (n.clone(), Bytes::from(u.describe_rules()))).collect();
    assert_eq!(Acl::from_rules(&image).unwrap(), acl);
}

#[test]
fn selectors_merge_and_unmatched_parentheses_are_refused() {
    let merged = merge_selector_args(&rules("on (~a +get) (~b +set")).unwrap_err();
    assert_eq!(merged, "ERR Unmatched parenthesis in acl selector starting at '(~b'.");
    assert_eq!(merge_selector_args(&rules("(~a +get)")).unwrap(), vec![b"(~a +get)".to_vec()]);
}

#[test]
fn checks_follow_commands_key_permissions_and_selectors() {
    let mut acl = Acl::default();
    set(&mut acl, "u", "on %R~r* %W~w* +get +set (~s* +del)").unwrap();
    let u = acl.user(b"u").unwrap().clone();
    let id = |n: &str| universe::universe().id(n).unwrap();
    let argv = |s: &str| rules(s);
    let read = vec!["RO".to_string(), "access".to_string()];
    let write = vec!["OW".to_string(), "update".to_string()];
    assert_eq!(Acl::check(&u, id("get"), &argv("get r1"), &[(1, read.clone())], &[]), Ok(()));
    assert_eq!(Acl::check(&u, id("get"), &argv("get w1"), &[(1, read)], &[]), Err(Denied::Key(1)));
    assert_eq!(Acl::check(&u, id("set"), &argv("set w1 v"), &[(1, write.clone())], &[]), Ok(()));
    assert_eq!(Acl::check(&u, id("set"), &argv("set r1 v"), &[(1, write.clone())], &[]), Err(Denied::Key(1)));
    // The second selector allows DEL on s*; the root's refusal is reported otherwise.
    assert_eq!(Acl::check(&u, id("del"), &argv("del s1"), &[(1, write.clone())], &[]), Ok(()));
    assert_eq!(Acl::check(&u, id("del"), &argv("del x"), &[(1, write)], &[]), Err(Denied::Key(1)));
    assert_eq!(Acl::check(&u, id("publish"), &argv("publish c m"), &[], &[(1, false)]), Err(Denied::Command));
    assert!(acl.user(b"default").unwrap().unrestricted && !u.unrestricted);
}

#[test]
fn the_view_applies_requirepass_until_the_default_user_is_set_through_the_log() {
    let view = AclView::new("pw");
    assert!(view.read().auth_required());
    assert!(view.read().user(b"default").unwrap().password_ok(b"pw"));
    let mut table = Acl::default();
    set(&mut table, "default", "resetpass >other").unwrap();
    view.publish(&table, true);
    assert!(!view.read().user(b"default").unwrap().password_ok(b"pw"));
    view.set_requirepass("again");
    assert!(view.read().user(b"default").unwrap().password_ok(b"other"), "the replicated password wins");
}
