//! Glob matching for channel patterns (`channels` API) and allowed origins: `*`
//! matches any run of characters, `?` one character. Iterative with one backtrack
//! point, so hostile patterns cannot blow up (O(pattern × text) worst case).

pub fn matches(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn globs() {
        assert!(matches("a*b*c", "aXXbYYc"));
        assert!(!matches("a*b", "aXXc"));
        assert!(matches("*", ""));
        assert!(matches("chat:?", "chat:1"));
        assert!(!matches("chat:?", "chat:12"));
        assert!(matches("*:*", "ns:x"));
        assert!(!matches(&"*a".repeat(50), &"b".repeat(200)));
    }
}
