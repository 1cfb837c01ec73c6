//! Starts a server the way systemd's `Type=notify` would and times it: binds a notify socket,
//! execs the command with `NOTIFY_SOCKET` set (stdout and stderr to a log file), and waits
//! for `READY=1`. Prints `pid <pid>` and `ready_ms <ms from exec to READY>`, then exits and
//! leaves the server running for `bench/run` to load and stop.
//!
//! ```text
//! launch start --notify SOCK --log FILE -- CMD ARGS...
//! launch freeport            # prints a TCP port that is free on 127.0.0.1 right now
//! launch rss --pid PID       # prints `rss_kib N hwm_kib N`
//! ```

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vmsd_bench_tools::{process_memory_kib, Args, BenchResult};

const READY_TIMEOUT: Duration = Duration::from_secs(60);

fn main() -> BenchResult<()> {
    let raw: Vec<String> = std::env::args().collect();
    let (ours, command) = match raw.iter().position(|a| a == "--") {
        Some(i) => (&raw[..i], &raw[i + 1..]),
        None => (&raw[..], &raw[raw.len()..]),
    };
    let args = Args::from_env();
    match ours.get(1).map(String::as_str) {
        Some("freeport") => {
            let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
            println!("{}", listener.local_addr()?.port());
            Ok(())
        }
        Some("rss") => {
            let pid = args.required("pid")?;
            println!(
                "rss_kib {} hwm_kib {}",
                process_memory_kib(pid, "VmRSS")?,
                process_memory_kib(pid, "VmHWM")?
            );
            Ok(())
        }
        Some("start") => start(&args, command),
        _ => Err("usage: launch start|freeport|rss ...".into()),
    }
}

fn start(args: &Args, command: &[String]) -> BenchResult<()> {
    let notify = args.required("notify")?;
    let log = args.required("log")?;
    let (program, rest) = command.split_first().ok_or("no command after --")?;
    let _ = std::fs::remove_file(notify);
    let socket = UnixDatagram::bind(notify)?;
    socket.set_read_timeout(Some(Duration::from_millis(200)))?;
    let log_file = std::fs::File::create(log)?;
    let started = Instant::now();
    let mut child = Command::new(program)
        .args(rest)
        .env("NOTIFY_SOCKET", notify)
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .spawn()?;
    let mut buf = [0u8; 4096];
    loop {
        match socket.recv(&mut buf) {
            Ok(n) => {
                let message = String::from_utf8_lossy(&buf[..n]);
                if message.lines().any(|l| l == "READY=1") {
                    let ms = started.elapsed().as_secs_f64() * 1000.0;
                    println!("pid {}", child.id());
                    println!("ready_ms {ms:.1}");
                    return Ok(());
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e.into()),
        }
        if let Some(status) = child.try_wait()? {
            return Err(format!("{program} exited with {status} before READY=1; see {log}").into());
        }
        if started.elapsed() > READY_TIMEOUT {
            let _ = child.kill();
            return Err(format!("{program} sent no READY=1 within {READY_TIMEOUT:?}").into());
        }
    }
}
