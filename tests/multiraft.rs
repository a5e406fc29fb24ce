//! Multi-raft sharding with real processes: three `raftis` nodes with `--num-groups 4` formed
//! through `CLUSTER METARAFT` (node 1 bootstraps MetaRaft and founds the four data groups;
//! nodes 2 and 3 join and the placement controller adds them to every group). Then: CLUSTER
//! SLOTS / SHARDS / INFO describe four shards; leadership spreads so that every node leads one
//! or two groups and `redis-cli --cluster check` passes with three masters; a slot-aware
//! client (following `-MOVED`) writes keys of every group and reads them back through every
//! node; keys in different slots get `-CROSSSLOT`, in commands and in MULTI/EXEC; the HTTP
//! API shows the groups and the slot table; a node killed with SIGKILL and restarted gets its
//! share of leaders back, and no acknowledged write is lost; DBSIZE, FLUSHALL and SCAN act on
//! the groups a node leads; SCRIPT LOAD and FUNCTION LOAD (and their FLUSH / DELETE) reach
//! every group, so EVALSHA and FCALL run on keys of every group. In one process: a data group
//! refuses, at apply, a write for a slot it does not own (the fence below the routing), and
//! after the read barrier a read of a slot its log does not give it or a migration froze.
//! Replicas follow node membership (`common::sharded`, four nodes): a promoted fourth node
//! gets an even share of the replicas, and `CLUSTER METARAFT REMOVE` under writes moves a
//! node's replicas away before it leaves, losing no acknowledged write.

mod common;

use common::http::http;
use common::sharded::Sharded;
use common::{free_port_block, tempdir::TempDir, Conn, Server};
use raftis::config::Config;
use raftis::disk::RealDisk;
use raftis::node::start_with_disk;
use raftis::protocol::Frame;
use raftis::store::WriteBatch;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn text(f: &Frame) -> String {
    match f {
        Frame::Bulk(b) | Frame::Simple(b) | Frame::Error(b) | Frame::Verbatim(_, b) => {
            String::from_utf8_lossy(b).into_owned()
        }
        other => format!("{other:?}"),
    }
}

/// A three-node cluster with four data groups.
struct Cluster {
    servers: Vec<Option<Server>>,
    ports: Vec<u16>,
    raft_ports: Vec<u16>,
    dirs: Vec<TempDir>,
}

impl Cluster {
    fn start() -> Cluster {
        let (base, raft_base) = free_port_block(3);
        let dirs: Vec<TempDir> = (1..=3).map(|i| TempDir::new(&format!("multiraft{i}"))).collect();
        let ports = (0..3).map(|i| base + i).collect();
        let raft_ports = (0..3).map(|i| raft_base + i).collect();
        let mut cluster = Cluster { servers: vec![None, None, None], ports, raft_ports, dirs };
        for i in 0..3 {
            cluster.start_node(i);
        }
        let mut c1 = cluster.conn(0);
        for i in 2..=3u16 {
            let addr = format!("127.0.0.1:{}", raft_base + i - 1);
            wait_until("node 1 to add a learner", 20, || {
                c1.cmd(&["CLUSTER", "METARAFT", "ADDLEARNER", &i.to_string(), &addr]) == Frame::ok()
            });
        }
        assert_eq!(c1.cmd(&["CLUSTER", "METARAFT", "PROMOTE", "1", "2", "3"]), Frame::ok());
        cluster
    }

    /// Starts node `i` (0-based) on its ports and data (node 1 bootstraps on an empty log).
    fn start_node(&mut self, i: usize) {
        let id = (i + 1).to_string();
        let raft_addr = format!("127.0.0.1:{}", self.raft_ports[i]);
        let bootstrap = if i == 0 { "--is-bootstrap=true" } else { "--is-bootstrap=false" };
        let flags = ["--node-id", &id, "--raft-addr", &raft_addr, "--cluster-enabled", bootstrap, "--num-groups", "4"];
        self.servers[i] = Some(Server::raftis_at(&self.dirs[i].0, self.ports[i], &flags));
    }

    /// The number of data groups each node leads, as node `i`'s CLUSTER NODES shows (the
    /// masters' slot ranges: one per group).
    fn led_groups(&self, i: usize) -> Vec<usize> {
        let nodes = text(&self.conn(i).cmd(&["CLUSTER", "NODES"]));
        let mut led = vec![0; 3];
        for line in nodes.lines() {
            let fields: Vec<&str> = line.split(' ').collect();
            let port = fields.get(1).and_then(|a| a.split('@').next()).and_then(|a| a.rsplit_once(':'));
            let Some(n) = port.and_then(|(_, p)| self.ports.iter().position(|q| q.to_string() == p)) else { continue };
            led[n] = fields.len().saturating_sub(8);
        }
        led
    }

