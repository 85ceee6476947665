//! The client side of the VTS handshake (`docs/protocol/vts.md` §3, §8 "Client"), with the
//! fuzzer as the server: a number of valid server steps chosen by the input
//! (M2, M4, M6 in client-key mode, then records) come first, then the
//! input's own bytes, fed in chunks (see `versile_fuzz::HandshakeInput`).
//! Must never panic; an error must be final.
#![no_main]

use libfuzzer_sys::fuzz_target;
use versile_fuzz::{drive, new_client, transcript, HandshakeInput};

fuzz_target!(|data: &[u8]| {
    let Some(input) = HandshakeInput::parse(data) else {
        return;
    };
    let mut client = new_client(input.variant);
    drive(&mut client, &transcript(input.variant).server, &input);
});
