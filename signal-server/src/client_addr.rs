//! The client's address, as the per-address limits see it: the TCP peer's,
//! or behind a trusted proxy (`TRUST_PROXY`) the last `X-Forwarded-For`
//! entry, the one the proxy in front of us appended (Heroku's router, nginx
//! with `proxy_add_x_forwarded_for`); earlier entries are the client's to
//! forge. The same rule as the connection limit's (`conn_limit.rs`).

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, HeaderName, Request};

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The client's address: the TCP peer, or the proxy's last `X-Forwarded-For` entry.
pub fn client_ip(headers: &HeaderMap, peer: Option<IpAddr>, trust_proxy: bool) -> Option<IpAddr> {
    if trust_proxy {
        let forwarded = headers
            .get_all(X_FORWARDED_FOR)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|s| s.trim().parse::<IpAddr>().ok())
            .next_back();
        if forwarded.is_some() {
            return forwarded;
        }
    }
    peer
}

/// [`client_ip`] of a request, its peer from `ConnectInfo<SocketAddr>`.
pub fn of_request<B>(req: &Request<B>, trust_proxy: bool) -> Option<IpAddr> {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    client_ip(req.headers(), peer, trust_proxy)
}

/// What a per-address budget counts by: an IPv4 address, or the /64 of an
/// IPv6 one (one subscriber's network: a host picks any address in it).
pub fn budget_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & !u128::from(u64::MAX))),
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_is_read_only_behind_a_trusted_proxy() {
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", "1.1.1.1, 2.2.2.2".parse().unwrap());
        h.append("x-forwarded-for", "3.3.3.3".parse().unwrap());
        let peer = Some("127.0.0.1".parse().unwrap());
        assert_eq!(client_ip(&h, peer, true), "3.3.3.3".parse().ok());
        assert_eq!(client_ip(&h, peer, false), peer);
        assert_eq!(client_ip(&HeaderMap::new(), peer, true), peer);
    }

    #[test]
    fn ipv6_budgets_are_per_64() {
        let k = |s: &str| budget_key(s.parse().unwrap()).to_string();
        assert_eq!(k("10.1.2.3"), "10.1.2.3");
        assert_eq!(k("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), "2001:db8:1:2::");
        assert_eq!(k("::ffff:10.1.2.3"), "10.1.2.3");
    }
}
