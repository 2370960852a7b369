//! Server-side request forgery (SSRF) guard: webhooks go to the public internet only.
//!
//! A webhook URL is chosen by whoever subscribes, so without a guard a subscriber could make the
//! sender `POST` to `http://169.254.169.254/` (cloud metadata), `http://localhost:6379/` or any
//! host on the sender's private network. [`NetworkPolicy`] refuses every special-purpose address
//! range ([`SpecialRange`]) by default, and is enforced at two points, because the HTTP client
//! only consults a custom resolver for *names*:
//!
//! - [`NetworkPolicy::check_url`] checks the scheme and an IP-literal host
//!   (`http://127.0.0.1/`, `http://[::ffff:10.0.0.1]/`), at subscribe time and again before each
//!   send.
//! - [`GuardedResolver`], installed as the client's DNS resolver, checks every address a name
//!   resolves to and hands the client only the allowed ones, so the addresses that were vetted
//!   are exactly the ones it connects to (no DNS-rebinding window).
//!
//! [`NetworkPolicy::configure`] installs the resolver, disables proxies (a proxy would do its own
//! resolution) and disables redirects (a redirect to an IP literal would bypass the resolver).
//!
//! ```
//! use webhooks::ssrf::{Blocked, NetworkPolicy, SpecialRange};
//!
//! let policy = NetworkPolicy::default();
//! let metadata = url::Url::parse("http://169.254.169.254/latest/meta-data/")?;
//! assert!(matches!(
//!     policy.check_url(&metadata),
//!     Err(Blocked::Address { range: SpecialRange::LinkLocal, .. })
//! ));
//! assert_eq!(policy.check_url(&url::Url::parse("https://example.com/hook")?), Ok(()));
//!
//! // Development and tests: deliver to a receiver on this machine.
//! let dev = NetworkPolicy::new().allow_private_networks();
//! assert_eq!(dev.check_url(&url::Url::parse("http://127.0.0.1:8080/hook")?), Ok(()));
//!
//! // The client: every name is resolved through the guard, no proxy, no redirects.
//! let client = policy.configure(reqwest::Client::builder()).build()?;
//! # drop(client);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::error::Error as StdError;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// Which destinations webhooks may be delivered to.
///
/// The default refuses every address in a [`SpecialRange`] (loopback, private, link-local, …) and
/// allows both `http` and `https`. Cheap to clone.
///
/// ```
/// use webhooks::ssrf::NetworkPolicy;
///
/// let policy = NetworkPolicy::new()
///     .https_only()
///     .allow_cidr("10.20.0.0/16".parse()?);
/// assert!(policy.check_ip("10.20.1.2".parse()?).is_ok());
/// assert!(policy.check_ip("10.21.1.2".parse()?).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct NetworkPolicy {
    allow_private_networks: bool,
    allowed_nets: Vec<IpNet>,
    https_only: bool,
}

impl NetworkPolicy {
    /// The default policy: special-purpose addresses refused, `http` and `https` allowed.
    pub fn new() -> Self {
        Self::default()
    }

    /// Turns the address guard off: every address is allowed, including loopback and private
    /// networks. For development and tests only; the scheme checks still apply.
    pub fn allow_private_networks(mut self) -> Self {
        self.allow_private_networks = true;
        self
    }

    /// Allows the addresses in `net` even if they are in a [`SpecialRange`], e.g. an internal
    /// receiver on `10.20.0.0/16`. May be called several times.
    ///
    /// An IPv4 net also covers the IPv4-mapped IPv6 form of its addresses (`::ffff:10.20.0.1`).
    pub fn allow_cidr(mut self, net: IpNet) -> Self {
        // `trunc` so that `Debug` shows the network, not whatever host address was written.
        self.allowed_nets.push(net.trunc());
        self
    }

    /// Refuses `http` URLs: only `https` is allowed.
    pub fn https_only(mut self) -> Self {
        self.https_only = true;
        self
    }

    /// Whether the address guard is off ([`allow_private_networks`](Self::allow_private_networks)).
    pub fn is_private_networks_allowed(&self) -> bool {
        self.allow_private_networks
    }

    /// The nets allowed with [`allow_cidr`](Self::allow_cidr).
    pub fn allowed_cidrs(&self) -> &[IpNet] {
        &self.allowed_nets
    }

    /// Whether only `https` URLs are allowed ([`https_only`](Self::https_only)).
    pub fn is_https_only(&self) -> bool {
        self.https_only
    }

    /// Checks a webhook URL: the scheme is `http` or `https` (only `https` with
    /// [`https_only`](Self::https_only)), there is a host, and a host that is an IP literal is
    /// allowed by [`check_ip`](Self::check_ip).
    ///
    /// A host name is not resolved here: [`GuardedResolver`] checks its addresses when the client
    /// connects (or use [`GuardedResolver::check_url`] to check them now). The URL parser has
    /// already turned numeric hosts such as `0x7f.1` or `2130706433` into IPv4 literals, so they
    /// are checked as addresses.
    pub fn check_url(&self, url: &Url) -> Result<(), Blocked> {
        match url.scheme() {
            "https" => {}
            "http" if self.https_only => return Err(Blocked::HttpsRequired),
            "http" => {}
            other => return Err(Blocked::Scheme(other.to_owned())),
        }
        match url.host() {
            None => Err(Blocked::MissingHost),
            // An empty name cannot be resolved to anything meaningful.
            Some(Host::Domain("")) => Err(Blocked::MissingHost),
            Some(Host::Domain(_)) => Ok(()),
            Some(Host::Ipv4(ip)) => self.check_ip(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => self.check_ip(IpAddr::V6(ip)),
        }
    }

    /// Checks one address: allowed if the guard is off, if it is in an
    /// [allowed net](Self::allow_cidr), or if [`classify`] finds it globally routable.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Blocked> {
        if self.allow_private_networks {
            return Ok(());
        }
        let canonical = canonicalize(ip);
        if self
            .allowed_nets
            .iter()
            .any(|net| net.contains(&ip) || net.contains(&canonical))
        {
            return Ok(());
        }
        match classify(ip) {
            None => Ok(()),
            Some(range) => Err(Blocked::Address { ip, range }),
        }
    }

