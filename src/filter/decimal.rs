//! Centrifugo's numeric comparisons: which strings are numbers (the acceptance rules of
//! `quagmt/udecimal`'s `Parse`) and how two numbers order, exactly, at any length.
//!
//! A number is kept normalised — sign, integer digits without leading zeros, fraction
//! without trailing zeros, zero never negative — so equal values have equal parts and
//! ordering is a few slice comparisons. [`DecimalRef`] borrows its digits from the
//! string it was parsed from; [`Decimal`] owns them (a compiled constant).
//!
//! This module must never allocate while parsing or comparing a [`DecimalRef`], and
//! never round: `"1.50" == "1.5"`, `"10" > "9"`, `"-0" == "0"`.

use std::cmp::Ordering;
use std::fmt;

/// Longest accepted string, sign included.
pub const MAX_LEN: usize = 200;
/// Most digits after the point.
pub const MAX_FRACTION_DIGITS: usize = 19;
/// udecimal parses strings up to this length with a strict 128-bit parser and longer
/// ones through Go's `big.Int`, which also accepts a sign after the `-`: `"-+"`
/// followed by digits is read as negative once the string is longer than this.
const BIG_PATH_FROM: usize = 41;

/// A parsed number borrowing its digits from the source string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DecimalRef<'a> {
    neg: bool,
    int: &'a [u8],
    frac: &'a [u8],
}

impl<'a> DecimalRef<'a> {
    /// Parses `s` by udecimal's rules: optional `+`/`-`, at least one digit, optionally
    /// `.` and 1–19 digits, at most 200 bytes, nothing else (no exponent, no spaces).
    pub fn parse(s: &'a str) -> Option<DecimalRef<'a>> {
        let b = s.as_bytes();
        if b.is_empty() || b.len() > MAX_LEN {
            return None;
        }
        let (neg, body) = match b {
            [b'-', b'+', rest @ ..] if b.len() > BIG_PATH_FROM => (true, rest),
            [b'-', rest @ ..] => (true, rest),
            [b'+', rest @ ..] => (false, rest),
            _ => (false, b),
        };
        let (int, frac) = match body.iter().position(|&c| c == b'.') {
            Some(dot) => (&body[..dot], &body[dot + 1..]),
            None => (body, &body[body.len()..]),
        };
        let has_dot = int.len() < body.len();
        if int.is_empty() || !all_digits(int) || !all_digits(frac) {
            return None;
        }
        if has_dot && (frac.is_empty() || frac.len() > MAX_FRACTION_DIGITS) {
            return None;
        }
        Some(DecimalRef::normalised(neg, int, frac))
    }

    fn normalised(neg: bool, int: &'a [u8], frac: &'a [u8]) -> DecimalRef<'a> {
        let lead = int.iter().take_while(|&&c| c == b'0').count();
        let keep = frac.len() - frac.iter().rev().take_while(|&&c| c == b'0').count();
        let (int, frac) = (&int[lead..], &frac[..keep]);
        let zero = int.is_empty() && frac.is_empty();
        DecimalRef { neg: neg && !zero, int, frac }
    }

    /// Whether the number is below zero.
    pub fn is_negative(&self) -> bool {
        self.neg
    }

    /// An owned copy (used once per compiled constant).
    pub fn to_owned(&self) -> Decimal {
        Decimal { neg: self.neg, int: self.int.into(), frac: self.frac.into() }
    }

    fn cmp_magnitude(&self, other: &DecimalRef<'_>) -> Ordering {
        self.int
            .len()
            .cmp(&other.int.len())
            .then_with(|| self.int.cmp(other.int))
            .then_with(|| self.frac.cmp(other.frac))
    }
}

fn all_digits(s: &[u8]) -> bool {
    s.iter().all(u8::is_ascii_digit)
}

impl Ord for DecimalRef<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self.neg, other.neg) {
            (false, true) => Ordering::Greater,
            (true, false) => Ordering::Less,
            (false, false) => self.cmp_magnitude(other),
            (true, true) => other.cmp_magnitude(self),
        }
    }
}

impl PartialOrd for DecimalRef<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for DecimalRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = |d: &[u8]| d.iter().map(|&c| c as char).collect::<String>();
        let int = if self.int.is_empty() { "0".to_owned() } else { digits(self.int) };
        let sign = if self.neg { "-" } else { "" };
        if self.frac.is_empty() { write!(f, "{sign}{int}") } else { write!(f, "{sign}{int}.{}", digits(self.frac)) }
    }
}

/// A parsed number owning its (normalised) digits: a compiled numeric constant.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Decimal {
    neg: bool,
    int: Box<[u8]>,
    frac: Box<[u8]>,
}

impl Decimal {
    /// Parses `s` by the rules of [`DecimalRef::parse`].
    pub fn parse(s: &str) -> Option<Decimal> {
        DecimalRef::parse(s).map(|d| d.to_owned())
    }

    /// A borrowed view, for comparing with values parsed at evaluation time.
    pub fn as_ref(&self) -> DecimalRef<'_> {
        DecimalRef { neg: self.neg, int: &self.int, frac: &self.frac }
    }
}

impl Ord for Decimal {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_ref().cmp(&other.as_ref())
    }
}

impl PartialOrd for Decimal {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_ref().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> DecimalRef<'_> {
        DecimalRef::parse(s).unwrap_or_else(|| panic!("{s:?} should parse"))
    }

    #[test]
    fn acceptance() {
        for ok in ["0", "-0", "+1", "007", "1.5", "-1.0000000000000000001", "00.10"] {
            assert!(DecimalRef::parse(ok).is_some(), "{ok:?}");
        }
        for bad in ["", "+", "-", ".5", "1.", "-.5", "1e5", " 1", "1 ", "1.2.3", "--1", "+-1", "1.00000000000000000000"]
        {
            assert!(DecimalRef::parse(bad).is_none(), "{bad:?}");
        }
        assert!(DecimalRef::parse(&"9".repeat(200)).is_some());
        assert!(DecimalRef::parse(&"9".repeat(201)).is_none());
    }

    #[test]
    fn big_path_sign_quirk() {
        let long = format!("-+{}", "1".repeat(40));
        assert_eq!(long.len(), 42);
        assert!(d(&long).is_negative());
        assert!(DecimalRef::parse(&format!("-+{}", "1".repeat(39))).is_none());
    }

    #[test]
    fn ordering() {
        assert!(d("10") > d("9"));
        assert_eq!(d("1.50"), d("1.5"));
        assert_eq!(d("-0"), d("0.000"));
        assert!(d("-2") < d("-1.5"));
        assert!(d("0.51") > d("0.5"));
        assert!(d("-0.1") < d("0"));
        assert_eq!(d("+001.10").to_string(), "1.1");
    }
}
