//! The raw RSA private-key operation of `AsymDec` (`docs/protocol/vts.md` §2.6) with
//! everything that does not depend on the ciphertext computed once, when
//! the key is loaded.
//!
//! `rsa` 0.10's `rsa_decrypt_and_check` rebuilds its blinding per call and
//! works on heap-allocated integers of run-time size; here a two-prime key
//! of 1024, 2048, 3072 or 4096 bits is held as fixed-size `crypto-bigint`
//! integers (`Uint<L>`: the primes, `d mod (p−1)`, `d mod (q−1)`,
//! `q⁻¹ mod p` in Montgomery form, the Montgomery parameters of `p`, `q`
//! and `n`). Other keys (other sizes, more primes, `e` above 64 bits) take
//! the `rsa` crate's path, unchanged.
//!
//! One operation on `c` (public, `< n`):
//!
//! ```text
//! (rᵉ, r⁻¹) ← the key's blinding pair, then squared for the next use
//!                                     c' = c · rᵉ mod n          (base blinding)
//! kₚ, k_q ← 64 fresh random bits      dₚ' = dₚ + kₚ(p−1), d_q' = d_q + k_q(q−1)
//! m₁ = (c' mod p)^dₚ' mod p           m₂ = (c' mod q)^d_q' mod q  (CRT)
//! m' = m₂ + q · (q⁻¹ (m₁ − m₂) mod p)                           (Garner)
//! m  = m' · r⁻¹ mod n                                           (unblind)
//! check mᵉ ≡ c (mod n), else fail                               (CRT fault check)
//! ```
//!
//! Constant time: every step on secret values (the exponents, the primes,
//! `c'`, `m₁`, `m₂`, `r`) is a `crypto-bigint` constant-time routine
//! (fixed-window exponentiation with a masked table scan over the whole
//! exponent width, Montgomery products with a masked final subtraction,
//! the safegcd inversion); the only branches are on public data (`c < n`,
//! the key's size) and on the fresh random `r` (rejection sampling and the
//! retry when `r` shares a factor with `n`).
//!
//! Blinding: the base with `r` from the OS, a pair `(rᵉ, r⁻¹)` serving
//! [`BLINDING_REUSE`] operations squared in between (OpenSSL's
//! `BN_BLINDING_update`; a fresh pair costs an inversion and an `e`-th
//! power, about 15 % of an operation); the exponents with 64 fresh random
//! bits per operation (CFRG RSA guidance §6.4's minimum). `rsa` 0.10 also
//! blinds the CRT moduli (128-bit multiples of `p` and `q`); `ring`,
//! BoringSSL and OpenSSL do not, and neither do we: the wider moduli cost
//! about 40 %, and with constant-time arithmetic and a blinded base and
//! exponent they add nothing a network attacker can observe.

use std::sync::Mutex;

use crypto_bigint::modular::{FixedMontyForm, FixedMontyParams};
use crypto_bigint::{BoxedUint, NonZero, Odd, RandomMod, Uint};
use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use subtle::{ConstantTimeEq, ConstantTimeLess};

use zeroize::{Zeroize, Zeroizing};

/// The key's precomputed CRT values, or `None` for keys this module does
/// not handle (the caller falls back to `rsa`'s own operation).
pub(crate) enum CrtKey {
    /// 1024-bit moduli (the spec vectors' and Python examples' keys).
    K1024(Box<Crt<8, 16, 9>>),
    /// 2048-bit moduli (our default, [`DEFAULT_KEY_BITS`](super::keys::DEFAULT_KEY_BITS)).
    K2048(Box<Crt<16, 32, 17>>),
    /// 3072-bit moduli.
    K3072(Box<Crt<24, 48, 25>>),
    /// 4096-bit moduli (the largest peer key Python accepts).
    K4096(Box<Crt<32, 64, 33>>),
}

