//! The command line and the merge of all sources: defaults < config file < flags. Flags are
//! built from the settings table (one per setting, its default shown in `--help`), plus
//! `--config FILE` (or the file as first positional argument, like redis-server) and
//! `--log-level` (a tracing filter). A flag not given leaves the file's value in place.

use super::settings::{Arity, Setting, SETTINGS};
use super::{file, tracing_filter, Config, ConfigError};
use clap::{Arg, ArgMatches, Command};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Everything `main` needs to start: the merged settings and what goes with them.
#[derive(Debug)]
pub struct Startup {
    pub config: Config,
    /// The config file read, if any.
    pub config_file: Option<PathBuf>,
    /// The tracing filter: `--log-level`, else `RUST_LOG`, else the one `loglevel` maps to.
    pub log_filter: String,
    /// Warnings found while loading (ignored keys), to log once logging is set up.
    pub warnings: Vec<String>,
}

const AFTER_HELP: &str = "\
Settings come from the defaults, then the config file, then the flags: a flag wins over the
file. The file is redis.conf style, one `key value` per line (`port 7379`, `raft-node-id 1`,
`cluster-enabled yes`); every flag above has a file key of the same name unless [key: ...]
says otherwise. docs/OPERATIONS.md lists them all.";

/// The `raftis` command line.
pub fn command() -> Command {
    let mut cmd = Command::new("raftis")
        .version(env!("CARGO_PKG_VERSION"))
        .about("A Redis-compatible, Raft-replicated key-value server.")
        .override_usage("raftis [CONFIG_FILE] [OPTIONS]")
        .after_help(AFTER_HELP)
        // One line per flag, never wrapped (a newcomer scans the list).
        .term_width(0)
        .arg(
            Arg::new("config_file")
                .value_name("CONFIG_FILE")
                .help("config file (redis.conf style), same as --config")
                .conflicts_with("config"),
        )
        .arg(Arg::new("config").long("config").value_name("FILE").help("read settings from this config file"))
        .arg(
            Arg::new("log-level")
                .long("log-level")
                .value_name("FILTER")
                .help("tracing filter, e.g. info or raftis=debug [default: from loglevel]"),
        );
    for s in SETTINGS {
        cmd = cmd.arg(flag(s));
    }
    cmd
}

/// The flag of one setting; its value is checked by the setting's own parser.
fn flag(s: &'static Setting) -> Arg {
    let key = if s.key == s.flag { String::new() } else { format!(" [key: {}]", s.key) };
    let arg = Arg::new(s.key)
        .long(s.flag)
        .value_name(s.value_name)
        .help(format!("{}{key} [default: {}]", s.help, s.default_shown()))
        .value_parser(move |v: &str| (s.set)(&mut Config::default(), v).map(|()| v.to_string()));
    match s.arity {
        // `--cluster-enabled` alone means yes; `--is-bootstrap=false` / `--is-bootstrap no` too.
        Arity::Bool => arg.num_args(0..=1).default_missing_value("yes"),
        Arity::One | Arity::Rest => arg,
    }
}

/// Parses `args` (the program name first), reads the config file if one is named, and merges
/// defaults < file < flags.
pub fn load<I, T>(args: I) -> Result<Startup, ConfigError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let matches = command().try_get_matches_from(args)?;
    let mut config = Config::default();
    let config_file =
        matches.get_one::<String>("config").or(matches.get_one::<String>("config_file")).map(PathBuf::from);
    let warnings = match &config_file {
        Some(path) => load_file(&mut config, path)?,
        None => Vec::new(),
    };
    apply_flags(&mut config, &matches)?;
    config.validate().map_err(ConfigError::Invalid)?;
    let log_filter = match matches.get_one::<String>("log-level") {
        Some(filter) => filter.clone(),
        // RUST_LOG, when set, asks for a filter of its own (openraft's chatter included).
        None => match std::env::var("RUST_LOG") {
            Ok(filter) if !filter.is_empty() => filter,
            _ => tracing_filter(&config.loglevel).to_string(),
        },
    };
    Ok(Startup { config, config_file, log_filter, warnings })
}

