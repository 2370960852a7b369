//! The `portal` example end to end, in a real headless browser, as a customer uses it: the
//! compiled example runs as a child process (the portal page at `/`, the management API at
//! `/api`); Debian's chromium, driven through chromedriver's WebDriver HTTP API (the harness in
//! `browser/`), signs in as "alice", adds an endpoint pointed at a `TestReceiver`, sends a test
//! event and sees it delivered, signed with the secret the page showed; then the receiver fails,
//! the page shows the failed attempts with their status code and response body, and a replay
//! delivers it once the receiver is back. A second customer, "bob", sees none of it, and the API
//! answers him 404 for alice's endpoint.
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (`.ci/chromium.sh`; `CHROMIUM` and
//! `CHROMEDRIVER` override the paths). Without them the test fails: it never passes untested.
//! `cargo test --test portal` does not rebuild the example: `cargo build -p webhooks-examples
//! --examples` first (the test refuses a binary older than `portal.rs`).

#![allow(clippy::unwrap_used)] // in a test, a failed unwrap is a failed test

mod browser;
mod child;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use browser::{Browser, Chromedriver, DEADLINE, Lines};
use serde_json::{Value, json};
use webhooks::testing::{Reply, TestReceiver};
use webhooks::{Secret, Verifier};

/// Kills the example when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What the page shows, read through its stable ids and `data-*` attributes.
const PAGE_STATE: &str = r##"
const shown = (el) => !!el && !el.closest("[hidden]");
const secret = document.getElementById("secret");
const text = (el) => el ? el.textContent : "";
return {
  state: document.body.dataset.state || null,
  signIn: shown(document.getElementById("sign-in")),
  signedIn: shown(document.getElementById("signed-in")),
  error: document.getElementById("error").textContent,
  problem: {
    title: text(document.querySelector("#error .title")),
    detail: text(document.querySelector("#error .detail")),
    type: document.getElementById("error").dataset.type || null,
  },
  status: document.getElementById("status").textContent,
  secret: shown(secret)
    ? { subscription: secret.dataset.subscription, value: text(document.getElementById("secret-value")) }
    : null,
  eventTypes: [...document.querySelectorAll('#event-list input[name="event"]')].map(i => i.value),
  endpoints: [...document.querySelectorAll("#endpoints [data-subscription]")].map(li => ({
    id: li.dataset.subscription,
    url: text(li.querySelector(".url")),
    enabled: li.dataset.enabled,
    events: text(li.querySelector(".events")),
    description: text(li.querySelector(".description")),
  })),
  deliveries: [...document.querySelectorAll("#deliveries [data-delivery]")].map(li => ({
    id: li.dataset.delivery,
    status: li.dataset.status,
    subscription: li.dataset.subscription,
    event: li.dataset.event,
    attempts: li.dataset.attempts,
    replay: shown(li.querySelector('[data-action="redeliver"]')),
    attemptsShown: shown(li.querySelector(".attempts")),
    payload: text(li.querySelector(".payload")),
    attemptList: [...li.querySelectorAll(".attempts [data-attempt]")].map(a => ({
      number: a.dataset.attempt,
      code: a.dataset.statusCode || null,
      succeeded: a.dataset.succeeded,
      body: text(a.querySelector(".response-body")),
    })),
  })),
  text: document.body.innerText,
};
"##;

fn delivery<'a>(state: &'a Value, id: &str) -> Option<&'a Value> {
    state["deliveries"]
        .as_array()?
        .iter()
        .find(|d| d["id"] == id)
}

fn attempts(delivery: &Value) -> &[Value] {
    delivery["attemptList"]
        .as_array()
        .map_or(&[], Vec::as_slice)
}

