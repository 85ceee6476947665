//! VSE catalogue values from the entity vectors (`docs/protocol/vec.md` §6, §7).

mod support;

use bytes::BytesMut;
use num_bigint::BigInt;
use support::spec_vectors::{contexts, decode_all, load_spec_json};
use versile::vec::vse::{ver_label, vse_code, VSE_OID_PREFIX};
use versile::vec::{encode, Entity, Tagged, VFloat, VerLabel, VseValue, WireRef};

fn decoded(desc_prefix: &str) -> (Entity, String, String) {
    let vectors = load_spec_json("vec-vectors.json");
    let v = vectors
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["desc"].as_str().unwrap().starts_with(desc_prefix))
        .unwrap_or_else(|| panic!("no vector {desc_prefix}"));
    let ctx = v["ctx"].as_str().unwrap().to_owned();
    let hex_s = v["hex"].as_str().unwrap().to_owned();
    let (e, _) = decode_all(contexts(&ctx).0, &hex::decode(&hex_s).unwrap());
    (e.unwrap().unwrap(), ctx, hex_s)
}

fn vse(e: &Entity) -> VseValue {
    match e {
        Entity::Tagged(t) => VseValue::from_tagged(t).expect("VSE label").expect("valid"),
        other => panic!("not tagged: {other:?}"),
    }
}

/// Decode, parse as VSE, check the value, write back, compare bytes.
fn check(desc_prefix: &str, want: VseValue) -> VseValue {
    let (e, ctx, hex_s) = decoded(desc_prefix);
    let v = vse(&e);
    assert_eq!(v, want, "{desc_prefix}");
    let back = v.to_entity();
    assert_eq!(back, e, "{desc_prefix}");
    let mut out = BytesMut::new();
    encode(&back, &contexts(&ctx).1, &mut out).unwrap();
    assert_eq!(hex::encode(out), hex_s, "{desc_prefix}");
    v
}

fn s(x: &str) -> Entity {
    Entity::String(x.into())
}

#[test]
fn containers() {
    check(
        "VSE frozendict {1: 2}",
        VseValue::FrozenDict(vec![(Entity::Int(1), Entity::Int(2))]),
    );
    check(
        "VSE frozendict {'k'",
        VseValue::FrozenDict(vec![(s("k"), s("v"))]),
    );
    check(
        "VSE frozenset {7}",
        VseValue::FrozenSet(vec![Entity::Int(7)]),
    );
    check(
        "VSE frozen multi-array",
        VseValue::FrozenMultiArray {
            dims: vec![Entity::Int(2), Entity::Int(1)],
            data: vec![Entity::Int(5), Entity::Int(6)],
        },
    );
}

#[test]
fn arrays_decode_to_tuples() {
    let v = check(
        "VSE array of int32",
        VseValue::ArrayOfInt(vec![1, -1, i32::MAX]),
    );
    let ints = |xs: &[i64]| Entity::Tuple(xs.iter().map(|&x| Entity::Int(x)).collect());
    assert_eq!(v.array_as_tuple(), Some(ints(&[1, -1, i32::MAX as i64])));
    let v = check("VSE array of int64", VseValue::ArrayOfLong(vec![1, -1]));
    assert_eq!(v.array_as_tuple(), Some(ints(&[1, -1])));
    let v = check(
        "VSE array of VInteger",
        VseValue::ArrayOfVInteger(vec![1.into(), (-1).into(), 300.into()]),
    );
    assert_eq!(v.array_as_tuple(), Some(ints(&[1, -1, 300])));
    let v = check("VSE array of float32", VseValue::ArrayOfFloat(vec![1.5]));
    assert_eq!(
        v.array_as_tuple(),
        Some(Entity::Tuple(vec![Entity::Float(1.5)]))
    );
    check(
        "VSE array of float64",
        VseValue::ArrayOfDouble(vec![1.5, -2.0]),
    );
    let seven = VFloat {
        digits: 42.into(),
        base: 7.into(),
        exp: (-5).into(),
    };
    let v = check(
        "VSE array of VFloat",
        VseValue::ArrayOfVFloat(vec![
            VFloat {
                digits: 24.into(),
                base: 2.into(),
                exp: (-4).into(),
            },
            seven.clone(),
        ]),
    );
    assert_eq!(
        v.array_as_tuple(),
        Some(Entity::Tuple(vec![
            Entity::Float(1.5),
            Entity::VFloat(Box::new(seven))
        ]))
    );
}

