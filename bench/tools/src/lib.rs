//! What the benchmark tools share: reading a process's CPU time and memory from /proc, the
//! percentile of a latency sample, the machine line, the TLS client configuration of the load
//! client, a tiny `--key value` argument reader, the `SUMMARY` line format that
//! `bench/compare` reads, and the precise open-loop pacer of plain-HTTP loads (`paced`).

use std::collections::HashMap;
use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

pub mod paced;

pub type BenchResult<T> = Result<T, Box<dyn Error + Send + Sync>>;

/// `--key value` pairs after the first (positional) arguments; `--flag` alone means "true".
pub struct Args {
    pub positional: Vec<String>,
    named: HashMap<String, String>,
}

impl Args {
    pub fn from_env() -> Args {
        let mut positional = Vec::new();
        let mut named = HashMap::new();
        let mut it = std::env::args().skip(1).peekable();
        while let Some(arg) = it.next() {
            // Whatever follows `--` is a command line of its own.
            if arg == "--" {
                break;
            }
            if let Some(key) = arg.strip_prefix("--") {
                let value = match it.peek() {
                    Some(v) if !v.starts_with("--") => it.next().unwrap_or_default(),
                    _ => "true".to_owned(),
                };
                named.insert(key.to_owned(), value);
            } else {
                positional.push(arg);
            }
        }
        Args { positional, named }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.named.get(key).map(String::as_str)
    }

    pub fn required(&self, key: &str) -> BenchResult<&str> {
        self.get(key)
            .ok_or_else(|| format!("missing --{key}").into())
    }

    pub fn parse_or<T: std::str::FromStr>(&self, key: &str, default: T) -> BenchResult<T> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| format!("--{key}: cannot parse {v:?}").into()),
        }
    }

    pub fn seconds_or(&self, key: &str, default: f64) -> BenchResult<Duration> {
        Ok(Duration::from_secs_f64(self.parse_or(key, default)?))
    }
}

fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf only reads a configuration value.
    #[allow(unsafe_code)]
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|t| *t > 0).unwrap_or(100)
}

/// User + system CPU time of a whole process (every thread), from /proc/<pid>/stat, in µs.
/// The kernel counts in clock ticks (usually 10 ms), so short windows are coarse.
pub fn process_cpu_us(pid: &str) -> BenchResult<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name may contain spaces and parentheses; fields resume after the last ')'.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or("malformed /proc stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state is field 3 of proc(5); utime and stime are fields 14 and 15.
    let utime: u64 = fields.get(11).ok_or("no utime")?.parse()?;
    let stime: u64 = fields.get(12).ok_or("no stime")?.parse()?;
    Ok((utime + stime) * 1_000_000 / clock_ticks_per_second())
}

/// A `Vm*` line of /proc/<pid>/status (VmRSS, VmHWM), in KiB.
pub fn process_memory_kib(pid: &str, field: &str) -> BenchResult<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))
        .ok_or_else(|| format!("no {field} in /proc/{pid}/status"))?;
    let kib = line[field.len() + 1..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()?;
    Ok(kib)
}

/// The value at quantile `q` (0..=1) of an ascending sample, nearest rank.
/// The status and `Content-Length` (0 when absent) of an HTTP/1.1 response head, the
/// status line through the blank line: the tools' one reading of vmsd's answers.
pub fn response_head(head: &str) -> Option<(u16, usize)> {
    let status = head.get(9..12)?.parse().ok()?;
    let length = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())
                .flatten()
        })
        .unwrap_or(0);
    Some((status, length))
}

pub fn percentile(sorted: &[u32], q: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((sorted.len() as f64) * q).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// One machine-readable figure: `SUMMARY <key> <value> <unit>`. `bench/compare` joins two
/// runs on the key.
pub fn summary(key: &str, value: f64, unit: &str) {
    println!("SUMMARY {key} {value:.3} {unit}");
}

/// The rustls provider every tool uses, as vmsd does: ring.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Accepts the server's self-signed certificate without a trust chain (the benchmark talks to
/// a server it started on loopback) but still checks the handshake signature, so the client
/// does the same public-key work a real one would.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// TLS 1.3 only with ALPN `http/1.1`: what a current client negotiates with vmsd.
pub fn client_config() -> BenchResult<Arc<rustls::ClientConfig>> {
    let provider = provider();
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// `<nproc> CPUs, <model>` of this machine.
pub fn machine() -> String {
    // Online CPUs of the machine, not of this process: the tools run pinned with taskset.
    // SAFETY: sysconf only reads a configuration value.
    #[allow(unsafe_code)]
    let cpus = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name") || l.starts_with("Model"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cpus} CPUs, {model}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let s: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&s, 0.5), 50);
        assert_eq!(percentile(&s, 0.99), 99);
        assert_eq!(percentile(&s, 1.0), 100);
        assert_eq!(percentile(&[], 0.5), 0);
        assert_eq!(percentile(&[7], 0.99), 7);
    }
}
