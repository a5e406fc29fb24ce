//! Simulation scenarios.

use crate::client::SimClient;
use raftis::config::Config;
use raftis::protocol::Frame;
use std::net::SocketAddr;
use std::time::Duration;

fn bulk(s: &str) -> Frame {
    Frame::Bulk(bytes::Bytes::copy_from_slice(s.as_bytes()))
}

/// One production node on its own simulated host, one client host: writes, reads, TTLs
/// resolved against virtual time, and active expiry driven by the simulated clock.
#[madsim::test]
async fn single_node_serves_clients_over_simulated_tcp() {
    let handle = madsim::runtime::Handle::current();
    let node_ip = "10.0.0.1";
    handle
        .create_node()
        .name("node-1")
        .ip(node_ip.parse().expect("ip"))
        .init(move || async move {
            let config = Config { bind: node_ip.into(), port: 6379, seed: 1, ..Config::default() };
            match raftis::node::start(config).await {
                Ok(node) => node.stopped().await,
                Err(e) => panic!("node failed to start: {e}"),
            }
        })
        .build();
    let client = handle.create_node().name("client-1").ip("10.0.1.1".parse().expect("ip")).build();
    let addr: SocketAddr = format!("{node_ip}:6379").parse().expect("addr");
    client
        .spawn(async move {
            let mut c = SimClient::connect(addr, Duration::from_secs(10)).await.expect("connect");
            // The port answers from the start: -LOADING until the node has loaded.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            while c.cmd(&[b"PING"]).await.unwrap() != Frame::Simple("PONG".into()) {
                assert!(tokio::time::Instant::now() < deadline, "the node never finished loading");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            assert_eq!(c.cmd(&[b"SET", b"k", b"v"]).await.unwrap(), Frame::ok());
            assert_eq!(c.cmd(&[b"GET", b"k"]).await.unwrap(), bulk("v"));
            assert_eq!(c.cmd(&[b"SET", b"t", b"x", b"PX", b"500"]).await.unwrap(), Frame::ok());
            assert_eq!(c.cmd(&[b"DBSIZE"]).await.unwrap(), Frame::Integer(2));
            // Active expiry removes the key once virtual time passes its TTL.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            loop {
                if c.cmd(&[b"DBSIZE"]).await.unwrap() == Frame::Integer(1) {
                    break;
                }
                assert!(tokio::time::Instant::now() < deadline, "expired key never deleted");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert_eq!(c.cmd(&[b"GET", b"t"]).await.unwrap(), Frame::Null);
        })
        .await
        .expect("client task");
}
