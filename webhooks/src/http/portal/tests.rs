//! The page's escaping, its one-pass template, and the CSP: the hashes it names are those of
//! the script and style the page really inlines.

#![allow(clippy::unwrap_used)] // in a test, a failed unwrap is a failed test

use axum::response::IntoResponse as _;

use super::*;

/// The text of the one element `<tag>…</tag>` in `page`.
fn inline(page: &str, tag: &str) -> String {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    assert_eq!(page.matches(&format!("<{tag}")).count(), 1, "one <{tag}>");
    let start = page.find(&open).unwrap() + open.len();
    let end = page[start..].find(&close).unwrap() + start;
    page[start..end].to_owned()
}

fn headers(portal: Portal) -> http::HeaderMap {
    let response = portal.into_response();
    assert_eq!(response.status(), http::StatusCode::OK);
    response.headers().clone()
}

fn csp(portal: Portal) -> String {
    headers(portal)[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned()
}

#[test]
fn escape_covers_text_and_both_quotes() {
    assert_eq!(
        escape(r#"<a href="x" title='y'>Tom & Jerry</a>"#),
        "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;Tom &amp; Jerry&lt;/a&gt;"
    );
    assert_eq!(escape("plain ascii, ünïcode"), "plain ascii, ünïcode");
    assert_eq!(
        escape("&amp;"),
        "&amp;amp;",
        "escaped twice stays visible as typed"
    );
}

#[test]
fn configured_strings_are_escaped_into_the_page() {
    let hostile = r#""><script>alert(1)</script><meta x=""#;
    let page = Portal::new()
        .api_base(hostile)
        .title(hostile)
        .ask_header("X-Demo-Tenant", hostile)
        .html();
    // Still one script element: the one the CSP hash allows.
    assert_eq!(page.matches("<script").count(), 1);
    assert!(!page.contains(hostile));
    let escaped = escape(hostile);
    assert!(page.contains(&format!(
        "<meta name=\"webhooks-api-base\" content=\"{escaped}\">"
    )));
    assert!(page.contains(&format!("<title>{escaped}</title>")));
    assert!(page.contains(&format!("<h1 id=\"title\">{escaped}</h1>")));
    assert!(page.contains(&format!("<label for=\"sign-in-value\">{escaped}</label>")));
    // The header name is lowercased (what fetch sends anyway).
    assert!(page.contains("<meta name=\"webhooks-auth-header\" content=\"x-demo-tenant\">"));
}

#[test]
fn defaults() {
    let page = Portal::default().html();
    assert!(page.contains("<meta name=\"webhooks-api-base\" content=\"./\">"));
    assert!(page.contains("<meta name=\"webhooks-auth-header\" content=\"\">"));
    assert!(page.contains("<title>Webhooks</title>"));
    assert!(page.contains("<meta name=\"viewport\""));
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(!page.contains("{{"), "every placeholder is filled");
}

#[test]
fn the_template_is_filled_in_one_pass() {
    // A title that looks like a placeholder stays text, and the script is inlined once.
    let page = Portal::new().title("{{script}} {{nope}}").html();
    assert!(page.contains("<title>{{script}} {{nope}}</title>"));
    assert_eq!(page.matches(SCRIPT).count(), 1);
    assert_eq!(
        render("a {{x}} {{y}} {{ b", |k| (k == "x")
            .then(|| "{{y}}".to_owned())),
        "a {{y}} {{y}} {{ b"
    );
}

#[test]
#[should_panic(expected = "not a valid HTTP header name")]
fn a_bad_header_name_is_refused() {
    let _ = Portal::new().ask_header("x demo", "Name");
}

#[test]
fn csp_hash_known_answer() {
    // SHA-256 of the empty string.
    assert_eq!(
        csp_hash(""),
        "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
    );
}

#[test]
fn the_policy_names_the_hashes_of_what_the_page_inlines() {
    let portal = Portal::new()
        .title("Acme")
        .ask_header("x-api-token", "Token");
    let page = portal.html();
    let script = inline(&page, "script");
    let style = inline(&page, "style");
    let policy = csp(portal);
    let script_hash = format!(
        "sha256-{}",
        BASE64.encode(Sha256::digest(script.as_bytes()))
    );
    let style_hash = format!("sha256-{}", BASE64.encode(Sha256::digest(style.as_bytes())));
    let directives: Vec<&str> = policy.split(';').map(str::trim).collect();
    assert_eq!(
        directives,
        [
            "default-src 'none'",
            &format!("script-src '{script_hash}'"),
            &format!("style-src '{style_hash}'"),
            "connect-src 'self'",
            "img-src data:",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    );
    // The configuration does not change the script or the style: one policy for every page.
    assert_eq!(csp(Portal::new()), policy);
}

#[test]
fn the_response_headers() {
    let headers = headers(Portal::new());
    assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(headers[header::REFERRER_POLICY], "no-referrer");
}

#[test]
fn an_absolute_api_base_adds_its_origin_to_connect_src() {
    let policy = csp(Portal::new().api_base("https://api.example.com:8443/hooks/"));
    assert!(
        policy.contains("connect-src 'self' https://api.example.com:8443;"),
        "{policy}"
    );
    for relative in ["api/", "/api/", "./", "javascript:alert(1)", "data:,x"] {
        let policy = csp(Portal::new().api_base(relative));
        assert!(
            policy.contains("connect-src 'self';"),
            "{relative}: {policy}"
        );
    }
}

#[test]
fn the_inline_code_cannot_end_its_element_early_nor_write_html() {
    for (text, tag) in [(SCRIPT, "script"), (STYLE, "style")] {
        let lower = text.to_ascii_lowercase();
        assert!(!lower.contains(&format!("</{tag}")), "{tag} closes early");
        assert!(!lower.contains("<!--"), "{tag} opens a comment");
    }
    // Data reaches the page as text: no API that parses HTML.
    for parser in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
    ] {
        assert!(!SCRIPT.contains(parser), "portal.js uses {parser}");
    }
    // The CSP allows neither inline handlers nor style attributes.
    for attribute in [" onclick=", " onload=", " onsubmit=", " style="] {
        assert!(!TEMPLATE.contains(attribute), "portal.html has {attribute}");
    }
}
