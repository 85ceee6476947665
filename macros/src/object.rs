//! `#[versile::object]` on an `impl` block: every `async fn` becomes a
//! published method of an `ObjectBuilder` (the expansion implements
//! `versile::Publish` and `From<Self> for LocalObject`).
//!
//! A method's parameters are the call's arguments in order, converted with
//! `FromValue` (wrong count or type: CALL_ERROR); a `&CallContext`
//! parameter takes no argument and receives the link's context. The result
//! goes through `IntoCallResult` (`Err` becomes the `CallError`).

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Error, ImplItem, ItemImpl, Type};

use crate::method::{
    check_signature, combine, doc_text, take_options, wire_name, Receiver, Receivers,
};

pub fn expand(args: TokenStream, mut item: ItemImpl) -> syn::Result<TokenStream> {
    if !args.is_empty() {
        return Err(Error::new_spanned(
            &args,
            "#[versile::object] takes no arguments",
        ));
    }
    if let Some((_, path, _)) = &item.trait_ {
        return Err(Error::new_spanned(
            path,
            "#[versile::object] goes on an inherent impl block (`impl Type { ... }`), \
             not on a trait impl",
        ));
    }
    let mut result = Ok(());
    let mut methods = Vec::new();
    for impl_item in &mut item.items {
        let ImplItem::Fn(f) = impl_item else {
            continue;
        };
        let options = match take_options(&mut f.attrs) {
            Ok(o) => o,
            Err(e) => {
                combine(&mut result, e);
                continue;
            }
        };
        if options.skip {
            continue;
        }
        match method(&options, f) {
            Ok(m) => methods.push(m),
            Err(e) => combine(&mut result, e),
        }
    }
    result?;

    let class_doc = doc_text(&item.attrs).map(|d| quote!(.doc(#d)));
    let self_ty = &item.self_ty;
    let (impl_generics, _, where_clause) = item.generics.split_for_impl();
    Ok(quote! {
        #item

        impl #impl_generics ::versile::Publish for #self_ty #where_clause {
            fn publish(builder: ::versile::ObjectBuilder<Self>) -> ::versile::ObjectBuilder<Self> {
                builder #class_doc #(#methods)*
            }
        }

        impl #impl_generics ::core::convert::From<#self_ty> for ::versile::LocalObject #where_clause {
            fn from(object: #self_ty) -> Self {
                ::versile::Publish::into_object(object)
            }
        }
    })
}

/// `.publish(spec, handler)` for one method.
fn method(options: &crate::method::Options, f: &syn::ImplItemFn) -> syn::Result<TokenStream> {
    let (receiver, params) = check_signature(&f.sig, "a published method", Receivers::RefOrArc)?;
    let ident = &f.sig.ident;
    let wire = wire_name(options, ident);
    let doc = doc_text(&f.attrs).map(|d| quote!(.doc(#d)));
    let hidden = options.hidden.then(|| quote!(.hidden()));

    let mut conversions = Vec::new();
    let mut call_args = Vec::new();
    let mut uses_context = false;
    for param in &params {
        if is_context(&param.ty) {
            uses_context = true;
            call_args.push(quote!(&ctx));
            continue;
        }
        let var = format_ident!("__versile_arg{}", conversions.len());
        let ty = &param.ty;
        // Spanned at the type: a type without FromValue is reported there.
        conversions.push(quote_spanned! {ty.span()=>
            let #var = args.take::<#ty>()?;
        });
        call_args.push(quote!(#var));
    }
    let arity = conversions.len();
    let unpack = if uses_context {
        quote!(let ::versile::Call { ctx, args } = call;)
    } else {
        quote!(let ::versile::Call { args, .. } = call;)
    };
    let check = if arity == 0 {
        quote!(::versile::__private::Args::new(#wire, args, 0)?;)
    } else {
        quote!(let mut args = ::versile::__private::Args::new(#wire, args, #arity)?;)
    };
    let output = match &f.sig.output {
        syn::ReturnType::Default => f.sig.ident.span(),
        syn::ReturnType::Type(_, ty) => ty.span(),
    };
    let into_result = quote_spanned! {output=>
        ::versile::__private::IntoCallResult::into_call_result(result)
    };
    let this = match receiver {
        Receiver::Ref => quote!(&this),
        Receiver::Arc => quote!(this),
    };
    Ok(quote! {
        .publish(
            ::versile::MethodSpec::new(#wire) #doc #hidden,
            |this: ::std::sync::Arc<Self>, call: ::versile::Call| async move {
                #unpack
                #check
                #(#conversions)*
                let result = Self::#ident(#this, #(#call_args),*).await;
                #into_result
            },
        )
    })
}

/// `&CallContext` (any path ending in `CallContext`): the link's context,
/// not a wire argument.
fn is_context(ty: &Type) -> bool {
    let Type::Reference(r) = ty else {
        return false;
    };
    if r.mutability.is_some() {
        return false;
    }
    match &*r.elem {
        Type::Path(p) => p
            .path
            .segments
            .last()
            .is_some_and(|s| s.ident == "CallContext" && s.arguments.is_empty()),
        _ => false,
    }
}
