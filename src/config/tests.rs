//! The configuration's own tests: defaults against SPEC §7, every section's keys and
//! ranges, every problem reported at once, and the shipped config files.

use super::*;

fn errors(text: &str) -> Vec<String> {
    match parse_str(text) {
        Ok(cfg) => panic!("expected errors, parsed {cfg:?}"),
        Err(ConfigErrors(e)) => e,
    }
}

const FULL: &str = r#"
listen = ["0.0.0.0:443", "[::]:443"]
data_dir = "/srv/vmsd"
log = "warn,vmsd=debug"
[tls]
cert = "/etc/vmsd/tls/cert.pem"
key = "/etc/vmsd/tls/key.pem"
hostnames = ["nvr.example", "localhost"]
[auth]
client_token_ttl = "7d"
admin_token_ttl = "1h"
refresh_token_ttl = "90d"
sessions_limit = 3
lockout_threshold = 7
lockout_duration = "30m"
ip_login_limit = 50
ip_login_window = "90s"
password_min_length = 12
[argon2]
memory_kib = 65536
iterations = 3
parallelism = 4
max_concurrent = 4
queue_limit = 0
[limits]
max_body_bytes = 2048
max_connections = 10
header_read_timeout = "5s"
tls_handshake_timeout = "3s"
request_timeout = "1m"
shutdown_grace = "500ms"
audit_max_entries = 5000
ws_sockets_per_account = 4
[license]
prefix = "LIC-ABCD-VA"
[locales]
available = ["en", "ru", "pt-BR"]
[store]
cache_mib = 64
[media]
hook_listen = "[::1]:9000"
hls_url = "http://{host}/hls/{path}/index.m3u8?token={token}"
rtsp_url = "rtsp://10.0.0.5:554/{path}?token={token}"
low_suffix = ".sub"
uri_prefix = "/hls"
stream_token_ttl = "1h"
"#;

#[test]
fn defaults_match_spec() {
    let c = Config::default();
    assert_eq!(c.listen, vec!["0.0.0.0:443".parse::<SocketAddr>().unwrap()]);
    assert_eq!(c.data_dir, PathBuf::from("/var/lib/vmsd"));
    assert_eq!(c.log, "info");
    assert_eq!(c.tls.cert, None);
    assert_eq!(c.tls.key, None);
    assert_eq!(c.tls.hostnames, ["vms.local", "localhost"]);
    assert_eq!(c.auth.client_token_ttl, Duration::from_secs(30 * 86400));
    assert_eq!(c.auth.admin_token_ttl, Duration::from_secs(12 * 3600));
    assert_eq!(c.auth.refresh_token_ttl, Duration::from_secs(30 * 86400));
    assert_eq!(c.limits.ws_sockets_per_account, 16);
    assert_eq!(c.auth.sessions_limit, 10);
    assert_eq!(c.auth.lockout_threshold, 5);
    assert_eq!(c.auth.lockout_duration, Duration::from_secs(15 * 60));
    assert_eq!(c.auth.ip_login_limit, 20);
    assert_eq!(c.auth.ip_login_window, Duration::from_secs(10 * 60));
    assert_eq!(c.auth.password_min_length, 8);
    assert_eq!(c.argon2.memory_kib, 7168);
    assert_eq!(c.argon2.iterations, 5);
    assert_eq!(c.argon2.parallelism, 1);
    assert_eq!(c.argon2.max_concurrent, 2);
    assert_eq!(c.argon2.queue_limit, 64);
    assert_eq!(c.limits.max_body_bytes, 1_048_576);
    assert_eq!(c.limits.max_connections, 1024);
    assert_eq!(c.limits.header_read_timeout, Duration::from_secs(10));
    assert_eq!(c.limits.tls_handshake_timeout, Duration::from_secs(10));
    assert_eq!(c.limits.request_timeout, Duration::from_secs(30));
    assert_eq!(c.limits.shutdown_grace, Duration::from_secs(15));
    assert_eq!(c.license.prefix, "LIC-XXXX-VA");
    assert_eq!(c.locales.available, ["en", "ru"]);
    assert_eq!(c.store.cache_mib, 8);
    assert_eq!(
        c.media.hook_listen,
        Some("127.0.0.1:8181".parse::<SocketAddr>().unwrap())
    );
    assert_eq!(
        c.media.hls_url,
        "https://{host}:8888/{path}/index.m3u8?token={token}"
    );
    assert_eq!(c.media.rtsp_url, "rtsp://{host}:8554/{path}?token={token}");
    assert_eq!(c.media.low_suffix, "_low");
    assert_eq!(c.media.uri_prefix, "");
    assert_eq!(c.media.stream_token_ttl, Duration::from_secs(12 * 3600));
}

