use webhooks::WebhookEvent;

#[derive(WebhookEvent)]
#[webhook(resource = "job", action = "done")]
struct JobDone<T> {
    output: T,
}

fn main() {
    let _ = JobDone { output: 1 }.event_type();
}
