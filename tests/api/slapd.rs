//! A real OpenLDAP server for the directory tests (SPEC §10): Debian's `slapd`, started from
//! a temp-dir `slapd.conf` (back_mdb, the memberof overlay) on two loopback ports, plain
//! LDAP (with StartTLS) and LDAPS, with a test CA and server certificate made by rcgen at run
//! time, seeded with `ldapadd` and changed with `ldapmodify` / `ldapdelete` (ldap-utils).
//! Under root it runs as `nobody` (slapd's `-u`/`-g`), otherwise as the test's user. Its
//! stats log (`-d 256`: every connection and operation) lets a test count what reached it.
//!
//! slapd is required: without it the tests fail and say to run `.ci/run`, which installs it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SanType};

use crate::common::free_port;

pub const SUFFIX: &str = "dc=example,dc=test";
pub const ROOT_DN: &str = "cn=admin,dc=example,dc=test";
const ROOT_PW: &str = "root-secret";
pub const SERVICE_DN: &str = "cn=vmsd,ou=services,dc=example,dc=test";
pub const SERVICE_PW: &str = "service-secret";
pub const PEOPLE: &str = "ou=people,dc=example,dc=test";
pub const GROUPS: &str = "ou=groups,dc=example,dc=test";

const SLAPD: &str = "/usr/sbin/slapd";

/// The tree every test starts from: the search account, people and groups come per test.
const BASE_LDIF: &str =
    "dn: dc=example,dc=test\nobjectClass: dcObject\nobjectClass: organization\n\
o: Example\ndc: example\n\n\
dn: ou=people,dc=example,dc=test\nobjectClass: organizationalUnit\nou: people\n\n\
dn: ou=groups,dc=example,dc=test\nobjectClass: organizationalUnit\nou: groups\n\n\
dn: ou=services,dc=example,dc=test\nobjectClass: organizationalUnit\nou: services\n\n\
dn: cn=vmsd,ou=services,dc=example,dc=test\nobjectClass: person\ncn: vmsd\nsn: vmsd\n\
userPassword: service-secret\n";

pub struct Slapd {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub ldap_port: u16,
    pub ldaps_port: u16,
    /// The CA that signed the server's certificate.
    pub ca: PathBuf,
    /// Another CA, which did not.
    pub wrong_ca: PathBuf,
    log: PathBuf,
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A CA certificate and key (PEM).
fn ca(name: &str) -> (String, KeyPair, CertificateParams) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key, params)
}

fn chown_tree(path: &Path) {
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
    for entry in walk(path) {
        std::os::unix::fs::chown(&entry, Some(nobody.uid.as_raw()), Some(nobody.gid.as_raw()))
            .unwrap();
    }
}

fn walk(path: &Path) -> Vec<PathBuf> {
    let mut all = vec![path.to_path_buf()];
    if path.is_dir() {
        for e in std::fs::read_dir(path).unwrap() {
            all.extend(walk(&e.unwrap().path()));
        }
    }
    all
}

impl Slapd {
    /// A running slapd with the base tree (and the search account) in it.
    pub fn start() -> Slapd {
        assert!(
            Path::new(SLAPD).exists() && which("ldapadd"),
            "slapd and ldap-utils are not installed: run .ci/run (it installs them with \
             apt-get install slapd ldap-utils)"
        );
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::create_dir(p.join("db")).unwrap();
        let (ca_pem, ca_key, ca_params) = ca("vmsd test directory CA");
        let (wrong_pem, _, _) = ca("some other CA");
        let issuer = Issuer::new(ca_params, ca_key);
        let server_key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params
            .subject_alt_names
            .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
        let server = params.signed_by(&server_key, &issuer).unwrap();
        std::fs::write(p.join("ca.pem"), ca_pem).unwrap();
        std::fs::write(p.join("wrong-ca.pem"), wrong_pem).unwrap();
        std::fs::write(p.join("server.pem"), server.pem()).unwrap();
        std::fs::write(p.join("server.key"), server_key.serialize_pem()).unwrap();
        let d = p.display();
        let conf = format!(
            "include /etc/ldap/schema/core.schema\n\
             include /etc/ldap/schema/cosine.schema\n\
             include /etc/ldap/schema/inetorgperson.schema\n\
             include /etc/ldap/schema/nis.schema\n\
             modulepath /usr/lib/ldap\nmoduleload back_mdb\nmoduleload memberof\n\
             pidfile {d}/slapd.pid\nargsfile {d}/slapd.args\n\
             TLSCACertificateFile {d}/ca.pem\nTLSCertificateFile {d}/server.pem\n\
             TLSCertificateKeyFile {d}/server.key\n\
             database mdb\nmaxsize 10485760\nsuffix \"{SUFFIX}\"\nrootdn \"{ROOT_DN}\"\n\
             rootpw {ROOT_PW}\ndirectory {d}/db\noverlay memberof\n\
             access to attrs=userPassword by self write by anonymous auth by * none\n\
             access to * by * read\n"
        );
        std::fs::write(p.join("slapd.conf"), conf).unwrap();
        if is_root() {
            chown_tree(p);
        }
        let mut slapd = Slapd {
            child: None,
            ldap_port: free_port(),
            ldaps_port: free_port(),
            ca: p.join("ca.pem"),
            wrong_ca: p.join("wrong-ca.pem"),
            log: p.join("slapd.log"),
            dir,
        };
        slapd.launch();
        slapd.add(BASE_LDIF);
        slapd
    }

