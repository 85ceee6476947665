//! Symmetric ciphers and modes with persistent chaining state
//! (`docs/protocol/vts.md` §2.4).
//!
//! The block ciphers (`blowfish`, `aes`) and the modes (`cbc`, `ofb`) are
//! the RustCrypto implementations; this module only maps VTS names to them
//! and keeps one stateful encrypter/decrypter per direction. Inputs are
//! always whole blocks (the message format pads, §2.5), so there is no
//! mode-level padding, and the CBC IV / OFB register carries over from one
//! message to the next for the life of the connection.

use cipher::{
    BlockCipherDecrypt, BlockCipherEncrypt, BlockModeDecrypt, BlockModeEncrypt, InnerIvInit,
    KeyInit,
};

use super::error::VtsError;

/// A symmetric cipher by its wire name (`docs/protocol/vts.md` §2.4 table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CipherAlg {
    /// Blowfish with a 448-bit key.
    Blowfish,
    /// Blowfish with a 128-bit key.
    Blowfish128,
    /// AES with a 128-bit key (never in Python's default offer).
    Aes128,
    /// AES with a 192-bit key (never in Python's default offer).
    Aes192,
    /// AES with a 256-bit key; Python offers it only with a working legacy
    /// PyCrypto (`docs/protocol/vts.md` §5.2).
    Aes256,
}

impl CipherAlg {
    /// The name on the wire (`blowfish`, `aes256`, ...).
    pub fn name(self) -> &'static str {
        match self {
            CipherAlg::Blowfish => "blowfish",
            CipherAlg::Blowfish128 => "blowfish128",
            CipherAlg::Aes128 => "aes128",
            CipherAlg::Aes192 => "aes192",
            CipherAlg::Aes256 => "aes256",
        }
    }

    /// The cipher of a wire name; `None` for names we do not support
    /// (an offer's unknown names are skipped, §3.2).
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "blowfish" => CipherAlg::Blowfish,
            "blowfish128" => CipherAlg::Blowfish128,
            "aes128" => CipherAlg::Aes128,
            "aes192" => CipherAlg::Aes192,
            "aes256" => CipherAlg::Aes256,
            _ => return None,
        })
    }

    /// Key bytes VTS derives for this cipher (§2.4, §3.6 `KL`).
    pub fn key_len(self) -> usize {
        match self {
            CipherAlg::Blowfish => 56,
            CipherAlg::Blowfish128 | CipherAlg::Aes128 => 16,
            CipherAlg::Aes192 => 24,
            CipherAlg::Aes256 => 32,
        }
    }

    /// Block size `B`.
    pub fn block_len(self) -> usize {
        match self {
            CipherAlg::Blowfish | CipherAlg::Blowfish128 => 8,
            _ => 16,
        }
    }
}

/// A block-cipher mode by its wire name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Cipher block chaining; the IV is the previous ciphertext block.
    Cbc,
    /// Output feedback; the register carries over between messages.
    Ofb,
}

impl Mode {
    /// The name on the wire (`cbc`, `ofb`).
    pub fn name(self) -> &'static str {
        match self {
            Mode::Cbc => "cbc",
            Mode::Ofb => "ofb",
        }
    }

    /// The mode of a wire name; `None` for names we do not support.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "cbc" => Mode::Cbc,
            "ofb" => Mode::Ofb,
            _ => return None,
        })
    }
}

/// A block transform `T` of the message format (§2.5): plaintext blocks of
/// `block_len()` bytes in, ciphertext blocks of `out_block_len()` bytes out.
pub trait BlockTransform: Send {
    /// Plaintext block size `B`.
    fn block_len(&self) -> usize;
    /// Ciphertext block size `B'`.
    fn out_block_len(&self) -> usize {
        self.block_len()
    }
    /// Transform `data` (a multiple of the input block size) and append the
    /// result to `out`.
    fn transform(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), VtsError>;
    /// Transform `buf` where it lies (a multiple of the block size): the
    /// sealer encrypts a frame built in the output buffer, and the opener
    /// decrypts a record in the buffer its plaintext goes to, without
    /// copies of their own (`docs/performance.md`, "Seventh round"). Only
    /// for transforms whose output blocks are as long as their input
    /// blocks, as every symmetric one's.
    fn transform_in_place(&mut self, buf: &mut [u8]) -> Result<(), VtsError>;
    /// Transform `input` into `out`, of the same length (a multiple of
    /// the block size): the sealer encrypts the bulk of a plaintext
    /// straight from the caller's buffer into the record. Only for
    /// transforms whose output blocks are as long as their input blocks.
    fn transform_into(&mut self, input: &[u8], out: &mut [u8]) -> Result<(), VtsError>;
}

/// Which way a symmetric transform runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Plaintext in, ciphertext out (the sending side).
    Encrypt,
    /// Ciphertext in, plaintext out (the receiving side).
    Decrypt,
}

enum Inner<C: BlockCipherEncrypt + BlockCipherDecrypt> {
    CbcEnc(cbc::Encryptor<C>),
    CbcDec(cbc::Decryptor<C>),
    /// OFB by hand over the block cipher: the register is encrypted in
    /// place and XORed onto the data (SP 800-38A §6.4). The `ofb` crate's
    /// stream wrapper is not nameable generically here; this is the whole
    /// mode and it is checked against every OFB vector.
    Ofb {
        cipher: C,
        register: Vec<u8>,
    },
}

struct Moded<C: BlockCipherEncrypt + BlockCipherDecrypt> {
    inner: Inner<C>,
    block: usize,
}