/// Clicks the page's Refresh button until `done` accepts what the page shows, at most
/// [`DEADLINE`].
async fn refresh_until(browser: &Browser, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let end = Instant::now() + DEADLINE;
    loop {
        browser.click("#refresh").await;
        let state = browser.script(PAGE_STATE).await;
        if done(&state) {
            return state;
        }
        assert!(
            Instant::now() < end,
            "the page never showed {what}; it shows {:#}",
            json!({ "error": state["error"], "endpoints": state["endpoints"], "deliveries": state["deliveries"] })
        );
        // The refresh just clicked is answered while we wait.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn sign_in(browser: &Browser, name: &str) {
    browser
        .wait_until("the sign-in form", PAGE_STATE, |s| s["signIn"] == true)
        .await;
    // The keyboard alone: type the name, then Enter submits.
    browser
        .type_text("#sign-in-value", &format!("{name}\u{E007}"))
        .await;
    browser
        .wait_until("the portal, signed in", PAGE_STATE, |s| {
            s["state"] == "ready" && s["signedIn"] == true && s["signIn"] == false
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_adds_an_endpoint_tests_it_sees_a_failure_and_replays_it() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = TestReceiver::start().await.unwrap();

    let mut app = Command::new(child::binary("portal"))
        .args(["--port", "0", "--allow-private", "--db"])
        .arg(dir.path().join("webhooks.db"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the example");
    let app_lines = Lines::new(app.stdout.take().unwrap());
    let _app = Killed(app);
    let base = app_lines.wait_for_line("portal", "portal listening on ");
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    let http = child::client();

    // The page is served with its strict policy.
    let page = http.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.starts_with("default-src 'none'; script-src 'sha256-"),
        "{csp}"
    );
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");

    let driver = Chromedriver::start();
    let browser = Browser::start(&driver, &dir.path().join("chromium-profile")).await;
    browser.go(&format!("{base}/")).await;
    assert_eq!(browser.title().await, "Webhooks portal (demo)");
    // The inline style applied under the CSP: its hash is right.
    let radius = browser
        .script(
            r#"return getComputedStyle(document.getElementById("sign-in")).borderTopLeftRadius;"#,
        )
        .await;
    assert_eq!(radius, "10px", "the portal's style is applied");
    // From now on, any error of the page's script or anything the CSP blocks is recorded.
    browser
        .script(
            r#"window.troubles = [];
            document.addEventListener("securitypolicyviolation",
              e => window.troubles.push(`CSP ${e.violatedDirective} blocked ${e.blockedURI}`));
            window.addEventListener("error", e => window.troubles.push(`error: ${e.message}`));
            window.addEventListener("unhandledrejection",
              e => window.troubles.push(`unhandled: ${e.reason}`));
            return true;"#,
        )
        .await;

    // ---- alice adds an endpoint ----
    sign_in(&browser, "alice").await;
    let state = browser
        .wait_until("the event types", PAGE_STATE, |s| {
            s["eventTypes"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t == "random_number:generate"))
        })
        .await;
    assert_eq!(
        state["eventTypes"],
        json!([
            "*",
            "random_number:generate",
            "bear_attack:reported",
            "bear_attack:archived"
        ])
    );
    assert_eq!(state["endpoints"], json!([]));
    assert_eq!(state["error"], "");

    // A mistake first: the API's problem shows in the alert region, and nothing is added.
    browser.type_text("#endpoint-url", "not a url").await;
    browser
        .click(r#"#event-list input[value="random_number:generate"]"#)
        .await;
    browser.click("#create-endpoint").await;
    let state = browser
        .wait_until("the API's problem", PAGE_STATE, |s| s["error"] != "")
        .await;
    assert_eq!(state["problem"]["title"], "Invalid subscription");
    assert_eq!(
        state["problem"]["type"],
        "urn:typed-webhooks:problem:invalid-subscription"
    );
    assert_ne!(
        state["problem"]["detail"], "",
        "the problem's detail is shown"
    );
    assert_eq!(state["endpoints"], json!([]));
    let role = browser
        .script(r#"return document.getElementById("error").getAttribute("role");"#)
        .await;
    assert_eq!(role, "alert");

    browser.clear("#endpoint-url").await;
    browser.type_text("#endpoint-url", &receiver.url()).await;
    browser
        .type_text("#endpoint-description", "Alice's <b>test</b> endpoint")
        .await;
    browser.click("#create-endpoint").await;
    let state = browser
        .wait_until("the new endpoint's secret", PAGE_STATE, |s| {
            s["secret"]["value"]
                .as_str()
                .is_some_and(|v| v.starts_with("whsec_"))
        })
        .await;
    let subscription = state["secret"]["subscription"].as_str().unwrap().to_owned();
    let secret: Secret = state["secret"]["value"].as_str().unwrap().parse().unwrap();
    assert!(subscription.starts_with("sub_"), "{subscription}");
    assert_eq!(
        state["endpoints"],
        json!([{
            "id": subscription,
            "url": receiver.url(),
            "enabled": "true",
            "events": "Events: random_number:generate",
            // Shown as text, not as HTML.
            "description": "Alice's <b>test</b> endpoint",
        }])
    );
    assert_eq!(state["error"], "");
    // Requests not signed with the secret the page showed are answered 401.
    receiver.verify_with(Verifier::new(secret));

    // ---- a test event, delivered ----
    let endpoint = format!(r#"#endpoints [data-subscription="{subscription}"]"#);
    browser
        .click(&format!(r#"{endpoint} button[data-action="test"]"#))
        .await;
    let state = browser
        .wait_until("the test event's delivery", PAGE_STATE, |s| {
            s["deliveries"].as_array().is_some_and(|d| d.len() == 1)
        })
        .await;
    let first = state["deliveries"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        state["deliveries"][0]["subscription"],
        subscription.as_str()
    );
    assert_eq!(state["deliveries"][0]["event"], "random_number:generate");
    refresh_until(&browser, "the test event delivered", |s| {
        delivery(s, &first).is_some_and(|d| d["status"] == "delivered")
    })
    .await;
    let requests = receiver.wait_for(1, DEADLINE).await.unwrap();
    assert!(requests[0].signature_ok(), "signed with the secret shown");
    assert_eq!(requests[0].answered, Some(200));
    let body = requests[0].json().unwrap();
    assert_eq!(body["event"], "random_number:generate");
    assert_eq!(body["data"], 863, "the catalog's example");

    // The secret is shown once: "Done" hides it for good.
    browser.click("#hide-secret").await;
    let state = browser.script(PAGE_STATE).await;
    assert_eq!(state["secret"], Value::Null);
    assert!(!state["text"].as_str().unwrap().contains("whsec_"));

    // Editing keeps the URL and events, and changes the description.
    browser
        .click(&format!(r#"{endpoint} button[data-action="edit"]"#))
        .await;
    let description = format!(r#"{endpoint} .edit-form input[name="description"]"#);
    browser.clear(&description).await;
    browser.type_text(&description, "Alice's endpoint").await;
    browser
        .click(&format!(
            r#"{endpoint} .edit-form button[data-action="save"]"#
        ))
        .await;
    let state = browser
        .wait_until("the endpoint edited", PAGE_STATE, |s| {
            s["endpoints"][0]["description"] == "Alice's endpoint"
        })
        .await;
    assert_eq!(state["endpoints"][0]["url"], receiver.url());
    assert_eq!(
        state["endpoints"][0]["events"],
        "Events: random_number:generate"
    );
    assert_eq!(state["error"], "");

    // ---- the receiver fails: the page shows the attempts, then a replay delivers ----
    receiver.reply(Reply::status(500).body("the receiver is down"));
    browser
        .click(&format!(r#"{endpoint} button[data-action="test"]"#))
        .await;
    let state = refresh_until(&browser, "the second test event failing", |s| {
        s["deliveries"].as_array().is_some_and(|d| {
            d.iter().any(|d| {
                d["id"] != first.as_str() && (d["status"] == "failed" || d["status"] == "exhausted")
            })
        })
    })
    .await;
    let second = state["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] != first.as_str())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        state["deliveries"][0]["id"],
        second.as_str(),
        "newest first"
    );
    let failing = format!(r#"#deliveries [data-delivery="{second}"]"#);
    browser
        .click(&format!(r#"{failing} button[data-action="attempts"]"#))
        .await;
    let state = browser
        .wait_until("the failed attempt", PAGE_STATE, |s| {
            delivery(s, &second)
                .is_some_and(|d| d["attemptsShown"] == true && !attempts(d).is_empty())
        })
        .await;
    // The body sent, as the receiver got it.
    let payload: Value = serde_json::from_str(
        delivery(&state, &second).unwrap()["payload"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(payload["event"], "random_number:generate");
    assert_eq!(payload["data"], 863);
    let failed = &attempts(delivery(&state, &second).unwrap())[0];
    assert_eq!(failed["number"], "1");
    assert_eq!(failed["code"], "500");
    assert_eq!(failed["succeeded"], "false");
    assert_eq!(failed["body"], "the receiver is down");

    // Retried twice (1 s, 2 s), then given up; the attempts shown follow.
    let state = refresh_until(&browser, "the failing delivery exhausted", |s| {
        delivery(s, &second).is_some_and(|d| d["status"] == "exhausted" && attempts(d).len() == 3)
    })
    .await;
    let shown = delivery(&state, &second).unwrap();
    assert_eq!(shown["attempts"], "3");
    assert_eq!(shown["replay"], true);
    for attempt in attempts(shown) {
        assert_eq!(attempt["code"], "500");
        assert_eq!(attempt["body"], "the receiver is down");
    }

    receiver.reply(Reply::status(200));
    browser
        .click(&format!(r#"{failing} button[data-action="redeliver"]"#))
        .await;
    let state = refresh_until(&browser, "the replay delivered", |s| {
        delivery(s, &second).is_some_and(|d| d["status"] == "delivered" && attempts(d).len() == 4)
    })
    .await;
    let replayed = &attempts(delivery(&state, &second).unwrap())[3];
    assert_eq!(replayed["code"], "200");
    assert_eq!(replayed["succeeded"], "true");
    assert_eq!(state["error"], "");

    let requests = receiver.wait_for(5, DEADLINE).await.unwrap();
    assert_eq!(requests.len(), 5, "one, then three failures and the replay");
    let message = requests[1].webhook_id().unwrap();
    for request in &requests[1..] {
        assert!(request.signature_ok());
        assert_eq!(
            request.webhook_id(),
            Some(message),
            "the same message, replayed"
        );
    }
    assert_eq!(requests[4].answered, Some(200));

    // Readable on a phone: nothing wider than a narrow screen.
    browser
        .call(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({ "width": 400, "height": 800 })),
        )
        .await;
    let overflow = browser
        .script(
            "return [document.documentElement.scrollWidth, document.documentElement.clientWidth];",
        )
        .await;
    assert!(
        overflow[0].as_u64().unwrap() <= overflow[1].as_u64().unwrap(),
        "the page scrolls sideways on a phone: {overflow}"
    );

    // ---- bob, after alice signs out, sees none of it ----
    browser.click("#sign-out").await;
    let state = browser
        .wait_until("the page signed out", PAGE_STATE, |s| s["signIn"] == true)
        .await;
    assert_eq!(
        state["endpoints"],
        json!([]),
        "signing out forgets what was shown"
    );
    assert_eq!(state["deliveries"], json!([]));
    sign_in(&browser, "bob").await;
    let state = refresh_until(&browser, "bob's empty portal", |s| {
        s["eventTypes"].as_array().is_some_and(|t| !t.is_empty())
    })
    .await;
    assert_eq!(state["endpoints"], json!([]));
    assert_eq!(state["deliveries"], json!([]));
    assert_eq!(state["error"], "");
    let text = state["text"].as_str().unwrap();
    assert!(
        !text.contains(&receiver.url()),
        "bob sees alice's URL:\n{text}"
    );
    assert!(!text.contains(&subscription));

    let troubles = browser.script("return window.troubles;").await;
    assert_eq!(troubles, json!([]), "the page ran without errors");

    // ---- and the API answers bob 404 for alice's endpoint and deliveries ----
    let api = |method: reqwest::Method, path: &str, who: Option<&str>| {
        let mut request = http.request(method, format!("{base}/api/{path}"));
        if let Some(who) = who {
            request = request.header("x-demo-tenant", who);
        }
        request.send()
    };
    let own = api(
        reqwest::Method::GET,
        &format!("subscriptions/{subscription}"),
        Some("alice"),
    )
    .await
    .unwrap();
    assert_eq!(own.status(), 200, "alice reads her own endpoint");
    assert!(own.json::<Value>().await.unwrap().get("secret").is_none());
    for (method, path) in [
        (
            reqwest::Method::GET,
            format!("subscriptions/{subscription}"),
        ),
        (
            reqwest::Method::POST,
            format!("subscriptions/{subscription}/test"),
        ),
        (
            reqwest::Method::GET,
            format!("deliveries/{second}/attempts"),
        ),
        (
            reqwest::Method::POST,
            format!("deliveries/{second}/redeliver"),
        ),
    ] {
        let answer = api(method.clone(), &path, Some("bob")).await.unwrap();
        assert_eq!(answer.status(), 404, "bob: {method} {path}");
        assert!(
            answer.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/problem+json")
        );
        let problem: Value = answer.json().await.unwrap();
        assert_eq!(problem["status"], 404);
    }
    let bobs = api(reqwest::Method::GET, "deliveries", Some("bob"))
        .await
        .unwrap();
    assert_eq!(bobs.status(), 200);
    assert_eq!(bobs.json::<Value>().await.unwrap()["items"], json!([]));
    let nobody = api(reqwest::Method::GET, "subscriptions", None)
        .await
        .unwrap();
    assert_eq!(nobody.status(), 401, "no name, no access");
    assert_eq!(receiver.count(), 5, "bob's calls sent nothing");

    browser.close().await;
    drop(driver);
}