    /// Starts slapd on its ports and waits until it accepts connections.
    pub fn launch(&mut self) {
        assert!(self.child.is_none(), "slapd already runs");
        let p = self.dir.path();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut cmd = Command::new(SLAPD);
        cmd.arg("-f")
            .arg(p.join("slapd.conf"))
            .arg("-h")
            .arg(format!(
                "ldap://127.0.0.1:{}/ ldaps://127.0.0.1:{}/",
                self.ldap_port, self.ldaps_port
            ))
            .args(["-d", "256"]);
        if is_root() {
            cmd.args(["-u", "nobody", "-g", "nogroup"]);
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", self.ldap_port)).is_err() {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("slapd exited ({status}):\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "slapd did not start:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops slapd (the data stays for `launch`).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let deadline = Instant::now() + Duration::from_secs(10);
            while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `ldap://127.0.0.1:PORT` (StartTLS or plain).
    pub fn ldap_url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.ldap_port)
    }

    /// `ldaps://127.0.0.1:PORT`.
    pub fn ldaps_url(&self) -> String {
        format!("ldaps://127.0.0.1:{}", self.ldaps_port)
    }

    fn tool(&self, tool: &str, extra: &[&str], input: &str) {
        let out = crate::cli::run_with_stdin(
            Command::new(tool)
                .args(["-x", "-H", &self.ldap_url(), "-D", ROOT_DN, "-w", ROOT_PW])
                .args(extra),
            input,
        );
        assert!(
            out.status.success(),
            "{tool} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            input
        );
    }

    /// `ldapadd` of LDIF entries.
    pub fn add(&self, ldif: &str) {
        self.tool("ldapadd", &[], ldif);
    }

    /// `ldapmodify` of an LDIF change.
    pub fn modify(&self, ldif: &str) {
        self.tool("ldapmodify", &[], ldif);
    }

    /// `ldapdelete` of one entry.
    pub fn delete(&self, dn: &str) {
        self.tool("ldapdelete", &[dn], "");
    }

    /// A person under `ou=people` (or `ou` given), in no group.
    pub fn add_person(&self, uid: &str, name: &str, password: &str) {
        self.add(&format!(
            "dn: uid={uid},{PEOPLE}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {name}\n\
             sn: {name}\ndisplayName: {name}\nuserPassword: {password}\n"
        ));
    }

    /// A group with these members (uids under `ou=people`).
    pub fn add_group(&self, cn: &str, members: &[&str]) {
        let mut ldif = format!("dn: cn={cn},{GROUPS}\nobjectClass: groupOfNames\ncn: {cn}\n");
        for m in members {
            ldif.push_str(&format!("member: uid={m},{PEOPLE}\n"));
        }
        // groupOfNames needs a member: an empty group gets the search account.
        if members.is_empty() {
            ldif.push_str(&format!("member: {SERVICE_DN}\n"));
        }
        self.add(&ldif);
    }

    /// Removes a person from a group.
    pub fn leave_group(&self, cn: &str, uid: &str) {
        self.modify(&format!(
            "dn: cn={cn},{GROUPS}\nchangetype: modify\ndelete: member\nmember: uid={uid},{PEOPLE}\n"
        ));
    }

    /// Adds a person to a group.
    pub fn join_group(&self, cn: &str, uid: &str) {
        self.modify(&format!(
            "dn: cn={cn},{GROUPS}\nchangetype: modify\nadd: member\nmember: uid={uid},{PEOPLE}\n"
        ));
    }

    /// The stats log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Connections slapd accepted so far (one per vmsd directory operation).
    pub fn connections(&self) -> usize {
        self.log().matches(" ACCEPT from ").count()
    }

    /// Simple BIND operations slapd saw for `dn`.
    pub fn binds_of(&self, dn: &str) -> usize {
        self.log()
            .matches(&format!("BIND dn=\"{dn}\" method=128"))
            .count()
    }
}

fn which(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
