//! VOL messages (`docs/protocol/vol.md` §3): the `(msg_id, code, payload)` envelope that
//! every entity after the two handshake entities carries.
//!
//! Parsing applies Python's receiver policy (§3.9): a structural violation is
//! a [`LinkError`] (the link closes, nothing is sent); call-level problems
//! (bad method names and the like) are not detected here but by the target
//! object, which answers CALL_ERROR.

use crate::vec::Entity;
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
            let [target, args] = pair(payload, "call payload is not a 2-tuple")?;
            let Entity::Ref(target) = target else {
                return Err(LinkError::Protocol("call target is not a reference"));
            };
            let Entity::Tuple(args) = args else {
                return Err(LinkError::Protocol("call arguments are not a tuple"));
            };
            Message::Call { kind, target, args }
        }
        code::CALL_RESULT | code::CALL_EXCEPTION => {
            let [call_id, value] = pair(payload, "response payload is not a 2-tuple")?;
            let call_id = response_id(&call_id)?;
            let outcome = if code == code::CALL_RESULT {
                Outcome::Result(value)
            } else {
                Outcome::Exception(value)
            };
            Message::Response { call_id, outcome }
        }
        code::CALL_ERROR => Message::Response {
            call_id: response_id(&payload)?,
            outcome: Outcome::Error,
        },
        code::NOTIFY_DEREF => {
            let [id, count] = pair(payload, "NOTIFY_DEREF payload is not a 2-tuple")?;
            if !is_int(&id) || !is_int(&count) {
                return Err(LinkError::Protocol("NOTIFY_DEREF fields are not integers"));
            }
            Message::NotifyDeref {
                object_id: id.as_i64(),
                count: count.as_i64().and_then(|c| u64::try_from(c).ok()),
            }
        }
        code::CONFIRM_DEREF => {
            if !is_int(&payload) {
                return Err(LinkError::Protocol(
                    "CONFIRM_DEREF payload is not an integer",
                ));
            }
            Message::ConfirmDeref {
                object_id: payload.as_i64(),
            }
        }
        code::KEEP_ALIVE => {
            if !payload.is_none() {
                return Err(LinkError::Protocol("KEEP_ALIVE payload is not None"));
            }
            Message::KeepAlive
        }
        _ => return Err(LinkError::Protocol("unknown message code")),
    };
    Ok((msg_id, message))
}

fn is_int<R>(e: &Entity<R>) -> bool {
    matches!(e, Entity::Int(_) | Entity::BigInt(_))
}

fn response_id<R>(e: &Entity<R>) -> Result<Option<i64>, LinkError> {
    if !is_int(e) {
        return Err(LinkError::Protocol("response call id is not an integer"));
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