impl<C> Moded<C>
where
    C: BlockCipherEncrypt + BlockCipherDecrypt + KeyInit + Send,
{
    fn new(mode: Mode, dir: Direction, key: &[u8], iv: &[u8]) -> Result<Self, VtsError> {
        let bad = |_| VtsError::Key("bad symmetric key or IV length".into());
        let cipher = C::new_from_slice(key).map_err(bad)?;
        let inner = match (mode, dir) {
            (Mode::Cbc, Direction::Encrypt) => {
                Inner::CbcEnc(cbc::Encryptor::inner_iv_slice_init(cipher, iv).map_err(bad)?)
            }
            (Mode::Cbc, Direction::Decrypt) => {
                Inner::CbcDec(cbc::Decryptor::inner_iv_slice_init(cipher, iv).map_err(bad)?)
            }
            // OFB is the same operation both ways (§2.4).
            (Mode::Ofb, _) => Inner::Ofb {
                cipher,
                register: iv.to_vec(),
            },
        };
        Ok(Moded {
            inner,
            block: iv.len(),
        })
    }
}

impl<C> BlockTransform for Moded<C>
where
    C: BlockCipherEncrypt + BlockCipherDecrypt + Send,
{
    fn block_len(&self) -> usize {
        self.block
    }

    fn transform(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), VtsError> {
        if !data.len().is_multiple_of(self.block) {
            return Err(VtsError::BadLength);
        }
        let start = out.len();
        out.extend_from_slice(data);
        self.transform_in_place(&mut out[start..])
    }

    fn transform_in_place(&mut self, buf: &mut [u8]) -> Result<(), VtsError> {
        if !buf.len().is_multiple_of(self.block) {
            return Err(VtsError::BadLength);
        }
        match &mut self.inner {
            Inner::Ofb { cipher, register } => {
                for chunk in buf.chunks_exact_mut(self.block) {
                    let reg = <&mut cipher::Block<C>>::try_from(&mut register[..])
                        .map_err(|_| VtsError::BadLength)?;
                    cipher.encrypt_block(reg);
                    for (b, k) in chunk.iter_mut().zip(reg.iter()) {
                        *b ^= k;
                    }
                }
            }
            // CBC hands the backend all blocks at once: a call per block
            // also set the backend up per block (the VAES-512 AES backend
            // broadcasts its 15 round keys each time), 61 % of a 1 MiB VTS
            // echo's CPU in a build without LTO (`docs/performance.md`,
            // "Seventh round").
            Inner::CbcEnc(c) => {
                let (blocks, rest) = cipher::Block::<cbc::Encryptor<C>>::slice_as_chunks_mut(buf);
                if !rest.is_empty() {
                    return Err(VtsError::BadLength);
                }
                c.encrypt_blocks(blocks);
            }
            Inner::CbcDec(c) => {
                let (blocks, rest) = cipher::Block::<cbc::Decryptor<C>>::slice_as_chunks_mut(buf);
                if !rest.is_empty() {
                    return Err(VtsError::BadLength);
                }
                c.decrypt_blocks(blocks);
            }
        }
        Ok(())
    }

    fn transform_into(&mut self, input: &[u8], out: &mut [u8]) -> Result<(), VtsError> {
        if input.len() != out.len() || !input.len().is_multiple_of(self.block) {
            return Err(VtsError::BadLength);
        }
        match &mut self.inner {
            Inner::CbcEnc(c) => {
                let (from, _) = cipher::Block::<cbc::Encryptor<C>>::slice_as_chunks(input);
                let (to, _) = cipher::Block::<cbc::Encryptor<C>>::slice_as_chunks_mut(out);
                c.encrypt_blocks_b2b(from, to)
                    .map_err(|_| VtsError::BadLength)
            }
            Inner::CbcDec(c) => {
                let (from, _) = cipher::Block::<cbc::Decryptor<C>>::slice_as_chunks(input);
                let (to, _) = cipher::Block::<cbc::Decryptor<C>>::slice_as_chunks_mut(out);
                c.decrypt_blocks_b2b(from, to)
                    .map_err(|_| VtsError::BadLength)
            }
            Inner::Ofb { .. } => {
                out.copy_from_slice(input);
                self.transform_in_place(out)
            }
        }
    }
}

/// A keyed symmetric cipher in a mode, one direction, stateful.
pub fn symmetric(
    alg: CipherAlg,
    mode: Mode,
    dir: Direction,
    key: &[u8],
    iv: &[u8],
) -> Result<Box<dyn BlockTransform>, VtsError> {
    if key.len() != alg.key_len() || iv.len() != alg.block_len() {
        return Err(VtsError::Key("bad symmetric key or IV length".into()));
    }
    Ok(match alg {
        CipherAlg::Blowfish | CipherAlg::Blowfish128 => {
            Box::new(Moded::<blowfish::Blowfish>::new(mode, dir, key, iv)?)
        }
        CipherAlg::Aes128 => Box::new(Moded::<aes::Aes128>::new(mode, dir, key, iv)?),
        CipherAlg::Aes192 => Box::new(Moded::<aes::Aes192>::new(mode, dir, key, iv)?),
        CipherAlg::Aes256 => Box::new(Moded::<aes::Aes256>::new(mode, dir, key, iv)?),
    })
}

/// Single-block ECB encryption, for the published Blowfish vectors only.
pub fn blowfish_ecb_encrypt(key: &[u8], block: &[u8]) -> Result<Vec<u8>, VtsError> {
    let c = <blowfish::Blowfish>::new_from_slice(key)
        .map_err(|_| VtsError::Key("bad Blowfish key length".into()))?;
    let mut b =
        cipher::Block::<blowfish::Blowfish>::try_from(block).map_err(|_| VtsError::BadLength)?;
    c.encrypt_block(&mut b);
    Ok(b.to_vec())
}
