//! The special-purpose address ranges the default policy refuses, and how an address is
//! classified (IPv4-mapped IPv6 canonicalised first).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// A special-purpose address range: an address in one is refused by the default
/// [`NetworkPolicy`](super::NetworkPolicy).
///
/// `Display` names the range with its blocks, e.g. `loopback (127.0.0.0/8, ::1/128)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SpecialRange {
    /// "This network", `0.0.0.0/8` (except `0.0.0.0` itself, which is [`Unspecified`](Self::Unspecified)).
    ThisNetwork,
    /// Loopback: `127.0.0.0/8`, `::1`.
    Loopback,
    /// Private networks (RFC 1918): `10.0.0.0/8`, `172.16.0.0/12`, `192.168.0.0/16`.
    Private,
    /// Link-local: `169.254.0.0/16` (including the cloud metadata address `169.254.169.254`),
    /// `fe80::/10`.
    LinkLocal,
    /// Shared address space, carrier-grade NAT (RFC 6598): `100.64.0.0/10`.
    SharedAddressSpace,
    /// Multicast: `224.0.0.0/4`, `ff00::/8`.
    Multicast,
    /// Limited broadcast: `255.255.255.255`.
    Broadcast,
    /// Documentation: `192.0.2.0/24`, `198.51.100.0/24`, `203.0.113.0/24`, `2001:db8::/32`,
    /// `3fff::/20`.
    Documentation,
    /// Benchmarking: `198.18.0.0/15`, `2001:2::/48`.
    Benchmarking,
    /// Reserved: `240.0.0.0/4`, and every IPv6 address outside global unicast `2000::/3` not
    /// named by another range.
    Reserved,
    /// IETF protocol assignments: `192.0.0.0/24`, `2001::/23`. A few of these are globally
    /// reachable; all are refused, for simplicity.
    IetfProtocolAssignments,
    /// Unspecified: `0.0.0.0`, `::`.
    Unspecified,
    /// IPv6 unique local addresses: `fc00::/7`.
    UniqueLocal,
    /// Deprecated IPv6 site-local addresses: `fec0::/10`.
    SiteLocal,
    /// 6to4: `2002::/16` (embeds an IPv4 address).
    SixToFour,
    /// NAT64: `64:ff9b::/96`, `64:ff9b:1::/48` (embeds an IPv4 address).
    Nat64,
    /// Teredo: `2001::/32` (embeds an IPv4 address).
    Teredo,
    /// IPv6 discard-only: `100::/64`.
    DiscardOnly,
}

impl SpecialRange {
    /// A short human name, e.g. `"loopback"`.
    pub fn name(self) -> &'static str {
        match self {
            Self::ThisNetwork => "\"this network\"",
            Self::Loopback => "loopback",
            Self::Private => "private network",
            Self::LinkLocal => "link-local",
            Self::SharedAddressSpace => "shared (carrier-grade NAT)",
            Self::Multicast => "multicast",
            Self::Broadcast => "broadcast",
            Self::Documentation => "documentation",
            Self::Benchmarking => "benchmarking",
            Self::Reserved => "reserved",
            Self::IetfProtocolAssignments => "IETF protocol assignment",
            Self::Unspecified => "unspecified",
            Self::UniqueLocal => "unique local",
            Self::SiteLocal => "site-local",
            Self::SixToFour => "6to4",
            Self::Nat64 => "NAT64",
            Self::Teredo => "Teredo",
            Self::DiscardOnly => "discard-only",
        }
    }

    /// The blocks of this range, as `Display` shows them, for the family of `ip` (after
    /// [`canonicalize`]); the one containing `ip` alone if there is one.
    pub(super) fn blocks_for(self, ip: IpAddr) -> String {
        let canonical = canonicalize(ip);
        let family: Vec<IpNet> = BLOCKS
            .iter()
            .filter(|(net, range)| *range == self && net.addr().is_ipv4() == canonical.is_ipv4())
            .map(|(net, _)| *net)
            .collect();
        if let Some(net) = family.iter().find(|net| net.contains(&canonical)) {
            net.to_string()
        } else if self == Self::Reserved && canonical.is_ipv6() {
            RESERVED_V6_TEXT.to_owned()
        } else {
            join(family.iter())
        }
    }
}

