//! Free `key=value` tags on devices (`site=greenhouse`, `floor=2`): a key holds one value, a
//! device at most [`MAX_TAGS`]. Keys and values are written in a charset that needs no quoting
//! in a fleet query, a URL or a CSV cell, so `tag:site=greenhouse` means what it says.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// A device's tags, by key.
pub type Tags = BTreeMap<String, String>;

/// Most tags one device holds.
pub const MAX_TAGS: usize = 20;
/// Longest key and value, in characters (all ASCII).
pub const MAX_TAG_KEY: usize = 32;
pub const MAX_TAG_VALUE: usize = 64;
/// Longest text of tags one form may send (20 tags of the longest kind, with separators).
pub const MAX_TAGS_TEXT: usize = MAX_TAGS * (MAX_TAG_KEY + MAX_TAG_VALUE + 2);

/// Why a tag, or a change to a device's tags, was refused. Safe to show: it quotes only what
/// passed the charset check, or says where the rest went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagError {
    /// The text at this position (counted in tags, from 1) is not `key=value`.
    NotAPair(usize),
    BadKey(usize),
    BadValue(usize),
    /// A key given twice in one list.
    Twice(String),
    /// A list of more than [`MAX_TAGS`].
    TooMany,
    TooLong,
    /// This device would hold more than [`MAX_TAGS`].
    Full(String),
    /// An edit naming more than [`MAX_EDIT_DEVICES`].
    TooManyDevices,
}

impl fmt::Display for TagError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TagError::NotAPair(n) => write!(f, "tag {n}: write it as key=value"),
            TagError::BadKey(n) => write!(
                f,
                "tag {n}: a key is 1 to {MAX_TAG_KEY} of A-Z a-z 0-9 _ . - (starting with a letter or digit)"
            ),
            TagError::BadValue(n) => {
                write!(f, "tag {n}: a value is 1 to {MAX_TAG_VALUE} of A-Z a-z 0-9 _ . - : /")
            }
            TagError::Twice(key) => write!(f, "tag {key} is given twice"),
            TagError::TooMany => write!(f, "a device holds at most {MAX_TAGS} tags"),
            TagError::TooLong => write!(f, "at most {MAX_TAGS_TEXT} characters of tags"),
            TagError::TooManyDevices => write!(f, "at most {MAX_EDIT_DEVICES} devices per edit"),
            TagError::Full(device) => {
                write!(f, "{device} would have more than {MAX_TAGS} tags: remove some first")
            }
        }
    }
}

impl std::error::Error for TagError {}

/// A tag key: 1 to [`MAX_TAG_KEY`] of `[A-Za-z0-9_.-]`, starting with a letter or digit (so a
/// `-` in a query stays a negation).
pub fn valid_key(key: &str) -> bool {
    (1..=MAX_TAG_KEY).contains(&key.len())
        && key.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// A tag value: 1 to [`MAX_TAG_VALUE`] of `[A-Za-z0-9_.:/-]`.
pub fn valid_value(value: &str) -> bool {
    (1..=MAX_TAG_VALUE).contains(&value.len())
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b':' | b'/'))
}

/// Reads `key=value` (the `n`th tag of a list, for the error).
fn pair(text: &str, n: usize) -> Result<(String, String), TagError> {
    let (key, value) = text.split_once('=').ok_or(TagError::NotAPair(n))?;
    if !valid_key(key) {
        return Err(TagError::BadKey(n));
    }
    if !valid_value(value) {
        return Err(TagError::BadValue(n));
    }
    Ok((key.to_owned(), value.to_owned()))
}

/// The words of a list: separated by spaces, commas or line breaks.
fn words(text: &str) -> Result<impl Iterator<Item = &str>, TagError> {
    if text.len() > MAX_TAGS_TEXT {
        return Err(TagError::TooLong);
    }
    Ok(text.split(|c: char| c.is_whitespace() || c == ',').filter(|w| !w.is_empty()))
}

/// Reads a list of tags as a person types them: `site=greenhouse floor=2`, separated by spaces,
/// commas or line breaks. Empty text is no tags.
pub fn parse_tags(text: &str) -> Result<Tags, TagError> {
    let mut tags = Tags::new();
    for (i, word) in words(text)?.enumerate() {
        let (key, value) = pair(word, i + 1)?;
        if tags.contains_key(&key) {
            return Err(TagError::Twice(key));
        }
        tags.insert(key, value);
        if tags.len() > MAX_TAGS {
            return Err(TagError::TooMany);
        }
    }
    Ok(tags)
}

/// A tag to remove: every tag with this key, or only if it has this value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagMatch {
    pub key: String,
    pub value: Option<String>,
}

/// Reads tags to remove: `site` (whatever its value) or `site=greenhouse`, as [`parse_tags`]
/// separates them.
pub fn parse_removals(text: &str) -> Result<Vec<TagMatch>, TagError> {
    let mut out = Vec::new();
    for (i, word) in words(text)?.enumerate() {
        let m = if word.contains('=') {
            let (key, value) = pair(word, i + 1)?;
            TagMatch { key, value: Some(value) }
        } else if valid_key(word) {
            TagMatch { key: word.to_owned(), value: None }
        } else {
            return Err(TagError::BadKey(i + 1));
        };
        out.push(m);
        if out.len() > MAX_TAGS {
            return Err(TagError::TooMany);
        }
    }
    Ok(out)
}

