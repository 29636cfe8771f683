//! The fleet query language: which devices a fleet view, a group, an alarm rule's scope, a
//! widget or an export means. Pure: parsed and evaluated the same on the server and in the
//! browser.
//!
//! ```text
//! tag:site=greenhouse fw!=1.4.2 status:stale name:kitchen*
//! (tag:site=greenhouse OR tag:site=barn) -status:offline rssi<-80
//! ```
//!
//! - Terms separated by spaces must all hold; `OR` (upper case) between terms means either;
//!   `-term` or `-( … )` negates; parentheses group. `a!=b` is `-a=b`, so a device without the
//!   field matches it (`fw!=1.4.2` includes devices that never said their firmware).
//! - Fields: `id`, `name` (text; `*` matches any run of characters, case is ignored, so
//!   `name:kitchen*` is a prefix), `status` (`online`, `stale`, `offline`, `refused`),
//!   `tag:KEY=VALUE` (`tag:KEY` alone: has the tag), `attr:KEY=VALUE` and its short forms `fw`,
//!   `hw`, `model`, `mac`, `ip`, `ssid`, `sdk`, `reset_reason`, `boot_count`, `metric:NAME<N`
//!   (`<`, `<=`, `>`, `>=`, `=`, `!=` a number; `metric:NAME` alone: has it) and its short
//!   forms `rssi`, `battery_v`, `battery_pct`, `uptime_s`, `heap_free`, `signal`
//!   (`good`, `fair`, `weak`: see [`crate::fleet`]), `battery` (`low`, `ok`), `seen` (`seen>1h`:
//!   quiet for over an hour; `s`, `m`, `h`, `d`), `group:ID` (a saved query).
//! - A bare word matches devices whose id or name contains it. `"…"` quotes a value with
//!   spaces or parentheses (`name:"living room*"`).
//! - Bounded: [`MAX_QUERY_LEN`] characters, [`MAX_TERMS`] terms, [`MAX_DEPTH`] nested groups.
//!   A mistake is reported with its position ([`QueryError`]).

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Millis;
use crate::device::Health;
use crate::fleet::{Battery, Facts, Signal};

/// Longest query, in characters.
pub const MAX_QUERY_LEN: usize = 500;
/// Most terms in one query (after groups are put in).
pub const MAX_TERMS: usize = 32;
/// Deepest nesting of parentheses.
pub const MAX_DEPTH: usize = 8;

/// A parsed query: every device when empty.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Query {
    root: Option<Node>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Term(Term),
    Not(Box<Node>),
    /// Every one holds (two or more).
    And(Vec<Node>),
    /// At least one holds (two or more).
    Or(Vec<Node>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Term {
    pub field: Field,
    pub test: Test,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    /// A bare word: the id or the name.
    Text,
    Id,
    Name,
    Status,
    Tag(String),
    Attr(String),
    Metric(String),
    Signal,
    Battery,
    /// Time since last seen.
    Seen,
    /// A saved query, by id; [`Query::resolve`] puts it in.
    Group(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    /// The field is there (`tag:site`, `metric:rssi`).
    Exists,
    /// Text matching a pattern (case ignored, `*` any run).
    Like(Pattern),
    /// A number compared.
    Cmp(Cmp, f64),
    Status(Health),
    Signal(Signal),
    Battery(Battery),
    /// A group's query, once resolved.
    Group(Box<Option<Node>>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    fn holds(self, a: f64, b: f64) -> bool {
        match self {
            Cmp::Eq => a == b,
            Cmp::Lt => a < b,
            Cmp::Le => a <= b,
            Cmp::Gt => a > b,
            Cmp::Ge => a >= b,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Cmp::Eq => "=",
            Cmp::Lt => "<",
            Cmp::Le => "<=",
            Cmp::Gt => ">",
            Cmp::Ge => ">=",
        }
    }
}

/// Text to match, case ignored; `*` matches any run of characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    /// As written.
    text: String,
    /// Lower-cased pieces between the stars.
    parts: Vec<String>,
    starts_free: bool,
    ends_free: bool,
}

impl Pattern {
    pub fn new(text: &str) -> Pattern {
        let lower = text.to_lowercase();
        Pattern {
            text: text.to_owned(),
            parts: lower.split('*').filter(|p| !p.is_empty()).map(str::to_owned).collect(),
            starts_free: lower.starts_with('*'),
            ends_free: lower.ends_with('*'),
        }
    }

    /// A bare word: anywhere in the text.
    fn contains(text: &str) -> Pattern {
        let mut p = Pattern::new(&format!("*{text}*"));
        p.text = text.to_owned();
        p
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn matches(&self, text: &str) -> bool {
        let lower;
        let text = if text.bytes().any(|b| b.is_ascii_uppercase()) || !text.is_ascii() {
            lower = text.to_lowercase();
            lower.as_str()
        } else {
            text
        };
        let (parts, n) = (&self.parts, self.parts.len());
        if n == 0 {
            return self.starts_free || text.is_empty();
        }
        if n == 1 && !self.starts_free && !self.ends_free {
            return text == parts[0];
        }
        let mut rest = text;
        for (i, part) in parts.iter().enumerate() {
            if i == 0 && !self.starts_free {
                let Some(after) = rest.strip_prefix(part.as_str()) else { return false };
                rest = after;
            } else if i == n - 1 && !self.ends_free {
                return rest.len() >= part.len() && rest.ends_with(part.as_str());
            } else {
                let Some(at) = rest.find(part.as_str()) else { return false };
                rest = &rest[at + part.len()..];
            }
        }
        true
    }
}

/// A mistake in a query, at a position counted in characters from 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    pub at: usize,
    pub message: String,
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "query, at character {}: {}", self.at + 1, self.message)
    }
}

