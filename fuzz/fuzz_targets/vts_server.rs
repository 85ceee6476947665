//! The server side of the VTS handshake (`docs/protocol/vts.md` §3, §8 "Server"), with the
//! fuzzer as the client: a number of valid client steps chosen by the input
//! (M1, M3, M5, then records) come first, then the input's own bytes, fed in
//! chunks. The randoms and keys are fixed, so the valid prefix always
//! completes the handshake (see `versile_fuzz::HandshakeInput`). Must never
//! panic; an error must be final.
#![no_main]

use libfuzzer_sys::fuzz_target;
use versile_fuzz::{drive, new_server, transcript, HandshakeInput};

fuzz_target!(|data: &[u8]| {
    let Some(input) = HandshakeInput::parse(data) else {
        return;
    };
    let mut server = new_server();
    drive(&mut server, &transcript(input.variant).client, &input);
});