impl CrtKey {
    /// Precompute for `key`, if it is a two-prime key of one of the sizes
    /// above with CRT values and `e < 2⁶⁴`.
    pub(crate) fn new(key: &rsa::PrivateKey) -> Option<Self> {
        let bits = key.n().as_ref().bit_width_vartime();
        Some(match bits {
            0..=1024 => CrtKey::K1024(Box::new(Crt::new(key)?)),
            1025..=2048 => CrtKey::K2048(Box::new(Crt::new(key)?)),
            2049..=3072 => CrtKey::K3072(Box::new(Crt::new(key)?)),
            3073..=4096 => CrtKey::K4096(Box::new(Crt::new(key)?)),
            _ => return None,
        })
    }

    /// `c^d mod n` for the big-endian `c` (exactly `k` bytes, the modulus
    /// length), as `k` big-endian bytes; `None` if `c ≥ n`, the OS gave no
    /// randomness, or the result failed the check.
    pub(crate) fn decrypt(&self, c: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        let mut rng = getrandom::SysRng;
        match self {
            CrtKey::K1024(k) => k.decrypt(c, &mut rng),
            CrtKey::K2048(k) => k.decrypt(c, &mut rng),
            CrtKey::K3072(k) => k.decrypt(c, &mut rng),
            CrtKey::K4096(k) => k.decrypt(c, &mut rng),
        }
    }
}

/// A two-prime key with `L`-limb primes, an `N = 2L`-limb modulus and
/// `E = L + 1`-limb blinded exponents.
pub(crate) struct Crt<const L: usize, const N: usize, const E: usize> {
    p: FixedMontyParams<L>,
    q: FixedMontyParams<L>,
    /// `2^(64L)` as a residue mod `p` and mod `q`: reduces the upper half
    /// of a `2L`-limb base with one Montgomery product.
    r_p: FixedMontyForm<L>,
    r_q: FixedMontyForm<L>,
    dp: Uint<L>,
    dq: Uint<L>,
    p_minus_1: Uint<L>,
    q_minus_1: Uint<L>,
    /// `q⁻¹ mod p`.
    qinv: FixedMontyForm<L>,
    n: FixedMontyParams<N>,
    e: Uint<1>,
    e_bits: u32,
    /// Modulus length in bytes.
    k: usize,
    /// The base-blinding pair for the next operation.
    blinding: Mutex<Option<Pair<N>>>,
}

/// Operations one base-blinding pair serves (squared in between) before a
/// fresh one is drawn: OpenSSL's `BN_BLINDING_COUNTER`.
const BLINDING_REUSE: u32 = 32;

/// `(rᵉ, r⁻¹)` mod `n` in Montgomery form, and how often it was used.
struct Pair<const N: usize> {
    r_e: FixedMontyForm<N>,
    r_inv: FixedMontyForm<N>,
    uses: u32,
}

impl<const N: usize> Drop for Pair<N> {
    fn drop(&mut self) {
        self.r_e.zeroize();
        self.r_inv.zeroize();
    }
}

/// `x` as an `L`-limb integer, if it fits.
fn fixed<const L: usize>(x: &BoxedUint) -> Option<Uint<L>> {
    let mut words = [0; L];
    for (i, w) in x.as_words().iter().enumerate() {
        match words.get_mut(i) {
            Some(slot) => *slot = *w,
            None if *w == 0 => {}
            None => return None,
        }
    }
    let out = Uint::from_words(words);
    words.zeroize();
    Some(out)
}

/// Big-endian bytes (at most `8N`) as an `N`-limb integer.
fn from_be<const N: usize>(bytes: &[u8]) -> Option<Uint<N>> {
    if bytes.len() > N * 8 {
        return None;
    }
    let mut words = [0u64; N];
    for (i, chunk) in bytes.rchunks(8).enumerate() {
        let mut w = [0u8; 8];
        w[8 - chunk.len()..].copy_from_slice(chunk);
        words[i] = u64::from_be_bytes(w);
    }
    Some(Uint::from_words(words))
}