#[test]
fn empty_file_is_the_defaults() {
    assert_eq!(parse_str("").unwrap(), Config::default());
}

#[test]
fn full_example_parses() {
    let c = parse_str(FULL).unwrap();
    assert_eq!(
        c.listen,
        vec![
            "0.0.0.0:443".parse::<SocketAddr>().unwrap(),
            "[::]:443".parse().unwrap()
        ]
    );
    assert_eq!(c.data_dir, PathBuf::from("/srv/vmsd"));
    assert_eq!(c.log, "warn,vmsd=debug");
    assert_eq!(c.tls.cert, Some(PathBuf::from("/etc/vmsd/tls/cert.pem")));
    assert_eq!(c.tls.key, Some(PathBuf::from("/etc/vmsd/tls/key.pem")));
    assert_eq!(c.tls.hostnames, ["nvr.example", "localhost"]);
    assert_eq!(
        c.auth,
        AuthConfig {
            client_token_ttl: Duration::from_secs(7 * 86400),
            admin_token_ttl: Duration::from_secs(3600),
            refresh_token_ttl: Duration::from_secs(90 * 86400),
            sessions_limit: 3,
            lockout_threshold: 7,
            lockout_duration: Duration::from_secs(1800),
            ip_login_limit: 50,
            ip_login_window: Duration::from_secs(90),
            password_min_length: 12,
        }
    );
    assert_eq!(
        c.argon2,
        Argon2Config {
            memory_kib: 65536,
            iterations: 3,
            parallelism: 4,
            max_concurrent: 4,
            queue_limit: 0,
        }
    );
    assert_eq!(
        c.limits,
        LimitsConfig {
            max_body_bytes: 2048,
            max_connections: 10,
            header_read_timeout: Duration::from_secs(5),
            tls_handshake_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(60),
            shutdown_grace: Duration::from_millis(500),
            audit_max_entries: 5000,
            ws_sockets_per_account: 4,
        }
    );
    assert_eq!(c.license.prefix, "LIC-ABCD-VA");
    assert_eq!(c.locales.available, ["en", "ru", "pt-BR"]);
    assert_eq!(c.store, StoreConfig { cache_mib: 64 });
    assert_eq!(
        c.media,
        MediaConfig {
            hook_listen: Some("[::1]:9000".parse().unwrap()),
            hls_url: "http://{host}/hls/{path}/index.m3u8?token={token}".to_owned(),
            rtsp_url: "rtsp://10.0.0.5:554/{path}?token={token}".to_owned(),
            low_suffix: ".sub".to_owned(),
            uri_prefix: "/hls".to_owned(),
            stream_token_ttl: Duration::from_secs(3600),
        }
    );
}

#[test]
fn store_cache_mib_range() {
    assert_eq!(
        parse_str("[store]\ncache_mib = 1").unwrap().store.cache_mib,
        1
    );
    assert_eq!(
        parse_str("[store]\ncache_mib = 1024")
            .unwrap()
            .store
            .cache_mib,
        1024
    );
    assert_eq!(
        errors("[store]\ncache_mib = 0\nsize = 1"),
        [
            "unknown key 'store.size'",
            "store.cache_mib: expected an integer from 1 to 1024, got 0",
        ]
    );
    assert_eq!(
        errors("[store]\ncache_mib = 1025"),
        ["store.cache_mib: expected an integer from 1 to 1024, got 1025"]
    );
}

#[test]
fn the_hook_listen_flag_follows_the_same_rule() {
    assert_eq!(parse_hook_listen(""), Ok(None));
    assert_eq!(
        parse_hook_listen("127.0.0.1:0"),
        Ok(Some("127.0.0.1:0".parse().unwrap()))
    );
    assert_eq!(
        parse_hook_listen("[::1]:8181"),
        Ok(Some("[::1]:8181".parse().unwrap()))
    );
    assert!(parse_hook_listen("0.0.0.0:8181")
        .unwrap_err()
        .starts_with("must be a loopback address"));
    assert!(parse_hook_listen("localhost:8181")
        .unwrap_err()
        .starts_with("expected a loopback address"));
}

