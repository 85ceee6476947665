//! The PROXY protocol header parser (`versile_middleware::proxy_protocol`,
//! HAProxy's `proxy-protocol.txt`) on arbitrary bytes. Must never panic,
//! and must be consistent across reads: a header split at any point must
//! parse as "incomplete" until its last byte arrived (else the streaming
//! reader would refuse a valid header), and bytes after it must not change
//! the result.
#![no_main]

use libfuzzer_sys::fuzz_target;
use versile_middleware::proxy_protocol::parse_header;

fuzz_target!(|data: &[u8]| {
    let Ok(Some(h)) = parse_header(data) else {
        return;
    };
    assert!(h.version == 1 || h.version == 2);
    assert!(
        h.len > 0 && h.len <= data.len(),
        "len {} of {}",
        h.len,
        data.len()
    );
    let header = &data[..h.len];
    for cut in 0..h.len {
        let r = parse_header(&header[..cut]);
        assert!(
            matches!(r, Ok(None)),
            "prefix of {cut} bytes of a valid {}-byte header: {r:?}",
            h.len
        );
    }
    assert_eq!(parse_header(header).ok(), Some(Some(h)));
});
