//! Bounds of the sans-IO link (`docs/protocol/vol.md` §5.1, §6): the export and import
//! table limits ([`TableLimits`]) and entity-at-a-time input
//! ([`Link::receive_next`]), on two links wired together in memory.

use std::time::Instant;

use versile::vec::Entity;
use versile::vol::{
    CallId, CallKind, CallSendError, Event, LinkConfig, LinkError, Outcome, Received, Ref,
    TableLimits,
};

mod support;

use support::links::{LinkPair, NumberedObj};

fn tables(max_exports: usize, max_imports: usize) -> LinkConfig {
    LinkConfig {
        tables: TableLimits {
            max_exports,
            max_imports,
        },
        ..LinkConfig::default()
    }
}

/// `a` calls `b`'s gateway once; `b` answers with `outcome`. Returns what
/// reached `a`.
fn call_answered_with(
    p: &mut LinkPair,
    gw_b: i64,
    outcome: Outcome<Ref<NumberedObj>>,
) -> Outcome<Ref<NumberedObj>> {
    let t0 = Instant::now();
    let id =
        p.a.call(gw_b, CallKind::Normal, vec![Entity::String("get".into())])
            .unwrap();
    p.pump_ok(t0);
    let Some(Event::Call { call_id, kind, .. }) = p.b.poll_event() else {
        panic!("b got no call")
    };
    p.b.respond(&call_id, kind, outcome).unwrap();
    p.pump_ok(t0);
    match p.a.poll_event() {
        Some(Event::Response { call_id, outcome }) if call_id == id => outcome,
        other => panic!("expected the response to {id}, got {other:?}"),
    }
}

#[test]
fn export_limit_turns_results_into_call_error_and_link_goes_on() {
    let t0 = Instant::now();
    // b exports only its gateway after the handshake: room for 3 more.
    let (mut p, gw_b, _) = LinkPair::connected(LinkConfig::default(), tables(4, 1024), t0);
    assert_eq!(p.b.table_sizes().0, 1);
    let mut ids = Vec::new();
    for i in 0..3 {
        let got = call_answered_with(
            &mut p,
            gw_b,
            Outcome::Result(Entity::Ref(Ref::Local(NumberedObj(100 + i)))),
        );
        let Outcome::Result(Entity::Ref(Ref::Remote(id))) = got else {
            panic!("object {i}: expected a reference, got {got:?}")
        };
        ids.push(id);
    }
    assert_eq!(p.b.table_sizes().0, 4);
    // Full: a new object, as result or inside an exception, is CALL_ERROR.
    let new = Entity::Ref(Ref::Local(NumberedObj(200)));
    let got = call_answered_with(&mut p, gw_b, Outcome::Result(new.clone()));
    assert_eq!(got, Outcome::Error);
    let got = call_answered_with(
        &mut p,
        gw_b,
        Outcome::Exception(Entity::Exception(vec![new])),
    );
    assert_eq!(got, Outcome::Error);
    assert_eq!(
        p.b.table_sizes().0,
        4,
        "nothing exported for refused values"
    );
    // Objects already exported still go, plain values too.
    let again = Entity::Ref(Ref::Local(NumberedObj(100)));
    let got = call_answered_with(&mut p, gw_b, Outcome::Result(again));
    assert_eq!(got, Outcome::Result(Entity::Ref(Ref::Remote(ids[0]))));
    let got = call_answered_with(&mut p, gw_b, Outcome::Result(Entity::Int(5)));
    assert_eq!(got, Outcome::Result(Entity::Int(5)));
    // A release (docs/protocol/vol.md §5.2) makes room again.
    p.a.release(ids[1]).unwrap();
    p.pump_ok(t0);
    assert_eq!(p.b.table_sizes().0, 3);
    let got = call_answered_with(
        &mut p,
        gw_b,
        Outcome::Result(Entity::Ref(Ref::Local(NumberedObj(201)))),
    );
    assert!(matches!(got, Outcome::Result(Entity::Ref(Ref::Remote(_)))));
}

#[test]
fn export_limit_counts_distinct_objects_of_one_value() {
    let t0 = Instant::now();
    let (mut p, gw_b, _) = LinkPair::connected(LinkConfig::default(), tables(3, 1024), t0);
    // Two new objects (one of them twice) need two entries: 1 + 2 fits 3.
    let value = Entity::Tuple(vec![
        Entity::Ref(Ref::Local(NumberedObj(7))),
        Entity::Ref(Ref::Local(NumberedObj(8))),
        Entity::Ref(Ref::Local(NumberedObj(7))),
    ]);
    let got = call_answered_with(&mut p, gw_b, Outcome::Result(value));
    assert!(matches!(got, Outcome::Result(Entity::Tuple(_))), "{got:?}");
    let value = Entity::Tuple(vec![
        Entity::Ref(Ref::Local(NumberedObj(8))),
        Entity::Ref(Ref::Local(NumberedObj(9))),
    ]);
    let got = call_answered_with(&mut p, gw_b, Outcome::Result(value));
    assert_eq!(
        got,
        Outcome::Error,
        "one new object over the limit refuses all"
    );
}