#[test]
fn hook_listen_is_loopback_or_disabled() {
    let hook = |text: &str| parse_str(&format!("[media]\nhook_listen = {text:?}"));
    assert_eq!(hook("").unwrap().media.hook_listen, None);
    for ok in ["127.0.0.1:8181", "127.8.9.10:1", "[::1]:8181"] {
        assert_eq!(
            hook(ok).unwrap().media.hook_listen,
            Some(ok.parse().unwrap()),
            "{ok}"
        );
    }
    for public in [
        "0.0.0.0:8181",
        "192.168.1.10:8181",
        "[::]:8181",
        "[::ffff:127.0.0.1]:8181",
    ] {
        assert_eq!(
            errors(&format!("[media]\nhook_listen = {public:?}")),
            [format!(
                "media.hook_listen: must be a loopback address (127.0.0.0/8 or ::1), \
                 or \"\" to disable the hook, got {public:?}"
            )]
        );
    }
    let e = errors("[media]\nhook_listen = \"localhost:8181\"");
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("media.hook_listen: expected a loopback address"),
        "{e:?}"
    );
    assert_eq!(errors("[media]\nhook_listen = 8181").len(), 1);
}

#[test]
fn url_templates_need_path_and_token() {
    let template = |key: &str, t: &str| parse_str(&format!("[media]\n{key} = {t:?}"));
    let c = template("rtsp_url", "rtsp://cams.example/{path}?token={token}").unwrap();
    assert_eq!(c.media.rtsp_url, "rtsp://cams.example/{path}?token={token}");
    for bad in [
        "",
        "https://{host}/{path}/index.m3u8",
        "https://{host}/index.m3u8?token={token}",
        "https://{host}/{path} ?token={token}",
        "https://{host}/{path}?token={token}\n",
    ] {
        for key in ["hls_url", "rtsp_url"] {
            let e = errors(&format!("[media]\n{key} = {bad:?}"));
            assert_eq!(e.len(), 1, "{key} {bad:?}: {e:?}");
            assert!(
                e[0].starts_with(&format!("media.{key}: expected a URL template")),
                "{e:?}"
            );
        }
    }
    let long = format!(
        "https://{{host}}/{{path}}?token={{token}}&x={}",
        "a".repeat(1024)
    );
    assert_eq!(errors(&format!("[media]\nhls_url = {long:?}")).len(), 1);
    assert_eq!(errors("[media]\nhls_url = 5").len(), 1);
    assert_eq!(
        errors("[media]\nhls_url = \"https://{hots}/{path}?token={token}&x={oops\""),
        [
            "media.hls_url: unknown placeholder {hots}, {oops (the placeholders are {host}, \
          {path} and {token}), got \"https://{hots}/{path}?token={token}&x={oops\""
        ]
    );
}

#[test]
fn media_suffix_prefix_and_ttl() {
    let c = parse_str(
        "[media]\nlow_suffix = \"-sub~2.x_\"\nuri_prefix = \"/\"\nstream_token_ttl = \"1m\"",
    )
    .unwrap();
    assert_eq!(c.media.low_suffix, "-sub~2.x_");
    assert_eq!(c.media.uri_prefix, "/");
    assert_eq!(c.media.stream_token_ttl, Duration::from_secs(60));
    let c = parse_str("[media]\nstream_token_ttl = \"30d\"").unwrap();
    assert_eq!(c.media.stream_token_ttl, Duration::from_secs(30 * 86400));

    let e = errors(&format!(
        "[media]\nlow_suffix = \"{}\"\nuri_prefix = \"hls\"\nstream_token_ttl = \"59s\"\nbogus = 1",
        "x".repeat(33)
    ));
    assert_eq!(e.len(), 4, "{e:?}");
    assert_eq!(e[0], "unknown key 'media.bogus'");
    assert!(
        e[1].starts_with("media.low_suffix: expected 1 to 32 characters"),
        "{e:?}"
    );
    assert!(
        e[2].starts_with("media.uri_prefix: expected \"\" or a URI path"),
        "{e:?}"
    );
    assert_eq!(
        e[3],
        "media.stream_token_ttl: expected a duration from \"1m\" to \"30d\" like \"12h\", got \"59s\""
    );
    for bad_suffix in ["", "_low/", "lo w", "_lów", "%20"] {
        assert_eq!(
            errors(&format!("[media]\nlow_suffix = {bad_suffix:?}")).len(),
            1,
            "{bad_suffix:?}"
        );
    }
    for bad_prefix in ["/hls?x", "/h ls", "/hls#", "hls/"] {
        assert_eq!(
            errors(&format!("[media]\nuri_prefix = {bad_prefix:?}")).len(),
            1,
            "{bad_prefix:?}"
        );
    }
    for bad_ttl in ["\"31d\"", "\"0s\"", "\"500ms\"", "43200"] {
        assert_eq!(
            errors(&format!("[media]\nstream_token_ttl = {bad_ttl}")).len(),
            1,
            "{bad_ttl}"
        );
    }
}