impl std::error::Error for QueryError {}

/// A saved query with a name: a group of devices ("greenhouse sensors"). Its id is used in
/// queries (`group:greenhouse`); its query may not name groups itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    /// `[A-Za-z0-9_.-]{1,64}`.
    pub id: String,
    pub name: String,
    pub query: String,
    /// Server time of the last save.
    #[serde(default)]
    pub updated: Millis,
}

/// Groups the server keeps.
pub const MAX_GROUPS: usize = 100;
/// Longest group name.
pub const MAX_GROUP_NAME: usize = 64;

impl Group {
    /// Checks a group as people send it; the message says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        crate::name::valid_name(&self.id).map_err(|e| format!("id: {e}"))?;
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > MAX_GROUP_NAME {
            return Err(format!("name: 1 to {MAX_GROUP_NAME} characters"));
        }
        let query = Query::parse(&self.query).map_err(|e| e.to_string())?;
        if query.is_empty() {
            return Err("query: a group needs a query (an empty one is every device)".into());
        }
        if let Some(g) = query.groups().first() {
            return Err(format!("query: a group cannot name another group (group:{g})"));
        }
        Ok(())
    }
}

/// The id a group gets from its name: `Greenhouse sensors` → `greenhouse-sensors`.
pub fn group_id(name: &str) -> String {
    let mut id = String::new();
    for c in name.trim().chars() {
        if c.is_ascii_alphanumeric() {
            id.push(c.to_ascii_lowercase());
        } else if !id.ends_with('-') && !id.is_empty() {
            id.push('-');
        }
        if id.len() >= crate::name::MAX_NAME_LEN {
            break;
        }
    }
    let id = id.trim_end_matches('-');
    if id.is_empty() { "group".to_owned() } else { id.to_owned() }
}

// ---- Parsing ----

#[derive(Debug, Clone, Copy, PartialEq)]
enum Tok<'a> {
    Open,
    Close,
    Or,
    Not,
    Word(&'a str),
}

struct Lexer<'a> {
    text: &'a str,
    toks: Vec<(usize, Tok<'a>)>,
}

/// A byte offset as a character position.
fn chars_at(text: &str, byte: usize) -> usize {
    text[..byte.min(text.len())].chars().count()
}

