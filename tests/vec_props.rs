//! Property tests: round trips, prefixes and random input (`docs/protocol/vec.md` §2).

use bytes::{Bytes, BytesMut};
use num_bigint::{BigInt, Sign};
use proptest::prelude::*;
use versile::vec::{
    encode, encode_sharing, Decoder, DecoderConfig, EncodeConfig, Entity, ShareBytes, StrCodec,
    Tagged, VFloat, WireRef,
};

fn bigint() -> impl Strategy<Value = BigInt> {
    (any::<bool>(), prop::collection::vec(any::<u8>(), 0..40))
        .prop_map(|(neg, m)| BigInt::from_bytes_be(if neg { Sign::Minus } else { Sign::Plus }, &m))
}

fn finite_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>().prop_filter("finite", |x| x.is_finite()),
        prop::num::f64::SUBNORMAL | prop::num::f64::NEGATIVE,
        Just(0.0),
        Just(-0.0),
        Just(f64::MAX),
        Just(f64::MIN_POSITIVE),
    ]
}

fn leaf(refs: bool) -> BoxedStrategy<Entity> {
    let base = prop_oneof![
        Just(Entity::None),
        any::<bool>().prop_map(Entity::Bool),
        any::<i64>().prop_map(Entity::Int),
        (-2i64..300).prop_map(Entity::Int),
        bigint().prop_map(Entity::int),
        finite_f64().prop_map(Entity::Float),
        // Base 2 is left out: canonical base-2 values decode as `Float`.
        (
            bigint(),
            prop_oneof![Just(10u32), 3u32..9, 11u32..1000],
            bigint()
        )
            .prop_map(|(digits, base, exp)| Entity::VFloat(Box::new(VFloat {
                digits,
                base: base.into(),
                exp
            }))),
        prop::collection::vec(any::<u8>(), 0..300).prop_map(|b| Entity::Bytes(Bytes::from(b))),
        ".{0,20}".prop_map(Entity::String),
    ];
    if refs {
        prop_oneof![
            4 => base,
            1 => any::<i64>().prop_map(|i| Entity::Ref(WireRef::SenderOwned(i))),
            1 => any::<i64>().prop_map(|i| Entity::Ref(WireRef::ReceiverOwned(i))),
        ]
        .boxed()
    } else {
        base.boxed()
    }
}

fn entity(refs: bool) -> impl Strategy<Value = Entity> {
    leaf(refs).prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Entity::Tuple),
            prop::collection::vec(inner.clone(), 0..4).prop_map(Entity::Exception),
            (inner.clone(), prop::collection::vec(inner, 0..4))
                .prop_map(|(value, tags)| { Entity::Tagged(Box::new(Tagged { value, tags })) }),
        ]
    })
}

fn configs() -> impl Strategy<Value = (DecoderConfig, EncodeConfig)> {
    prop_oneof![
        Just(None),
        Just(Some(StrCodec::Utf8)),
        Just(Some(StrCodec::Utf16))
    ]
    .prop_map(|codec| {
        (
            DecoderConfig {
                str_decoding: codec,
                allow_refs: true,
                ..DecoderConfig::default()
            },
            EncodeConfig {
                str_encoding: codec,
                allow_refs: true,
            },
        )
    })
}

fn encoded(e: &Entity, cfg: &EncodeConfig) -> BytesMut {
    let mut out = BytesMut::new();
    encode(e, cfg, &mut out).expect("encodable");
    out
}

/// What `encode_sharing` hands over, in order.
struct Pieces {
    min: usize,
    pieces: Vec<(Bytes, Bytes)>,
}

