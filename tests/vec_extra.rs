//! `vec-extra-vectors.json` (`docs/protocol/vec.md` §11.2): netbytes primitives, hello
//! lines, encoder refusals and decoder behaviour on odd input.

mod support;

use bytes::BytesMut;
use num_bigint::{BigInt, BigUint};
use support::spec_vectors::{contexts, decode_all, load_spec_json};
use versile::vec::netbytes::{decode_posint, decode_signed, encode_posint, encode_signed};
use versile::vec::{
    encode, hello_line, parse_hello, EncodeConfig, Entity, StrCodec, VecError, WireRef,
};

fn list<'a>(v: &'a serde_json::Value, key: &str) -> &'a Vec<serde_json::Value> {
    v[key].as_array().expect(key)
}

fn s<'a>(v: &'a serde_json::Value, key: &str) -> &'a str {
    v[key].as_str().expect(key)
}

#[test]
fn posint_netbytes() {
    let x = load_spec_json("vec-extra-vectors.json");
    let cases = list(&x, "posint_netbytes");
    assert_eq!(cases.len(), 14);
    for c in cases {
        let value: BigUint = s(c, "value").parse().unwrap();
        let bytes = hex::decode(s(c, "hex")).unwrap();
        let mut out = Vec::new();
        encode_posint(&value, &mut out);
        assert_eq!(out, bytes, "encode {value}");
        let (got, n) = decode_posint(&bytes, 64).unwrap().unwrap();
        assert_eq!((got, n), (value, bytes.len()));
        assert_eq!(decode_posint(&bytes[..bytes.len() - 1], 64).unwrap(), None);
    }
}

#[test]
fn signed_netbytes() {
    let x = load_spec_json("vec-extra-vectors.json");
    let cases = list(&x, "signed_netbytes");
    assert_eq!(cases.len(), 9);
    for c in cases {
        let value: BigInt = s(c, "value").parse().unwrap();
        let bytes = hex::decode(s(c, "hex")).unwrap();
        let mut out = Vec::new();
        encode_signed(&value, &mut out);
        assert_eq!(out, bytes, "encode {value}");
        let (got, n) = decode_signed(&bytes, 64).unwrap().unwrap();
        assert_eq!((got, n), (value, bytes.len()));
    }
}

#[test]
fn hello_sent() {
    let x = load_spec_json("vec-extra-vectors.json");
    let cases = list(&x, "hello_sent");
    assert_eq!(cases.len(), 2);
    for c in cases {
        let codec = if s(c, "desc").contains("without") {
            None
        } else {
            Some(StrCodec::Utf8)
        };
        assert_eq!(hex::encode(hello_line(codec)), s(c, "hex"));
    }
}

#[test]
fn hello_received() {
    let x = load_spec_json("vec-extra-vectors.json");
    let cases = list(&x, "hello_received");
    assert_eq!(cases.len(), 17);
    for c in cases {
        let line = hex::decode(s(c, "line_hex")).unwrap();
        let python = s(c, "python");
        let mut buf = BytesMut::from(&line[..]);
        let got = parse_hello(&mut buf);
        if let Some(rest) = python.strip_prefix("accepted; peer string codec=") {
            // e.g. "b'utf8'; 1 byte(s) left for entities"
            let (codec, left) = rest.split_once("; ").unwrap();
            let codec = match codec {
                "None" => None,
                "b'utf8'" => Some(StrCodec::Utf8),
                "b'utf16'" => Some(StrCodec::Utf16),
                other => panic!("codec {other}"),
            };
            let left: usize = left.split(' ').next().unwrap().parse().unwrap();
            assert_eq!(got, Ok(Some(codec)), "{python}");
            assert_eq!(buf.len(), left, "{python}");
        } else if python.starts_with("rejected") {
            assert!(
                matches!(got, Err(VecError::BadHello(_))),
                "{python}: {got:?}"
            );
        } else {
            assert!(python.starts_with("incomplete"));
            assert_eq!(got, Ok(None));
            assert_eq!(buf.len(), line.len());
        }
    }
}

#[test]
fn encode_errors() {
    let x = load_spec_json("vec-extra-vectors.json");
    let cases = list(&x, "encode_errors");
    assert_eq!(cases.len(), 9);
    let mut checked = 0;
    for c in cases {
        let repr = s(c, "python_repr");
        let (_, cfg) = contexts(s(c, "ctx"));
        // Values Rust cannot even represent as an `Entity` are skipped:
        // Decimal NaN/Infinity (a VFloat is always finite), lone surrogates
        // (a `String` is valid Unicode), lists and dicts (no such variant).
        let (entity, want) = match repr {
            "float('inf')" => (Entity::Float(f64::INFINITY), VecError::NonFiniteFloat),
            "float('-inf')" => (Entity::Float(f64::NEG_INFINITY), VecError::NonFiniteFloat),
            "float('nan')" => (Entity::Float(f64::NAN), VecError::NonFiniteFloat),
            "VObject()" => (
                Entity::Ref(WireRef::SenderOwned(1)),
                VecError::RefsNotAllowed,
            ),
            _ => continue,
        };
        let mut out = BytesMut::from(&b"keep"[..]);
        assert_eq!(encode(&entity, &cfg, &mut out), Err(want), "{repr}");
        assert_eq!(&out[..], b"keep", "{repr}: buffer touched");
        checked += 1;
    }
    assert_eq!(checked, 4);
}

