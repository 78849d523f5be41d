//! The server under test: `--url` parsed into a loopback socket address and the URLs
//! of the endpoints the bench drives. Owns the safety rule of the tool — it only ever
//! loads a server on this machine (127.0.0.0/8, ::1, `localhost`); every other host is
//! refused before anything is sent.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};

use anyhow::{Context, bail};

/// A loopback server address and the URLs derived from it.
#[derive(Clone, Debug)]
pub(super) struct Target {
    pub addr: SocketAddr,
    /// `http://<ip>:<port>` with the resolved address (no trailing slash).
    pub base: String,
}

impl Target {
    /// Parses `url` (`http://host[:port][/]`) and refuses any non-loopback host.
    pub(super) fn parse(url: &str) -> anyhow::Result<Target> {
        let parsed = reqwest::Url::parse(url).with_context(|| format!("--url {url:?} is not a valid URL"))?;
        if parsed.scheme() != "http" {
            bail!("--url {url:?}: only http:// is supported (the bench targets a local server)");
        }
        if !matches!(parsed.path(), "" | "/") || parsed.query().is_some() {
            bail!("--url {url:?}: give only scheme, host and port, e.g. http://127.0.0.1:8000");
        }
        let host = parsed.host_str().unwrap_or_default();
        let port = parsed.port_or_known_default().unwrap_or(80);
        let ip = loopback_ip(host, port)?;
        let addr = SocketAddr::new(ip, port);
        let base = match ip {
            IpAddr::V4(v4) => format!("http://{v4}:{port}"),
            IpAddr::V6(v6) => format!("http://[{v6}]:{port}"),
        };
        Ok(Target { addr, base })
    }

    pub(super) fn api(&self, method: &str) -> String {
        format!("{}/api/{method}", self.base)
    }

    pub(super) fn websocket(&self) -> String {
        format!("ws{}/connection/websocket", self.base.trim_start_matches("http"))
    }

    pub(super) fn uni_websocket(&self) -> String {
        format!("ws{}/connection/uni_websocket", self.base.trim_start_matches("http"))
    }

    pub(super) fn uni_http_stream(&self) -> String {
        format!("{}/connection/uni_http_stream", self.base)
    }

    pub(super) fn uni_sse(&self) -> String {
        format!("{}/connection/uni_sse", self.base)
    }

    /// The local address for the connections of `bucket` (each bucket holds
    /// [`CONNECTIONS_PER_SOURCE_IP`]): the first bucket lets the kernel choose, later
    /// ones of an IPv4 loopback target bind 127.0.0.2, .3, … so a run is not capped by
    /// one source address's ephemeral ports.
    pub(super) fn source_ip(&self, bucket: u64) -> Option<IpAddr> {
        match self.addr.ip() {
            IpAddr::V4(_) if bucket > 0 => Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + (bucket % 250) as u8))),
            _ => None,
        }
    }
}

/// Connections per source address (well under the default ephemeral port range).
pub(super) const CONNECTIONS_PER_SOURCE_IP: u64 = 16_000;

fn loopback_ip(host: &str, port: u16) -> anyhow::Result<IpAddr> {
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = literal.parse::<IpAddr>() {
        if ip.is_loopback() {
            return Ok(ip);
        }
        bail!(refusal(host));
    }
    if !literal.eq_ignore_ascii_case("localhost") {
        bail!(refusal(host));
    }
    let addrs: Vec<SocketAddr> =
        (literal, port).to_socket_addrs().with_context(|| format!("resolving {literal}"))?.collect();
    if addrs.is_empty() || addrs.iter().any(|a| !a.ip().is_loopback()) {
        bail!("localhost resolves to {addrs:?}, not only loopback addresses; refusing to load it");
    }
    // Prefer IPv4 when localhost has both: the server's default listener is IPv4.
    let pick = addrs.iter().find(|a| a.is_ipv4()).unwrap_or(&addrs[0]);
    Ok(pick.ip())
}

fn refusal(host: &str) -> String {
    format!(
        "refusing to load {host:?}: rotor bench only targets a server on this machine \
         (127.0.0.0/8, ::1 or localhost)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_loopback_only() {
        for ok in ["http://127.0.0.1:8000", "http://127.9.9.9:1/", "http://[::1]:8000", "http://localhost:8000"] {
            let t = Target::parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert!(t.addr.ip().is_loopback(), "{ok}");
        }
        for bad in ["http://10.0.0.1:8000", "http://example.com", "http://[2001:db8::1]:80", "http://0.0.0.0:8000"] {
            let e = Target::parse(bad).unwrap_err().to_string();
            assert!(e.contains("refusing"), "{bad}: {e}");
        }
        for bad in ["https://127.0.0.1", "http://127.0.0.1:8000/api", "nonsense"] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn derives_endpoints() {
        let t = Target::parse("http://127.0.0.1:8123").unwrap();
        assert_eq!(t.websocket(), "ws://127.0.0.1:8123/connection/websocket");
        assert_eq!(t.api("publish"), "http://127.0.0.1:8123/api/publish");
        let t6 = Target::parse("http://[::1]:9").unwrap();
        assert_eq!(t6.uni_http_stream(), "http://[::1]:9/connection/uni_http_stream");
        assert_eq!(t6.uni_sse(), "http://[::1]:9/connection/uni_sse");
        assert_eq!(t.source_ip(1), Some("127.0.0.2".parse().unwrap()));
        assert_eq!(t.source_ip(0), None);
        assert_eq!(t6.source_ip(1), None);
    }
}
