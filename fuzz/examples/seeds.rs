//! Writes the seed corpora into `fuzz/seeds/<target>/` (committed; `run.sh`
//! copies them into `fuzz/corpus/<target>/` before fuzzing).
//!
//! Sources: the VEC vectors (`vec-vectors.json`, `vec-extra-vectors.json`),
//! the captured VOP/VOL transcripts (`transcripts/*.txt`) and, for VTS,
//! handshakes between our own client and server run in memory with fixed
//! randoms and the spec's test keys (`versile_fuzz::transcript`). PROXY
//! headers are written here by hand (v1 and v2, every address family).
//!
//! Run from `fuzz/`: `cargo run --example seeds`. Deterministic: running it
//! again rewrites the same files.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value as Json;
use versile_fuzz::{established, transcript, HandshakeInput, RecordInput, SUITES, VARIANTS};

fn spec() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/spec")
}

struct Out {
    dir: PathBuf,
    n: usize,
}

impl Out {
    fn new(target: &str) -> Self {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("seeds")
            .join(target);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("seed dir");
        Out { dir, n: 0 }
    }

    fn put(&mut self, name: &str, bytes: &[u8]) {
        let safe: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        fs::write(self.dir.join(format!("{:03}-{safe}", self.n)), bytes).expect("write seed");
        self.n += 1;
    }
}

/// Every object with a "hex" field anywhere in `v`, with its "ctx" if any.
fn hex_cases<'a>(v: &'a Json, out: &mut Vec<(&'a str, Vec<u8>)>) {
    match v {
        Json::Object(m) => {
            if let Some(Json::String(h)) = m.get("hex") {
                if let Ok(b) = hex::decode(h) {
                    let ctx = m.get("ctx").and_then(Json::as_str).unwrap_or("plain");
                    out.push((ctx, b));
                }
            }
            m.values().for_each(|x| hex_cases(x, out));
        }
        Json::Array(a) => a.iter().for_each(|x| hex_cases(x, out)),
        _ => {}
    }
}

fn vec_decode() {
    let mut out = Out::new("vec_decode");
    for file in ["vec-vectors.json", "vec-extra-vectors.json"] {
        let text = fs::read_to_string(spec().join(file)).expect("vector file");
        let json: Json = serde_json::from_str(&text).expect("json");
        let mut cases = Vec::new();
        hex_cases(&json, &mut cases);
        for (i, (ctx, bytes)) in cases.into_iter().enumerate() {
            // The selector byte of vec_decode.rs: chunk size, codec, refs.
            let sel: u8 = match ctx {
                "utf8" => 0x20,
                "utf16" => 0x40,
                "object" => 0xA0,
                _ => 0x00,
            } | if i % 4 == 0 { 0 } else { 0x1F };
            let mut seed = vec![sel];
            seed.extend_from_slice(&bytes);
            out.put(&format!("{file}-{i}"), &seed);
        }
    }
}

/// One message of a transcript: direction (client to server?), label, bytes.
struct Item {
    c2s: bool,
    label: String,
    bytes: Vec<u8>,
}

fn transcripts() -> Vec<(String, Vec<Item>)> {
    let mut all = Vec::new();
    let mut names: Vec<_> = fs::read_dir(spec().join("transcripts"))
        .expect("transcripts")
        .map(|e| e.expect("entry").path())
        .collect();
    names.sort();
    for path in names {
        let text = fs::read_to_string(&path).expect("transcript");
        let mut items: Vec<Item> = Vec::new();
        for line in text.lines() {
            let c2s = line.contains("  C->S  ");
            if line.starts_with('[') && (c2s || line.contains("  S->C  ")) {
                let label = line
                    .split("  ")
                    .nth(3)
                    .unwrap_or("")
                    .split(" (")
                    .next()
                    .unwrap_or("")
                    .to_string();
                items.push(Item {
                    c2s,
                    label,
                    bytes: Vec::new(),
                });
                continue;
            }
            let toks: Vec<&str> = line.split_whitespace().collect();
            let is_hex = !toks.is_empty()
                && line.starts_with("      ")
                && toks
                    .iter()
                    .all(|t| t.len() == 2 && t.chars().all(|c| c.is_ascii_hexdigit()));
            if let (true, Some(item)) = (is_hex, items.last_mut()) {
                item.bytes
                    .extend(toks.iter().map(|t| u8::from_str_radix(t, 16).expect("hex")));
            }
        }
        let name = path
            .file_stem()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        if !items.is_empty() {
            all.push((name, items));
        }
    }
    all
}