impl<'a> Lexer<'a> {
    fn run(text: &'a str) -> Result<Vec<(usize, Tok<'a>)>, QueryError> {
        let mut lexer = Lexer { text, toks: Vec::new() };
        let bytes = text.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b if (b as char).is_ascii_whitespace() => i += 1,
                b'(' => {
                    lexer.toks.push((i, Tok::Open));
                    i += 1;
                }
                b')' => {
                    lexer.toks.push((i, Tok::Close));
                    i += 1;
                }
                b'-' => {
                    if !matches!(bytes.get(i + 1), Some(b) if !b.is_ascii_whitespace() && *b != b')') {
                        return Err(lexer.error(i, "- goes right before a term or ("));
                    }
                    lexer.toks.push((i, Tok::Not));
                    i += 1;
                }
                _ => {
                    let start = i;
                    let mut quoted: Option<usize> = None;
                    while i < bytes.len() {
                        let b = bytes[i];
                        if b == b'"' {
                            quoted = if quoted.is_some() { None } else { Some(i) };
                        } else if quoted.is_none() && (b.is_ascii_whitespace() || b == b'(' || b == b')') {
                            break;
                        }
                        i += 1;
                    }
                    if let Some(q) = quoted {
                        return Err(lexer.error(q, "this quote is never closed"));
                    }
                    let word = &text[start..i];
                    lexer.toks.push((start, if word == "OR" { Tok::Or } else { Tok::Word(word) }));
                }
            }
        }
        Ok(lexer.toks)
    }

    fn error(&self, byte: usize, message: &str) -> QueryError {
        QueryError { at: chars_at(self.text, byte), message: message.to_owned() }
    }
}

struct Parser<'a> {
    text: &'a str,
    toks: Vec<(usize, Tok<'a>)>,
    next: usize,
    terms: usize,
}

impl Query {
    /// Parses a query; the error says where it went wrong.
    pub fn parse(text: &str) -> Result<Query, QueryError> {
        if text.chars().count() > MAX_QUERY_LEN {
            return Err(QueryError {
                at: MAX_QUERY_LEN,
                message: format!("at most {MAX_QUERY_LEN} characters"),
            });
        }
        let toks = Lexer::run(text)?;
        let mut p = Parser { text, toks, next: 0, terms: 0 };
        if p.toks.is_empty() {
            return Ok(Query::default());
        }
        let root = p.or(0)?;
        if let Some((at, _)) = p.peek() {
            return Err(p.error(at, "this ) has no ( before it"));
        }
        Ok(Query { root: Some(root) })
    }

    /// Whether it is empty (every device).
    pub fn is_empty(&self) -> bool {
        self.root.is_none()
    }

    pub fn root(&self) -> Option<&Node> {
        self.root.as_ref()
    }

    /// A query of one node (tests and callers building queries).
    pub fn from_node(node: Option<Node>) -> Query {
        Query { root: node }
    }
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<(usize, Tok<'a>)> {
        self.toks.get(self.next).copied()
    }

    fn end(&self) -> usize {
        self.text.len()
    }

    fn error(&self, byte: usize, message: impl Into<String>) -> QueryError {
        QueryError { at: chars_at(self.text, byte), message: message.into() }
    }

    fn or(&mut self, depth: usize) -> Result<Node, QueryError> {
        let mut alts = vec![self.and(depth)?];
        while let Some((at, Tok::Or)) = self.peek() {
            self.next += 1;
            match self.peek() {
                None | Some((_, Tok::Close | Tok::Or)) => {
                    return Err(self.error(at, "OR needs a term on each side"));
                }
                _ => alts.push(self.and(depth)?),
            }
        }
        // `(a OR b) OR c` is `a OR b OR c`: one way to write each query.
        let alts = alts
            .into_iter()
            .flat_map(|n| if let Node::Or(inner) = n { inner } else { vec![n] })
            .collect::<Vec<_>>();
        let mut alts = alts;
        Ok(if alts.len() == 1 { alts.pop().expect("one") } else { Node::Or(alts) })
    }

    fn and(&mut self, depth: usize) -> Result<Node, QueryError> {
        let mut all = Vec::new();
        loop {
            match self.peek() {
                None | Some((_, Tok::Close)) => break,
                Some((at, Tok::Or)) if all.is_empty() => {
                    return Err(self.error(at, "OR needs a term on each side"));
                }
                Some((_, Tok::Or)) => break,
                _ => match self.unary(depth)? {
                    Node::And(inner) => all.extend(inner),
                    node => all.push(node),
                },
            }
        }
        match all.len() {
            0 => {
                let at = self.peek().map_or(self.end(), |(at, _)| at);
                Err(self.error(at, "expected a term"))
            }
            1 => Ok(all.pop().expect("one")),
            _ => Ok(Node::And(all)),
        }
    }