/// Applies the config file at `path` over `config`; returns its warnings.
pub fn load_file(config: &mut Config, path: &Path) -> Result<Vec<String>, ConfigError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: name.clone(), source })?;
    let directives = file::parse(&name, &text)?;
    Ok(file::apply(config, &name, &directives)?)
}

/// Applies the flags given (in table order, so `--port` wins over a port in `--bind`).
fn apply_flags(config: &mut Config, matches: &ArgMatches) -> Result<(), ConfigError> {
    for s in SETTINGS {
        if let Some(v) = matches.get_one::<String>(s.key) {
            // Already checked by the flag's value parser; kept as an error, not an unwrap.
            (s.set)(config, v).map_err(|why| ConfigError::Invalid(format!("--{} {v}: {why}", s.flag)))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A config file under the temp dir, removed on drop.
    struct TempFile(PathBuf);
    impl TempFile {
        fn new(tag: &str, text: &str) -> TempFile {
            let path = std::env::temp_dir().join(format!("raftis-config-{tag}-{}.conf", std::process::id()));
            let mut f = std::fs::File::create(&path).unwrap();
            f.write_all(text.as_bytes()).unwrap();
            TempFile(path)
        }
        fn path(&self) -> &str {
            self.0.to_str().unwrap()
        }
    }
    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn load_args(args: &[&str]) -> Result<Startup, ConfigError> {
        load(std::iter::once("raftis").chain(args.iter().copied()))
    }

    #[test]
    fn no_flags_give_the_defaults() {
        let s = load_args(&[]).unwrap();
        let d = Config::default();
        assert_eq!((s.config.port, s.config.bind.as_str(), s.config.node_id), (d.port, d.bind.as_str(), d.node_id));
        assert!(s.config.is_bootstrap());
        assert_eq!(s.log_filter, "info,openraft=warn");
        assert!(s.config_file.is_none());
    }

    #[test]
    fn existing_flags_keep_working() {
        let s = load_args(&[
            "--bind",
            "127.0.0.1:7000",
            "--data-dir",
            "/tmp/x",
            "--requirepass",
            "pw",
            "--maxclients",
            "5",
            "--timeout",
            "9",
            "--node-id",
            "3",
            "--raft-addr",
            "127.0.0.1:8003",
            "--snapshot-logs",
            "100",
            "--log-level",
            "raftis=debug",
        ])
        .unwrap();
        let c = &s.config;
        assert_eq!((c.bind.as_str(), c.port), ("127.0.0.1", 7000));
        assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!((c.requirepass.as_str(), c.maxclients, c.timeout_secs), ("pw", 5, 9));
        assert_eq!((c.node_id, c.raft_addr.as_str(), c.snapshot_logs), (3, "127.0.0.1:8003", 100));
        assert_eq!(s.log_filter, "raftis=debug");
        // --port wins over the port of --bind.
        assert_eq!(load_args(&["--bind", "127.0.0.1:7000", "--port", "7001"]).unwrap().config.port, 7001);
    }

    #[test]
    fn file_over_defaults_and_flags_over_file() {
        let f = TempFile::new(
            "precedence",
            "port 7379\nbinding 127.0.0.2\nraft-node-id 4\nmemory 1GB\nloglevel warning\ncluster-enabled yes\n",
        );
        let s = load_args(&["--config", f.path(), "--port", "7400"]).unwrap();
        let c = &s.config;
        assert_eq!(c.port, 7400, "the flag wins");
        assert_eq!((c.bind.as_str(), c.node_id, c.maxmemory), ("127.0.0.2", 4, 1 << 30), "the file wins over defaults");
        assert_eq!(c.requirepass, "", "untouched settings keep their default");
        assert_eq!(s.log_filter, "warn");
        assert!(!c.is_bootstrap(), "cluster-enabled makes is-bootstrap default to no");
        assert_eq!(s.config_file.as_deref(), Some(f.0.as_path()));
        // Positional file, like redis-server; --log-level wins over loglevel.
        let s = load_args(&[f.path(), "--log-level", "debug"]).unwrap();
        assert_eq!((s.config.port, s.log_filter.as_str()), (7379, "debug"));
    }

    #[test]
    fn bool_flags_take_an_optional_value() {
        let c = load_args(&["--cluster-enabled"]).unwrap().config;
        assert!(c.cluster_enabled && !c.is_bootstrap());
        let c = load_args(&["--cluster-enabled", "--is-bootstrap"]).unwrap().config;
        assert!(c.is_bootstrap());
        let f = TempFile::new("bootstrap", "is-bootstrap yes\n");
        let c = load_args(&["--config", f.path(), "--is-bootstrap=false"]).unwrap().config;
        assert!(!c.is_bootstrap(), "the flag overrides the file");
        let c = load_args(&["--is-bootstrap", "no", "--port", "1"]).unwrap().config;
        assert_eq!((c.is_bootstrap(), c.port), (false, 1));
        assert!(load_args(&["--is-bootstrap=maybe"]).is_err());
    }

    #[test]
    fn bad_flags_are_usage_errors() {
        for args in [
            &["--port", "x"][..],
            &["--port"],
            &["--nope"],
            &["--maxmemory", "1.5gb"],
            &["a.conf", "--config", "b.conf"],
        ] {
            assert!(matches!(load_args(args), Err(ConfigError::Usage(_))), "{args:?}");
        }
    }

    #[test]
    fn raft_timers_are_checked_together() {
        let e = load_args(&["--raft-heartbeat-ms", "300"]).unwrap_err();
        assert!(e.to_string().contains("raft-election-timeout-min-ms (300) must be greater"), "{e}");
        let e = load_args(&["--raft-election-timeout-max-ms", "200"]).unwrap_err();
        assert!(matches!(e, ConfigError::Invalid(_)), "{e}");
        let c = load_args(&[
            "--raft-heartbeat-ms",
            "100",
            "--raft-election-timeout-min-ms",
            "1000",
            "--raft-election-timeout-max-ms",
            "2000",
        ])
        .unwrap()
        .config;
        assert_eq!(
            (c.raft_heartbeat_ms, c.raft_election_timeout_min_ms, c.raft_election_timeout_max_ms),
            (100, 1000, 2000)
        );
    }

    #[test]
    fn client_deadlines_are_settings() {
        let d = Config::default();
        assert_eq!((d.raft_leader_wait_ms, d.raft_write_timeout_ms, d.raft_read_timeout_ms), (5000, 10000, 5000));
        let args = ["--raft-leader-wait-ms", "250", "--raft-write-timeout-ms", "1500", "--raft-read-timeout-ms", "750"];
        let c = load_args(&args).unwrap().config;
        assert_eq!((c.raft_leader_wait_ms, c.raft_write_timeout_ms, c.raft_read_timeout_ms), (250, 1500, 750));
        for bad in [["--raft-read-timeout-ms", "0"], ["--raft-write-timeout-ms", "soon"]] {
            assert!(load_args(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_missing_file_is_an_error() {
        let e = load_args(&["--config", "/nonexistent/raftis.conf"]).unwrap_err();
        assert!(matches!(e, ConfigError::Read { .. }), "{e}");
        assert!(e.to_string().contains("/nonexistent/raftis.conf"), "{e}");
    }

    #[test]
    fn help_shows_every_flag_with_its_default() {
        let help = command().render_help().to_string();
        assert!(help.contains("--config <FILE>"));
        for s in SETTINGS {
            assert!(help.contains(&format!("--{}", s.flag)), "{}", s.flag);
            assert!(help.contains(&format!("[default: {}]", s.default_shown())), "{}", s.flag);
        }
    }
}