fn vop_and_vol() {
    let mut server = Out::new("vop_server");
    let mut client = Out::new("vop_client");
    let mut link = Out::new("vol_link");
    for (name, items) in transcripts() {
        for c2s in [true, false] {
            let stream: Vec<u8> = items
                .iter()
                .filter(|i| i.c2s == c2s)
                .flat_map(|i| i.bytes.iter().copied())
                .collect();
            // Everything after the VOL handshake object: what vol_link's
            // fixed prefix stands for.
            let vol: Vec<u8> = items
                .iter()
                .filter(|i| i.c2s == c2s && i.label.starts_with("VOL msg"))
                .flat_map(|i| i.bytes.iter().copied())
                .collect();
            let dir = if c2s { "c2s" } else { "s2c" };
            if !vol.is_empty() {
                for chunking in [0u8, 7] {
                    let mut seed = vec![chunking];
                    seed.extend_from_slice(&vol);
                    link.put(&format!("{name}-{dir}-{chunking}"), &seed);
                }
            }
            let first = items.iter().find(|i| i.c2s == c2s);
            match first {
                Some(i) if c2s && i.label.starts_with("VOP client hello") => {
                    server.put(
                        &format!("{name}-line"),
                        &[[15].as_slice(), &i.bytes].concat(),
                    );
                    server.put(
                        &format!("{name}-stream"),
                        &[[3].as_slice(), &stream].concat(),
                    );
                }
                Some(i) if !c2s && i.label.starts_with("VOP server answer") => {
                    // Offer everything; chunk sizes 32 and 1.
                    client.put(
                        &format!("{name}-line"),
                        &[[0xFF].as_slice(), &i.bytes].concat(),
                    );
                    client.put(
                        &format!("{name}-stream"),
                        &[[0x07].as_slice(), &stream].concat(),
                    );
                }
                _ => {}
            }
        }
    }
    for line in [
        &b"VOP_DRAFT-0.8 TRANSPORTS:VTS:TLS:PLAIN\n"[..],
        b"VOP_DRAFT-0.8 TRANSPORTS:TLS\n",
    ] {
        server.put("hello", &[[15].as_slice(), line].concat());
    }
    for (offer, line) in [
        (
            1u8,
            &b"VOP_DRAFT-0.8 USE_TRANSPORT:VTS\nVTS_DRAFT-0.8\n"[..],
        ),
        (2, b"VOP_DRAFT-0.8 USE_TRANSPORT:TLS\n\x16\x03\x01"),
        (
            4,
            b"VOP_DRAFT-0.8 USE_TRANSPORT:PLAIN\nVEC_DRAFT-0.8-utf8\n",
        ),
    ] {
        client.put("answer", &[[0xF8 | offer].as_slice(), line].concat());
    }
}

fn vts() {
    let mut server = Out::new("vts_server");
    let mut client = Out::new("vts_client");
    for v in 0..VARIANTS {
        let t = transcript(v);
        for (out, steps, side) in [
            (&mut server, &t.client, "client"),
            (&mut client, &t.server, "server"),
        ] {
            // k valid steps as the prefix, the rest as the fuzzer's bytes.
            for k in 0..=steps.len() {
                let rest = steps[k..].concat();
                out.put(
                    &format!("v{v}-{side}-steps{k}"),
                    &HandshakeInput::encode(v, k, 0, &rest),
                );
            }
            let all = steps.concat();
            out.put(
                &format!("v{v}-{side}-chunk5"),
                &HandshakeInput::encode(v, 0, 5, &all),
            );
        }
    }
}

fn vts_record() {
    let mut out = Out::new("vts_record");
    for s in 0..SUITES {
        for we_are_server in [false, true] {
            let mut seed = vec![s as u8, u8::from(we_are_server)];
            let input = RecordInput::parse(&seed).expect("direct mode");
            let (_, mut peer) = input.layers().expect("layers");
            let mut records = Vec::new();
            for len in [1usize, 17, 300] {
                peer.seal(&vec![0x5A; len], &mut records).expect("seal");
            }
            seed.extend_from_slice(&records);
            out.put(&format!("suite{s}-server{we_are_server}"), &seed);
        }
    }
    for v in 0..VARIANTS {
        for we_are_server in [false, true] {
            let (_, rest) = established(v, we_are_server);
            let sel = 0x80 | v as u8 | (u8::from(we_are_server) << 3);
            out.put(
                &format!("conn-v{v}-server{we_are_server}"),
                &[[sel, 0].as_slice(), &rest].concat(),
            );
        }
    }
}

/// A v2 header: command, family/protocol byte, address block, TLVs.
fn v2(cmd: u8, fam: u8, addrs: &[u8], tlvs: &[u8]) -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.push(0x20 | cmd);
    h.push(fam);
    h.extend_from_slice(&((addrs.len() + tlvs.len()) as u16).to_be_bytes());
    h.extend_from_slice(addrs);
    h.extend_from_slice(tlvs);
    h
}

fn proxy() {
    let mut out = Out::new("proxy_header");
    let ip4 = [127, 0, 0, 1, 10, 0, 0, 2, 0x1F, 0x90, 0x00, 0x50];
    let mut ip6 = vec![0u8; 36];
    ip6[15] = 1;
    ip6[31] = 2;
    ip6[32..].copy_from_slice(&[0x1F, 0x90, 0, 80]);
    let unix = vec![b'/'; 216];
    let tlvs = [
        0x01, 0, 2, b'h', b'2', // ALPN
        0x04, 0, 3, 0, 0, 0, // NOOP
        0x20, 0, 5, 0x01, 0, 0, 0, 0, // SSL, verified
    ];
    for (name, bytes) in [
        (
            "v1-tcp4",
            b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n".to_vec(),
        ),
        (
            "v1-tcp6",
            b"PROXY TCP6 ::1 2001:db8::1 56324 443\r\nVOP_DRAFT".to_vec(),
        ),
        ("v1-unknown", b"PROXY UNKNOWN\r\n".to_vec()),
        (
            "v1-unknown-long",
            b"PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n".to_vec(),
        ),
        ("v2-ipv4", v2(1, 0x11, &ip4, &[])),
        ("v2-ipv4-udp", v2(1, 0x12, &ip4, &[])),
        ("v2-ipv6-tlvs", v2(1, 0x21, &ip6, &tlvs)),
        ("v2-local", v2(0, 0x00, &[], &[])),
        ("v2-unix", v2(1, 0x31, &unix, &[])),
        (
            "v2-ipv4-trailing",
            [v2(1, 0x11, &ip4, &tlvs), b"VOP".to_vec()].concat(),
        ),
    ] {
        out.put(name, &bytes);
    }
}

fn main() {
    vec_decode();
    vop_and_vol();
    vts();
    vts_record();
    proxy();
    println!("seeds written to {}/seeds", env!("CARGO_MANIFEST_DIR"));
}
