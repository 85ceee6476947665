//! [`Dispatcher`]: a gateway that resolves VRI paths through a tree of
//! registered services (`docs/protocol/vol.md` §4.9, `docs/protocol/vop-service.md` §4.4, G01/G02).
//!
//! `urlget(path)` walks the registered paths: an exact match builds a **new**
//! object from that path's factory; a path below a mounted dispatcher is
//! handed to it with the rest of the path; anything else (no match, partial
//! match, extra components) is CALL_ERROR, Python's "VRI does not resolve".
//! A per-route check sees the call context (peer address, protocol,
//! credentials) and refuses with CALL_ERROR, like Python's per-service
//! `VAuth`.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::object::{Call, CallContext, CallError, LocalObject, ObjectBuilder};
use crate::value::Value;

type Factory = Arc<dyn Fn() -> LocalObject + Send + Sync>;
type Check = Arc<dyn Fn(&CallContext) -> bool + Send + Sync>;

enum Target {
    Service(Factory),
    Mount(Arc<Dispatcher>),
}

struct Route {
    target: Target,
    check: Option<Check>,
}

/// A path tree of services; see the module docs.
///
/// ```
/// use versile::demo::{Adder, Echoer};
/// use versile::dispatch::Dispatcher;
///
/// let gateway = Dispatcher::new()
///     .route("text/echo", || Echoer)
///     .route_checked("math/adder", |ctx| ctx.peer_addr().is_some(), || Adder)
///     .build();
/// # let _ = gateway;
/// ```
#[derive(Default)]
pub struct Dispatcher {
    routes: BTreeMap<Vec<String>, Route>,
}

fn split(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect()
}

impl Dispatcher {
    /// An empty path tree: every path resolves to "not found" until routes
    /// are added.
    pub fn new() -> Self {
        Self::default()
    }

    /// Serve a new object from `factory` at `path` (`"a/b"` = `("a", "b")`).
    pub fn route<G: Into<LocalObject>>(
        self,
        path: &str,
        factory: impl Fn() -> G + Send + Sync + 'static,
    ) -> Self {
        self.insert(
            path,
            Target::Service(Arc::new(move || factory().into())),
            None,
        )
    }

    /// Like [`route`](Self::route), but only for callers `check` accepts.
    pub fn route_checked<G: Into<LocalObject>>(
        self,
        path: &str,
        check: impl Fn(&CallContext) -> bool + Send + Sync + 'static,
        factory: impl Fn() -> G + Send + Sync + 'static,
    ) -> Self {
        self.insert(
            path,
            Target::Service(Arc::new(move || factory().into())),
            Some(Arc::new(check)),
        )
    }

    /// Hand every path below `prefix` to `inner` with the rest of the path.
    pub fn mount(self, prefix: &str, inner: Dispatcher) -> Self {
        self.insert(prefix, Target::Mount(Arc::new(inner)), None)
    }

    fn insert(mut self, path: &str, target: Target, check: Option<Check>) -> Self {
        self.routes.insert(split(path), Route { target, check });
        self
    }

    /// Resolve `path` (the argument of `urlget`) for a caller.
    pub fn resolve(&self, ctx: &CallContext, path: &Value) -> Result<Value, CallError> {
        // Not a tuple of strings: an empty VException, as Python (§4.9).
        let components: Vec<String> = path
            .as_tuple()
            .and_then(|t| t.iter().map(|c| c.as_str().map(str::to_owned)).collect())
            .ok_or_else(|| CallError::exception(()))?;
        self.resolve_components(ctx, &components)
    }

    fn resolve_components(
        &self,
        ctx: &CallContext,
        components: &[String],
    ) -> Result<Value, CallError> {
        for (prefix, route) in self.routes.iter().rev() {
            let matches = match route.target {
                Target::Service(_) => prefix.as_slice() == components,
                Target::Mount(_) => components.starts_with(prefix),
            };
            if !matches {
                continue;
            }
            if let Some(check) = &route.check {
                if !check(ctx) {
                    return Err(CallError::failed("not authorized for this VRI path"));
                }
            }
            return match &route.target {
                Target::Service(factory) => Ok(factory().into()),
                Target::Mount(inner) => inner.resolve_components(ctx, &components[prefix.len()..]),
            };
        }
        Err(CallError::failed("VRI does not resolve"))
    }

    /// A gateway object publishing `urlget`.
    pub fn build(self) -> LocalObject {
        self.publish_on(ObjectBuilder::new(())).build()
    }

    /// Publish `urlget` on an object being built, next to its own methods.
    pub fn publish_on<S: Send + Sync + 'static>(
        self,
        builder: ObjectBuilder<S>,
    ) -> ObjectBuilder<S> {
        let this = Arc::new(self);
        builder.method("urlget", move |_, call: Call| {
            let this = this.clone();
            async move {
                let (path,): (Value,) = call.args()?;
                this.resolve(&call.ctx, &path)
            }
        })
    }
}
