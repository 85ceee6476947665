//! VOL messages (`docs/protocol/vol.md` §3): the `(msg_id, code, payload)` envelope that
//! every entity after the two handshake entities carries.
//!
//! Parsing applies Python's receiver policy (§3.9): a structural violation is
//! a [`LinkError`] (the link closes, nothing is sent); call-level problems
//! (bad method names and the like) are not detected here but by the target
//! object, which answers CALL_ERROR.

use crate::vec::{Entity, Spread, WireRef};
use crate::vol::LinkError;

/// Message codes (`docs/protocol/vol.md` §3.2).
pub mod code {
    pub const METHOD_CALL: i64 = 1;
    pub const METHOD_CALL_VOID_RESULT: i64 = 2;
    pub const METHOD_CALL_NO_RETURN: i64 = 3;
    pub const CALL_RESULT: i64 = 4;
    pub const CALL_EXCEPTION: i64 = 5;
    pub const CALL_ERROR: i64 = 6;
    pub const NOTIFY_DEREF: i64 = 7;
    pub const CONFIRM_DEREF: i64 = 8;
    pub const KEEP_ALIVE: i64 = 9;
}

/// How a call wants its outcome reported (`docs/protocol/vol.md` §3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallKind {
    /// Code 1: result, exception or error comes back.
    Normal,
    /// Code 2: like `Normal`, but a success is answered with VNone.
    VoidResult,
    /// Code 3: nothing is ever sent back.
    NoReturn,
}

impl CallKind {
    pub(crate) fn code(self) -> i64 {
        match self {
            CallKind::Normal => code::METHOD_CALL,
            CallKind::VoidResult => code::METHOD_CALL_VOID_RESULT,
            CallKind::NoReturn => code::METHOD_CALL_NO_RETURN,
        }
    }
}

/// The outcome of a call as carried by codes 4, 5 and 6 (`docs/protocol/vol.md` §3.4–3.6).
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome<R> {
    /// CALL_RESULT: the returned value.
    Result(Entity<R>),
    /// CALL_EXCEPTION: what the method raised (normally a VException, but
    /// any entity is accepted, §3.5).
    Exception(Entity<R>),
    /// CALL_ERROR: the call could not be performed (no reason on the wire).
    Error,
}

/// A parsed VOL message with its payload references still as wire ids.
#[derive(Debug, Clone, PartialEq)]
pub enum Message<R> {
    Call {
        kind: CallKind,
        /// The `FD` target (an id the receiver exported).
        target: R,
        args: Vec<Entity<R>>,
    },
    Response {
        /// The msg_id of the call; `None` if it is outside `i64` (then it
        /// cannot be one of ours and the response is ignored, §3.4).
        call_id: Option<i64>,
        outcome: Outcome<R>,
    },
    NotifyDeref {
        object_id: Option<i64>,
        count: Option<u64>,
    },
    ConfirmDeref {
        object_id: Option<i64>,
    },
    KeepAlive,
}

/// Split a top-level entity into `(msg_id, message)` (`docs/protocol/vol.md` §3.1, §3.9).
///
/// The msg_id is returned as an entity: Python accepts any integer and a
/// call's response must quote it back unchanged.
pub fn parse<R>(entity: Entity<R>) -> Result<(Entity<R>, Message<R>), LinkError> {
    let Entity::Tuple(items) = entity else {
        return Err(LinkError::Protocol("message is not a tuple"));
    };
    let [msg_id, code, payload]: [Entity<R>; 3] = items
        .try_into()
        .map_err(|_| LinkError::Protocol("message is not a 3-tuple"))?;
    parse_parts(msg_id, code, Payload::Entity(payload))
}

/// [`parse`] for what [`Decoder::decode_spread`](crate::vec::Decoder)
/// returns: the envelope (and a 2-tuple payload) already taken apart.
pub(crate) fn parse_spread(spread: Spread) -> Result<(Entity, Message<WireRef>), LinkError> {
    match spread {
        Spread::TripleWithPair([msg_id, code], pair) => {
            parse_parts(msg_id, code, Payload::Pair(pair))
        }
        Spread::Triple([msg_id, code, payload]) => {
            parse_parts(msg_id, code, Payload::Entity(payload))
        }
        Spread::Other(entity) => parse(entity),
    }
}

/// A message's payload: an entity, or a 2-tuple already taken apart.
enum Payload<R> {
    Entity(Entity<R>),
    Pair([Entity<R>; 2]),
}

