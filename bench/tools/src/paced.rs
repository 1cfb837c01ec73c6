//! The precise open-loop pacer of plain-HTTP loads (the media hook's `hook_20k`, issue 11's
//! "20 000 checks/s, p99 ≤ 1 ms"): N keep-alive connections, each sending on its own schedule
//! of one request every N / rate seconds, the schedules offset so that the sends are spread
//! evenly (at 20 000/s: one every 50 µs), one request in flight per connection.
//!
//! Why hand-written and not on tokio: tokio's timer has a 1 ms resolution, so connections due
//! in the same millisecond send together, a burst of ~20 the server must queue, which puts
//! the client's pacing into the p99. Here one thread sleeps in `ppoll(2)` with a nanosecond
//! timeout until the next send is due or an answer arrives, with the thread's timer slack at
//! 1 ns (`PR_SET_TIMERSLACK`; the default 50 µs would be the whole gap between two sends).
//!
//! Latency runs from the *intended* send time to the end of the answer (as wrk2 does): a
//! connection whose previous answer is late sends late, and that lateness is counted, so
//! coordinated omission cannot hide a stall. A request is counted when its intended time is
//! inside the window; answers to those are awaited up to `DRAIN` after the window. The
//! pacer's own precision is reported as the send lag (actual − intended send time) of
//! requests that were not held back by their connection's previous answer.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use crate::{percentile, process_cpu_us, response_head, summary, BenchResult};

/// How long after the window answers to requests sent inside it are still awaited.
const DRAIN: Duration = Duration::from_secs(1);

/// What to send where, how fast, for how long.
pub struct Plan {
    pub addr: String,
    /// One complete HTTP/1.1 request per connection, sent again and again.
    pub requests: Vec<Vec<u8>>,
    /// Requests per second over all connections.
    pub rate: f64,
    pub warmup: Duration,
    pub duration: Duration,
    pub server_pid: String,
}

/// What a paced run measured.
pub struct Report {
    /// Microseconds from intended send to answer, ascending.
    pub latencies_us: Vec<u32>,
    /// Microseconds from intended to actual send, of sends not held back by a late answer.
    pub send_lag_us: Vec<u32>,
    /// Sends held back because the connection's previous answer was still out.
    pub held_back: u64,
    /// Checks scheduled inside the window but never sent: the server fell so far behind
    /// that their connection never got to them. Each counts as a latency beyond any bound.
    pub never_sent: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub window: Duration,
    pub server_cpu_us: u64,
    pub client_cpu_us: u64,
}

struct Conn {
    stream: TcpStream,
    request: Vec<u8>,
    /// The intended time of the next send.
    next: Instant,
    /// The intended send time of the request in flight.
    in_flight: Option<Instant>,
    buf: Vec<u8>,
    dead: bool,
}

/// Sets this thread's timer slack to 1 ns, so a `ppoll` timeout ends when asked.
fn precise_timers() {
    // SAFETY: PR_SET_TIMERSLACK takes an integer argument and touches no memory of ours.
    #[allow(unsafe_code)]
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong);
    }
}

/// Waits until one of `fds` is readable or `timeout` passes.
fn ppoll(fds: &mut [libc::pollfd], timeout: Duration) -> std::io::Result<()> {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `fds` is a valid, exclusively borrowed array of `fds.len()` pollfd, and `ts`
    // lives across the call; a null signal mask means "leave it as it is".
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::ppoll(
            fds.as_mut_ptr(),
            fds.len() as libc::nfds_t,
            &ts,
            std::ptr::null(),
        )
    };
    if rc < 0 {
        let e = std::io::Error::last_os_error();
        if e.kind() != ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok(())
}

/// The length of the first complete HTTP/1.1 response in `buf` and its status.
fn complete_response(buf: &[u8]) -> Option<(usize, u16)> {
    let header_end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let (status, length) = response_head(std::str::from_utf8(&buf[..header_end]).ok()?)?;
    (buf.len() >= header_end + length).then_some((header_end + length, status))
}

