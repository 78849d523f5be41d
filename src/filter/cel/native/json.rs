//! Borrowed reading of a connection's `meta` JSON text for the native evaluator.
//!
//! The cel crate sees `meta` as `serde_json::from_str::<Value>` of the text, with `{}`
//! for text serde_json refuses. To give the same verdicts without building that tree,
//! this module reads the text in place:
//!
//! - [`root`] checks the whole text once per evaluation against serde_json's grammar
//!   (whitespace, literals, numbers, strings, escapes, no trailing characters): text it
//!   refuses becomes `{}`, as there.
//! - [`get`], [`at`], [`for_each`] and [`distinct_keys`] then walk objects and arrays
//!   of text that passed, borrowing every key and value. A key given twice is its last
//!   value, as in serde_json's map.
//! - Numbers are converted by serde_json itself (`serde_json::Number`), so ints, uints
//!   beyond `i64` (a double there) and doubles round exactly as the cel path does.
//!
//! Where reading in place cannot be exact without allocating — a string with an
//! escape sequence used as a value or compared as a key, a `\u` surrogate, nesting
//! deeper than [`MAX_DEPTH`] — the answer is [`Unsure`], and the caller hands that
//! connection to the cel crate. Nothing here allocates or recurses deeper than
//! [`MAX_DEPTH`].

/// Deepest nesting read in place; deeper text is [`Unsure`] (serde_json's own limit is
/// 128, so nothing it accepts is refused here).
const MAX_DEPTH: usize = 64;

/// The reader cannot decide exactly without allocating; the cel crate decides instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Unsure;

/// One JSON value, borrowed from the text.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Item<'a> {
    Null,
    Bool(bool),
    /// The number token, as written.
    Num(&'a str),
    /// A string's contents, between the quotes, with no escape sequence in it.
    Str(&'a str),
    /// A string with an escape sequence (its raw contents): unreadable in place.
    Escaped,
    /// The whole text of an object, braces included.
    Object(&'a str),
    /// The whole text of an array, brackets included.
    Array(&'a str),
}

/// Why a parse stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    /// serde_json would refuse the text.
    Invalid,
    /// serde_json's verdict is not reproduced in place.
    Unsure,
}

type Parsed<'a> = Result<(Item<'a>, usize), Stop>;

/// The value `meta` stands for: the text's one value, or `{}` when serde_json would
/// refuse the text (or there is none).
///
/// In the same pass, when the value is an object, `found[i]` is set to the value of
/// the key `wanted[i]` (the last one when repeated; None when absent). The bool is true
/// when some key of that object has an escape sequence (it might spell a wanted key:
/// a lookup is then unsure, as in [`get`]).
pub(super) fn root<'a>(
    text: Option<&'a str>,
    wanted: &[Box<str>],
    found: &mut [Option<Item<'a>>],
) -> Result<(Item<'a>, bool), Unsure> {
    const EMPTY: Item<'static> = Item::Object("{}");
    found.fill(None);
    let Some(text) = text else { return Ok((EMPTY, false)) };
    let b = text.as_bytes();
    let start = skip_ws(b, 0);
    let mut notes = Notes { wanted, found, escaped: false };
    let parsed = match b.get(start) {
        Some(b'{') => container(text, start, 0, b'}', Some(&mut notes)),
        _ => value(text, start, 0),
    };
    let escaped = notes.escaped;
    match parsed {
        Ok((item, end)) if skip_ws(b, end) == b.len() => Ok((item, escaped)),
        Ok(_) | Err(Stop::Invalid) => {
            found.fill(None);
            Ok((EMPTY, false))
        }
        Err(Stop::Unsure) => Err(Unsure),
    }
}

/// Whether `text` is, all of it, one object that [`root`] accepts whole (no
/// surrounding whitespace, nothing [`Unsure`]) with no escape sequence in its own
/// keys: text for which [`note_keys`] gives what [`root`] would.
pub(in crate::filter::cel) fn plain_object(text: &str) -> bool {
    matches!(root(Some(text), &[], &mut []), Ok((Item::Object(o), false)) if o.len() == text.len())
}

/// [`root`]'s notes for text [`plain_object`] accepted when it was stored: `found[i]`
/// is the value of the key `wanted[i]` (the last one when repeated), found by walking
/// the keys and jumping over the values without checking them again.
pub(super) fn note_keys<'a>(
    object: &'a str,
    wanted: &[Box<str>],
    found: &mut [Option<Item<'a>>],
) -> Result<(), Unsure> {
    found.fill(None);
    pairs(object, |raw, start, end| {
        if raw.contains('\\') {
            // plain_object refuses these; text that was not checked is not read here
            return Err(Unsure);
        }
        for (w, f) in wanted.iter().zip(found.iter_mut()) {
            if **w == *raw {
                *f = Some(item(object, start, end)?);
            }
        }
        Ok(true)
    })
}

/// The top-level object's keys [`root`] looks out for while checking the text.
struct Notes<'w, 'f, 'a> {
    wanted: &'w [Box<str>],
    found: &'f mut [Option<Item<'a>>],
    escaped: bool,
}

