//! Compile-fail tests of `#[versile::object]` and `#[versile::client]`
//! (trybuild): the mistakes users make, each with the compiler's message
//! in `tests/macros_ui/*.stderr` (for the pinned toolchain; regenerate
//! with `TRYBUILD=overwrite cargo test --test macros_ui` after a
//! toolchain update and review the diff).

#[test]
fn macro_mistakes_do_not_compile() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/macros_ui/*.rs");
}
