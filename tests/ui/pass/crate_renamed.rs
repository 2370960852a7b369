use serde::Serialize;
use webhooks as hooks;

#[derive(Serialize, hooks::WebhookEvent)]
#[webhook(crate = "hooks", resource = "invoice", action = "paid")]
struct InvoicePaid {
    #[webhook(label)]
    customer: String,
}

mod nested {
    use serde::Serialize;

    #[derive(Serialize, ::webhooks::WebhookEvent)]
    #[webhook(crate = "crate::hooks")]
    pub enum Invoice {
        #[webhook(action = "voided")]
        Voided,
    }
}

fn main() {
    use hooks::WebhookEvent;

    let paid = InvoicePaid {
        customer: "ada".to_owned(),
    };
    assert_eq!(paid.event_type(), "invoice:paid");
    assert_eq!(paid.labels().get("customer"), Some("ada"));
    assert_eq!(nested::Invoice::Voided.event_type(), "invoice:voided");
}