/// The low `k` bytes of `x`, big-endian (`x < 2^(8k)`).
fn to_be<const N: usize>(x: &Uint<N>, k: usize) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(vec![0u8; N * 8]);
    for (i, w) in x.as_words().iter().enumerate() {
        let at = (N - 1 - i) * 8;
        out[at..at + 8].copy_from_slice(&w.to_be_bytes());
    }
    out.drain(..N * 8 - k);
    out
}

/// The low and high `L` limbs of an `N = 2L`-limb integer.
fn halves<const L: usize, const N: usize>(x: &Uint<N>) -> (Uint<L>, Uint<L>) {
    let w = x.as_words();
    let mut lo = [0; L];
    let mut hi = [0; L];
    lo.copy_from_slice(&w[..L]);
    hi.copy_from_slice(&w[L..2 * L]);
    let out = (Uint::from_words(lo), Uint::from_words(hi));
    lo.zeroize();
    hi.zeroize();
    out
}

/// `lo + hi · 2^(64L)` as an `N = 2L`-limb integer.
fn join<const L: usize, const N: usize>(lo: &Uint<L>, hi: &Uint<L>) -> Uint<N> {
    let mut w = [0; N];
    w[..L].copy_from_slice(lo.as_words());
    w[L..2 * L].copy_from_slice(hi.as_words());
    let out = Uint::from_words(w);
    w.zeroize();
    out
}

/// A uniformly random 64-bit exponent multiplier (CFRG RSA guidance §6.4
/// asks for at least 64 bits).
fn random_u64(rng: &mut getrandom::SysRng) -> Option<u64> {
    use rand_core::TryRng;
    rng.try_next_u64().ok()
}

impl<const L: usize, const N: usize, const E: usize> Crt<L, N, E> {
    fn new(key: &rsa::PrivateKey) -> Option<Self> {
        debug_assert!(N == 2 * L && E == L + 1);
        let [p, q] = key.primes() else {
            return None;
        };
        let p = Odd::new(fixed::<L>(p.as_ref())?).into_option()?;
        let q = Odd::new(fixed::<L>(q.as_ref())?).into_option()?;
        let n = Odd::new(fixed::<N>(key.n().as_ref())?).into_option()?;
        let e = fixed::<1>(key.e())?;
        let p_params = FixedMontyParams::new(p);
        let q_params = FixedMontyParams::new(q);
        let qinv = fixed::<L>(&key.qinv()?.retrieve())?;
        Some(Crt {
            r_p: FixedMontyForm::new(p_params.one(), &p_params),
            r_q: FixedMontyForm::new(q_params.one(), &q_params),
            dp: fixed(key.dp()?)?,
            dq: fixed(key.dq()?)?,
            p_minus_1: p.as_ref().wrapping_sub(&Uint::ONE),
            q_minus_1: q.as_ref().wrapping_sub(&Uint::ONE),
            qinv: FixedMontyForm::new(&qinv, &p_params),
            p: p_params,
            q: q_params,
            n: FixedMontyParams::new(n),
            e_bits: e.bit_width_vartime(),
            e,
            k: key.size(),
            blinding: Mutex::new(None),
        })
    }

    /// `x mod p` (as a Montgomery form) of a `2L`-limb `x`:
    /// `lo + hi · R` with `R = 2^(64L)`.
    fn reduce(x: &Uint<N>, m: &FixedMontyParams<L>, r: &FixedMontyForm<L>) -> FixedMontyForm<L> {
        let (lo, hi) = halves::<L, N>(x);
        FixedMontyForm::new(&hi, m)
            .mul(r)
            .add(&FixedMontyForm::new(&lo, m))
    }

    /// `d + k·(m−1)` for a random 64-bit `k`, `E` limbs wide.
    fn blind_exponent(d: &Uint<L>, m_minus_1: &Uint<L>, k: u64) -> Uint<E> {
        let k = Uint::<1>::from_u64(k);
        m_minus_1
            .resize::<E>()
            .wrapping_mul(&k)
            .wrapping_add(&d.resize::<E>())
    }

