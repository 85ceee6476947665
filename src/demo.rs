//! Demo objects equivalent to Python's `versile.demo` (`docs/protocol/vol.md` §4.9):
//! [`Echoer`], [`Adder`] and [`SimpleGateway`], the default gateway of
//! `versile serve`.
//!
//! Public (and used by the README's tour, the examples and the tests) so
//! that a first server needs no object of its own; listed apart from the
//! protocol modules in the crate docs, since no protocol code depends on it.

use std::sync::Mutex;

use crate::dispatch::Dispatcher;
use crate::object::{CallError, LocalObject, MethodSpec, ObjectBuilder};
use crate::value::Value;
use crate::vec::Entity;

/// Echoes its argument: `echo(x) -> x`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Echoer;

impl From<Echoer> for LocalObject {
    fn from(_: Echoer) -> LocalObject {
        ObjectBuilder::new(())
            .doc("A simple service object for receiving and echoing a VEntity.\n")
            .publish(
                MethodSpec::new("echo").doc(
                    "Returns the received argument.\n\n:param arg: argument to return\n\
                     :returns:   received argument\n\n\n",
                ),
                |_, call| async move {
                    let (arg,): (Value,) = call.into_args()?;
                    Ok(arg)
                },
            )
            .build()
    }
}

/// A running sum: `add(n) -> sum`, `result() -> sum`, `reset() -> None`.
/// Every instance has its own state.
#[derive(Debug, Clone, Copy, Default)]
pub struct Adder;

impl From<Adder> for LocalObject {
    fn from(_: Adder) -> LocalObject {
        ObjectBuilder::new(Mutex::new(Value::Int(0)))
            .doc("Adds values.\n")
            .method("add", |sum, call| async move {
                let (n,): (Value,) = call.into_args()?;
                let mut sum = sum.lock().unwrap_or_else(|p| p.into_inner());
                *sum = add_values(&sum, &n)?;
                Ok(sum.clone())
            })
            .method("result", |sum, call| async move {
                call.args::<()>()?;
                Ok(sum.lock().unwrap_or_else(|p| p.into_inner()).clone())
            })
            .method("reset", |sum, call| async move {
                call.args::<()>()?;
                *sum.lock().unwrap_or_else(|p| p.into_inner()) = Value::Int(0);
                Ok(Value::None)
            })
            .build()
    }
}

/// Integer sums of any size; floats as doubles (Python's `+`).
fn add_values(a: &Value, b: &Value) -> Result<Value, CallError> {
    match (a, b) {
        (Entity::Float(x), Entity::Float(y)) => Ok(Value::Float(x + y)),
        (Entity::Float(x), i) | (i, Entity::Float(x)) => match i.as_bigint() {
            Some(i) => Ok(Value::Float(
                x + num_traits::ToPrimitive::to_f64(&i).unwrap_or(f64::NAN),
            )),
            None => Err(CallError::failed("add takes a number")),
        },
        _ => match (a.as_bigint(), b.as_bigint()) {
            (Some(x), Some(y)) => Ok(Value::int(x + y)),
            _ => Err(CallError::failed("add takes a number")),
        },
    }
}

/// A gateway resolving VRI paths (`docs/protocol/vol.md` §4.9, `docs/protocol/vop-service.md` §4.4):
/// `urlget(("text", "echo"))` → a new [`Echoer`], `urlget(("math",
/// "adder"))` → a new [`Adder`]; any other path → CALL_ERROR (Python's
/// "VRI does not resolve"); a path that is not a tuple of strings →
/// CALL_EXCEPTION with an empty VException. Also offers `echo` itself, and
/// (hidden from the listing) `peer()`: the caller's address as seen here,
/// `sleep(ms)`: answers after `ms` milliseconds (at most a minute), and
/// `pid()`: the serving process's id (tells instances behind a balancer
/// apart).
#[derive(Debug, Clone, Copy, Default)]
pub struct SimpleGateway;

impl SimpleGateway {
    /// A new gateway (usable as a factory: `GatewayService::new(SimpleGateway::new)`).
    #[allow(clippy::new_ret_no_self)]
    pub fn new() -> LocalObject {
        SimpleGateway.into()
    }
}

impl From<SimpleGateway> for LocalObject {
    fn from(_: SimpleGateway) -> LocalObject {
        let builder = ObjectBuilder::new(())
            .doc("Gateway to the demo services text/echo and math/adder.\n")
            .publish(MethodSpec::new("echo"), |_, call| async move {
                let (arg,): (Value,) = call.into_args()?;
                Ok(arg)
            })
            // Hidden (not in the method listing, which mirrors Python's
            // demo): the caller's address as this server sees it, e.g.
            // the real client behind a PROXY-protocol load balancer.
            .publish(
                MethodSpec::new("peer")
                    .doc("The caller's address as the server sees it (host:port), or None.\n")
                    .hidden(),
                |_, call| async move {
                    let peer = call.ctx.peer_addr();
                    let () = call.into_args()?;
                    Ok(Value::from(peer.map(|a| a.to_string())))
                },
            )
            // Hidden: a call that takes a while (at most a minute), for
            // trying out graceful and forced stops with calls in flight.
            .publish(
                MethodSpec::new("sleep")
                    .doc("Returns ms after sleeping ms milliseconds (at most 60000).\n")
                    .hidden(),
                |_, call| async move {
                    let (ms,): (u64,) = call.into_args()?;
                    if ms > 60_000 {
                        return Err(CallError::exception(("at most 60000 ms",)));
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
                    Ok(Value::from(ms))
                },
            );
        // Hidden: which process answers, for tests and operators that
        // need to know which instance behind a balancer holds a link.
        let builder = builder.publish(
            MethodSpec::new("pid")
                .doc("The serving process's id.\n")
                .hidden(),
            |_, call| async move {
                let () = call.into_args()?;
                Ok(Value::from(u64::from(std::process::id())))
            },
        );
        Dispatcher::new()
            .route("text/echo", || Echoer)
            .route("math/adder", || Adder)
            .publish_on(builder)
            .build()
    }
}