pub fn run(plan: &Plan) -> BenchResult<Report> {
    precise_timers();
    let n = plan.requests.len();
    if n == 0 || plan.rate <= 0.0 {
        return Err("a paced run needs connections and a rate".into());
    }
    let interval = Duration::from_secs_f64(n as f64 / plan.rate);
    let mut conns = Vec::with_capacity(n);
    let begin = Instant::now() + Duration::from_millis(20);
    for (c, request) in plan.requests.iter().enumerate() {
        let stream = TcpStream::connect(&plan.addr)?;
        stream.set_nodelay(true)?;
        stream.set_nonblocking(true)?;
        conns.push(Conn {
            stream,
            request: request.clone(),
            next: begin + interval.mul_f64(c as f64 / n as f64),
            in_flight: None,
            buf: Vec::with_capacity(1024),
            dead: false,
        });
    }
    let warm_end = begin + plan.warmup;
    let end = warm_end + plan.duration;
    let mut report = Report {
        latencies_us: Vec::with_capacity((plan.rate * plan.duration.as_secs_f64()) as usize + 16),
        send_lag_us: Vec::with_capacity((plan.rate * plan.duration.as_secs_f64()) as usize + 16),
        held_back: 0,
        never_sent: 0,
        errors: 0,
        first_error: None,
        window: plan.duration,
        server_cpu_us: 0,
        client_cpu_us: 0,
    };
    let mut cpu_at_start: Option<(u64, u64)> = None;
    let mut cpu_at_end: Option<(u64, u64)> = None;
    let mut fds: Vec<libc::pollfd> = Vec::with_capacity(n);
    let mut polled: Vec<usize> = Vec::with_capacity(n);
    let mut chunk = [0u8; 4096];
    loop {
        let now = Instant::now();
        if cpu_at_start.is_none() && now >= warm_end {
            cpu_at_start = Some((process_cpu_us(&plan.server_pid)?, process_cpu_us("self")?));
        }
        let sending = now < end;
        if !sending && cpu_at_end.is_none() {
            cpu_at_end = Some((process_cpu_us(&plan.server_pid)?, process_cpu_us("self")?));
        }
        if !sending && conns.iter().all(|c| c.in_flight.is_none() || c.dead) {
            break;
        }
        if now >= end + DRAIN {
            break;
        }
        // Every send that is due, in schedule order per connection.
        if sending {
            for conn in conns
                .iter_mut()
                .filter(|c| !c.dead && c.in_flight.is_none())
            {
                if conn.next > now {
                    continue;
                }
                let intended = conn.next;
                conn.next += interval;
                match conn.stream.write(&conn.request) {
                    Ok(w) if w == conn.request.len() => {}
                    // One small request on an idle connection always fits the socket buffer.
                    Ok(_) | Err(_) => {
                        conn.dead = true;
                        error(&mut report, "a request could not be written at once".into());
                        continue;
                    }
                }
                conn.in_flight = Some(intended);
                if intended >= warm_end {
                    let lag = Instant::now().saturating_duration_since(intended);
                    // A send later than one interval waited for the previous answer.
                    if lag >= interval {
                        report.held_back += 1;
                    } else {
                        report.send_lag_us.push(lag.as_micros() as u32);
                    }
                }
            }
        }
        let next_send = conns
            .iter()
            .filter(|c| sending && !c.dead && c.in_flight.is_none())
            .map(|c| c.next)
            .min()
            .unwrap_or(now + Duration::from_millis(10));
        fds.clear();
        polled.clear();
        for (i, conn) in conns.iter().enumerate() {
            if conn.in_flight.is_some() && !conn.dead {
                fds.push(libc::pollfd {
                    fd: conn.stream.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                });
                polled.push(i);
            }
        }
        // Wake for the next send, and once at the window's start to read the CPU clocks.
        let wake = if cpu_at_start.is_none() {
            next_send.min(warm_end)
        } else {
            next_send
        };
        let timeout = wake.saturating_duration_since(Instant::now());
        ppoll(&mut fds, timeout)?;
        for (fd, &i) in fds.iter().zip(&polled) {
            if fd.revents == 0 {
                continue;
            }
            let conn = &mut conns[i];
            loop {
                match conn.stream.read(&mut chunk) {
                    Ok(0) => {
                        conn.dead = true;
                        error(&mut report, "the server closed a connection".into());
                        break;
                    }
                    Ok(r) => conn.buf.extend_from_slice(&chunk[..r]),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => {
                        conn.dead = true;
                        error(&mut report, format!("read failed: {e}"));
                        break;
                    }
                }
            }
            let Some((len, status)) = complete_response(&conn.buf) else {
                continue;
            };
            let done = Instant::now();
            let intended = conn.in_flight.take().unwrap_or(done);
            let answer: Vec<u8> = conn.buf.drain(..len).collect();
            if intended < warm_end || intended >= end {
                continue;
            }
            if status == 200 {
                report
                    .latencies_us
                    .push(done.duration_since(intended).as_micros() as u32);
            } else {
                let text: String = String::from_utf8_lossy(&answer).chars().take(300).collect();
                error(&mut report, format!("status {status}: {text}"));
            }
        }
    }
    let (server0, client0) = cpu_at_start.ok_or("the run ended before its window")?;
    let (server1, client1) = cpu_at_end.ok_or("the run ended inside its window")?;
    report.server_cpu_us = server1.saturating_sub(server0);
    report.client_cpu_us = client1.saturating_sub(client0);
    for conn in &conns {
        if conn.in_flight.is_some_and(|t| t >= warm_end && t < end) {
            error(&mut report, "no answer within 1 s after the window".into());
        }
        // The schedule's times from the next unsent one (or the window's start) to its end.
        let from = conn.next.max(warm_end);
        if from < end {
            report.never_sent +=
                (end.duration_since(from).as_secs_f64() / interval.as_secs_f64()) as u64;
        }
    }
    report
        .latencies_us
        .extend(std::iter::repeat_n(u32::MAX, report.never_sent as usize));
    report.latencies_us.sort_unstable();
    report.send_lag_us.sort_unstable();
    Ok(report)
}

