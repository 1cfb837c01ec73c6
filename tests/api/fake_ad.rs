//! A small fake Active Directory (no AD is available to the tests): an LDAP server speaking
//! `ldap3_proto`'s codec on a loopback port, plain LDAP (`allow_insecure`), answering the
//! operations vmsd makes the way AD does for the AD-only behaviours of SPEC §10: `objectGUID`
//! ids, `userAccountControl` (ACCOUNTDISABLE), and nested groups through
//! LDAP_MATCHING_RULE_IN_CHAIN (1.2.840.113556.1.4.1941) on a base-scope group search, where
//! `memberOf` lists only direct groups. Everything else is refused.
//!
//! ldap3_proto decodes filter values as UTF-8, so the GUIDs here are 16 ASCII bytes: vmsd
//! still keys them as `hex:` ids and finds them again with `\xx`-escaped filters.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use ldap3_proto::proto::{
    LdapBindCred, LdapBindResponse, LdapFilter, LdapMsg, LdapOp, LdapPartialAttribute, LdapResult,
    LdapResultCode, LdapSearchResultEntry, LdapSearchScope,
};
use ldap3_proto::LdapCodec;
use tokio_util::codec::Framed;

pub const BASE: &str = "OU=Staff,DC=ad,DC=test";
pub const SERVICE_DN: &str = "CN=svc-vmsd,OU=Service,DC=ad,DC=test";
pub const SERVICE_PW: &str = "svc-password";
const IN_CHAIN: &str = "1.2.840.113556.1.4.1941";

#[derive(Clone, Debug)]
pub struct Person {
    pub sam: String,
    pub guid: [u8; 16],
    pub name: String,
    pub password: String,
    /// Direct groups (what `memberOf` shows).
    pub groups: Vec<String>,
    pub uac: u32,
}

impl Person {
    pub fn dn(&self) -> String {
        format!("CN={},{BASE}", self.name)
    }
}

#[derive(Default)]
pub struct Directory {
    pub people: Vec<Person>,
    /// Group DN → groups it is a direct member of.
    pub nesting: BTreeMap<String, Vec<String>>,
}

impl Directory {
    /// Every group `groups` reach, through nesting.
    fn closure(&self, groups: &[String]) -> Vec<String> {
        let mut all: Vec<String> = Vec::new();
        let mut todo: Vec<String> = groups.to_vec();
        while let Some(g) = todo.pop() {
            if all.iter().any(|a| a.eq_ignore_ascii_case(&g)) {
                continue;
            }
            if let Some(parents) = self.nesting.get(&g) {
                todo.extend(parents.iter().cloned());
            }
            all.push(g);
        }
        all
    }
}

pub type Shared = Arc<Mutex<Directory>>;

/// Starts the server; its `ldap://127.0.0.1:PORT` URL.
pub async fn start(directory: Shared) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let directory = directory.clone();
            tokio::spawn(async move {
                let mut framed = Framed::new(tcp, LdapCodec::default());
                while let Some(Ok(msg)) = framed.next().await {
                    let replies = answer(&directory, msg);
                    if replies.is_empty() {
                        return;
                    }
                    for r in replies {
                        if framed.send(r).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    format!("ldap://{addr}")
}

fn result(code: LdapResultCode) -> LdapResult {
    LdapResult {
        code,
        matcheddn: String::new(),
        message: String::new(),
        referral: vec![],
    }
}

fn attr(name: &str, vals: Vec<Vec<u8>>) -> LdapPartialAttribute {
    LdapPartialAttribute {
        atype: name.into(),
        vals,
    }
}

fn answer(directory: &Shared, msg: LdapMsg) -> Vec<LdapMsg> {
    let reply = |op| LdapMsg {
        msgid: msg.msgid,
        op,
        ctrl: vec![],
    };
    let d = directory.lock().unwrap();
    match &msg.op {
        LdapOp::BindRequest(b) => {
            let LdapBindCred::Simple(pw) = &b.cred else {
                return vec![reply(LdapOp::BindResponse(LdapBindResponse {
                    res: result(LdapResultCode::AuthMethodNotSupported),
                    saslcreds: None,
                }))];
            };
            let ok = (b.dn == SERVICE_DN && pw == SERVICE_PW)
                || d.people
                    .iter()
                    .any(|p| p.dn() == b.dn && &p.password == pw && !pw.is_empty());
            let code = if ok {
                LdapResultCode::Success
            } else {
                LdapResultCode::InvalidCredentials
            };
            vec![reply(LdapOp::BindResponse(LdapBindResponse {
                res: result(code),
                saslcreds: None,
            }))]
        }
        LdapOp::SearchRequest(s) => {
            let mut out = Vec::new();
            match (&s.scope, &s.filter) {
                // The person search (login filter, or the sync's id filter).
                (LdapSearchScope::Subtree, filter) if s.base == BASE => {
                    for p in d.people.iter().filter(|p| matches(p, filter)) {
                        out.push(reply(LdapOp::SearchResultEntry(LdapSearchResultEntry {
                            dn: p.dn(),
                            attributes: vec![
                                attr("sAMAccountName", vec![p.sam.clone().into_bytes()]),
                                attr("objectGUID", vec![p.guid.to_vec()]),
                                attr("displayName", vec![p.name.clone().into_bytes()]),
                                attr(
                                    "memberOf",
                                    p.groups.iter().map(|g| g.clone().into_bytes()).collect(),
                                ),
                                attr("userAccountControl", vec![p.uac.to_string().into_bytes()]),
                            ],
                        })));
                    }
                }
                // Is the person (through nesting) a member of the group `s.base`?
                (LdapSearchScope::Base, LdapFilter::Extensible(m))
                    if m.matching_rule.as_deref() == Some(IN_CHAIN)
                        && m.type_.as_deref() == Some("member") =>
                {
                    if let Some(p) = d.people.iter().find(|p| p.dn() == m.match_value) {
                        if d.closure(&p.groups)
                            .iter()
                            .any(|g| g.eq_ignore_ascii_case(&s.base))
                        {
                            out.push(reply(LdapOp::SearchResultEntry(LdapSearchResultEntry {
                                dn: s.base.clone(),
                                attributes: vec![],
                            })));
                        }
                    }
                }
                _ => {
                    return vec![reply(LdapOp::SearchResultDone(result(
                        LdapResultCode::UnwillingToPerform,
                    )))]
                }
            }
            out.push(reply(LdapOp::SearchResultDone(result(
                LdapResultCode::Success,
            ))));
            out
        }
        _ => vec![],
    }
}

/// The filters vmsd sends: `(&(objectCategory=person)(sAMAccountName=X))` and
/// `(objectGUID=\xx...)`.
fn matches(p: &Person, f: &LdapFilter) -> bool {
    match f {
        LdapFilter::And(all) => all.iter().all(|f| matches(p, f)),
        LdapFilter::Equality(a, v) if a.eq_ignore_ascii_case("objectCategory") => v == "person",
        LdapFilter::Equality(a, v) if a.eq_ignore_ascii_case("sAMAccountName") => {
            p.sam.eq_ignore_ascii_case(v)
        }
        LdapFilter::Equality(a, v) if a.eq_ignore_ascii_case("objectGUID") => {
            v.as_bytes() == p.guid
        }
        _ => false,
    }
}
