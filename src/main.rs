//! The `raftis` binary: loads the configuration (defaults < config file < flags, see
//! `raftis::config`), sets up logging and signals, runs `node::start`.

use raftis::config::{self, ConfigError, Startup};
use std::process::ExitCode;

/// jemalloc, as Redis: per durable SET ~0.7 us less CPU than glibc malloc on one node, ~1 us
/// less on a leader (docs/PERFORMANCE.md).
#[cfg(not(madsim))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    // INFO memory, MEMORY STATS and maxmemory read jemalloc's own figures.
    #[cfg(not(madsim))]
    raftis::rt::memory::use_jemalloc_stats();
    let startup = match config::load(std::env::args_os()) {
        Ok(startup) => startup,
        // --help and --version exit 0; bad flags exit 2, with clap's message.
        Err(ConfigError::Usage(e)) => e.exit(),
        Err(e) => {
            eprintln!("raftis: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = init_logging(&startup) {
        eprintln!("raftis: {e}");
        return ExitCode::FAILURE;
    }
    for warning in &startup.warnings {
        tracing::warn!("{warning}");
    }
    if let Some(file) = &startup.config_file {
        tracing::info!(file = %file.display(), "configuration loaded");
    }
    let to_file = startup.config.log_dir.is_some() || !startup.config.logfile.is_empty();
    let mut builder = runtime_builder(startup.config.io_threads);
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(startup.config, to_file))
}

/// A test hook: with `RAFTIS_TEST_HOLD_LOADING=<file>` in its environment, the node holds its
/// loading (its client port answering `-LOADING`) until that file exists, so that a test can
/// look at the loading state without racing a load that may end at any moment.
async fn hold_loading() {
    let Some(file) = std::env::var_os("RAFTIS_TEST_HOLD_LOADING").map(std::path::PathBuf::from) else { return };
    tracing::warn!(file = %file.display(), "loading held until this file exists (RAFTIS_TEST_HOLD_LOADING)");
    while !file.exists() {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// A signal before the node has loaded (Redis: "Received shutdown signal during loading"):
/// nothing is acknowledged yet, so nothing is lost by stopping at once; the process exits
/// here rather than returning, since the runtime would wait for a snapshot load in progress
/// on its blocking pool before it could end.
fn exit_while_loading() -> ! {
    tracing::warn!("Received shutdown signal during loading, exiting.");
    std::process::exit(0)
}

/// One I/O thread (the default) is a current-thread runtime: every task on the main thread, as
/// in Redis, which runs the log's syncs in its idle time while the node is alone in its group
/// (`raftis::rt::on_runtime_idle`). More I/O threads are a multi-thread runtime.
fn runtime_builder(io_threads: usize) -> tokio::runtime::Builder {
    if io_threads <= 1 {
        #[cfg_attr(madsim, allow(unused_mut))]
        let mut builder = tokio::runtime::Builder::new_current_thread();
        // The simulator's runtime has no park hook (and its disks never block).
        #[cfg(not(madsim))]
        builder.on_thread_park(raftis::rt::on_runtime_idle);
        builder
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(io_threads);
        builder
    }
}

/// Logs to standard error, or appended to `logfile`, or to `<log-dir>/raftis-node<id>.log`
/// with `log-dir`. Colour codes only on a terminal, never into a file or a pipe.
fn init_logging(startup: &Startup) -> Result<(), String> {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_new(&startup.log_filter)
        .map_err(|e| format!("invalid --log-level '{}': {e}", startup.log_filter))?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let Some(path) = log_path(&startup.config)? else {
        builder.with_ansi(std::io::stderr().is_terminal()).with_writer(std::io::stderr).init();
        return Ok(());
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| format!("cannot open log file {}: {e}", path.display()))?;
    // `&File` is a writer: each event is one append, no background thread needed.
    builder.with_ansi(false).with_writer(std::sync::Arc::new(file)).init();
    Ok(())
}

/// The log file, if logs go to one: `logfile`, else one per node under `log-dir` (created).
fn log_path(config: &config::Config) -> Result<Option<std::path::PathBuf>, String> {
    if !config.logfile.is_empty() {
        return Ok(Some(config.logfile.clone().into()));
    }
    let Some(dir) = &config.log_dir else { return Ok(None) };
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create log-dir {}: {e}", dir.display()))?;
    Ok(Some(dir.join(format!("raftis-node{}.log", config.node_id))))
}

/// Runs the node until a signal or SHUTDOWN. With logs in a file, a start-up failure is also
/// printed on stderr for whoever started the node.
async fn run(config: config::Config, logs_to_file: bool) -> ExitCode {
    if !config.is_bootstrap() {
        tracing::info!("is-bootstrap is off: a fresh node waits to be added to a cluster");
    }
    let started = tokio::select! {
        started = raftis::node::start_after(config, hold_loading()) => started,
        _ = raftis::rt::terminate_signal() => exit_while_loading(),
    };
    let node = match started {
        Ok(node) => node,
        Err(e) => {
            tracing::error!("{e}");
            if logs_to_file {
                eprintln!("raftis: {e}");
            }
            return ExitCode::FAILURE;
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
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
