//! Hostile input: huge declared lengths, deep nesting, truncation, bad codes
//! (`docs/protocol/vec.md` §1.1, §8.4).

use bytes::BytesMut;
use versile::vec::{Decoder, DecoderConfig, Entity, VecError};

fn dec(bytes: &[u8], cfg: DecoderConfig) -> (Result<Option<Entity>, VecError>, usize) {
    let mut buf = BytesMut::from(bytes);
    let r = Decoder::new(cfg).decode(&mut buf);
    (r, buf.len())
}

fn too_large(r: &Result<Option<Entity>, VecError>) -> bool {
    matches!(r, Err(VecError::EntityTooLarge { .. }))
}

#[test]
fn huge_declared_byte_length_fails_up_front() {
    // F3 + posint(2^64 + 246): no payload sent, rejected at once.
    let (r, left) = dec(
        &[0xF3, 0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF],
        DecoderConfig::default(),
    );
    assert!(too_large(&r), "{r:?}");
    assert_eq!(left, 10);
    // Just over the default limit (100 MiB + 1).
    let mut b = vec![0xF3, 0xFA];
    b.extend_from_slice(&(105_906_177u32 - 247).to_be_bytes());
    assert!(too_large(&dec(&b, DecoderConfig::default()).0));
    // 0xFF length-of-length form declaring 2^70 bytes.
    let mut b = vec![0xF3, 0xFF, 0x00];
    b.extend_from_slice(&[0x40, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert!(too_large(&dec(&b, DecoderConfig::default()).0));
}

#[test]
fn huge_counts_and_integers_fail_up_front() {
    // Tuple of 2^40 elements.
    let r = dec(&[0xF6, 0xFB, 1, 0, 0, 0, 0], DecoderConfig::default()).0;
    assert!(too_large(&r));
    // Integer magnitude longer than the limit.
    let cfg = DecoderConfig {
        max_entity_size: 8,
        ..DecoderConfig::default()
    };
    assert!(too_large(&dec(&[0xEF, 0xFF, 0x00], cfg).0));
    // F5 codec + data lengths summing past the limit.
    assert!(too_large(&dec(&[0xF5, 0x04, 0x05], cfg).0));
}

#[test]
fn limit_applies_to_headers_without_payload() {
    let cfg = DecoderConfig {
        max_entity_size: 50,
        max_depth: 1000,
        ..DecoderConfig::default()
    };
    let chain: Vec<u8> = [0xF6, 0x02].repeat(40);
    let (r, left) = dec(&chain, cfg);
    assert!(too_large(&r), "{r:?}");
    assert_eq!(left, 80);
    // Exactly at the limit is fine.
    let mut ok = vec![0xF3, 48];
    ok.extend_from_slice(&[7; 48]);
    assert!(matches!(dec(&ok, cfg).0, Ok(Some(Entity::Bytes(_)))));
    ok[1] = 49;
    ok.push(7);
    assert!(too_large(&dec(&ok, cfg).0));
}

#[test]
fn nesting_limit() {
    let cfg = DecoderConfig {
        max_depth: 256,
        ..DecoderConfig::default()
    };
    let mut ok = [0xF6, 0x01].repeat(256);
    ok.push(0x01);
    let (r, left) = dec(&ok, cfg);
    assert!(matches!(r, Ok(Some(Entity::Tuple(_)))));
    assert_eq!(left, 0);
    let mut deep = [0xF6, 0x01].repeat(257);
    deep.push(0x01);
    assert_eq!(
        dec(&deep, cfg).0,
        Err(VecError::NestingTooDeep { max: 256 })
    );
    // A million nested tagged values: error, no stack overflow.
    let hostile = [0xFE, 0x01].repeat(1_000_000);
    assert_eq!(
        dec(&hostile, DecoderConfig::default()).0,
        Err(VecError::NestingTooDeep { max: 256 })
    );
}

#[test]
fn truncated_input_is_incomplete() {
    for bytes in [
        &[][..],
        &[0xF6, 0x02, 0x01],
        &[0xEF, 0xF8, 0x01],
        &[0xF3, 0x05, b'a', b'b'],
        &[0xF5, 0x04, 0x02, b'h', b'i', b'u'],
        &[0xFA, 0x30],
        &[0xFE, 0x02, 0x01],
    ] {
        let (r, left) = dec(bytes, DecoderConfig::default());
        assert_eq!(r, Ok(None), "{bytes:02X?}");
        assert_eq!(left, bytes.len());
    }
}

#[test]
fn bad_codes_and_netbytes() {
    assert_eq!(
        dec(&[0xFF], DecoderConfig::default()).0,
        Err(VecError::BadTypeCode(0xFF))
    );
    let mut chain = vec![0xF3];
    chain.extend_from_slice(&[0xFF; 1000]);
    assert_eq!(
        dec(&chain, DecoderConfig::default()).0,
        Err(VecError::NetbytesTooDeep)
    );
    // Object id beyond i64.
    let cfg = DecoderConfig {
        allow_refs: true,
        ..DecoderConfig::default()
    };
    let mut id = vec![0xFC, 0xFF, 0x01];
    id.extend_from_slice(&[0xFF; 10]);
    assert_eq!(dec(&id, cfg).0, Err(VecError::ObjectIdOutOfRange));
}

#[test]
fn errors_consume_nothing_and_reset() {
    // Invalid UTF-8 is only found once the payload is there.
    let bad = [0xF5, 0x04, 0x01, 0xFF, b'u', b't', b'f', b'8', 0x01];
    let mut buf = BytesMut::from(&bad[..]);
    let mut d = Decoder::new(DecoderConfig::default());
    assert!(matches!(
        d.decode(&mut buf),
        Err(VecError::InvalidString(_))
    ));
    assert_eq!(&buf[..], &bad[..]);
    // The decoder starts over on the next call.
    let mut buf = BytesMut::from(&[0x02][..]);
    assert_eq!(d.decode(&mut buf), Ok(Some(Entity::Int(1))));
}

#[test]
fn large_payload_in_chunks_uses_length_hint() {
    let mut d = Decoder::new(DecoderConfig::default());
    let mut buf = BytesMut::from(&[0xF3, 0xF9, 0x0F, 0x41, 0x49][..]); // 1_000_000 bytes
    assert_eq!(d.decode(&mut buf), Ok(None));
    assert_eq!(d.min_bytes_needed(), 5 + 1_000_000);
    for _ in 0..1000 {
        buf.extend_from_slice(&[9; 1000]);
        let r = d.decode(&mut buf).unwrap();
        if buf.is_empty() {
            assert!(matches!(r, Some(Entity::Bytes(b)) if b.len() == 1_000_000));
            return;
        }
        assert!(r.is_none());
    }
    panic!("never completed");
}

#[test]
fn base2_floats_keep_their_form() {
    use versile::vec::VFloat;
    // FA 93 0 (Python's VFloat(93, base=2)) is not the canonical form of
    // 93.0, so it stays a VFloat and re-encodes to the same bytes; the
    // native value is still available exactly.
    let (r, _) = dec(&[0xFA, 0xBA, 0x00], DecoderConfig::default());
    let Ok(Some(Entity::VFloat(f))) = r else {
        panic!("{r:?}")
    };
    assert_eq!(f.to_f64_exact(), Some(93.0));
    let vf = |d: i64, e: i64| VFloat {
        digits: d.into(),
        base: 2.into(),
        exp: e.into(),
    };
    assert_eq!(vf(-3, -1075).to_f64_exact(), None);
    assert_eq!(vf(-2, -1075).to_f64_exact(), Some(-5e-324));
    assert_eq!(vf(1 << 20, -20).to_f64_exact(), Some(1.0));
    assert_eq!(vf(1, 1024).to_f64_exact(), None);
    assert_eq!(vf(3, 1022).to_f64_exact(), Some(3.0 * 2f64.powi(1022)));
    assert_eq!(vf((1 << 53) + 1, 0).to_f64_exact(), None);
    // Canonical FA decodes straight to Float.
    assert_eq!(
        dec(&[0xFA, 0x30, 0x09], DecoderConfig::default()).0,
        Ok(Some(Entity::Float(1.5)))
    );
}

// ---------------------------------------------------------------------------
// Decoded memory (`docs/design.md`, reliability: limits in what things cost us)
// ---------------------------------------------------------------------------

/// `F6 n` followed by `n` one-byte integers.
fn tiny_ints(n: usize) -> Vec<u8> {
    let mut b = vec![0xF6];
    versile::vec::netbytes::encode_posint_u64(n as u64, &mut b);
    b.extend(std::iter::repeat_n(0x01, n));
    b
}

/// A tuple of `outer` tuples of `inner` one-byte integers: no single count
/// is large, only the total.
fn nested_tiny_ints(outer: usize, inner: usize) -> Vec<u8> {
    let mut b = vec![0xF6];
    versile::vec::netbytes::encode_posint_u64(outer as u64, &mut b);
    for _ in 0..outer {
        b.extend_from_slice(&tiny_ints(inner));
    }
    b
}

fn decoded_too_large(r: &Result<Option<Entity>, VecError>) -> bool {
    matches!(r, Err(VecError::DecodedTooLarge { .. }))
}

#[test]
fn million_tiny_ints_refused_by_memory_not_wire() {
    // 1 MB on the wire: well within the wire limit, but a million nodes.
    let cfg = DecoderConfig {
        max_decoded_bytes: 1 << 20,
        ..DecoderConfig::default()
    };
    let flat = tiny_ints(1_000_000);
    assert!(flat.len() < DecoderConfig::default().max_entity_size);
    let (r, left) = dec(&flat, cfg);
    assert!(decoded_too_large(&r), "{r:?}");
    assert_eq!(left, flat.len(), "nothing consumed");
    // The same count spread over small tuples is refused as it is parsed,
    // and the charge never passes the limit on the way.
    let nested = nested_tiny_ints(1000, 1000);
    let mut d = Decoder::new(cfg);
    let mut buf = BytesMut::new();
    let mut refused = false;
    for chunk in nested.chunks(4096) {
        buf.extend_from_slice(chunk);
        match d.decode(&mut buf) {
            Ok(None) => assert!(d.charge() <= 1 << 20, "charge {}", d.charge()),
            Err(VecError::DecodedTooLarge { max, .. }) => {
                assert_eq!(max, 1 << 20);
                refused = true;
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(refused);
    // Without the limit the same bytes decode: the limit is what refused.
    let roomy = DecoderConfig {
        max_decoded_bytes: usize::MAX,
        ..DecoderConfig::default()
    };
    assert!(matches!(dec(&nested, roomy).0, Ok(Some(Entity::Tuple(t))) if t.len() == 1000));
}

#[test]
fn huge_integers_and_strings_are_charged() {
    // An integer with a 64 KiB magnitude, limit 16 KiB of memory.
    let cfg = DecoderConfig {
        max_decoded_bytes: 16 * 1024,
        str_decoding: Some(versile::vec::StrCodec::Utf8),
        ..DecoderConfig::default()
    };
    let mut big = vec![0xEF];
    versile::vec::netbytes::encode_posint(
        &num_bigint::BigUint::from_bytes_be(&[0x55; 65536]),
        &mut big,
    );
    assert!(decoded_too_large(&dec(&big, cfg).0));
    // A 64 KiB string: refused from its header alone (payload not sent).
    let mut s = vec![0xF4];
    versile::vec::netbytes::encode_posint_u64(65536, &mut s);
    assert!(decoded_too_large(&dec(&s, cfg).0));
    // A 64 KiB byte string is zero-copy: not charged.
    let mut b = vec![0xF3];
    versile::vec::netbytes::encode_posint_u64(65536, &mut b);
    b.extend_from_slice(&[7; 65536]);
    assert!(matches!(dec(&b, cfg).0, Ok(Some(Entity::Bytes(_)))));
}

#[test]
fn memory_room_pauses_and_resumes() {
    let bytes = nested_tiny_ints(10, 100);
    let expected = dec(&bytes, DecoderConfig::default()).0.unwrap().unwrap();
    let mut d = Decoder::new(DecoderConfig::default());
    let mut buf = BytesMut::from(&bytes[..]);
    d.set_memory_room(16 * 1024);
    // All bytes are there, yet decoding stops: the room is too small.
    assert_eq!(d.decode(&mut buf), Ok(None));
    assert!(d.is_waiting_for_memory());
    assert!(d.charge() <= 16 * 1024);
    assert_eq!(buf.len(), bytes.len());
    // More room: it continues from where it stopped.
    d.set_memory_room(usize::MAX);
    assert_eq!(d.decode(&mut buf), Ok(Some(expected)));
    assert!(!d.is_waiting_for_memory());
    assert!(buf.is_empty());
}
