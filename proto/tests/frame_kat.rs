//! Known-answer tests of the sealed-frame crypto against published vectors:
//! - key derivation: RFC 8613 Appendix C.1 (with Master Salt), C.2 (without)
//!   and C.3 (with ID Context), client (C.x.1) and server (C.x.2);
//! - nonces: RFC 8613 Appendix C.1–C.3 (Partial IV 0) and C.4–C.6, C.8;
//! - AES-CCM-16-64-128: RFC 8613 Appendix C.4–C.8 (key, nonce, AAD,
//!   plaintext, ciphertext‖tag) and RFC 3610 §8 Packet Vector #1 (M = 8,
//!   L = 2: the same CCM parameters).
//!
//! The vectors are copied from the RFC text; nothing here is computed by
//! this code. The last test checks how `seal` composes these primitives.

mod common;

use common::{DEVICE_ID, KEY_ID, SALT, SECRET, hex, hex_array, pair};
use flotta_proto::frame::{
    FrameType, KEY_LEN, NONCE_LEN, TAG_LEN, decrypt_detached, derive_oscore, encrypt_detached,
    oscore_nonce, seal,
};

const MASTER_SECRET: &str = "0102030405060708090a0b0c0d0e0f10";
const MASTER_SALT: &str = "9e7ca92223786340";

struct Derivation {
    section: &'static str,
    salt: &'static str,
    id_context: Option<&'static str>,
    sender_id: &'static str,
    recipient_id: &'static str,
    sender_key: &'static str,
    recipient_key: &'static str,
    common_iv: &'static str,
    sender_nonce_piv0: &'static str,
    recipient_nonce_piv0: &'static str,
}

/// RFC 8613 Appendix C.1.1 – C.3.2.
const DERIVATIONS: &[Derivation] = &[
    Derivation {
        section: "C.1.1",
        salt: MASTER_SALT,
        id_context: None,
        sender_id: "",
        recipient_id: "01",
        sender_key: "f0910ed7295e6ad4b54fc793154302ff",
        recipient_key: "ffb14e093c94c9cac9471648b4f98710",
        common_iv: "4622d4dd6d944168eefb54987c",
        sender_nonce_piv0: "4622d4dd6d944168eefb54987c",
        recipient_nonce_piv0: "4722d4dd6d944169eefb54987c",
    },
    Derivation {
        section: "C.1.2",
        salt: MASTER_SALT,
        id_context: None,
        sender_id: "01",
        recipient_id: "",
        sender_key: "ffb14e093c94c9cac9471648b4f98710",
        recipient_key: "f0910ed7295e6ad4b54fc793154302ff",
        common_iv: "4622d4dd6d944168eefb54987c",
        sender_nonce_piv0: "4722d4dd6d944169eefb54987c",
        recipient_nonce_piv0: "4622d4dd6d944168eefb54987c",
    },
    Derivation {
        section: "C.2.1",
        salt: "",
        id_context: None,
        sender_id: "00",
        recipient_id: "01",
        sender_key: "321b26943253c7ffb6003b0b64d74041",
        recipient_key: "e57b5635815177cd679ab4bcec9d7dda",
        common_iv: "be35ae297d2dace910c52e99f9",
        sender_nonce_piv0: "bf35ae297d2dace910c52e99f9",
        recipient_nonce_piv0: "bf35ae297d2dace810c52e99f9",
    },
    Derivation {
        section: "C.2.2",
        salt: "",
        id_context: None,
        sender_id: "01",
        recipient_id: "00",
        sender_key: "e57b5635815177cd679ab4bcec9d7dda",
        recipient_key: "321b26943253c7ffb6003b0b64d74041",
        common_iv: "be35ae297d2dace910c52e99f9",
        sender_nonce_piv0: "bf35ae297d2dace810c52e99f9",
        recipient_nonce_piv0: "bf35ae297d2dace910c52e99f9",
    },
    Derivation {
        section: "C.3.1",
        salt: MASTER_SALT,
        id_context: Some("37cbf3210017a2d3"),
        sender_id: "",
        recipient_id: "01",
        sender_key: "af2a1300a5e95788b356336eeecd2b92",
        recipient_key: "e39a0c7c77b43f03b4b39ab9a268699f",
        common_iv: "2ca58fb85ff1b81c0b7181b85e",
        sender_nonce_piv0: "2ca58fb85ff1b81c0b7181b85e",
        recipient_nonce_piv0: "2da58fb85ff1b81d0b7181b85e",
    },
    Derivation {
        section: "C.3.2",
        salt: MASTER_SALT,
        id_context: Some("37cbf3210017a2d3"),
        sender_id: "01",
        recipient_id: "",
        sender_key: "e39a0c7c77b43f03b4b39ab9a268699f",
        recipient_key: "af2a1300a5e95788b356336eeecd2b92",
        common_iv: "2ca58fb85ff1b81c0b7181b85e",
        sender_nonce_piv0: "2da58fb85ff1b81d0b7181b85e",
        recipient_nonce_piv0: "2ca58fb85ff1b81c0b7181b85e",
    },
];

