//! Every vector of `vec-vectors.json` (`docs/protocol/vec.md` §11.1): decode with the
//! vector's context, re-encode, compare bytes; semantic checks against the
//! Python literal where it is a simple one.

mod support;

use bytes::BytesMut;
use support::spec_vectors::{contexts, decode_all, eval_python, load_spec_json};
use versile::vec::{encode, Decoder, Entity};

#[test]
fn all_entity_vectors() {
    let vectors = load_spec_json("vec-vectors.json");
    let vectors = vectors.as_array().expect("list");
    assert_eq!(vectors.len(), 108);
    let mut semantic = 0;
    let mut kinds = std::collections::BTreeMap::new();
    for v in vectors {
        let desc = v["desc"].as_str().unwrap();
        let ctx = v["ctx"].as_str().unwrap();
        let hex_s = v["hex"].as_str().unwrap();
        let repr = v["python_repr"].as_str().unwrap();
        let bytes = hex::decode(hex_s).unwrap();
        let (dcfg, ecfg) = contexts(ctx);

        let (res, rest) = decode_all(dcfg, &bytes);
        let entity = match res {
            Ok(Some(e)) => e,
            other => panic!("{desc}: decode gave {other:?}"),
        };
        assert!(rest.is_empty(), "{desc}: {} bytes left", rest.len());

        let mut out = BytesMut::new();
        encode(&entity, &ecfg, &mut out).unwrap_or_else(|e| panic!("{desc}: {e}"));
        assert_eq!(hex::encode(&out), hex_s, "{desc}: re-encoding differs");

        // Byte-by-byte feeding gives the same entity and never consumes early.
        let mut dec = Decoder::new(dcfg);
        let mut buf = BytesMut::new();
        let mut got = None;
        for (i, b) in bytes.iter().enumerate() {
            buf.extend_from_slice(&[*b]);
            match dec.decode(&mut buf).unwrap() {
                Some(e) => {
                    assert_eq!(i + 1, bytes.len(), "{desc}: early completion");
                    got = Some(e);
                }
                None => assert_eq!(buf.len(), i + 1, "{desc}: consumed while incomplete"),
            }
        }
        assert_eq!(
            got.as_ref(),
            Some(&entity),
            "{desc}: chunked decode differs"
        );

        if let Some(expected) = eval_python(repr) {
            assert_eq!(entity, expected, "{desc}: value differs from {repr}");
            semantic += 1;
            let kind = format!("{:?}", expected)
                .split('(')
                .next()
                .unwrap()
                .to_owned();
            *kinds.entry(kind).or_insert(0) += 1;
        }
    }
    // Every int, float, bytes, str, bool, None and plain tuple vector.
    assert_eq!(semantic, 72, "semantic checks by kind: {kinds:?}");
}

#[test]
fn literal_evaluator_sanity() {
    assert_eq!(eval_python("-2**31"), Some(Entity::Int(-(1 << 31))));
    assert_eq!(eval_python("2**31-1"), Some(Entity::Int((1 << 31) - 1)));
    assert_eq!(
        eval_python("'a\\x00b'"),
        Some(Entity::String("a\0b".into()))
    );
    assert_eq!(
        eval_python("'\\U0001f600'"),
        Some(Entity::String("\u{1F600}".into()))
    );
    assert_eq!(eval_python("VObject()"), None);
    assert_eq!(
        eval_python("(1, None, -1e-300)"),
        Some(Entity::Tuple(vec![
            Entity::Int(1),
            Entity::None,
            Entity::Float(-1e-300)
        ]))
    );
}
