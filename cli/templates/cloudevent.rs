//! The CloudEvent function `{{name}}`{{for_type}}. `cargo run` serves it on
//! http://localhost:8080; {{about_data}}.
{{use_data}}
use functions_framework::{CloudEvent, Error, Functions};

/// Logs the event. Returning `Err` answers 500, so that the event is delivered again.
#[functions_framework::register::cloud_event]
pub async fn {{ident}}(event: CloudEvent<{{data_type}}>) -> Result<(), Error> {
    tracing::info!(id = %event.id(), r#type = %event.ty(), "received {{show}}", event.data);
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    Functions::new().cloud_event("{{name}}", {{ident}}).serve().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepts_an_event() {
        let event = CloudEvent { event: functions_framework::Event::default(), data: {{data_type}}::default() };
        assert!({{ident}}(event).await.is_ok());
    }
}