impl fmt::Display for SpecialRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nets = BLOCKS
            .iter()
            .filter(|(_, range)| range == self)
            .map(|(net, _)| net);
        let mut blocks = join(nets);
        if *self == Self::Reserved {
            blocks.push_str(", ");
            blocks.push_str(RESERVED_V6_TEXT);
        }
        write!(f, "{} ({blocks})", self.name())
    }
}

fn join<'a>(nets: impl Iterator<Item = &'a IpNet>) -> String {
    nets.map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

const RESERVED_V6_TEXT: &str = "IPv6 outside 2000::/3";

const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> IpNet {
    IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), prefix))
}

const fn v6(segments: [u16; 8], prefix: u8) -> IpNet {
    let [a, b, c, d, e, f, g, h] = segments;
    IpNet::V6(Ipv6Net::new_assert(
        Ipv6Addr::new(a, b, c, d, e, f, g, h),
        prefix,
    ))
}

/// Every special-purpose block, most specific first (the first match names the range). The
/// ranges std can test are classified with std's methods; this table is what those methods
/// cover plus everything else, used for the explicit checks and for messages.
pub(super) const BLOCKS: &[(IpNet, SpecialRange)] = &[
    // IPv4
    (v4(0, 0, 0, 0, 32), SpecialRange::Unspecified),
    (v4(0, 0, 0, 0, 8), SpecialRange::ThisNetwork),
    (v4(127, 0, 0, 0, 8), SpecialRange::Loopback),
    (v4(10, 0, 0, 0, 8), SpecialRange::Private),
    (v4(172, 16, 0, 0, 12), SpecialRange::Private),
    (v4(192, 168, 0, 0, 16), SpecialRange::Private),
    (v4(169, 254, 0, 0, 16), SpecialRange::LinkLocal),
    (v4(100, 64, 0, 0, 10), SpecialRange::SharedAddressSpace),
    (v4(224, 0, 0, 0, 4), SpecialRange::Multicast),
    (v4(255, 255, 255, 255, 32), SpecialRange::Broadcast),
    (v4(192, 0, 2, 0, 24), SpecialRange::Documentation),
    (v4(198, 51, 100, 0, 24), SpecialRange::Documentation),
    (v4(203, 0, 113, 0, 24), SpecialRange::Documentation),
    (v4(198, 18, 0, 0, 15), SpecialRange::Benchmarking),
    (v4(192, 0, 0, 0, 24), SpecialRange::IetfProtocolAssignments),
    (v4(240, 0, 0, 0, 4), SpecialRange::Reserved),
    // IPv6 (IPv4-mapped and IPv4-compatible addresses are classified as their IPv4 address)
    (v6([0, 0, 0, 0, 0, 0, 0, 0], 128), SpecialRange::Unspecified),
    (v6([0, 0, 0, 0, 0, 0, 0, 1], 128), SpecialRange::Loopback),
    (
        v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10),
        SpecialRange::LinkLocal,
    ),
    (
        v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8),
        SpecialRange::Multicast,
    ),
    (
        v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7),
        SpecialRange::UniqueLocal,
    ),
    (
        v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10),
        SpecialRange::SiteLocal,
    ),
    (
        v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32),
        SpecialRange::Documentation,
    ),
    (
        v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20),
        SpecialRange::Documentation,
    ),
    (
        v6([0x2001, 2, 0, 0, 0, 0, 0, 0], 48),
        SpecialRange::Benchmarking,
    ),
    (v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 32), SpecialRange::Teredo),
    (
        v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23),
        SpecialRange::IetfProtocolAssignments,
    ),
    (
        v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16),
        SpecialRange::SixToFour,
    ),
    (
        v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96),
        SpecialRange::Nat64,
    ),
    (
        v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48),
        SpecialRange::Nat64,
    ),
    (
        v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64),
        SpecialRange::DiscardOnly,
    ),
];