#[test]
fn export_limit_refuses_our_own_call_before_sending() {
    let t0 = Instant::now();
    let (mut p, gw_b, _) = LinkPair::connected(tables(2, 1024), LinkConfig::default(), t0);
    let exports = p.a.table_sizes().0;
    let args = vec![
        Entity::String("take".into()),
        Entity::Ref(Ref::Local(NumberedObj(50))),
        Entity::Ref(Ref::Local(NumberedObj(51))),
    ];
    let r = p.a.call(gw_b, CallKind::Normal, args);
    assert!(matches!(r, Err(CallSendError::ExportLimit)), "{r:?}");
    assert!(p.a.take_output().is_empty(), "nothing written");
    assert_eq!(p.a.table_sizes().0, exports);
    // The link still works.
    p.a.call(gw_b, CallKind::Normal, vec![Entity::Int(1)])
        .unwrap();
    p.pump_ok(t0);
    assert!(matches!(p.b.poll_event(), Some(Event::Call { .. })));
}

#[test]
fn import_limit_closes_the_link() {
    let t0 = Instant::now();
    // b imports a's gateway: room for 2 more distinct ids.
    let (mut p, gw_b, _) = LinkPair::connected(LinkConfig::default(), tables(1024, 3), t0);
    assert_eq!(p.b.table_sizes().1, 1);
    for i in 0..2 {
        let obj = Entity::Ref(Ref::Local(NumberedObj(60 + i)));
        p.a.call(gw_b, CallKind::Normal, vec![obj.clone(), obj])
            .unwrap();
        p.pump_ok(t0);
    }
    assert_eq!(p.b.table_sizes().1, 3);
    // An id already imported is only counted.
    let known = Entity::Ref(Ref::Local(NumberedObj(60)));
    p.a.call(gw_b, CallKind::Normal, vec![known]).unwrap();
    p.pump_ok(t0);
    let new = Entity::Ref(Ref::Local(NumberedObj(99)));
    p.a.call(gw_b, CallKind::Normal, vec![new]).unwrap();
    let (_, rb) = p.pump(t0);
    assert!(matches!(rb, Err(LinkError::ImportLimit(3))), "{rb:?}");
    assert_eq!(p.b.table_sizes().1, 3);
}

#[test]
fn responses_to_unknown_calls_count_against_the_import_limit() {
    let t0 = Instant::now();
    let (mut p, _, _) = LinkPair::connected(LinkConfig::default(), tables(1024, 4), t0);
    let mut result = Ok(());
    for i in 0..10 {
        // Answers to calls b never made (`docs/protocol/vol.md` §3.4): ignored, but the
        // references in them are imports all the same.
        let obj = Entity::Ref(Ref::Local(NumberedObj(300 + i)));
        p.a.respond(
            &CallId::Small(1000 + i as i64),
            CallKind::Normal,
            Outcome::Result(obj),
        )
        .unwrap();
        let (_, rb) = p.pump(t0);
        if rb.is_err() {
            result = rb;
            break;
        }
    }
    assert!(
        matches!(result, Err(LinkError::ImportLimit(4))),
        "{result:?}"
    );
}

#[test]
fn receive_next_processes_one_entity_at_a_time() {
    let t0 = Instant::now();
    let (mut p, gw_b, _) = LinkPair::connected(LinkConfig::default(), LinkConfig::default(), t0);
    for i in 0..10 {
        p.a.call(gw_b, CallKind::Normal, vec![Entity::Int(i)])
            .unwrap();
    }
    p.b_in.extend_from_slice(&p.a.take_output());
    for i in 0..10 {
        let before = p.b_in.len();
        assert_eq!(
            p.b.receive_next(&mut p.b_in, t0).unwrap(),
            Received::Processed
        );
        assert!(p.b_in.len() < before, "call {i}: bytes consumed");
        match p.b.poll_event() {
            Some(Event::Call { args, .. }) => assert_eq!(args, vec![Entity::Int(i)]),
            other => panic!("call {i}: {other:?}"),
        }
        assert!(p.b.poll_event().is_none(), "call {i}: one event per entity");
        assert_eq!(
            p.b_in.is_empty(),
            i == 9,
            "call {i}: the rest stays buffered"
        );
    }
    assert_eq!(
        p.b.receive_next(&mut p.b_in, t0).unwrap(),
        Received::NeedMore
    );
}