impl<'a> Notes<'_, '_, 'a> {
    fn entry(&mut self, key: Item<'a>, value: Item<'a>) {
        match key {
            Item::Str(k) => {
                for (w, f) in self.wanted.iter().zip(self.found.iter_mut()) {
                    if **w == *k {
                        *f = Some(value);
                    }
                }
            }
            _ => self.escaped = true,
        }
    }
}

/// The number token as the cel path sees it: an int when serde_json reads one that
/// fits `i64`, else a double.
pub(super) fn number(token: &str) -> Result<Num, Unsure> {
    let n: serde_json::Number = serde_json::from_str(token).map_err(|_| Unsure)?;
    Ok(match n.as_i64() {
        Some(i) => Num::Int(i),
        None => Num::Double(n.as_f64().unwrap_or(f64::NAN)),
    })
}

/// A JSON number as a CEL value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Num {
    Int(i64),
    Double(f64),
}

/// The value of `key` in `object` (text [`root`] accepted), the last one when the key
/// is given twice; None when absent. Unsure when any key has an escape sequence (it
/// might spell `key`).
pub(super) fn get<'a>(object: &'a str, key: &str) -> Result<Option<Item<'a>>, Unsure> {
    // a key spelled with an escape, or a raw key equal to one, reads differently
    if key.bytes().any(|c| c == b'\\' || c == b'"' || c < 0x20) {
        return Err(Unsure);
    }
    let mut found = None;
    pairs(object, |raw, start, end| {
        if raw == key {
            found = Some((start, end));
        } else if raw.contains('\\') {
            return Err(Unsure);
        }
        Ok(true)
    })?;
    found.map(|(start, end)| item(object, start, end)).transpose()
}

/// How many distinct keys `object` has (serde_json keeps the last of a repeated key).
pub(super) fn distinct_keys(object: &str) -> Result<usize, Unsure> {
    let mut keys: [&str; 32] = [""; 32];
    let mut n = 0;
    let mut unsure = false;
    entries(object, |k, _| {
        match k {
            Item::Str(k) if keys[..n].contains(&k) => {}
            Item::Str(k) if n < keys.len() => {
                keys[n] = k;
                n += 1;
            }
            _ => unsure = true,
        }
        !unsure
    })?;
    if unsure { Err(Unsure) } else { Ok(n) }
}

/// The element at `index` of `array`, None when out of range.
pub(super) fn at(array: &str, index: usize) -> Result<Option<Item<'_>>, Unsure> {
    let mut i = 0;
    let mut found = None;
    elements(array, |v| {
        if i == index {
            found = Some(v);
            return false;
        }
        i += 1;
        true
    })?;
    Ok(found)
}

/// How many elements `array` has.
pub(super) fn len(array: &str) -> Result<usize, Unsure> {
    let mut n = 0;
    elements(array, |_| {
        n += 1;
        true
    })?;
    Ok(n)
}

