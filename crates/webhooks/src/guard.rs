//! The guard against server-side request forgery: a delivery never reaches an address inside
//! the operator's network unless the operator's allow-list says so.
//!
//! Refused, for IPv4, IPv6 and IPv4 carried in IPv6 (mapped, compatible, NAT64, 6to4):
//! unspecified, loopback, private (RFC 1918), shared (CGNAT, 100.64/10), link-local (which holds
//! the cloud metadata address 169.254.169.254), unique-local (fc00::/7, which holds AWS's
//! fd00:ec2::254), IETF special-purpose blocks, benchmarking, documentation, multicast,
//! broadcast and reserved addresses. The check runs when an endpoint is created or its url
//! changes, and again on every delivery on the addresses actually connected to: a url naming
//! an address literally is checked before the request, and a host name is resolved by
//! [`GuardedResolver`], which hands the HTTP client only allowed addresses, so a DNS answer
//! that changes after creation (rebinding) cannot lead a delivery inside.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;

/// Which addresses deliveries may reach.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    /// Networks the operator allows although they are special (for example `127.0.0.1/32`
    /// for a receiver on the same machine, `10.0.0.0/8` for an internal service).
    pub allow: Vec<IpNet>,
}

/// Why an address is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{address} is {kind}, which the operator's allow-list (GALLEY_WEBHOOK_ALLOW_NETWORKS) does not permit")]
pub struct AddressRefused {
    /// The address.
    pub address: IpAddr,
    /// What kind of address it is ("a loopback address", …).
    pub kind: &'static str,
}

impl AddressPolicy {
    /// `Err` when a delivery may not reach `address`.
    pub fn check(&self, address: IpAddr) -> Result<(), AddressRefused> {
        let Some(kind) = special(address) else {
            return Ok(());
        };
        let embedded = embedded_v4(address).map(IpAddr::V4);
        let allowed = self
            .allow
            .iter()
            .any(|net| net.contains(&address) || embedded.is_some_and(|v4| net.contains(&v4)));
        if allowed {
            Ok(())
        } else {
            Err(AddressRefused { address, kind })
        }
    }
}

/// The IPv4 address an IPv6 address carries, for the forms that route to it: IPv4-mapped
/// (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`), NAT64 (`64:ff9b::/96`) and 6to4
/// (`2002:aabb:ccdd::/48`).
fn embedded_v4(address: IpAddr) -> Option<Ipv4Addr> {
    let IpAddr::V6(v6) = address else {
        return None;
    };
    let s = v6.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    if s[..6] == [0, 0, 0, 0, 0, 0] && !(s[6] == 0 && s[7] <= 1) {
        return Some(low);
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(low);
    }
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ));
    }
    None
}

fn in_v4(address: Ipv4Addr, net: [u8; 4], prefix: u8) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    };
    (u32::from(address) & mask) == (u32::from(Ipv4Addr::from(net)) & mask)
}

fn in_v6(address: Ipv6Addr, net: Ipv6Addr, prefix: u8) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(prefix))
    };
    (u128::from(address) & mask) == (u128::from(net) & mask)
}

/// What kind of special address this is, or `None` for an ordinary public one.
fn special(address: IpAddr) -> Option<&'static str> {
    match address {
        IpAddr::V4(v4) => special_v4(v4),
        // An IPv4 address carried in IPv6 is judged as the IPv4 address it reaches.
        IpAddr::V6(v6) => match embedded_v4(address) {
            Some(v4) => special_v4(v4),
            None => special_v6(v6),
        },
    }
}

fn special_v4(v4: Ipv4Addr) -> Option<&'static str> {
    const BLOCKS: &[([u8; 4], u8, &str)] = &[
        ([0, 0, 0, 0], 8, "an unspecified (this-network) address"),
        ([10, 0, 0, 0], 8, "a private address"),
        ([100, 64, 0, 0], 10, "a shared (carrier-grade NAT) address"),
        ([127, 0, 0, 0], 8, "a loopback address"),
        (
            [169, 254, 0, 0],
            16,
            "a link-local (or cloud metadata) address",
        ),
        ([172, 16, 0, 0], 12, "a private address"),
        ([192, 0, 0, 0], 24, "an IETF protocol address"),
        ([192, 0, 2, 0], 24, "a documentation address"),
        ([192, 88, 99, 0], 24, "a relay (6to4 anycast) address"),
        ([192, 168, 0, 0], 16, "a private address"),
        ([198, 18, 0, 0], 15, "a benchmarking address"),
        ([198, 51, 100, 0], 24, "a documentation address"),
        ([203, 0, 113, 0], 24, "a documentation address"),
        ([224, 0, 0, 0], 4, "a multicast address"),
        ([240, 0, 0, 0], 4, "a reserved (or broadcast) address"),
    ];
    BLOCKS
        .iter()
        .find(|(net, prefix, _)| in_v4(v4, *net, *prefix))
        .map(|(_, _, kind)| *kind)
}

fn special_v6(v6: Ipv6Addr) -> Option<&'static str> {
    const BLOCKS: &[(u128, u8, &str)] = &[
        (0, 128, "an unspecified address"),
        (1, 128, "a loopback address"),
        // The rest of ::/96 (IPv4-compatible) is judged by the IPv4 address it carries.
        (
            0x0100_0000_0000_0000_0000_0000_0000_0000,
            64,
            "a discard address",
        ),
        (
            0x2001_0000_0000_0000_0000_0000_0000_0000,
            23,
            "an IETF protocol address",
        ),
        (
            0x2001_0db8_0000_0000_0000_0000_0000_0000,
            32,
            "a documentation address",
        ),
        (
            0x3fff_0000_0000_0000_0000_0000_0000_0000,
            20,
            "a documentation address",
        ),
        (
            0xfc00_0000_0000_0000_0000_0000_0000_0000,
            7,
            "a unique-local (private) address",
        ),
        (
            0xfe80_0000_0000_0000_0000_0000_0000_0000,
            10,
            "a link-local address",
        ),
        (
            0xfec0_0000_0000_0000_0000_0000_0000_0000,
            10,
            "a site-local address",
        ),
        (
            0xff00_0000_0000_0000_0000_0000_0000_0000,
            8,
            "a multicast address",
        ),
    ];
    BLOCKS
        .iter()
        .find(|(net, prefix, _)| in_v6(v6, Ipv6Addr::from(*net), *prefix))
        .map(|(_, _, kind)| *kind)
}