/// The tags as a person reads and types them: `floor=2 site=greenhouse`.
pub fn tags_text(tags: &Tags) -> String {
    let mut out = String::new();
    for (k, v) in tags {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// A change to devices' tags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TagEdit {
    /// These tags and no others (a device page's form).
    Replace(Tags),
    /// Removes the matches, then sets these keys to these values (bulk edits).
    Change { add: Tags, remove: Vec<TagMatch> },
}

impl TagEdit {
    /// Whether it holds only valid keys and values, within the bounds.
    pub fn validate(&self) -> Result<(), TagError> {
        let (add, remove): (&Tags, &[TagMatch]) = match self {
            TagEdit::Replace(tags) => (tags, &[]),
            TagEdit::Change { add, remove } => (add, remove),
        };
        if add.len() > MAX_TAGS || remove.len() > MAX_TAGS {
            return Err(TagError::TooMany);
        }
        for (i, (k, v)) in add.iter().enumerate() {
            if !valid_key(k) {
                return Err(TagError::BadKey(i + 1));
            }
            if !valid_value(v) {
                return Err(TagError::BadValue(i + 1));
            }
        }
        for (i, m) in remove.iter().enumerate() {
            if !valid_key(&m.key) {
                return Err(TagError::BadKey(i + 1));
            }
            if m.value.as_deref().is_some_and(|v| !valid_value(v)) {
                return Err(TagError::BadValue(i + 1));
            }
        }
        Ok(())
    }

    /// `tags` after the edit; refused if that would be more than [`MAX_TAGS`].
    pub fn apply(&self, tags: &Tags) -> Result<Tags, TagError> {
        let out = match self {
            TagEdit::Replace(new) => new.clone(),
            TagEdit::Change { add, remove } => {
                let mut out = tags.clone();
                // Removals first, so `remove site` with `add site=barn` changes the value.
                for m in remove {
                    if out.get(&m.key).is_some_and(|v| m.value.as_ref().is_none_or(|want| want == v)) {
                        out.remove(&m.key);
                    }
                }
                for (k, v) in add {
                    out.insert(k.clone(), v.clone());
                }
                out
            }
        };
        if out.len() > MAX_TAGS {
            return Err(TagError::TooMany);
        }
        Ok(out)
    }
}

/// Most devices one edit may name.
pub const MAX_EDIT_DEVICES: usize = 10_000;

/// What an edit did: devices it found, and those whose tags it changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tagged {
    pub matched: usize,
    pub changed: usize,
}

/// Why an edit was not made (nothing of it was).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagEditError {
    /// The edit itself is wrong, or a device would hold too many tags ([`TagError::Full`]).
    Tags(TagError),
    Storage(crate::SourceError),
}

impl fmt::Display for TagEditError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TagEditError::Tags(e) => e.fmt(f),
            TagEditError::Storage(e) => e.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        pairs.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect()
    }

    #[test]
    fn a_list_reads_as_people_type_it() {
        assert_eq!(
            parse_tags(" site=greenhouse,floor=2\nroom=a/b:1 "),
            Ok(tags(&[("site", "greenhouse"), ("floor", "2"), ("room", "a/b:1")]))
        );
        assert_eq!(parse_tags(""), Ok(Tags::new()));
        assert_eq!(parse_tags("site"), Err(TagError::NotAPair(1)));
        assert_eq!(parse_tags("a=1 -b=2"), Err(TagError::BadKey(2)), "a key never starts with -");
        assert_eq!(parse_tags("a=1 b="), Err(TagError::BadValue(2)));
        assert_eq!(parse_tags("a=<script>"), Err(TagError::BadValue(1)));
        assert_eq!(parse_tags("a=x=y"), Err(TagError::BadValue(1)));
        assert_eq!(parse_tags("a=1 a=2"), Err(TagError::Twice("a".into())));
        assert_eq!(parse_tags(&format!("{}=1", "k".repeat(33))), Err(TagError::BadKey(1)));
        assert_eq!(parse_tags(&format!("k={}", "v".repeat(65))), Err(TagError::BadValue(1)));
        let many: Vec<String> = (0..21).map(|i| format!("k{i}=v")).collect();
        assert_eq!(parse_tags(&many.join(" ")), Err(TagError::TooMany));
        assert_eq!(parse_tags(&many[..20].join(" ")).map(|t| t.len()), Ok(20));
        assert_eq!(parse_tags(&" ".repeat(MAX_TAGS_TEXT + 1)), Err(TagError::TooLong));
        assert_eq!(tags_text(&tags(&[("site", "x"), ("floor", "2")])), "floor=2 site=x");
    }

    #[test]
    fn edits_remove_then_add_within_the_bound() {
        let now = tags(&[("site", "greenhouse"), ("floor", "2")]);
        let edit = TagEdit::Change {
            add: tags(&[("site", "barn")]),
            remove: parse_removals("floor=3 other").unwrap(),
        };
        assert_eq!(edit.apply(&now), Ok(tags(&[("site", "barn"), ("floor", "2")])), "floor=3 did not match");
        let edit =
            TagEdit::Change { add: Tags::new(), remove: parse_removals("floor site=greenhouse").unwrap() };
        assert_eq!(edit.apply(&now), Ok(Tags::new()));
        let full: Tags = (0..20).map(|i| (format!("k{i}"), "v".into())).collect();
        let add_one = TagEdit::Change { add: tags(&[("new", "1")]), remove: vec![] };
        assert_eq!(add_one.apply(&full), Err(TagError::TooMany));
        let change_one = TagEdit::Change { add: tags(&[("k3", "w")]), remove: vec![] };
        assert_eq!(change_one.apply(&full).map(|t| t["k3"].clone()), Ok("w".into()));
        assert!(TagEdit::Replace(tags(&[("a b", "1")])).validate().is_err());
        assert!(
            TagEdit::Change { add: Tags::new(), remove: parse_removals("a").unwrap() }.validate().is_ok()
        );
        assert_eq!(parse_removals("a=<"), Err(TagError::BadValue(1)));
    }
}
