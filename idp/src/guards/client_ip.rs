//! Which IP address a request comes from: the connection's peer, or, when the peer is
//! a trusted reverse proxy (`IDP_TRUSTED_PROXIES`), the right-most address of
//! `X-Forwarded-For` that is not itself a trusted proxy. Addresses further left were
//! written by the client and could be anything, so they are never believed.

use std::net::IpAddr;

use serde::{Deserialize, Deserializer};

/// The reverse proxies whose `X-Forwarded-For` is believed. Configured as a
/// comma-separated string (`IDP_TRUSTED_PROXIES=10.0.0.1,10.0.0.2`) or a TOML list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(pub Vec<IpAddr>);

impl<'de> Deserialize<'de> for TrustedProxies {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(String),
            Many(Vec<String>),
        }
        let items = match Raw::deserialize(deserializer)? {
            Raw::One(s) => s
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            Raw::Many(v) => v,
        };
        items
            .iter()
            .map(|s| {
                s.trim().parse::<IpAddr>().map_err(|_| {
                    serde::de::Error::custom(format!(
                        "IDP_TRUSTED_PROXIES: {s:?} is not an IP address"
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }
}

impl TrustedProxies {
    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.contains(&ip)
    }

    /// The client's address, given the peer's and the `X-Forwarded-For` header values
    /// in the order they arrived.
    pub fn client_ip<'a>(
        &self,
        peer: IpAddr,
        forwarded_for: impl IntoIterator<Item = &'a str>,
    ) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let hops: Vec<&str> = forwarded_for
            .into_iter()
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            let Ok(ip) = hop.parse::<IpAddr>() else {
                // Unparseable: stop at the last address we could trust.
                return client;
            };
            client = ip;
            if !self.trusts(ip) {
                return ip;
            }
        }
        client
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let none = TrustedProxies::default();
        assert_eq!(none.client_ip(ip("1.2.3.4"), ["9.9.9.9"]), ip("1.2.3.4"));
        let proxies = TrustedProxies(vec![ip("10.0.0.1"), ip("10.0.0.2")]);
        assert_eq!(proxies.client_ip(ip("1.2.3.4"), ["9.9.9.9"]), ip("1.2.3.4"));
        // The client may prepend anything; the right-most untrusted hop counts.
        assert_eq!(
            proxies.client_ip(ip("10.0.0.1"), ["6.6.6.6, 5.5.5.5", "10.0.0.2"]),
            ip("5.5.5.5")
        );
        assert_eq!(proxies.client_ip(ip("10.0.0.1"), []), ip("10.0.0.1"));
        assert_eq!(
            proxies.client_ip(ip("10.0.0.1"), ["garbage, 10.0.0.2"]),
            ip("10.0.0.2")
        );
    }

    #[test]
    fn trusted_proxies_parse_from_a_comma_separated_string() {
        let parsed: TrustedProxies = serde_json::from_str("\"10.0.0.1, ::1\"").unwrap();
        assert_eq!(parsed.0, vec![ip("10.0.0.1"), ip("::1")]);
        assert!(serde_json::from_str::<TrustedProxies>("\"nope\"").is_err());
        let empty: TrustedProxies = serde_json::from_str("\"\"").unwrap();
        assert!(empty.0.is_empty());
    }
}
