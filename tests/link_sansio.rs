//! Two sans-IO links wired together in memory, with time passed in:
//! handshake, keep-alive grant and expiry, authorization, timeouts.

use std::time::{Duration, Instant};

use versile::vec::{Decoder, DecoderConfig, Entity, StrCodec, WireRef};
use versile::vol::{CallKind, Event, Link, LinkConfig, LinkError, Outcome, Ref};

mod support;

use support::links::{take_established_gateway, LinkPair, NumberedObj};

#[test]
fn handshake_and_call() {
    let t0 = Instant::now();
    let mut p = LinkPair::new(LinkConfig::default(), LinkConfig::default(), t0);
    let (ra, rb) = p.pump(t0);
    ra.unwrap();
    rb.unwrap();
    let gw_b = take_established_gateway(&mut p.a).expect("a established");
    take_established_gateway(&mut p.b).expect("b established");
    let id =
        p.a.call(gw_b, CallKind::Normal, vec![Entity::String("echo".into())])
            .unwrap();
    p.pump_ok(t0);
    match p.b.poll_event() {
        Some(Event::Call {
            call_id,
            target,
            args,
            kind,
        }) => {
            assert_eq!(target, NumberedObj(2));
            assert_eq!(args, vec![Entity::String("echo".into())]);
            p.b.respond(&call_id, kind, Outcome::Result(Entity::Int(7)))
                .unwrap();
        }
        other => panic!("expected a call, got {other:?}"),
    }
    p.pump_ok(t0);
    match p.a.poll_event() {
        Some(Event::Response { call_id, outcome }) => {
            assert_eq!(call_id, id);
            assert_eq!(outcome, Outcome::Result(Entity::Int(7)));
        }
        other => panic!("expected a response, got {other:?}"),
    }
    // Passing our own object registers it; passing it back resolves to it.
    p.a.call(
        gw_b,
        CallKind::Normal,
        vec![Entity::Ref(Ref::Local(NumberedObj(9)))],
    )
    .unwrap();
    p.pump_ok(t0);
    match p.b.poll_event() {
        Some(Event::Call { args, .. }) => assert!(matches!(args[0], Entity::Ref(Ref::Remote(_)))),
        other => panic!("{other:?}"),
    }
}

#[test]
fn keep_alive_is_granted_and_expires_on_silence() {
    let t0 = Instant::now();
    let ca = LinkConfig {
        keep_alive_request: Some(Duration::from_millis(1000)),
        ..LinkConfig::default()
    };
    let cb = LinkConfig {
        keep_alive_min_send: Duration::from_millis(500),
        ..LinkConfig::default()
    };
    let mut p = LinkPair::new(ca, cb, t0);
    let (ra, rb) = p.pump(t0);
    ra.unwrap();
    rb.unwrap();
    take_established_gateway(&mut p.a).expect("a established");
    take_established_gateway(&mut p.b).expect("b established");
    // b sends keep-alive traffic (never KEEP_ALIVE itself, docs/protocol/vol.md §8) when
    // idle for the granted 1000 ms; a stays alive.
    let mut now = t0;
    for _ in 0..10 {
        now += Duration::from_millis(1000);
        p.b.handle_timeout(now).unwrap();
        p.b.on_output_written(now);
        let out = p.b.take_output();
        assert!(!out.is_empty(), "b keeps the link alive");
        let mut dec = Decoder::new(DecoderConfig {
            str_decoding: Some(StrCodec::Utf8),
            allow_refs: true,
            ..DecoderConfig::default()
        });
        let mut buf = out.clone();
        let e: Entity<WireRef> = dec.decode(&mut buf).unwrap().unwrap();
        let t = e.as_tuple().unwrap();
        assert_eq!(t[1], Entity::Int(7), "NOTIFY_DEREF (0, 0), not KEEP_ALIVE");
        p.a_in.extend_from_slice(&out);
        p.a.receive(&mut p.a_in, now).unwrap();
        p.a.handle_timeout(now).unwrap();
    }
    // Silence beyond 1.5 × 1000 ms: a gives up.
    now += Duration::from_millis(1600);
    assert!(matches!(
        p.a.handle_timeout(now),
        Err(LinkError::KeepAliveExpired)
    ));
}

#[test]
fn rejected_peer_gets_no_handshake_object() {
    let t0 = Instant::now();
    let cb = LinkConfig {
        authorize: true,
        ..LinkConfig::default()
    };
    let mut p = LinkPair::new(LinkConfig::default(), cb, t0);
    p.pump_ok(t0);
    assert!(matches!(p.b.poll_event(), Some(Event::Authorize { .. })));
    assert!(matches!(p.b.authorize(false), Err(LinkError::Rejected)));
    assert!(p.b.take_output().is_empty(), "nothing sent after rejection");
    assert!(!p.a.is_established());
}

#[test]
fn handshake_times_out() {
    let t0 = Instant::now();
    let mut a: Link<NumberedObj> = Link::new(LinkConfig::default(), NumberedObj(1), t0);
    let deadline = a.poll_timeout().expect("a handshake deadline");
    assert!(a
        .handle_timeout(deadline - Duration::from_millis(1))
        .is_ok());
    assert!(matches!(
        a.handle_timeout(deadline),
        Err(LinkError::HandshakeTimeout)
    ));
}

#[test]
fn absurd_keep_alive_intervals_do_not_panic() {
    let t0 = Instant::now();
    let ca = LinkConfig {
        keep_alive_request: Some(Duration::from_millis(i64::MAX as u64)),
        ..LinkConfig::default()
    };
    let mut p = LinkPair::new(ca, LinkConfig::default(), t0);
    p.pump_ok(t0);
    take_established_gateway(&mut p.a).expect("a established");
    take_established_gateway(&mut p.b).expect("b established");
    let later = t0 + Duration::from_secs(3600 * 24 * 365);
    let _ = p.a.poll_timeout();
    let _ = p.b.poll_timeout();
    p.a.handle_timeout(later).unwrap();
    p.b.handle_timeout(later).unwrap();
}

#[test]
fn a_huge_keep_alive_grant_still_expires() {
    // b grants 10 days; a waits at most its `keep_alive_max_grant`
    // (600 s) × 1.5 of silence, so a peer cannot switch detection off.
    let t0 = Instant::now();
    let ca = LinkConfig {
        keep_alive_request: Some(Duration::from_millis(1000)),
        ..LinkConfig::default()
    };
    let cb = LinkConfig {
        keep_alive_min_send: Duration::from_secs(10 * 24 * 3600),
        ..LinkConfig::default()
    };
    assert_eq!(ca.keep_alive_max_grant, Duration::from_secs(600));
    let mut p = LinkPair::new(ca, cb, t0);
    p.pump_ok(t0);
    take_established_gateway(&mut p.a).expect("a established");
    let expiry = p.a.poll_timeout().expect("a has an expiry");
    assert!(expiry <= t0 + Duration::from_secs(900), "{:?}", expiry - t0);
    assert!(matches!(
        p.a.handle_timeout(t0 + Duration::from_secs(900)),
        Err(LinkError::KeepAliveExpired)
    ));
}
