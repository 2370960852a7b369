use webhooks::WebhookEvent;

#[derive(WebhookEvent)]
#[webhook(resource = "number", action = "generate")]
union Number {
    int: u32,
    float: f32,
}

fn main() {}
