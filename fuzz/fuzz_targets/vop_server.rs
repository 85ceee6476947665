//! Arbitrary client bytes into the server side of the VOP handshake
//! (`docs/protocol/vop-service.md` §2.4): fed in chunks whose sizes come from the input,
//! then EOF. Must never panic; a result must be consistent (no answer after
//! an error, and a 64-byte line without LF is always an error).
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use versile::vop::{ServerHandshake, TransportSet};

fuzz_target!(|data: &[u8]| {
    let Some((&chunking, data)) = data.split_first() else {
        return;
    };
    let enabled: TransportSet = "vts,tls,plain".parse().expect("transport set");
    let mut hs = ServerHandshake::new(enabled).expect("non-empty set");
    let mut buf = BytesMut::new();
    let chunk = usize::from(chunking % 16) + 1;
    let mut done = false;
    for piece in data.chunks(chunk) {
        buf.extend_from_slice(piece);
        match hs.feed(&mut buf) {
            Ok(None) => assert!(buf.len() < 64, "64 bytes without LF must fail"),
            Ok(Some(_)) | Err(_) => {
                done = true;
                break;
            }
        }
    }
    if !done {
        let _ = hs.feed_eof(&mut buf);
    }
});