    /// A fresh pair `(rᵉ, r⁻¹)` mod `n` for a uniformly random invertible `r`.
    fn fresh_pair(&self, rng: &mut getrandom::SysRng) -> Option<Pair<N>> {
        let n = self.n.modulus();
        let nz = NonZero::new(*n.as_ref()).into_option()?;
        loop {
            let mut r = Uint::<N>::try_random_mod_vartime(rng, &nz).ok()?;
            let inv = r.invert_odd_mod(n).into_option();
            let r_e = FixedMontyForm::new(&r, &self.n).pow_bounded_exp(&self.e, self.e_bits);
            r.zeroize();
            if let Some(mut inv) = inv {
                let pair = Pair {
                    r_e,
                    r_inv: FixedMontyForm::new(&inv, &self.n),
                    uses: 0,
                };
                inv.zeroize();
                return Some(pair);
            }
        }
    }

    /// The blinding pair for one operation. A fresh pair costs an inversion
    /// and an `e`-th power mod `n` (about 15 % of an operation), so, as
    /// OpenSSL's `BN_BLINDING_update` does, a pair is used
    /// [`BLINDING_REUSE`] times, squared after each use (`r → r²` keeps
    /// `(rᵉ, r⁻¹)` a valid pair), then replaced by a fresh one.
    fn blinding_pair(
        &self,
        rng: &mut getrandom::SysRng,
    ) -> Option<(FixedMontyForm<N>, FixedMontyForm<N>)> {
        let mut cached = self.blinding.lock().unwrap_or_else(|e| e.into_inner());
        let pair = match cached.take() {
            Some(p) if p.uses < BLINDING_REUSE => p,
            _ => {
                // Not under the lock: other workers need not wait for it.
                drop(cached);
                let p = self.fresh_pair(rng)?;
                cached = self.blinding.lock().unwrap_or_else(|e| e.into_inner());
                p
            }
        };
        let out = (pair.r_e, pair.r_inv);
        *cached = Some(Pair {
            r_e: pair.r_e.square(),
            r_inv: pair.r_inv.square(),
            uses: pair.uses + 1,
        });
        Some(out)
    }

    fn decrypt(&self, c: &[u8], rng: &mut getrandom::SysRng) -> Option<Zeroizing<Vec<u8>>> {
        let c = from_be::<N>(c)?;
        // c is the peer's ciphertext: public, so branching on it is fine.
        if !bool::from(c.ct_lt(self.n.modulus().as_ref())) {
            return None;
        }
        // Base blinding: c' = c · rᵉ; the result is m · r.
        let (r_e, r_inv) = self.blinding_pair(rng)?;
        let blinded = FixedMontyForm::new(&c, &self.n).mul(&r_e).retrieve();
        // Exponent blinding, then the two half-size exponentiations.
        let dp = Zeroizing::new(Self::blind_exponent(
            &self.dp,
            &self.p_minus_1,
            random_u64(rng)?,
        ));
        let dq = Zeroizing::new(Self::blind_exponent(
            &self.dq,
            &self.q_minus_1,
            random_u64(rng)?,
        ));
        let mut m1 = Self::reduce(&blinded, &self.p, &self.r_p).pow(&*dp);
        let m2 = Self::reduce(&blinded, &self.q, &self.r_q)
            .pow(&*dq)
            .retrieve();
        // Garner: h = q⁻¹ (m₁ − m₂) mod p; m' = m₂ + h·q < n.
        let h = m1
            .sub(&FixedMontyForm::new(&m2, &self.p))
            .mul(&self.qinv)
            .retrieve();
        m1.zeroize();
        let (lo, hi) = h.widening_mul(self.q.modulus().as_ref());
        let hq = join::<L, N>(&lo, &hi);
        let m_blinded = join::<L, N>(&m2, &Uint::ZERO).wrapping_add(&hq);
        let m = FixedMontyForm::new(&m_blinded, &self.n)
            .mul(&r_inv)
            .retrieve();
        // Fault check (a wrong CRT half would reveal a factor of n).
        let check = FixedMontyForm::new(&m, &self.n)
            .pow_bounded_exp(&self.e, self.e_bits)
            .retrieve();
        let ok = check.ct_eq(&c);
        let out = to_be::<N>(&m, self.k);
        let mut wide = [blinded, m_blinded, m, hq];
        wide.zeroize();
        let mut halves = [m2, h, lo, hi];
        halves.zeroize();
        bool::from(ok).then_some(out)
    }
}