/// Calls `f` with each element of an array, or each key of an object (a map iterates
/// its keys in CEL; a repeated key is visited once per appearance), until it returns
/// false.
pub(super) fn for_each<'a>(container: Item<'a>, mut f: impl FnMut(Item<'a>) -> bool) -> Result<(), Unsure> {
    match container {
        Item::Array(a) => elements(a, f),
        Item::Object(o) => entries(o, |k, _| f(k)),
        _ => Ok(()),
    }
}

/// Walks the `key: value` pairs of an object that [`root`] accepted, giving `f` each
/// key's raw text (between its quotes, escapes as written) and its value's span,
/// jumping over values without checking them again, until `f` says stop (false).
fn pairs<'a>(object: &'a str, mut f: impl FnMut(&'a str, usize, usize) -> Result<bool, Unsure>) -> Result<(), Unsure> {
    let b = object.as_bytes();
    let mut i = skip_ws(b, 1);
    if b.get(i) == Some(&b'}') {
        return Ok(());
    }
    loop {
        let key_end = string_end(b, i).ok_or(Unsure)?;
        let raw = object.get(i + 1..key_end - 1).ok_or(Unsure)?;
        i = skip_ws(b, key_end);
        if b.get(i) != Some(&b':') {
            return Err(Unsure);
        }
        i = skip_ws(b, i + 1);
        let end = skip(b, i).ok_or(Unsure)?;
        if !f(raw, i, end)? {
            return Ok(());
        }
        i = skip_ws(b, end);
        match b.get(i) {
            Some(b',') => i = skip_ws(b, i + 1),
            Some(b'}') => return Ok(()),
            _ => return Err(Unsure),
        }
    }
}

/// Walks the `key: value` pairs of an object that [`root`] accepted, as items.
fn entries<'a>(object: &'a str, mut f: impl FnMut(Item<'a>, Item<'a>) -> bool) -> Result<(), Unsure> {
    pairs(object, |raw, start, end| {
        let key = if raw.contains('\\') { Item::Escaped } else { Item::Str(raw) };
        Ok(f(key, item(object, start, end)?))
    })
}

/// Walks the elements of an array that [`root`] accepted.
fn elements<'a>(array: &'a str, mut f: impl FnMut(Item<'a>) -> bool) -> Result<(), Unsure> {
    let b = array.as_bytes();
    let mut i = skip_ws(b, 1);
    if b.get(i) == Some(&b']') {
        return Ok(());
    }
    loop {
        let end = skip(b, i).ok_or(Unsure)?;
        if !f(item(array, i, end)?) {
            return Ok(());
        }
        i = skip_ws(b, end);
        match b.get(i) {
            Some(b',') => i = skip_ws(b, i + 1),
            Some(b']') => return Ok(()),
            _ => return Err(Unsure),
        }
    }
}

