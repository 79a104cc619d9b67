//! Finds the functions to register in Rust source: `async fn`s marked with one of the
//! framework's attributes, and a `register` function.

use syn::{Attribute, Item, Visibility};

/// The signature a marked function has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Http,
    CloudEvent,
    Event,
    Typed,
}

impl Kind {
    /// The `Functions` method that registers this kind.
    pub(crate) fn method(self) -> &'static str {
        match self {
            Kind::Http => "http",
            Kind::CloudEvent => "cloud_event",
            Kind::Event => "event",
            Kind::Typed => "typed",
        }
    }

    fn from_attribute(name: &str) -> Option<Kind> {
        match name {
            "http" => Some(Kind::Http),
            "cloud_event" => Some(Kind::CloudEvent),
            "event" => Some(Kind::Event),
            "typed" => Some(Kind::Typed),
            _ => None,
        }
    }
}

/// A marked function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Function {
    pub(crate) kind: Kind,
    /// The registered name.
    pub(crate) name: String,
    /// The Rust identifier.
    pub(crate) ident: String,
}

/// What a source file offers.
#[derive(Debug, Default)]
pub(crate) struct Found {
    pub(crate) functions: Vec<Function>,
    /// Whether it has `pub fn register(Functions) -> Functions`.
    pub(crate) register: bool,
}

impl Found {
    pub(crate) fn summary(&self) -> String {
        let mut names: Vec<String> = self
            .functions
            .iter()
            .map(|f| format!("{} ({})", f.name, f.kind.method()))
            .collect();
        if self.register {
            names.push("those added by register()".to_owned());
        }
        format!("Registered: {}.", names.join(", "))
    }
}

/// The attribute's kind and `name = "..."`, when it is one of ours: `#[http]`,
/// `#[functions_framework::register::http]`, `#[functions_framework::register::http(name = "x")]`.
fn marker(attribute: &Attribute) -> Result<Option<(Kind, Option<String>)>, String> {
    let path = attribute.path();
    let Some(last) = path.segments.last() else {
        return Ok(None);
    };
    // `http`, `register::http` or `functions_framework::register::http`.
    let names: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
    let qualified = match names.as_slice() {
        [_] => true,
        [module, _] => module == "register",
        [krate, module, _] => krate == "functions_framework" && module == "register",
        _ => false,
    };
    let Some(kind) = Kind::from_attribute(&last.ident.to_string()).filter(|_| qualified) else {
        return Ok(None);
    };
    let mut name = None;
    if let syn::Meta::List(_) = &attribute.meta {
        attribute
            .parse_nested_meta(|meta| {
                if meta.path.is_ident("name") {
                    let value: syn::LitStr = meta.value()?.parse()?;
                    name = Some(value.value());
                    Ok(())
                } else {
                    Err(meta.error("expected `name = \"...\"`"))
                }
            })
            .map_err(|e| e.to_string())?;
    }
    Ok(Some((kind, name)))
}

/// Scans the top-level items of a source file.
pub(crate) fn scan(source: &str) -> Result<Found, String> {
    let file = syn::parse_file(source).map_err(|e| format!("not valid Rust: {e}"))?;
    let mut found = Found::default();
    for item in &file.items {
        let Item::Fn(function) = item else {
            continue;
        };
        let ident = function.sig.ident.to_string();
        let public = matches!(function.vis, Visibility::Public(_));
        if ident == "register" && public && function.sig.asyncness.is_none() {
            found.register = true;
            continue;
        }
        for attribute in &function.attrs {
            let Some((kind, name)) = marker(attribute)? else {
                continue;
            };
            if function.sig.asyncness.is_none() {
                return Err(format!(
                    "`{ident}` is marked #[{}] but is not an `async fn`",
                    kind.method()
                ));
            }
            if !public {
                return Err(format!(
                    "`{ident}` is marked #[{}] but is not `pub`: the generated main must reach it",
                    kind.method()
                ));
            }
            let name = name.unwrap_or_else(|| ident.clone());
            if found.functions.iter().any(|f| f.name == name) {
                return Err(format!("two functions are registered as {name:?}"));
            }
            found.functions.push(Function {
                kind,
                name,
                ident: ident.clone(),
            });
        }
    }
    if found.functions.is_empty() && !found.register {
        return Err(
            "no function to register: mark a `pub async fn` with #[functions_framework::register::http] \
             (or cloud_event, event, typed), or add `pub fn register(functions: Functions) -> Functions`"
                .to_owned(),
        );
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_marked_functions_and_names() {
        let found = scan(
            r#"
            use functions_framework::{Request, Error};
            #[functions_framework::register::http]
            pub async fn hello(req: Request) -> String { String::new() }
            #[functions_framework::register::cloud_event(name = "onUpload")]
            pub async fn on_upload(e: functions_framework::Event) -> Result<(), Error> { Ok(()) }
            #[event]
            pub async fn legacy(d: serde_json::Value, c: functions_framework::EventContext) -> Result<(), Error> { Ok(()) }
            #[derive(Debug)]
            pub struct NotAFunction;
            pub async fn unmarked() {}
            "#,
        )
        .expect("scan");
        assert_eq!(
            found.functions,
            vec![
                Function {
                    kind: Kind::Http,
                    name: "hello".into(),
                    ident: "hello".into()
                },
                Function {
                    kind: Kind::CloudEvent,
                    name: "onUpload".into(),
                    ident: "on_upload".into()
                },
                Function {
                    kind: Kind::Event,
                    name: "legacy".into(),
                    ident: "legacy".into()
                },
            ]
        );
        assert!(!found.register);
    }

    #[test]
    fn explains_what_is_wrong() {
        for (source, says) in [
            (
                "#[functions_framework::register::http] pub fn f() {}",
                "not an `async fn`",
            ),
            (
                "#[functions_framework::register::http] async fn f() {}",
                "not `pub`",
            ),
            ("pub async fn f() {}", "no function to register"),
            ("fn (", "not valid Rust"),
            (
                "#[functions_framework::register::http(nom = \"x\")] pub async fn f() {}",
                "name",
            ),
            (
                "#[functions_framework::register::http] pub async fn f() {} #[functions_framework::register::typed(name = \"f\")] pub async fn g() {}",
                "two functions",
            ),
        ] {
            let error = scan(source).expect_err(source);
            assert!(error.contains(says), "{source}: {error}");
        }
        assert!(scan("#[other::http] pub async fn f() {}").is_err());
        assert!(scan("#[functions_framework::http] pub async fn f() {}").is_err());
        assert!(scan("#[register::http] pub async fn f() {}").is_ok());
    }

    #[test]
    fn register_alone_is_enough() {
        let found = scan("pub fn register(f: Functions) -> Functions { f }").expect("scan");
        assert!(found.register);
    }
}
