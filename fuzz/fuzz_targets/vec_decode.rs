//! Feed arbitrary bytes to the VEC decoder in chunks (`cargo fuzz run vec_decode`).
//!
//! The first input byte picks the chunk size and the decoder context; every
//! entity that decodes must re-encode and decode to the same entity.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use versile::vec::{encode, Decoder, DecoderConfig, EncodeConfig, StrCodec};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, input)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(sel & 0x1F) + 1;
    let codec = match (sel >> 5) & 3 {
        0 => None,
        1 | 3 => Some(StrCodec::Utf8),
        _ => Some(StrCodec::Utf16),
    };
    let refs = sel & 0x80 != 0;
    let dcfg = DecoderConfig {
        str_decoding: codec,
        allow_refs: refs,
        max_entity_size: 1 << 16,
        max_depth: 64,
        max_decoded_bytes: 1 << 22,
    };
    let ecfg = EncodeConfig {
        str_encoding: codec,
        allow_refs: refs,
    };
    let mut dec = Decoder::new(dcfg);
    let mut buf = BytesMut::new();
    for piece in input.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match dec.decode(&mut buf) {
                Ok(Some(entity)) => {
                    let mut out = BytesMut::new();
                    encode(&entity, &ecfg, &mut out).expect("decoded entity re-encodes");
                    // Re-encoding may grow (e.g. UTF-8 text re-written as UTF-16).
                    let roomy = DecoderConfig {
                        max_entity_size: usize::MAX,
                        max_decoded_bytes: usize::MAX,
                        ..dcfg
                    };
                    let again = Decoder::new(roomy).decode(&mut out).expect("re-decodes");
                    assert_eq!(again.as_ref(), Some(&entity));
                    assert!(out.is_empty());
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
});
