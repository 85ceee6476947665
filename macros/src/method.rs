//! What both macros read from a method: its `#[versile(...)]` options, its
//! doc comments, and a signature that must be `async fn name(&self, ...)`
//! without generics.

use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Attribute, Error, FnArg, Ident, LitStr, Pat, Signature, Type};

/// `#[versile(name = "...", hidden, skip)]` on a method.
#[derive(Default)]
pub struct Options {
    /// The name on the wire, if not the Rust name.
    pub name: Option<LitStr>,
    /// Not listed by the meta call `methods` (`docs/protocol/vol.md` §4.2).
    pub hidden: bool,
    /// Not published at all (a helper or constructor).
    pub skip: bool,
}

/// Removes every `#[versile(...)]` from `attrs` (they are ours, the
/// compiler does not know them) and parses them.
pub fn take_options(attrs: &mut Vec<Attribute>) -> syn::Result<Options> {
    let mut options = Options::default();
    let mut result = Ok(());
    attrs.retain(|attr| {
        if !attr.path().is_ident("versile") {
            return true;
        }
        let parsed = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("name") {
                options.name = Some(meta.value()?.parse()?);
            } else if meta.path.is_ident("hidden") {
                options.hidden = true;
            } else if meta.path.is_ident("skip") {
                options.skip = true;
            } else {
                return Err(meta.error("expected `name = \"...\"`, `hidden` or `skip`"));
            }
            Ok(())
        });
        if let Err(e) = parsed {
            combine(&mut result, e);
        }
        false
    });
    result.map(|()| options)
}

/// Collects errors so that one expansion reports all of them.
pub fn combine(result: &mut syn::Result<()>, error: Error) {
    match result {
        Ok(()) => *result = Err(error),
        Err(first) => first.combine(error),
    }
}

/// The text of the doc comments in `attrs`, as the meta call `doc`
/// returns it (`docs/protocol/vol.md` §4.3): one line per `///` line without the space
/// after the slashes, ending in a newline. `None` without doc comments.
pub fn doc_text(attrs: &[Attribute]) -> Option<String> {
    let mut lines = Vec::new();
    for attr in attrs {
        if !attr.path().is_ident("doc") {
            continue;
        }
        if let syn::Meta::NameValue(nv) = &attr.meta {
            if let syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) = &nv.value
            {
                for line in s.value().split('\n') {
                    lines.push(line.strip_prefix(' ').unwrap_or(line).trim_end().to_owned());
                }
            }
        }
    }
    let text = lines.join("\n");
    let text = text.trim_matches('\n');
    (!text.is_empty()).then(|| format!("{text}\n"))
}

/// The wire name of a method: `#[versile(name)]` or the Rust name
/// (without `r#`).
pub fn wire_name(options: &Options, ident: &Ident) -> LitStr {
    options
        .name
        .clone()
        .unwrap_or_else(|| LitStr::new(&ident.unraw().to_string(), ident.span()))
}

/// One parameter after `&self`.
pub struct Param {
    /// The name the macro gives it (`arg0`, ...) or its own if a plain one.
    pub ident: Ident,
    pub ty: Type,
}

/// How a method receives the object.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Receiver {
    /// `&self`.
    Ref,
    /// `self: Arc<Self>`: the method may keep the object (e.g. hand a
    /// child object a reference to its parent).
    Arc,
}

/// Which receivers a macro accepts.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Receivers {
    /// `&self` only (client methods).
    RefOnly,
    /// `&self` or `self: Arc<Self>` (served methods).
    RefOrArc,
}

