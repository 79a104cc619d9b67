//! Entry points for the fuzz targets (`fuzz/`), compiled only with the `fuzzing` feature.
//! They run the same code as the server, on arbitrary input, and must never panic.

use bytes::Bytes;

/// Decodes an event request both ways: as a CloudEvent function and as a legacy event
/// function would receive it.
pub fn decode_event(method: &[u8], headers: &[(&[u8], &[u8])], body: &[u8]) {
    let mut request = http::Request::builder();
    if let Ok(method) = http::Method::from_bytes(method) {
        request = request.method(method);
    }
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name),
            http::HeaderValue::from_bytes(value),
        ) {
            request = request.header(name, value);
        }
    }
    let Ok(request) = request.body(Bytes::copy_from_slice(body)) else {
        return;
    };
    // What a `CloudEvent<T>` function decodes: the JSON data as bytes.
    if let Ok((event, json)) = crate::signature::cloudevent::to_cloud_event_with(
        &request,
        crate::signature::decode::DataForm::Raw,
    ) {
        type Typed = crate::CloudEvent<serde_json::Value>;
        let _ = match json {
            Some(json) => <Typed as crate::FromCloudEvent>::from_cloud_event_and_json(event, json),
            None => <Typed as crate::FromCloudEvent>::from_cloud_event(event),
        };
    }
    if let Ok(event) = crate::signature::cloudevent::to_cloud_event(&request) {
        // What the `cloudevent` test target does with it.
        let _ = serde_json::to_vec(&event);
        let _ = <crate::CloudEvent<serde_json::Value> as crate::FromCloudEvent>::from_cloud_event(
            event,
        );
    }
    let _ = crate::signature::legacy::to_legacy(&request);
}

/// Runs every conversion on a JSON document.
pub fn convert(json: &[u8]) {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(json) else {
        return;
    };
    let _ = crate::convert::is_legacy_event(&value);
    if let Ok(event) = crate::convert::legacy_to_cloud_event(&value) {
        // A converted event converts back.
        let _ = crate::convert::cloud_event_to_legacy(&event);
    }
    let _ = crate::convert::normalize_legacy(&value);
    let _ = crate::convert::cloud_event_to_legacy(&value);
}

/// Resolves the configuration from arbitrary arguments and environment values.
pub fn config(args: &[String], env: &[(String, String)]) {
    let argv = std::iter::once("function".to_owned()).chain(args.iter().cloned());
    let _ = crate::config::resolve(&crate::config::Overrides::default(), argv, |name| {
        env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    });
}

/// Decodes arbitrary bytes as the data of the Google event type `selector` picks (among the
/// types of the enabled products), as protobuf and as JSON, the way `CloudEvent<T>` does;
/// what decodes is encoded again both ways.
pub fn google_event_data(selector: u16, data: &[u8]) {
    use cloudevents::{EventBuilder, EventBuilderV10};

    let types: Vec<&str> = functions_framework_events::cloud_event_types::ALL
        .iter()
        .map(|(ty, _, _)| *ty)
        .filter(|ty| functions_framework_events::visit_data_type(ty, Enabled).is_some())
        .collect();
    let Some(ty) = types.get(usize::from(selector) % types.len().max(1)) else {
        return;
    };
    for content_type in ["application/protobuf", "application/json"] {
        let Ok(event) = EventBuilderV10::new()
            .id("fuzz")
            .source("//fuzz")
            .ty(*ty)
            .data(content_type, data.to_vec())
            .build()
        else {
            continue;
        };
        let _ = functions_framework_events::visit_data_type(ty, Decode(event));
    }
}

/// Whether the type's product is compiled in.
struct Enabled;

impl functions_framework_events::DataTypeVisitor for Enabled {
    type Output = ();

    fn visit<T: functions_framework_events::EventData>(self) {}
}

/// Decodes the event's data into the type, and encodes what decodes.
struct Decode(cloudevents::Event);

impl functions_framework_events::DataTypeVisitor for Decode {
    type Output = ();

    fn visit<T: functions_framework_events::EventData>(self) {
        use crate::FromCloudEvent as _;
        if let Ok(event) = crate::CloudEvent::<T>::from_cloud_event(self.0) {
            let _ = serde_json::to_vec(&event.data);
            let _ = functions_framework_events::prost::Message::encode_to_vec(&event.data);
        }
    }
}
