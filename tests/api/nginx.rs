//! The shipped `config/nginx-media.conf` in front of a real nginx (Debian's `nginx-light`,
//! started unprivileged with its own prefix on a loopback port): nginx serves an HLS
//! playlist and its segment from a temp dir behind `auth_request` to vmsd's hook. The URL
//! `GET /api/v1/cameras/{id}/streams` hands out plays through nginx; after the session is
//! revoked, or with another user's token, nginx refuses it.
//!
//! nginx is required: without it the test fails, unless `VMSD_SKIP_NGINX=1` (`.ci/run`
//! installs `nginx-light`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use serde_json::json;

use crate::common::free_port;
use crate::video::{attach, create_user, Video, PASSWORD};

/// The playlist MediaMTX or ffmpeg would write: relative segment URIs, one per line.
const PLAYLIST: &str = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n\
                        #EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:2.000,\nseg0.ts\n#EXT-X-ENDLIST\n";
const SEGMENT: &[u8] = b"\x47\x40\x00\x10 not really MPEG-TS, but nginx does not care";

fn nginx_binary() -> Option<PathBuf> {
    let candidates = [
        PathBuf::from("/usr/sbin/nginx"),
        PathBuf::from("/usr/bin/nginx"),
    ];
    if let Some(found) = candidates.into_iter().find(|p| p.exists()) {
        return Some(found);
    }
    let out = Command::new("sh")
        .args(["-c", "command -v nginx"])
        .output()
        .ok()?;
    let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (!path.is_empty()).then(|| PathBuf::from(path))
}

/// nginx running in the foreground (one process, no master) until dropped.
struct Nginx {
    child: Child,
    error_log: PathBuf,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Nginx {
    /// The shipped server block, placeholders filled, inside a minimal nginx.conf whose
    /// every path is under `prefix`.
    fn start(binary: &Path, prefix: &Path, listen: &str, root: &Path, hook: &str) -> Nginx {
        let shipped = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("config/nginx-media.conf"),
        )
        .unwrap();
        let server = shipped
            .replace("@LISTEN@", listen)
            .replace("@ROOT@", root.to_str().unwrap())
            .replace("@HOOK@", hook);
        assert!(!server.contains('@'), "a placeholder is left:\n{server}");
        let p = prefix.display();
        let conf = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid {p}/nginx.pid;\n\
             error_log {p}/error.log info;\nevents {{ worker_connections 64; }}\n\
             http {{\n  access_log {p}/access.log;\n  client_body_temp_path {p}/body;\n\
             proxy_temp_path {p}/proxy;\n  fastcgi_temp_path {p}/fastcgi;\n\
             uwsgi_temp_path {p}/uwsgi;\n  scgi_temp_path {p}/scgi;\n{server}\n}}\n"
        );
        let conf_path = prefix.join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let error_log = prefix.join("error.log");
        let child = Command::new(binary)
            .arg("-p")
            .arg(prefix)
            .arg("-c")
            .arg(&conf_path)
            .arg("-e")
            .arg(&error_log)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Nginx { child, error_log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.error_log).unwrap_or_default()
    }
}

/// `GET url` over plain HTTP: (status, body).
async fn fetch(url: &str) -> (u16, Bytes) {
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (authority, path) = rest.split_at(rest.find('/').unwrap());
    let tcp = tokio::net::TcpStream::connect(authority).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = http::Request::get(path)
        .header("host", authority)
        .body(Empty::<Bytes>::new())
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.into_body().collect().await.unwrap().to_bytes())
}

#[tokio::test]
async fn nginx_serves_hls_only_to_valid_stream_tokens() {
    let Some(binary) = nginx_binary() else {
        if std::env::var("VMSD_SKIP_NGINX").as_deref() == Ok("1") {
            eprintln!("nginx not installed; skipped (VMSD_SKIP_NGINX=1)");
            return;
        }
        panic!("nginx is not installed (apt-get install nginx-light), or set VMSD_SKIP_NGINX=1");
    };
    let port = free_port();
    let v = Video::start_with(|c| {
        c.media.hls_url = format!("http://{{host}}:{port}/{{path}}/index.m3u8?token={{token}}");
    })
    .await;
    let s = &v.s;

    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("hls");
    let door = root.join("site/door");
    std::fs::create_dir_all(&door).unwrap();
    std::fs::write(door.join("index.m3u8"), PLAYLIST).unwrap();
    std::fs::write(door.join("seg0.ts"), SEGMENT).unwrap();
    let prefix = work.path().join("nginx");
    std::fs::create_dir_all(&prefix).unwrap();
    let nginx = Nginx::start(
        &binary,
        &prefix,
        &format!("127.0.0.1:{port}"),
        &root,
        &s.hook_addr.unwrap().to_string(),
    );
    crate::common::wait_for(Duration::from_secs(10), "nginx to listen", || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
    })
    .await;

    // The URL the API hands out, asked for by the host the client used.
    let token = v.login().await;
    let auth = format!("Bearer {token}");
    let r = s
        .raw(
            "GET",
            &format!("/api/v1/cameras/{}/streams", v.cam_a),
            &[("authorization", &auth), ("host", "127.0.0.1:443")],
            "",
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let url = r.body["url"].as_str().unwrap().to_owned();
    let stream = crate::video::token_of(&url);
    assert_eq!(
        url,
        format!("http://127.0.0.1:{port}/site/door/index.m3u8?token={stream}")
    );

    let (status, playlist) = fetch(&url).await;
    assert_eq!(status, 200, "playlist; nginx log:\n{}", nginx.log());
    let playlist = String::from_utf8(playlist.to_vec()).unwrap();
    // The shipped config rewrote the segment URI to carry the token.
    let segment_line = format!("seg0.ts?token={stream}");
    assert!(playlist.contains(&segment_line), "{playlist}");
    let segment_url = format!("http://127.0.0.1:{port}/site/door/{segment_line}");
    let (status, body) = fetch(&segment_url).await;
    assert_eq!(status, 200, "segment; nginx log:\n{}", nginx.log());
    assert_eq!(&body[..], SEGMENT);

    // No token, a forged one, the low-stream path of another camera's file layout: refused.
    let bare = format!("http://127.0.0.1:{port}/site/door/index.m3u8");
    assert_eq!(fetch(&bare).await.0, 401);
    assert_eq!(
        fetch(&format!("{bare}?token={}", &stream[..118])).await.0,
        401
    );
    assert_eq!(
        fetch(&format!("http://127.0.0.1:{port}/site/door/seg0.ts"))
            .await
            .0,
        401
    );

    // Another user's valid token (for their own camera) does not open this camera.
    let other = create_user(s, &v.admin, "neighbour", json!({})).await;
    attach(s, &v.admin, other, &[v.cam_b]).await;
    let other_token = s.login("neighbour", PASSWORD).await;
    let other_stream = v.stream_token(&other_token, v.cam_b).await;
    assert_eq!(fetch(&format!("{bare}?token={other_stream}")).await.0, 403);
    assert_eq!(
        fetch(&format!(
            "http://127.0.0.1:{port}/site/door/seg0.ts?token={other_stream}"
        ))
        .await
        .0,
        403
    );

    // The session revoked: the same URL, playlist and segment, stops working at once.
    assert_eq!(fetch(&url).await.0, 200);
    let r = s.call("POST", "/api/v1/logout", Some(&token), None).await;
    assert_eq!(r.status, 200);
    assert_eq!(fetch(&url).await.0, 401, "after logout");
    assert_eq!(fetch(&segment_url).await.0, 401, "segment after logout");
    drop(nginx);
    v.s.stop().await;
}