#[test]
fn rfc8613_appendix_c_key_derivation() {
    for v in DERIVATIONS {
        let ctx = v.id_context.map(hex);
        let keys = derive_oscore(
            &hex(MASTER_SECRET),
            &hex(v.salt),
            &hex(v.sender_id),
            &hex(v.recipient_id),
            ctx.as_deref(),
        )
        .unwrap();
        assert_eq!(
            keys.sender_key.to_vec(),
            hex(v.sender_key),
            "{} sender key",
            v.section
        );
        assert_eq!(
            keys.recipient_key.to_vec(),
            hex(v.recipient_key),
            "{} recipient key",
            v.section
        );
        assert_eq!(
            keys.common_iv.to_vec(),
            hex(v.common_iv),
            "{} common IV",
            v.section
        );
        let iv = hex_array::<NONCE_LEN>(v.common_iv);
        let sender_nonce = oscore_nonce(&iv, &hex(v.sender_id), 0).unwrap();
        let recipient_nonce = oscore_nonce(&iv, &hex(v.recipient_id), 0).unwrap();
        assert_eq!(
            sender_nonce.to_vec(),
            hex(v.sender_nonce_piv0),
            "{} sender nonce",
            v.section
        );
        assert_eq!(
            recipient_nonce.to_vec(),
            hex(v.recipient_nonce_piv0),
            "{} recipient nonce",
            v.section
        );
    }
}

struct Message {
    section: &'static str,
    key: &'static str,
    common_iv: &'static str,
    nonce_id: &'static str,
    partial_iv: u64,
    nonce: &'static str,
    aad: &'static str,
    plaintext: &'static str,
    ciphertext_and_tag: &'static str,
}

/// The OSCORE Enc_structure of the C.4 request (and of C.7/C.8, its
/// responses), RFC 8613 Appendix C.4.
const AAD_C4: &str = "8368456e63727970743040488501810a40411440";

/// RFC 8613 Appendix C.4 – C.8.
const MESSAGES: &[Message] = &[
    Message {
        section: "C.4",
        key: "f0910ed7295e6ad4b54fc793154302ff",
        common_iv: "4622d4dd6d944168eefb54987c",
        nonce_id: "",
        partial_iv: 20,
        nonce: "4622d4dd6d944168eefb549868",
        aad: AAD_C4,
        plaintext: "01b3747631",
        ciphertext_and_tag: "612f1092f1776f1c1668b3825e",
    },
    Message {
        section: "C.5",
        key: "321b26943253c7ffb6003b0b64d74041",
        common_iv: "be35ae297d2dace910c52e99f9",
        nonce_id: "00",
        partial_iv: 20,
        nonce: "bf35ae297d2dace910c52e99ed",
        aad: "8368456e63727970743040498501810a4100411440",
        plaintext: "01b3747631",
        ciphertext_and_tag: "4ed339a5a379b0b8bc731fffb0",
    },
    Message {
        section: "C.6",
        key: "af2a1300a5e95788b356336eeecd2b92",
        common_iv: "2ca58fb85ff1b81c0b7181b85e",
        nonce_id: "",
        partial_iv: 20,
        nonce: "2ca58fb85ff1b81c0b7181b84a",
        aad: AAD_C4,
        plaintext: "01b3747631",
        ciphertext_and_tag: "72cd7273fd331ac45cffbe55c3",
    },
    Message {
        section: "C.7",
        key: "ffb14e093c94c9cac9471648b4f98710",
        common_iv: "4622d4dd6d944168eefb54987c",
        nonce_id: "",
        partial_iv: 20,
        nonce: "4622d4dd6d944168eefb549868",
        aad: AAD_C4,
        plaintext: "45ff48656c6c6f20576f726c6421",
        ciphertext_and_tag: "dbaad1e9a7e7b2a813d3c31524378303cdafae119106",
    },
    Message {
        section: "C.8",
        key: "ffb14e093c94c9cac9471648b4f98710",
        common_iv: "4622d4dd6d944168eefb54987c",
        nonce_id: "01",
        partial_iv: 0,
        nonce: "4722d4dd6d944169eefb54987c",
        aad: AAD_C4,
        plaintext: "45ff48656c6c6f20576f726c6421",
        ciphertext_and_tag: "4d4c13669384b67354b2b6175ff4b8658c666a6cf88e",
    },
];