#[test]
fn unknown_top_level_key() {
    assert_eq!(errors("lisen = [\"0.0.0.0:1\"]"), ["unknown key 'lisen'"]);
    assert_eq!(errors("[metrics]\nport = 1"), ["unknown key 'metrics'"]);
}

#[test]
fn unknown_nested_key() {
    assert_eq!(
        errors("[auth]\nsesions_limit = 5"),
        ["unknown key 'auth.sesions_limit'"]
    );
}

#[test]
fn all_problems_reported_together() {
    let e =
        errors("[auth]\nsessions_limit = \"ten\"\nbogus = 1\n[limits]\nrequest_timeout = \"0s\"\n");
    assert_eq!(e.len(), 3, "{e:?}");
    assert!(e.contains(&"unknown key 'auth.bogus'".to_owned()), "{e:?}");
    assert!(
        e.contains(
            &"auth.sessions_limit: expected an integer from 1 to 1000, got \"ten\"".to_owned()
        ),
        "{e:?}"
    );
    assert!(
        e.iter().any(
            |m| m.starts_with("limits.request_timeout: expected a duration")
                && m.ends_with("got \"0s\"")
        ),
        "{e:?}"
    );
    let shown = ConfigErrors(e).to_string();
    assert_eq!(shown.lines().count(), 3);
}

#[test]
fn range_checks() {
    let e = errors(
        "[auth]\npassword_min_length = 7\nip_login_limit = 100001\n\
         [argon2]\nparallelism = 4\nmemory_kib = 31\niterations = 0\n\
         [limits]\nmax_body_bytes = 1023\nmax_connections = 0\naudit_max_entries = 99\n\
         ws_sockets_per_account = 0\n",
    );
    assert_eq!(
        e,
        [
            "auth.ip_login_limit: expected an integer from 1 to 100000, got 100001",
            "auth.password_min_length: expected an integer from 8 to 128, got 7",
            "argon2.iterations: expected an integer from 1 to 16, got 0",
            "argon2.memory_kib: expected an integer from 32 to 1048576, got 31",
            "limits.max_body_bytes: expected an integer from 1024 to 67108864, got 1023",
            "limits.max_connections: expected an integer from 1 to 1000000, got 0",
            "limits.audit_max_entries: expected an integer from 100 to 100000000, got 99",
            "limits.ws_sockets_per_account: expected an integer from 1 to 100000, got 0",
        ]
    );
    assert!(parse_str("[argon2]\nqueue_limit = 0\nmemory_kib = 8").is_ok());
}

#[test]
fn durations() {
    assert_eq!(parse_duration("10s"), Some(Duration::from_secs(10)));
    assert_eq!(parse_duration("15m"), Some(Duration::from_secs(900)));
    assert_eq!(parse_duration("12h"), Some(Duration::from_secs(43200)));
    assert_eq!(parse_duration("30d"), Some(Duration::from_secs(2_592_000)));
    assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
    assert_eq!(parse_duration("0s"), Some(Duration::ZERO));
    for bad in [
        "",
        "10",
        "s",
        "-5s",
        "1.5h",
        "10 s",
        "10S",
        "5w",
        "1h30m",
        "99999999999999999999d",
    ] {
        assert_eq!(parse_duration(bad), None, "{bad:?}");
    }
    let e = errors(
        "[auth]\nadmin_token_ttl = 3600\nlockout_duration = \"0m\"\nrefresh_token_ttl = \"0d\"",
    );
    assert_eq!(e.len(), 3, "{e:?}");
    assert!(
        e[1].starts_with("auth.refresh_token_ttl: expected a duration"),
        "{e:?}"
    );
    assert!(
        e[0].starts_with("auth.admin_token_ttl: expected a duration"),
        "{e:?}"
    );
    assert!(e[0].ends_with("got 3600"), "{e:?}");
}

