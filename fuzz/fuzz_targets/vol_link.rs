//! Arbitrary bytes into a VOL [`Link`] after a valid prefix: the peer's VEC
//! hello, VOL hello and handshake object (`docs/protocol/vol.md` §2.1). Calls are answered
//! by echoing their arguments so that responses, exports and releases are
//! exercised too. Must never panic; after an error the link is dropped.
#![no_main]

use std::time::{Duration, Instant};

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use versile::vec::{self, EncodeConfig, Entity, WireRef};
use versile::vol::{hello, CallKind, Event, ExportKey, Licence, Link, LinkConfig, Outcome, Ref};

#[derive(Debug, Clone, PartialEq)]
struct Obj(usize);

impl ExportKey for Obj {
    fn export_key(&self) -> usize {
        self.0
    }
}

fn prefix() -> Vec<u8> {
    let mut out = BytesMut::new();
    out.extend_from_slice(vec::hello_line(Some(vec::StrCodec::Utf8)));
    let hello: Entity = hello::hello_entity(&Licence::versile_python());
    vec::encode(&hello, &EncodeConfig::LINK, &mut out).expect("hello");
    let hs: Entity = Entity::Ref(WireRef::SenderOwned(1));
    vec::encode(&hs, &EncodeConfig::LINK, &mut out).expect("hs");
    out.to_vec()
}

fuzz_target!(|data: &[u8]| {
    let Some((&chunking, data)) = data.split_first() else {
        return;
    };
    let mut now = Instant::now();
    let config = LinkConfig {
        max_entity_size: 1 << 16,
        ..LinkConfig::default()
    };
    let mut link = Link::new(config, Obj(0), now);
    let mut input = prefix();
    input.extend_from_slice(data);
    let chunk = usize::from(chunking % 32) + 1;
    let mut buf = BytesMut::new();
    let mut next_child = 1;
    for piece in input.chunks(chunk) {
        buf.extend_from_slice(piece);
        if link.receive(&mut buf, now).is_err() {
            return;
        }
        while let Some(ev) = link.poll_event() {
            let r = match ev {
                Event::Call {
                    call_id,
                    kind,
                    args,
                    ..
                } => {
                    // Echo the arguments, plus a new child object now and then.
                    let mut v = args;
                    if v.len() == 1 {
                        v.push(Entity::Ref(Ref::Local(Obj(next_child))));
                        next_child += 1;
                    }
                    let outcome = if v.is_empty() {
                        Outcome::Error
                    } else {
                        Outcome::Result(Entity::Tuple(v))
                    };
                    link.respond(&call_id, kind, outcome)
                }
                Event::Established { peer_gateway } => link
                    .call(
                        peer_gateway,
                        CallKind::Normal,
                        vec![Entity::String("x".into())],
                    )
                    .map(|_| ())
                    .or(Ok(())),
                Event::Response { outcome, .. } => {
                    // Drop every imported object at once: NOTIFY_DEREF path.
                    let mut ids = Vec::new();
                    if let Outcome::Result(v) | Outcome::Exception(v) = &outcome {
                        v.for_each_ref(&mut |r| {
                            if let Ref::Remote(id) = r {
                                ids.push(*id);
                            }
                        });
                    }
                    ids.into_iter().try_for_each(|id| link.release(id))
                }
                Event::Idle | Event::Authorize { .. } => Ok(()),
            };
            if r.is_err() {
                return;
            }
        }
        let _ = link.take_output();
        now += Duration::from_millis(10);
        if link.handle_timeout(now).is_err() {
            return;
        }
    }
});