#[test]
fn rfc8613_appendix_c_nonces_and_aes_ccm_16_64_128() {
    for m in MESSAGES {
        let iv = hex_array::<NONCE_LEN>(m.common_iv);
        let nonce = oscore_nonce(&iv, &hex(m.nonce_id), m.partial_iv).unwrap();
        assert_eq!(nonce.to_vec(), hex(m.nonce), "{} nonce", m.section);
        check_ccm(
            m.section,
            m.key,
            m.nonce,
            m.aad,
            m.plaintext,
            m.ciphertext_and_tag,
        );
    }
}

/// RFC 3610 §8, Packet Vector #1: AES-128 CCM with M = 8, L = 2.
#[test]
fn rfc3610_packet_vector_1() {
    check_ccm(
        "RFC 3610 #1",
        "c0c1c2c3c4c5c6c7c8c9cacbcccdcecf",
        "00000003020100a0a1a2a3a4a5",
        "0001020304050607",
        "08090a0b0c0d0e0f101112131415161718191a1b1c1d1e",
        "588c979a61c663d2f066d0c2c0f989806d5f6b61dac38417e8d12cfdf926e0",
    );
}

fn check_ccm(section: &str, key: &str, nonce: &str, aad: &str, plaintext: &str, sealed: &str) {
    let key = hex_array::<KEY_LEN>(key);
    let nonce = hex_array::<NONCE_LEN>(nonce);
    let aad = hex(aad);
    let mut buf = hex(plaintext);
    let tag = encrypt_detached(&key, &nonce, &aad, &mut buf).expect("encrypt");
    buf.extend_from_slice(&tag);
    assert_eq!(buf, hex(sealed), "{section} ciphertext and tag");

    let body_len = buf.len() - TAG_LEN;
    let (body, tag) = buf.split_at_mut(body_len);
    let tag: [u8; TAG_LEN] = (&*tag).try_into().expect("tag length");
    decrypt_detached(&key, &nonce, &aad, body, &tag).expect("decrypt");
    assert_eq!(body.to_vec(), hex(plaintext), "{section} decrypts");
}

/// A frame is exactly: header | counter | [key id] | CCM(K_up, nonce, AAD, pt)
/// | tag, with K_up, the IV and the nonce from the (KAT-checked) OSCORE
/// derivation with flotta's ids (device = key id, server = empty, ID Context
/// = epoch) and the AAD of FRAMES.md, built here independently.
#[test]
fn seal_composes_the_checked_primitives_as_specified() {
    let epoch: u32 = 7;
    let (device, _) = pair(epoch);
    let keys = derive_oscore(&SECRET, &SALT, &KEY_ID.0, &[], Some(&epoch.to_be_bytes())).unwrap();
    let counter: u32 = 0x01_02_03;
    let plaintext = b"heartbeat";
    for with_key_id in [false, true] {
        let mut frame = [0u8; 64];
        let n = seal(
            &device,
            FrameType::UplinkData,
            counter,
            with_key_id,
            plaintext,
            &mut frame,
        )
        .unwrap();
        // 001 00 K E 0: version 1, uplink data, key-id flag, epoch 7 is odd.
        let first = 0b0010_0010 | if with_key_id { 0b100 } else { 0 };
        let mut expected = vec![first, 0x01, 0x02, 0x03];
        if with_key_id {
            expected.extend_from_slice(&KEY_ID.0);
        }
        let mut aad = vec![first, 0x01, 0x02, 0x03];
        aad.extend_from_slice(&KEY_ID.0);
        aad.push(u8::try_from(DEVICE_ID.len()).unwrap());
        aad.extend_from_slice(DEVICE_ID);
        let nonce = oscore_nonce(&keys.common_iv, &KEY_ID.0, u64::from(counter)).unwrap();
        let mut body = plaintext.to_vec();
        let tag = encrypt_detached(&keys.sender_key, &nonce, &aad, &mut body).unwrap();
        expected.extend_from_slice(&body);
        expected.extend_from_slice(&tag);
        assert_eq!(&frame[..n], &expected[..], "with key id: {with_key_id}");
    }
}
