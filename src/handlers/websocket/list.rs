//! What a `user/list` frame asks for (SPEC §6): DeviceHive's filters (`login`, `loginPattern`,
//! `role`, `status`), its sorting (`sortField`, `sortOrder`) and paging (`take`, `skip`),
//! validated before anything is read, and their application to the displayed `<DhUser>`s.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use super::patch::small_int;
use super::protocol::{Failure, MSG_ROLE_INVALID, MSG_STATUS_INVALID};

/// DeviceHive's default page size, and the largest one vmsd hands out (SPEC §6).
const DEFAULT_TAKE: usize = 100;
const MAX_TAKE: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortField {
    Id,
    Login,
    Role,
    Status,
    LastLogin,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    pub login: Option<String>,
    pub login_pattern: Option<String>,
    pub role: Option<u8>,
    pub status: Option<u8>,
    pub sort: SortField,
    pub descending: bool,
    pub take: usize,
    pub skip: usize,
}

fn illegal(value: &Value) -> Failure {
    let text = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    Failure::new(400, format!("Illegal argument: {text}"))
}

/// A value given (not absent, not `null`, not `""`: DeviceHive's query parameters).
fn given<'a>(request: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    request
        .get(key)
        .filter(|v| !v.is_null() && v.as_str().is_none_or(|s| !s.is_empty()))
}

