//! Any JSON document through every legacy <-> CloudEvent conversion.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    functions_framework::fuzz::convert(data);
});
