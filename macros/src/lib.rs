//! Attribute macros for [versile](https://docs.rs/versile): typed objects
//! and typed clients. Use them through `versile` (`#[versile::object]`,
//! `#[versile::client]`); the expansion names `::versile` paths, and the
//! runtime half lives in `versile::object` (`Publish`, `ProxyError`).
//!
//! ```text
//! #[versile::object] impl T { async fn .. }  →  impl Publish for T, From<T> for LocalObject
//! #[versile::client] trait T { async fn ..; } →  struct TClient { remote: RemoteObject }
//! ```
//!
//! The examples (doc-tested) are in the `versile` crate documentation.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod client;
mod method;
mod object;

use proc_macro::TokenStream;

/// Serve an `impl` block's async methods as a Versile object.
///
/// Every `async fn name(&self, args...) -> R` becomes the published method
/// `name` (`docs/protocol/vol.md` §4.1–4.5); a method that keeps the object (e.g. to
/// hand a child object a reference to it) takes `self: Arc<Self>` instead:
/// * each argument is converted with `versile::FromValue`; a wrong count
///   or type answers CALL_ERROR;
/// * a `&CallContext` parameter receives the link's context and takes no
///   argument;
/// * `R` is a value (`Into<Value>`; `()` is VNone) or `Result<T, E>` with
///   `E: Into<CallError>`: `Err` answers with that error, normally
///   `CallError::Exception` (CALL_EXCEPTION);
/// * doc comments are published: the impl block's as the meta call
///   `doc()`, a method's as `doc("name")`; `methods()` lists the methods.
///
/// Method options: `#[versile(name = "wire_name")]`, `#[versile(hidden)]`
/// (callable, not listed), `#[versile(skip)]` (not published: helpers and
/// constructors).
///
/// The expansion implements `versile::Publish` and
/// `From<Self> for versile::LocalObject`.
#[proc_macro_attribute]
pub fn object(args: TokenStream, item: TokenStream) -> TokenStream {
    let item = syn::parse_macro_input!(item as syn::ItemImpl);
    object::expand(args.into(), item)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Generate a typed client from a trait of async method declarations.
///
/// `#[versile::client] trait Adder { async fn add(&self, n: i64) -> i64; }`
/// becomes `struct AdderClient` with `new(RemoteObject)` and
/// `async fn add(&self, n: i64) -> Result<i64, versile::ProxyError>`:
/// arguments are converted with `Into<Value>`, the result with
/// `versile::FromValue` (a result of another type is
/// `ProxyError::Result`; a remote exception is
/// `ProxyError::Call(CallError::Exception(..))`).
///
/// `#[versile(name = "wire_name")]` on a method calls a different name.
/// The client also converts from and into `Value`, so it can be an
/// argument or result type of another typed method.
#[proc_macro_attribute]
pub fn client(args: TokenStream, item: TokenStream) -> TokenStream {
    let item = syn::parse_macro_input!(item as syn::ItemTrait);
    client::expand(args.into(), item)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
