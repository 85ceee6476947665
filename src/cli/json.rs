//! The JSON form of [`Value`]s used by `versile call` for arguments and
//! results.
//!
//! | Value | JSON |
//! |---|---|
//! | None | `null` |
//! | bool | `true` / `false` |
//! | integer up to 65,536 bits | a JSON integer, digit for digit (serde_json is built with `arbitrary_precision`, and integers go through their decimal string, never through `f64`) |
//! | integer above 65,536 bits | the string `"<int of N bits, 0x…>"` (bit length and top 64 bits; not exact, see below) |
//! | float (IEEE double) | a JSON number with a fraction or exponent; NaN and the infinities print as the strings `"NaN"`, `"Infinity"`, `"-Infinity"` (JSON has no such numbers) |
//! | VFloat base 10 (Python `Decimal`) | an exact decimal JSON number (`1.25`, `5e3`) — it reads back as a double |
//! | VFloat other base | `{"vfloat":[digits,base,exp]}` (exact; accepted as input too) |
//! | string | string |
//! | tuple | array |
//! | bytes | `{"bytes":"<base64, standard alphabet>"}` |
//! | object reference | `{"object":ID}` (output only; the peer's id) |
//! | exception | `{"exception":[args...]}` |
//! | tagged value | `{"tagged":value,"tags":[...]}` |
//!
//! Input accepts every form except `{"object":..}`; any other JSON object is
//! an error (Versile has no plain dictionary type, `docs/protocol/vec.md` §5).
//!
//! Integers come from the peer and may be as large as the entity size
//! limit allows; num-bigint's decimal conversion is quadratic (1 Mbit:
//! 73 ms, 8 Mbit: 1.25 s, 800 Mbit: hours), so only integers up to
//! [`MAX_EXACT_INT_BITS`] are printed exactly (about 1 ms each, 19,729
//! digits: far beyond any key or hash size). The same bound applies to the
//! parts of a VFloat.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use num_bigint::BigInt;
use num_traits::{Signed, Zero};
use serde_json::{Map, Number, Value as Json};
use versile::vec::{Tagged, VFloat};
use versile::{Entity, Object, Value};

/// Why a JSON value has no Versile form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct JsonError(String);

fn err<T>(msg: impl Into<String>) -> Result<T, JsonError> {
    Err(JsonError(msg.into()))
}

/// A command-line argument: JSON if it parses, otherwise the text as a
/// string (so `versile call ... echo hello` sends `"hello"`). Valid JSON
/// that has no Versile form (e.g. `{"a":1}`) is an error, not a string.
pub fn parse_arg(arg: &str) -> Result<Value, JsonError> {
    match serde_json::from_str::<Json>(arg) {
        Ok(json) => from_json(&json),
        Err(_) => Ok(Value::String(arg.to_owned())),
    }
}

/// JSON → Value (see the module table).
pub fn from_json(json: &Json) -> Result<Value, JsonError> {
    Ok(match json {
        Json::Null => Value::None,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => number_to_value(n)?,
        Json::String(s) => Value::String(s.clone()),
        Json::Array(items) => Value::Tuple(items.iter().map(from_json).collect::<Result<_, _>>()?),
        Json::Object(map) => object_to_value(map)?,
    })
}

fn number_to_value(n: &Number) -> Result<Value, JsonError> {
    // With `arbitrary_precision` the Number keeps the literal as written.
    let text = n.to_string();
    if !text.contains(['.', 'e', 'E']) {
        let big: BigInt = text
            .parse()
            .or_else(|_| err(format!("invalid integer {text}")))?;
        return Ok(Value::int(big));
    }
    let f: f64 = text
        .parse()
        .or_else(|_| err(format!("invalid number {text}")))?;
    if !f.is_finite() {
        return err(format!("number out of range for a double: {text}"));
    }
    Ok(Value::Float(f))
}

