//! Reading and parsing the header (the parsing itself is the `ppp` crate's).

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use ppp::{v1, v2, HeaderResult, PartialResult};
use tokio::io::AsyncReadExt;

use crate::io::BoxedIo;

/// What the PROXY header said, recorded in the request's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyInfo {
    /// The address the TCP connection came from (the balancer).
    pub proxy_addr: Option<SocketAddr>,
    /// The header: version and addresses.
    pub header: ParsedHeader,
}

/// A complete, valid header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedHeader {
    /// 1 (text) or 2 (binary).
    pub version: u8,
    /// Header length in bytes.
    pub len: usize,
    /// Client and server addresses, when the header carries TCP/IP
    /// addresses for a proxied connection (not for v1 `UNKNOWN`, v2
    /// `LOCAL`, UNIX or unspecified families).
    pub addresses: Option<(SocketAddr, SocketAddr)>,
}

/// Why a connection's PROXY header was refused.
#[derive(Debug, thiserror::Error)]
pub enum ProxyHeaderError {
    /// Not a valid v1 or v2 header.
    #[error("invalid PROXY protocol header: {0}")]
    Invalid(String),
    /// No complete header within the configured bound.
    #[error("PROXY protocol header longer than {0} bytes")]
    TooLong(usize),
    /// The stream ended before the header did.
    #[error("connection closed before the PROXY protocol header was complete")]
    Eof,
    /// The header did not arrive in time.
    #[error("no PROXY protocol header within {0:?}")]
    Timeout(Duration),
    /// Reading failed.
    #[error("reading the PROXY protocol header: {0}")]
    Io(#[from] std::io::Error),
}

/// The longest v1 header, CRLF included.
const V1_MAX_LEN: usize = 107;

/// Parse a header at the start of `buf`: `Ok(None)` if more bytes are
/// needed, the header if complete, an error if it can never become valid.
pub fn parse_header(buf: &[u8]) -> Result<Option<ParsedHeader>, ProxyHeaderError> {
    if buf.is_empty() {
        return Ok(None);
    }
    // `ppp`'s v1 parser reports some truncated lines ("... 5555 44") as
    // invalid rather than partial, so a v1 header is parsed only once its
    // line is complete: at most 107 bytes, CRLF included (spec §2.1).
    // Only that line goes to `ppp`: given more, it accepts `UNKNOWN` lines
    // ending in a bare LF and takes the bytes after it into the header, so
    // the header's length would depend on how the stream was split into
    // reads (found by fuzzing, `fuzz/fuzz_targets/proxy_header.rs`).
    let prefix = v1::PROTOCOL_PREFIX.as_bytes();
    let mut input = buf;
    if buf.starts_with(prefix) || prefix.starts_with(buf) {
        match buf.iter().take(V1_MAX_LEN).position(|&b| b == b'\n') {
            Some(lf) if lf > 0 && buf[lf - 1] == b'\r' => input = &buf[..=lf],
            Some(_) => {
                return Err(ProxyHeaderError::Invalid(
                    "v1 header not terminated by CRLF".into(),
                ))
            }
            None if buf.len() < V1_MAX_LEN => return Ok(None),
            None => {
                return Err(ProxyHeaderError::Invalid(
                    "v1 header longer than 107 bytes".into(),
                ))
            }
        }
    }
    let result = HeaderResult::parse(input);
    if result.is_incomplete() {
        return Ok(None);
    }
    match result {
        HeaderResult::V1(Ok(h)) if h.header.len() != input.len() => Err(ProxyHeaderError::Invalid(
            "v1 header ends before its CRLF".into(),
        )),
        HeaderResult::V1(Ok(h)) => Ok(Some(ParsedHeader {
            version: 1,
            len: h.header.len(),
            addresses: match h.addresses {
                v1::Addresses::Tcp4(a) => Some((
                    SocketAddr::from((a.source_address, a.source_port)),
                    SocketAddr::from((a.destination_address, a.destination_port)),
                )),
                v1::Addresses::Tcp6(a) => Some((
                    SocketAddr::from((a.source_address, a.source_port)),
                    SocketAddr::from((a.destination_address, a.destination_port)),
                )),
                v1::Addresses::Unknown => None,
            },
        })),
        HeaderResult::V2(Ok(h)) => Ok(Some(ParsedHeader {
            version: 2,
            len: h.len(),
            addresses: match (h.command, h.addresses) {
                (v2::Command::Proxy, v2::Addresses::IPv4(a)) => Some((
                    SocketAddr::from((a.source_address, a.source_port)),
                    SocketAddr::from((a.destination_address, a.destination_port)),
                )),
                (v2::Command::Proxy, v2::Addresses::IPv6(a)) => Some((
                    SocketAddr::from((a.source_address, a.source_port)),
                    SocketAddr::from((a.destination_address, a.destination_port)),
                )),
                _ => None,
            },
        })),
        HeaderResult::V1(Err(e)) => Err(ProxyHeaderError::Invalid(e.to_string())),
        HeaderResult::V2(Err(e)) => Err(ProxyHeaderError::Invalid(e.to_string())),
    }
}

/// Read a header from `io`: never more than `max` bytes, and no byte before
/// the header is known to be needed beyond what one read returns. Returns
/// the header and the bytes read past it.
pub(crate) async fn read_header(
    io: &mut BoxedIo,
    max: usize,
) -> Result<(ParsedHeader, BytesMut), ProxyHeaderError> {
    let mut buf = BytesMut::with_capacity(max.min(1024));
    loop {
        if let Some(h) = parse_header(&buf)? {
            // `ppp` reports the header's own length, at most what we have.
            let len = h.len.min(buf.len());
            buf.advance(len);
            return Ok((h, buf));
        }
        let room = max.saturating_sub(buf.len());
        if room == 0 {
            return Err(ProxyHeaderError::TooLong(max));
        }
        let n = (&mut *io).take(room as u64).read_buf(&mut buf).await?;
        if n == 0 {
            return Err(ProxyHeaderError::Eof);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_inputs_wait() {
        for input in [
            &b"P"[..],
            b"PROXY",
            b"PROXY TCP4 1.2.3.4",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1000 2000\r",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1000 ",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1000 20",
            b"\r\n\r\n",
            b"\r\n\r\n\0\r\nQUIT\n\x21",
        ] {
            assert!(
                matches!(parse_header(input), Ok(None)),
                "{input:?}: {:?}",
                parse_header(input)
            );
        }
    }

    #[test]
    fn garbage_is_refused() {
        for input in [
            &b"GET / HTTP/1.1\r\n"[..],
            b"vop_call_vec\n",
            b"PROXY TCP4 1.2.3.400 5.6.7.8 1 2\r\n",
            b"\r\n\r\n\0\r\nQUIT\n\x31\x11\x00\x0c",
            b"\xff\xfe",
        ] {
            assert!(parse_header(input).is_err(), "{input:?}");
        }
    }

    #[test]
    fn hostile_bytes_never_panic() {
        // A small xorshift generator: no extra dependency, reproducible.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let v2 = v2::PROTOCOL_PREFIX;
        for i in 0..20_000 {
            let len = (next() % 300) as usize;
            let mut buf: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            // Half the inputs start like a real header, to get past the
            // prefix checks.
            match i % 3 {
                0 => buf.splice(0..0, v2.iter().copied()).for_each(drop),
                1 => buf
                    .splice(0..0, b"PROXY TCP".iter().copied())
                    .for_each(drop),
                _ => {}
            }
            let _ = parse_header(&buf);
        }
    }
}