    /// Installs this policy on a client builder: a [`GuardedResolver`] with the system resolver,
    /// no proxies (a proxy resolves and connects on its own, unchecked) and no redirects (the
    /// client follows redirects to IP literals without asking the resolver).
    ///
    /// To follow redirects anyway, call `.redirect(policy.redirect_policy(n))` afterwards.
    /// Do not add `resolve`/`resolve_to_addrs` overrides: reqwest applies them on top of the
    /// resolver, unchecked. IP-literal URLs still have to be checked with
    /// [`check_url`](Self::check_url) before each request.
    pub fn configure(&self, builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
        builder
            .no_proxy()
            .dns_resolver(GuardedResolver::new(self.clone()))
            .redirect(reqwest::redirect::Policy::none())
    }

    /// A redirect policy that follows at most `max_redirects` redirects, each to a URL allowed by
    /// [`check_url`](Self::check_url); a refused target fails the request with [`Blocked`] as
    /// the error's source (see [`find_blocked`]).
    pub fn redirect_policy(&self, max_redirects: usize) -> reqwest::redirect::Policy {
        let policy = self.clone();
        reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > max_redirects {
                attempt.error(format!("too many redirects (more than {max_redirects})"))
            } else if let Err(blocked) = policy.check_url(attempt.url()) {
                attempt.error(blocked)
            } else {
                attempt.follow()
            }
        })
    }

    /// Splits resolved addresses into the allowed ones and the refused ones (with their range).
    fn partition(
        &self,
        addrs: impl IntoIterator<Item = SocketAddr>,
    ) -> (Vec<SocketAddr>, Vec<(IpAddr, SpecialRange)>) {
        let mut allowed = Vec::new();
        let mut refused = Vec::new();
        for addr in addrs {
            match self.check_ip(addr.ip()) {
                Ok(()) => allowed.push(addr),
                Err(Blocked::Address { ip, range }) => {
                    if !refused.contains(&(ip, range)) {
                        refused.push((ip, range));
                    }
                }
                // `check_ip` only ever refuses with `Address`; keep the address out regardless.
                Err(_) => {}
            }
        }
        (allowed, refused)
    }
}

/// A special-purpose address range: an address in one is refused by the default
/// [`NetworkPolicy`].
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
    fn blocks_for(self, ip: IpAddr) -> String {
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
const BLOCKS: &[(IpNet, SpecialRange)] = &[
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

fn lookup(ip: IpAddr) -> Option<SpecialRange> {
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

/// Why a webhook destination was refused.
///
/// Find it in an error returned by a guarded `reqwest` client with [`find_blocked`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Blocked {
    /// The URL's scheme is neither `http` nor `https`.
    #[error("webhook URL scheme `{0}` is not allowed: use http or https")]
    Scheme(String),
    /// The URL is `http` but the policy is [`https_only`](NetworkPolicy::https_only).
    #[error("webhook URL must use https (the network policy is https_only)")]
    HttpsRequired,
    /// The URL has no host.
    #[error("webhook URL has no host")]
    MissingHost,
    /// The address is in a special-purpose range.
    #[error(
        "refusing to send a webhook to {ip}: {} address ({}); to allow it, use \
         NetworkPolicy::allow_cidr, or NetworkPolicy::allow_private_networks in development",
        .range.name(),
        .range.blocks_for(*.ip)
    )]
    Address {
        /// The refused address, as found in the URL or resolved.
        ip: IpAddr,
        /// The range it is in.
        range: SpecialRange,
    },
    /// The host name resolved only to refused addresses.
    #[error(
        "refusing to send a webhook to `{host}`: it resolves only to non-public addresses ({}); \
         to allow them, use NetworkPolicy::allow_cidr, or \
         NetworkPolicy::allow_private_networks in development",
        describe_refused(.refused)
    )]
    NoAllowedAddress {
        /// The host name.
        host: String,
        /// Every address it resolved to, with its range.
        refused: Vec<(IpAddr, SpecialRange)>,
    },
    /// The host name could not be resolved, so its addresses could not be checked. Possibly
    /// transient.
    #[error("could not resolve `{host}` to check its addresses: {message}")]
    Resolve {
        /// The host name.
        host: String,
        /// What went wrong.
        message: String,
    },
}

