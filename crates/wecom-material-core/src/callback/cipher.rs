//! The `EncodingAESKey` and the AES-256-CBC message layout.

use std::fmt;

use aes::Aes256;
use base64::Engine as _;
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use cbc::cipher::{Array, BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};

use super::error::CallbackError;

/// Length of an `EncodingAESKey` in characters.
const KEY43_LEN: usize = 43;
/// The plaintext is padded to a multiple of this many bytes (not the AES block size).
const PAD_BLOCK: usize = 32;
/// `random16 ‖ u32_be(len)`.
const HEADER_LEN: usize = 20;
/// The receive id shown in [`CallbackError::WrongReceiveId`] is cut to this many characters.
const SHOWN_RECEIVE_ID: usize = 64;

/// Standard base64 that accepts non-zero trailing bits, as real `EncodingAESKey`s have.
const KEY_ENGINE: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
);

/// The 32-byte AES key of an app's callback, from its 43-character `EncodingAESKey`.
///
/// `Debug` prints `EncodingAesKey(***)`; there is no `Display`.
#[derive(Clone)]
pub struct EncodingAesKey([u8; 32]);

impl EncodingAesKey {
    /// Decodes a 43-character `EncodingAESKey` (`base64(key + "=")`, trailing bits allowed: the
    /// official sample key ends in `C`, which a strict decoder rejects).
    ///
    /// ```
    /// # use wecom_material_core::callback::EncodingAesKey;
    /// assert!(EncodingAesKey::parse("jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C").is_ok());
    /// assert!(EncodingAesKey::parse("too short").is_err());
    /// ```
    pub fn parse(key43: &str) -> Result<Self, CallbackError> {
        if key43.len() != KEY43_LEN {
            return Err(CallbackError::BadKey);
        }
        let mut padded = [b'='; KEY43_LEN + 1];
        padded[..KEY43_LEN].copy_from_slice(key43.as_bytes());
        let mut key = [0u8; 32];
        match KEY_ENGINE.decode_slice(padded, &mut key) {
            Ok(32) => Ok(Self(key)),
            _ => Err(CallbackError::BadKey),
        }
    }

    /// Wraps 32 raw key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The 43-character `EncodingAESKey` text of this key (canonical: zero trailing bits), for
    /// the one place that must configure it.
    pub fn expose_key43(&self) -> String {
        let mut text = STANDARD.encode(self.0);
        text.truncate(KEY43_LEN);
        text
    }

    fn iv(&self) -> [u8; 16] {
        let mut iv = [0u8; 16];
        iv.copy_from_slice(&self.0[..16]);
        iv
    }
}

impl fmt::Debug for EncodingAesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EncodingAesKey(***)")
    }
}

/// Encrypts `message` for `receive_id`: AES-256-CBC over
/// `random16 ‖ u32_be(len(message)) ‖ message ‖ receive_id`, padded to 32 bytes, in base64.
///
/// `random16` is the caller's randomness (the core has none).
///
/// A `message` longer than `u32::MAX` bytes, which the layout cannot express, is
/// [`CallbackError::BodyTooLarge`].
pub fn encrypt(
    key: &EncodingAesKey,
    random16: [u8; 16],
    message: &[u8],
    receive_id: &str,
) -> Result<String, CallbackError> {
    let Ok(declared) = u32::try_from(message.len()) else {
        let (len, max) = (message.len(), u32::MAX as usize);
        return Err(CallbackError::BodyTooLarge { len, max });
    };
    let unpadded = HEADER_LEN + message.len() + receive_id.len();
    let pad = PAD_BLOCK - unpadded % PAD_BLOCK;
    let mut buf = Vec::with_capacity(unpadded + pad);
    buf.extend_from_slice(&random16);
    buf.extend_from_slice(&declared.to_be_bytes());
    buf.extend_from_slice(message);
    buf.extend_from_slice(receive_id.as_bytes());
    // `pad` is 1..=32, so it fits a byte.
    buf.resize(unpadded + pad, pad as u8);

    let (blocks, rest) = Array::slice_as_chunks_mut(&mut buf);
    debug_assert!(rest.is_empty());
    cbc::Encryptor::<Aes256>::new(&key.0.into(), &key.iv().into()).encrypt_blocks(blocks);
    Ok(STANDARD.encode(&buf))
}