impl ShareBytes for Pieces {
    fn min_len(&self) -> usize {
        self.min
    }
    fn share(&mut self, before: Bytes, shared: Bytes) {
        self.pieces.push((before, shared));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn shared_pieces_are_the_same_bytes(e in entity(true), (_, ecfg) in configs(), min in 0usize..300) {
        let mut out = BytesMut::from(&b"before"[..]);
        let mut sharing = Pieces { min, pieces: Vec::new() };
        encode_sharing(&e, &ecfg, &mut out, &mut sharing).expect("encodable");
        let mut joined = Vec::new();
        for (before, shared) in &sharing.pieces {
            prop_assert!(shared.len() >= min);
            joined.extend_from_slice(before);
            joined.extend_from_slice(shared);
        }
        joined.extend_from_slice(&out);
        prop_assert_eq!(&joined[..6], b"before");
        prop_assert_eq!(&joined[6..], &encoded(&e, &ecfg)[..]);
    }

    #[test]
    fn round_trip(e in entity(true), (dcfg, ecfg) in configs(), tail in prop::collection::vec(any::<u8>(), 0..4)) {
        let mut buf = encoded(&e, &ecfg);
        let len = buf.len();
        buf.extend_from_slice(&tail);
        let got = Decoder::new(dcfg).decode(&mut buf).unwrap();
        prop_assert_eq!(got, Some(e));
        prop_assert_eq!(&buf[..], &tail[..]);
        prop_assert!(len > 0);
    }

    #[test]
    fn float_parts_are_exact(x in finite_f64(), shift in 0u32..8) {
        let (d, e) = versile::vec::float_parts(x).unwrap();
        let f = VFloat { digits: BigInt::from(d) << shift, base: 2.into(), exp: (e - i64::from(shift)).into() };
        prop_assert_eq!(f.to_f64_exact(), Some(x));
    }

    #[test]
    fn round_trip_without_refs(e in entity(false)) {
        let mut buf = encoded(&e, &EncodeConfig::PLAIN);
        let got = Decoder::new(DecoderConfig::default()).decode(&mut buf).unwrap();
        prop_assert_eq!(got, Some(e));
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn prefixes_are_incomplete(e in entity(true), (dcfg, ecfg) in configs(), chunk in 1usize..64) {
        let full = encoded(&e, &ecfg);
        // Fresh decoder on each proper prefix.
        for cut in 0..full.len() {
            let mut buf = BytesMut::from(&full[..cut]);
            prop_assert_eq!(Decoder::new(dcfg).decode(&mut buf).unwrap(), None);
            prop_assert_eq!(buf.len(), cut);
        }
        // One decoder fed in chunks (exercises the resumable state).
        let mut dec = Decoder::new(dcfg);
        let mut buf = BytesMut::new();
        let mut got = None;
        for piece in full.chunks(chunk) {
            prop_assert!(got.is_none());
            buf.extend_from_slice(piece);
            got = dec.decode(&mut buf).unwrap();
        }
        prop_assert_eq!(got, Some(e));
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn random_bytes_never_panic(
        // Biased towards type codes and small lengths.
        data in prop::collection::vec(prop_oneof![any::<u8>(), 0xEFu8..=0xFF, 0u8..8], 0..512),
        chunk in 1usize..32,
        refs in any::<bool>(),
        small in any::<bool>(),
    ) {
        let cfg = DecoderConfig {
            str_decoding: Some(StrCodec::Utf8),
            allow_refs: refs,
            max_entity_size: if small { 64 } else { 1 << 20 },
            max_depth: 8,
            max_decoded_bytes: if small { 4096 } else { 1 << 24 },
        };
        let ecfg = EncodeConfig { str_encoding: Some(StrCodec::Utf8), allow_refs: refs };
        let mut dec = Decoder::new(cfg);
        let mut buf = BytesMut::new();
        'outer: for piece in data.chunks(chunk) {
            buf.extend_from_slice(piece);
            loop {
                match dec.decode(&mut buf) {
                    Ok(Some(e)) => {
                        // Same oracle as the fuzz target: re-encode, re-decode.
                        let mut out = encoded(&e, &ecfg);
                        let roomy = DecoderConfig { max_entity_size: usize::MAX, max_decoded_bytes: usize::MAX, ..cfg };
                        let again = Decoder::new(roomy).decode(&mut out).unwrap();
                        prop_assert_eq!(again, Some(e));
                        prop_assert!(out.is_empty());
                    }
                    Ok(None) => break,
                    Err(_) => break 'outer,
                }
            }
        }
    }

    #[test]
    fn random_tails_after_valid_header(e in entity(false), junk in prop::collection::vec(any::<u8>(), 0..64)) {
        // A valid entity followed by junk: the entity still decodes.
        let mut buf = encoded(&e, &EncodeConfig::PLAIN);
        buf.extend_from_slice(&junk);
        let got = Decoder::new(DecoderConfig::default()).decode(&mut buf).unwrap();
        prop_assert_eq!(got, Some(e));
        prop_assert_eq!(buf.len(), junk.len());
    }
}
