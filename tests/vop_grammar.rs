//! VOP handshake grammar tests: every case of `docs/protocol/vop-service.md` §2.3–2.5.

use bytes::BytesMut;
use proptest::prelude::*;
use versile::vop::{
    answer_line, client_hello, ClientHandshake, ServerHandshake, Transport, TransportSet, VopError,
    LINE_CAP,
};

const VTS: Transport = Transport::Vts;
const TLS: Transport = Transport::Tls;
const PLAIN: Transport = Transport::Plain;

fn set(s: &str) -> TransportSet {
    s.parse().expect("valid transport list")
}

/// Feed `input` to a fresh all-enabled server in one piece.
fn server_all(input: &[u8]) -> (Result<Option<Transport>, VopError>, BytesMut) {
    let mut hs = ServerHandshake::new(TransportSet::all()).expect("non-empty");
    let mut buf = BytesMut::from(input);
    let r = hs.feed(&mut buf);
    (r, buf)
}

// §2.4 examples table (server with all three enabled).

#[test]
fn s24_all_tokens_answers_vts() {
    let (r, buf) = server_all(b"VOP_DRAFT-0.8 TRANSPORTS:VTS:TLS:PLAIN\n");
    assert_eq!(r, Ok(Some(VTS)));
    assert!(buf.is_empty());
}

#[test]
fn s24_client_order_is_irrelevant() {
    assert_eq!(
        server_all(b"VOP_DRAFT-0.8 TRANSPORTS:PLAIN:TLS:VTS\n").0,
        Ok(Some(VTS))
    );
}

#[test]
fn s24_duplicate_closes() {
    assert_eq!(
        server_all(b"VOP_DRAFT-0.8 TRANSPORTS:PLAIN:PLAIN\n").0,
        Err(VopError::DuplicateToken(PLAIN))
    );
}

#[test]
fn s24_lower_case_closes() {
    assert!(matches!(
        server_all(b"VOP_DRAFT-0.8 TRANSPORTS:plain\n").0,
        Err(VopError::UnknownToken(t)) if t == "plain"
    ));
}

#[test]
fn s24_unknown_token_closes() {
    assert!(matches!(
        server_all(b"VOP_DRAFT-0.8 TRANSPORTS:PLAIN:FOO\n").0,
        Err(VopError::UnknownToken(t)) if t == "FOO"
    ));
}

#[test]
fn s24_empty_list_closes() {
    assert_eq!(
        server_all(b"VOP_DRAFT-0.8 TRANSPORTS:\n").0,
        Err(VopError::EmptyList)
    );
    // A trailing colon leaves one empty piece, which is no token.
    assert!(matches!(
        server_all(b"VOP_DRAFT-0.8 TRANSPORTS:VTS:\n").0,
        Err(VopError::UnknownToken(t)) if t.is_empty()
    ));
}

#[test]
fn s24_missing_colon_closes() {
    assert!(matches!(
        server_all(b"VOP_DRAFT-0.8 TRANSPORTS\n").0,
        Err(VopError::BadPrefix { .. })
    ));
}

#[test]
fn s24_crlf_closes() {
    assert!(matches!(
        server_all(b"VOP_DRAFT-0.8 TRANSPORTS:PLAIN\r\n").0,
        Err(VopError::UnknownToken(t)) if t == "PLAIN\\r"
    ));
}

#[test]
fn s24_other_version_closes() {
    assert!(matches!(
        server_all(b"VOP_DRAFT-0.9 TRANSPORTS:PLAIN\n").0,
        Err(VopError::BadPrefix { .. })
    ));
}

#[test]
fn s24_no_lf_then_eof_closes() {
    let mut hs = ServerHandshake::new(TransportSet::all()).expect("non-empty");
    let mut buf = BytesMut::from(&b"VOP_DRAFT-0.8 TRANSPORTS:PLAIN"[..]);
    assert_eq!(hs.feed(&mut buf), Ok(None));
    assert_eq!(hs.feed_eof(&mut buf), Err(VopError::Eof { buffered: 30 }));
    // The failure sticks.
    assert_eq!(hs.feed(&mut buf), Err(VopError::Eof { buffered: 30 }));
}

#[test]
fn s24_cap_63_waits_64_fails_at_once() {
    let (r, buf) = server_all(&[b'X'; 63]);
    assert_eq!(r, Ok(None));
    assert_eq!(buf.len(), 63);
    let (r, _) = server_all(&[b'X'; 64]);
    assert_eq!(r, Err(VopError::LineTooLong { cap: LINE_CAP }));
    let (r, _) = server_all(&[b'X'; 70]);
    assert_eq!(r, Err(VopError::LineTooLong { cap: LINE_CAP }));
}

