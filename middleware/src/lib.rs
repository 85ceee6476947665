//! Connection-level tower layers, independent of the Versile protocol.
#![forbid(unsafe_code)]