impl<R> Payload<R> {
    fn pair(self, what: &'static str) -> Result<[Entity<R>; 2], LinkError> {
        match self {
            Payload::Pair(items) => Ok(items),
            Payload::Entity(e) => pair(e, what),
        }
    }

    /// The payload when it must not be a tuple; a pair is the error `what`.
    fn single(self, what: &'static str) -> Result<Entity<R>, LinkError> {
        match self {
            Payload::Entity(e) => Ok(e),
            Payload::Pair(_) => Err(LinkError::Protocol(what)),
        }
    }
}

fn parse_parts<R>(
    msg_id: Entity<R>,
    code: Entity<R>,
    payload: Payload<R>,
) -> Result<(Entity<R>, Message<R>), LinkError> {
    if !matches!(msg_id, Entity::Int(_) | Entity::BigInt(_)) {
        return Err(LinkError::Protocol("msg_id is not an integer"));
    }
    let code = code
        .as_i64()
        .ok_or(LinkError::Protocol("message code is not a small integer"))?;
    let message = match code {
        code::METHOD_CALL | code::METHOD_CALL_VOID_RESULT | code::METHOD_CALL_NO_RETURN => {
            let kind = match code {
                code::METHOD_CALL => CallKind::Normal,
                code::METHOD_CALL_VOID_RESULT => CallKind::VoidResult,
                _ => CallKind::NoReturn,
            };
            let [target, args] = payload.pair("call payload is not a 2-tuple")?;
            let Entity::Ref(target) = target else {
                return Err(LinkError::Protocol("call target is not a reference"));
            };
            let Entity::Tuple(args) = args else {
                return Err(LinkError::Protocol("call arguments are not a tuple"));
            };
            Message::Call { kind, target, args }
        }
        code::CALL_RESULT | code::CALL_EXCEPTION => {
            let [call_id, value] = payload.pair("response payload is not a 2-tuple")?;
            let call_id = response_id(&call_id)?;
            let outcome = if code == code::CALL_RESULT {
                Outcome::Result(value)
            } else {
                Outcome::Exception(value)
            };
            Message::Response { call_id, outcome }
        }
        code::CALL_ERROR => Message::Response {
            call_id: response_id(&payload.single(RESPONSE_ID_NOT_INT)?)?,
            outcome: Outcome::Error,
        },
        code::NOTIFY_DEREF => {
            let [id, count] = payload.pair("NOTIFY_DEREF payload is not a 2-tuple")?;
            if !is_int(&id) || !is_int(&count) {
                return Err(LinkError::Protocol("NOTIFY_DEREF fields are not integers"));
            }
            Message::NotifyDeref {
                object_id: id.as_i64(),
                count: count.as_i64().and_then(|c| u64::try_from(c).ok()),
            }
        }
        code::CONFIRM_DEREF => {
            const NOT_INT: &str = "CONFIRM_DEREF payload is not an integer";
            let payload = payload.single(NOT_INT)?;
            if !is_int(&payload) {
                return Err(LinkError::Protocol(NOT_INT));
            }
            Message::ConfirmDeref {
                object_id: payload.as_i64(),
            }
        }
        code::KEEP_ALIVE => {
            const NOT_NONE: &str = "KEEP_ALIVE payload is not None";
            if !payload.single(NOT_NONE)?.is_none() {
                return Err(LinkError::Protocol(NOT_NONE));
            }
            Message::KeepAlive
        }
        _ => return Err(LinkError::Protocol("unknown message code")),
    };
    Ok((msg_id, message))
}

const RESPONSE_ID_NOT_INT: &str = "response call id is not an integer";

fn is_int<R>(e: &Entity<R>) -> bool {
    matches!(e, Entity::Int(_) | Entity::BigInt(_))
}

fn response_id<R>(e: &Entity<R>) -> Result<Option<i64>, LinkError> {
    if !is_int(e) {
        return Err(LinkError::Protocol(RESPONSE_ID_NOT_INT));
    }
    Ok(e.as_i64())
}

fn pair<R>(payload: Entity<R>, what: &'static str) -> Result<[Entity<R>; 2], LinkError> {
    match payload {
        Entity::Tuple(items) => items.try_into().map_err(|_| LinkError::Protocol(what)),
        _ => Err(LinkError::Protocol(what)),
    }
}

