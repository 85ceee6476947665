//! versile: Versile Object Platform services and clients (work in progress).
#![forbid(unsafe_code)]

pub mod vec;
pub mod vop;
pub mod vri;