/// Decrypts a base64 callback ciphertext and returns its message, after checking the block
/// alignment, every padding byte (1..=32), that the declared length fits, and that the
/// receive id at the end equals `expected_receive_id`.
pub fn decrypt(
    key: &EncodingAesKey,
    encrypted_b64: &str,
    expected_receive_id: &str,
) -> Result<Vec<u8>, CallbackError> {
    let mut buf = STANDARD
        .decode(encrypted_b64.as_bytes())
        .map_err(|_| CallbackError::BadBase64)?;
    if buf.is_empty() || buf.len() % 16 != 0 {
        return Err(CallbackError::BadCiphertextLength { len: buf.len() });
    }
    let (blocks, _) = Array::slice_as_chunks_mut(&mut buf);
    cbc::Decryptor::<Aes256>::new(&key.0.into(), &key.iv().into()).decrypt_blocks(blocks);

    let unpadded = unpad(&buf)?;
    let content = &buf[..unpadded];
    let Some((header, rest)) = content.split_first_chunk::<HEADER_LEN>() else {
        return Err(CallbackError::LengthOutOfBounds);
    };
    let declared = u32::from_be_bytes([header[16], header[17], header[18], header[19]]);
    let declared = usize::try_from(declared).map_err(|_| CallbackError::LengthOutOfBounds)?;
    if declared > rest.len() {
        return Err(CallbackError::LengthOutOfBounds);
    }
    let (message, receive_id) = rest.split_at(declared);
    if receive_id != expected_receive_id.as_bytes() {
        return Err(CallbackError::WrongReceiveId {
            expected: expected_receive_id.to_owned(),
            found: String::from_utf8_lossy(receive_id)
                .chars()
                .take(SHOWN_RECEIVE_ID)
                .collect(),
        });
    }
    Ok(message.to_vec())
}