impl<const L: usize, const N: usize, const E: usize> Drop for Crt<L, N, E> {
    fn drop(&mut self) {
        self.dp.zeroize();
        self.dq.zeroize();
        self.p_minus_1.zeroize();
        self.q_minus_1.zeroize();
        self.p.zeroize();
        self.q.zeroize();
        self.qinv.zeroize();
        self.r_p.zeroize();
        self.r_q.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::hazmat::{rsa_decrypt_and_check, rsa_encrypt};

    fn check_against_rsa(key: &rsa::PrivateKey) {
        let crt = CrtKey::new(key).expect("a supported key");
        let k = key.size();
        let prec = key.n_bits_precision();
        for fill in [0u8, 1, 0x5a, 0xff] {
            let mut m = vec![fill; k];
            m[0] = 0;
            let m = BoxedUint::from_be_slice(&m, prec).unwrap();
            let c = rsa_encrypt(key, &m).unwrap();
            let c_bytes = c.to_be_bytes();
            let c_bytes = &c_bytes[c_bytes.len() - k..];
            let ours = crt.decrypt(c_bytes).expect("decrypts");
            let theirs = rsa_decrypt_and_check::<getrandom::SysRng>(key, None, &c).unwrap();
            let theirs = theirs.to_be_bytes();
            assert_eq!(&ours[..], &theirs[theirs.len() - k..]);
        }
        // c ≥ n is refused.
        let n = key.n().as_ref().to_be_bytes();
        assert!(crt.decrypt(&n[n.len() - k..]).is_none());
        assert!(crt.decrypt(&vec![0xff; k]).is_none());
    }

    #[test]
    fn results_stay_right_across_blinding_pair_refreshes() {
        use rsa::pkcs8::DecodePrivateKey;
        let key = crate::vts::RsaKeyPair::from_file(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/spec/vts-vector-client-key.pem"
        ))
        .unwrap();
        let key = rsa::PrivateKey::from_pkcs8_der(&key.to_pkcs8_der().unwrap()).unwrap();
        let crt = CrtKey::new(&key).expect("a supported key");
        let k = key.size();
        let mut m = vec![0x33u8; k];
        m[0] = 0;
        let c = rsa_encrypt(
            &key,
            &BoxedUint::from_be_slice(&m, key.n_bits_precision()).unwrap(),
        )
        .unwrap()
        .to_be_bytes();
        let c = &c[c.len() - k..];
        // Two fresh pairs and squared ones in between.
        for _ in 0..2 * BLINDING_REUSE + 1 {
            assert_eq!(&crt.decrypt(c).expect("decrypts")[..], &m[..]);
        }
    }

    #[test]
    fn matches_the_rsa_crate_on_1024_and_2048_bit_keys() {
        use rsa::pkcs8::DecodePrivateKey;
        let pem = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/spec/vts-vector-server-key.pem"
        ))
        .unwrap();
        let key = crate::vts::RsaKeyPair::from_pem(&pem).unwrap();
        let der = key.to_pkcs8_der().unwrap();
        check_against_rsa(&rsa::PrivateKey::from_pkcs8_der(&der).unwrap());
        let key = crate::vts::RsaKeyPair::generate(2048).unwrap();
        let der = key.to_pkcs8_der().unwrap();
        check_against_rsa(&rsa::PrivateKey::from_pkcs8_der(&der).unwrap());
    }
}