    /// Waits until every running node sees every node leading one or two of the four groups.
    fn wait_balanced(&self, secs: u64) {
        wait_until("every node to lead one or two groups", secs, || {
            (0..3).all(|i| {
                let led = self.led_groups(i);
                led.iter().sum::<usize>() == 4 && led.iter().all(|n| (1..=2).contains(n))
            })
        });
    }

    fn conn(&self, i: usize) -> Conn {
        Conn::try_connect(self.ports[i]).expect("connect")
    }

    /// Sends `args` to node `start`, following `-MOVED` redirects as a cluster client does;
    /// returns the reply, the redirects followed and the port that answered. A node that
    /// cannot be reached, or `-CLUSTERDOWN` (a group electing a leader), starts over from
    /// `start` after a pause, for up to 20 s.
    fn routed(&self, start: usize, args: &[&str]) -> (Frame, usize, u16) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut port = self.ports[start];
        let mut hops = 0;
        loop {
            let reply = match Conn::try_connect(port) {
                Ok(mut c) => c.cmd(args),
                Err(_) if Instant::now() < deadline => {
                    (port, hops) = (self.ports[start], 0);
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
                Err(e) => panic!("node on port {port}: {e}"),
            };
            let msg = text(&reply);
            match reply {
                Frame::Error(_) if msg.starts_with("MOVED ") && hops < 5 => {
                    let addr = msg.split(' ').nth(2).expect("MOVED slot host:port");
                    port = addr.rsplit_once(':').and_then(|(_, p)| p.parse().ok()).expect("port");
                    hops += 1;
                }
                Frame::Error(_) if msg.starts_with("CLUSTERDOWN") && Instant::now() < deadline => {
                    (port, hops) = (self.ports[start], 0);
                    std::thread::sleep(Duration::from_millis(100));
                }
                other => return (other, hops, port),
            }
        }
    }
}

/// The shards of CLUSTER SHARDS as (slot ranges, node count with a master).
fn shards(c: &mut Conn) -> Vec<(Vec<i64>, usize, bool)> {
    let Frame::Array(shards) = c.cmd(&["CLUSTER", "SHARDS"]) else { panic!("CLUSTER SHARDS is an array") };
    shards
        .iter()
        .map(|s| {
            // RESP2: a map is an array of name, value, name, value...
            let Frame::Array(fields) = s else { panic!("a shard is a map: {s:?}") };
            let get = |k: &str| fields.chunks(2).find(|kv| text(&kv[0]) == k).map(|kv| kv[1].clone());
            let Some(Frame::Array(slots)) = get("slots") else { panic!("slots") };
            let Some(Frame::Array(nodes)) = get("nodes") else { panic!("nodes") };
            let slots = slots.iter().map(|s| if let Frame::Integer(n) = s { *n } else { -1 }).collect();
            let has_master = nodes.iter().any(|n| format!("{n:?}").contains("master"));
            (slots, nodes.len(), has_master)
        })
        .collect()
}

