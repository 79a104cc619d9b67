//! An axum `Router` as one function: routing, extractors and JSON inside a Cloud Function.
//!
//! Run it: `cargo run -p example-axum-router`, then `curl localhost:8080/users/7`.

use axum::extract::{Path, Query};
use axum::routing::{get, post};
use axum::{Json, Router};
use functions_framework::{Error, Functions};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct User {
    id: u64,
    name: String,
}

#[derive(Deserialize)]
struct Search {
    q: String,
}

/// The API: `GET /users/{id}`, `POST /users`, `GET /search?q=`.
fn api() -> Router {
    Router::new()
        .route("/users/{id}", get(|Path(id): Path<u64>| async move { Json(User { id, name: format!("user {id}") }) }))
        .route("/users", post(|Json(user): Json<User>| async move { (axum::http::StatusCode::CREATED, Json(user)) }))
        .route("/search", get(|Query(search): Query<Search>| async move { format!("results for {}", search.q) }))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    Functions::new().service("api", api()).serve().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use functions_framework::testing::TestServer;

    #[tokio::test]
    async fn called_directly() {
        use tower_like::oneshot;
        let response = oneshot(api(), "/users/7").await;
        assert_eq!(response, r#"{"id":7,"name":"user 7"}"#);
    }

    /// The router called as a plain `tower::Service`, without HTTP.
    mod tower_like {
        use axum::Router;
        use axum::body::Body;
        use axum::http::Request;

        pub(super) async fn oneshot(router: Router, uri: &str) -> String {
            use std::future::poll_fn;
            use tower_service::Service as _;
            let mut router = router;
            let _ = poll_fn(|cx| {
                <Router as tower_service::Service<Request<Body>>>::poll_ready(&mut router, cx)
            })
            .await;
            let request = Request::get(uri).body(Body::empty()).expect("request");
            let response = router.call(request).await.expect("infallible");
            let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
                .await
                .expect("body");
            String::from_utf8_lossy(&bytes).into_owned()
        }
    }

    #[tokio::test]
    async fn over_http() {
        let server = TestServer::start(Functions::new().service("api", api()))
            .await
            .expect("server");
        let created = server
            .post(
                "/users",
                &[("content-type", "application/json")],
                r#"{"id":1,"name":"Ada"}"#,
            )
            .await
            .expect("post");
        assert_eq!(created.status(), 201);
        assert_eq!(
            serde_json::from_slice::<User>(created.body()).ok(),
            Some(User {
                id: 1,
                name: "Ada".into()
            })
        );
        assert_eq!(
            String::from_utf8_lossy(server.get("/search?q=rust").await.expect("get").body()),
            "results for rust"
        );
        assert_eq!(server.get("/nowhere").await.expect("get").status(), 404);
    }
}