#[test]
fn only_cert_set_is_one_error() {
    let e = errors("[tls]\ncert = \"/etc/vmsd/tls/cert.pem\"");
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("tls.cert is set but tls.key is not"),
        "{e:?}"
    );
    let e = errors("[tls]\nkey = \"/etc/vmsd/tls/key.pem\"");
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("tls.key is set but tls.cert is not"),
        "{e:?}"
    );
}

#[test]
fn listen_errors_name_the_index() {
    let e = errors("listen = [\"127.0.0.1:80\", \"nope\", 5, \"127.0.0.1:80\"]");
    assert_eq!(
        e,
        [
            "listen[1]: expected an address like \"0.0.0.0:443\" or \"[::]:443\", got \"nope\"",
            "listen[2]: expected an address like \"0.0.0.0:443\" or \"[::]:443\", got 5",
            "listen[3]: duplicate of listen[0] (127.0.0.1:80)",
        ]
    );
    assert_eq!(errors("listen = []").len(), 1);
    assert_eq!(errors("listen = \"0.0.0.0:443\"").len(), 1);
}

#[test]
fn strings_lists_and_tables() {
    let e = errors(
        "log = \"\"\ndata_dir = 1\nauth = 5\n[tls]\nhostnames = [\"ok\", \"\", \"a b\"]\n\
         [license]\nprefix = \"\"\n[locales]\navailable = [\"en\", \"e\", \"en\", \"r$\"]\n",
    );
    assert_eq!(
        e,
        [
            "data_dir: expected a non-empty string, got 1",
            "log: expected a non-empty string, got \"\"",
            "tls.hostnames[1]: expected a host name (1 to 253 ASCII characters, no spaces), got \"\"",
            "tls.hostnames[2]: expected a host name (1 to 253 ASCII characters, no spaces), got \"a b\"",
            "auth: expected a table, got 5",
            "license.prefix: expected a string of 1 to 64 characters, got \"\"",
            "locales.available[1]: expected a locale code of 2 to 10 characters from a-z, A-Z, '_' and '-', got \"e\"",
            "locales.available[2]: duplicate locale \"en\"",
            "locales.available[3]: expected a locale code of 2 to 10 characters from a-z, A-Z, '_' and '-', got \"r$\"",
        ]
    );
    assert_eq!(errors("[locales]\navailable = []").len(), 1);
    assert_eq!(errors("[tls]\nhostnames = []").len(), 1);
    let long = "x".repeat(65);
    assert_eq!(errors(&format!("[license]\nprefix = \"{long}\"")).len(), 1);
}

#[test]
fn bad_log_filter() {
    let e = errors("log = \"vmsd=loud\"");
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].starts_with("log: expected a tracing filter"), "{e:?}");
}

#[test]
fn syntax_error_is_one_line_with_position() {
    let e = errors("log = \"info\"\n[auth\n");
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].starts_with("invalid TOML at line 2"), "{e:?}");
    assert!(!e[0].contains('\n'), "{e:?}");
}

#[test]
fn unreadable_file_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.toml");
    let ConfigErrors(e) = load(&path).unwrap_err();
    assert_eq!(e.len(), 1);
    assert!(e[0].contains(&path.display().to_string()), "{e:?}");
}

#[test]
fn shipped_config_files_parse() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let appliance = load(&dir.join("vmsd.toml")).unwrap();
    assert_eq!(appliance, Config::default());
    let dev = load(&dir.join("dev.toml")).unwrap();
    assert_eq!(
        dev.listen,
        vec!["127.0.0.1:8443".parse::<SocketAddr>().unwrap()]
    );
    assert_eq!(dev.data_dir, PathBuf::from("./data"));
    assert_eq!(dev.log, "info,vmsd=debug");
}

