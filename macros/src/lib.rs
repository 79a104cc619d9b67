//! Marks functions for the converter (`ff-rust convert`), which generates the `main.rs` that
//! registers them. The attributes leave the function unchanged; they only check that it is
//! an `async fn`. Use them through `functions_framework`:
//!
//! ```ignore
//! #[functions_framework::register::http]
//! pub async fn hello(req: functions_framework::Request) -> String { "Hello".into() }
//!
//! #[functions_framework::register::cloud_event(name = "onUpload")]
//! pub async fn on_upload(event: functions_framework::Event) -> Result<(), functions_framework::Error> { Ok(()) }
//! ```
//!
//! `name = "..."` sets the registered name (the function's own name otherwise).

use proc_macro::{Delimiter, TokenStream, TokenTree};

/// Checks the arguments (`name = "..."` or nothing) and that the item is an `async fn`.
fn mark(attribute: &str, args: TokenStream, item: TokenStream) -> TokenStream {
    let args: Vec<TokenTree> = args.into_iter().collect();
    let args_ok = match args.as_slice() {
        [] => true,
        [
            TokenTree::Ident(key),
            TokenTree::Punct(eq),
            TokenTree::Literal(value),
        ] => key.to_string() == "name" && eq.as_char() == '=' && value.to_string().starts_with('"'),
        _ => false,
    };
    if !args_ok {
        return error(&format!(
            "#[{attribute}] takes no arguments or `name = \"registered-name\"`"
        ));
    }
    let mut saw_async = false;
    let mut is_async_fn = false;
    for token in item.clone() {
        match token {
            TokenTree::Ident(ident) if ident.to_string() == "async" => saw_async = true,
            TokenTree::Ident(ident) if ident.to_string() == "fn" => {
                is_async_fn = saw_async;
                break;
            }
            TokenTree::Group(group) if group.delimiter() == Delimiter::Brace => break,
            _ => {}
        }
    }
    if !is_async_fn {
        return error(&format!("#[{attribute}] marks an `async fn`"));
    }
    item
}

fn error(message: &str) -> TokenStream {
    format!("::core::compile_error!({message:?});")
        .parse()
        .unwrap_or_default()
}

/// Marks an HTTP function: `async fn(Request) -> impl IntoResponse`.
#[proc_macro_attribute]
pub fn http(args: TokenStream, item: TokenStream) -> TokenStream {
    mark("http", args, item)
}

/// Marks a CloudEvent function: `async fn(Event | CloudEvent<T>) -> Result<(), E>`.
#[proc_macro_attribute]
pub fn cloud_event(args: TokenStream, item: TokenStream) -> TokenStream {
    mark("cloud_event", args, item)
}

/// Marks a legacy event function: `async fn(T, EventContext) -> Result<(), E>`.
#[proc_macro_attribute]
pub fn event(args: TokenStream, item: TokenStream) -> TokenStream {
    mark("event", args, item)
}

/// Marks a typed function: `async fn(In) -> Result<Out, E>`.
#[proc_macro_attribute]
pub fn typed(args: TokenStream, item: TokenStream) -> TokenStream {
    mark("typed", args, item)
}
