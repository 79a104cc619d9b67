//! State created once, before serving, and shared by every invocation: a client, a cache,
//! a counter. Concurrent invocations share it through an `Arc`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use functions_framework::{Error, Functions, Request};

/// Stands for an expensive client (database pool, HTTP client) built once per instance.
#[derive(Debug, Default)]
struct Client {
    calls: AtomicU64,
}

impl Client {
    async fn visit(&self) -> u64 {
        self.calls.fetch_add(1, Ordering::SeqCst) + 1
    }
}

fn app(client: Arc<Client>) -> Functions {
    Functions::new().http("visits", move |_req: Request| {
        let client = Arc::clone(&client);
        async move { format!("visit number {}", client.visit().await) }
    })
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let client = Arc::new(Client::default());
    app(client).serve().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use functions_framework::testing::TestServer;

    #[tokio::test]
    async fn called_directly() {
        let client = Client::default();
        assert_eq!(client.visit().await, 1);
        assert_eq!(client.visit().await, 2);
    }

    #[tokio::test]
    async fn over_http_the_state_is_shared() {
        let client = Arc::new(Client::default());
        let server = TestServer::start(app(Arc::clone(&client)))
            .await
            .expect("server");
        for n in 1..=3 {
            assert_eq!(
                String::from_utf8_lossy(server.get("/").await.expect("get").body()),
                format!("visit number {n}")
            );
        }
        assert_eq!(client.calls.load(Ordering::SeqCst), 3);
    }
}
