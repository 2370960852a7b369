//! [`GuardedResolver`]: the DNS resolver that vets every address a name resolves to.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

use super::{Blocked, NetworkPolicy};

/// A `reqwest` DNS resolver that resolves with an inner resolver and keeps only the addresses
/// the [`NetworkPolicy`] allows, so the client connects only to vetted addresses.
///
/// If none remain, resolution fails with [`Blocked::NoAllowedAddress`] (an empty answer fails
/// with [`Blocked::Resolve`]); find it with [`find_blocked`](super::find_blocked). Errors of the inner resolver are
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