#[test]
fn three_nodes_serve_four_groups_through_moved_redirects() {
    let mut cluster = Cluster::start();
    // Every node sees four shards of three voters, each with a master, and leadership spreads:
    // every node leads one or two groups.
    for i in 0..3 {
        let mut c = cluster.conn(i);
        wait_until("four shards of three nodes with a leader", 60, || {
            let s = shards(&mut c);
            s.len() == 4 && s.iter().all(|(_, nodes, master)| *nodes == 3 && *master)
        });
    }
    cluster.wait_balanced(30);
    for i in 0..3 {
        let mut c = cluster.conn(i);
        // A leadership transfer leaves a group without a leader for a moment.
        let mut info = String::new();
        wait_until("cluster_state:ok", 10, || {
            info = text(&c.cmd(&["CLUSTER", "INFO"]));
            info.contains("cluster_state:ok\r\n")
        });
        assert!(info.contains("cluster_size:4\r\n") && info.contains("cluster_known_nodes:3\r\n"), "{info}");
    }
    let ranges: Vec<Vec<i64>> = shards(&mut cluster.conn(1)).into_iter().map(|(s, _, _)| s).collect();
    assert_eq!(ranges, vec![vec![0, 4095], vec![4096, 8191], vec![8192, 12287], vec![12288, 16383]]);
    // One range per data group (a group whose leadership is being handed over is left out for
    // that moment, so wait for all four).
    let mut c2 = cluster.conn(2);
    let mut slots = Vec::new();
    wait_until("CLUSTER SLOTS with one range per data group", 10, || {
        let Frame::Array(s) = c2.cmd(&["CLUSTER", "SLOTS"]) else { panic!("CLUSTER SLOTS") };
        slots = s;
        slots.len() == 4
    });
    // A node is a master or a replica, never both (redis-py keeps one role per address and
    // would send FLUSHALL/DBSIZE/SCAN to too few masters otherwise).
    let entries: Vec<&Vec<Frame>> =
        slots.iter().map(|s| if let Frame::Array(e) = s { e } else { panic!("{s:?}") }).collect();
    let masters: Vec<&Frame> = entries.iter().map(|e| &e[2]).collect();
    for e in &entries {
        assert!(e[3..].iter().all(|r| !masters.contains(&r)), "a master listed as a replica: {slots:?}");
    }

    // redis-cli agrees: three masters, every slot covered.
    let check = std::process::Command::new("redis-cli")
        .args(["--cluster", "check", &format!("127.0.0.1:{}", cluster.ports[1])])
        .output()
        .expect("redis-cli is installed");
    let out = String::from_utf8_lossy(&check.stdout).into_owned();
    assert!(check.status.success(), "redis-cli --cluster check failed:\n{out}");
    assert_eq!(out.lines().filter(|l| l.contains("M: ")).count(), 3, "three masters:\n{out}");
    assert!(out.contains("All 16384 slots covered"), "{out}");

    // Writes through a slot-aware client land, from whichever node it starts at.
    let mut groups_hit = BTreeSet::new();
    let mut redirected = 0;
    for n in 0..120 {
        let key = format!("key:{n}");
        let (reply, hops, _) = cluster.routed(n % 3, &["SET", &key, &format!("v{n}")]);
        assert_eq!(reply, Frame::ok(), "SET {key}");
        redirected += hops;
        let Frame::Integer(slot) = cluster.conn(0).cmd(&["CLUSTER", "KEYSLOT", &key]) else { panic!("KEYSLOT") };
        groups_hit.insert(slot / 4096);
    }
    assert_eq!(groups_hit.len(), 4, "the keys cover every group");
    assert!(redirected > 0, "some writes started at a node that does not lead their group");
    for n in 0..120 {
        let key = format!("key:{n}");
        for start in 0..3 {
            let (reply, _, _) = cluster.routed(start, &["GET", &key]);
            assert_eq!(reply, Frame::Bulk(format!("v{n}").into()), "GET {key} from node {}", start + 1);
        }
    }

    // DBSIZE and INFO keyspace answer for the groups a node leads: summed over the masters,
    // the true total (retried while a leadership moves between the calls).
    wait_until("DBSIZE and INFO keyspace to agree on 120 keys", 20, || {
        let mut total = 0;
        for i in 0..3 {
            let Frame::Integer(n) = cluster.conn(i).cmd(&["DBSIZE"]) else { return false };
            let info = text(&cluster.conn(i).cmd(&["INFO", "keyspace"]));
            let keys = info.split("db0:keys=").nth(1).and_then(|t| t.split(',').next()).unwrap_or("0");
            if keys != n.to_string() {
                return false;
            }
            total += n;
        }
        total == 120
    });

    // A node that does not lead a key's group redirects to the one that does.
    let (reply, _, leader_port) = cluster.routed(0, &["INCR", "{tag}counter"]);
    assert_eq!(reply, Frame::Integer(1));
    for (i, port) in cluster.ports.iter().enumerate() {
        let reply = cluster.conn(i).cmd(&["GET", "{tag}counter"]);
        // MEMORY USAGE and OBJECT name their key after a subcommand: routed by it too.
        let usage = cluster.conn(i).cmd(&["MEMORY", "USAGE", "{tag}counter"]);
        let encoding = cluster.conn(i).cmd(&["OBJECT", "ENCODING", "{tag}counter"]);
        if *port == leader_port {
            assert_eq!(reply, Frame::Bulk("1".into()));
            assert!(matches!(usage, Frame::Integer(n) if n > 0), "{usage:?}");
            assert_eq!(encoding, Frame::Bulk("int".into()));
        } else {
            assert!(text(&reply).starts_with("MOVED "), "{reply:?}");
            assert!(text(&usage).starts_with("MOVED ") && text(&encoding).starts_with("MOVED "), "{usage:?}");
        }
    }

    // Keys in different slots: CROSSSLOT, for one command and for a transaction.
    let crossslot = Frame::Error("CROSSSLOT Keys in request don't hash to the same slot".into());
    assert_eq!(cluster.conn(0).cmd(&["MSET", "a", "1", "b", "2"]), crossslot);
    let (same_slot, _, _) = cluster.routed(0, &["MSET", "{u}a", "1", "{u}b", "2"]);
    assert_eq!(same_slot, Frame::ok());
    let mut c = cluster.conn(0);
    assert_eq!(c.cmd(&["MULTI"]), Frame::ok());
    let first = c.cmd(&["SET", "{u}a", "x"]);
    let second = c.cmd(&["SET", "{v}b", "y"]);
    let exec = text(&c.cmd(&["EXEC"]));
    assert!(exec.starts_with("EXECABORT"), "{first:?} {second:?} {exec}");
    assert!(second == crossslot || text(&second).starts_with("MOVED"), "{second:?}");

    // The HTTP admin API: the groups, the slot table, and one group's Raft figures.
    let raft = cluster.raft_ports[2];
    let (status, groups) = http(raft, "GET", "/cluster/groups", "");
    assert_eq!(status, 200, "{groups}");
    assert_eq!(groups.matches("\"group\":").count(), 4, "{groups}");
    assert!(groups.contains("\"voters\":[1,2,3]"), "{groups}");
    let (status, slots) = http(raft, "GET", "/cluster/slots", "");
    assert_eq!(status, 200, "{slots}");
    assert!(slots.contains("{\"end\":16383,\"group\":4,\"leader\":"), "{slots}");
    assert!(slots.contains("\"start\":12288}"), "{slots}");
    let (status, leader) = http(raft, "GET", "/raft/leader?group=3", "");
    assert!(status == 200 && leader.contains("\"leader_id\":"), "{leader}");
    let (status, metrics) = http(raft, "GET", "/raft/metrics?group=4", "");
    assert!(status == 200 && metrics.contains("\"members\""), "{metrics}");
    assert_eq!(http(raft, "GET", "/raft/metrics?group=9", "").0, 404);
    let (status, prom) = http(raft, "GET", "/metrics", "");
    assert_eq!(status, 200, "{prom}");
    for g in 0..=4 {
        assert!(prom.contains(&format!("raftis_raft_group_applied_index{{group=\"{g}\"}}")), "group {g}:\n{prom}");
    }
    let led: usize =
        (0..=4).filter(|g| prom.contains(&format!("raftis_raft_group_is_leader{{group=\"{g}\"}} 1"))).count();
    assert!(led >= 1, "node 3 leads some group:\n{prom}");
    assert_eq!(http(raft, "GET", "/raft/leader?group=x", "").0, 400);

    scripts_and_functions_reach_every_group(&cluster);
    scan_walks_the_groups_each_node_leads(&cluster);

    // Node 2 killed with SIGKILL: its groups elect other leaders, it restarts on its data and
    // gets its share back; every acknowledged write is still there.
    cluster.servers[1].take().expect("node 2 runs").kill9();
    let (reply, _, _) = cluster.routed(0, &["SET", "after:kill", "1"]);
    assert_eq!(reply, Frame::ok(), "writes go on while node 2 is down");
    cluster.start_node(1);
    cluster.wait_balanced(40);
    for n in (0..120).step_by(7) {
        let key = format!("key:{n}");
        let (reply, _, _) = cluster.routed(1, &["GET", &key]);
        assert_eq!(reply, Frame::Bulk(format!("v{n}").into()), "GET {key} after the restart");
    }

    // Keyless commands answer for the groups a node leads: DBSIZE summed over the nodes counts
    // every key once (120 keys, the counter, {u}a and {u}b, after:kill); FLUSHALL on every
    // node empties every group.
    let dbsize_sum = |c: &Cluster| -> i64 {
        (0..3).map(|i| if let Frame::Integer(n) = c.conn(i).cmd(&["DBSIZE"]) { n } else { -1000 }).sum()
    };
    wait_until("DBSIZE over the nodes to count every key", 20, || dbsize_sum(&cluster) == 124);
    for i in 0..3 {
        assert_eq!(cluster.conn(i).cmd(&["FLUSHALL"]), Frame::ok());
    }
    wait_until("every group to be empty", 20, || dbsize_sum(&cluster) == 0);
    drop(cluster.servers);
}

