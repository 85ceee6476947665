//! Every vector group of `vts-vectors.json` (`docs/protocol/vts.md` §11), data-driven:
//! primitives (VHMAC, PRF, Blowfish ECB, sequence numbers), the RSA message
//! encryption, the record layer for every cipher × mode, the negotiation
//! cases and the six complete handshakes replayed against our client and
//! server state machines with the vectors' randoms injected.

use bytes::BytesMut;
use serde_json::Value as Json;
use versile::vts::cipher::{symmetric, CipherAlg, Direction, Mode};
use versile::vts::hash::HashAlg;
use versile::vts::message::{min_be, Opener, Sealer};
use versile::vts::prf::Prf;
use versile::vts::random::ScriptedRandom;
use versile::vts::rsa_block::{asym_decrypt, asym_encrypt};
use versile::vts::vhmac::vhmac;
use versile::vts::RsaBackend;

mod support;
use support::keys::spec_key;
use support::spec_vectors::load_spec_json;
use support::vts_sansio::take_output;

fn hx(v: &Json) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("hex")
}

fn s(v: &Json) -> &str {
    v.as_str().expect("string")
}

fn arr(v: &Json) -> &Vec<Json> {
    v.as_array().expect("array")
}

#[test]
fn vhmac_vectors() {
    let v = load_spec_json("vts-vectors.json");
    let list = arr(&v["primitives"]["vhmac"]);
    assert!(list.len() >= 10);
    for case in list {
        let h = HashAlg::from_name(s(&case["hash"])).unwrap();
        let got = vhmac(h, &hx(&case["key"]), &[&hx(&case["msg"])]);
        assert_eq!(hex::encode(&got), s(&case["vhmac"]), "{case}");
        assert_ne!(hex::encode(&got), s(&case["rfc2104_hmac_for_contrast"]));
    }
}

#[test]
fn prf_vectors() {
    let v = load_spec_json("vts-vectors.json");
    for case in arr(&v["primitives"]["prf"]) {
        let h = HashAlg::from_name(s(&case["hash"])).unwrap();
        let n = case["n"].as_u64().unwrap() as usize;
        let mut prf = Prf::new(h, &hx(&case["secret"]), &hx(&case["seed"]));
        // Taken in uneven slices: the output is one continuous stream.
        let mut out = prf.take(n / 3);
        out.extend(prf.take(n - n / 3));
        assert_eq!(hex::encode(out), s(&case["output"]), "{case}");
    }
}

#[test]
fn blowfish_published_vectors() {
    let v = load_spec_json("vts-vectors.json");
    for case in arr(&v["primitives"]["blowfish_ecb_published"]) {
        let got =
            versile::vts::cipher::blowfish_ecb_encrypt(&hx(&case["key"]), &hx(&case["plaintext"]))
                .unwrap();
        assert_eq!(hex::encode(got), s(&case["ciphertext"]));
    }
}

#[test]
fn sequence_number_encoding() {
    let v = load_spec_json("vts-vectors.json");
    for case in arr(&v["primitives"]["seq_number_encoding"]) {
        let n = case["n"].as_u64().unwrap();
        assert_eq!(hex::encode(min_be(n)), s(&case["bytes"]));
    }
}