fn describe_refused(refused: &[(IpAddr, SpecialRange)]) -> String {
    refused
        .iter()
        .map(|(ip, range)| format!("{ip} is {} ({})", range.name(), range.blocks_for(*ip)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The [`Blocked`] in `error` or in its chain of [sources](StdError::source), if any: tells a
/// refused destination (permanent, not worth retrying) from a network failure.
///
/// ```no_run
/// # async fn send(client: reqwest::Client) {
/// if let Err(error) = client.post("http://localhost/hook").send().await {
///     if let Some(blocked) = webhooks::ssrf::find_blocked(&error) {
///         eprintln!("not delivering: {blocked}");
///     }
/// }
/// # }
/// ```
pub fn find_blocked<'a>(error: &'a (dyn StdError + 'static)) -> Option<&'a Blocked> {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(blocked) = error.downcast_ref::<Blocked>() {
            return Some(blocked);
        }
        current = error.source();
    }
    None
}

/// A `reqwest` DNS resolver that resolves with an inner resolver and keeps only the addresses
/// the [`NetworkPolicy`] allows, so the client connects only to vetted addresses.
///
/// If none remain, resolution fails with [`Blocked::NoAllowedAddress`] (an empty answer fails
/// with [`Blocked::Resolve`]); find it with [`find_blocked`]. Errors of the inner resolver are
/// passed through unchanged.
///
/// `reqwest` does not consult the resolver for a URL whose host is an IP literal: check URLs
/// with [`NetworkPolicy::check_url`] too.
///
/// ```
/// use std::sync::Arc;
/// use webhooks::ssrf::{GuardedResolver, NetworkPolicy};
///
/// let client = reqwest::Client::builder()
///     .dns_resolver(Arc::new(GuardedResolver::new(NetworkPolicy::default())))
///     .no_proxy()
///     .build()?;
/// # drop(client);
/// # Ok::<(), reqwest::Error>(())
/// ```
#[derive(Clone)]
pub struct GuardedResolver {
    policy: Arc<NetworkPolicy>,
    inner: Arc<dyn Resolve>,
}

impl GuardedResolver {
    /// Guards the system resolver (`getaddrinfo`, on tokio's blocking pool; needs a tokio
    /// runtime, as `reqwest` does).
    pub fn new(policy: NetworkPolicy) -> Self {
        Self::with_resolver(policy, Arc::new(SystemResolver))
    }

    /// Guards any resolver: hickory, a fixed table in tests, …
    pub fn with_resolver(policy: NetworkPolicy, inner: Arc<dyn Resolve>) -> Self {
        Self {
            policy: Arc::new(policy),
            inner,
        }
    }

    /// The policy enforced.
    pub fn policy(&self) -> &NetworkPolicy {
        &self.policy
    }

    /// Everything that is checked when sending, without connecting: [`NetworkPolicy::check_url`],
    /// then for a host name, resolution and a check of each address. Returns the allowed
    /// addresses, with the URL's port. For a subscribe-time check; the addresses may change
    /// before sending, which the resolver checks again then.
    pub async fn check_url(&self, url: &Url) -> Result<Vec<SocketAddr>, Blocked> {
        self.policy.check_url(url)?;
        let port = url.port_or_known_default().unwrap_or(0);
        let host = match url.host() {
            Some(Host::Domain(host)) => host,
            Some(Host::Ipv4(ip)) => return Ok(vec![SocketAddr::new(IpAddr::V4(ip), port)]),
            Some(Host::Ipv6(ip)) => return Ok(vec![SocketAddr::new(IpAddr::V6(ip), port)]),
            None => return Err(Blocked::MissingHost),
        };
        let resolve_error = |message: String| Blocked::Resolve {
            host: host.to_owned(),
            message,
        };
        let name: Name = host.parse().map_err(|e| resolve_error(format!("{e}")))?;
        let addrs = self
            .inner
            .resolve(name)
            .await
            .map_err(|e| resolve_error(e.to_string()))?;
        let mut allowed = vet(&self.policy, host, addrs)?;
        // What the client does too: the URL's port wins.
        for addr in &mut allowed {
            addr.set_port(port);
        }
        Ok(allowed)
    }
}

impl fmt::Debug for GuardedResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuardedResolver")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = Arc::clone(&self.policy);
        let host = name.as_str().to_owned();
        let resolving = self.inner.resolve(name);
        Box::pin(async move {
            let addrs = resolving.await?;
            // `?` boxes the `Blocked` itself, so `find_blocked` can downcast to it.
            let allowed = vet(&policy, &host, addrs)?;
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// The allowed addresses of `host`, or why there are none.
fn vet(policy: &NetworkPolicy, host: &str, addrs: Addrs) -> Result<Vec<SocketAddr>, Blocked> {
    let (allowed, refused) = policy.partition(addrs);
    if !allowed.is_empty() {
        Ok(allowed)
    } else if refused.is_empty() {
        Err(Blocked::Resolve {
            host: host.to_owned(),
            message: "no addresses".to_owned(),
        })
    } else {
        Err(Blocked::NoAllowedAddress {
            host: host.to_owned(),
            refused,
        })
    }
}

/// `getaddrinfo` via tokio; reqwest's own system resolver is not public.
struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // Port 0: reqwest replaces it with the URL's port.
            let addrs = tokio::net::lookup_host((host.as_str(), 0)).await?;
            Ok(Box::new(addrs.collect::<Vec<_>>().into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;
    use SpecialRange::*;

    /// At least one address of every range, edges where cheap. IPv4 entries are also tried in
    /// their IPv4-mapped and IPv4-compatible IPv6 forms.
    const REFUSED: &[(&str, SpecialRange)] = &[
        ("0.0.0.0", Unspecified),
        ("::", Unspecified),
        ("0.0.0.1", ThisNetwork),
        ("0.255.255.255", ThisNetwork),
        ("127.0.0.0", Loopback),
        ("127.0.0.1", Loopback),
        ("127.255.255.255", Loopback),
        ("::1", Loopback),
        ("10.0.0.0", Private),
        ("10.255.255.255", Private),
        ("172.16.0.0", Private),
        ("172.31.255.255", Private),
        ("192.168.0.0", Private),
        ("192.168.255.255", Private),
        ("169.254.0.0", LinkLocal),
        ("169.254.169.254", LinkLocal),
        ("169.254.255.255", LinkLocal),
        ("fe80::", LinkLocal),
        ("fe80::1", LinkLocal),
        ("febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", LinkLocal),
        ("100.64.0.0", SharedAddressSpace),
        ("100.127.255.255", SharedAddressSpace),
        ("224.0.0.0", Multicast),
        ("224.0.0.251", Multicast),
        ("239.255.255.255", Multicast),
        ("ff00::", Multicast),
        ("ff02::1", Multicast),
        ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Multicast),
        ("255.255.255.255", Broadcast),
        ("192.0.2.0", Documentation),
        ("192.0.2.255", Documentation),
        ("198.51.100.0", Documentation),
        ("198.51.100.255", Documentation),
        ("203.0.113.0", Documentation),
        ("203.0.113.255", Documentation),
        ("2001:db8::", Documentation),
        ("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", Documentation),
        ("3fff::1", Documentation),
        ("3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff", Documentation),
        ("198.18.0.0", Benchmarking),
        ("198.19.255.255", Benchmarking),
        ("2001:2::", Benchmarking),
        ("2001:2:0:ffff:ffff:ffff:ffff:ffff", Benchmarking),
        ("240.0.0.0", Reserved),
        ("255.255.255.254", Reserved),
        ("5f00::1", Reserved),
        ("4000::1", Reserved),
        ("200::1", Reserved),
        ("::ffff:0:7f00:1", Reserved),
        ("192.0.0.0", IetfProtocolAssignments),
        ("192.0.0.9", IetfProtocolAssignments),
        ("192.0.0.255", IetfProtocolAssignments),
        ("2001:1::1", IetfProtocolAssignments),
        ("2001:4:112::1", IetfProtocolAssignments),
        (
            "2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff",
            IetfProtocolAssignments,
        ),
        ("fc00::", UniqueLocal),
        ("fd12:3456::1", UniqueLocal),
        ("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", UniqueLocal),
        ("fec0::", SiteLocal),
        ("feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", SiteLocal),
        ("2002::", SixToFour),
        ("2002:7f00:1::1", SixToFour),
        ("2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff", SixToFour),
        ("64:ff9b::", Nat64),
        ("64:ff9b::7f00:1", Nat64),
        ("64:ff9b::808:808", Nat64),
        ("64:ff9b::ffff:ffff", Nat64),
        ("64:ff9b:1::", Nat64),
        ("64:ff9b:1:ffff:ffff:ffff:ffff:ffff", Nat64),
        ("2001::", Teredo),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", Teredo),
        ("2001:0:ffff:ffff:ffff:ffff:ffff:ffff", Teredo),
        ("100::", DiscardOnly),
        ("100::ffff:ffff:ffff:ffff", DiscardOnly),
    ];

    /// Public addresses, including the neighbours of special ranges.
    const ALLOWED: &[&str] = &[
        "93.184.215.14",
        "8.8.8.8",
        "1.1.1.1",
        "1.0.0.0",
        "9.255.255.255",
        "11.0.0.0",
        "100.63.255.255",
        "100.128.0.0",
        "126.255.255.255",
        "128.0.0.0",
        "169.253.255.255",
        "169.255.0.0",
        "172.15.255.255",
        "172.32.0.0",
        "192.0.1.255",
        "192.0.3.0",
        "192.167.255.255",
        "192.169.0.0",
        "198.17.255.255",
        "198.20.0.0",
        "223.255.255.255",
        "::ffff:8.8.8.8",
        "2606:4700::1111",
        "2001:4860:4860::8888",
        "2001:200::1",
        "2001:db7:ffff::1",
        "2001:db9::1",
        "2003::1",
        "3fff:1000::1",
        "2000::",
    ];

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    /// Every address the tables test: REFUSED plus the IPv6 forms of its IPv4 entries. The
    /// expected range is `None` where the IPv6 form is labelled differently (`::` and `::1` are
    /// the compatible forms of 0.0.0.0 and 0.0.0.1).
    fn refused_cases() -> Vec<(IpAddr, Option<SpecialRange>)> {
        let mut cases = Vec::new();
        for &(text, range) in REFUSED {
            let addr = ip(text);
            cases.push((addr, Some(range)));
            if let IpAddr::V4(v4) = addr {
                cases.push((IpAddr::V6(v4.to_ipv6_mapped()), Some(range)));
                let compatible = v4.to_ipv6_compatible();
                let label =
                    (!compatible.is_unspecified() && !compatible.is_loopback()).then_some(range);
                cases.push((IpAddr::V6(compatible), label));
            }
        }
        cases
    }

    fn url_for(addr: IpAddr) -> Url {
        let text = match addr {
            IpAddr::V4(v4) => format!("http://{v4}/hook"),
            IpAddr::V6(v6) => format!("http://[{v6}]/hook"),
        };
        Url::parse(&text).unwrap()
    }

    /// A resolver answering from a fixed table; unknown names fail.
    struct Table(HashMap<String, Vec<IpAddr>>);

    impl Resolve for Table {
        fn resolve(&self, name: Name) -> Resolving {
            let answer = self.0.get(name.as_str()).cloned();
            Box::pin(async move {
                let ips = answer.ok_or("no such host")?;
                Ok(Box::new(ips.into_iter().map(|ip| SocketAddr::new(ip, 0))) as Addrs)
            })
        }
    }

    fn table(entries: &[(&str, Vec<IpAddr>)]) -> Arc<dyn Resolve> {
        Arc::new(Table(
            entries
                .iter()
                .map(|(name, ips)| (name.to_string(), ips.clone()))
                .collect(),
        ))
    }

    async fn resolve(resolver: &GuardedResolver, name: &str) -> Result<Vec<SocketAddr>, BoxErr> {
        let addrs = resolver.resolve(name.parse().unwrap()).await?;
        Ok(addrs.collect())
    }

    type BoxErr = Box<dyn StdError + Send + Sync>;

    fn blocked(error: &BoxErr) -> &Blocked {
        find_blocked(&**error).unwrap_or_else(|| panic!("not Blocked: {error}"))
    }

    #[test]
    fn classify_and_check_ip_refuse_every_special_range() {
        let policy = NetworkPolicy::default();
        for (addr, range) in refused_cases() {
            let found = classify(addr);
            assert!(found.is_some(), "{addr} not classified");
            if range.is_some() {
                assert_eq!(found, range, "{addr}");
            }
            let Err(Blocked::Address { ip, range: refused }) = policy.check_ip(addr) else {
                panic!("{addr} allowed");
            };
            assert_eq!((ip, Some(refused)), (addr, found));
        }
    }

    #[test]
    fn public_addresses_pass() {
        let policy = NetworkPolicy::default();
        for &text in ALLOWED {
            assert_eq!(classify(ip(text)), None, "{text}");
            assert_eq!(policy.check_ip(ip(text)), Ok(()), "{text}");
            assert_eq!(policy.check_url(&url_for(ip(text))), Ok(()), "{text}");
        }
    }

    #[test]
    fn classify_agrees_with_the_table_at_every_block_edge() {
        for (net, _) in BLOCKS {
            for edge in [net.network(), net.broadcast()] {
                // The first block containing the edge names it (more specific blocks come first).
                let expected = lookup(edge);
                assert!(expected.is_some());
                assert_eq!(classify(edge), expected, "{edge} in {net}");
            }
        }
        for (net, range) in BLOCKS {
            assert_eq!(
                lookup(net.network()).map(|_| ()),
                Some(()),
                "{net} {range:?}"
            );
        }
    }

    #[test]
    fn check_url_refuses_ip_literals_of_every_special_range() {
        let policy = NetworkPolicy::default();
        for (addr, _) in refused_cases() {
            let url = url_for(addr);
            assert!(
                matches!(policy.check_url(&url), Err(Blocked::Address { ip, .. }) if ip == addr),
                "{url}"
            );
        }
    }

    #[test]
    fn url_parser_normalises_numeric_hosts_which_are_then_checked() {
        let policy = NetworkPolicy::default();
        let loopback = Ipv4Addr::LOCALHOST;
        for text in [
            "http://0x7f.1/",
            "http://2130706433/",
            "http://017700000001/",
            "http://127.1/",
            "http://0x7f000001/",
            "http://127.0.0.1./",
            "http://%31%32%37.0.0.1/",
            "https://127.0.0.1:8443/",
            "http://user:pass@127.0.0.1/",
        ] {
            let url = Url::parse(text).unwrap();
            assert_eq!(url.host(), Some(Host::Ipv4(loopback)), "{text}");
            assert_eq!(
                policy.check_url(&url),
                Err(Blocked::Address {
                    ip: IpAddr::V4(loopback),
                    range: Loopback
                }),
                "{text}"
            );
        }
        for text in [
            "http://[::ffff:127.0.0.1]/",
            "http://[0:0:0:0:0:ffff:7f00:1]/",
            "http://[::127.0.0.1]/",
            "http://[::1]/",
        ] {
            let url = Url::parse(text).unwrap();
            assert!(matches!(url.host(), Some(Host::Ipv6(_))), "{text}");
            assert!(
                matches!(
                    policy.check_url(&url),
                    Err(Blocked::Address {
                        range: Loopback,
                        ..
                    })
                ),
                "{text}"
            );
        }
        let metadata = Url::parse("http://[::ffff:a9fe:a9fe]/latest/meta-data/").unwrap();
        assert!(matches!(
            policy.check_url(&metadata),
            Err(Blocked::Address {
                range: LinkLocal,
                ..
            })
        ));
    }

    #[tokio::test]
    async fn resolver_refuses_names_resolving_to_every_special_range() {
        let cases = refused_cases();
        let entries: Vec<(String, Vec<IpAddr>)> = cases
            .iter()
            .enumerate()
            .map(|(i, (addr, _))| (format!("host{i}.test"), vec![*addr]))
            .collect();
        let entries: Vec<(&str, Vec<IpAddr>)> = entries
            .iter()
            .map(|(name, ips)| (name.as_str(), ips.clone()))
            .collect();
        let inner = table(&entries);
        let guarded = GuardedResolver::with_resolver(NetworkPolicy::default(), Arc::clone(&inner));
        let open = GuardedResolver::with_resolver(
            NetworkPolicy::default().allow_private_networks(),
            inner,
        );
        for (i, (addr, _)) in cases.iter().enumerate() {
            let name = format!("host{i}.test");
            let error = resolve(&guarded, &name).await.unwrap_err();
            let Blocked::NoAllowedAddress { host, refused } = blocked(&error) else {
                panic!("{name} ({addr}): {error}");
            };
            assert_eq!(host, &name);
            assert_eq!(refused, &[(*addr, classify(*addr).unwrap())]);
            assert_eq!(
                resolve(&open, &name).await.unwrap(),
                [SocketAddr::new(*addr, 0)]
            );
        }
    }

    #[tokio::test]
    async fn resolver_passes_public_addresses() {
        let ips: Vec<IpAddr> = ALLOWED.iter().map(|text| ip(text)).collect();
        let guarded = GuardedResolver::with_resolver(
            NetworkPolicy::default(),
            table(&[("public.test", ips.clone())]),
        );
        let addrs = resolve(&guarded, "public.test").await.unwrap();
        assert_eq!(
            addrs,
            ips.iter()
                .map(|ip| SocketAddr::new(*ip, 0))
                .collect::<Vec<_>>()
        );
    }

    #[tokio::test]
    async fn resolver_keeps_only_allowed_addresses_of_a_mixed_answer() {
        let answer = [
            "127.0.0.1",
            "93.184.215.14",
            "10.0.0.1",
            "2606:4700::1111",
            "::1",
        ]
        .map(ip)
        .to_vec();
        let guarded = GuardedResolver::with_resolver(
            NetworkPolicy::default(),
            table(&[("mixed.test", answer.clone())]),
        );
        let addrs = resolve(&guarded, "mixed.test").await.unwrap();
        assert_eq!(
            addrs,
            [
                SocketAddr::new(ip("93.184.215.14"), 0),
                SocketAddr::new(ip("2606:4700::1111"), 0)
            ]
        );
        // The same through the subscribe-time check, with the URL's port.
        let url = Url::parse("https://mixed.test/hook").unwrap();
        assert_eq!(
            guarded.check_url(&url).await.unwrap(),
            [
                SocketAddr::new(ip("93.184.215.14"), 443),
                SocketAddr::new(ip("2606:4700::1111"), 443)
            ]
        );
        let literal = Url::parse("http://[2606:4700::1111]:8080/").unwrap();
        assert_eq!(
            guarded.check_url(&literal).await.unwrap(),
            [SocketAddr::new(ip("2606:4700::1111"), 8080)]
        );
        let refused = Url::parse("http://[::1]/").unwrap();
        assert!(matches!(
            guarded.check_url(&refused).await,
            Err(Blocked::Address {
                range: Loopback,
                ..
            })
        ));
    }

    #[tokio::test]
    async fn resolver_errors() {
        let guarded = GuardedResolver::with_resolver(
            NetworkPolicy::default(),
            table(&[
                ("empty.test", vec![]),
                (
                    "private.test",
                    vec![ip("10.0.0.1"), ip("10.0.0.1"), ip("fd00::1")],
                ),
            ]),
        );
        // Inner errors pass through unchanged: a failed lookup is not a refusal.
        let error = resolve(&guarded, "unknown.test").await.unwrap_err();
        assert!(find_blocked(&*error).is_none());
        assert_eq!(error.to_string(), "no such host");

        let error = resolve(&guarded, "empty.test").await.unwrap_err();
        assert!(matches!(blocked(&error), Blocked::Resolve { .. }));

        let error = resolve(&guarded, "private.test").await.unwrap_err();
        assert_eq!(
            blocked(&error),
            &Blocked::NoAllowedAddress {
                host: "private.test".into(),
                refused: vec![(ip("10.0.0.1"), Private), (ip("fd00::1"), UniqueLocal)],
            }
        );
        assert_eq!(
            error.to_string(),
            "refusing to send a webhook to `private.test`: it resolves only to non-public \
             addresses (10.0.0.1 is private network (10.0.0.0/8), fd00::1 is unique local \
             (fc00::/7)); to allow them, use NetworkPolicy::allow_cidr, or \
             NetworkPolicy::allow_private_networks in development"
        );

        let url = Url::parse("http://unknown.test/").unwrap();
        assert!(matches!(
            guarded.check_url(&url).await,
            Err(Blocked::Resolve { host, .. }) if host == "unknown.test"
        ));
    }

    #[tokio::test]
    async fn system_resolver_refuses_localhost_unless_opted_out() {
        let guarded = GuardedResolver::new(NetworkPolicy::default());
        let error = resolve(&guarded, "localhost").await.unwrap_err();
        let Blocked::NoAllowedAddress { refused, .. } = blocked(&error) else {
            panic!("{error}");
        };
        assert!(!refused.is_empty());
        assert!(
            refused.iter().all(|(_, range)| *range == Loopback),
            "{refused:?}"
        );

        let open = GuardedResolver::new(NetworkPolicy::new().allow_private_networks());
        let addrs = resolve(&open, "localhost").await.unwrap();
        assert!(!addrs.is_empty());
        assert!(
            addrs.iter().all(|addr| addr.ip().is_loopback()),
            "{addrs:?}"
        );
    }

    #[test]
    fn opt_out_allows_everything() {
        let policy = NetworkPolicy::new().allow_private_networks();
        assert!(policy.is_private_networks_allowed());
        for (addr, _) in refused_cases() {
            assert_eq!(policy.check_ip(addr), Ok(()), "{addr}");
            assert_eq!(policy.check_url(&url_for(addr)), Ok(()), "{addr}");
        }
        // The scheme checks still apply.
        let ftp = Url::parse("ftp://127.0.0.1/").unwrap();
        assert_eq!(policy.check_url(&ftp), Err(Blocked::Scheme("ftp".into())));
    }

    #[test]
    fn allow_listed_nets_allow_just_those() {
        let policy = NetworkPolicy::new()
            .allow_cidr("10.1.0.0/16".parse().unwrap())
            .allow_cidr("fd00:1::/32".parse().unwrap())
            .allow_cidr("127.0.0.1/32".parse().unwrap());
        assert!(!policy.is_private_networks_allowed());
        assert_eq!(policy.allowed_cidrs().len(), 3);
        for allowed in [
            "10.1.0.0",
            "10.1.255.255",
            "::ffff:10.1.2.3",
            "fd00:1::1",
            "127.0.0.1",
        ] {
            assert_eq!(policy.check_ip(ip(allowed)), Ok(()), "{allowed}");
        }
        for refused in [
            "10.0.255.255",
            "10.2.0.0",
            "192.168.1.1",
            "fd00:2::1",
            "127.0.0.2",
            "::1",
        ] {
            assert!(policy.check_ip(ip(refused)).is_err(), "{refused}");
        }
        // A net written with host bits is the network it belongs to.
        let sloppy = NetworkPolicy::new().allow_cidr("192.168.1.7/24".parse().unwrap());
        assert_eq!(
            sloppy.allowed_cidrs(),
            ["192.168.1.0/24".parse::<IpNet>().unwrap()]
        );
        assert_eq!(sloppy.check_ip(ip("192.168.1.200")), Ok(()));
    }

    #[test]
    fn schemes() {
        let policy = NetworkPolicy::default();
        assert!(!policy.is_https_only());
        for ok in [
            "http://example.com/",
            "https://example.com/",
            "HTTPS://EXAMPLE.COM/",
        ] {
            assert_eq!(policy.check_url(&Url::parse(ok).unwrap()), Ok(()), "{ok}");
        }
        for (text, scheme) in [
            ("ftp://example.com/", "ftp"),
            ("file:///etc/passwd", "file"),
            ("javascript:alert(1)", "javascript"),
            ("data:text/plain,hi", "data"),
            ("gopher://example.com:70/", "gopher"),
            ("ws://example.com/", "ws"),
            ("unix:/run/docker.sock", "unix"),
        ] {
            assert_eq!(
                policy.check_url(&Url::parse(text).unwrap()),
                Err(Blocked::Scheme(scheme.into())),
                "{text}"
            );
        }

        let https = NetworkPolicy::new().https_only();
        assert!(https.is_https_only());
        assert_eq!(
            https.check_url(&Url::parse("http://example.com/").unwrap()),
            Err(Blocked::HttpsRequired)
        );
        assert_eq!(
            https.check_url(&Url::parse("https://example.com/").unwrap()),
            Ok(())
        );
    }

    #[test]
    fn urls_without_host_are_refused() {
        let policy = NetworkPolicy::new().allow_private_networks();
        // The URL parser guarantees http(s) URLs a non-empty host.
        assert!(Url::parse("http://").is_err());
        assert!(Url::parse("https:///").is_err());
        for text in ["file:///etc/passwd", "mailto:a@example.com", "data:,x"] {
            let url = Url::parse(text).unwrap();
            assert!(url.host().is_none() || url.host() == Some(Host::Domain("")));
            assert!(policy.check_url(&url).is_err(), "{text}");
        }
        assert_eq!(Blocked::MissingHost.to_string(), "webhook URL has no host");
    }

    #[test]
    fn messages_name_the_range_and_the_way_out() {
        assert_eq!(Loopback.to_string(), "loopback (127.0.0.0/8, ::1/128)");
        assert_eq!(
            Reserved.to_string(),
            "reserved (240.0.0.0/4, IPv6 outside 2000::/3)"
        );
        let policy = NetworkPolicy::default();
        let message = |text: &str| policy.check_ip(ip(text)).unwrap_err().to_string();
        assert_eq!(
            message("169.254.169.254"),
            "refusing to send a webhook to 169.254.169.254: link-local address \
             (169.254.0.0/16); to allow it, use NetworkPolicy::allow_cidr, or \
             NetworkPolicy::allow_private_networks in development"
        );
        assert!(message("::ffff:127.0.0.1").contains(": loopback address (127.0.0.0/8);"));
        assert!(message("172.20.0.1").contains("private network address (172.16.0.0/12)"));
        assert!(message("5f00::1").contains("reserved address (IPv6 outside 2000::/3)"));
        assert!(message("3fff::1").contains("documentation address (3fff::/20)"));
        for (_, range) in REFUSED {
            assert!(range.to_string().starts_with(range.name()));
        }
    }

    /// Serves `response` to every connection on `ip`, counting connections.
    async fn serve(ip: IpAddr, response: String) -> (SocketAddr, Arc<AtomicUsize>) {
        let listener = TcpListener::bind((ip, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&connections);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let response = response.clone();
                tokio::spawn(async move {
                    // Read the request head, then answer and close.
                    let mut request = Vec::new();
                    let mut buffer = [0; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buffer[..n]),
                        }
                    }
                    let _ = stream.write_all(response.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        (addr, connections)
    }

    const OK: &str = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";

    fn client(builder: reqwest::ClientBuilder) -> reqwest::Client {
        builder.timeout(Duration::from_secs(10)).build().unwrap()
    }

    #[tokio::test]
    async fn end_to_end_localhost_is_unreachable_unless_opted_out() {
        let (addr, connections) = serve(IpAddr::V4(Ipv4Addr::LOCALHOST), OK.into()).await;
        let url = format!("http://localhost:{}/hook", addr.port());

        let guarded = client(
            reqwest::Client::builder()
                .dns_resolver(Arc::new(GuardedResolver::new(NetworkPolicy::default())))
                .no_proxy(),
        );
        let error = guarded.post(&url).body("{}").send().await.unwrap_err();
        assert!(error.is_connect(), "{error:?}");
        let Some(Blocked::NoAllowedAddress { host, refused }) = find_blocked(&error) else {
            panic!("{error:?}");
        };
        assert_eq!(host, "localhost");
        assert!(
            refused.contains(&(ip("127.0.0.1"), Loopback)),
            "{refused:?}"
        );
        assert_eq!(connections.load(Ordering::SeqCst), 0);

        let open = client(
            reqwest::Client::builder()
                .dns_resolver(Arc::new(GuardedResolver::new(
                    NetworkPolicy::default().allow_private_networks(),
                )))
                .no_proxy(),
        );
        let response = open.post(&url).body("{}").send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.unwrap(), "ok");
        assert_eq!(connections.load(Ordering::SeqCst), 1);
    }

    /// Pins the reqwest behaviour that makes `check_url` necessary: the resolver is not asked
    /// about IP literals.
    #[tokio::test]
    async fn end_to_end_resolver_is_not_consulted_for_ip_literals() {
        let (addr, _) = serve(IpAddr::V4(Ipv4Addr::LOCALHOST), OK.into()).await;
        let url = Url::parse(&format!("http://{addr}/hook")).unwrap();
        let policy = NetworkPolicy::default();
        let guarded = client(policy.configure(reqwest::Client::builder()));
        let response = guarded.get(url.clone()).send().await.unwrap();
        assert_eq!(response.status(), 200);
        // Hence the literal check the library makes before sending:
        assert!(matches!(
            policy.check_url(&url),
            Err(Blocked::Address {
                range: Loopback,
                ..
            })
        ));
    }

    #[tokio::test]
    async fn end_to_end_redirects() {
        // The origin is reached by name through a resolver that allows loopback; its redirect
        // to the IP literal 127.0.0.1 is judged by the redirect policy alone.
        let (target, target_connections) = serve(IpAddr::V4(Ipv4Addr::LOCALHOST), OK.into()).await;
        let redirect = format!(
            "HTTP/1.1 302 Found\r\nlocation: http://{target}/\r\ncontent-length: 0\r\n\
             connection: close\r\n\r\n"
        );
        let (origin, _) = serve(IpAddr::V4(Ipv4Addr::LOCALHOST), redirect).await;
        let url = format!("http://localhost:{}/hook", origin.port());
        let open = NetworkPolicy::new().allow_private_networks();
        let guarded = NetworkPolicy::default();

        // `configure` does not follow redirects.
        let response = client(open.configure(reqwest::Client::builder()))
            .get(&url)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 302);

        // `redirect_policy` checks each target.
        let following = client(
            open.configure(reqwest::Client::builder())
                .redirect(guarded.redirect_policy(5)),
        );
        let error = following.get(&url).send().await.unwrap_err();
        assert!(error.is_redirect(), "{error:?}");
        assert_eq!(
            find_blocked(&error),
            Some(&Blocked::Address {
                ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
                range: Loopback
            })
        );
        assert_eq!(target_connections.load(Ordering::SeqCst), 0);

        let response = client(
            open.configure(reqwest::Client::builder())
                .redirect(open.redirect_policy(5)),
        )
        .get(&url)
        .send()
        .await
        .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(target_connections.load(Ordering::SeqCst), 1);

        // And the limit holds.
        let error = client(
            open.configure(reqwest::Client::builder())
                .redirect(open.redirect_policy(0)),
        )
        .get(&url)
        .send()
        .await
        .unwrap_err();
        assert!(error.is_redirect(), "{error:?}");
        assert_eq!(target_connections.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn canonicalize_keeps_unspecified_and_loopback() {
        assert_eq!(canonicalize(ip("::")), ip("::"));
        assert_eq!(canonicalize(ip("::1")), ip("::1"));
        assert_eq!(canonicalize(ip("::ffff:1.2.3.4")), ip("1.2.3.4"));
        assert_eq!(canonicalize(ip("::1.2.3.4")), ip("1.2.3.4"));
        assert_eq!(canonicalize(ip("2606:4700::1111")), ip("2606:4700::1111"));
        assert_eq!(canonicalize(ip("1.2.3.4")), ip("1.2.3.4"));
    }
}