/// The end of the value starting at `i` in text [`root`] accepted, without checking
/// it again: strings are jumped quote to quote, containers by bracket depth.
fn skip(b: &[u8], i: usize) -> Option<usize> {
    match *b.get(i)? {
        b'"' => string_end(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                match *b.get(j)? {
                    b'"' => {
                        j = string_end(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        _ => {
            let len = b[i..].iter().position(|c| matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'));
            Some(len.map_or(b.len(), |n| i + n))
        }
    }
}

/// The index just past the closing quote of the string opening at `i`.
fn string_end(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    loop {
        match *b.get(j)? {
            b'"' => return Some(j + 1),
            b'\\' => j += 2,
            _ => j += 1,
        }
    }
}

/// The value spanning `start..end` of text [`root`] accepted.
fn item(text: &str, start: usize, end: usize) -> Result<Item<'_>, Unsure> {
    let s = text.get(start..end).ok_or(Unsure)?;
    Ok(match s.as_bytes().first() {
        Some(b'"') => {
            let inner = &s[1..s.len() - 1];
            if inner.contains('\\') { Item::Escaped } else { Item::Str(inner) }
        }
        Some(b'{') => Item::Object(s),
        Some(b'[') => Item::Array(s),
        Some(b't') => Item::Bool(true),
        Some(b'f') => Item::Bool(false),
        Some(b'n') => Item::Null,
        Some(_) => Item::Num(s),
        None => return Err(Unsure),
    })
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// Parses the value starting at `i` (no leading whitespace), checking all of it;
/// returns it and the index just past it. Recursion is bounded by [`MAX_DEPTH`].
fn value(text: &str, i: usize, depth: usize) -> Parsed<'_> {
    let b = text.as_bytes();
    match b.get(i) {
        Some(b'"') => string(text, i),
        Some(b'{') => container(text, i, depth, b'}', None),
        Some(b'[') => container(text, i, depth, b']', None),
        Some(b't') => literal(b, i, b"true", Item::Bool(true)),
        Some(b'f') => literal(b, i, b"false", Item::Bool(false)),
        Some(b'n') => literal(b, i, b"null", Item::Null),
        Some(b'-' | b'0'..=b'9') => num(text, i),
        _ => Err(Stop::Invalid),
    }
}

fn literal<'a>(b: &[u8], i: usize, word: &[u8], item: Item<'a>) -> Parsed<'a> {
    if b.get(i..i + word.len()) == Some(word) { Ok((item, i + word.len())) } else { Err(Stop::Invalid) }
}

/// An object or an array: every member checked, the whole text borrowed; an object's
/// entries are shown to `notes` when given.
fn container<'a>(
    text: &'a str,
    start: usize,
    depth: usize,
    close: u8,
    mut notes: Option<&mut Notes<'_, '_, 'a>>,
) -> Parsed<'a> {
    if depth >= MAX_DEPTH {
        return Err(Stop::Unsure);
    }
    let b = text.as_bytes();
    let object = close == b'}';
    let mut i = skip_ws(b, start + 1);
    if b.get(i) == Some(&close) {
        return Ok((wrap(object, &text[start..=i]), i + 1));
    }
    loop {
        let mut key = None;
        if object {
            if b.get(i) != Some(&b'"') {
                return Err(Stop::Invalid);
            }
            let (k, end) = string(text, i)?;
            key = Some(k);
            i = skip_ws(b, end);
            if b.get(i) != Some(&b':') {
                return Err(Stop::Invalid);
            }
            i = skip_ws(b, i + 1);
        }
        let (v, end) = value(text, i, depth + 1)?;
        if let (Some(n), Some(k)) = (notes.as_deref_mut(), key) {
            n.entry(k, v);
        }
        i = skip_ws(b, end);
        match b.get(i) {
            Some(b',') => i = skip_ws(b, i + 1),
            Some(&c) if c == close => return Ok((wrap(object, &text[start..=i]), i + 1)),
            _ => return Err(Stop::Invalid),
        }
    }
}

fn wrap(object: bool, text: &str) -> Item<'_> {
    if object { Item::Object(text) } else { Item::Array(text) }
}

/// A string starting at the quote at `start`: raw control characters refused, escapes
/// checked (a `\u` surrogate is Unsure: pairing rules are serde_json's).
fn string(text: &str, start: usize) -> Parsed<'_> {
    let b = text.as_bytes();
    let mut i = start + 1;
    let mut escaped = false;
    loop {
        // plain characters in one tight scan, then the one that needs a look
        let rest = b.get(i..).unwrap_or_default();
        i += rest.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20).unwrap_or(rest.len());
        match b.get(i) {
            None => return Err(Stop::Invalid),
            Some(b'"') => break,
            Some(b'\\') => {
                escaped = true;
                match b.get(i + 1) {
                    Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => i += 2,
                    Some(b'u') => {
                        let hex = b.get(i + 2..i + 6).ok_or(Stop::Invalid)?;
                        if !hex.iter().all(u8::is_ascii_hexdigit) {
                            return Err(Stop::Invalid);
                        }
                        if matches!(hex[0], b'd' | b'D') && matches!(hex[1], b'8'..=b'9' | b'a'..=b'f' | b'A'..=b'F') {
                            return Err(Stop::Unsure);
                        }
                        i += 6;
                    }
                    _ => return Err(Stop::Invalid),
                }
            }
            Some(&c) if c < 0x20 => return Err(Stop::Invalid),
            Some(_) => i += 1,
        }
    }
    let item = if escaped { Item::Escaped } else { Item::Str(&text[start + 1..i]) };
    Ok((item, i + 1))
}