/// Global unicast, the only IPv6 space the public internet routes.
const GLOBAL_UNICAST_V6: Ipv6Net =
    Ipv6Net::new_assert(Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0), 3);

pub(super) fn lookup(ip: IpAddr) -> Option<SpecialRange> {
    BLOCKS
        .iter()
        .find(|(net, _)| net.contains(&ip))
        .map(|(_, range)| *range)
}

/// The IPv4 address an IPv4-mapped (`::ffff:a.b.c.d`) or IPv4-compatible (`::a.b.c.d`) IPv6
/// address stands for; any other address unchanged.
///
/// Unlike [`Ipv6Addr::to_ipv4`], `::` and `::1` stay IPv6 (unspecified and loopback, not
/// `0.0.0.0` and `0.0.0.1`); unlike [`IpAddr::to_canonical`], IPv4-compatible addresses are
/// converted too.
pub fn canonicalize(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) if !v6.is_unspecified() && !v6.is_loopback() => {
            v6.to_ipv4().map_or(ip, IpAddr::V4)
        }
        _ => ip,
    }
}

/// The special-purpose range `ip` is in, or `None` if it is globally routable.
///
/// IPv4-mapped and IPv4-compatible IPv6 addresses are classified as the IPv4 address they
/// embed ([`canonicalize`]), so `::ffff:127.0.0.1` is [`SpecialRange::Loopback`].
///
/// ```
/// use webhooks::ssrf::{classify, SpecialRange};
///
/// assert_eq!(classify("169.254.169.254".parse()?), Some(SpecialRange::LinkLocal));
/// assert_eq!(classify("::ffff:10.0.0.1".parse()?), Some(SpecialRange::Private));
/// assert_eq!(classify("8.8.8.8".parse()?), None);
/// # Ok::<(), std::net::AddrParseError>(())
/// ```
pub fn classify(ip: IpAddr) -> Option<SpecialRange> {
    match canonicalize(ip) {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<SpecialRange> {
    // std's stable predicates first; `lookup` covers the rest (shared, benchmarking, reserved,
    // protocol assignments, "this network"), whose std methods are unstable.
    let range = if ip.is_unspecified() {
        SpecialRange::Unspecified
    } else if ip.is_loopback() {
        SpecialRange::Loopback
    } else if ip.is_private() {
        SpecialRange::Private
    } else if ip.is_link_local() {
        SpecialRange::LinkLocal
    } else if ip.is_multicast() {
        SpecialRange::Multicast
    } else if ip.is_broadcast() {
        SpecialRange::Broadcast
    } else if ip.is_documentation() {
        SpecialRange::Documentation
    } else {
        return lookup(IpAddr::V4(ip));
    };
    Some(range)
}

fn classify_v6(ip: Ipv6Addr) -> Option<SpecialRange> {
    let range = if ip.is_unspecified() {
        SpecialRange::Unspecified
    } else if ip.is_loopback() {
        SpecialRange::Loopback
    } else if ip.is_multicast() {
        SpecialRange::Multicast
    } else if ip.is_unique_local() {
        SpecialRange::UniqueLocal
    } else if ip.is_unicast_link_local() {
        SpecialRange::LinkLocal
    } else if let Some(range) = lookup(IpAddr::V6(ip)) {
        range
    } else if !GLOBAL_UNICAST_V6.contains(&ip) {
        // Outside 2000::/3 everything is special or unallocated (::/8, 100::/8, 5f00::/16, …).
        SpecialRange::Reserved
    } else {
        return None;
    };
    Some(range)
}