#[test]
fn time_and_concept() {
    check(
        "VSE UTC time (days=1",
        VseValue::UtcTime {
            days: Entity::Int(1),
            secs: Entity::Int(2),
        },
    );
    check(
        "VSE UTC time with fractional",
        VseValue::UtcTime {
            days: Entity::Int(19000),
            // Built from a Python float here (a datetime would give base 10).
            secs: Entity::Float(3600.5),
        },
    );
    check(
        "VSE concept, English Wikipedia",
        VseValue::Concept {
            kind: Entity::Int(2),
            value: s("Oslo"),
        },
    );
}

#[test]
fn name_form_label_is_recognised() {
    let (e, _, _) = decoded("VSE frozenset in VER name form");
    assert_eq!(vse(&e), VseValue::FrozenSet(vec![Entity::Int(7)]));
    let Entity::Tagged(t) = &e else { panic!() };
    let (label, used) = ver_label(&t.tags).unwrap();
    assert_eq!(used, 3);
    assert_eq!(vse_code(&label), Some((1, 3)));
    // Full OID form, as Python also accepts (`docs/protocol/vec.md` §6).
    let mut tags = vec![Entity::Int(100)];
    tags.extend(VSE_OID_PREFIX.iter().map(|&x| Entity::int(x)));
    tags.extend([Entity::Int(1), Entity::Int(3)]);
    let t: Tagged = Tagged {
        value: Entity::Tuple(vec![]),
        tags,
    };
    assert_eq!(
        VseValue::from_tagged(&t),
        Some(Ok(VseValue::FrozenSet(vec![])))
    );
}

#[test]
fn non_vse_tagged_values() {
    let (e, _, _) = decoded("tagged, no tags");
    let Entity::Tagged(t) = &e else { panic!() };
    assert!(VseValue::from_tagged(t).is_none());
    // A VER name label that is not VSE.
    let (e, _, _) = decoded("tagged VER name form");
    let Entity::Tagged(t) = &e else { panic!() };
    assert_eq!(
        ver_label(&t.tags).map(|x| x.0),
        Some(VerLabel::Name {
            name: vec!["mypkg".into(), "triangle".into()],
            version: vec![1, 0],
        })
    );
    assert!(VseValue::from_tagged(t).is_none());
}

#[test]
fn reference_carrying_type_is_raw() {
    let (e, _, _) = decoded("tagged value holding an object reference");
    assert_eq!(
        vse(&e),
        VseValue::Other {
            code: (4, 1),
            value: Entity::Ref(WireRef::SenderOwned(1)),
            residual: vec![Entity::Int(0), Entity::None],
        }
    );
    assert_eq!(vse(&e).to_entity(), e);
}

#[test]
fn malformed_layouts_are_errors() {
    let tagged = |value: Entity, a: i64, b: i64| -> Tagged {
        Tagged {
            value,
            tags: vec![Entity::Int(21), Entity::Int(a), Entity::Int(b)],
        }
    };
    let odd = tagged(Entity::Tuple(vec![Entity::Int(1)]), 1, 2);
    assert!(matches!(VseValue::from_tagged(&odd), Some(Err(_))));
    let short = tagged(Entity::Bytes(vec![0, 0, 1].into()), 1, 4);
    assert!(matches!(VseValue::from_tagged(&short), Some(Err(_))));
    let trunc = tagged(Entity::Bytes(vec![0xF7].into()), 1, 6);
    assert!(matches!(VseValue::from_tagged(&trunc), Some(Err(_))));
    let big = VseValue::<WireRef>::ArrayOfVInteger(vec![BigInt::from(2).pow(100)]);
    let Entity::Tagged(t) = big.to_entity() else {
        panic!()
    };
    assert_eq!(VseValue::from_tagged(&t), Some(Ok(big)));
}
