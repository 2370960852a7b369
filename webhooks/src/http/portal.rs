//! The customer portal page (stub; the portal helper replaces this file).

/// The customer portal: one self-contained page (HTML, CSS and JS inline, no network but the
/// API) that the router serves at `GET /portal`.
#[derive(Clone, Debug, Default)]
pub struct Portal {
    api_base: String,
}

impl Portal {
    /// A portal page that finds the API next to itself.
    pub fn new() -> Portal {
        Portal {
            api_base: "./".to_owned(),
        }
    }

    /// The whole page.
    pub fn html(&self) -> String {
        format!(
            "<!doctype html><title>Webhooks</title><meta name=webhooks-api content=\"{}\">",
            self.api_base
        )
    }
}

impl axum::response::IntoResponse for Portal {
    fn into_response(self) -> axum::response::Response {
        (
            [(http::header::CONTENT_TYPE, "text/html; charset=utf-8")],
            self.html(),
        )
            .into_response()
    }
}
