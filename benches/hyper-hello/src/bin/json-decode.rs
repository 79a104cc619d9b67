//! What serde_json alone spends decoding a body: the floor `make bench` holds event functions
//! to at 64 KiB and 1 MiB.
//!
//! Usage: `json-decode <value|map|pubsub> <file> [seconds]` prints
//! `{"decodes": N, "cpu_us_per_decode": X}`: the CPU time of this thread per
//! `serde_json::from_slice` of the file's bytes into a `serde_json::Value` (what an untyped
//! event function holds), a `HashMap<String, String>` (what the typed benchmark function
//! takes) or a Pub/Sub `MessagePublishedData` (what `pubsub_noop` takes).

use std::collections::HashMap;
use std::hint::black_box;
use std::process::ExitCode;
use std::time::Duration;

fn thread_cpu() -> Duration {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map(Duration::from)
        .unwrap_or_default()
}

fn measure(
    seconds: f64,
    mut decode: impl FnMut() -> Result<(), serde_json::Error>,
) -> Result<(u64, f64), serde_json::Error> {
    decode()?;
    let start = thread_cpu();
    let budget = Duration::from_secs_f64(seconds);
    let mut decodes = 0u64;
    while thread_cpu() - start < budget {
        for _ in 0..8 {
            decode()?;
        }
        decodes += 8;
    }
    let spent = thread_cpu() - start;
    Ok((decodes, spent.as_secs_f64() * 1e6 / decodes as f64))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(kind), Some(file)) = (args.first(), args.get(1)) else {
        eprintln!("usage: json-decode <value|map|pubsub> <file> [seconds]");
        return ExitCode::from(2);
    };
    let seconds = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1.0);
    let bytes = match std::fs::read(file) {
        Ok(bytes) => bytes,
        Err(error) => {
            eprintln!("json-decode: cannot read {file}: {error}");
            return ExitCode::from(2);
        }
    };
    let result = match kind.as_str() {
        "value" => measure(seconds, || {
            black_box(serde_json::from_slice::<serde_json::Value>(black_box(
                &bytes,
            ))?);
            Ok(())
        }),
        "map" => measure(seconds, || {
            black_box(serde_json::from_slice::<HashMap<String, String>>(
                black_box(&bytes),
            )?);
            Ok(())
        }),
        "pubsub" => measure(seconds, || {
            black_box(serde_json::from_slice::<
                functions_framework_events::google::events::cloud::pubsub::v1::MessagePublishedData,
            >(black_box(&bytes))?);
            Ok(())
        }),
        other => {
            eprintln!("json-decode: unknown kind {other}: expected value, map or pubsub");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok((decodes, per)) => {
            println!("{{\"decodes\": {decodes}, \"cpu_us_per_decode\": {per:.3}}}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("json-decode: {file} does not decode as {kind}: {error}");
            ExitCode::FAILURE
        }
    }
}