fn object_to_value(map: &Map<String, Json>) -> Result<Value, JsonError> {
    let keys: Vec<&str> = map.keys().map(String::as_str).collect();
    match keys.as_slice() {
        ["bytes"] => {
            let Json::String(b64) = &map["bytes"] else {
                return err("\"bytes\" must be a base64 string");
            };
            let bytes = BASE64
                .decode(b64)
                .or_else(|e| err(format!("invalid base64 in \"bytes\": {e}")))?;
            Ok(Value::Bytes(bytes.into()))
        }
        ["exception"] => match &map["exception"] {
            Json::Array(args) => Ok(Value::Exception(
                args.iter().map(from_json).collect::<Result<_, _>>()?,
            )),
            _ => err("\"exception\" must be an array of arguments"),
        },
        ["vfloat"] => match &map["vfloat"] {
            Json::Array(parts) if parts.len() == 3 => {
                let mut ints = parts.iter().map(|p| match from_json(p)? {
                    v @ (Entity::Int(_) | Entity::BigInt(_)) => {
                        Ok(v.as_bigint().unwrap_or_default())
                    }
                    _ => err("\"vfloat\" parts must be integers"),
                });
                let (digits, base, exp) = (
                    ints.next().unwrap_or_else(|| err("missing digits"))?,
                    ints.next().unwrap_or_else(|| err("missing base"))?,
                    ints.next().unwrap_or_else(|| err("missing exp"))?,
                );
                Ok(Value::VFloat(Box::new(VFloat { digits, base, exp })))
            }
            _ => err("\"vfloat\" must be [digits, base, exp]"),
        },
        _ if keys.len() == 2 && map.contains_key("tagged") && map.contains_key("tags") => {
            let Json::Array(tags) = &map["tags"] else {
                return err("\"tags\" must be an array");
            };
            if tags.is_empty() {
                return err("a tagged value needs at least one tag");
            }
            Ok(Value::Tagged(Box::new(Tagged {
                value: from_json(&map["tagged"])?,
                tags: tags.iter().map(from_json).collect::<Result<_, _>>()?,
            })))
        }
        ["object"] => err("remote object references cannot be sent from the command line"),
        _ => err(format!(
            "a JSON object must be {{\"bytes\":\"<base64>\"}}, {{\"exception\":[..]}}, \
             {{\"tagged\":v,\"tags\":[..]}} or {{\"vfloat\":[d,b,e]}}; got keys {keys:?}"
        )),
    }
}

/// Value → JSON (see the module table).
pub fn to_json(value: &Value) -> Json {
    match value {
        Entity::None => Json::Null,
        Entity::Bool(b) => Json::Bool(*b),
        Entity::Int(i) => Json::Number((*i).into()),
        Entity::BigInt(i) => int_to_json(i),
        Entity::Float(f) => float_to_json(*f),
        Entity::VFloat(v) => vfloat_to_json(v),
        Entity::Bytes(b) => tagged_object("bytes", Json::String(BASE64.encode(b))),
        Entity::String(s) => Json::String(s.clone()),
        Entity::Tuple(items) => Json::Array(items.iter().map(to_json).collect()),
        Entity::Exception(args) => {
            tagged_object("exception", Json::Array(args.iter().map(to_json).collect()))
        }
        Entity::Tagged(t) => {
            let mut map = Map::new();
            map.insert("tagged".into(), to_json(&t.value));
            map.insert(
                "tags".into(),
                Json::Array(t.tags.iter().map(to_json).collect()),
            );
            Json::Object(map)
        }
        Entity::Ref(Object::Remote(r)) => tagged_object("object", Json::Number(r.id().into())),
        // Only a value built locally can hold one of our own objects.
        Entity::Ref(Object::Local(_)) => tagged_object("object", Json::String("local".into())),
    }
}

fn tagged_object(key: &str, value: Json) -> Json {
    let mut map = Map::new();
    map.insert(key.into(), value);
    Json::Object(map)
}

/// Integers above this many bits are printed as a summary, not digit for
/// digit (see the module docs: decimal conversion is quadratic).
pub const MAX_EXACT_INT_BITS: u64 = 1 << 16;

/// An exact JSON integer, or the bounded summary string for a huge one.
fn int_to_json(i: &BigInt) -> Json {
    if i.bits() <= MAX_EXACT_INT_BITS {
        number_literal(&i.to_string())
    } else {
        Json::String(versile::vec::BoundedInt(i).to_string())
    }
}

