//! [`ObjectBuilder`]: objects that follow the VOB call convention
//! (`docs/protocol/vol.md` §4.1–4.5), Python's `VExternal` with `@publish`.
//!
//! A call's first argument selects what runs: a string names a published
//! method; `None` followed by a name is a meta call (`methods`, `doc`, or a
//! custom one); anything else is CALL_ERROR.

use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::FutureExt;

use super::call_metrics::{MethodMetrics, OTHER_LABEL};
use super::{Call, CallError, LocalObject, VObject};
use crate::value::Value;
use crate::vec::Entity;
use crate::vol::tables::{table_map, TableMap};

type Handler<S> =
    Arc<dyn Fn(Arc<S>, Call) -> BoxFuture<'static, Result<Value, CallError>> + Send + Sync>;

/// How a method is published (`docs/protocol/vol.md` §4.2).
#[derive(Debug, Clone)]
pub struct MethodSpec {
    /// The external name.
    pub name: String,
    /// Listed by the meta call `methods`.
    pub show: bool,
    /// Returned by the meta call `doc(name)`.
    pub doc: Option<String>,
}

impl MethodSpec {
    /// A shown method without documentation.
    pub fn new(name: impl Into<String>) -> Self {
        MethodSpec {
            name: name.into(),
            show: true,
            doc: None,
        }
    }

    /// Attach documentation.
    pub fn doc(mut self, doc: impl Into<String>) -> Self {
        self.doc = Some(doc.into());
        self
    }

    /// Hide the method from `methods` (it stays callable, §4.2).
    pub fn hidden(mut self) -> Self {
        self.show = false;
        self
    }
}

struct Method<S> {
    spec: MethodSpec,
    handler: Handler<S>,
    /// Counts the calls of this method (`call_metrics`).
    metrics: &'static MethodMetrics,
}

/// Builds a VOB object around some state `S`.
///
/// ```
/// use versile::{ObjectBuilder, Value};
///
/// let adder = ObjectBuilder::new(std::sync::Mutex::new(0i64))
///     .doc("Adds numbers.\n")
///     .method("add", |sum, call| async move {
///         let (n,): (i64,) = call.args()?;
///         let mut sum = sum.lock().unwrap();
///         *sum += n;
///         Ok(Value::from(*sum))
///     })
///     .build();
/// # let _ = adder;
/// ```
pub struct ObjectBuilder<S> {
    state: Arc<S>,
    doc: Option<String>,
    methods: TableMap<String, Method<S>>,
    meta: TableMap<String, Handler<S>>,
}

impl<S: Send + Sync + 'static> ObjectBuilder<S> {
    /// Start an object whose methods share `state`.
    pub fn new(state: S) -> Self {
        Self::from_arc(Arc::new(state))
    }

    /// Start an object over state that other code holds too.
    pub fn from_arc(state: Arc<S>) -> Self {
        ObjectBuilder {
            state,
            doc: None,
            methods: table_map(),
            meta: table_map(),
        }
    }

    /// The class documentation returned by the meta call `doc()`.
    pub fn doc(mut self, doc: impl Into<String>) -> Self {
        self.doc = Some(doc.into());
        self
    }

    /// Publish a shown method without documentation.
    pub fn method<F, Fut>(self, name: &str, f: F) -> Self
    where
        F: Fn(Arc<S>, Call) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, CallError>> + Send + 'static,
    {
        self.publish(MethodSpec::new(name), f)
    }

    /// Publish a method as described by `spec`.
    pub fn publish<F, Fut>(mut self, spec: MethodSpec, f: F) -> Self
    where
        F: Fn(Arc<S>, Call) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, CallError>> + Send + 'static,
    {
        // The label is chosen here, from the name the service declares,
        // never from what a peer sends (`call_metrics`).
        let metrics = MethodMetrics::declared(&spec.name);
        let handler: Handler<S> = Arc::new(move |s, c| metrics.observe(f(s, c)).boxed());
        self.methods.insert(
            spec.name.clone(),
            Method {
                spec,
                handler,
                metrics,
            },
        );
        self
    }

    /// Register a custom meta call (`docs/protocol/vol.md` §4.3, Python's `@meta_as`).
    pub fn meta<F, Fut>(mut self, name: &str, f: F) -> Self
    where
        F: Fn(Arc<S>, Call) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, CallError>> + Send + 'static,
    {
        let other = MethodMetrics::other();
        let handler: Handler<S> = Arc::new(move |s, c| other.observe(f(s, c)).boxed());
        self.meta.insert(name.to_owned(), handler);
        self
    }

    /// Finish the object.
    pub fn build(self) -> LocalObject {
        LocalObject::new(Published {
            state: self.state,
            doc: self.doc,
            methods: self.methods,
            meta: self.meta,
        })
    }
}

