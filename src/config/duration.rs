//! Durations as Centrifugo writes them: strings like `"25s"`, `"100ms"`, `"1m30s"`,
//! `"720h"`; a bare integer means seconds. Parsing only; no clocks here.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A non-negative duration that (de)serializes in Go's `time.Duration` string form.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Duration(pub std::time::Duration);

impl Duration {
    pub const fn from_secs(s: u64) -> Self {
        Self(std::time::Duration::from_secs(s))
    }

    pub const fn from_millis(ms: u64) -> Self {
        Self(std::time::Duration::from_millis(ms))
    }

    pub fn is_zero(&self) -> bool {
        self.0.is_zero()
    }

    pub fn std(&self) -> std::time::Duration {
        self.0
    }

    /// Parses `"1h2m3s"`, `"250ms"`, `"1.5s"`, `"0"`, or a bare number of seconds.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("empty duration".into());
        }
        if let Ok(secs) = text.parse::<u64>() {
            return Ok(Self::from_secs(secs));
        }
        let mut total = 0f64;
        let mut rest = text;
        while !rest.is_empty() {
            let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
            let unit_len =
                rest[num_len..].find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len() - num_len);
            let (num, unit) = (&rest[..num_len], &rest[num_len..num_len + unit_len]);
            let value: f64 = num.parse().map_err(|_| format!("invalid duration {text:?}"))?;
            let scale = match unit {
                "ns" => 1e-9,
                "us" | "µs" => 1e-6,
                "ms" => 1e-3,
                "s" => 1.0,
                "m" => 60.0,
                "h" => 3600.0,
                _ => return Err(format!("invalid duration {text:?}: unknown unit {unit:?}")),
            };
            total += value * scale;
            rest = &rest[num_len + unit_len..];
        }
        if !total.is_finite() || total > 1e12 {
            return Err(format!("invalid duration {text:?}"));
        }
        Ok(Self(std::time::Duration::from_secs_f64(total)))
    }
}

impl fmt::Display for Duration {
    /// Go's `time.Duration.String()` form for whole units, e.g. `168h0m0s`, `25s`, `100ms`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d.is_zero() {
            return write!(f, "0s");
        }
        if d.as_secs() == 0 {
            return write!(f, "{}ms", d.as_millis());
        }
        let secs = d.as_secs();
        let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
        let ms = d.subsec_millis();
        let sec_part = if ms > 0 { format!("{s}.{ms:03}").trim_end_matches('0').to_string() } else { s.to_string() };
        if h > 0 {
            write!(f, "{h}h{m}m{sec_part}s")
        } else if m > 0 {
            write!(f, "{m}m{sec_part}s")
        } else {
            write!(f, "{sec_part}s")
        }
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Int(u64),
        }
        match Raw::deserialize(d)? {
            Raw::Text(t) => Duration::parse(&t).map_err(serde::de::Error::custom),
            Raw::Int(secs) => Ok(Duration::from_secs(secs)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Duration;

    #[test]
    fn parses_go_forms() {
        assert_eq!(Duration::parse("25s").unwrap(), Duration::from_secs(25));
        assert_eq!(Duration::parse("100ms").unwrap(), Duration::from_millis(100));
        assert_eq!(Duration::parse("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(Duration::parse("720h").unwrap(), Duration::from_secs(720 * 3600));
        assert_eq!(Duration::parse("7").unwrap(), Duration::from_secs(7));
        assert!(Duration::parse("5 parsecs").is_err());
        assert!(Duration::parse("").is_err());
    }

    #[test]
    fn displays_like_go() {
        assert_eq!(Duration::from_secs(604800).to_string(), "168h0m0s");
        assert_eq!(Duration::from_secs(25).to_string(), "25s");
        assert_eq!(Duration::from_secs(90).to_string(), "1m30s");
        assert_eq!(Duration::from_millis(100).to_string(), "100ms");
    }
}