/// One key of each data group (slots 0-4095 are group 1's, ...), among `key:0..120`.
fn key_per_group(cluster: &Cluster) -> Vec<String> {
    let mut keys: Vec<Option<String>> = vec![None; 4];
    for n in 0..120 {
        let key = format!("key:{n}");
        let Frame::Integer(slot) = cluster.conn(0).cmd(&["CLUSTER", "KEYSLOT", &key]) else { panic!("KEYSLOT") };
        keys[slot as usize / 4096].get_or_insert(key);
    }
    keys.into_iter().map(|k| k.expect("a key in every group")).collect()
}

/// SCRIPT LOAD and FUNCTION LOAD sent to one node reach every data group: EVALSHA and FCALL
/// run on keys of every group, whichever node the client starts at; SCRIPT FLUSH, FUNCTION
/// FLUSH and FUNCTION DELETE reach them all too.
fn scripts_and_functions_reach_every_group(cluster: &Cluster) {
    // These are idempotent: a client retries them on -TRYAGAIN (a forwarded write whose
    // outcome is unknown, seen on a loaded machine).
    let retried = |i: usize, args: &[&str]| {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let reply = cluster.conn(i).cmd(args);
            if !text(&reply).starts_with("TRYAGAIN") || Instant::now() > deadline {
                return reply;
            }
        }
    };
    let sha = text(&retried(0, &["SCRIPT", "LOAD", "return redis.call('GET', KEYS[1])"]));
    assert_eq!(sha.len(), 40, "{sha}");
    let lib =
        "#!lua name=mylib\nredis.register_function('getit', function(keys) return redis.call('GET', keys[1]) end)";
    assert_eq!(retried(1, &["FUNCTION", "LOAD", "REPLACE", lib]), Frame::Bulk("mylib".into()));
    for (i, key) in key_per_group(cluster).iter().enumerate() {
        let want = Frame::Bulk(format!("v{}", &key[4..]).into());
        let (reply, _, _) = cluster.routed(i % 3, &["EVALSHA", &sha, "1", key]);
        assert_eq!(reply, want, "EVALSHA on {key} (group {})", i + 1);
        let (reply, _, _) = cluster.routed((i + 1) % 3, &["FCALL", "getit", "1", key]);
        assert_eq!(reply, want, "FCALL on {key} (group {})", i + 1);
    }
    assert_eq!(retried(2, &["SCRIPT", "FLUSH"]), Frame::ok());
    assert_eq!(retried(2, &["FUNCTION", "FLUSH"]), Frame::ok());
    assert_eq!(text(&retried(2, &["FUNCTION", "DELETE", "mylib"])), "ERR Library not found");
    for key in key_per_group(cluster) {
        let (reply, _, _) = cluster.routed(0, &["EVALSHA", &sha, "1", &key]);
        assert!(text(&reply).starts_with("NOSCRIPT"), "EVALSHA on {key} after SCRIPT FLUSH: {reply:?}");
        let (reply, _, _) = cluster.routed(0, &["FCALL", "getit", "1", &key]);
        assert!(text(&reply).contains("Function not found"), "FCALL on {key} after FUNCTION FLUSH: {reply:?}");
    }
}

