//! A typed function: the framework decodes the JSON request into `Order` and encodes the
//! `Quote` it returns. A request that does not fit gets 400 naming the field.

use functions_framework::{Error, Functions};
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize)]
struct Order {
    item: String,
    quantity: u32,
    unit_price_cents: u64,
}

#[derive(Debug, Serialize, PartialEq)]
struct Quote {
    item: String,
    total_cents: u64,
}

async fn quote(order: Order) -> Result<Quote, Error> {
    if order.quantity == 0 {
        return Err("quantity must be at least 1".into());
    }
    Ok(Quote {
        total_cents: order.unit_price_cents * u64::from(order.quantity),
        item: order.item,
    })
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    Functions::new().typed("quote", quote).serve().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use functions_framework::testing::TestServer;

    #[tokio::test]
    async fn called_directly() {
        let order = Order {
            item: "tea".into(),
            quantity: 3,
            unit_price_cents: 250,
        };
        assert_eq!(
            quote(order).await.ok(),
            Some(Quote {
                item: "tea".into(),
                total_cents: 750
            })
        );
    }

    #[tokio::test]
    async fn over_http() {
        let server = TestServer::start(Functions::new().typed("quote", quote))
            .await
            .expect("server");
        let ok = server
            .post(
                "/",
                &[],
                r#"{"item":"tea","quantity":2,"unit_price_cents":100}"#,
            )
            .await
            .expect("post");
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(ok.body()).ok(),
            Some(serde_json::json!({"item": "tea", "total_cents": 200}))
        );
        let bad = server
            .post(
                "/",
                &[],
                r#"{"item":"tea","quantity":"two","unit_price_cents":100}"#,
            )
            .await
            .expect("post");
        assert_eq!(bad.status(), 400);
        assert!(
            String::from_utf8_lossy(bad.body()).contains("quantity"),
            "{}",
            String::from_utf8_lossy(bad.body())
        );
        let refused = server
            .post(
                "/",
                &[],
                r#"{"item":"tea","quantity":0,"unit_price_cents":100}"#,
            )
            .await
            .expect("post");
        assert_eq!(refused.status(), 500);
    }
}