/// A number token in JSON's grammar; one serde_json could still refuse (out of the
/// double range) is checked by serde_json itself.
fn num(text: &str, start: usize) -> Parsed<'_> {
    let b = text.as_bytes();
    let digits = |mut i: usize| {
        let from = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        (i, i - from)
    };
    let mut i = start + usize::from(b[start] == b'-');
    let (end, n) = digits(i);
    if n == 0 || (n > 1 && b[i] == b'0') {
        return Err(Stop::Invalid);
    }
    i = end;
    let mut simple = n <= 18;
    if b.get(i) == Some(&b'.') {
        let (end, n) = digits(i + 1);
        if n == 0 {
            return Err(Stop::Invalid);
        }
        i = end;
        simple = false;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let (end, n) = digits(i);
        if n == 0 {
            return Err(Stop::Invalid);
        }
        i = end;
        simple = false;
    }
    let token = &text[start..i];
    if !simple && serde_json::from_str::<serde_json::Number>(token).is_err() {
        return Err(Stop::Invalid);
    }
    Ok((Item::Num(token), i))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`root`] without keys to note.
    fn top(text: Option<&str>) -> Result<Item<'_>, Unsure> {
        root(text, &[], &mut []).map(|(item, _)| item)
    }

    /// Text checked once when stored: only a whole plain object qualifies, and its keys
    /// are then noted as [`root`] notes them.
    #[test]
    fn a_stored_plain_object_is_noted_as_root_notes_it() {
        for text in [
            r#"{"a":1,"b":{"a":2},"a":"last"}"#,
            r#"{ "a" : [1, {"x": "\u0041"}], "c": "é", "b": null }"#,
            r#"{}"#,
            r#"{"z":1e300,"b":-0.5,"a":true}"#,
            r#"{"a":"x\ny","b":{"\u0061":1}}"#,
        ] {
            assert!(plain_object(text), "{text}");
            let wanted: Vec<Box<str>> = vec!["a".into(), "b".into(), "z".into()];
            let (mut by_root, mut by_keys) = ([None; 3], [None; 3]);
            assert!(root(Some(text), &wanted, &mut by_root).is_ok());
            assert_eq!(note_keys(text, &wanted, &mut by_keys), Ok(()));
            assert_eq!(by_keys, by_root, "{text}");
        }
        let deep = format!("{}{}", "{\"a\":[".repeat(40), "]}".repeat(40));
        for text in [
            r#" {"a":1}"#,
            r#"{"a":1} "#,
            r#"[1]"#,
            r#""x""#,
            "null",
            r#"{"\u0061":1}"#,
            r#"{"a":1,}"#,
            r#"{"a":"\ud800"}"#,
            r#"{"a":01}"#,
            r#"{"a":1e400}"#,
            "not json",
            "",
            &deep,
        ] {
            assert!(!plain_object(text), "{text}");
        }
        // text that was never checked is not read as if it were
        let mut found = [None; 1];
        assert_eq!(note_keys(r#"{"\u0061":1}"#, &["a".into()], &mut found), Err(Unsure));
    }

    #[test]
    fn root_notes_the_wanted_keys_in_the_same_pass() {
        let wanted: Vec<Box<str>> = vec!["a".into(), "b".into(), "z".into()];
        let mut found = [None; 3];
        let text = r#"{"a": 1, "b": {"a": 2}, "a": "last"}"#;
        assert_eq!(root(Some(text), &wanted, &mut found), Ok((Item::Object(text), false)));
        assert_eq!(found, [Some(Item::Str("last")), Some(Item::Object(r#"{"a": 2}"#)), None]);
        // an escaped key might spell a wanted one
        let text = r#"{"a": 1, "\u0062": 2}"#;
        assert_eq!(root(Some(text), &wanted, &mut found), Ok((Item::Object(text), true)));
        // text serde_json refuses is `{}`: nothing found, even what came before the fault
        assert_eq!(root(Some(r#"{"a": 1, "b": }"#), &wanted, &mut found), Ok((Item::Object("{}"), false)));
        assert_eq!(found, [None; 3]);
        // not an object: nothing to note
        assert_eq!(root(Some("[1]"), &wanted, &mut found), Ok((Item::Array("[1]"), false)));
        assert_eq!(found, [None; 3]);
    }

    /// What serde_json says: None when it refuses the text.
    fn serde_accepts(text: &str) -> bool {
        serde_json::from_str::<serde_json::Value>(text).is_ok()
    }

    #[test]
    fn root_refuses_what_serde_json_refuses() {
        for text in [
            "",
            " ",
            "{",
            "}",
            "{\"a\"}",
            "{\"a\":}",
            "{\"a\":1,}",
            "[1,]",
            "[,1]",
            "01",
            "-",
            "1.",
            ".5",
            "1e",
            "1e+",
            "+1",
            "1e400",
            "-1e400",
            "tru",
            "nul",
            "\"a",
            "\"\\x\"",
            "\"\\u12\"",
            "\"\u{1}\"",
            "{} x",
            "[1] [2]",
            "{'a':1}",
            "{a:1}",
            "NaN",
            "Infinity",
            "[1 2]",
            "{\"a\":1 \"b\":2}",
        ] {
            assert!(!serde_accepts(text), "{text:?}");
            assert_eq!(top(Some(text)), Ok(Item::Object("{}")), "{text:?}");
        }
        for text in [
            " { } ",
            "[]",
            "1",
            "-0",
            "0.5e-3",
            "1E+2",
            "12345678901234567890123",
            "\"\\u00e9\\n\"",
            "null",
            "true",
            "[[],{}]",
            "{\"a\":{\"b\":[1,2,{\"c\":null}]}}",
            "\t\r\n{\"a\" : 1 }\n",
        ] {
            assert!(serde_accepts(text), "{text:?}");
            assert_ne!(top(Some(text)), Ok(Item::Object("{}")), "{text:?}");
        }
        assert_eq!(top(None), Ok(Item::Object("{}")));
        assert_eq!(top(Some("\"\\ud83d\\ude00\"")), Err(Unsure));
        let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert!(serde_accepts(&deep));
        assert_eq!(top(Some(&deep)), Err(Unsure));
    }

    #[test]
    fn objects_and_arrays_are_read_in_place() {
        let Ok(Item::Object(o)) = top(Some(r#" {"a": 1, "b": {"c": [true, "x", null]}, "a": "last"} "#)) else {
            panic!("not an object")
        };
        assert_eq!(get(o, "a"), Ok(Some(Item::Str("last"))));
        assert_eq!(get(o, "z"), Ok(None));
        assert_eq!(distinct_keys(o), Ok(2));
        let Ok(Some(Item::Object(b))) = get(o, "b") else { panic!("b") };
        let Ok(Some(Item::Array(c))) = get(b, "c") else { panic!("c") };
        assert_eq!(len(c), Ok(3));
        assert_eq!(at(c, 1), Ok(Some(Item::Str("x"))));
        assert_eq!(at(c, 3), Ok(None));
        let mut keys = Vec::new();
        let visit = for_each(Item::Object(o), |k| {
            keys.push(k);
            true
        });
        assert_eq!((visit, keys), (Ok(()), vec![Item::Str("a"), Item::Str("b"), Item::Str("a")]));
        let Ok(Item::Object(e)) = top(Some(r#"{"\u0061": 1}"#)) else { panic!("escaped key") };
        assert_eq!(get(e, "a"), Err(Unsure));
        let serde_minus_zero = serde_json::from_str::<serde_json::Value>("-0").ok().and_then(|v| v.as_i64());
        assert_eq!(number("-0") == Ok(Num::Int(0)), serde_minus_zero == Some(0));
        assert_eq!(number("1"), Ok(Num::Int(1)));
        assert_eq!(number("18446744073709551615"), Ok(Num::Double(18446744073709551615.0)));
        assert_eq!(number("1.0"), Ok(Num::Double(1.0)));
    }
}
