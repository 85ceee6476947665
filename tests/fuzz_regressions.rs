//! Inputs found by the cargo-fuzz targets (`fuzz/`, see `fuzz/README.md`),
//! kept inline so that the fixed behaviour stays fixed on the stable
//! toolchain. Each test names its target and says what was wrong.

use versile_middleware::proxy_protocol::{parse_header, ParsedHeader};

/// The `proxy_header` target's property: a header split at any point
/// parses as incomplete until its last byte, and then always the same.
fn assert_prefix_stable(data: &[u8]) -> Option<ParsedHeader> {
    let h = match parse_header(data) {
        Ok(Some(h)) => h,
        _ => return None,
    };
    assert!(h.len <= data.len());
    for cut in 0..h.len {
        let r = parse_header(&data[..cut]);
        assert!(matches!(r, Ok(None)), "{cut} of {} bytes: {r:?}", h.len);
    }
    for end in h.len..=data.len() {
        assert_eq!(parse_header(&data[..end]).ok(), Some(Some(h)), "{end}");
    }
    Some(h)
}

/// `proxy_header`, crash-dc258935: `ppp` accepted a v1 `UNKNOWN` line
/// ending in a bare LF and took the bytes after it into the header, so the
/// header's length (57, 58 or 59 bytes here) depended on how many bytes the
/// read had returned: bytes of the connection's payload could be swallowed.
#[test]
fn proxy_v1_unknown_with_bare_lf_is_refused() {
    let data: &[u8] = b"PROXY UNKNOWN f.ff.\xd2\x99\xc5\x9cffff f.:fff..f:fffH\0\0\0f&65 65553 \
        \n\r5fff..\xd2\x99\xc5\x9cffff f.:fff..f:fY.168.0.1";
    assert!(parse_header(data).is_err());
    assert_prefix_stable(data);
    for lf_only in [
        &b"PROXY UNKNOWN\n"[..],
        b"PROXY UNKNOWN\nVOP",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",
    ] {
        assert!(parse_header(lf_only).is_err(), "{lf_only:?}");
    }
}

/// With CRLF, a v1 header is exactly its line, whatever follows it.
#[test]
fn proxy_v1_header_is_exactly_its_line() {
    for (data, len) in [
        (&b"PROXY UNKNOWN\r\n"[..], 15),
        (b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n\r5", 35),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1000 2000\r\nVOP_DRAFT", 38),
    ] {
        let h = assert_prefix_stable(data).expect("valid header");
        assert_eq!((h.version, h.len), (1, len), "{data:?}");
    }
}
