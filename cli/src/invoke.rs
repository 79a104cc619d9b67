//! `invoke`: sends a test event to a running function (`ff-rust dev`, `make test`) and shows
//! the answer.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::fixtures::{self, Fixture};

#[derive(Debug, Args)]
pub(crate) struct Invoke {
    /// A built-in fixture's name (`--list` names them) or a fixture file
    /// (`{"headers": {...}, "body": ...}` or `"bodyBase64"`)
    #[arg(required_unless_present = "list")]
    fixture: Option<String>,
    /// List the built-in fixtures and the forms each can be sent in
    #[arg(long)]
    list: bool,
    /// Send the event in this form: as the fixture is (default), or converted
    #[arg(long = "as", value_enum, value_name = "FORM")]
    form: Option<Form>,
    /// Where the function listens (default: http://localhost:$PORT/, PORT 8080)
    #[arg(long)]
    url: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Form {
    /// A CloudEvent in binary mode (ce- headers)
    Binary,
    /// A CloudEvent in structured mode (application/cloudevents+json)
    Structured,
    /// The legacy (background) event the Node.js runtime sends for it
    Legacy,
}

pub(crate) fn run(args: &Invoke) -> Result<String, String> {
    if args.list {
        return Ok(list());
    }
    let name = args.fixture.as_deref().unwrap_or_default();
    let fixture = match Fixture::named(name) {
        Some(fixture) => fixture,
        None if Path::new(name).is_file() => {
            let text = std::fs::read_to_string(name).map_err(|e| format!("{name}: {e}"))?;
            Fixture::parse(&text).map_err(|e| format!("{name}: {e}"))?
        }
        None => {
            let names: Vec<&str> = fixtures::ALL.iter().map(|(n, _)| *n).collect();
            return Err(format!(
                "no fixture {name:?} and no such file; the fixtures: {}",
                names.join(", ")
            ));
        }
    };
    let fixture = match args.form {
        None => Ok(fixture),
        Some(Form::Binary) => fixture.to_binary(),
        Some(Form::Structured) => fixture.to_structured(),
        Some(Form::Legacy) => fixture.to_legacy(),
    }
    .map_err(|e| format!("{name}: {e}"))?;
    let url = match &args.url {
        Some(url) => url.clone(),
        None => format!(
            "http://localhost:{}/",
            std::env::var("PORT").unwrap_or_else(|_| "8080".to_owned())
        ),
    };
    let (status, body) = send(&url, &fixture)?;
    let answer = format!(
        "{status}\n{body}{}",
        if body.ends_with('\n') { "" } else { "\n" }
    );
    if (200..300).contains(&status) {
        Ok(answer)
    } else {
        Err(format!("the function answered {answer}"))
    }
}

fn list() -> String {
    let mut out = String::new();
    for (name, text) in fixtures::ALL {
        let Ok(fixture) = Fixture::parse(text) else {
            continue;
        };
        let forms = fixture.forms();
        let forms = if forms.is_empty() {
            String::new()
        } else {
            format!(" [--as {}]", forms.join("|"))
        };
        out.push_str(&format!("{name}: {}{forms}\n", fixture.description));
    }
    out
}

/// POSTs the fixture with HTTP/1.1 and returns the status and the body.
fn send(url: &str, fixture: &Fixture) -> Result<(u16, String), String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        format!("{url}: invoke sends to a function on this machine over http:// (ff-rust dev, make test)")
    })?;
    let (authority, path) = match rest.find('/') {
        Some(slash) => (&rest[..slash], &rest[slash..]),
        None => (rest, "/"),
    };
    let address = if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let mut stream = TcpStream::connect(&address).map_err(|e| {
        format!("cannot connect to {address}: {e} (is the function running? ff-rust dev serves it)")
    })?;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(300)));
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nContent-Length: {}\r\n",
        fixture.body.len()
    );
    for (name, value) in &fixture.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(&fixture.body))
        .map_err(|e| format!("sending to {address}: {e}"))?;
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .map_err(|e| format!("reading the answer from {address}: {e}"))?;
    let text = String::from_utf8_lossy(&answer);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("{address} did not answer HTTP: {text:?}"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}