/// Build the envelope entity `(msg_id, code, payload)` (`versile bench`
/// sizes its baseline with it; the link writes envelopes directly).
#[cfg(feature = "cli")]
pub fn envelope<R>(msg_id: i64, code: i64, payload: Entity<R>) -> Entity<R> {
    Entity::Tuple(vec![Entity::Int(msg_id), Entity::Int(code), payload])
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;
    use crate::vec::{encode, Decoder, DecoderConfig, EncodeConfig, StrCodec};

    fn int(v: i64) -> Entity {
        Entity::Int(v)
    }

    fn tuple(items: Vec<Entity>) -> Entity {
        Entity::Tuple(items)
    }

    fn config() -> DecoderConfig {
        DecoderConfig {
            str_decoding: Some(StrCodec::Utf8),
            allow_refs: true,
            ..DecoderConfig::default()
        }
    }

    /// What `decode` + `parse` make of `bytes`, and what is left of them.
    fn by_entity(bytes: &[u8]) -> (String, usize) {
        let mut buf = BytesMut::from(bytes);
        let out = match Decoder::new(config()).decode(&mut buf) {
            Ok(Some(e)) => format!("{:?}", parse(e)),
            other => format!("{other:?}"),
        };
        (out, buf.len())
    }

    fn by_spread(bytes: &[u8]) -> (String, usize) {
        let mut buf = BytesMut::from(bytes);
        let out = match Decoder::new(config()).decode_spread(&mut buf) {
            Ok(Some(s)) => format!("{:?}", parse_spread(s)),
            Ok(None) => "Ok(None)".to_owned(),
            Err(e) => format!("{:?}", Err::<Entity, _>(e)),
        };
        (out, buf.len())
    }

    #[test]
    fn spread_decoding_parses_as_the_entity_does() {
        let fd = Entity::Ref(WireRef::ReceiverOwned(2));
        let s = |v: &str| Entity::String(v.to_owned());
        let messages = [
            // A call, a response, with ids past one byte and byte payloads.
            tuple(vec![
                int(300),
                int(1),
                tuple(vec![fd.clone(), tuple(vec![s("echo"), int(7)])]),
            ]),
            tuple(vec![
                int(300),
                int(4),
                tuple(vec![int(299), Entity::Bytes(vec![1, 2, 3].into())]),
            ]),
            tuple(vec![int(5), int(4), tuple(vec![int(4), s("x")])]),
            // Payloads of the wrong shape, pair or not.
            tuple(vec![int(1), int(6), tuple(vec![int(1), int(2)])]),
            tuple(vec![int(1), int(6), int(9)]),
            tuple(vec![int(1), int(8), tuple(vec![int(1), int(2)])]),
            tuple(vec![int(1), int(9), tuple(vec![int(1), int(2)])]),
            tuple(vec![int(1), int(9), Entity::None]),
            tuple(vec![int(1), int(7), tuple(vec![int(3), int(1)])]),
            tuple(vec![
                int(1),
                int(1),
                tuple(vec![fd.clone(), int(1), int(2)]),
            ]),
            tuple(vec![int(1), int(4), tuple(vec![int(1)])]),
            // Envelopes that are not spread, or not messages.
            tuple(vec![
                tuple(vec![int(1)]),
                int(4),
                tuple(vec![int(1), int(2)]),
            ]),
            tuple(vec![s("id"), int(4), tuple(vec![int(1), int(2)])]),
            tuple(vec![int(1), s("code"), tuple(vec![int(1), int(2)])]),
            tuple(vec![int(1), int(4)]),
            tuple(vec![int(1), int(4), int(1), int(2)]),
            int(3),
            Entity::None,
        ];
        let cfg = EncodeConfig {
            str_encoding: Some(StrCodec::Utf8),
            allow_refs: true,
        };
        for m in &messages {
            let mut bytes = BytesMut::new();
            encode(m, &cfg, &mut bytes).unwrap();
            // Followed by the start of the next entity, which stays.
            bytes.extend_from_slice(&[0xF6, 0x03]);
            for end in 0..=bytes.len() {
                assert_eq!(by_spread(&bytes[..end]), by_entity(&bytes[..end]), "{m:?}");
            }
        }
        // Invalid UTF-8 in a leaf and in the pair: the same error.
        for bad in [
            &[0xF6, 3, 0xF4, 1, 4, 0xF6, 2, 1, 1, 0xFF][..],
            &[0xF6, 3, 1, 5, 0xF6, 2, 1, 0xF4, 1, 0xFF][..],
        ] {
            assert_eq!(by_spread(bad), by_entity(bad));
            assert!(by_spread(bad).0.starts_with("Err"), "{:?}", by_spread(bad));
        }
    }
}