#[test]
fn rsa_message_encryption_vectors() {
    let v = load_spec_json("vts-vectors.json");
    let list = arr(&v["rsa_message_encryption"]);
    assert!(!list.is_empty());
    for case in list {
        let kp = spec_key(s(&case["key"]));
        let h = HashAlg::from_name(s(&case["mac_hash"])).unwrap();
        assert_eq!(s(&case["mac_key"]), "");
        let plaintext = hx(&case["plaintext"]);
        let mut rng = ScriptedRandom::new(arr(&case["pad_bytes"]).iter().map(hx));
        let ct = asym_encrypt(kp.public(), h, &plaintext, &mut rng).unwrap();
        assert_eq!(hex::encode(&ct), s(&case["ciphertext"]));
        assert_eq!(rng.remaining(), 0);
        // The default backend, then each one this build has.
        let expected = if cfg!(feature = "rsa-openssl") {
            RsaBackend::OpenSsl
        } else {
            RsaBackend::FixedCrt
        };
        assert_eq!(kp.rsa_backend(), expected);
        let mut backends = vec![RsaBackend::FixedCrt, RsaBackend::Generic];
        if cfg!(feature = "rsa-openssl") {
            backends.push(RsaBackend::OpenSsl);
        } else {
            assert!(kp.clone().with_rsa_backend(RsaBackend::OpenSsl).is_err());
        }
        let keys = std::iter::once(kp.clone()).chain(backends.into_iter().map(|b| {
            kp.clone()
                .with_rsa_backend(b)
                .expect("backend takes the key")
        }));
        for kp in keys {
            assert_eq!(asym_decrypt(&kp, h, &ct).unwrap(), plaintext);
            // Any flipped bit fails (RSA format or MAC), with one error.
            let mut bad = ct.clone();
            bad[5] ^= 1;
            assert!(asym_decrypt(&kp, h, &bad).is_err());
            assert!(asym_decrypt(&kp, h, &ct[..ct.len() - 1]).is_err());
        }
    }
}

#[test]
fn record_layer_vectors() {
    let v = load_spec_json("vts-vectors.json");
    let list = arr(&v["record_layer"]);
    assert_eq!(list.len(), 10);
    for case in list {
        let alg = CipherAlg::from_name(s(&case["cipher"])).unwrap();
        let mode = Mode::from_name(s(&case["mode"])).unwrap();
        let h = HashAlg::from_name(s(&case["mac_hash"])).unwrap();
        let (k, iv, mk) = (hx(&case["key"]), hx(&case["iv"]), hx(&case["mac_key"]));
        let mut sealer = Sealer::new(
            symmetric(alg, mode, Direction::Encrypt, &k, &iv).unwrap(),
            h,
            mk.clone(),
        );
        let mut opener = Opener::new(
            symmetric(alg, mode, Direction::Decrypt, &k, &iv).unwrap(),
            h,
            mk,
            65536,
        );
        let mut next_seq = 0u64;
        for rec in arr(&case["records"]) {
            let seq = rec["seq"].as_u64().unwrap();
            // Records between the listed ones carry "filler %d" (§11).
            while next_seq < seq {
                let filler = format!("filler {next_seq}");
                let mut wire = Vec::new();
                sealer.seal(filler.as_bytes(), &mut wire).unwrap();
                let mut buf = BytesMut::from(&wire[..]);
                assert_eq!(opener.open(&mut buf).unwrap().unwrap(), filler.as_bytes());
                next_seq += 1;
            }
            let p = hx(&rec["plaintext"]);
            let mut wire = Vec::new();
            sealer.seal(&p, &mut wire).unwrap();
            assert_eq!(
                hex::encode(&wire),
                s(&rec["wire"]),
                "{} {} seq {seq}",
                alg.name(),
                mode.name()
            );
            // Open byte by byte: incomplete input gives Ok(None).
            let mut buf = BytesMut::new();
            let mut got = None;
            for (i, b) in wire.iter().enumerate() {
                buf.extend_from_slice(&[*b]);
                let r = opener.open(&mut buf).unwrap();
                if i + 1 < wire.len() {
                    assert!(r.is_none());
                } else {
                    got = r;
                }
            }
            assert_eq!(got.unwrap(), p);
            next_seq += 1;
        }
    }
}

mod scenarios {
    use super::*;
    use std::sync::Arc;
    use versile::vec::{Decoder, DecoderConfig, Entity};
    use versile::vts::config::{Credentials, Suite, VtsConfig};
    use versile::vts::connection::VtsConnection;
    use versile::vts::handshake::derive_keys;
    use versile::vts::handshake::server::negotiate;
    use versile::vts::keys::KeyPolicy;

