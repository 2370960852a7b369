//! [`Portal`]: the customer portal, one self-contained page (`portal/portal.html`, with
//! `portal.css` and `portal.js` inlined) served under a strict Content-Security-Policy.
//!
//! The script and the style never change: what the application configures (the API's base,
//! the header to ask for, the title) is written into the HTML, escaped, and read by the script
//! from `<meta>` elements. So the CSP names the inline script and style by their SHA-256,
//! computed once.

use std::sync::OnceLock;

use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::header::{self, HeaderValue};
use sha2::{Digest as _, Sha256};

const TEMPLATE: &str = include_str!("portal/portal.html");
const STYLE: &str = include_str!("portal/portal.css");
const SCRIPT: &str = include_str!("portal/portal.js");

/// The customer portal: one page where the application's customers add their endpoints (URL,
/// events picked from the catalog, description), see and rotate signing secrets, send test
/// events, read the delivery log with each attempt's status code and response body, and replay
/// a failed delivery.
///
/// Plain HTML, CSS and JavaScript shipped inside the crate: no build step, no framework, no
/// network but the management API (same origin). It is served with a strict
/// `Content-Security-Policy` (the inline script and style allowed by their hashes, `connect-src`
/// limited to the page's origin), `X-Content-Type-Options: nosniff` and
/// `Referrer-Policy: no-referrer`; every string the API returns is shown as text, never as HTML.
///
/// The management router serves it at `GET /portal`; an application may also serve it itself
/// wherever it likes, since a `Portal` is an axum response:
///
/// ```
/// use axum::{Router, routing::get};
/// use webhooks::http::Portal;
///
/// let portal = Portal::new()
///     .api_base("api/") // the management API, relative to the page
///     .ask_header("x-api-token", "Your API token")
///     .title("Acme webhooks");
/// let app: Router = Router::new().route("/", get(move || async move { portal.clone() }));
/// # let _ = app;
/// ```
#[derive(Clone, Debug)]
pub struct Portal {
    api_base: String,
    header: Option<AskedHeader>,
    title: String,
}

/// The header the page asks the user for.
#[derive(Clone, Debug)]
struct AskedHeader {
    name: String,
    label: String,
}

impl Default for Portal {
    fn default() -> Self {
        Portal::new()
    }
}

impl Portal {
    /// A portal page titled "Webhooks" that finds the API next to itself (`./`) and sends no
    /// header of its own: the application's session (a cookie) authenticates its calls.
    pub fn new() -> Portal {
        Portal {
            api_base: "./".to_owned(),
            header: None,
            title: "Webhooks".to_owned(),
        }
    }

    /// Where the management API is, relative to the page (default `./`: the router serves the
    /// page at `GET /portal`, beside the API's paths). For a page served at `/` and the router
    /// mounted at `/api`, `"api/"`. Keep the trailing `/`: the page resolves paths such as
    /// `subscriptions` against it as a browser resolves a link.
    ///
    /// The page may only call its own origin (`connect-src 'self'`), unless the base is an
    /// absolute `http(s)` URL, whose origin is then allowed too (that origin must answer the
    /// browser's CORS checks).
    #[must_use]
    pub fn api_base(mut self, base: impl Into<String>) -> Portal {
        self.api_base = base.into();
        self
    }

    /// Has the page ask the user for a value (labelled `label`, say "API token", or the demo's
    /// "Your name") and send it as header `name` on every API call. The value is kept in the
    /// browser's `sessionStorage` (gone when the tab is closed); a "Sign out" button forgets it.
    ///
    /// # Panics
    ///
    /// If `name` is not a valid HTTP header name: a mistake in the application's code, caught
    /// the first time it runs.
    #[must_use]
    pub fn ask_header(mut self, name: impl Into<String>, label: impl Into<String>) -> Portal {
        let name = name.into();
        assert!(
            http::HeaderName::from_bytes(name.as_bytes()).is_ok(),
            "Portal::ask_header: {name:?} is not a valid HTTP header name"
        );
        self.header = Some(AskedHeader {
            name: name.to_ascii_lowercase(),
            label: label.into(),
        });
        self
    }

    /// The page's title and heading (default "Webhooks").
    #[must_use]
    pub fn title(mut self, title: impl Into<String>) -> Portal {
        self.title = title.into();
        self
    }

    /// The whole page: HTML with its CSS and JavaScript inline.
    pub fn html(&self) -> String {
        let (header_name, header_label) = match &self.header {
            Some(asked) => (asked.name.as_str(), asked.label.as_str()),
            None => ("", ""),
        };
        render(TEMPLATE, |key| match key {
            "title" => Some(escape(&self.title)),
            "api_base" => Some(escape(&self.api_base)),
            "header_name" => Some(escape(header_name)),
            "header_label" => Some(escape(header_label)),
            "style" => Some(STYLE.to_owned()),
            "script" => Some(SCRIPT.to_owned()),
            _ => None,
        })
    }

    /// The `Content-Security-Policy` the page is served with.
    fn content_security_policy(&self) -> String {
        let hashes = hashes();
        let mut connect = "'self'".to_owned();
        if let Some(origin) = absolute_origin(&self.api_base) {
            connect.push(' ');
            connect.push_str(&origin);
        }
        format!(
            "default-src 'none'; script-src '{}'; style-src '{}'; connect-src {connect}; \
             img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            hashes.script, hashes.style
        )
    }
}

impl IntoResponse for Portal {
    fn into_response(self) -> Response {
        let csp = HeaderValue::from_str(&self.content_security_policy()).unwrap_or_else(|_| {
            // Unreachable: the policy is ASCII (an origin is serialized in ASCII), but a page
            // that cannot be protected is better not served at all.
            HeaderValue::from_static("default-src 'none'")
        });
        (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                ),
                (header::CONTENT_SECURITY_POLICY, csp),
                (
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                ),
                (
                    header::REFERRER_POLICY,
                    HeaderValue::from_static("no-referrer"),
                ),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            ],
            self.html(),
        )
            .into_response()
    }
}

/// The CSP sources of the inline script and style: `sha256-<base64>`.
struct Hashes {
    script: String,
    style: String,
}

fn hashes() -> &'static Hashes {
    static HASHES: OnceLock<Hashes> = OnceLock::new();
    HASHES.get_or_init(|| Hashes {
        script: csp_hash(SCRIPT),
        style: csp_hash(STYLE),
    })
}

/// A CSP hash source for an inline element's exact text.
fn csp_hash(text: &str) -> String {
    format!("sha256-{}", BASE64.encode(Sha256::digest(text.as_bytes())))
}

/// The origin (`https://host:port`) of an absolute `http(s)` URL; `None` for a relative one.
fn absolute_origin(base: &str) -> Option<String> {
    let url = url::Url::parse(base).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    let origin = url.origin();
    origin.is_tuple().then(|| origin.ascii_serialization())
}

/// Fills `{{key}}` placeholders in one pass: what `value` returns is inserted as it is and never
/// scanned again, so a title such as `{{script}}` stays text. An unknown key is left as it is.
fn render(template: &str, value: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(template.len() + STYLE.len() + SCRIPT.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}").and_then(|end| {
            let key = &after[..end];
            value(key).map(|v| (v, end))
        }) {
            Some((filled, end)) => {
                out.push_str(&filled);
                rest = &after[end + 2..];
            }
            None => {
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Escapes text for HTML, in element content or in a double- or single-quoted attribute.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests;
