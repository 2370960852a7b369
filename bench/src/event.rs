//! The event every scenario sends: a typical business event (an invoice paid), one label, a
//! body of about 250 bytes.

use serde::Serialize;
use webhooks::WebhookEvent;

/// An invoice was paid.
#[derive(Clone, Debug, Serialize, WebhookEvent)]
#[webhook(resource = "invoice", action = "paid")]
pub(crate) struct InvoicePaid {
    pub(crate) invoice_id: u64,
    #[webhook(label)]
    pub(crate) account: String,
    pub(crate) amount_cents: u64,
    pub(crate) currency: String,
    pub(crate) customer_email: String,
    pub(crate) paid_at: String,
    pub(crate) lines: Vec<Line>,
}

/// One line of an invoice.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Line {
    pub(crate) sku: String,
    pub(crate) quantity: u32,
    pub(crate) unit_cents: u64,
}

impl InvoicePaid {
    /// The `n`th event: same shape and size for every `n`, of one of 1,000 accounts.
    pub(crate) fn sample(n: u64) -> InvoicePaid {
        InvoicePaid::of_account(n, n % 1000)
    }

    /// The `n`th event, of account `account` (its label: `acct_000042`): the same shape, size
    /// and cost to build as [`sample`](Self::sample).
    pub(crate) fn of_account(n: u64, account: u64) -> InvoicePaid {
        InvoicePaid {
            invoice_id: 1_000_000 + n,
            account: account_label(account),
            amount_cents: 12_345 + n % 100,
            currency: "EUR".to_owned(),
            customer_email: "billing@example.com".to_owned(),
            paid_at: "2026-05-01T12:34:56.789Z".to_owned(),
            lines: vec![
                Line {
                    sku: "plan-pro-monthly".to_owned(),
                    quantity: 1,
                    unit_cents: 9_900,
                },
                Line {
                    sku: "seat-extra".to_owned(),
                    quantity: 3,
                    unit_cents: 815 + n % 100,
                },
            ],
        }
    }
}

/// The `account` label of account number `n`, as events carry it and subscriptions scope by it.
pub(crate) fn account_label(n: u64) -> String {
    format!("acct_{n:06}")
}
