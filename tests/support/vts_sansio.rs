//! Sans-IO VTS connections in memory: taking a connection's pending
//! output, and moving bytes between a client and a server until neither
//! has any left (the VTS counterpart of [`super::links`]).

use bytes::BytesMut;
use versile::vts::{VtsConnection, VtsError};

/// The bytes `c` has ready to send, consumed.
pub fn take_output(c: &mut VtsConnection) -> Vec<u8> {
    let out = c.pending_output().to_vec();
    c.consume_output(out.len());
    out
}

/// Moves bytes between client `c` and server `s` until neither has output.
pub fn pump(c: &mut VtsConnection, s: &mut VtsConnection) -> Result<(), VtsError> {
    loop {
        let co = take_output(c);
        let so = take_output(s);
        if co.is_empty() && so.is_empty() {
            return Ok(());
        }
        s.receive(&mut BytesMut::from(&co[..]))?;
        c.receive(&mut BytesMut::from(&so[..]))?;
    }
}
