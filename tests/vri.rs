//! VRI parsing and generation: `docs/protocol/vop-service.md` §4.1–4.4.

use num_bigint::BigInt;
use proptest::prelude::*;
use versile::vec::Entity;
use versile::vri::{resolve_relative, Query, QueryArg, Vri, VriError, DEFAULT_PORT};

fn parse(s: &str) -> Result<Vri, VriError> {
    s.parse()
}

fn ok(s: &str) -> Vri {
    parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn s(v: &str) -> QueryArg {
    QueryArg::Str(v.to_owned())
}

fn int(v: i64) -> QueryArg {
    QueryArg::Int(BigInt::from(v))
}

// §4.1 examples table.

#[test]
fn s41_root() {
    let v = ok("vop://localhost/");
    assert_eq!(v.host, "localhost");
    assert_eq!(v.port, DEFAULT_PORT);
    assert!(v.path.is_empty());
    assert_eq!(v.query, None);
}

#[test]
fn s41_scheme_case_and_port() {
    let v = ok("VOP://Example.COM:1234/a/b/");
    assert_eq!(v.host, "Example.COM");
    assert_eq!(v.port, 1234);
    assert_eq!(v.path, strings(&["a", "b"]));
    assert_eq!(v.query, None);
}

#[test]
fn s41_trailing_slash_matters() {
    let v = ok("vop://host/a/b");
    assert_eq!(v.path, strings(&["a"]));
    assert_eq!(v.query, Some(Query::new("b")));
    let v = ok("vop://host/a/b/method");
    assert_eq!(v.path, strings(&["a", "b"]));
    assert_eq!(v.query, Some(Query::new("method")));
}

#[test]
fn s41_percent_decoding() {
    let v = ok("vop://host/a%20b/c%2Fd/");
    assert_eq!(v.path, strings(&["a b", "c/d"]));
    assert_eq!(ok("vop://host/%C3%A9/").path, strings(&["é"]));
    assert!(matches!(
        parse("vop://host/%FF/"),
        Err(VriError::InvalidUtf8(_))
    ));
    assert!(matches!(
        parse("vop://host/%FF"),
        Err(VriError::InvalidUtf8(_))
    ));
}

#[test]
fn s41_errors() {
    assert_eq!(parse("vop://host//a/"), Err(VriError::EmptyPathComponent));
    assert_eq!(parse("vop://host/a//"), Err(VriError::EmptyPathComponent));
    assert_eq!(
        parse("vop://host:abc/"),
        Err(VriError::InvalidPort("abc".into()))
    );
    assert_eq!(parse("vop://:4433/"), Err(VriError::NoDomain));
    assert_eq!(
        parse("vop://localhost"),
        Err(VriError::PathMustStartWithSlash)
    );
}

#[test]
fn s41_more_cases_from_vri_cases_py() {
    assert_eq!(ok("vop://localhost:4433/"), ok("vop://localhost/"));
    assert_eq!(ok("vop://user@host/").host, "user@host");
    assert_eq!(ok("vop://host/a/#frag").path, strings(&["a"]));
    assert_eq!(ok("vop://host/a/b#frag").query, Some(Query::new("b")));
    assert_eq!(
        ok("vop://host/a/;params").query,
        Some(Query::new(";params"))
    );
    assert_eq!(
        parse("http://host/"),
        Err(VriError::UnsupportedScheme("http".into()))
    );
    assert_eq!(parse("vop:host"), Err(VriError::MissingAuthority));
    assert!(matches!(
        parse("no scheme"),
        Err(VriError::UnsupportedScheme(_))
    ));
}

#[test]
fn ports() {
    assert_eq!(ok("vop://h:1/").port, 1);
    assert_eq!(ok("vop://h:65535/").port, 65535);
    for bad in ["65536", "0", "", "-1", "+80", " 80", "99999999999999999999"] {
        assert_eq!(
            parse(&format!("vop://h:{bad}/")),
            Err(VriError::InvalidPort(bad.into())),
            "port {bad:?}"
        );
    }
}

#[test]
fn ipv6_literals() {
    let v = ok("vop://[::1]:4433/");
    assert_eq!(v.host, "::1");
    assert_eq!(v.port, 4433);
    assert_eq!(v.socket_host(), "::1");
    assert_eq!(v.authority(), "[::1]:4433");
    let v = ok("vop://[::1]/");
    assert_eq!(v.host, "::1");
    assert_eq!(v.port, DEFAULT_PORT);
    assert_eq!(v.to_string(), "vop://[::1]/");
    let v = ok("vop://[2001:db8::7]:9000/x/");
    assert_eq!(v.to_string(), "vop://[2001:db8::7]:9000/x/");
    assert!(matches!(
        parse("vop://[::1/"),
        Err(VriError::InvalidHost(_))
    ));
    assert!(matches!(
        parse("vop://[nope]/"),
        Err(VriError::InvalidHost(_))
    ));
    assert!(matches!(
        parse("vop://[::1]x/"),
        Err(VriError::InvalidHost(_))
    ));
    assert!(matches!(
        parse("vop://a:b:80/"),
        Err(VriError::InvalidHost(_))
    ));
    assert_eq!(ok("vop://h:1/").authority(), "h:1");
}

// §4.2 query arguments.

#[test]
fn s42_observed_example_with_intended_semantics() {
    let v = ok("vop://host/a/b/method?x&int:5&bool:True&str:int:7&k=v&n=int:3");
    let q = v.query.expect("query");
    assert_eq!(q.name, "method");
    assert_eq!(
        q.args,
        vec![s("x"), int(5), QueryArg::Bool(true), s("int:7")]
    );
    assert_eq!(q.kwargs, vec![("k".into(), s("v")), ("n".into(), int(3))]);
    let ents: Vec<Entity> = q.positional_entities();
    assert_eq!(
        ents,
        vec![
            Entity::String("x".into()),
            Entity::Int(5),
            Entity::Bool(true),
            Entity::String("int:7".into())
        ]
    );
}

#[test]
fn s42_prefixes() {
    let args = |u: &str| ok(u).query.expect("query").args;
    assert_eq!(args("vop://h/m?u=foo:bar"), vec![]);
    assert_eq!(
        ok("vop://h/m?u=foo:bar").query.expect("q").kwargs,
        vec![("u".into(), s("foo:bar"))]
    );
    assert_eq!(args("vop://h/m?foo:bar"), vec![s("foo:bar")]);
    assert_eq!(args("vop://h/m?bool:False"), vec![QueryArg::Bool(false)]);
    assert_eq!(args("vop://h/m?int:-12"), vec![int(-12)]);
    assert_eq!(
        args("vop://h/m?int:123456789012345678901234567890"),
        vec![QueryArg::Int(
            "123456789012345678901234567890".parse().expect("big")
        )]
    );
    // Prefix applies after percent-decoding (Python's generator writes `bool%3ATrue`).
    assert_eq!(args("vop://h/m?bool%3ATrue"), vec![QueryArg::Bool(true)]);
    assert_eq!(args("vop://h/m?a%26b%3Dc"), vec![s("a&b=c")]);
    assert_eq!(args("vop://h/m?str:"), vec![s("")]);
    assert_eq!(args("vop://h/m?a?b"), vec![s("a?b")]);
    assert_eq!(args("vop://h/m?"), vec![]);
    assert_eq!(
        ok("vop://h/m?k=v=w").query.expect("q").kwargs,
        vec![("k".into(), s("v=w"))]
    );
    assert_eq!(
        ok("vop://h/m?k=").query.expect("q").kwargs,
        vec![("k".into(), s(""))]
    );
}

#[test]
fn s42_errors() {
    assert_eq!(
        parse("vop://host/m?n=int:x"),
        Err(VriError::InvalidInt("x".into()))
    );
    assert_eq!(
        parse("vop://host/m?int:"),
        Err(VriError::InvalidInt("".into()))
    );
    assert_eq!(
        parse("vop://host/m?int:1_000"),
        Err(VriError::InvalidInt("1_000".into()))
    );
    assert_eq!(
        parse("vop://host/m?b=bool:yes"),
        Err(VriError::InvalidBool("yes".into()))
    );
    assert_eq!(
        parse("vop://host/m?bool:true"),
        Err(VriError::InvalidBool("true".into()))
    );
    assert_eq!(
        parse("vop://host/?x"),
        Err(VriError::ArgumentsWithoutQueryName)
    );
    assert_eq!(parse("vop://host/m?a&&b"), Err(VriError::EmptyArgument));
    assert_eq!(parse("vop://host/m?=v"), Err(VriError::EmptyKeywordName));
    assert_eq!(
        parse("vop://host/m?k=1&k=2"),
        Err(VriError::DuplicateKeyword("k".into()))
    );
}

// §4.3 generation.

#[test]
fn s43_generation() {
    let mut v = ok("vop://localhost/");
    assert_eq!(v.to_string(), "vop://localhost/");
    v.path = strings(&["a b", "c/d"]);
    assert_eq!(v.to_string(), "vop://localhost/a%20b/c%2Fd/");
    v.path = strings(&["text"]);
    v.query = Some(Query {
        name: "echo".into(),
        args: vec![s("one"), s("two"), int(5), QueryArg::Bool(true)],
        kwargs: vec![],
    });
    assert_eq!(
        v.to_string(),
        "vop://localhost/text/echo?one&two&int:5&bool:True"
    );
    v.port = 4434;
    v.query = Some(Query {
        name: "m".into(),
        args: vec![s("int:7"), s(""), s("a:b")],
        kwargs: vec![("k".into(), s("v")), ("b".into(), QueryArg::Bool(false))],
    });
    assert_eq!(
        v.to_string(),
        "vop://localhost:4434/text/m?str:int:7&str:&a:b&k=v&b=bool:False"
    );
    assert_eq!(ok(&v.to_string()), v);
}

// §4.4 resolution helpers.

#[test]
fn s44_urlget_arg_and_relative() {
    let v = ok("vop://h/a/b/hello");
    let arg: Option<Entity> = v.urlget_arg();
    assert_eq!(
        arg,
        Some(Entity::Tuple(vec![
            Entity::String("a".into()),
            Entity::String("b".into())
        ]))
    );
    assert_eq!(
        ok("vop://h/hello").urlget_arg::<versile::vec::WireRef>(),
        None
    );

    assert_eq!(resolve_relative("/"), Ok((vec![], None)));
    assert_eq!(resolve_relative("/a/b/"), Ok((strings(&["a", "b"]), None)));
    assert_eq!(
        resolve_relative("/a/b/hello?int:1"),
        Ok((
            strings(&["a", "b"]),
            Some(Query {
                name: "hello".into(),
                args: vec![int(1)],
                kwargs: vec![]
            })
        ))
    );
    assert_eq!(
        resolve_relative("/hello"),
        Ok((vec![], Some(Query::new("hello"))))
    );
    assert_eq!(
        resolve_relative("a/"),
        Err(VriError::PathMustStartWithSlash)
    );
    assert_eq!(resolve_relative(""), Err(VriError::PathMustStartWithSlash));
}

// Round trip: parse(display(v)) == v.

fn arb_host() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9.@_-]{1,20}",
        Just("::1".to_string()),
        Just("2001:db8::1".to_string()),
    ]
}