#[test]
fn s24_cap_applies_byte_at_a_time() {
    let mut hs = ServerHandshake::new(TransportSet::all()).expect("non-empty");
    let mut buf = BytesMut::new();
    for i in 0..64 {
        buf.extend_from_slice(b"X");
        let r = hs.feed(&mut buf);
        if i < 63 {
            assert_eq!(r, Ok(None), "byte {i}");
        } else {
            assert_eq!(r, Err(VopError::LineTooLong { cap: LINE_CAP }));
        }
    }
}

#[test]
fn s24_line_of_64_incl_lf_is_within_cap() {
    // 63 bytes + LF = 64: complete line (then rejected for its content only).
    let mut line = vec![b'X'; 63];
    line.push(b'\n');
    assert!(matches!(
        server_all(&line).0,
        Err(VopError::BadPrefix { .. })
    ));
    // A syntactically valid hello padded to exactly 64 bytes incl. LF is
    // impossible (the longest is 39), but one that goes over closes on the cap.
    let long = [
        &b"VOP_DRAFT-0.8 TRANSPORTS:PLAIN"[..],
        &b":PLAIN".repeat(6),
        b"\n",
    ]
    .concat();
    assert_eq!(
        server_all(&long).0,
        Err(VopError::LineTooLong { cap: LINE_CAP })
    );
}

#[test]
fn s24_no_overlap_closes() {
    let mut hs = ServerHandshake::new(set("vts")).expect("non-empty");
    let mut buf = BytesMut::from(&b"VOP_DRAFT-0.8 TRANSPORTS:PLAIN\n"[..]);
    assert_eq!(
        hs.feed(&mut buf),
        Err(VopError::NoCommonTransport {
            offered: set("plain"),
            enabled: set("vts"),
        })
    );
}

#[test]
fn s24_byte_at_a_time_works() {
    let hello = b"VOP_DRAFT-0.8 TRANSPORTS:TLS:PLAIN\n";
    let mut hs = ServerHandshake::new(TransportSet::all()).expect("non-empty");
    let mut buf = BytesMut::new();
    for (i, b) in hello.iter().enumerate() {
        buf.extend_from_slice(&[*b]);
        let r = hs.feed(&mut buf);
        if i + 1 < hello.len() {
            assert_eq!(r, Ok(None));
        } else {
            assert_eq!(r, Ok(Some(TLS)));
        }
    }
    assert!(buf.is_empty());
}

#[test]
fn s29_leftover_bytes_stay_in_buffer() {
    let (r, buf) = server_all(b"VOP_DRAFT-0.8 TRANSPORTS:PLAIN\nVEC_DRAFT-0.8-utf8\n");
    assert_eq!(r, Ok(Some(PLAIN)));
    assert_eq!(&buf[..], b"VEC_DRAFT-0.8-utf8\n");
}

#[test]
fn server_rejects_empty_enabled_set() {
    assert!(matches!(
        ServerHandshake::new(TransportSet::empty()),
        Err(VopError::EmptyTransportSet)
    ));
}

#[test]
fn answer_lines_match_spec_sizes() {
    assert_eq!(answer_line(VTS), b"VOP_DRAFT-0.8 USE_TRANSPORT:VTS\n");
    assert_eq!(answer_line(TLS), b"VOP_DRAFT-0.8 USE_TRANSPORT:TLS\n");
    assert_eq!(answer_line(PLAIN), b"VOP_DRAFT-0.8 USE_TRANSPORT:PLAIN\n");
    assert_eq!(answer_line(VTS).len(), 32);
    assert_eq!(answer_line(PLAIN).len(), 34);
}

// §2.3 matrix: server enables rows, client offers columns; None = close.