#[test]
fn push_section_defaults_values_and_errors() {
    let c = Config::default();
    assert_eq!(c.push.app_key, "key");
    assert_eq!(c.push.app_secret, None);
    assert_eq!(c.push.path, "/pusher");
    assert_eq!(c.push.activity_timeout, Duration::from_secs(30));
    assert_eq!(c.push.max_subscriptions, 100);
    let c = parse_str(
        "[push]\napp_key = \"app-key\"\napp_secret = \"0123456789abcdef0123\"\npath = \"\"\n\
         activity_timeout = \"2m\"\nmax_subscriptions = 5",
    )
    .unwrap();
    assert_eq!(c.push.app_key, "app-key");
    assert_eq!(
        c.push.app_secret.as_ref().map(SecretString::expose),
        Some("0123456789abcdef0123")
    );
    assert!(!format!("{c:?}").contains("0123456789abcdef0123"));
    assert_eq!(c.push.path, "");
    assert_eq!(c.push.activity_timeout, Duration::from_secs(120));
    assert_eq!(c.push.max_subscriptions, 5);
    let e = errors(
        "[push]\napp_key = \"a/b\"\napp_secret = \"short-secret\"\npath = \"pusher/\"\n\
         activity_timeout = \"2h\"\nmax_subscriptions = 0\nextra = 1",
    );
    assert_eq!(e.len(), 6, "{e:?}");
    assert_eq!(e[0], "unknown key 'push.extra'");
    assert!(e.iter().all(|m| !m.contains("short-secret")), "{e:?}");
    assert!(e
        .iter()
        .any(|m| m.starts_with("push.app_secret: expected 16 to 256")));
    assert!(e.iter().any(|m| m.starts_with("push.path: expected")));
    assert!(
        e.iter()
            .any(|m| m
                .starts_with("push.activity_timeout: expected a duration from \"1s\" to \"1h\""))
    );
    assert!(e
        .iter()
        .any(|m| m.starts_with("push.max_subscriptions: expected an integer from 1 to 10000")));
    assert!(e.iter().any(|m| m.starts_with("push.app_key: expected")));
}

#[test]
fn a_push_path_under_the_console_is_refused() {
    // The console answers every /console/... path before routing: a socket there is unreachable.
    for path in ["/console", "/console/pusher"] {
        let e = errors(&format!("[push]\npath = \"{path}\"\n"));
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].starts_with("push.path: expected"), "{e:?}");
        assert!(e[0].contains("not the admin console's /console"), "{e:?}");
    }
    assert_eq!(
        parse_str("[push]\npath = \"/consoles\"\n")
            .unwrap()
            .push
            .path,
        "/consoles"
    );
}

/// A `[directory]` section with `extra` appended, its password file in `dir`.
#[cfg(feature = "directory")]
fn directory_section(dir: &Path, extra: &str) -> String {
    let pw = dir.join("directory.pw");
    std::fs::write(&pw, "s3cret-bind\n").unwrap();
    format!(
        "[directory]\nurls = [\"ldaps://dc1.corp.example:636\", \"ldap://dc2.corp.example\"]\n\
         start_tls = true\nbind_dn = \"cn=vmsd,dc=corp,dc=example\"\n\
         bind_password_file = {:?}\nuser_base = \"ou=people,dc=corp,dc=example\"\n\
         user_filter = \"(&(objectClass=person)(uid={{login}}))\"\n{extra}",
        pw.display().to_string()
    )
}

#[cfg(feature = "directory")]
#[test]
fn a_ca_file_that_is_no_pem_certificate_is_refused() {
    // The same reading as start-up's (`directory::ldap::ca_file_roots`), so check-config
    // refuses what the daemon would refuse to start with.
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, "not a certificate\n").unwrap();
    let e = errors(&directory_section(
        dir.path(),
        &format!("ca_file = {:?}\n", ca.display().to_string()),
    ));
    assert_eq!(
        e,
        [format!(
            "directory.ca_file: {} holds no certificate",
            ca.display()
        )]
    );
}

