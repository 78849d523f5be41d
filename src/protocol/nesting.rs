//! How deep a JSON document nests, measured before it is parsed: one pass over the
//! bytes with a stack of open containers, so the answer names where the limit was
//! crossed (`commands[0].publish.data.a[3]`) instead of a parser's bare "recursion
//! limit exceeded". It never allocates more than the path of the open containers,
//! which the limit bounds. Malformed JSON is not its business: it measures what it
//! can and leaves the verdict to the parser.

/// Most levels of arrays and objects a server API request body may nest. Below
/// serde_json's own recursion limit (128), so a body this check accepts always parses,
/// and the same for every method: a publication's `data` (kept as raw JSON, which the
/// parser never descends into) is held to it like a batch's commands.
pub const MAX_DEPTH: usize = 100;

/// A document nested deeper than its limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooDeep {
    /// JSON path of the first container past the limit, e.g. `data.a[0]`; empty for
    /// a document whose top level is itself past it (a limit of 0).
    pub path: String,
    pub limit: usize,
}

impl std::fmt::Display for TooDeep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = if self.path.is_empty() { "the top level" } else { self.path.as_str() };
        write!(f, "{at}: JSON nested deeper than {} levels", self.limit)
    }
}

/// One open container and where the next value inside it sits.
enum Open {
    /// An array and the index of its current element.
    Array(usize),
    /// An object and the key of its current member (raw, escapes kept).
    Object(String),
}

/// Checks that `json` nests at most `limit` containers deep.
pub fn check(json: &[u8], limit: usize) -> Result<(), TooDeep> {
    let mut stack: Vec<Open> = Vec::new();
    let mut i = 0;
    while i < json.len() {
        match json[i] {
            b'"' => {
                let end = string_end(json, i + 1);
                // A string directly followed by `:` inside an object is its key.
                if let Some(Open::Object(key)) = stack.last_mut()
                    && next_significant(json, end) == Some(b':')
                {
                    *key = String::from_utf8_lossy(&json[i + 1..end.saturating_sub(1).max(i + 1)]).into_owned();
                }
                i = end;
                continue;
            }
            open @ (b'[' | b'{') => {
                if stack.len() >= limit {
                    return Err(TooDeep { path: path(&stack), limit });
                }
                stack.push(if open == b'[' { Open::Array(0) } else { Open::Object(String::new()) });
            }
            b']' | b'}' => {
                stack.pop();
            }
            b',' => {
                if let Some(Open::Array(n)) = stack.last_mut() {
                    *n += 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// The index just past the closing quote of a string whose content starts at `i`
/// (or the end of input for an unterminated one).
fn string_end(json: &[u8], mut i: usize) -> usize {
    while i < json.len() {
        match json[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    json.len()
}

fn next_significant(json: &[u8], from: usize) -> Option<u8> {
    json[from.min(json.len())..].iter().copied().find(|b| !b.is_ascii_whitespace())
}

/// The JSON path of the value the innermost open container is at.
fn path(stack: &[Open]) -> String {
    let mut out = String::new();
    for open in stack {
        match open {
            Open::Array(n) => {
                out.push('[');
                out.push_str(&n.to_string());
                out.push(']');
            }
            Open::Object(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(depth: usize) -> String {
        format!("{}{}", "[".repeat(depth), "]".repeat(depth))
    }

    #[test]
    fn depth_up_to_the_limit_passes() {
        assert_eq!(check(b"1", 0), Ok(()));
        assert_eq!(check(nested(3).as_bytes(), 3), Ok(()));
        assert_eq!(check(br#"{"a":[1,{"b":2}],"c":"[[[[["}"#, 3), Ok(()));
        assert_eq!(check(br#"["\"[[[[", "\\", [1]]"#, 2), Ok(()));
    }

    #[test]
    fn past_the_limit_names_the_path() {
        let too_deep = |json: &str, limit| check(json.as_bytes(), limit).unwrap_err().path;
        assert_eq!(too_deep(&nested(4), 3), "[0][0][0]");
        assert_eq!(too_deep(r#"{"channel":"c","data":{"a":[1,2,{"b":{}}]}}"#, 4), "data.a[2].b");
        assert_eq!(too_deep(r#"{"commands":[{"x":1},{"publish":{"data":[[]]}}]}"#, 5), "commands[1].publish.data[0]");
        assert_eq!(too_deep(r#"{"k\"ey" : {"x": "a,b" , "y":[]}}"#, 2), r#"k\"ey.y"#);
        assert_eq!(too_deep("[]", 0), "");
    }

    #[test]
    fn every_body_this_accepts_serde_json_parses() {
        let deepest = nested(MAX_DEPTH);
        assert_eq!(check(deepest.as_bytes(), MAX_DEPTH), Ok(()));
        serde_json::from_str::<serde_json::Value>(&deepest).expect("within serde_json's recursion limit");
        let message = check(nested(MAX_DEPTH + 1).as_bytes(), MAX_DEPTH).unwrap_err().to_string();
        assert!(message.ends_with("JSON nested deeper than 100 levels"), "{message}");
    }
}
