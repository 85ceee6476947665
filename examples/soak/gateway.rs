//! The soak's objects: the server gateway (echo, computed results, objects
//! handed out, callbacks into the client's objects, exceptions), the
//! client's callback object, and the random values the clients send.
//! Every method's result can be predicted by the caller, so every completed
//! call is checked.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use num_bigint::BigInt;
use versile::object::Object;
use versile::{CallError, Entity, LocalObject, ObjectBuilder, RemoteObject, Value};

/// Tag of every exception the soak raises on purpose.
pub const RAISED: &str = "soak-raised";

/// A fresh gateway per link:
/// - `echo(x) -> x`
/// - `sum((ints...)) -> their sum` (big integers included)
/// - `raise(tag)` raises `VException(tag, RAISED)`
/// - `new_counter(start) -> counter` with `add(n) -> total`, `value()`
/// - `call_back(obj, x) -> obj.twice(x) + 1` (the client's object)
/// - `call_back_raise(obj, tag)`: `obj.fail(tag)`, its exception passed on
/// - `is_mine(obj) -> bool`: whether `obj` is one of the server's objects
/// - `sleep(ms) -> ms` (at most a second)
pub fn soak_gateway() -> LocalObject {
    ObjectBuilder::new(())
        .method("echo", |_, call| async move {
            let (x,): (Value,) = call.into_args()?;
            Ok(x)
        })
        .method("sum", |_, call| async move {
            let (items,): (Vec<Value>,) = call.into_args()?;
            let mut total = BigInt::from(0);
            for item in items {
                total += item
                    .as_bigint()
                    .ok_or_else(|| CallError::failed("sum takes integers"))?;
            }
            Ok(Value::int(total))
        })
        .method("raise", |_, call| async move {
            let (tag,): (Value,) = call.into_args()?;
            Err(CallError::exception((tag, RAISED)))
        })
        .method("new_counter", |_, call| async move {
            let (start,): (i64,) = call.into_args()?;
            Ok(counter(start).into())
        })
        .method("call_back", |_, call| async move {
            let (obj, x): (RemoteObject, i64) = call.into_args()?;
            let twice = obj.call("twice", (x,)).await?;
            let twice = twice
                .as_i64()
                .ok_or_else(|| CallError::failed("twice returned no integer"))?;
            Ok(Value::int(BigInt::from(twice) + 1))
        })
        .method("call_back_raise", |_, call| async move {
            let (obj, tag): (RemoteObject, Value) = call.into_args()?;
            obj.call("fail", (tag,)).await
        })
        .method("is_mine", |_, call| async move {
            let (obj,): (Value,) = call.into_args()?;
            Ok(Value::from(matches!(obj, Entity::Ref(Object::Local(_)))))
        })
        .method("sleep", |_, call| async move {
            let (ms,): (u64,) = call.into_args()?;
            tokio::time::sleep(Duration::from_millis(ms.min(1000))).await;
            Ok(Value::from(ms))
        })
        .build()
}

/// A server object with state: a running total.
fn counter(start: i64) -> LocalObject {
    ObjectBuilder::new(Mutex::new(BigInt::from(start)))
        .method("add", |total, call| async move {
            let (n,): (i64,) = call.into_args()?;
            let mut total = total.lock().unwrap_or_else(|p| p.into_inner());
            *total += n;
            Ok(Value::int(total.clone()))
        })
        .method("value", |total, call| async move {
            call.args::<()>()?;
            Ok(Value::int(
                total.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            ))
        })
        .build()
}

/// The client's object the server calls back: `twice(x) -> 2x`,
/// `fail(tag)` raises `VException(tag)`.
pub fn callback_object() -> LocalObject {
    ObjectBuilder::new(())
        .method("twice", |_, call| async move {
            let (x,): (i64,) = call.into_args()?;
            Ok(Value::int(BigInt::from(x) * 2))
        })
        .method("fail", |_, call| async move {
            let (tag,): (Value,) = call.into_args()?;
            Err(CallError::exception((tag,)))
        })
        .build()
}

/// SplitMix64: small, fast, and reproducible from `--seed`.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi.saturating_sub(lo) + 1)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }

    pub fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let r = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&r[..chunk.len()]);
        }
    }

    /// A random small value: nested tuples of integers (big ones too),
    /// strings, bytes, floats, booleans and None; at most `depth` deep.
    pub fn value(&mut self, depth: u32) -> Value {
        match self.below(if depth == 0 { 7 } else { 8 }) {
            0 => Value::None,
            1 => Value::from(self.chance(0.5)),
            2 => Value::Int(self.next_u64() as i64 >> self.below(60)),
            3 => {
                // Beyond 64 bits, either sign.
                let big = BigInt::from(self.next_u64()) << (64 + self.below(200));
                Value::int(if self.chance(0.5) { -big } else { big })
            }
            4 => {
                let f = (self.next_u64() as i64 as f64) / (1u64 << self.below(60)) as f64;
                Value::from(f)
            }
            5 => {
                let len = self.below(40) as usize;
                let s: String = (0..len)
                    .map(|_| ['a', 'Z', '7', ' ', 'é', 'ß', '→', '✓'][self.below(8) as usize])
                    .collect();
                Value::from(s)
            }
            6 => {
                let mut b = vec![0; self.below(300) as usize];
                self.fill(&mut b);
                Value::from(b)
            }
            _ => {
                let n = self.below(6) as usize;
                Entity::Tuple((0..n).map(|_| self.value(depth - 1)).collect())
            }
        }
    }
}

/// Random bytes shared by all clients; large payloads are slices of it (a
/// slice is a refcount, not a copy, so the soak itself spends little).
#[derive(Clone)]
pub struct Pool(Bytes);

impl Pool {
    pub fn new(seed: u64, len: usize) -> Self {
        let mut b = vec![0; len];
        Rng::new(seed).fill(&mut b);
        Pool(Bytes::from(b))
    }

    /// A slice of `len` bytes (at most the pool's size) at a random offset.
    pub fn slice(&self, rng: &mut Rng, len: usize) -> Bytes {
        let len = len.min(self.0.len());
        let start = rng.below((self.0.len() - len) as u64 + 1) as usize;
        self.0.slice(start..start + len)
    }
}

/// Shared by the clients: the byte pool and the largest payload.
pub struct Payloads {
    pub pool: Pool,
    pub large: usize,
}

impl Payloads {
    pub fn new(seed: u64, large: usize) -> Arc<Self> {
        Arc::new(Payloads {
            pool: Pool::new(seed, large * 2),
            large,
        })
    }
}