/// SCAN with a small COUNT on every node: together the nodes return every key (each node
/// walks the groups it leads, its cursor naming the group); a cursor naming no group is
/// refused.
fn scan_walks_the_groups_each_node_leads(cluster: &Cluster) {
    let mut want: BTreeSet<String> = (0..120).map(|n| format!("key:{n}")).collect();
    want.extend(["{tag}counter", "{u}a", "{u}b"].map(String::from));
    let mut seen = BTreeSet::new();
    for i in 0..3 {
        let mut c = cluster.conn(i);
        let mut cursor = "0".to_string();
        for calls in 0.. {
            assert!(calls < 1000, "SCAN on node {} never ends", i + 1);
            let Frame::Array(parts) = c.cmd(&["SCAN", &cursor, "COUNT", "7"]) else { panic!("SCAN reply") };
            let Frame::Array(keys) = &parts[1] else { panic!("SCAN keys") };
            seen.extend(keys.iter().map(text));
            cursor = text(&parts[0]);
            if cursor == "0" {
                break;
            }
        }
    }
    assert_eq!(seen, want, "SCAN over every node returns every key");
    let no_group = ((99u64 << 48) | 5).to_string();
    assert_eq!(text(&cluster.conn(0).cmd(&["SCAN", &no_group])), "ERR invalid cursor");
    assert_eq!(text(&cluster.conn(0).cmd(&["SCAN", "0", "COUNT", "0"])), "ERR syntax error");
}