#[test]
fn s23_matrix() {
    let cols = [
        "vts",
        "tls",
        "plain",
        "vts+tls",
        "vts+plain",
        "tls+plain",
        "vts+tls+plain",
    ];
    let n = None;
    let rows: [(&str, [Option<Transport>; 7]); 7] = [
        ("vts", [Some(VTS), n, n, Some(VTS), Some(VTS), n, Some(VTS)]),
        ("tls", [n, Some(TLS), n, Some(TLS), n, Some(TLS), Some(TLS)]),
        (
            "plain",
            [n, n, Some(PLAIN), n, Some(PLAIN), Some(PLAIN), Some(PLAIN)],
        ),
        (
            "vts+tls",
            [
                Some(VTS),
                Some(TLS),
                n,
                Some(VTS),
                Some(VTS),
                Some(TLS),
                Some(VTS),
            ],
        ),
        (
            "vts+plain",
            [
                Some(VTS),
                n,
                Some(PLAIN),
                Some(VTS),
                Some(VTS),
                Some(PLAIN),
                Some(VTS),
            ],
        ),
        (
            "tls+plain",
            [
                n,
                Some(TLS),
                Some(PLAIN),
                Some(TLS),
                Some(PLAIN),
                Some(TLS),
                Some(TLS),
            ],
        ),
        (
            "vts+tls+plain",
            [
                Some(VTS),
                Some(TLS),
                Some(PLAIN),
                Some(VTS),
                Some(VTS),
                Some(TLS),
                Some(VTS),
            ],
        ),
    ];
    for (server, expected_row) in rows {
        for (client, expected) in cols.iter().zip(expected_row) {
            // Full exchange through both state machines.
            let mut srv = ServerHandshake::new(set(server)).expect("non-empty");
            let mut cli = ClientHandshake::new(set(client)).expect("non-empty");
            let mut to_server = BytesMut::from(&cli.hello()[..]);
            let got = match srv.feed(&mut to_server) {
                Ok(Some(t)) => {
                    let mut to_client = BytesMut::from(answer_line(t));
                    assert_eq!(cli.feed(&mut to_client), Ok(Some(t)));
                    Some(t)
                }
                Ok(None) => panic!("complete hello must give a result"),
                Err(e) => {
                    assert!(matches!(e, VopError::NoCommonTransport { .. }));
                    None
                }
            };
            assert_eq!(got, expected, "server {server}, client {client}");
            assert_eq!(set(server).preferred(set(client)), expected);
        }
    }
}

// §2.2 / §2.9 client rule 1: hello order and empty set.

#[test]
fn client_hello_order_and_sizes() {
    assert_eq!(
        client_hello(TransportSet::all()).expect("non-empty"),
        b"VOP_DRAFT-0.8 TRANSPORTS:VTS:TLS:PLAIN\n"
    );
    assert_eq!(
        client_hello(TransportSet::all()).expect("non-empty").len(),
        39
    );
    assert_eq!(
        client_hello(set("plain,vts")).expect("non-empty"),
        b"VOP_DRAFT-0.8 TRANSPORTS:VTS:PLAIN\n"
    );
    assert_eq!(
        client_hello(set("vts")).expect("non-empty"),
        b"VOP_DRAFT-0.8 TRANSPORTS:VTS\n"
    );
    assert_eq!(
        client_hello(TransportSet::empty()),
        Err(VopError::EmptyTransportSet)
    );
    assert!(matches!(
        ClientHandshake::new(TransportSet::empty()),
        Err(VopError::EmptyTransportSet)
    ));
}

// §2.5 client-side answer cases.

fn client_feed(offered: &str, answer: &[u8]) -> (Result<Option<Transport>, VopError>, BytesMut) {
    let mut cli = ClientHandshake::new(set(offered)).expect("non-empty");
    let mut buf = BytesMut::from(answer);
    let r = cli.feed(&mut buf);
    (r, buf)
}

#[test]
fn s25_valid_answers() {
    for t in [VTS, TLS, PLAIN] {
        assert_eq!(client_feed("vts,tls,plain", answer_line(t)).0, Ok(Some(t)));
    }
}

#[test]
fn s25_plain_to_vts_only_client_closes() {
    assert_eq!(
        client_feed("vts", b"VOP_DRAFT-0.8 USE_TRANSPORT:PLAIN\n").0,
        Err(VopError::AnswerNotOffered {
            answer: PLAIN,
            offered: set("vts"),
        })
    );
}

#[test]
fn s25_lower_case_closes() {
    assert!(matches!(
        client_feed("vts,tls,plain", b"VOP_DRAFT-0.8 USE_TRANSPORT:plain\n").0,
        Err(VopError::UnknownToken(_))
    ));
}

#[test]
fn s25_crlf_closes() {
    assert!(matches!(
        client_feed("plain", b"VOP_DRAFT-0.8 USE_TRANSPORT:PLAIN\r\n").0,
        Err(VopError::UnknownToken(t)) if t == "PLAIN\\r"
    ));
}

#[test]
fn s25_use_transports_closes() {
    assert!(matches!(
        client_feed("plain", b"VOP_DRAFT-0.8 USE_TRANSPORTS:PLAIN\n").0,
        Err(VopError::BadPrefix { .. })
    ));
}

#[test]
fn s25_garbage_closes() {
    assert!(matches!(
        client_feed("vts,tls,plain", b"garbage\n").0,
        Err(VopError::BadPrefix { .. })
    ));
}

