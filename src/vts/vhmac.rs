//! VHMAC: the VCA "HMAC", which pads the key to the hash's *digest* size
//! instead of its block size (`docs/protocol/vts.md` §2.2). Not RFC 2104; the `hmac`
//! crate cannot produce it. Used only inside VTS (§10 #10).

use super::hash::HashAlg;

/// `VHMAC_H(key, parts[0] || parts[1] || ...)` (`docs/protocol/vts.md` §2.2 steps 1–4).
pub fn vhmac(hash: HashAlg, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let l = hash.output_len();
    // Step 1: long keys are hashed first.
    let hashed;
    let key = if key.len() > l {
        hashed = hash.digest(&[key]);
        &hashed[..]
    } else {
        key
    };
    // Step 2: zero-pad to exactly L bytes.
    let mut ipad = vec![0x36u8; l];
    let mut opad = vec![0x5cu8; l];
    for (i, k) in key.iter().enumerate() {
        ipad[i] ^= k;
        opad[i] ^= k;
    }
    // Steps 3–4.
    let mut inner_parts: Vec<&[u8]> = Vec::with_capacity(parts.len() + 1);
    inner_parts.push(&ipad);
    inner_parts.extend_from_slice(parts);
    let inner = hash.digest(&inner_parts);
    hash.digest(&[&opad, &inner])
}