/// The address a url names literally (`https://10.0.0.1/`, `https://[::1]/`), if it does.
pub(crate) fn literal_address(url: &reqwest::Url) -> Option<IpAddr> {
    let host = url.host_str()?;
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// The HTTP client's resolver: resolves with the system's resolver and hands on only the
/// addresses the policy allows; when none is left the connection fails with the refusal.
#[derive(Debug, Clone)]
pub(crate) struct GuardedResolver {
    pub(crate) policy: Arc<AddressPolicy>,
}

/// Resolves `host` and keeps the allowed addresses; `Err` with the first refusal when none is
/// allowed, or with the resolver's error.
pub(crate) async fn resolve_allowed(
    policy: &AddressPolicy,
    host: &str,
    port: u16,
) -> Result<Vec<SocketAddr>, ResolveError> {
    let addresses = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| ResolveError::Lookup(e.to_string()))?;
    let mut allowed = Vec::new();
    let mut refused = None;
    for address in addresses {
        match policy.check(address.ip()) {
            Ok(()) => allowed.push(address),
            Err(r) => {
                refused.get_or_insert(r);
            }
        }
    }
    match (allowed.is_empty(), refused) {
        (false, _) => Ok(allowed),
        (true, Some(refused)) => Err(ResolveError::Refused(refused)),
        (true, None) => Err(ResolveError::Lookup("no address".to_owned())),
    }
}

/// Why a host name gave no address to connect to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ResolveError {
    /// Every address it resolved to is refused.
    #[error(transparent)]
    Refused(AddressRefused),
    /// It did not resolve.
    #[error("it does not resolve ({0})")]
    Lookup(String),
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let allowed = resolve_allowed(&policy, &host, 0).await?;
            let addresses: reqwest::dns::Addrs = Box::new(allowed.into_iter());
            Ok(addresses)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn addresses_inside_a_network_are_refused_by_default() {
        let policy = AddressPolicy::default();
        for (address, kind) in [
            ("127.0.0.1", "loopback"),
            ("127.8.9.10", "loopback"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "metadata"),
            ("100.64.0.1", "carrier-grade"),
            ("100.100.100.200", "carrier-grade"),
            ("0.0.0.0", "unspecified"),
            ("224.0.0.1", "multicast"),
            ("255.255.255.255", "broadcast"),
            ("192.0.2.7", "documentation"),
            ("198.51.100.7", "documentation"),
            ("203.0.113.7", "documentation"),
            ("198.18.0.1", "benchmarking"),
            ("::", "unspecified"),
            ("::1", "loopback"),
            ("fe80::1", "link-local"),
            ("fc00::1", "unique-local"),
            ("fd00:ec2::254", "unique-local"),
            ("ff02::1", "multicast"),
            ("2001:db8::1", "documentation"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:169.254.169.254", "metadata"),
            ("::ffff:10.0.0.1", "private"),
            ("::127.0.0.1", "loopback"),
            ("64:ff9b::a00:1", "private"),
            ("2002:c0a8:0101::1", "private"),
        ] {
            let refused = policy.check(ip(address)).expect_err(address);
            assert!(refused.kind.contains(kind), "{address}: {}", refused.kind);
            assert!(
                refused.to_string().contains(&ip(address).to_string()),
                "{refused}"
            );
        }
    }

    #[test]
    fn public_addresses_are_allowed() {
        let policy = AddressPolicy::default();
        for address in [
            "93.184.215.14",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert_eq!(policy.check(ip(address)), Ok(()), "{address}");
        }
    }

    #[test]
    fn the_allow_list_lets_named_networks_through_and_no_others() {
        let policy = AddressPolicy {
            allow: vec![
                "127.0.0.1/32".parse().unwrap(),
                "10.0.0.0/8".parse().unwrap(),
            ],
        };
        assert_eq!(policy.check(ip("127.0.0.1")), Ok(()));
        assert_eq!(policy.check(ip("::ffff:127.0.0.1")), Ok(()));
        assert_eq!(policy.check(ip("10.200.0.1")), Ok(()));
        assert!(policy.check(ip("127.0.0.2")).is_err());
        assert!(policy.check(ip("::1")).is_err());
        assert!(policy.check(ip("192.168.0.1")).is_err());
        assert!(policy.check(ip("169.254.169.254")).is_err());
    }

    #[tokio::test]
    async fn a_name_resolving_only_to_refused_addresses_gives_no_address() {
        let policy = AddressPolicy::default();
        let refused = resolve_allowed(&policy, "localhost", 80).await.unwrap_err();
        assert!(
            matches!(&refused, ResolveError::Refused(r) if r.kind.contains("loopback")),
            "{refused:?}"
        );
        let allowed = AddressPolicy {
            allow: vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()],
        };
        let addresses = resolve_allowed(&allowed, "localhost", 80).await.unwrap();
        assert!(
            addresses.iter().all(|a| a.ip().is_loopback()),
            "{addresses:?}"
        );
    }
}
