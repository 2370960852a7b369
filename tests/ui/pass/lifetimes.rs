use std::borrow::Cow;

use serde::Serialize;
use webhooks::WebhookEvent;

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "comment", action = "posted")]
struct CommentPosted<'a, 'b: 'a> {
    #[webhook(label)]
    author: &'a str,
    body: Cow<'b, str>,
}

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "comment")]
enum Comment<'a> {
    #[webhook(action = "edited")]
    Edited(#[webhook(label = "author")] &'a str),
    #[webhook(action = "deleted")]
    Deleted,
}

fn main() {
    let posted = CommentPosted {
        author: "ada",
        body: Cow::Borrowed("hi"),
    };
    assert_eq!(posted.labels().get("author"), Some("ada"));
    assert_eq!(Comment::Edited("ada").labels().get("author"), Some("ada"));
    assert_eq!(Comment::Deleted.event_type(), "comment:deleted");
}
