//! The functions this project's end-to-end tests and benchmarks run, chosen by
//! `FUNCTION_TARGET`. When `CONFORMANCE_SLEEP_MS` is set, every function first sleeps that
//! long (the concurrency check of the conformance suite).

use std::io::Write;
use std::time::Duration;

use functions_framework::http::{HeaderValue, StatusCode, header};
use functions_framework::{Error, Functions, IntoResponse, Request, Response};

/// Where the conformance checks read what a function received.
const OUTPUT_FILE: &str = "function_output.json";

async fn conformance_sleep() {
    let ms = std::env::var("CONFORMANCE_SLEEP_MS")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    if ms > 0 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

fn query_number(req: &Request, name: &str) -> Option<u64> {
    req.uri().query()?.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == name).then(|| value.parse().ok()).flatten()
    })
}

/// Records the raw body, answers `OK`.
async fn http(req: Request) -> Result<&'static str, Error> {
    conformance_sleep().await;
    std::fs::write(OUTPUT_FILE, req.body())?;
    Ok("OK")
}

/// Answers with the request's body and content type.
async fn echo(req: Request) -> Response {
    conformance_sleep().await;
    let content_type = req.headers().get(header::CONTENT_TYPE).cloned();
    let mut response = req.into_body().into_response();
    match content_type {
        Some(value) => response.headers_mut().insert(header::CONTENT_TYPE, value),
        None => response.headers_mut().remove(header::CONTENT_TYPE),
    };
    response
}

async fn panic(_req: Request) -> &'static str {
    conformance_sleep().await;
    panic!("test-functions: deliberate panic")
}

async fn error(_req: Request) -> Result<&'static str, Error> {
    conformance_sleep().await;
    Err("test-functions: deliberate error".into())
}

/// Sleeps `?ms=N` milliseconds, then answers 200.
async fn sleep(req: Request) -> (StatusCode, String) {
    conformance_sleep().await;
    let ms = query_number(&req, "ms").unwrap_or(0);
    tokio::time::sleep(Duration::from_millis(ms)).await;
    (StatusCode::OK, format!("slept {ms}ms"))
}

/// Writes `?lines=N` numbered lines to stdout, then answers 200.
async fn log(req: Request) -> Result<Response, Error> {
    conformance_sleep().await;
    let lines = query_number(&req, "lines").unwrap_or(1);
    let mut out = std::io::stdout().lock();
    for i in 0..lines {
        writeln!(
            out,
            "log line {i} of {lines}: the quick brown fox jumps over the lazy dog"
        )?;
    }
    out.flush()?;
    let mut response = format!("wrote {lines} lines").into_response();
    response
        .headers_mut()
        .insert("x-lines", HeaderValue::from(lines));
    Ok(response)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    Functions::new()
        .http("http", http)
        .http("echo", echo)
        .http("panic", panic)
        .http("error", error)
        .http("sleep", sleep)
        .http("log", log)
        .serve()
        .await
}
