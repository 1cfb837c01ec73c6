//! Logging setup: one tracing subscriber that writes either to journald (when stderr is the
//! journal) or as human-readable text to stderr, never both, with a `RUST_LOG`-style filter of
//! `target=level` directives (tracing-subscriber's `Targets`: the span and regex forms of
//! `EnvFilter` are not accepted, and leaving them out keeps a regex engine out of the binary).
//!
//! Conventions for callers (issue 5): put the key facts (user, route, status) in the message text
//! as well as in fields, because plain `journalctl` does not show fields (journald stores them
//! with an `F_` prefix, e.g. `F_USER_ID`); keep per-request lines at debug; never log secrets.

use std::io::IsTerminal;
use std::os::fd::AsFd;

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Where `init` sent the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogSink {
    Journald,
    Stderr,
}

/// Installs the global subscriber. `filter` (the config's `log`) is overridden by a non-empty,
/// valid `RUST_LOG`. A second call keeps the first subscriber and just reports the sink it would
/// have chosen, so tests may call it freely.
pub fn init(filter: &str) -> LogSink {
    let rust_log = std::env::var("RUST_LOG").ok();
    let (env_filter, filter_problem) = choose_filter(rust_log.as_deref(), filter);
    let to_journal = stderr_is_journal();

    // journald's own socket is preferred over the stderr stream because it keeps structured fields
    // and priorities; the stream would flatten them into text.
    let (sink, journald_problem) = if to_journal {
        match tracing_journald::layer() {
            Ok(layer) => {
                let _ = tracing_subscriber::registry()
                    .with(env_filter)
                    .with(layer)
                    .try_init();
                (LogSink::Journald, None)
            }
            Err(e) => {
                init_stderr(env_filter, true);
                (LogSink::Stderr, Some(e))
            }
        }
    } else {
        init_stderr(env_filter, false);
        (LogSink::Stderr, None)
    };

    if let Some(problem) = filter_problem {
        tracing::warn!("{problem}");
    }
    if let Some(e) = journald_problem {
        tracing::warn!(error = %e, "journald socket unavailable ({e}); logging as text to stderr");
    }
    sink
}

/// `journal` means stderr is the journal stream, which stamps every line itself, so a second
/// timestamp would only be noise.
fn init_stderr(env_filter: Targets, journal: bool) {
    let ansi = !journal && std::io::stderr().is_terminal();
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let registry = tracing_subscriber::registry().with(env_filter);
    let _ = if journal {
        registry.with(fmt.without_time()).try_init()
    } else {
        registry.with(fmt).try_init()
    };
}

/// Parses a filter as `EnvFilter` did: an empty one means `info`.
pub fn parse_filter(text: &str) -> Result<Targets, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(Targets::new().with_default(LevelFilter::INFO));
    }
    text.parse::<Targets>().map_err(|e| e.to_string())
}

/// The filter to use and, when an input was rejected, a message to log once logging works.
fn choose_filter(rust_log: Option<&str>, configured: &str) -> (Targets, Option<String>) {
    let mut problem = None;
    if let Some(env) = rust_log.filter(|s| !s.trim().is_empty()) {
        match parse_filter(env) {
            Ok(f) => return (f, None),
            Err(e) => {
                problem = Some(format!(
                    "ignoring invalid RUST_LOG {env:?} ({e}); using the configured log filter"
                ))
            }
        }
    }
    match parse_filter(configured) {
        Ok(f) => (f, problem),
        Err(e) => {
            let msg = format!("invalid log filter {configured:?} ({e}); using \"info\"");
            let problem = Some(problem.map_or(msg.clone(), |p| format!("{p}; {msg}")));
            (Targets::new().with_default(LevelFilter::INFO), problem)
        }
    }
}

/// Whether stderr is connected to the journal: `JOURNAL_STREAM` names the stream systemd set up,
/// and it must match stderr's actual device and inode, because a child can inherit the variable
/// with stderr redirected elsewhere (systemd.exec(5)).
pub fn stderr_is_journal() -> bool {
    let Ok(env) = std::env::var("JOURNAL_STREAM") else {
        return false;
    };
    let Ok(st) = nix::sys::stat::fstat(std::io::stderr().as_fd()) else {
        return false;
    };
    journal_stream_matches(Some(&env), as_u64(st.st_dev), as_u64(st.st_ino))
}