#[cfg(feature = "directory")]
#[test]
fn directory_section_defaults_and_values() {
    assert_eq!(Config::default().directory, None);
    let dir = tempfile::tempdir().unwrap();
    let c = parse_str(&directory_section(dir.path(), "")).unwrap();
    let d = c.directory.unwrap();
    assert_eq!(
        d.urls,
        ["ldaps://dc1.corp.example:636", "ldap://dc2.corp.example"]
    );
    assert!(d.start_tls && !d.allow_insecure);
    assert_eq!(d.ca_file, None);
    assert_eq!(d.bind_dn.as_deref(), Some("cn=vmsd,dc=corp,dc=example"));
    assert_eq!(
        d.bind_password.as_ref().map(SecretString::expose),
        Some("s3cret-bind")
    );
    assert_eq!(d.login_attribute, "uid");
    assert_eq!(d.id_attribute, "entryUUID");
    assert_eq!(d.name_attribute, "displayName");
    assert_eq!(d.groups, GroupSource::MemberOf);
    assert!(!d.nested_groups);
    assert_eq!(d.timeout, Duration::from_secs(5));
    assert_eq!(d.max_concurrent, 4);
    assert_eq!(d.queue_limit, 64);
    assert_eq!(d.sync_interval, Duration::from_secs(15 * 60));
    assert!(d.maps.is_empty());
    assert!(!format!("{d:?}").contains("s3cret-bind"));

    let c = parse_str(&directory_section(
        dir.path(),
        "login_attribute = \"sAMAccountName\"\nid_attribute = \"objectGUID\"\n\
         name_attribute = \"cn\"\ngroups = \"member-search\"\nnested_groups = true\n\
         timeout = \"2s\"\nmax_concurrent = 8\nqueue_limit = 0\nsync_interval = \"0s\"\n\
         [[directory.map]]\ngroup = \"cn=admins,dc=corp,dc=example\"\nuser_type = \"admin\"\n\
         [[directory.map]]\ngroup = \"cn=guards,dc=corp,dc=example\"\nuser_type = \"user\"\n\
         permissions = [\"archives-show\", \"ptz\"]\ncameras = [12, 13]\ncamera_groups = [3]\n",
    ))
    .unwrap();
    let d = c.directory.unwrap();
    assert_eq!(d.login_attribute, "sAMAccountName");
    assert_eq!(d.id_attribute, "objectGUID");
    assert_eq!(d.groups, GroupSource::MemberSearch);
    assert!(d.nested_groups);
    assert_eq!(d.timeout, Duration::from_secs(2));
    assert_eq!((d.max_concurrent, d.queue_limit), (8, 0));
    assert!(d.sync_interval.is_zero());
    assert_eq!(
        d.maps,
        vec![
            DirectoryMap {
                group: "cn=admins,dc=corp,dc=example".into(),
                role: MapRole::Admin,
                permissions: vec![],
                cameras: vec![],
                camera_groups: vec![],
            },
            DirectoryMap {
                group: "cn=guards,dc=corp,dc=example".into(),
                role: MapRole::User,
                permissions: vec![12, 15],
                cameras: vec![12, 13],
                camera_groups: vec![3],
            },
        ]
    );
}

#[cfg(feature = "directory")]
#[test]
fn directory_requires_urls_base_and_filter() {
    let e = errors("[directory]\nstart_tls = true");
    assert_eq!(
        e,
        [
            "directory.urls is required when [directory] is set",
            "directory.user_base is required when [directory] is set",
            "directory.user_filter is required when [directory] is set",
        ]
    );
}

