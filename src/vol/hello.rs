//! The VOL hello (`docs/protocol/vol.md` §2.2): the first entity in each direction.

use bytes::Bytes;

use crate::vec::Entity;
use crate::vol::LinkError;

/// The licence tuple a link announces (`docs/protocol/vol.md` §2.2).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Licence {
    /// `(false, None, None)`: what this crate sends by default.
    #[default]
    NotCopyleft,
    /// `(true, name, url)`; Versile Python always sends
    /// `("LGPLv3", "https://www.gnu.org/licenses/lgpl.txt")`.
    Copyleft {
        /// The licence name, e.g. `"LGPLv3"`.
        name: String,
        /// Where the licence text is.
        url: String,
    },
}

impl Licence {
    /// Versile Python 0.8.5's fixed tuple, for byte-identical output in tests.
    pub fn versile_python() -> Self {
        Licence::Copyleft {
            name: "LGPLv3".into(),
            url: "https://www.gnu.org/licenses/lgpl.txt".into(),
        }
    }
}

/// Build the hello entity `(b"VOL_DRAFT", licence, (0, 8))`.
pub fn hello_entity<R>(licence: &Licence) -> Entity<R> {
    let licence = match licence {
        Licence::NotCopyleft => vec![Entity::Bool(false), Entity::None, Entity::None],
        Licence::Copyleft { name, url } => vec![
            Entity::Bool(true),
            Entity::String(name.clone()),
            Entity::String(url.clone()),
        ],
    };
    Entity::Tuple(vec![
        Entity::Bytes(Bytes::from_static(b"VOL_DRAFT")),
        Entity::Tuple(licence),
        Entity::Tuple(vec![Entity::Int(0), Entity::Int(8)]),
    ])
}

/// Apply Python's receiver checks to a peer hello and return its licence.
pub(crate) fn check_hello<R>(hello: &Entity<R>) -> Result<Licence, LinkError> {
    let items = hello
        .as_tuple()
        .filter(|t| t.len() == 3)
        .ok_or(LinkError::BadHello("not a 3-tuple"))?;
    match items[0].as_bytes() {
        Some(b) if &b[..] == b"VOL_DRAFT" => {}
        _ => return Err(LinkError::BadHello("protocol name is not b\"VOL_DRAFT\"")),
    }
    let version = items[2]
        .as_tuple()
        .ok_or(LinkError::BadHello("version is not a tuple"))?;
    if version.len() != 2 || version[0].as_i64() != Some(0) || version[1].as_i64() != Some(8) {
        return Err(LinkError::BadHello("unsupported version (need (0, 8))"));
    }
    let licence = items[1]
        .as_tuple()
        .filter(|t| t.len() == 3)
        .ok_or(LinkError::BadHello("licence is not a 3-tuple"))?;
    match (&licence[0], &licence[1], &licence[2]) {
        (Entity::Bool(true), Entity::String(name), Entity::String(url)) => {
            let lower = url.to_ascii_lowercase();
            if ["http://", "https://", "vop://"]
                .iter()
                .any(|p| lower.starts_with(p))
            {
                Ok(Licence::Copyleft {
                    name: name.clone(),
                    url: url.clone(),
                })
            } else {
                Err(LinkError::BadHello("licence url scheme not accepted"))
            }
        }
        (Entity::Bool(false), Entity::None, Entity::None) => Ok(Licence::NotCopyleft),
        _ => Err(LinkError::BadHello("malformed licence tuple")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vec::WireRef;

    #[test]
    fn own_hello_passes_own_check() {
        for l in [Licence::NotCopyleft, Licence::versile_python()] {
            let e: Entity<WireRef> = hello_entity(&l);
            assert_eq!(check_hello(&e).unwrap(), l);
        }
    }

    #[test]
    fn rejects_variants() {
        let mut e: Entity<WireRef> = hello_entity(&Licence::NotCopyleft);
        if let Entity::Tuple(items) = &mut e {
            items[2] = Entity::Tuple(vec![Entity::Int(0), Entity::Int(8), Entity::Int(0)]);
        }
        assert!(check_hello(&e).is_err());
        let bad_url = Licence::Copyleft {
            name: "x".into(),
            url: "ftp://x".into(),
        };
        assert!(check_hello::<WireRef>(&hello_entity(&bad_url)).is_err());
        let mut e: Entity<WireRef> = hello_entity(&Licence::NotCopyleft);
        if let Entity::Tuple(items) = &mut e {
            items[0] = Entity::String("VOL_DRAFT".into());
        }
        assert!(check_hello(&e).is_err());
    }
}