/// A JSON number from a literal we produced ourselves (always valid).
fn number_literal(text: &str) -> Json {
    text.parse::<Number>()
        .map(Json::Number)
        .unwrap_or_else(|_| Json::String(text.to_owned()))
}

fn float_to_json(f: f64) -> Json {
    if f.is_nan() {
        return Json::String("NaN".into());
    }
    if f.is_infinite() {
        let s = if f > 0.0 { "Infinity" } else { "-Infinity" };
        return Json::String(s.into());
    }
    // `{:?}` is the shortest exact form and always shows a fraction or an
    // exponent (`5.0`, `1e100`), so the result reads back as a float.
    number_literal(&format!("{f:?}"))
}

fn vfloat_to_json(v: &VFloat) -> Json {
    if v.base == BigInt::from(10) {
        if let Some(text) = decimal_literal(&v.digits, &v.exp) {
            return number_literal(&text);
        }
    }
    tagged_object(
        "vfloat",
        Json::Array(vec![
            int_to_json(&v.digits),
            int_to_json(&v.base),
            int_to_json(&v.exp),
        ]),
    )
}

/// `digits × 10^exp` as an exact JSON number literal that reads as a float:
/// `1.25`, `0.005`, `7.0`, `12e3`; the power is never computed. `None` for
/// absurd exponents and for digits beyond [`MAX_EXACT_INT_BITS`].
fn decimal_literal(digits: &BigInt, exp: &BigInt) -> Option<String> {
    if digits.bits() > MAX_EXACT_INT_BITS {
        return None;
    }
    let exp: i64 = exp.try_into().ok()?;
    let sign = if digits.is_negative() { "-" } else { "" };
    let abs = digits.abs().to_string();
    if exp >= 0 {
        return Some(if exp == 0 {
            format!("{sign}{abs}.0")
        } else if digits.is_zero() {
            "0.0".to_owned()
        } else {
            format!("{sign}{abs}e{exp}")
        });
    }
    let frac = usize::try_from(-exp).ok()?;
    if frac > 400 {
        return Some(format!("{sign}{abs}e{exp}"));
    }
    let padded = if abs.len() <= frac {
        format!("{}{abs}", "0".repeat(frac + 1 - abs.len()))
    } else {
        abs
    };
    let (int, fraction) = padded.split_at(padded.len() - frac);
    Some(format!("{sign}{int}.{fraction}"))
}