/// The length of `plain` without its PKCS#7 padding to 32 bytes.
fn unpad(plain: &[u8]) -> Result<usize, CallbackError> {
    let Some(&last) = plain.last() else {
        return Err(CallbackError::BadPadding);
    };
    let pad = usize::from(last);
    if !(1..=PAD_BLOCK).contains(&pad) || pad > plain.len() {
        return Err(CallbackError::BadPadding);
    }
    let start = plain.len() - pad;
    if plain[start..].iter().any(|&b| b != last) {
        return Err(CallbackError::BadPadding);
    }
    Ok(start)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
    const RID: &str = "wx5823bf96d3bd56c7";

    fn key() -> EncodingAesKey {
        EncodingAesKey::parse(KEY).unwrap()
    }

    /// Encrypts raw plaintext bytes (already laid out and padded) with the sample key.
    fn encrypt_raw(mut plain: Vec<u8>) -> String {
        let k = key();
        let (blocks, _) = Array::slice_as_chunks_mut(&mut plain);
        cbc::Encryptor::<Aes256>::new(&k.0.into(), &k.iv().into()).encrypt_blocks(blocks);
        STANDARD.encode(&plain)
    }

    /// PKCS#7 to 32 bytes: a pad of the whole text is valid, a pad longer than the text or
    /// of bytes that differ is not.
    #[test]
    fn unpad_takes_a_pad_as_long_as_the_text_and_refuses_a_longer_one() {
        assert_eq!(unpad(&[32; 32]).unwrap(), 0);
        assert_eq!(unpad(&[7, 7, 2, 2]).unwrap(), 2);
        for bad in [&[20u8; 16][..], &[0; 16], &[33; 64], &[1, 3, 2], &[]] {
            assert!(
                matches!(unpad(bad), Err(CallbackError::BadPadding)),
                "{bad:?}"
            );
        }
    }

    /// The IV is the key's first 16 bytes (WeCom's scheme): ciphertexts other implementations
    /// make decrypt here and ours decrypt there.
    #[test]
    fn the_iv_is_the_keys_first_16_bytes() {
        let key = EncodingAesKey::parse("jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C").unwrap();
        assert_eq!(key.iv()[..], key.0[..16]);
    }

    #[test]
    fn sample_key_with_trailing_bits_parses_and_strict_decoder_rejects_it() {
        assert!(STANDARD.decode(format!("{KEY}=")).is_err());
        let k = key();
        // Re-encoding gives the canonical form: same first 42 characters.
        assert_eq!(k.expose_key43()[..42], KEY[..42]);
        assert_eq!(EncodingAesKey::parse(&k.expose_key43()).unwrap().0, k.0);
    }

    #[test]
    fn bad_keys_are_rejected_without_showing_them() {
        for bad in [
            "",
            &KEY[..42],
            &format!("{KEY}A"),
            "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2!",
            "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2=",
            "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2é",
        ] {
            let err = EncodingAesKey::parse(bad).unwrap_err();
            assert_eq!(err, CallbackError::BadKey, "{bad}");
        }
        let shown = format!("{:?}", key());
        assert_eq!(shown, "EncodingAesKey(***)");
    }

    #[test]
    fn official_url_check_vector_decrypts() {
        let echostr = "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==";
        assert_eq!(
            decrypt(&key(), echostr, RID).unwrap(),
            b"1616140317555161061"
        );
    }

    #[test]
    fn wrong_receive_id_is_reported() {
        let echostr = encrypt(&key(), [1; 16], b"hi", "ww_other").unwrap();
        assert_eq!(
            decrypt(&key(), &echostr, RID),
            Err(CallbackError::WrongReceiveId {
                expected: RID.into(),
                found: "ww_other".into()
            })
        );
    }

    #[test]
    fn bad_base64_and_misaligned_ciphertexts() {
        for bad in ["not base64!", "QUJD=", "QQ", "QUJDRA=="] {
            assert!(
                matches!(
                    decrypt(&key(), bad, RID),
                    Err(CallbackError::BadBase64 | CallbackError::BadCiphertextLength { .. })
                ),
                "{bad}"
            );
        }
        assert_eq!(decrypt(&key(), "!!!!", RID), Err(CallbackError::BadBase64));
        assert_eq!(
            decrypt(&key(), "", RID),
            Err(CallbackError::BadCiphertextLength { len: 0 })
        );
        // 17 bytes: not whole blocks.
        assert_eq!(
            decrypt(&key(), &STANDARD.encode([0u8; 17]), RID),
            Err(CallbackError::BadCiphertextLength { len: 17 })
        );
    }

    #[test]
    fn bad_padding_is_rejected() {
        // Pad byte 0, pad byte 33, and inconsistent pad bytes.
        let mut zero = vec![7u8; 64];
        zero[63] = 0;
        let over = vec![33u8; 64];
        let mut uneven = vec![4u8; 64];
        uneven[61] = 5;
        for plain in [zero, over, uneven] {
            assert_eq!(
                decrypt(&key(), &encrypt_raw(plain), RID),
                Err(CallbackError::BadPadding)
            );
        }
    }

    #[test]
    fn declared_length_past_the_end_is_rejected() {
        // Header declares 1000 bytes but only 12 follow.
        let mut plain = vec![0u8; 16];
        plain.extend_from_slice(&1000u32.to_be_bytes());
        plain.extend_from_slice(b"hello world!");
        plain.resize(64, 32);
        assert_eq!(
            decrypt(&key(), &encrypt_raw(plain), RID),
            Err(CallbackError::LengthOutOfBounds)
        );
        // Too short to hold the header at all: 32 bytes of which 16 are padding.
        let mut short = vec![0u8; 16];
        short.resize(32, 16);
        assert_eq!(
            decrypt(&key(), &encrypt_raw(short), RID),
            Err(CallbackError::LengthOutOfBounds)
        );
        // u32::MAX declared.
        let mut huge = vec![0u8; 16];
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        huge.resize(32, 12);
        assert_eq!(
            decrypt(&key(), &encrypt_raw(huge), RID),
            Err(CallbackError::LengthOutOfBounds)
        );
    }

    #[test]
    fn full_32_byte_pad_when_aligned() {
        // 20 + 12 + 0 = 32: aligned, so a whole block of padding (32) is added.
        let b64 = encrypt(&key(), [0; 16], b"twelve bytes", "").unwrap();
        assert_eq!(STANDARD.decode(&b64).unwrap().len(), 64);
        assert_eq!(decrypt(&key(), &b64, "").unwrap(), b"twelve bytes");
    }

    proptest! {
        #[test]
        fn round_trips_every_length_mod_32(
            len in 0usize..200,
            seed in any::<u8>(),
            random16 in any::<[u8; 16]>(),
            rid in "[a-zA-Z0-9_]{0,24}",
        ) {
            let message: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect();
            let b64 = encrypt(&key(), random16, &message, &rid).unwrap();
            let raw = STANDARD.decode(&b64).unwrap();
            prop_assert_eq!(raw.len() % 32, 0);
            prop_assert!(raw.len() > HEADER_LEN + len + rid.len());
            prop_assert_eq!(decrypt(&key(), &b64, &rid).unwrap(), message);
        }

        #[test]
        fn decrypt_never_panics(text in ".{0,200}") {
            let _ = decrypt(&key(), &text, RID);
        }

        #[test]
        fn decrypt_of_random_blocks_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..160)) {
            let _ = decrypt(&key(), &STANDARD.encode(&bytes), RID);
        }
    }

    #[test]
    fn every_length_mod_32_explicitly() {
        for len in 0..=64 {
            let message = vec![b'm'; len];
            let b64 = encrypt(&key(), [9; 16], &message, RID).unwrap();
            assert_eq!(decrypt(&key(), &b64, RID).unwrap(), message, "len {len}");
        }
    }
}