/// `dev_t` and `ino_t` are u64 on the 64-bit targets we ship but narrower on some 32-bit ones.
fn as_u64<T: Into<u64>>(v: T) -> u64 {
    v.into()
}

/// Pure core of [`stderr_is_journal`]: `env` is `JOURNAL_STREAM`, formatted `<dev>:<ino>` in decimal.
pub fn journal_stream_matches(env: Option<&str>, dev: u64, ino: u64) -> bool {
    let Some((d, i)) = env.and_then(|s| s.trim().split_once(':')) else {
        return false;
    };
    matches!((d.parse::<u64>(), i.parse::<u64>()), (Ok(d), Ok(i)) if d == dev && i == ino)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a failed setup step should fail the test loudly
mod tests {
    use super::*;

    #[test]
    fn journal_stream_matching() {
        assert!(journal_stream_matches(
            Some("64769:1234567"),
            64769,
            1_234_567
        ));
        assert!(!journal_stream_matches(
            Some("64769:1234568"),
            64769,
            1_234_567
        ));
        assert!(!journal_stream_matches(
            Some("64770:1234567"),
            64769,
            1_234_567
        ));
        assert!(!journal_stream_matches(
            Some("1234567:64769"),
            64769,
            1_234_567
        ));
        assert!(!journal_stream_matches(Some("garbage"), 64769, 1_234_567));
        assert!(!journal_stream_matches(Some("64769:"), 64769, 1_234_567));
        assert!(!journal_stream_matches(Some(":1234567"), 64769, 1_234_567));
        assert!(!journal_stream_matches(
            Some("64769:1234567:1"),
            64769,
            1_234_567
        ));
        assert!(!journal_stream_matches(
            Some("-1:1234567"),
            u64::MAX,
            1_234_567
        ));
        assert!(!journal_stream_matches(Some(""), 0, 0));
        assert!(!journal_stream_matches(None, 0, 0));
    }

    #[test]
    fn stderrs_real_identity_matches() {
        let st = nix::sys::stat::fstat(std::io::stderr().as_fd()).unwrap();
        let (dev, ino) = (as_u64(st.st_dev), as_u64(st.st_ino));
        assert!(journal_stream_matches(
            Some(&format!("{dev}:{ino}")),
            dev,
            ino
        ));
        assert!(!journal_stream_matches(
            Some(&format!("{dev}:{}", ino + 1)),
            dev,
            ino
        ));
    }

    #[test]
    fn stderr_is_not_the_journal_unless_the_variable_matches() {
        let st = nix::sys::stat::fstat(std::io::stderr().as_fd()).unwrap();
        let real = format!("{}:{}", st.st_dev, st.st_ino);
        let env = std::env::var("JOURNAL_STREAM").ok();
        assert_eq!(stderr_is_journal(), env.as_deref() == Some(real.as_str()));
    }

    #[test]
    fn rust_log_overrides_the_configured_filter() {
        let (f, problem) = choose_filter(Some("vmsd=trace"), "warn");
        assert_eq!(f.to_string(), "vmsd=trace");
        assert!(problem.is_none());
    }

    #[test]
    fn empty_or_invalid_rust_log_falls_back_to_the_configured_filter() {
        assert_eq!(choose_filter(None, "warn").0.to_string(), "warn");
        assert_eq!(choose_filter(Some(" "), "warn").0.to_string(), "warn");
        let (f, problem) = choose_filter(Some("vmsd=loud"), "warn");
        assert_eq!(f.to_string(), "warn");
        assert!(problem.unwrap().contains("RUST_LOG"));
    }

    #[test]
    fn invalid_configured_filter_falls_back_to_info() {
        let (f, problem) = choose_filter(None, "vmsd=loud");
        assert_eq!(f.to_string(), "info");
        assert!(problem.unwrap().contains("vmsd=loud"));
        assert_eq!(choose_filter(None, "").0.to_string(), "info");
    }

    #[test]
    fn init_twice_is_harmless() {
        let first = init("info");
        let second = init("debug");
        assert_eq!(first, second);
        if first == LogSink::Journald {
            assert!(stderr_is_journal());
        }
    }
}