struct Published<S> {
    state: Arc<S>,
    doc: Option<String>,
    methods: TableMap<String, Method<S>>,
    meta: TableMap<String, Handler<S>>,
}

/// An answer given without running a method, counted under `other`.
fn ready(r: Result<Value, CallError>) -> BoxFuture<'static, Result<Value, CallError>> {
    crate::runtime::call_span::record_method(OTHER_LABEL);
    MethodMetrics::other().record_immediate(&r);
    futures::future::ready(r).boxed()
}

impl<S: Send + Sync + 'static> Published<S> {
    /// Meta calls (`docs/protocol/vol.md` §4.3).
    fn meta_call(&self, name: &str, call: Call) -> BoxFuture<'static, Result<Value, CallError>> {
        match name {
            "methods" if call.args.is_empty() => {
                let mut names: Vec<&String> = self
                    .methods
                    .values()
                    .filter(|m| m.spec.show)
                    .map(|m| &m.spec.name)
                    .collect();
                names.sort();
                let names = names.into_iter().map(|n| Value::from(n.as_str())).collect();
                ready(Ok(Entity::Tuple(names)))
            }
            "doc" => match call.args.as_slice() {
                [] => ready(Ok(self.doc.as_deref().into())),
                [Entity::String(method)] => match self.methods.get(method) {
                    Some(m) => ready(Ok(m.spec.doc.as_deref().into())),
                    None => ready(Err(CallError::exception(("Not an exposed method",)))),
                },
                _ => ready(Err(CallError::failed("invalid meta doc arguments"))),
            },
            "methods" => ready(Err(CallError::failed("meta methods takes no arguments"))),
            other => match self.meta.get(other) {
                // Counted by the handler's wrapper (`meta`).
                Some(h) => {
                    crate::runtime::call_span::record_method(OTHER_LABEL);
                    h(self.state.clone(), call)
                }
                None => ready(Err(CallError::failed(format!(
                    "unknown meta call {other:?}"
                )))),
            },
        }
    }
}

impl<S: Send + Sync + 'static> VObject for Published<S> {
    fn call(&self, call: Call) -> BoxFuture<'static, Result<Value, CallError>> {
        let Call { ctx, mut args } = call;
        if args.is_empty() {
            return ready(Err(CallError::failed("empty call")));
        }
        let first = args.remove(0);
        match first {
            Entity::String(name) => match self.methods.get(&name) {
                Some(m) => {
                    crate::runtime::call_span::record_method(m.metrics.label());
                    (m.handler)(self.state.clone(), Call { ctx, args })
                }
                None => ready(Err(CallError::failed(format!("no method {name:?}")))),
            },
            Entity::None => {
                if args.is_empty() {
                    return ready(Err(CallError::failed("meta call without a name")));
                }
                match args.remove(0) {
                    Entity::String(name) => self.meta_call(&name, Call { ctx, args }),
                    _ => ready(Err(CallError::failed("meta call name is not a string"))),
                }
            }
            _ => ready(Err(CallError::failed("method name is not a string"))),
        }
    }
}
