//! The spec's test data under `tests/data/spec/` (VEC and VTS vectors,
//! transcripts, keys) and helpers for the VEC vector tests: decoder and
//! encoder contexts, and a tiny evaluator for the simple Python literals
//! in `python_repr` (`docs/protocol/vec.md` §11.1).

use bytes::{Bytes, BytesMut};
use num_bigint::BigInt;
use num_traits::{Pow, ToPrimitive};
use versile::vec::{Decoder, DecoderConfig, EncodeConfig, Entity, StrCodec, VecError};

/// Path of `name` under `tests/data/spec/`.
pub fn spec_data_path(name: &str) -> String {
    format!("{}/tests/data/spec/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// The JSON file `name` under `tests/data/spec/` (a vector file).
pub fn load_spec_json(name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(spec_data_path(name)).expect("vector file");
    serde_json::from_str(&text).expect("vector json")
}

/// Decoder and encoder configs for a vector `ctx` (`docs/protocol/vec.md` §11.1).
pub fn contexts(ctx: &str) -> (DecoderConfig, EncodeConfig) {
    let codec = match ctx {
        "utf8" => Some(StrCodec::Utf8),
        "utf16" => Some(StrCodec::Utf16),
        "plain" | "object" => None,
        other => panic!("unknown ctx {other}"),
    };
    let refs = ctx == "object";
    let dec = DecoderConfig {
        str_decoding: codec,
        allow_refs: refs,
        ..DecoderConfig::default()
    };
    let enc = EncodeConfig {
        str_encoding: codec,
        allow_refs: refs,
    };
    (dec, enc)
}

/// Decode all of `bytes` at once; returns the result and the leftover.
pub fn decode_all(
    cfg: DecoderConfig,
    bytes: &[u8],
) -> (Result<Option<Entity>, VecError>, BytesMut) {
    let mut buf = BytesMut::from(bytes);
    let r = Decoder::new(cfg).decode(&mut buf);
    (r, buf)
}

/// Evaluate a simple Python literal expression; `None` if it uses anything
/// else (constructors, lambdas, names).
pub fn eval_python(src: &str) -> Option<Entity> {
    let mut p = Parser {
        s: src.as_bytes(),
        i: 0,
    };
    let v = p.expr()?;
    p.ws();
    (p.i == p.s.len()).then(|| v.into_entity())?
}

#[derive(Debug, Clone)]
enum Py {
    Int(BigInt),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    None,
    Bool(bool),
    Tuple(Vec<Py>),
}

impl Py {
    fn into_entity(self) -> Option<Entity> {
        Some(match self {
            Py::Int(v) => Entity::int(v),
            Py::Float(x) => Entity::Float(x),
            Py::Str(s) => Entity::String(s),
            Py::Bytes(b) => Entity::Bytes(Bytes::from(b)),
            Py::None => Entity::None,
            Py::Bool(b) => Entity::Bool(b),
            Py::Tuple(t) => Entity::Tuple(
                t.into_iter()
                    .map(Py::into_entity)
                    .collect::<Option<Vec<_>>>()?,
            ),
        })
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.s.get(self.i) == Some(&b' ') {
            self.i += 1;
        }
    }
    fn eat(&mut self, tok: &str) -> bool {
        self.ws();
        if self.s[self.i..].starts_with(tok.as_bytes()) {
            self.i += tok.len();
            true
        } else {
            false
        }
    }
    fn expr(&mut self) -> Option<Py> {
        let mut v = self.term()?;
        loop {
            if self.eat("+") {
                v = arith(v, self.term()?, |a, b| a + b)?;
            } else if self.peek_minus() {
                self.i += 1;
                v = arith(v, self.term()?, |a, b| a - b)?;
            } else {
                return Some(v);
            }
        }
    }
    fn peek_minus(&mut self) -> bool {
        self.ws();
        self.s.get(self.i) == Some(&b'-')
    }
    fn term(&mut self) -> Option<Py> {
        let mut v = self.unary()?;
        loop {
            self.ws();
            if self.s[self.i..].starts_with(b"**") || !self.eat("*") {
                return Some(v);
            }
            let r = self.unary()?;
            v = match (v, r) {
                (Py::Bytes(b), Py::Int(n)) => Py::Bytes(b.repeat(n.to_usize()?)),
                (a, b) => arith(a, b, |a, b| a * b)?,
            };
        }
    }
    fn unary(&mut self) -> Option<Py> {
        if self.eat("-") {
            return match self.unary()? {
                Py::Int(v) => Some(Py::Int(-v)),
                Py::Float(x) => Some(Py::Float(-x)),
                _ => None,
            };
        }
        let base = self.atom()?;
        if self.eat("**") {
            let e = self.unary()?;
            return match (base, e) {
                (Py::Int(b), Py::Int(e)) => Some(Py::Int(Pow::pow(b, e.to_u32()?))),
                _ => None,
            };
        }
        Some(base)
    }
    fn atom(&mut self) -> Option<Py> {
        self.ws();
        let rest = &self.s[self.i..];
        for (kw, v) in [
            ("None", Py::None),
            ("True", Py::Bool(true)),
            ("False", Py::Bool(false)),
        ] {
            if rest.starts_with(kw.as_bytes()) {
                self.i += kw.len();
                return Some(v);
            }
        }
        match *rest.first()? {
            b'(' => {
                self.i += 1;
                if self.eat(")") {
                    return Some(Py::Tuple(vec![]));
                }
                let first = self.expr()?;
                if self.eat(")") {
                    return Some(first);
                }
                let mut items = vec![first];
                while self.eat(",") {
                    if self.eat(")") {
                        return Some(Py::Tuple(items));
                    }
                    items.push(self.expr()?);
                }
                self.eat(")").then_some(Py::Tuple(items))
            }
            b'\'' => Some(Py::Str(String::from_utf8(self.quoted(false)?).ok()?)),
            b'b' if rest.get(1) == Some(&b'\'') => {
                self.i += 1;
                Some(Py::Bytes(self.quoted(true)?))
            }
            b'0'..=b'9' => {
                let start = self.i;
                loop {
                    let after_e = self.i > start && matches!(self.s[self.i - 1], b'e' | b'E');
                    match self.s.get(self.i) {
                        Some(b'0'..=b'9' | b'.' | b'e' | b'E') => self.i += 1,
                        Some(b'-' | b'+') if after_e => self.i += 1,
                        _ => break,
                    }
                }
                let text = std::str::from_utf8(&self.s[start..self.i]).ok()?;
                if text.contains(['.', 'e', 'E']) {
                    text.parse().ok().map(Py::Float)
                } else {
                    text.parse().ok().map(Py::Int)
                }
            }
            _ => None,
        }
    }
    /// A single-quoted literal with Python escapes; `raw_bytes` for b'..'.
    fn quoted(&mut self, raw_bytes: bool) -> Option<Vec<u8>> {
        self.i += 1;
        let mut out = Vec::new();
        loop {
            let c = *self.s.get(self.i)?;
            self.i += 1;
            match c {
                b'\'' => return Some(out),
                b'\\' => {
                    let e = *self.s.get(self.i)?;
                    self.i += 1;
                    let hex = |p: &mut Self, n: usize| -> Option<u32> {
                        let t = std::str::from_utf8(p.s.get(p.i..p.i + n)?).ok()?;
                        p.i += n;
                        u32::from_str_radix(t, 16).ok()
                    };
                    let code = match e {
                        b'x' => hex(self, 2)?,
                        b'u' if !raw_bytes => hex(self, 4)?,
                        b'U' if !raw_bytes => hex(self, 8)?,
                        b'n' => 10,
                        b't' => 9,
                        b'r' => 13,
                        b'\\' | b'\'' | b'"' => u32::from(e),
                        _ => return None,
                    };
                    if raw_bytes {
                        out.push(u8::try_from(code).ok()?);
                    } else {
                        let mut tmp = [0u8; 4];
                        out.extend_from_slice(
                            char::from_u32(code)?.encode_utf8(&mut tmp).as_bytes(),
                        );
                    }
                }
                _ => out.push(c),
            }
        }
    }
}

fn arith(a: Py, b: Py, f: impl Fn(BigInt, BigInt) -> BigInt) -> Option<Py> {
    match (a, b) {
        (Py::Int(a), Py::Int(b)) => Some(Py::Int(f(a, b))),
        _ => None,
    }
}
