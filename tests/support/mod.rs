//! The helpers the integration tests share, included by each test file
//! as `mod support;` (one tree, one way in). Each test program compiles
//! its own copy, so helpers a program does not use are allowed to be
//! dead code.
//!
//! | module | what it holds |
//! | --- | --- |
//! | [`keys`] | the spec's VTS test keys, a VTS config that accepts them, a generated 2048-bit key |
//! | [`servers`] | in-process servers on loopback: PLAIN, VTS with the spec key, the production stack, one on its own runtime; a test gateway |
//! | [`calls`] | client side: bounded connect, echo calls, polling until a condition holds |
//! | [`links`] | two sans-IO VOL links wired together in memory |
//! | [`vts_sansio`] | sans-IO VTS connections: pending output, a client and server pumped in memory |
//! | [`raw_peer`] | a hand-written VOP/VEC/VOL peer for hostile input |
//! | [`procs`] | child processes: `versile serve`, examples, HAProxy, temp dirs |
//! | [`python`] | the Versile Python 0.8.5 venv and its test scripts (`tests/python/`) |
//! | [`interop_gateway`] | the Rust twin of `py_server.py`'s `TestGateway` |
//! | [`http`] | one-shot HTTP GETs (blocking and async) and Prometheus page parsing |
//! | [`spec_vectors`] | the spec's test vectors (`tests/data/spec/`) and a Python literal evaluator |
//!
//! Only loopback addresses are used; every wait is bounded; child
//! processes are killed and reaped on drop; a peer that cannot be started
//! (Python venv, HAProxy) fails the test, never skips it.

#![allow(dead_code)]

pub mod calls;
pub mod http;
pub mod interop_gateway;
pub mod keys;
pub mod links;
pub mod procs;
pub mod python;
pub mod raw_peer;
pub mod servers;
pub mod spec_vectors;
pub mod vts_sansio;
