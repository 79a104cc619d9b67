//! A gRPC service served as a function: tonic's standard health service
//! (`grpc.health.v1.Health`, one unary and one server-streaming method), registered with
//! `.service` like any `tower::Service`. gRPC needs HTTP/2: the framework serves cleartext
//! HTTP/2 (h2c) on the same port as HTTP/1.1, which is what Cloud Run forwards to a service
//! deployed with `--use-http2`.
//!
//! Any tonic server (generated from your own `.proto`) registers the same way; a
//! `tonic::service::Routes` serves several at once.

use functions_framework::{Error, Functions};
use tonic_health::ServingStatus;

/// The service whose health this function reports.
const SERVICE: &str = "orders.v1.Orders";

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status(SERVICE, ServingStatus::Serving)
        .await;
    Functions::new().service("health", health).serve().await
}

#[cfg(test)]
mod tests {
    use functions_framework::testing::TestServer;
    use tonic::Code;
    use tonic::transport::Channel;
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus as Status;
    use tonic_health::pb::health_client::HealthClient;

    use super::*;

    fn ask(service: &str) -> HealthCheckRequest {
        HealthCheckRequest {
            service: service.to_owned(),
        }
    }

    #[tokio::test]
    async fn a_tonic_client_gets_unary_and_server_streaming_answers_over_h2c() {
        let (reporter, health) = tonic_health::server::health_reporter();
        reporter
            .set_service_status(SERVICE, ServingStatus::Serving)
            .await;
        let server = TestServer::start(Functions::new().service("health", health))
            .await
            .expect("server");
        let channel = Channel::from_shared(server.url())
            .expect("url")
            .connect()
            .await
            .expect("h2c connection");
        let mut client = HealthClient::new(channel);

        // Unary.
        let reply = client.check(ask(SERVICE)).await.expect("check");
        assert_eq!(reply.into_inner().status(), Status::Serving);
        let unknown = client
            .check(ask("nope.v1.Nope"))
            .await
            .expect_err("unknown");
        assert_eq!(unknown.code(), Code::NotFound);

        // Server streaming: the first status now, the next when it changes, on the same
        // response stream.
        let mut watch = client
            .watch(ask(SERVICE))
            .await
            .expect("watch")
            .into_inner();
        let first = watch.message().await.expect("first").expect("a message");
        assert_eq!(first.status(), Status::Serving);
        reporter
            .set_service_status(SERVICE, ServingStatus::NotServing)
            .await;
        let second = watch.message().await.expect("second").expect("a message");
        assert_eq!(second.status(), Status::NotServing);
    }
}