    fn decode(bytes: &[u8]) -> Entity {
        let mut buf = BytesMut::from(bytes);
        Decoder::new(DecoderConfig::default())
            .decode(&mut buf)
            .unwrap()
            .unwrap()
    }

    fn strs(j: &Json) -> Vec<String> {
        arr(j).iter().map(|x| s(x).to_owned()).collect()
    }

    fn suite(j: &Json) -> Suite {
        Suite {
            prf_hash: HashAlg::from_name(s(&j["prf_hash"])).unwrap(),
            cipher: CipherAlg::from_name(s(&j["cipher"])).unwrap(),
            mode: Mode::from_name(s(&j["mode"])).unwrap(),
            mac_hash: HashAlg::from_name(s(&j["mac_hash"])).unwrap(),
        }
    }

    /// Credentials from a decoded `(flag, payload)` entity (§3.8).
    fn credentials(e: &Entity) -> Option<Credentials> {
        let Entity::Tuple(v) = e else { return None };
        match (&v[0], &v[1]) {
            (Entity::Bool(false), Entity::Bytes(b)) => Some(Credentials::Identity(b.to_vec())),
            (Entity::Bool(true), Entity::Tuple(chain)) => Some(Credentials::Certificates(
                chain
                    .iter()
                    .map(|c| match c {
                        Entity::Bytes(b) => b.to_vec(),
                        _ => panic!("certificate"),
                    })
                    .collect(),
            )),
            _ => panic!("credentials"),
        }
    }

    /// The client's configuration as its M3 shows it.
    fn client_config(m3: &Json, m5_content: &Entity) -> VtsConfig {
        let d = &m3["decoded"]["tuple"];
        let names = |j: &Json| -> Vec<HashAlg> {
            arr(&j["tuple"])
                .iter()
                .map(|x| HashAlg::from_name(s(&x["str"])).unwrap())
                .collect()
        };
        let ciphers = arr(&d[1]["tuple"])
            .iter()
            .map(|c| {
                let c = &c["tuple"];
                (
                    CipherAlg::from_name(s(&c[0]["str"])).unwrap(),
                    arr(&c[1]["tuple"])
                        .iter()
                        .map(|m| Mode::from_name(s(&m["str"])).unwrap())
                        .collect(),
                )
            })
            .collect();
        let Entity::Tuple(content) = m5_content else {
            panic!("content")
        };
        VtsConfig {
            prf_hashes: names(&d[0]),
            ciphers,
            mac_hashes: names(&d[2]),
            key_policy: KeyPolicy::legacy(),
            credentials: credentials(&content[1]),
            ..VtsConfig::default()
        }
    }