#[cfg(feature = "directory")]
#[test]
fn directory_problems_are_reported_together() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.pw");
    let text = format!(
        "[directory]\nurls = [\"ldap://dc1.example\", \"http://dc2.example\", \"ldaps://\", \
         \"ldaps://dc3:99999\", \"ldaps://dc.bücher.example\"]\nbind_dn = \"cn=vmsd\"\n\
         bind_password_file = {:?}\n\
         user_base = \"dc=example\"\nuser_filter = \"(uid=someone)\"\nid_attribute = \"bad name\"\n\
         groups = \"member\"\ntimeout = \"0s\"\nmax_concurrent = 0\nsync_interval = \"10s\"\n\
         ca_file = {:?}\nfoo = 1\n\
         [[directory.map]]\nuser_type = \"root\"\npermissions = [\"streams-update\", \"nope\"]\n\
         cameras = [0]\nextra = true\n",
        missing.display().to_string(),
        dir.path().join("ca.pem").display().to_string()
    );
    let e = errors(&text);
    let has = |prefix: &str| e.iter().any(|m| m.starts_with(prefix));
    assert!(has("unknown key 'directory.foo'"), "{e:?}");
    assert!(
        has("directory.urls[0]: \"ldap://dc1.example\" is plain LDAP"),
        "{e:?}"
    );
    assert!(
        has("directory.urls[1]: expected a URL starting with ldap:// or ldaps://"),
        "{e:?}"
    );
    assert!(has("directory.urls[2]: expected ldap[s]://HOST"), "{e:?}");
    assert!(has("directory.urls[3]: expected ldap[s]://HOST"), "{e:?}");
    // The ASCII-only URL parser under ldap3 (Cargo.lock): refused here, not at the first login.
    assert!(
        e.iter().any(
            |m| m.starts_with("directory.urls[4]: expected ldap[s]://HOST")
                && m.contains("ASCII form (xn--...)")
        ),
        "{e:?}"
    );
    assert!(has("directory.ca_file: cannot read"), "{e:?}");
    assert!(
        has(&format!(
            "directory.bind_password_file: {}: cannot read it",
            missing.display()
        )),
        "{e:?}"
    );
    assert!(has("directory.user_filter: must contain {login}"), "{e:?}");
    assert!(
        has("directory.id_attribute: expected an LDAP attribute name"),
        "{e:?}"
    );
    assert!(
        has("directory.groups: expected \"memberOf\" or \"member-search\""),
        "{e:?}"
    );
    assert!(
        has("directory.timeout: expected a duration greater than zero"),
        "{e:?}"
    );
    assert!(
        has("directory.max_concurrent: expected an integer from 1 to 64"),
        "{e:?}"
    );
    assert!(has("directory.sync_interval: expected \"0s\""), "{e:?}");
    assert!(has("unknown key 'directory.map[0].extra'"), "{e:?}");
    assert!(has("directory.map[0].group is required"), "{e:?}");
    assert!(
        has("directory.map[0].user_type: expected \"admin\" or \"user\""),
        "{e:?}"
    );
    // An admin permission is not one a mapped user can hold.
    assert!(
        has("directory.map[0].permissions[0]: expected the name"),
        "{e:?}"
    );
    assert!(
        has("directory.map[0].permissions[1]: expected the name"),
        "{e:?}"
    );
    assert!(has("directory.map[0].cameras[0]: expected an id"), "{e:?}");
    assert_eq!(e.len(), 20, "{e:?}");
}

#[cfg(feature = "directory")]
#[test]
fn directory_plain_ldap_needs_start_tls_or_allow_insecure() {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "x").unwrap();
    let base = "urls = [\"ldap://127.0.0.1:3890\"]\nuser_base = \"dc=x\"\n\
                user_filter = \"(uid={login})\"\n";
    let e = errors(&format!("[directory]\n{base}"));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].contains("is plain LDAP"), "{e:?}");
    for extra in ["start_tls = true", "allow_insecure = true"] {
        let c = parse_str(&format!("[directory]\n{base}{extra}\n")).unwrap();
        assert_eq!(c.directory.unwrap().urls, ["ldap://127.0.0.1:3890"]);
    }
    // Anonymous search: no bind_dn, so no password file either.
    let c = parse_str(&format!("[directory]\n{base}allow_insecure = true\n")).unwrap();
    assert_eq!(c.directory.unwrap().bind_password, None);
}

#[cfg(feature = "directory")]
#[test]
fn directory_filter_must_parse_and_password_file_be_set_and_filled() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pw");
    std::fs::write(&empty, "\n").unwrap();
    let base = "urls = [\"ldaps://dc\"]\nuser_base = \"dc=x\"\n";
    let e = errors(&format!(
        "[directory]\n{base}user_filter = \"(&(uid={{login}})\"\nbind_dn = \"cn=a\"\n"
    ));
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(
        e[0].starts_with("directory.bind_password_file is required when directory.bind_dn"),
        "{e:?}"
    );
    assert!(
        e[1].starts_with("directory.user_filter: not a valid LDAP search filter"),
        "{e:?}"
    );
    let e = errors(&format!(
        "[directory]\n{base}user_filter = \"(uid={{login}})\"\nbind_password_file = {:?}\n",
        empty.display().to_string()
    ));
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(e[0].starts_with("directory.bind_password_file is set but directory.bind_dn is not"));
    assert!(e[1].ends_with("the file is empty: it must hold the bind password on its first line"));
}

#[cfg(not(feature = "directory"))]
#[test]
fn directory_section_needs_the_feature() {
    assert_eq!(
        errors("[directory]\nurls = [\"ldaps://dc\"]"),
        ["directory: this build of vmsd has no directory support (cargo feature \"directory\")"]
    );
}