    fn unary(&mut self, depth: usize) -> Result<Node, QueryError> {
        let Some((at, tok)) = self.peek() else { return Err(self.error(self.end(), "expected a term")) };
        self.next += 1;
        match tok {
            Tok::Not => match self.peek() {
                Some((_, Tok::Word(_) | Tok::Open)) => Ok(Node::Not(Box::new(self.unary(depth)?))),
                _ => Err(self.error(at, "- goes right before a term or (")),
            },
            Tok::Open => {
                if depth + 1 > MAX_DEPTH {
                    return Err(self.error(at, format!("at most {MAX_DEPTH} levels of parentheses")));
                }
                if let Some((_, Tok::Close)) = self.peek() {
                    return Err(self.error(at, "empty parentheses"));
                }
                let inner = self.or(depth + 1)?;
                match self.peek() {
                    Some((_, Tok::Close)) => {
                        self.next += 1;
                        Ok(inner)
                    }
                    _ => Err(self.error(at, "this ( is never closed")),
                }
            }
            Tok::Word(word) => {
                self.terms += 1;
                if self.terms > MAX_TERMS {
                    return Err(self.error(at, format!("at most {MAX_TERMS} terms")));
                }
                self.term(at, word)
            }
            Tok::Close | Tok::Or => unreachable!("and() stops before these"),
        }
    }

    /// One word: `field op value`, `kind:key[op value]` or a bare word.
    fn term(&mut self, at: usize, word: &'a str) -> Result<Node, QueryError> {
        let op_at = word.find([':', '=', '!', '<', '>']);
        let Some(op_at) = op_at.filter(|i| !word[..*i].contains('"')) else {
            let text = self.value(at, word)?;
            return Ok(term(Field::Text, Test::Like(Pattern::contains(&text))));
        };
        let name = &word[..op_at];
        let field_error = |p: &Self| p.error(at, format!("unknown field {name:?}: {}", FIELDS));
        if name.is_empty() {
            return Err(self.error(at, "a field name goes before the operator"));
        }
        let lower = name.to_ascii_lowercase();
        let keyed = matches!(lower.as_str(), "tag" | "attr" | "metric");
        let rest_at = at + op_at;
        if keyed {
            if !word[op_at..].starts_with(':') {
                return Err(self.error(rest_at, format!("write {lower}:KEY…")));
            }
            let after = &word[op_at + 1..];
            let key_len = after.find(['=', '!', '<', '>']).unwrap_or(after.len());
            let key = &after[..key_len];
            let key_at = rest_at + 1;
            let valid = match lower.as_str() {
                "metric" => crate::name::valid_name(key).is_ok(),
                _ => crate::tags::valid_key(key),
            };
            if !valid {
                return Err(
                    self.error(key_at, format!("{lower}: a key of A-Z a-z 0-9 _ . - after the colon"))
                );
            }
            let field = match lower.as_str() {
                "tag" => Field::Tag(key.to_owned()),
                "attr" => Field::Attr(key.to_owned()),
                _ => Field::Metric(key.to_owned()),
            };
            if key_len == after.len() {
                return Ok(term(field, Test::Exists));
            }
            return self.test(field, key_at + key_len, &after[key_len..]);
        }
        let field = match lower.as_str() {
            "id" => Field::Id,
            "name" => Field::Name,
            "status" => Field::Status,
            "signal" => Field::Signal,
            "battery" => Field::Battery,
            "seen" => Field::Seen,
            "group" => Field::Group(String::new()),
            a if ATTR_ALIASES.contains(&a) => Field::Attr(a.to_owned()),
            m if METRIC_ALIASES.contains(&m) => Field::Metric(m.to_owned()),
            _ => return Err(field_error(self)),
        };
        self.test(field, rest_at, &word[op_at..])
    }