/// A node started with another `num-groups` than the cluster's is refused when it is added
/// (it could not serve the groups it lacks), with the setting to use; one with the same
/// number joins. Also CLUSTER MYSHARDID, CLUSTER LINKS and the per-group INFO lines.
#[test]
fn a_node_with_another_num_groups_is_refused_at_addlearner() {
    let (base, raft_base) = free_port_block(4);
    let dirs: Vec<TempDir> = (1..=4).map(|i| TempDir::new(&format!("numgroups{i}"))).collect();
    let node = |i: u16, groups: &str, bootstrap: bool| {
        let (id, raft) = ((i + 1).to_string(), format!("127.0.0.1:{}", raft_base + i));
        let bootstrap = if bootstrap { "--is-bootstrap=true" } else { "--is-bootstrap=false" };
        let flags = ["--node-id", &id, "--raft-addr", &raft, "--cluster-enabled", bootstrap, "--num-groups", groups];
        Server::raftis_at(&dirs[usize::from(i)].0, base + i, &flags)
    };
    let _servers = [node(0, "3", true), node(1, "2", false), node(2, "5", false), node(3, "3", false)];
    let mut c1 = Conn::try_connect(base).expect("connect");
    wait_until("node 1 to lead MetaRaft", 20, || c1.cmd(&["CLUSTER", "METARAFT", "MEMBERS"]) != Frame::Array(vec![]));
    let add = |c: &mut Conn, i: u16| {
        c.cmd(&["CLUSTER", "METARAFT", "ADDLEARNER", &(i + 1).to_string(), &format!("127.0.0.1:{}", raft_base + i)])
    };
    let fewer = text(&add(&mut c1, 1));
    assert!(fewer.contains("started with fewer data groups than this cluster's 3"), "{fewer}");
    assert!(fewer.contains("--num-groups 3"), "{fewer}");
    let more = text(&add(&mut c1, 2));
    assert!(more.contains("started with more data groups than this cluster's 3"), "{more}");
    let Frame::Array(members) = c1.cmd(&["CLUSTER", "METARAFT", "MEMBERS"]) else { panic!("MEMBERS") };
    assert_eq!(members.len(), 1, "the refused nodes were not added: {members:?}");
    assert_eq!(add(&mut c1, 3), Frame::ok(), "a node with the same num-groups joins");
    assert_eq!(c1.cmd(&["CLUSTER", "METARAFT", "PROMOTE", "1", "4"]), Frame::ok());

    // MYSHARDID: the shard of a group node 1 leads; LINKS: one link each way to node 4.
    let shard = text(&c1.cmd(&["CLUSTER", "MYSHARDID"]));
    assert!(shard.len() == 40 && shard.bytes().all(|b| b.is_ascii_hexdigit()), "{shard}");
    // The controller puts node 4 into the cluster map a tick after the promotion.
    let mut links = Vec::new();
    wait_until("CLUSTER LINKS to show node 4", 20, || {
        let Frame::Array(l) = c1.cmd(&["CLUSTER", "LINKS"]) else { panic!("LINKS") };
        links = l;
        links.len() == 2
    });
    assert!(format!("{links:?}").contains(&format!("{:040x}", 4)), "{links:?}");
    // INFO cluster: one line per group of the node (MetaRaft and the three data groups).
    let info = text(&c1.cmd(&["INFO", "cluster"]));
    for g in 0..=3 {
        assert!(info.contains(&format!("raft_group_{g}:state=")), "{info}");
    }
    assert!(!info.contains("raft_group_4:"), "{info}");
}

/// A one-node cluster with four data groups, in this process (its data directory named after
/// `tag`), once every group has applied its slot ownership.
fn one_sharded_node(tag: &str) -> (tokio::runtime::Runtime, TempDir, raftis::node::NodeHandle) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let dir = TempDir::new(tag);
    let config = Config { port: 0, cluster_enabled: true, num_groups: 4, data_dir: dir.0.clone(), ..Config::default() };
    let disk = Arc::new(RealDisk::new(&dir.0).expect("disk"));
    let node = rt.block_on(start_with_disk(config, disk, true)).expect("start");
    let cluster = node.shared.cluster.clone().expect("a multi-raft node");
    wait_until("every group to own its slots", 30, || {
        (1..=4).all(|g| cluster.group(g).is_some_and(|r| r.control().owned.is_some()))
    });
    (rt, dir, node)
}

#[test]
fn a_data_group_refuses_writes_for_slots_it_does_not_own() {
    let (rt, _dir, node) = one_sharded_node("fence");
    // "foo" hashes to slot 12182: group 3's (8192-12287). Group 1 refuses it below the log.
    let batch = |key: &str| WriteBatch {
        db: 0,
        now_ms: 1,
        seed: 1,
        cmds: vec![vec!["SET".into(), key.to_string().into(), "v".into()]],
        transaction: None,
    };
    let refused = rt.block_on(node.shared.engine.write_to(1, batch("foo")));
    assert!(text(&refused).starts_with("CLUSTERDOWN Hash slot 12182 is not served by this Raft group"), "{refused:?}");
    assert_eq!(rt.block_on(node.shared.engine.write_to(3, batch("foo"))), Frame::ok());
    let in_group_1 = node.shared.engine.with_keyspace_of(1, |ks| ks.db(0).len());
    assert_eq!(in_group_1, 0, "the refused write changed nothing");
    rt.block_on(node.shutdown());
}

