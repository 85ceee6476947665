//! Arbitrary server bytes into the client side of the VOP handshake
//! (`docs/protocol/vop-service.md` §2.5): the first byte picks the offered transports and
//! the chunk size, then the answer is fed in chunks and EOF. Must never
//! panic; an answer must be one we offered, the line cap holds, bytes after
//! the LF are left for the transport, and the outcome is sticky.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use versile::vop::{parse_server_answer, ClientHandshake, Transport, TransportSet};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, data)) = data.split_first() else {
        return;
    };
    let offered: TransportSet = [Transport::Vts, Transport::Tls, Transport::Plain]
        .into_iter()
        .enumerate()
        .filter(|(i, _)| sel & (1 << i) != 0)
        .map(|(_, t)| t)
        .collect();
    let Ok(mut hs) = ClientHandshake::new(offered) else {
        assert!(offered.is_empty());
        return;
    };
    if let Some(line) = data.strip_suffix(b"\n") {
        if let Ok(t) = parse_server_answer(line, offered) {
            assert!(offered.contains(t));
        }
    }
    let chunk = usize::from(sel >> 3) + 1;
    let mut buf = BytesMut::new();
    let mut fed = 0;
    for piece in data.chunks(chunk) {
        buf.extend_from_slice(piece);
        fed += piece.len();
        match hs.feed(&mut buf) {
            Ok(None) => assert!(buf.len() < 64, "64 bytes without LF must fail"),
            Ok(Some(t)) => {
                assert!(offered.contains(t), "{t} was not offered");
                // Exactly the line (LF included) was consumed.
                let lf = data.iter().position(|&b| b == b'\n').expect("an LF");
                assert_eq!(&buf[..], &data[lf + 1..fed]);
                assert_eq!(hs.feed(&mut buf).ok(), Some(Some(t)), "sticky");
                return;
            }
            Err(e) => {
                let again = hs.feed(&mut buf).expect_err("sticky error");
                assert_eq!(e.to_string(), again.to_string());
                return;
            }
        }
    }
    let _ = hs.feed_eof(&mut buf);
});