/// Our expected outcome for each decode case; where it differs from Python
/// the reason is given.
fn expected_decode(desc: &str) -> Result<Option<Entity>, Option<VecError>> {
    Ok(Some(match desc {
        d if d.starts_with("non-canonical int") => Entity::Int(485),
        d if d.starts_with("non-canonical bytes length") => Entity::Bytes(vec![0xAA; 248].into()),
        "unknown type code 0xFF" => return Err(Some(VecError::BadTypeCode(0xFF))),
        // Python has consumed the header bytes; we consume nothing until the
        // entity is complete (not observable on the wire).
        "truncated tuple (waits for more data)" => return Ok(None),
        "entity followed by more bytes (reader stops at the boundary)" => Entity::Int(0),
        "0xF4 string without any codec known" => return Err(Some(VecError::NoStringCodec)),
        "0xF4 string with utf8 context" => Entity::String("hi".into()),
        // Deliberate difference (`docs/protocol/vec.md` §5.6, §12): only utf8/utf16 codec
        // names are decoded. Python looks the name up in its codec registry;
        // Python never sends other names itself, and mirroring the registry
        // would be open-ended.
        "0xF5 string with codec 'latin1' (any Python codec name decodes)" => {
            return Err(Some(VecError::UnknownCodec("latin1".into())))
        }
        "0xF5 string with codec 'utf-8'" => Entity::String("a".into()),
        "0xF5 string with invalid UTF-8" => return Err(None),
        "0xF5 utf16 without BOM (little-endian assumed on LE hosts)" => Entity::String("a".into()),
        d if d.starts_with("tagged with empty tuple") => {
            return Err(Some(VecError::MalformedTagged))
        }
        "exception with empty tuple" => Entity::Exception(vec![]),
        d if d.starts_with("float with base 1") => {
            return Err(Some(VecError::InvalidFloatBase(BigInt::from(1).into())))
        }
        // Deliberate difference: the entity layer has no object table, so an
        // FD id is returned as is; VOL rejects unknown ids (`docs/protocol/vec.md` §5.10).
        "0xFD (reference to receiver-owned object) for unknown id" => {
            Entity::Ref(WireRef::ReceiverOwned(1))
        }
        d if d.starts_with("0xFC (sender-owned object) on a context without") => {
            return Err(Some(VecError::RefsNotAllowed))
        }
        "0xFC (sender-owned object) id 1 on object context" => Entity::Ref(WireRef::SenderOwned(1)),
        other => panic!("no expectation for decode case {other:?}"),
    }))
}

#[test]
fn decode_cases() {
    let x = load_spec_json("vec-extra-vectors.json");
    let cases = list(&x, "decode_cases");
    assert_eq!(cases.len(), 18);
    let mut differs = 0;
    for c in cases {
        let desc = s(c, "desc");
        let python = s(c, "python");
        let bytes = hex::decode(s(c, "hex")).unwrap();
        let (dcfg, _) = contexts(s(c, "ctx"));
        let (got, rest) = decode_all(dcfg, &bytes);
        let want = expected_decode(desc);
        match (&want, &got) {
            (Ok(w), Ok(g)) => assert_eq!(w, g, "{desc}"),
            (Err(Some(w)), Err(g)) => assert_eq!(w, g, "{desc}"),
            (Err(None), Err(_)) => {}
            _ => panic!("{desc}: expected {want:?}, got {got:?}"),
        }
        match &got {
            Ok(Some(_)) => {
                let trailing = python
                    .split_once('(')
                    .filter(|(_, r)| r.contains("trailing"))
                    .map_or(0, |(_, r)| r.split(' ').next().unwrap().parse().unwrap());
                assert_eq!(rest.len(), trailing, "{desc}");
            }
            _ => assert_eq!(
                rest.len(),
                bytes.len(),
                "{desc}: consumed on error/incomplete"
            ),
        }
        // Python's verdict vs ours: ok/error/incomplete.
        let py_ok = python.starts_with("ok");
        let py_incomplete = python.starts_with("incomplete");
        let ours_ok = matches!(got, Ok(Some(_)));
        let ours_incomplete = matches!(got, Ok(None));
        if (py_ok, py_incomplete) != (ours_ok, ours_incomplete) {
            differs += 1;
        }
    }
    // latin1 (we reject) and FD unknown id (we defer to VOL).
    assert_eq!(differs, 2);
}

#[test]
fn link_config_is_utf8_with_refs() {
    assert_eq!(EncodeConfig::LINK.str_encoding, Some(StrCodec::Utf8));
    assert_eq!(EncodeConfig::link(), EncodeConfig::LINK);
    let link = EncodeConfig::link();
    assert!(link.allow_refs);
    assert_eq!(EncodeConfig::default(), EncodeConfig::PLAIN);
}