/// One line of JSON.
pub fn to_json_line(value: &Value) -> String {
    to_json(value).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(text: &str) -> String {
        to_json_line(&parse_arg(text).unwrap())
    }

    #[test]
    fn scalars() {
        assert_eq!(parse_arg("null").unwrap(), Value::None);
        assert_eq!(parse_arg("true").unwrap(), Value::Bool(true));
        assert_eq!(parse_arg("5").unwrap(), Value::Int(5));
        assert_eq!(parse_arg("-5").unwrap(), Value::Int(-5));
        assert_eq!(parse_arg("\"text\"").unwrap(), Value::from("text"));
        assert_eq!(parse_arg("2.5").unwrap(), Value::Float(2.5));
        assert_eq!(parse_arg("1e3").unwrap(), Value::Float(1000.0));
        for t in [
            "null", "true", "false", "5", "-5", "2.5", "\"text\"", "1000.0",
        ] {
            assert_eq!(round_trip(t), t);
        }
        assert_eq!(round_trip("1e3"), "1000.0");
    }

    #[test]
    fn big_integers_are_exact() {
        for t in [
            "123456789012345678901234567890",
            "-123456789012345678901234567890",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775809",
            "18446744073709551616",
        ] {
            let v = parse_arg(t).unwrap();
            assert_eq!(v.as_bigint().unwrap().to_string(), t);
            assert_eq!(round_trip(t), t);
        }
        assert_eq!(
            parse_arg("9223372036854775807").unwrap(),
            Value::Int(i64::MAX)
        );
        assert!(matches!(
            parse_arg("9223372036854775808").unwrap(),
            Entity::BigInt(_)
        ));
    }

    #[test]
    fn plain_text_is_a_string() {
        assert_eq!(parse_arg("hello").unwrap(), Value::from("hello"));
        assert_eq!(
            parse_arg("hello world").unwrap(),
            Value::from("hello world")
        );
        assert_eq!(parse_arg("").unwrap(), Value::from(""));
        assert_eq!(parse_arg("[1,").unwrap(), Value::from("[1,"));
        assert_eq!(round_trip("hello"), "\"hello\"");
    }

    #[test]
    fn containers_and_bytes() {
        assert_eq!(
            parse_arg("[1,\"a\",[null]]").unwrap(),
            Value::Tuple(vec![
                Value::Int(1),
                Value::from("a"),
                Value::Tuple(vec![Value::None])
            ])
        );
        assert_eq!(
            parse_arg(r#"{"bytes":"AAEC/w=="}"#).unwrap(),
            Value::Bytes(vec![0u8, 1, 2, 255].into())
        );
        for t in [
            r#"[1,"a",[null],[]]"#,
            r#"{"bytes":"AAEC/w=="}"#,
            r#"{"bytes":""}"#,
            r#"{"exception":["boom",42]}"#,
            r#"{"tagged":[1,2],"tags":[21,1,2]}"#,
            r#"{"vfloat":[3,2,-1]}"#,
        ] {
            assert_eq!(round_trip(t), t);
        }
    }

    #[test]
    fn rejected_objects() {
        assert!(parse_arg(r#"{"a":1}"#).is_err());
        assert!(parse_arg(r#"{"bytes":"!!"}"#).is_err());
        assert!(parse_arg(r#"{"bytes":5}"#).is_err());
        assert!(parse_arg(r#"{"object":1}"#).is_err());
        assert!(parse_arg(r#"{"tagged":1,"tags":[]}"#).is_err());
        assert!(parse_arg("1e999").is_err());
    }

    #[test]
    fn decimals() {
        let d = |digits: i64, exp: i64| {
            to_json_line(&Value::VFloat(Box::new(VFloat {
                digits: digits.into(),
                base: 10.into(),
                exp: exp.into(),
            })))
        };
        assert_eq!(d(125, -2), "1.25");
        assert_eq!(d(5, -3), "0.005");
        assert_eq!(d(-5, -3), "-0.005");
        assert_eq!(d(-125, -2), "-1.25");
        assert_eq!(d(7, 0), "7.0");
        assert_eq!(d(12, 3), "12e+3"); // serde_json writes the exponent sign
        assert_eq!(d(0, 3), "0.0");
    }

    #[test]
    fn huge_integers_print_bounded() {
        // 2^(8 Mi) - 1: its decimal form would take seconds; the summary
        // is a short string.
        let huge: BigInt = (BigInt::from(1) << (8u64 << 20)) - 1;
        assert_eq!(
            to_json_line(&Value::int(huge.clone())),
            "\"<int of 8388608 bits, 0xffffffffffffffff…>\""
        );
        // The largest exact one is still digit for digit.
        let edge: BigInt = (BigInt::from(1) << MAX_EXACT_INT_BITS) - 1;
        assert_eq!(to_json_line(&Value::int(edge.clone())), edge.to_string());
        let v = Value::VFloat(Box::new(VFloat {
            digits: huge.clone(),
            base: 10.into(),
            exp: (-5).into(),
        }));
        assert_eq!(
            to_json_line(&v),
            "{\"vfloat\":[\"<int of 8388608 bits, 0xffffffffffffffff…>\",10,-5]}"
        );
        let v = Value::VFloat(Box::new(VFloat {
            digits: 3.into(),
            base: 10.into(),
            exp: -huge,
        }));
        let line = to_json_line(&v);
        assert!(line.len() < 100, "{line}");
    }

    #[test]
    fn special_floats() {
        assert_eq!(to_json_line(&Value::Float(f64::NAN)), "\"NaN\"");
        assert_eq!(to_json_line(&Value::Float(f64::INFINITY)), "\"Infinity\"");
        assert_eq!(to_json_line(&Value::Float(1e100)), "1e+100");
        assert_eq!(to_json_line(&Value::Float(0.1)), "0.1");
    }
}