/// A non-negative integer sent as a number or a numeric string.
fn whole(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl ListQuery {
    pub fn parse(request: &Map<String, Value>) -> Result<ListQuery, Failure> {
        let string = |key: &str| -> Result<Option<String>, Failure> {
            given(request, key)
                .map(|v| text(v).ok_or_else(|| illegal(v)))
                .transpose()
        };
        let count = |key: &str| -> Result<Option<usize>, Failure> {
            given(request, key)
                .map(|v| {
                    whole(v)
                        .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
                        .ok_or_else(|| illegal(v))
                })
                .transpose()
        };
        let sort = match given(request, "sortField") {
            None => SortField::Id,
            Some(v) => match v.as_str().map(str::to_ascii_lowercase).as_deref() {
                Some("id") => SortField::Id,
                Some("login") => SortField::Login,
                Some("role") => SortField::Role,
                Some("status") => SortField::Status,
                Some("lastlogin") => SortField::LastLogin,
                _ => return Err(illegal(v)),
            },
        };
        let descending = match given(request, "sortOrder") {
            None => false,
            Some(v) => match v.as_str().map(str::to_ascii_uppercase).as_deref() {
                Some("ASC") => false,
                Some("DESC") => true,
                _ => return Err(illegal(v)),
            },
        };
        Ok(ListQuery {
            login: string("login")?,
            login_pattern: string("loginPattern")?,
            role: small_int(given(request, "role"), 1, MSG_ROLE_INVALID)?,
            status: small_int(given(request, "status"), 2, MSG_STATUS_INVALID)?,
            sort,
            descending,
            take: count("take")?.unwrap_or(DEFAULT_TAKE).min(MAX_TAKE),
            skip: count("skip")?.unwrap_or(0),
        })
    }

    /// Whether a displayed `<DhUser>` passes the filters.
    fn keeps(&self, user: &Value) -> bool {
        let login = user["login"].as_str().unwrap_or_default();
        self.login.as_deref().is_none_or(|l| l == login)
            && self.login_pattern.as_deref().is_none_or(|p| like(p, login))
            && self
                .role
                .is_none_or(|r| user["role"].as_u64() == Some(u64::from(r)))
            && self
                .status
                .is_none_or(|s| user["status"].as_u64() == Some(u64::from(s)))
    }

    fn compare(&self, a: &Value, b: &Value) -> Ordering {
        let by_field = match self.sort {
            SortField::Id => Ordering::Equal,
            SortField::Login => a["login"].as_str().cmp(&b["login"].as_str()),
            SortField::Role => a["role"].as_u64().cmp(&b["role"].as_u64()),
            SortField::Status => a["status"].as_u64().cmp(&b["status"].as_u64()),
            // The rendered times sort as text ("Y-m-d H:i:s"); never logged in (null) first.
            SortField::LastLogin => a["lastLogin"].as_str().cmp(&b["lastLogin"].as_str()),
        };
        let ordering = by_field.then_with(|| a["id"].as_u64().cmp(&b["id"].as_u64()));
        if self.descending {
            ordering.reverse()
        } else {
            ordering
        }
    }

    /// The page of `users` the query selects, in its order: each item with the displayed
    /// `<DhUser>` fields it is filtered and sorted by.
    pub fn select<T>(&self, users: impl IntoIterator<Item = (Value, T)>) -> Vec<T> {
        let mut kept: Vec<(Value, T)> = users.into_iter().filter(|(u, _)| self.keeps(u)).collect();
        kept.sort_by(|(a, _), (b, _)| self.compare(a, b));
        kept.into_iter()
            .skip(self.skip)
            .take(self.take)
            .map(|(_, item)| item)
            .collect()
    }
}

/// SQL `LIKE`: `%` any run of characters, `_` one character, `\` makes the next one literal;
/// case-sensitive, as in DeviceHive's PostgreSQL. Hand-written: it is this one function, with
/// no regex to build (and none a client could make expensive): the classic two-pointer
/// wildcard match, linear in the login for each `%` it backtracks to.
pub fn like(pattern: &str, text: &str) -> bool {
    #[derive(Clone, Copy, PartialEq)]
    enum Token {
        Any,
        One,
        Char(char),
    }
    let mut tokens = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        tokens.push(match c {
            '%' => Token::Any,
            '_' => Token::One,
            '\\' => Token::Char(chars.next().unwrap_or('\\')),
            c => Token::Char(c),
        });
    }
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    let mut resume: Option<(usize, usize)> = None;
    while t < text.len() {
        match tokens.get(p) {
            Some(Token::Any) => {
                resume = Some((p, t));
                p += 1;
            }
            Some(Token::One) => {
                p += 1;
                t += 1;
            }
            Some(Token::Char(c)) if *c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match resume {
                Some((rp, rt)) => {
                    p = rp + 1;
                    t = rt + 1;
                    resume = Some((rp, rt + 1));
                }
                None => return false,
            },
        }
    }
    tokens[p..].iter().all(|t| *t == Token::Any)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn like_follows_sql() {
        assert!(like("al%", "alice"));
        assert!(like("%ice", "alice"));
        assert!(like("a_ice", "alice"));
        assert!(like("%l%c%", "alice"));
        assert!(like("%", ""));
        assert!(like("alice", "alice"));
        assert!(!like("alice", "Alice"));
        assert!(!like("a_ice", "aice"));
        assert!(!like("al", "alice"));
        assert!(!like("%x%", "alice"));
        assert!(like("100\\%", "100%"));
        assert!(!like("100\\%", "1000"));
        assert!(like("a\\_b", "a_b"));
        assert!(!like("a\\_b", "axb"));
        assert!(like("%a%a%a%", "banana-aa"));
        assert!(like("ж_к", "жук"));
    }

    #[test]
    fn defaults_and_bounds() {
        let q = ListQuery::parse(&Map::new()).ok();
        assert_eq!(
            q,
            Some(ListQuery {
                login: None,
                login_pattern: None,
                role: None,
                status: None,
                sort: SortField::Id,
                descending: false,
                take: 100,
                skip: 0,
            })
        );
        let q = ListQuery::parse(&obj(json!({
            "take": "5000", "skip": 3, "sortField": "lastLogin", "sortOrder": "desc",
            "role": "0", "status": 2, "login": "", "loginPattern": "a%"
        })))
        .ok();
        let q = q.as_ref();
        assert_eq!(q.map(|q| q.take), Some(1000));
        assert_eq!(q.map(|q| q.skip), Some(3));
        assert_eq!(q.map(|q| q.sort), Some(SortField::LastLogin));
        assert_eq!(q.map(|q| q.descending), Some(true));
        assert_eq!(q.map(|q| q.role), Some(Some(0)));
        assert_eq!(q.map(|q| q.status), Some(Some(2)));
        assert_eq!(q.and_then(|q| q.login.clone()), None);
        assert_eq!(q.and_then(|q| q.login_pattern.clone()), Some("a%".into()));
    }

    #[test]
    fn bad_arguments_are_400() {
        let err = |v: Value| ListQuery::parse(&obj(v)).err().map(|f| (f.code, f.error));
        assert_eq!(
            err(json!({"sortField": "name"})),
            Some((400, "Illegal argument: name".into()))
        );
        assert_eq!(
            err(json!({"sortOrder": "UP"})),
            Some((400, "Illegal argument: UP".into()))
        );
        assert_eq!(
            err(json!({"take": -1})),
            Some((400, "Illegal argument: -1".into()))
        );
        assert_eq!(
            err(json!({"role": 2})),
            Some((400, MSG_ROLE_INVALID.into()))
        );
        assert_eq!(
            err(json!({"status": 3})),
            Some((400, MSG_STATUS_INVALID.into()))
        );
    }

    #[test]
    fn select_filters_sorts_and_pages() {
        let user = |id: u64, login: &str, role: u8, status: u8, last: Option<&str>| json!({"id": id, "login": login, "role": role, "status": status, "lastLogin": last});
        let users = [
            user(1, "admin", 0, 0, Some("2026-01-02 00:00:00")),
            user(2, "bob", 1, 2, None),
            user(3, "alice", 1, 0, Some("2026-01-01 00:00:00")),
            user(4, "carol", 1, 0, Some("2026-01-03 00:00:00")),
        ];
        let ids = |v: Value| {
            let q = ListQuery::parse(&obj(v)).ok();
            q.map(|q| {
                q.select(users.iter().map(|u| (u.clone(), u["id"].as_u64())))
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
            })
        };
        assert_eq!(ids(json!({})), Some(vec![1, 2, 3, 4]));
        assert_eq!(ids(json!({"sortOrder": "DESC"})), Some(vec![4, 3, 2, 1]));
        assert_eq!(ids(json!({"sortField": "login"})), Some(vec![1, 3, 2, 4]));
        assert_eq!(
            ids(json!({"sortField": "lastLogin"})),
            Some(vec![2, 3, 1, 4])
        );
        assert_eq!(
            ids(json!({"sortField": "role", "sortOrder": "DESC"})),
            Some(vec![4, 3, 2, 1])
        );
        assert_eq!(ids(json!({"role": 1, "status": 0})), Some(vec![3, 4]));
        assert_eq!(ids(json!({"login": "bob"})), Some(vec![2]));
        assert_eq!(ids(json!({"loginPattern": "%o%"})), Some(vec![2, 4]));
        assert_eq!(ids(json!({"take": 2, "skip": 1})), Some(vec![2, 3]));
        assert_eq!(ids(json!({"skip": 10})), Some(vec![]));
    }
}