fn arb_arg() -> impl Strategy<Value = QueryArg> {
    prop_oneof![
        any::<String>().prop_map(QueryArg::Str),
        prop_oneof![
            Just("str:"),
            Just("int:"),
            Just("bool:"),
            Just("x:"),
            Just("")
        ]
        .prop_flat_map(|p| any::<String>().prop_map(move |s| QueryArg::Str(format!("{p}{s}")))),
        any::<i128>().prop_map(|n| QueryArg::Int(BigInt::from(n))),
        any::<bool>().prop_map(QueryArg::Bool),
    ]
}

fn arb_query() -> impl Strategy<Value = Query> {
    (
        ".{1,10}",
        prop::collection::vec(arb_arg(), 0..4),
        prop::collection::btree_map(".{1,6}", arb_arg(), 0..3),
    )
        .prop_map(|(name, args, kw)| Query {
            name,
            args,
            kwargs: kw.into_iter().collect(),
        })
}

fn arb_vri() -> impl Strategy<Value = Vri> {
    (
        arb_host(),
        1u16..,
        prop::collection::vec(".{1,10}", 0..4),
        prop::option::of(arb_query()),
    )
        .prop_map(|(host, port, path, query)| Vri {
            host,
            port,
            path,
            query,
        })
}

proptest! {
    #[test]
    fn round_trip(v in arb_vri()) {
        let text = v.to_string();
        prop_assert_eq!(text.parse::<Vri>(), Ok(v), "{}", text);
    }

    #[test]
    fn parse_never_panics(s in "(vop|VOP|x)://[a-z:\\[\\]]{0,8}(/[^/]{0,6}){0,4}(\\?.{0,20})?") {
        if let Ok(v) = s.parse::<Vri>() {
            prop_assert_eq!(v.to_string().parse::<Vri>(), Ok(v));
        }
    }
}