/// Checks that `sig` is `async fn name(&self, params...)` without
/// generics, and returns the receiver and the parameters. `what` names the
/// item in errors.
pub fn check_signature(
    sig: &Signature,
    what: &str,
    receivers: Receivers,
) -> syn::Result<(Receiver, Vec<Param>)> {
    let mut result = Ok(());
    if sig.asyncness.is_none() {
        combine(
            &mut result,
            Error::new(sig.fn_token.span(), format!("{what} must be an `async fn`")),
        );
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        combine(
            &mut result,
            Error::new_spanned(
                &sig.generics,
                format!(
                    "{what} cannot be generic: its argument and result types must be \
                     known to convert them from and to the wire"
                ),
            ),
        );
    }
    if let Some(v) = &sig.variadic {
        combine(
            &mut result,
            Error::new_spanned(v, format!("{what} cannot be variadic")),
        );
    }
    let receiver = check_receiver(sig, what, receivers).unwrap_or_else(|e| {
        combine(&mut result, e);
        Receiver::Ref
    });
    let mut params = Vec::new();
    for (index, input) in sig.inputs.iter().skip(1).enumerate() {
        let FnArg::Typed(pat) = input else {
            continue;
        };
        if let Type::ImplTrait(_) = &*pat.ty {
            combine(
                &mut result,
                Error::new_spanned(
                    &pat.ty,
                    format!(
                        "{what} cannot take `impl Trait`: name a type with `versile::FromValue`"
                    ),
                ),
            );
        }
        let ident = match &*pat.pat {
            Pat::Ident(p) if p.subpat.is_none() => p.ident.clone(),
            _ => quote::format_ident!("arg{index}"),
        };
        params.push(Param {
            ident,
            ty: (*pat.ty).clone(),
        });
    }
    result.map(|()| (receiver, params))
}

fn check_receiver(sig: &Signature, what: &str, receivers: Receivers) -> syn::Result<Receiver> {
    let expected = match receivers {
        Receivers::RefOnly => "`&self`",
        Receivers::RefOrArc => "`&self` (or `self: Arc<Self>`)",
    };
    let Some(FnArg::Receiver(receiver)) = sig.inputs.first() else {
        return Err(Error::new(
            sig.ident.span(),
            format!("{what} must take {expected}"),
        ));
    };
    let message = if receiver.colon_token.is_some() {
        if receivers == Receivers::RefOrArc && is_arc_self(&receiver.ty) {
            return Ok(Receiver::Arc);
        }
        format!("{what} must take {expected}, not another typed `self`")
    } else if receiver.reference.is_none() {
        format!("{what} must take {expected}, not `self` by value: the object serves many calls")
    } else if receiver.mutability.is_some() {
        format!(
            "{what} must take {expected}, not `&mut self`: calls run concurrently, \
             so keep mutable state behind a Mutex or in atomics"
        )
    } else {
        return Ok(Receiver::Ref);
    };
    Err(Error::new_spanned(receiver, message))
}

/// `Arc<Self>` (any path ending in `Arc`).
fn is_arc_self(ty: &Type) -> bool {
    let Type::Path(p) = ty else {
        return false;
    };
    let Some(last) = p.path.segments.last() else {
        return false;
    };
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return false;
    };
    last.ident == "Arc"
        && args.args.len() == 1
        && matches!(args.args.first(), Some(syn::GenericArgument::Type(Type::Path(s))) if s.path.is_ident("Self"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doc_comments_become_the_meta_doc_text() {
        let f: syn::ItemFn = syn::parse_quote! {
            /// First line.
            ///
            ///   indented
            #[inline]
            fn f() {}
        };
        assert_eq!(
            doc_text(&f.attrs).as_deref(),
            Some("First line.\n\n  indented\n")
        );
        let f: syn::ItemFn = syn::parse_quote!(
            #[doc = "\n block \n"]
            fn f() {}
        );
        assert_eq!(doc_text(&f.attrs).as_deref(), Some("block\n"));
        let f: syn::ItemFn = syn::parse_quote!(
            fn f() {}
        );
        assert_eq!(doc_text(&f.attrs), None);
    }

    #[test]
    fn options_are_parsed_and_removed() {
        let mut f: syn::ItemFn = syn::parse_quote! {
            #[versile(name = "type", hidden)]
            #[inline]
            fn kind() {}
        };
        let options = take_options(&mut f.attrs).unwrap();
        assert_eq!(options.name.map(|n| n.value()).as_deref(), Some("type"));
        assert!(options.hidden && !options.skip);
        assert_eq!(f.attrs.len(), 1, "only #[inline] is left");
        let mut f: syn::ItemFn = syn::parse_quote! {
            #[versile(rename = "x")]
            fn g() {}
        };
        assert!(take_options(&mut f.attrs).is_err());
    }

    #[test]
    fn raw_identifiers_lose_their_prefix_on_the_wire() {
        let ident: Ident = syn::parse_quote!(r#type);
        assert_eq!(wire_name(&Options::default(), &ident).value(), "type");
    }
}