#[test]
fn s25_two_tokens_close() {
    assert!(matches!(
        client_feed("vts,tls", b"VOP_DRAFT-0.8 USE_TRANSPORT:VTS:TLS\n").0,
        Err(VopError::UnknownToken(_))
    ));
}

#[test]
fn s25_cap_and_eof() {
    assert_eq!(client_feed("vts", &[b'V'; 63]).0, Ok(None));
    assert_eq!(
        client_feed("vts", &[b'V'; 64]).0,
        Err(VopError::LineTooLong { cap: LINE_CAP })
    );
    let mut cli = ClientHandshake::new(set("vts")).expect("non-empty");
    let mut buf = BytesMut::from(&b"VOP_DRAFT-0.8 USE_TRANSPORT:VT"[..]);
    assert_eq!(cli.feed_eof(&mut buf), Err(VopError::Eof { buffered: 30 }));
}

#[test]
fn s25_leftover_vec_hello_is_kept() {
    // A Python PLAIN server sends its VEC hello in the same segment (§2.7).
    let (r, buf) = client_feed(
        "plain",
        b"VOP_DRAFT-0.8 USE_TRANSPORT:PLAIN\nVEC_DRAFT-0.8-utf8\n",
    );
    assert_eq!(r, Ok(Some(PLAIN)));
    assert_eq!(&buf[..], b"VEC_DRAFT-0.8-utf8\n");
}

#[test]
fn s25_byte_at_a_time() {
    let mut cli = ClientHandshake::new(set("vts")).expect("non-empty");
    let answer = answer_line(VTS);
    let mut buf = BytesMut::new();
    for (i, b) in answer.iter().enumerate() {
        buf.extend_from_slice(&[*b]);
        let r = cli.feed(&mut buf);
        assert_eq!(
            r,
            if i + 1 < answer.len() {
                Ok(None)
            } else {
                Ok(Some(VTS))
            }
        );
    }
    // Done: repeats the result, leaves later bytes alone.
    buf.extend_from_slice(b"VTS_DRAFT");
    assert_eq!(cli.feed(&mut buf), Ok(Some(VTS)));
    assert_eq!(&buf[..], b"VTS_DRAFT");
}

fn arb_set() -> impl Strategy<Value = TransportSet> {
    (1u8..8).prop_map(|bits| {
        Transport::ALL
            .into_iter()
            .enumerate()
            .filter(|(i, _)| bits & (1 << i) != 0)
            .map(|(_, t)| t)
            .collect()
    })
}

proptest! {
    /// Feeding any bytes in any chunking never panics, never consumes more
    /// than one line, and never consumes anything on `Ok(None)`.
    #[test]
    fn server_feed_never_panics(
        enabled in arb_set(),
        chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..80), 0..6),
    ) {
        let mut hs = ServerHandshake::new(enabled).expect("non-empty");
        let mut buf = BytesMut::new();
        for chunk in chunks {
            buf.extend_from_slice(&chunk);
            let before = buf.len();
            match hs.feed(&mut buf) {
                Ok(None) => prop_assert_eq!(buf.len(), before),
                Ok(Some(t)) => prop_assert!(enabled.contains(t)),
                Err(_) => {}
            }
        }
        let _ = hs.feed_eof(&mut buf);
    }

    #[test]
    fn client_feed_never_panics(
        offered in arb_set(),
        chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..80), 0..6),
    ) {
        let mut hs = ClientHandshake::new(offered).expect("non-empty");
        let mut buf = BytesMut::new();
        for chunk in chunks {
            buf.extend_from_slice(&chunk);
            if let Ok(Some(t)) = hs.feed(&mut buf) {
                prop_assert!(offered.contains(t));
            }
        }
        let _ = hs.feed_eof(&mut buf);
    }

    /// Every valid exchange, split anywhere, negotiates `preferred`.
    #[test]
    fn any_split_negotiates(enabled in arb_set(), offered in arb_set(), split in 0usize..40) {
        let hello = client_hello(offered).expect("non-empty");
        let split = split.min(hello.len());
        let mut srv = ServerHandshake::new(enabled).expect("non-empty");
        let mut buf = BytesMut::from(&hello[..split]);
        let first = srv.feed(&mut buf);
        if split < hello.len() {
            prop_assert_eq!(first, Ok(None));
        }
        buf.extend_from_slice(&hello[split..]);
        buf.extend_from_slice(b"rest");
        match enabled.preferred(offered) {
            Some(t) => {
                prop_assert_eq!(srv.feed(&mut buf), Ok(Some(t)));
                prop_assert_eq!(&buf[..], b"rest");
            }
            None => prop_assert!(srv.feed(&mut buf).is_err()),
        }
    }
}
