//! The `raftis` binary: parses flags, sets up logging and signals, runs `node::start`.

use clap::Parser;
use raftis::config::Config;
use std::path::PathBuf;

/// A Redis-compatible, Raft-replicated key-value server.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// Address to listen on for clients (host, or host:port).
    #[arg(long, default_value = "127.0.0.1")]
    bind: String,
    /// Port for clients (overrides a port given in --bind).
    #[arg(long)]
    port: Option<u16>,
    /// Directory for the node's data.
    #[arg(long, default_value = "./data")]
    data_dir: PathBuf,
    /// Password clients must give with AUTH.
    #[arg(long, default_value = "")]
    requirepass: String,
    /// Maximum simultaneous client connections.
    #[arg(long, default_value_t = 10000)]
    maxclients: usize,
    /// Close clients idle for this many seconds (0 = never).
    #[arg(long, default_value_t = 0)]
    timeout: u64,
    /// This node's Raft id.
    #[arg(long, default_value_t = 1)]
    node_id: u64,
    /// Address (host:port) of the internal Raft RPC; default: the client host, a free port.
    #[arg(long, default_value = "")]
    raft_addr: String,
    /// Snapshot (and purge the log) every this many applied entries.
    #[arg(long, default_value_t = 10_000)]
    snapshot_logs: u64,
    /// Log filter (tracing's EnvFilter syntax, e.g. "info" or "raftis=debug").
    #[arg(long, default_value = "info")]
    log_level: String,
}

fn config_from(cli: &Cli) -> Config {
    let mut config = Config {
        data_dir: cli.data_dir.clone(),
        requirepass: cli.requirepass.clone(),
        maxclients: cli.maxclients.max(1),
        timeout_secs: cli.timeout,
        node_id: cli.node_id,
        raft_addr: cli.raft_addr.clone(),
        snapshot_logs: cli.snapshot_logs.max(1),
        ..Config::default()
    };
    match cli.bind.rsplit_once(':') {
        Some((host, port)) if port.parse::<u16>().is_ok() => {
            config.bind = host.to_string();
            config.port = port.parse().unwrap_or(config.port);
        }
        _ => config.bind = cli.bind.clone(),
    }
    if let Some(port) = cli.port {
        config.port = port;
    }
    config
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let node = match raftis::node::start(config_from(&cli)).await {
        Ok(node) => node,
        Err(e) => {
            tracing::error!("{e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    tokio::select! {
        _ = node.stopped() => tracing::info!("shutdown requested by a client"),
        _ = raftis::rt::terminate_signal() => tracing::info!("signal received, shutting down"),
    }
    // A node stopped by a Raft failure (a failed fsync) exits non-zero for its supervisor.
    let failed = node.replica().has_failed();
    node.shutdown().await;
    if failed {
        return std::process::ExitCode::FAILURE;
    }
    std::process::ExitCode::SUCCESS
}
