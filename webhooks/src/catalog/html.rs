//! [`Catalog::html`](super::Catalog::html): one self-contained page, inline CSS, no scripts.

use std::fmt::Write as _;

use super::{Catalog, CatalogEvent};

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;\
padding:0 1rem;color:#1d1d1f;line-height:1.5}h1{font-size:1.8rem}h2{font-size:1.3rem;\
margin-top:2.5rem;border-bottom:1px solid #ddd}code,pre{font-family:ui-monospace,monospace}\
pre{background:#f5f5f7;padding:.75rem;overflow:auto;border-radius:6px}\
.deprecated{background:#fff4e5;border-left:4px solid #f0a020;padding:.5rem .75rem}\
.event h2 code{font-size:1.2rem}nav li{margin:.2rem 0}.badge{font-size:.75rem;\
background:#f0a020;color:#fff;border-radius:4px;padding:0 .3rem;margin-left:.4rem}";

/// The page.
pub(super) fn render(catalog: &Catalog) -> String {
    let mut page = String::with_capacity(4096);
    page.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    page.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    page.push_str("<title>Webhook events</title><style>");
    page.push_str(STYLE);
    page.push_str("</style></head><body><h1>Webhook events</h1>");
    page.push_str(
        "<p>Each event is sent as an HTTP <code>POST</code> with a JSON body \
         <code>{\"id\", \"event\", \"data\"}</code>. Answer with any 2xx status to \
         acknowledge it, or <code>410 Gone</code> to stop receiving events.</p>",
    );
    page.push_str("<nav><ul>");
    for event in catalog.events() {
        let name = escape(event.name());
        let _ = write!(page, "<li><a href=\"#{name}\"><code>{name}</code></a>");
        if event.deprecated().is_some() {
            page.push_str("<span class=\"badge\">deprecated</span>");
        }
        page.push_str("</li>");
    }
    page.push_str("</ul></nav>");
    for event in catalog.events() {
        render_event(&mut page, event);
    }
    page.push_str(VERIFY);
    page.push_str("</body></html>\n");
    page
}

fn render_event(page: &mut String, event: &CatalogEvent) {
    let name = escape(event.name());
    let _ = write!(
        page,
        "<section class=\"event\" id=\"{name}\"><h2><code>{name}</code></h2>"
    );
    if let Some(note) = event.deprecated() {
        page.push_str("<p class=\"deprecated\"><strong>Deprecated.</strong>");
        if !note.is_empty() {
            let _ = write!(page, " {}", escape(note));
        }
        page.push_str("</p>");
    }
    if let Some(description) = event.description() {
        for paragraph in description.split("\n\n") {
            let _ = write!(page, "<p>{}</p>", escape(paragraph));
        }
    }
    if let Some(body) = event.example_body() {
        page.push_str("<h3>Example body</h3>");
        pre(page, &body);
    }
    match event.data_schema() {
        Some(schema) => {
            page.push_str("<h3>Schema of <code>data</code></h3>");
            pre(page, schema);
        }
        None => page.push_str("<p>The schema of <code>data</code> is not published.</p>"),
    }
    page.push_str("</section>");
}

fn pre(page: &mut String, value: &serde_json::Value) {
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    let _ = write!(page, "<pre>{}</pre>", escape(&text));
}

const VERIFY: &str = "<section id=\"verifying-signatures\"><h2>Verifying signatures</h2>\
<p>Every request carries the Standard Webhooks headers <code>webhook-id</code>, \
<code>webhook-timestamp</code> and <code>webhook-signature</code>. To verify one:</p><ol>\
<li>Build the signed content: <code>{webhook-id}.{webhook-timestamp}.{raw body}</code>, the \
body exactly as received (before parsing it).</li>\
<li>For a <code>whsec_</code> secret: base64-decode what follows <code>whsec_</code>, compute \
HMAC-SHA256 of the signed content with it, and base64-encode the result.</li>\
<li><code>webhook-signature</code> holds space-separated <code>v1,&lt;signature&gt;</code> \
(HMAC) or <code>v1a,&lt;signature&gt;</code> (Ed25519, checked with the <code>whpk_</code> \
public key) entries: accept the request if any matches, comparing in constant time.</li>\
<li>Reject a <code>webhook-timestamp</code> more than five minutes from your clock, and drop a \
<code>webhook-id</code> you have already processed.</li></ol>\
<p>Any Standard Webhooks library does all of this; in Rust, <code>webhooks::Verifier</code>.</p>\
</section>";

/// Escapes text for HTML element content and attribute values.
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
