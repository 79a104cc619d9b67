//! The data of a Google event: the first two bytes pick the event type, the rest is the data,
//! decoded as protobuf and as JSON into the type's generated struct.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (selector, rest) = data.split_at(data.len().min(2));
    let selector = selector
        .iter()
        .fold(0u16, |acc, byte| (acc << 8) | u16::from(*byte));
    functions_framework::fuzz::google_event_data(selector, rest);
});