    fn msg<'a>(sc: &'a Json, label_prefix: &str) -> Option<&'a Json> {
        arr(&sc["messages"])
            .iter()
            .find(|m| s(&m["label"]).starts_with(label_prefix))
    }

    #[test]
    fn six_handshakes_replayed() {
        let v = load_spec_json("vts-vectors.json");
        let list = arr(&v["scenarios"]);
        assert_eq!(list.len(), 6);
        for sc in list {
            replay(sc);
        }
    }

    fn replay(sc: &Json) {
        let name = s(&sc["name"]);
        let has_key = sc["client_has_key"].as_bool().unwrap();
        let negotiated = suite(&sc["negotiated"]);
        let r = &sc["random_inputs"];
        let m1 = hx(&msg(sc, "client protocol").unwrap()["hex"]);
        let m2 = hx(&msg(sc, "server protocol").unwrap()["hex"]);
        let m3j = msg(sc, "client hello").unwrap();
        let m3 = hx(&m3j["hex"]);
        let m4j = msg(sc, "server hello").unwrap();
        let m4 = hx(&m4j["hex"]);
        let m5j = msg(sc, "client key exchange").unwrap();
        let m5 = hx(&m5j["hex"]);
        let m6j = msg(sc, "server secret");
        assert_eq!(m6j.is_some(), has_key, "{name}");
        let m6 = m6j.map(|m| hx(&m["hex"]));
        let content = decode(&hx(&m5j["detail"]["content_entity_plain"]));

        // Session keys straight from the randoms (§3.6).
        let keys = &sc["session_keys"];
        let srand_s = has_key.then(|| hx(&r["srand_s"]));
        let k = derive_keys(
            &negotiated,
            &hx(&r["rand_c"]),
            &hx(&r["rand_s"]),
            &hx(&r["srand_c"]),
            srand_s.as_deref(),
        );
        assert_eq!(hex::encode(&k.c_key), s(&keys["c_key"]), "{name}");
        assert_eq!(hex::encode(&k.s_key), s(&keys["s_key"]), "{name}");
        assert_eq!(hex::encode(&k.c_iv), s(&keys["c_iv"]), "{name}");
        assert_eq!(hex::encode(&k.s_iv), s(&keys["s_iv"]), "{name}");
        assert_eq!(hex::encode(&k.c_mac), s(&keys["c_mac"]), "{name}");
        assert_eq!(hex::encode(&k.s_mac), s(&keys["s_mac"]), "{name}");

        // ---- our client against the recorded server messages ----
        let ccfg = Arc::new(client_config(m3j, &content));
        let mut crand = vec![hx(&r["rand_c"]), hx(&r["srand_c"]), hx(&r["block_rand"])];
        crand.extend(arr(&m5j["detail"]["header_rsa_pad_bytes"]).iter().map(hx));
        let ckey = has_key.then(|| spec_key("client"));
        let mut client =
            VtsConnection::client_with_rng(ccfg, ckey, Box::new(ScriptedRandom::new(crand)));
        assert_eq!(take_output(&mut client), m1, "{name} M1");
        client.receive(&mut BytesMut::from(&m2[..])).unwrap();
        assert_eq!(
            hex::encode(take_output(&mut client)),
            hex::encode(&m3),
            "{name} M3"
        );
        client.receive(&mut BytesMut::from(&m4[..])).unwrap();
        assert_eq!(
            hex::encode(take_output(&mut client)),
            hex::encode(&m5),
            "{name} M5"
        );
        if let Some(m6) = &m6 {
            assert!(client.is_handshaking());
            client.receive(&mut BytesMut::from(&m6[..])).unwrap();
        }
        assert!(!client.is_handshaking(), "{name}");
        let peer = client.peer().unwrap();
        assert_eq!(peer.suite, negotiated);
        assert_eq!(peer.key.as_ref().unwrap(), spec_key("server").public());

        // ---- our server against the recorded client messages ----
        let server_creds = match &decode(&m4) {
            Entity::Tuple(v) => credentials(&v[6]),
            _ => panic!("M4"),
        };
        let scfg = Arc::new(VtsConfig {
            // The scenario's server preference: its negotiated choice.
            ciphers: vec![(negotiated.cipher, vec![negotiated.mode])],
            key_policy: KeyPolicy::legacy(),
            credentials: server_creds,
            ..VtsConfig::default()
        });
        let mut srand = vec![hx(&r["rand_s"])];
        if let Some(m6j) = m6j {
            srand.push(hx(&r["srand_s"]));
            srand.extend(arr(&m6j["detail"]["rsa_pad_bytes"]).iter().map(hx));
        }
        let mut server = VtsConnection::server_with_rng(
            scfg,
            spec_key("server"),
            Box::new(ScriptedRandom::new(srand)),
        );
        assert!(take_output(&mut server).is_empty());
        server.receive(&mut BytesMut::from(&m1[..])).unwrap();
        assert_eq!(take_output(&mut server), m2, "{name} M2");
        server.receive(&mut BytesMut::from(&m3[..])).unwrap();
        assert_eq!(
            hex::encode(take_output(&mut server)),
            hex::encode(&m4),
            "{name} M4"
        );
        server.receive(&mut BytesMut::from(&m5[..])).unwrap();
        let out = take_output(&mut server);
        assert_eq!(
            hex::encode(&out),
            hex::encode(m6.unwrap_or_default()),
            "{name} M6"
        );
        assert!(!server.is_handshaking());
        let speer = server.peer().unwrap();
        assert_eq!(speer.suite, negotiated);
        assert_eq!(speer.key.is_some(), has_key);
        if let Entity::Tuple(c) = &content {
            assert_eq!(speer.credentials, credentials(&c[1]), "{name}");
        }

        // ---- records, both directions (§4) ----
        let (mut c2s_wire, mut s2c_wire, mut c2s_plain, mut s2c_plain) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut c_out, mut s_out) = (Vec::new(), Vec::new());
        for rec in arr(&sc["records"]) {
            let p = hx(&rec["plaintext"]);
            let w = hx(&rec["wire"]);
            if s(&rec["direction"]) == "c2s" {
                client.write_plaintext(&p).unwrap();
                c_out.extend(take_output(&mut client));
                server.receive(&mut BytesMut::from(&w[..])).unwrap();
                c2s_wire.extend(w);
                c2s_plain.extend(p);
            } else {
                server.write_plaintext(&p).unwrap();
                s_out.extend(take_output(&mut server));
                client.receive(&mut BytesMut::from(&w[..])).unwrap();
                c_out.extend(take_output(&mut client));
                s2c_wire.extend(w);
                s2c_plain.extend(p);
            }
        }
        s_out.extend(take_output(&mut server));
        assert_eq!(
            hex::encode(&c_out),
            hex::encode(&c2s_wire),
            "{name} c2s records"
        );
        assert_eq!(
            hex::encode(&s_out),
            hex::encode(&s2c_wire),
            "{name} s2c records"
        );
        let mut got = BytesMut::new();
        server.read_plaintext(&mut got);
        assert_eq!(&got[..], &c2s_plain[..], "{name}");
        let mut got = BytesMut::new();
        client.read_plaintext(&mut got);
        assert_eq!(&got[..], &s2c_plain[..], "{name}");
    }

    #[test]
    #[allow(clippy::field_reassign_with_default)]
    fn negotiation_vectors() {
        let v = load_spec_json("vts-vectors.json");
        let list = arr(&v["negotiation"]);
        assert_eq!(list.len(), 9);
        for case in list {
            let mut cfg = VtsConfig::default();
            cfg.ciphers = arr(&case["server_cipher_preference"])
                .iter()
                .map(|c| {
                    let c = arr(c);
                    (
                        CipherAlg::from_name(s(&c[0])).unwrap(),
                        arr(&c[1])
                            .iter()
                            .map(|m| Mode::from_name(s(m)).unwrap())
                            .collect(),
                    )
                })
                .collect();
            if let Some(o) = case["server_config"].as_object() {
                cfg.prf_hashes = strs(&o["hhashes"])
                    .iter()
                    .map(|h| HashAlg::from_name(h).unwrap())
                    .collect();
                cfg.mac_hashes = strs(&o["hashes"])
                    .iter()
                    .map(|h| HashAlg::from_name(h).unwrap())
                    .collect();
            }
            let offer = &case["client_offer"];
            let prf = strs(&offer["prf_hashes"]);
            let mac = strs(&offer["mac_hashes"]);
            let ciphers: Vec<(String, Vec<String>)> = arr(&offer["ciphers"])
                .iter()
                .map(|c| (s(&arr(c)[0]).to_owned(), strs(&arr(c)[1])))
                .collect();
            let prf: Vec<&str> = prf.iter().map(String::as_str).collect();
            let mac: Vec<&str> = mac.iter().map(String::as_str).collect();
            let ciphers: Vec<(&str, Vec<&str>)> = ciphers
                .iter()
                .map(|(c, m)| (c.as_str(), m.iter().map(String::as_str).collect()))
                .collect();
            let got = negotiate(&cfg, &prf, &ciphers, &mac);
            let case_name = s(&case["case"]);
            if case["result"].get("error").is_some() {
                assert!(got.is_err(), "{case_name}");
            } else {
                assert_eq!(got.unwrap(), suite(&case["result"]), "{case_name}");
            }
        }
    }
}
