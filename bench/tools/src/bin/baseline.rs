//! The bare-framework ceiling: hyper 1 (HTTP/1.1, keep-alive) behind tokio-rustls with vmsd's
//! TLS settings (ring provider, TLS 1.3 + 1.2 offered, ALPN `http/1.1`, a self-signed ECDSA
//! P-256 certificate from rcgen) and vmsd's per-connection setup (handshake in the connection's
//! task, header-read timeout with a timer, 64 KiB header buffer), answering every request with
//! the same fixed 400-byte JSON body. Whatever vmsd costs beyond this is vmsd's own.
//!
//! `baseline --listen 127.0.0.1:PORT`; sends `READY=1` to `$NOTIFY_SOCKET` once listening.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use vmsd_bench_tools::{provider, Args, BenchResult};

const BODY_BYTES: usize = 400;

/// A JSON object of exactly `BODY_BYTES` bytes, about the size of vmsd's `GET /users/self`.
fn body() -> Bytes {
    let prefix = "{\"id\":1,\"login\":\"baseline\",\"padding\":\"";
    let suffix = "\"}";
    let pad = BODY_BYTES - prefix.len() - suffix.len();
    Bytes::from(format!("{prefix}{}{suffix}", "x".repeat(pad)))
}

fn tls_config() -> BenchResult<Arc<rustls::ServerConfig>> {
    let cert = rcgen::generate_simple_self_signed(vec!["vms.local".to_owned()])?;
    let key = rustls::pki_types::PrivateKeyDer::try_from(cert.signing_key.serialize_der())?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn notify_ready() {
    if let Ok(path) = std::env::var("NOTIFY_SOCKET") {
        if let Ok(socket) = std::os::unix::net::UnixDatagram::unbound() {
            let _ = socket.send_to(b"READY=1", path);
        }
    }
}

fn main() -> BenchResult<()> {
    let args = Args::from_env();
    let listen = args.required("listen")?.to_owned();
    // The same runtime vmsd builds: multi-threaded, one worker per CPU it may run on.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(listen))
}

async fn serve(listen: String) -> BenchResult<()> {
    let acceptor = TlsAcceptor::from(tls_config()?);
    let listener = TcpListener::bind(&listen).await?;
    let body = body();
    notify_ready();
    loop {
        let (tcp, _) = listener.accept().await?;
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let body = body.clone();
        tokio::spawn(async move {
            let Ok(Ok(tls)) =
                tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
            else {
                return;
            };
            let service = service_fn(move |_req| {
                let body = body.clone();
                async move {
                    let mut response = hyper::Response::new(Full::new(body));
                    response.headers_mut().insert(
                        hyper::header::CONTENT_TYPE,
                        hyper::header::HeaderValue::from_static("application/json"),
                    );
                    Ok::<_, Infallible>(response)
                }
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .max_buf_size(64 * 1024)
                .keep_alive(true);
            let _ = builder.serve_connection(TokioIo::new(tls), service).await;
        });
    }
}
