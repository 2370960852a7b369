use serde::Serialize;
use webhooks::WebhookEvent;

#[derive(Serialize, WebhookEvent)]
#[webhook(
    resource = "a_resource_name_that_goes_on_and_on_and_on_well_past_any_reasonable_length",
    action = "and_an_action_that_is_long_too_so_that_together_they_overflow"
)]
struct TooLong;

fn main() {}