fn error(report: &mut Report, what: String) {
    report.errors += 1;
    report.first_error.get_or_insert(what);
}

impl Report {
    /// The load client's line and `SUMMARY` keys (the same keys as a closed-loop run, plus
    /// the pacer's precision).
    pub fn print(&self, label: &str, conns: usize) {
        // Answered checks; the never-sent ones are in the latencies only as their tail.
        let n = (self.latencies_us.len() as u64 - self.never_sent) as f64;
        let seconds = self.window.as_secs_f64();
        let ms = |sorted: &[u32], q| f64::from(percentile(sorted, q)) / 1000.0;
        let (p50, p99, p999) = (
            ms(&self.latencies_us, 0.5),
            ms(&self.latencies_us, 0.99),
            ms(&self.latencies_us, 0.999),
        );
        let cpu_per_req = if n > 0.0 {
            self.server_cpu_us as f64 / n
        } else {
            0.0
        };
        let server_busy = self.server_cpu_us as f64 / (seconds * 1e6);
        let client_busy = self.client_cpu_us as f64 / (seconds * 1e6);
        println!(
            "{label:<14} {:>9.1} req/s  p50 {p50:>8.2} ms  p99 {p99:>8.2} ms  server CPU \
             {cpu_per_req:>8.1} µs/req (core {:.0}% busy)  client core {:.0}% busy  n={n}  \
             conns={conns}  paced: p99.9 {p999:.2} ms, send lag p50/p99 {:.0}/{:.0} µs, {} sends \
             held back by a late answer, {} never sent (each counted as an endless latency)",
            n / seconds,
            server_busy * 100.0,
            client_busy * 100.0,
            ms(&self.send_lag_us, 0.5) * 1000.0,
            ms(&self.send_lag_us, 0.99) * 1000.0,
            self.held_back,
            self.never_sent,
        );
        if self.errors > 0 {
            println!(
                "{label:<14} {} errors; first: {}",
                self.errors,
                self.first_error.as_deref().unwrap_or_default()
            );
        }
        summary(&format!("{label}.rps"), n / seconds, "req/s");
        summary(&format!("{label}.p50"), p50, "ms");
        summary(&format!("{label}.p99"), p99, "ms");
        summary(&format!("{label}.p999"), p999, "ms");
        summary(&format!("{label}.cpu_per_req"), cpu_per_req, "us");
        summary(&format!("{label}.server_busy"), server_busy, "fraction");
        summary(&format!("{label}.client_busy"), client_busy, "fraction");
        summary(&format!("{label}.errors"), self.errors as f64, "count");
        summary(
            &format!("{label}.send_lag_p99"),
            ms(&self.send_lag_us, 0.99),
            "ms",
        );
        summary(
            &format!("{label}.held_back"),
            self.held_back as f64,
            "count",
        );
        summary(
            &format!("{label}.never_sent"),
            self.never_sent as f64,
            "count",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_are_complete_only_with_their_whole_body() {
        let r = b"HTTP/1.1 200 OK\r\ncontent-length: 15\r\n\r\n{\"status\":\"ok\"}";
        assert_eq!(complete_response(r), Some((r.len(), 200)));
        assert_eq!(complete_response(&r[..r.len() - 1]), None);
        assert_eq!(complete_response(b"HTTP/1.1 403 Forbidden\r\n"), None);
        let two = [&r[..], &r[..]].concat();
        assert_eq!(complete_response(&two), Some((r.len(), 200)));
    }
}
