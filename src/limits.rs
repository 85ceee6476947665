//! One counter for every resource limit a peer can trip.
//!
//! Each budget in the stack (decoded memory, table sizes, queued calls,
//! unsent output, RSA work, ...) reports through [`limit_exceeded`] when it
//! refuses, pauses or closes something, so operators alert on one metric
//! and break it down by the `limit` label. Log lines are the caller's: they
//! know the link and what was refused.
//!
//! | name | kind | labels | when |
//! |---|---|---|---|
//! | `versile_limits_exceeded_total` | counter | `limit` | a budget refused, paused or closed something |

/// Counter name of every limit hit.
pub const LIMITS_EXCEEDED: &str = "versile_limits_exceeded_total";

/// Count one hit of the limit named `limit` (a static, snake_case name such
/// as `"decoded_memory"`; it becomes the metric's `limit` label, so it must
/// never come from the peer).
pub fn limit_exceeded(limit: &'static str) {
    metrics::counter!(LIMITS_EXCEEDED, "limit" => limit).increment(1);
}