/// Reads are fenced by the group's own ownership as writes are (chaos seed 2037: a node whose
/// map was older than a migration's hand-over read a moved key in its old group, where it had
/// been purged, and answered nil after an acknowledged SET at the new owner). A read of a slot
/// the group's log does not give it, or that a migration has frozen, gets `-TRYAGAIN` after
/// the read barrier, whatever the node's map says.
#[test]
fn a_data_group_refuses_reads_of_slots_it_does_not_own() {
    use raftis::cmd::Kind;
    use raftis::raft::node::ReadPoint;
    use raftis::raft::Control;
    let (rt, _dir, node) = one_sharded_node("readfence");
    let cluster = node.shared.cluster.clone().expect("a multi-raft node");
    let engine = &node.shared.engine;
    let set = |g: u64, key: &str| {
        rt.block_on(engine.write_many_to(g, 0, 1, vec![vec!["SET".into(), key.to_string().into(), "v".into()]])).next()
    };
    let get = |g: u64, key: &str| {
        let Kind::Read(f) = raftis::cmd::lookup(b"GET").expect("GET").kind else { panic!("GET reads") };
        let argv = vec!["GET".into(), bytes::Bytes::from(key.to_string())];
        rt.block_on(engine.read_on(g, 0, 1, f, &argv, false, &mut ReadPoint::default()))
    };
    // "foo" hashes to slot 12182, group 3's; "a0" to one of group 1's (0-4095).
    let a0 = raftis::cmd::cluster::slot::key_slot(b"a0");
    assert!(a0 < 4096);
    assert_eq!(set(3, "foo"), Some(Frame::ok()));
    assert_eq!(set(1, "a0"), Some(Frame::ok()));
    assert_eq!(get(3, "foo"), Frame::Bulk("v".into()));
    let refused = get(1, "foo");
    assert!(text(&refused).starts_with("TRYAGAIN Hash slot 12182 is not served by this Raft group"), "{refused:?}");
    // Group 3's log takes slot 12182 away (as a migration's hand-over does) while this node's
    // map still gives it the slot: the key is still in its copy, but the read is refused.
    let group3 = cluster.group(3).expect("group 3");
    let owned = group3.control().owned.expect("owned");
    let ranges = vec![(8192, 12181), (12183, 12287)];
    let own = Control::Own { epoch: owned.epoch + 1, ranges };
    assert_eq!(rt.block_on(group3.propose_control(own)), Ok(Frame::ok()));
    assert_eq!(engine.with_keyspace_of(3, |ks| ks.db(0).len()), 1, "the key is still there");
    let refused = get(3, "foo");
    assert!(text(&refused).starts_with("TRYAGAIN Hash slot 12182 is not served by this Raft group"), "{refused:?}");
    // A slot a migration has frozen in its source is not read there either (once handed over,
    // the target may take writes before the source's log gives the slot away).
    let freeze = Control::Freeze { id: 1, ranges: vec![(a0, a0)] };
    assert_eq!(rt.block_on(cluster.group(1).expect("group 1").propose_control(freeze)), Ok(Frame::ok()));
    let refused = get(1, "a0");
    assert!(text(&refused).starts_with(&format!("TRYAGAIN Hash slot {a0} is migrating")), "{refused:?}");
    rt.block_on(node.shutdown());
}

/// How many shards node `i`'s CLUSTER SHARDS puts node `id` in, for ids 1..=4.
fn replicas_per_node(cluster: &Sharded, i: usize) -> Vec<usize> {
    let Frame::Array(shards) = cluster.conn(i).cmd(&["CLUSTER", "SHARDS"]) else { return Vec::new() };
    let shown: Vec<String> = shards.iter().map(|s| format!("{s:?}")).collect();
    (1..=4u64).map(|id| shown.iter().filter(|s| s.contains(&format!("{id:040x}"))).count()).collect()
}

/// Replicas follow node membership: a fourth node promoted into MetaRaft gets an even share
/// of the data-group replicas (12 over 4 nodes: 3 each) with every earlier key still
/// readable; `CLUSTER METARAFT REMOVE` of a node under writes from a cluster client moves its
/// replicas away first, then removes it: no acknowledged write is lost, the node is in no
/// group, and the cluster serves every key with the node stopped. An unknown id is refused.
#[test]
fn replicas_follow_node_membership() {
    let mut cluster = Sharded::start("replmove");
    let keys: Vec<String> = (0..200).map(|i| format!("before:{i}")).collect();
    for k in &keys {
        assert_eq!(cluster.routed(0, &["SET", k, k]).0, Frame::ok(), "SET {k}");
    }
    cluster.start_node(3);
    let mut c1 = cluster.conn(0);
    assert_eq!(c1.cmd(&["CLUSTER", "METARAFT", "ADDLEARNER", "4", &cluster.raft_addr(3)]), Frame::ok());
    assert_eq!(c1.cmd(&["CLUSTER", "METARAFT", "PROMOTE", "1", "2", "3", "4"]), Frame::ok());
    for i in 0..4 {
        wait_until("every node to hold three of the twelve replicas", 120, || {
            let state = text(&cluster.conn(i).cmd(&["CLUSTER", "INFO"]));
            replicas_per_node(&cluster, i) == vec![3, 3, 3, 3] && state.contains("cluster_state:ok\r\n")
        });
    }
    for k in &keys {
        assert_eq!(cluster.routed(3, &["GET", k]).0, Frame::bulk(k.clone()), "GET {k} through node 4");
    }
    let unknown = text(&c1.cmd(&["CLUSTER", "METARAFT", "REMOVE", "99"]));
    assert_eq!(unknown, "ERR node 99 is not a member");

    // Remove node 2 while a cluster client writes (through node 3, following -MOVED).
    let cluster = Arc::new(cluster);
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (cluster, stop, count) = (cluster.clone(), stop.clone(), count.clone());
        std::thread::spawn(move || {
            let mut acked = Vec::new();
            for i in 0.. {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let (key, value) = (format!("during:{i}"), i.to_string());
                if cluster.routed(2, &["SET", &key, &value]).0 == Frame::ok() {
                    acked.push(i);
                    count.fetch_add(1, Ordering::Relaxed);
                }
            }
            acked
        })
    };
    let mut c = cluster.conn(0);
    c.set_read_timeout(Duration::from_secs(150));
    assert_eq!(c.cmd(&["CLUSTER", "METARAFT", "REMOVE", "2"]), Frame::ok());
    let members = format!("{:?}", c.cmd(&["CLUSTER", "METARAFT", "MEMBERS"]));
    assert!(!members.contains("\"2\""), "node 2 is still a MetaRaft member: {members}");
    let after = count.load(Ordering::Relaxed);
    wait_until("writes acknowledged after the removal", 30, || count.load(Ordering::Relaxed) >= after + 20);
    stop.store(true, Ordering::Relaxed);
    let acked = writer.join().expect("writer");
    assert!(acked.len() > 10, "the writer got few writes through: {}", acked.len());
    for i in [0, 2, 3] {
        wait_until("node 2 to be in no group and every group to have three voters", 60, || {
            let per_node = replicas_per_node(&cluster, i);
            per_node.get(1) == Some(&0) && per_node.iter().sum::<usize>() == 12
        });
    }
    // Node 2 stopped: every key, before and during the removal, is still served.
    let mut cluster = Arc::into_inner(cluster).expect("the writer is done");
    cluster.servers[1] = None;
    for i in acked {
        let key = format!("during:{i}");
        assert_eq!(cluster.routed(2, &["GET", &key]).0, Frame::bulk(i.to_string()), "acknowledged {key} lost");
    }
    for k in &keys {
        assert_eq!(cluster.routed(0, &["GET", k]).0, Frame::bulk(k.clone()), "GET {k}");
    }
}

