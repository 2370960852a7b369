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
use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;
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
    #[must_use]
    pub fn allow_private_networks(mut self) -> Self {
        self.allow_private_networks = true;
        self
    }

    /// Allows the addresses in `net` even if they are in a [`SpecialRange`], e.g. an internal
    /// receiver on `10.20.0.0/16`. May be called several times.
    ///
    /// An IPv4 net also covers the IPv4-mapped IPv6 form of its addresses (`::ffff:10.20.0.1`).
    #[must_use]
    pub fn allow_cidr(mut self, net: IpNet) -> Self {
        // `trunc` so that `Debug` shows the network, not whatever host address was written.
        self.allowed_nets.push(net.trunc());
        self
    }

    /// Refuses `http` URLs: only `https` is allowed.
    #[must_use]
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
    #[cfg(feature = "runtime")]
    #[cfg_attr(docsrs, doc(cfg(feature = "runtime")))]
    pub fn configure(&self, builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
        builder
            .no_proxy()
            .dns_resolver(GuardedResolver::new(self.clone()))
            .redirect(reqwest::redirect::Policy::none())
    }

    /// A redirect policy that follows at most `max_redirects` redirects, each to a URL allowed by
    /// [`check_url`](Self::check_url); a refused target fails the request with [`Blocked`] as
    /// the error's source (see [`find_blocked`]).
    #[cfg(feature = "runtime")]
    #[cfg_attr(docsrs, doc(cfg(feature = "runtime")))]
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

mod ranges;
#[cfg(feature = "runtime")]
mod resolver;
#[cfg(test)]
mod tests;

pub use ranges::{SpecialRange, canonicalize, classify};
#[cfg(feature = "runtime")]
#[cfg_attr(docsrs, doc(cfg(feature = "runtime")))]
pub use resolver::GuardedResolver;