    /// `op value` after a field, at byte `at`.
    fn test(&mut self, field: Field, at: usize, rest: &'a str) -> Result<Node, QueryError> {
        let (op, len) = [("!=", 2), ("<=", 2), (">=", 2), (":", 1), ("=", 1), ("<", 1), (">", 1)]
            .into_iter()
            .find(|(op, _)| rest.starts_with(op))
            .ok_or_else(|| self.error(at, "expected : = != < <= > or >="))?;
        let value_at = at + len;
        let raw = &rest[len..];
        if raw.is_empty() {
            return Err(self.error(value_at, format!("expected a value after {op}")));
        }
        let value = self.value(value_at, raw)?;
        let negate = op == "!=";
        let cmp = match op {
            "<" => Some(Cmp::Lt),
            "<=" => Some(Cmp::Le),
            ">" => Some(Cmp::Gt),
            ">=" => Some(Cmp::Ge),
            _ => None,
        };
        let bad = |p: &Self, m: String| Err(p.error(value_at, m));
        let equality_only = |p: &Self, what: &str| -> Result<(), QueryError> {
            if cmp.is_some() { Err(p.error(at, format!("{what} takes : = or !="))) } else { Ok(()) }
        };
        let test = match &field {
            Field::Tag(_) => {
                if op == ":" || cmp.is_some() {
                    return Err(self.error(at, "write tag:KEY=VALUE or tag:KEY!=VALUE"));
                }
                if value.len() > crate::tags::MAX_TAG_VALUE + 2
                    || !value.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-:/*".contains(&b))
                {
                    return bad(self, "a tag value is A-Z a-z 0-9 _ . - : / (and * for any)".into());
                }
                Test::Like(Pattern::new(&value))
            }
            Field::Metric(_) | Field::Attr(_) if cmp.is_some() || matches!(field, Field::Metric(_)) => {
                // A number: compared for a metric, or for an attribute with < <= > >=.
                let Some(n) = number(&value) else {
                    return bad(self, format!("expected a number, not {:?}", clip(&value)));
                };
                Test::Cmp(cmp.unwrap_or(Cmp::Eq), n)
            }
            Field::Seen => {
                let Some(cmp) = cmp else {
                    return Err(self.error(at, "seen takes < <= > or >= a duration (seen>1h)"));
                };
                let Some(ms) = duration_ms(&value) else {
                    return bad(self, "a duration is a number and s, m, h or d (30s, 5m, 2h, 7d)".into());
                };
                Test::Cmp(cmp, ms as f64)
            }
            Field::Status => {
                equality_only(self, "status")?;
                match value.to_ascii_lowercase().as_str() {
                    "online" => Test::Status(Health::Online),
                    "stale" => Test::Status(Health::Stale),
                    "offline" => Test::Status(Health::Offline),
                    "refused" => Test::Status(Health::Refused),
                    _ => return bad(self, "status is online, stale, offline or refused".into()),
                }
            }
            Field::Signal => {
                equality_only(self, "signal")?;
                match Signal::parse(&value) {
                    Some(s) => Test::Signal(s),
                    None => return bad(self, "signal is good, fair or weak".into()),
                }
            }
            Field::Battery => {
                equality_only(self, "battery")?;
                match Battery::parse(&value) {
                    Some(b) => Test::Battery(b),
                    None => return bad(self, "battery is low or ok".into()),
                }
            }
            Field::Group(_) => {
                if op != ":" {
                    return Err(self.error(at, "write group:ID"));
                }
                if crate::name::valid_name(&value).is_err() {
                    return bad(self, "a group id is A-Z a-z 0-9 _ . -".into());
                }
                let node = term(Field::Group(value), Test::Group(Box::new(None)));
                return Ok(node);
            }
            Field::Metric(_) => unreachable!("metrics compare numbers"),
            Field::Id | Field::Name | Field::Attr(_) | Field::Text => {
                equality_only(self, "text")?;
                Test::Like(Pattern::new(&value))
            }
        };
        let node = term(field, test);
        Ok(if negate { Node::Not(Box::new(node)) } else { node })
    }

    /// A value as written, its quotes taken off (quotes go around a whole value).
    fn value(&self, at: usize, raw: &'a str) -> Result<String, QueryError> {
        if let Some(inner) = raw.strip_prefix('"') {
            match inner.strip_suffix('"') {
                Some(v) if !v.contains('"') => {
                    if v.is_empty() {
                        return Err(self.error(at, "an empty value"));
                    }
                    return Ok(v.to_owned());
                }
                _ => return Err(self.error(at, "quotes go around a whole value")),
            }
        }
        if let Some(q) = raw.find('"') {
            return Err(self.error(at + q, "quotes go around a whole value"));
        }
        Ok(raw.to_owned())
    }
}

fn term(field: Field, test: Test) -> Node {
    Node::Term(Term { field, test })
}

fn clip(s: &str) -> String {
    s.chars().take(20).collect()
}

const FIELDS: &str = "use id, name, status, tag:, attr:, metric:, fw, rssi, signal, battery, seen or group:";
/// Attributes known by their own name.
pub const ATTR_ALIASES: [&str; 9] =
    ["fw", "hw", "model", "mac", "ip", "ssid", "sdk", "reset_reason", "boot_count"];
/// Metrics known by their own name.
pub const METRIC_ALIASES: [&str; 5] = ["rssi", "battery_v", "battery_pct", "uptime_s", "heap_free"];

fn number(s: &str) -> Option<f64> {
    s.parse::<f64>().ok().filter(|n| n.is_finite())
}

/// `30s`, `5m`, `2h`, `7d` in milliseconds (at most about ten years).
fn duration_ms(s: &str) -> Option<i64> {
    let (n, unit) = s.split_at(s.len().checked_sub(1)?);
    let n: i64 = n.parse().ok().filter(|n| (0..=100_000).contains(n))?;
    let unit = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    Some(n * unit)
}

// ---- Groups ----

impl Query {
    /// The groups it names, in order.
    pub fn groups(&self) -> Vec<&str> {
        fn walk<'a>(n: &'a Node, out: &mut Vec<&'a str>) {
            match n {
                Node::Term(Term { field: Field::Group(id), .. }) => out.push(id),
                Node::Term(_) => {}
                Node::Not(inner) => walk(inner, out),
                Node::And(all) | Node::Or(all) => all.iter().for_each(|n| walk(n, out)),
            }
        }
        let mut out = Vec::new();
        if let Some(root) = &self.root {
            walk(root, &mut out);
        }
        out
    }

    /// Parses `text` and puts in the groups it names ([`Query::resolve`], strictly), an
    /// unknown group reported where it is named.
    pub fn parse_with_groups(
        text: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Query, QueryError> {
        let query = Query::parse(text)?;
        let named: Vec<String> = query.groups().into_iter().map(str::to_owned).collect();
        query.resolve(lookup, false).map_err(|mut e| {
            if let Some(id) = named.iter().find(|id| e.message.ends_with(&format!(" {id}"))) {
                let lower = text.to_ascii_lowercase();
                if let Some(byte) = lower.find(&format!("group:{}", id.to_ascii_lowercase())) {
                    e.at = chars_at(text, byte + "group:".len());
                }
            }
            e
        })
    }

    /// Puts each named group's query in. `lookup` answers a group's query text by id; a group
    /// it does not know is an error (naming it), unless `lenient`, when it matches no device.
    pub fn resolve(
        mut self,
        lookup: impl Fn(&str) -> Option<String>,
        lenient: bool,
    ) -> Result<Query, QueryError> {
        fn walk(
            n: &mut Node,
            lookup: &dyn Fn(&str) -> Option<String>,
            lenient: bool,
            terms: &mut usize,
        ) -> Result<(), QueryError> {
            match n {
                Node::Term(Term { field: Field::Group(id), test }) => {
                    let Some(text) = lookup(id) else {
                        if lenient {
                            return Ok(());
                        }
                        return Err(QueryError { at: 0, message: format!("there is no group {id}") });
                    };
                    // A group's query was checked when saved; one that no longer parses (or
                    // names groups) matches nothing.
                    let inner = Query::parse(&text).ok().filter(|q| q.groups().is_empty());
                    let root = inner.and_then(|q| q.root);
                    *terms += root.as_ref().map_or(0, count_terms);
                    *test = Test::Group(Box::new(Some(root.unwrap_or(Node::Or(Vec::new())))));
                }
                Node::Term(_) => {}
                Node::Not(inner) => walk(inner, lookup, lenient, terms)?,
                Node::And(all) | Node::Or(all) => {
                    for n in all {
                        walk(n, lookup, lenient, terms)?;
                    }
                }
            }
            Ok(())
        }
        if let Some(root) = &mut self.root {
            let mut terms = count_terms(root);
            walk(root, &lookup, lenient, &mut terms)?;
            if terms > MAX_TERMS * 4 {
                return Err(QueryError { at: 0, message: "its groups make it too long".into() });
            }
        }
        Ok(self)
    }

    /// Whether it reads only what changes when people or devices say so (id, name, tags,
    /// attributes, groups), not readings, health or the clock: what an alarm rule's scope may use.
    pub fn is_timeless(&self) -> bool {
        fn walk(n: &Node) -> bool {
            match n {
                Node::Term(Term { field, test }) => match field {
                    Field::Text | Field::Id | Field::Name | Field::Tag(_) | Field::Attr(_) => true,
                    Field::Group(_) => match test {
                        Test::Group(inner) => inner.as_ref().as_ref().is_none_or(walk),
                        _ => true,
                    },
                    Field::Status | Field::Metric(_) | Field::Signal | Field::Battery | Field::Seen => false,
                },
                Node::Not(inner) => walk(inner),
                Node::And(all) | Node::Or(all) => all.iter().all(walk),
            }
        }
        self.root.as_ref().is_none_or(walk)
    }
}

fn count_terms(n: &Node) -> usize {
    match n {
        Node::Term(_) => 1,
        Node::Not(inner) => count_terms(inner),
        Node::And(all) | Node::Or(all) => all.iter().map(count_terms).sum(),
    }
}

// ---- Evaluation ----

impl Query {
    /// Whether `device` is one the query means, at server time `now`.
    pub fn matches(&self, device: &(impl Facts + ?Sized), now: Millis) -> bool {
        self.root.as_ref().is_none_or(|n| n.matches(device, now))
    }
}

impl Node {
    pub fn matches(&self, d: &(impl Facts + ?Sized), now: Millis) -> bool {
        match self {
            Node::Term(t) => t.matches(d, now),
            Node::Not(inner) => !inner.matches(d, now),
            Node::And(all) => all.iter().all(|n| n.matches(d, now)),
            Node::Or(all) => all.iter().any(|n| n.matches(d, now)),
        }
    }
}

impl Term {
    fn matches(&self, d: &(impl Facts + ?Sized), now: Millis) -> bool {
        match (&self.field, &self.test) {
            (Field::Text, Test::Like(p)) => p.matches(d.id()) || d.name().is_some_and(|n| p.matches(n)),
            (Field::Id, Test::Like(p)) => p.matches(d.id()),
            (Field::Name, Test::Like(p)) => p.matches(d.name().unwrap_or(d.id())),
            (Field::Status, Test::Status(h)) => d.health(now) == *h,
            (Field::Tag(k), Test::Exists) => d.tag(k).is_some(),
            (Field::Tag(k), Test::Like(p)) => d.tag(k).is_some_and(|v| p.matches(v)),
            (Field::Attr(k), Test::Exists) => d.attribute(k).is_some(),
            (Field::Attr(k), Test::Like(p)) => d.attribute(k).is_some_and(|v| p.matches(&v)),
            (Field::Attr(k), Test::Cmp(c, n)) => {
                d.attribute(k).and_then(|v| number(v.trim())).is_some_and(|v| c.holds(v, *n))
            }
            (Field::Metric(m), Test::Exists) => d.metric(m).is_some(),
            (Field::Metric(m), Test::Cmp(c, n)) => d.metric(m).is_some_and(|v| c.holds(v, *n)),
            (Field::Signal, Test::Signal(s)) => crate::fleet::signal(d) == Some(*s),
            (Field::Battery, Test::Battery(b)) => crate::fleet::battery(d) == Some(*b),
            (Field::Seen, Test::Cmp(c, ms)) => c.holds(now.saturating_sub(d.last_seen()) as f64, *ms),
            (Field::Group(_), Test::Group(inner)) => {
                inner.as_ref().as_ref().is_some_and(|n| n.matches(d, now))
            }
            _ => false,
        }
    }
}

// ---- Writing it back ----

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.root {
            Some(root) => write_node(f, root, false),
            None => Ok(()),
        }
    }
}

fn write_node(f: &mut fmt::Formatter<'_>, n: &Node, in_and: bool) -> fmt::Result {
    match n {
        Node::Term(t) => write_term(f, t),
        Node::Not(inner) => {
            f.write_str("-")?;
            match inner.as_ref() {
                Node::Term(t) => write_term(f, t),
                other => {
                    f.write_str("(")?;
                    write_node(f, other, false)?;
                    f.write_str(")")
                }
            }
        }
        Node::And(all) => {
            for (i, n) in all.iter().enumerate() {
                if i > 0 {
                    f.write_str(" ")?;
                }
                write_node(f, n, true)?;
            }
            Ok(())
        }
        Node::Or(all) => {
            if in_and {
                f.write_str("(")?;
            }
            for (i, n) in all.iter().enumerate() {
                if i > 0 {
                    f.write_str(" OR ")?;
                }
                // An Or inside an Or keeps its parentheses out of the way: flattened as is.
                write_node(f, n, true)?;
            }
            if in_and {
                f.write_str(")")?;
            }
            Ok(())
        }
    }
}

/// A value as written in a query: quoted when it holds spaces or parentheses.
fn quoted(v: &str) -> Cow<'_, str> {
    if v.chars().any(|c| c.is_whitespace() || c == '(' || c == ')') || v == "OR" || v.starts_with('-') {
        Cow::Owned(format!("\"{v}\""))
    } else {
        Cow::Borrowed(v)
    }
}

fn write_term(f: &mut fmt::Formatter<'_>, t: &Term) -> fmt::Result {
    let field: Cow<str> = match &t.field {
        Field::Text => {
            return match &t.test {
                Test::Like(p) if p.as_str().contains([':', '=', '!', '<', '>']) => {
                    write!(f, "\"{}\"", p.as_str())
                }
                Test::Like(p) => f.write_str(&quoted(p.as_str())),
                _ => Ok(()),
            };
        }
        Field::Id => "id".into(),
        Field::Name => "name".into(),
        Field::Status => "status".into(),
        Field::Signal => "signal".into(),
        Field::Battery => "battery".into(),
        Field::Seen => "seen".into(),
        Field::Group(id) => return write!(f, "group:{id}"),
        Field::Tag(k) => format!("tag:{k}").into(),
        Field::Attr(k) if ATTR_ALIASES.contains(&k.as_str()) => k.as_str().into(),
        Field::Attr(k) => format!("attr:{k}").into(),
        Field::Metric(m) if METRIC_ALIASES.contains(&m.as_str()) => m.as_str().into(),
        Field::Metric(m) => format!("metric:{m}").into(),
    };
    let keyed = matches!(t.field, Field::Tag(_));
    match &t.test {
        Test::Exists => f.write_str(&field),
        Test::Like(p) => write!(f, "{field}{}{}", if keyed { "=" } else { ":" }, quoted(p.as_str())),
        Test::Cmp(c, n) if matches!(t.field, Field::Seen) => {
            write!(f, "{field}{}{}", c.as_str(), duration_text(*n))
        }
        Test::Cmp(c, n) => write!(f, "{field}{}{n}", c.as_str()),
        Test::Status(h) => write!(f, "{field}:{}", h.label()),
        Test::Signal(s) => write!(f, "{field}:{}", s.label()),
        Test::Battery(b) => write!(f, "{field}:{}", b.label()),
        Test::Group(_) => f.write_str(&field),
    }
}

fn duration_text(ms: f64) -> String {
    let ms = ms as i64;
    for (unit, size) in [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000)] {
        if ms % size == 0 && ms > 0 {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{}s", ms / 1000)
}

#[cfg(test)]
mod tests;