/// Each data group's highest term and each node's count of led data groups, from INFO
/// cluster of nodes 1-3 (`raft_group_<g>:state=..,leader=..,term=..`).
fn terms_and_leads(cluster: &Sharded) -> (BTreeMap<u64, u64>, Vec<usize>) {
    let mut terms = BTreeMap::new();
    let mut leads = vec![0; 3];
    for (i, lead) in leads.iter_mut().enumerate() {
        let info = text(&cluster.conn(i).cmd(&["INFO", "cluster"]));
        for line in info.lines() {
            let Some((name, fields)) = line.strip_prefix("raft_group_").and_then(|l| l.split_once(':')) else {
                continue;
            };
            let Ok(g) = name.parse::<u64>() else { continue };
            let field = |k: &str| fields.split(',').find_map(|f| f.strip_prefix(k)).unwrap_or("").to_string();
            if g == 0 {
                continue;
            }
            let term: u64 = field("term=").parse().unwrap_or(0);
            let t = terms.entry(g).or_insert(0);
            *t = (*t).max(term);
            *lead += usize::from(field("state=") == "leader");
        }
    }
    (terms, leads)
}

/// Leader balance settles and stays settled: on a steady three-node cluster under writes from
/// four cluster clients for 15 s, once every node leads one or two of the four groups, no
/// group's term rises by more than one (an election that a busy machine may cause; balance
/// flapping moved leadership back and forth every few seconds, a term each time).
#[test]
fn leadership_stays_put_under_writes_once_balanced() {
    let cluster = Arc::new(Sharded::start("steady"));
    wait_until("every node to lead one or two groups", 60, || {
        let (_, leads) = terms_and_leads(&cluster);
        leads.iter().sum::<usize>() == 4 && leads.iter().all(|n| (1..=2).contains(n))
    });
    let (before, _) = terms_and_leads(&cluster);
    let end = Instant::now() + Duration::from_secs(15);
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let cluster = cluster.clone();
            std::thread::spawn(move || {
                let mut ok = 0;
                for i in 0.. {
                    if Instant::now() >= end {
                        break;
                    }
                    let key = format!("steady:{w}:{i}");
                    ok += usize::from(cluster.routed(w % 3, &["SET", &key, "v"]).0 == Frame::ok());
                }
                ok
            })
        })
        .collect();
    let acked: usize = writers.into_iter().map(|w| w.join().expect("writer")).sum();
    assert!(acked > 20, "the writers got few writes through: {acked}");
    let (after, leads) = terms_and_leads(&cluster);
    for (g, term) in &after {
        let rise = term - before.get(g).copied().unwrap_or(0);
        assert!(rise <= 1, "group {g}'s term rose by {rise} under steady writes ({before:?} -> {after:?})");
    }
    assert!(leads.iter().all(|n| (1..=2).contains(n)), "leaders unbalanced at the end: {leads:?}");
}
