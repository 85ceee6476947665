//! A Rust twin of `py_server.py`'s `TestGateway`, so that `py_client.py`
//! can run its scenarios against our server (`tests/interop_py_client.rs`)
//! and Rust tests can use the same gateway in memory.
//!
//! Built with [`ObjectBuilder`] on top of the demo objects: `urlget` resolves
//! `text/echo` → [`Echoer`] and `math/adder` → a new [`Adder`] (`docs/protocol/vol.md`
//! §4.9); every other path is CALL_ERROR; a path that is not a tuple of
//! strings is CALL_EXCEPTION with an empty VException, as in Python's
//! `VDispatcher`. The test methods behave as documented at the top of
//! `py_server.py`; outcomes map as in `docs/protocol/vol.md` §4.5 (a `VException` raised
//! by the method → CALL_EXCEPTION, anything else → CALL_ERROR).

use std::sync::Mutex;
use std::time::Duration;

use versile::demo::{Adder, Echoer};
use versile::object::Object;
use versile::vec::Entity;
use versile::{Call, CallError, LocalObject, MethodSpec, ObjectBuilder, Value};

/// Class doc of the gateway (meta `doc()`), normalised like Python's `@doc`.
pub const GATEWAY_DOC: &str =
    "Interop test gateway (versile-rs tests/support/interop_gateway.rs).\n";
/// Docs of the methods published with `doc=True` in py_server.py.
pub const ECHO_DOC: &str = "Returns the received argument.\n";
pub const ECHO_ARGS_DOC: &str = "Returns all arguments as a tuple.\n";
pub const SLOW_DOC: &str = "Sleeps the given number of seconds, then returns tag.\n";
/// Upper bound for `slow()` (as `MAX_SLOW` in py_server.py).
pub const MAX_SLOW: f64 = 30.0;

/// Per-gateway state: the object stored by `keep`.
#[derive(Default)]
pub struct GatewayState {
    kept: Mutex<Option<Value>>,
}

impl GatewayState {
    fn kept(&self) -> std::sync::MutexGuard<'_, Option<Value>> {
        self.kept.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A fresh test gateway (use as a per-connection factory:
/// `GatewayService::new(test_gateway)`).
pub fn test_gateway() -> LocalObject {
    ObjectBuilder::new(GatewayState::default())
        .doc(GATEWAY_DOC)
        .publish(
            MethodSpec::new("echo").doc(ECHO_DOC),
            |_, call| async move {
                let (x,): (Value,) = call.into_args()?;
                Ok(x)
            },
        )
        .publish(
            MethodSpec::new("echo_args").doc(ECHO_ARGS_DOC),
            |_, call: Call| async move { Ok(Entity::Tuple(call.args)) },
        )
        .method("raise_vexc", |_, call: Call| async move {
            Err(CallError::Exception(Entity::Exception(call.args)))
        })
        .method("fail", |_, _call| async move {
            // A plain failure inside the method: CALL_ERROR (§4.5 fail_python).
            Err(CallError::failed("fail() called"))
        })
        .method("call_back", |_, call: Call| async move {
            let (obj, method, args) = target_method_args(call.args)?;
            invoke(obj, method, args).await
        })
        .method("keep", |state, call| async move {
            let (obj,): (Value,) = call.into_args()?;
            let old = state.kept().replace(obj);
            drop(old);
            Ok(Value::None)
        })
        .method("call_kept", |state, call: Call| async move {
            let Some(obj) = state.kept().clone() else {
                return Err(CallError::exception(("nothing kept",)));
            };
            let mut args = call.args;
            if args.is_empty() {
                return Err(CallError::failed("call_kept needs a method name"));
            }
            let method = args.remove(0);
            let mut all = vec![obj, method];
            all.extend(args);
            let (obj, method, args) = target_method_args(all)?;
            invoke(obj, method, args).await
        })
        .method("drop_kept", |state, call| async move {
            call.args::<()>()?;
            // Take it out under the lock, drop it outside: dropping the last
            // RemoteObject clone releases it on the wire (§5.2).
            let old = state.kept().take();
            let had = old.is_some();
            drop(old);
            Ok(Value::from(had))
        })
        .publish(
            MethodSpec::new("slow").doc(SLOW_DOC),
            |_, call| async move {
                let (seconds, tag): (Value, Value) = call.into_args()?;
                let secs = match &seconds {
                    Entity::Float(f) => *f,
                    other => match other.as_bigint() {
                        Some(i) => num_traits::ToPrimitive::to_f64(&i).unwrap_or(MAX_SLOW),
                        None => return Err(CallError::failed("slow: seconds must be a number")),
                    },
                };
                let secs = if secs.is_nan() {
                    0.0
                } else {
                    secs.clamp(0.0, MAX_SLOW)
                };
                tokio::time::sleep(Duration::from_secs_f64(secs)).await;
                Ok(tag)
            },
        )
        .method("urlget", |_, call| async move {
            let (path,): (Value,) = call.into_args()?;
            let parts: Vec<String> = path
                .as_tuple()
                .and_then(|t| t.iter().map(|c| c.as_str().map(str::to_owned)).collect())
                .ok_or_else(|| CallError::exception(()))?;
            let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
            match parts.as_slice() {
                ["text", "echo"] => Ok(LocalObject::from(Echoer).into()),
                ["math", "adder"] => Ok(LocalObject::from(Adder).into()),
                _ => Err(CallError::failed("VRI does not resolve")),
            }
        })
        .build()
}

/// Splits `(obj, method, *args)`; a missing object or a non-string method
/// name is an arity/type error → CALL_ERROR.
fn target_method_args(mut args: Vec<Value>) -> Result<(Object, String, Vec<Value>), CallError> {
    if args.len() < 2 {
        return Err(CallError::failed("expected (obj, method, *args)"));
    }
    let rest = args.split_off(2);
    let method = args.pop().expect("two elements");
    let obj = args.pop().expect("one element");
    let Entity::Ref(obj) = obj else {
        return Err(CallError::failed("first argument is not an object"));
    };
    let Entity::String(method) = method else {
        return Err(CallError::failed("method name is not a string"));
    };
    Ok((obj, method, rest))
}

/// Calls `method(*args)` on `obj`: a peer object over its link (the
/// outcome, including a VException raised by the peer, is passed on as
/// is), or one of ours locally.
async fn invoke(obj: Object, method: String, args: Vec<Value>) -> Result<Value, CallError> {
    match obj {
        Object::Remote(r) => r.call(&method, args).await,
        Object::Local(_) => Err(CallError::failed(
            "call_back on a server-owned object is not supported",
        )),
    }
}
