//! Ed25519 (`v1a`): the `whsk_` and `whpk_` keys, signatures checked by an independent
//! verification of the signed content, tampering, malformed entries and keys, headers that mix
//! `v1` and `v1a`.

use super::*;
use ed25519_dalek::Signer as _;

/// RFC 8032's first test key: its seed, then its public key.
const SEED_HEX: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
const PUBLIC_HEX: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
const SK: &str =
    "whsk_nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2DXWpgBgrEKt9VL/tPJZAc6DuFy89qmIyWvAhpo9wdRGg==";
const PK: &str = "whpk_11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
/// RFC 8032's second test key.
const OTHER_SK: &str =
    "whsk_TM0Imyj/ltqdtsNG7BFOD1uKMZ81q6Yk2oz27U+4pvs9QBfD6EOJWpK3CqdNG368nJgszy7ElozAzVXxKvRmDA==";
const OTHER_PK: &str = "whpk_PUAXw+hDiVqStwqnTRt+vJyYLM8uxJaMwM1V8Sr0Zgw=";
/// The first key's signature of vector A's signed content, made by OpenSSL (through Python's
/// `cryptography`), not by this crate.
const SIG_A_ED25519: &str =
    "v1a,fldxM4gAKugP6nnt1hdz3sgGfZ6d99nzrMFnZOELIxbzEHoVmAb2ADpkJK7zgPePmPsle0zV9jSeGlHFG2NVAw==";

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// Vector A, verified at its own time by `verifier`.
fn check(verifier: &Verifier, signatures: &str) -> Result<(), VerifyError> {
    verifier.verify_at(ID_A, &TS_A.to_string(), signatures, BODY_A, at(TS_A))
}

/// The signature of one `v1a,` entry, decoded without our parser.
fn entry_signature(entry: &str) -> ed25519_dalek::Signature {
    let encoded = entry.strip_prefix("v1a,").unwrap();
    let bytes: [u8; 64] = BASE64.decode(encoded).unwrap().try_into().unwrap();
    ed25519_dalek::Signature::from_bytes(&bytes)
}

#[test]
fn keys_parse_and_print() {
    let sk = secret(SK);
    assert_eq!(sk.kind(), SecretKind::Ed25519SigningKey);
    assert!(sk.can_sign());
    assert_eq!(sk.expose(), SK);
    assert_eq!(sk.as_bytes(), [hex(SEED_HEX), hex(PUBLIC_HEX)].concat());

    let pk = secret(PK);
    assert_eq!(pk.kind(), SecretKind::Ed25519PublicKey);
    assert!(!pk.can_sign());
    assert_eq!(pk.expose(), PK);
    assert_eq!(pk.as_bytes(), hex(PUBLIC_HEX));
    assert_eq!(sk.public_key(), Some(pk.clone()));
    assert_eq!(pk.public_key(), Some(pk.clone()));
    assert_eq!(secret(SECRET_A).public_key(), None);
    assert_eq!(secret(SECRET_A).kind(), SecretKind::Symmetric);

    // Surrounding whitespace, as from a file or an environment variable.
    assert_eq!(secret(&format!(" {SK}\n")), sk);
    assert_eq!(secret(&format!("{PK}\n")), pk);

    let generated = Secret::generate_ed25519();
    assert_eq!(generated.kind(), SecretKind::Ed25519SigningKey);
    assert_eq!(generated.as_bytes().len(), 64);
    assert_eq!(generated.expose().len(), "whsk_".len() + 88);
    assert_eq!(secret(&generated.expose()), generated);
    assert_ne!(generated, Secret::generate_ed25519());
    let public = generated.public_key().unwrap();
    assert_eq!(public.expose().len(), "whpk_".len() + 44);
    assert_eq!(secret(&public.expose()), public);
    assert_eq!(public.as_bytes(), &generated.as_bytes()[32..]);
    assert_eq!(
        Secret::try_generate_ed25519().unwrap().kind(),
        SecretKind::Ed25519SigningKey
    );
    // `generate` still makes the symmetric kind.
    assert_eq!(Secret::generate().kind(), SecretKind::Symmetric);
}

#[test]
fn kinds_and_equality() {
    let (sk, pk) = (secret(SK), secret(PK));
    assert_ne!(sk, pk);
    assert_ne!(sk, secret(OTHER_SK));
    assert_ne!(pk, secret(OTHER_PK));
    // The same bytes as another kind are another key.
    let symmetric = Secret::from_bytes(pk.as_bytes()).unwrap();
    assert_eq!(symmetric.as_bytes(), pk.as_bytes());
    assert_ne!(symmetric, pk);
    assert_eq!(SecretKind::Symmetric.prefix(), "whsec_");
    assert_eq!(SecretKind::Ed25519SigningKey.prefix(), "whsk_");
    assert_eq!(SecretKind::Ed25519PublicKey.prefix(), "whpk_");
}

#[test]
fn signature_matches_an_independent_implementation() {
    let sk = secret(SK);
    let signature = sk.sign(ID_A, TS_A, BODY_A);
    assert_eq!(signature, SIG_A_ED25519);
    assert_eq!(
        signature_header([&sk], ID_A, TS_A, BODY_A),
        SIG_A_ED25519,
        "the header is the one entry"
    );

    // ed25519-dalek itself, apart from our Verifier, on the spec's `{id}.{timestamp}.{body}`.
    let public =
        ed25519_dalek::VerifyingKey::from_bytes(&hex(PUBLIC_HEX).try_into().unwrap()).unwrap();
    let content = [format!("{ID_A}.{TS_A}.").as_bytes(), BODY_A].concat();
    public
        .verify_strict(&content, &entry_signature(&signature))
        .unwrap();
    // Signing the content in one piece gives the same (Ed25519 is deterministic).
    let seed: [u8; 32] = hex(SEED_HEX).try_into().unwrap();
    let direct = ed25519_dalek::SigningKey::from_bytes(&seed).sign(&content);
    assert_eq!(entry_signature(&signature), direct);

    // A generated key, a binary body.
    let generated = Secret::generate_ed25519();
    let body = [0xff, 0x00, b'.', 0x80];
    let signature = generated.sign("msg_1", 1_700_000_000, &body);
    let public = ed25519_dalek::VerifyingKey::from_bytes(
        &generated
            .public_key()
            .unwrap()
            .as_bytes()
            .try_into()
            .unwrap(),
    )
    .unwrap();
    let content = [b"msg_1.1700000000.".as_slice(), &body].concat();
    public
        .verify_strict(&content, &entry_signature(&signature))
        .unwrap();
    assert!(
        public
            .verify_strict(&content[1..], &entry_signature(&signature))
            .is_err()
    );
}

#[test]
fn verifies_with_the_public_key_or_the_signing_key() {
    for key in [PK, SK] {
        let verifier = Verifier::new(secret(key));
        assert_eq!(check(&verifier, SIG_A_ED25519), Ok(()), "{key}");
        let map = headers(ID_A, "1614265330", SIG_A_ED25519);
        assert_eq!(verifier.verify_headers_at(&map, BODY_A, at(TS_A)), Ok(()));
        // The timestamp is still checked first.
        assert!(matches!(
            verifier.verify_at(ID_A, "1614265330", SIG_A_ED25519, BODY_A, at(TS_A + 301)),
            Err(VerifyError::TimestampTooOld { .. })
        ));
    }
}

#[test]
fn tampering_or_another_key_fails() {
    let verifier = Verifier::new(secret(PK));
    let ts = TS_A.to_string();
    let mismatch = Err(VerifyError::SignatureMismatch);
    let verify =
        |id: &str, ts: &str, body: &[u8]| verifier.verify_at(id, ts, SIG_A_ED25519, body, at(TS_A));
    assert_eq!(verify(ID_A, &ts, b"{}"), mismatch);
    assert_eq!(verify(ID_A, &ts, &BODY_A[..BODY_A.len() - 1]), mismatch);
    assert_eq!(verify("msg_other", &ts, BODY_A), mismatch);
    assert_eq!(verify(ID_A, &(TS_A + 1).to_string(), BODY_A), mismatch);

    // Another key pair, either way round.
    assert_eq!(
        check(&Verifier::new(secret(OTHER_PK)), SIG_A_ED25519),
        mismatch
    );
    let by_other = secret(OTHER_SK).sign(ID_A, TS_A, BODY_A);
    assert_eq!(check(&verifier, &by_other), mismatch);
    assert_eq!(check(&Verifier::new(secret(OTHER_SK)), &by_other), Ok(()));

    // Each bit of the signature matters.
    let bytes = entry_signature(SIG_A_ED25519).to_bytes();
    for bit in [0, 7, 255, 256, 511] {
        let mut flipped = bytes;
        flipped[bit / 8] ^= 1 << (bit % 8);
        let entry = format!("v1a,{}", BASE64.encode(flipped));
        assert_eq!(check(&verifier, &entry), mismatch, "bit {bit}");
    }
}

#[test]
fn non_canonical_signatures_fail() {
    // `s + L` verifies under the loose equation; the strict check refuses it (malleability).
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut bytes = entry_signature(SIG_A_ED25519).to_bytes();
    let mut carry = 0u16;
    for (byte, l) in bytes[32..].iter_mut().zip(L) {
        let sum = u16::from(*byte) + u16::from(l) + carry;
        *byte = sum as u8;
        carry = sum >> 8;
    }
    assert_eq!(carry, 0);
    let entry = format!("v1a,{}", BASE64.encode(bytes));
    assert_eq!(
        check(&Verifier::new(secret(PK)), &entry),
        Err(VerifyError::SignatureMismatch)
    );
}

#[test]
fn truncated_or_empty_entries_fail() {
    let verifier = Verifier::new(secret(PK));
    let mismatch = Err(VerifyError::SignatureMismatch);
    let sig = SIG_A_ED25519;
    for entry in [
        "v1a,".to_owned(),
        sig[..sig.len() - 1].to_owned(),
        sig[..sig.len() - 4].to_owned(),
        sig[..10].to_owned(),
        sig.trim_end_matches('=').to_owned(),
        format!("{sig}AAAA"),
        sig.replacen('f', "-", 1), // the URL-safe alphabet
        format!("v1a,{}", BASE64.encode([0; 64])),
        format!("v1a,{}", &SIG_A[3..]), // a 32-byte HMAC tag
    ] {
        assert_eq!(check(&verifier, &entry), mismatch, "{entry}");
    }
    // Not `v1a` entries at all.
    for header in [
        "",
        " ",
        "v1a",
        "V1A,",
        &sig[4..],
        &sig.replacen("v1a,", "v1b,", 1),
    ] {
        assert_eq!(
            check(&verifier, header),
            Err(VerifyError::NoSignatures),
            "{header}"
        );
    }
    // Still fine among the garbage.
    assert_eq!(check(&verifier, &format!("v1a, {sig} v1a,AAAA")), Ok(()));
}

#[test]
fn headers_mixing_v1_and_v1a() {
    let v1_garbage = "v1,bm90IHRoZSBzaWduYXR1cmUgb2YgdGhpcyBtZXNzYWdlIQ==";
    let v1a_garbage = format!("v1a,{}", BASE64.encode([0x42; 64]));
    let by_symmetric = Verifier::new(secret(SECRET_A));
    let by_public = Verifier::new(secret(PK));

    // Only the `v1` entry is valid.
    let header = format!("{v1a_garbage} {SIG_A}");
    assert_eq!(check(&by_symmetric, &header), Ok(()));
    assert_eq!(
        check(&by_public, &header),
        Err(VerifyError::SignatureMismatch)
    );
    // Only the `v1a` entry is valid.
    let header = format!("{v1_garbage} {SIG_A_ED25519}");
    assert_eq!(check(&by_public, &header), Ok(()));
    assert_eq!(
        check(&by_symmetric, &header),
        Err(VerifyError::SignatureMismatch)
    );
    // A version the secrets do not verify is ignored, even when valid.
    assert_eq!(
        check(&by_symmetric, SIG_A_ED25519),
        Err(VerifyError::NoSignatures)
    );
    assert_eq!(check(&by_public, SIG_A), Err(VerifyError::NoSignatures));

    // A verifier holding both kinds accepts either.
    let both = Verifier::from_secrets([secret(SECRET_A), secret(PK)]);
    assert_eq!(check(&both, SIG_A), Ok(()));
    assert_eq!(check(&both, SIG_A_ED25519), Ok(()));
    assert_eq!(
        check(&both, &format!("{v1_garbage} {SIG_A_ED25519}")),
        Ok(())
    );
    assert_eq!(check(&both, &format!("{v1a_garbage} {SIG_A}")), Ok(()));
    assert_eq!(
        check(&both, &format!("{v1a_garbage} {v1_garbage}")),
        Err(VerifyError::SignatureMismatch)
    );
}

#[test]
fn rotation_between_kinds_signs_with_both() {
    let (symmetric, sk) = (secret(SECRET_A), secret(SK));
    let header = signature_header([&sk, &symmetric], ID_A, TS_A, BODY_A);
    assert_eq!(header, format!("{SIG_A_ED25519} {SIG_A}"));
    let header_back = signature_header([&symmetric, &sk], ID_A, TS_A, BODY_A);
    assert_eq!(header_back, format!("{SIG_A} {SIG_A_ED25519}"));
    for verifier in [
        Verifier::new(symmetric.clone()),
        Verifier::new(secret(PK)),
        Verifier::from_secrets([secret(OTHER_PK), symmetric.clone()]),
    ] {
        assert_eq!(check(&verifier, &header), Ok(()), "{verifier:?}");
        assert_eq!(check(&verifier, &header_back), Ok(()), "{verifier:?}");
    }
    assert_eq!(
        check(&Verifier::new(secret(OTHER_PK)), &header),
        Err(VerifyError::SignatureMismatch)
    );

    // A public key cannot sign: no entry of its own, nothing else disturbed.
    let pk = secret(PK);
    assert_eq!(pk.sign(ID_A, TS_A, BODY_A), "");
    assert_eq!(signature_header([&pk], ID_A, TS_A, BODY_A), "");
    assert_eq!(
        signature_header([&pk, &symmetric, &pk, &sk, &pk], ID_A, TS_A, BODY_A),
        format!("{SIG_A} {SIG_A_ED25519}")
    );
}

#[test]
fn malformed_keys() {
    let parse = |text: &str| text.parse::<Secret>().err();
    let encode = |bytes: &[u8]| BASE64.encode(bytes);
    let (seed, public) = (hex(SEED_HEX), hex(PUBLIC_HEX));

    for (text, kind) in [
        ("whsk_", SecretKind::Ed25519SigningKey),
        ("whpk_", SecretKind::Ed25519PublicKey),
    ] {
        assert_eq!(parse(text), Some(SecretError::Empty), "{kind:?}");
        assert_eq!(parse(&format!(" {text} ")), Some(SecretError::Empty));
    }

    // Wrong lengths: a bare seed, a byte short or over, a public key given as a signing key.
    let signing_length = |found| SecretError::InvalidLength {
        kind: SecretKind::Ed25519SigningKey,
        expected: 64,
        found,
    };
    let pair = [seed.clone(), public.clone()].concat();
    assert_eq!(
        parse(&format!("whsk_{}", encode(&seed))),
        Some(signing_length(32))
    );
    assert_eq!(
        parse(&format!("whsk_{}", encode(&pair[..63]))),
        Some(signing_length(63))
    );
    assert_eq!(
        parse(&format!(
            "whsk_{}",
            encode(&[pair.as_slice(), &[0]].concat())
        )),
        Some(signing_length(65))
    );
    assert_eq!(
        parse(&format!("whsk_{}", encode(&[7; 1]))),
        Some(signing_length(1))
    );
    let public_length = |found| SecretError::InvalidLength {
        kind: SecretKind::Ed25519PublicKey,
        expected: 32,
        found,
    };
    assert_eq!(
        parse(&format!("whpk_{}", encode(&pair))),
        Some(public_length(64))
    );
    assert_eq!(
        parse(&format!("whpk_{}", encode(&public[..31]))),
        Some(public_length(31))
    );
    assert_eq!(
        parse(&format!(
            "whpk_{}",
            encode(&[public.as_slice(), &[0]].concat())
        )),
        Some(public_length(33))
    );
    assert_eq!(
        parse(&format!("whsk_{}", encode(&[1; 2 * MAX_SECRET_LEN]))),
        Some(SecretError::TooLong {
            max: MAX_SECRET_LEN
        })
    );

    // A public half that is not the seed's: another key's, a flipped bit, zeros.
    let other_public = secret(OTHER_PK).as_bytes().to_vec();
    let mut flipped = public.clone();
    flipped[31] ^= 0x01;
    for half in [other_public, flipped, vec![0; 32]] {
        assert_eq!(
            parse(&format!(
                "whsk_{}",
                encode(&[seed.as_slice(), &half].concat())
            )),
            Some(SecretError::PublicKeyMismatch)
        );
    }

    // Not a point of the curve (y = 2), and the identity point, of small order.
    assert_eq!(
        parse("whpk_AgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
        Some(SecretError::InvalidPublicKey)
    );
    assert_eq!(
        parse("whpk_AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
        Some(SecretError::InvalidPublicKey)
    );

    // Bad base64, as for `whsec_`.
    for text in [
        "whsk_!!!!",
        &SK[..SK.len() - 1],
        &format!("{SK}="),
        &SK.replace('/', "_"),
        &SK.replacen('G', " ", 1),
        "whpk_11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo",
        "whpk_11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURp=",
        "whpk_whpk_11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
        // Upper case is not the prefix, and `_` is not standard base64.
        &SK.replacen("whsk_", "WHSK_", 1),
    ] {
        assert_eq!(parse(text), Some(SecretError::InvalidBase64), "{text}");
    }

    // The messages echo nothing of the key.
    let mismatch = format!("whsk_{}", encode(&[seed.as_slice(), &[0; 32]].concat()));
    for text in [
        mismatch.as_str(),
        "whsk_nWGx!ne",
        "whpk_AgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    ] {
        let err = text.parse::<Secret>().unwrap_err();
        for shown in [err.to_string(), format!("{err:?}")] {
            assert!(
                !shown.contains("nWGx") && !shown.contains("AgAA"),
                "{shown}"
            );
        }
    }
    assert_eq!(
        signing_length(32).to_string(),
        "the Ed25519 signing key (`whsk_`) is 32 bytes long; it must be 64"
    );
}

#[test]
fn debug_never_shows_key_material() {
    let (sk, pk) = (secret(SK), secret(PK));
    let verifier = Verifier::from_secrets([sk.clone(), pk.clone(), secret(SECRET_A)]);
    assert_eq!(format!("{sk:?}"), "Secret(<redacted Ed25519 signing key>)");
    assert_eq!(format!("{pk:?}"), "Secret(<redacted Ed25519 public key>)");
    for shown in [
        format!("{sk:?}"),
        format!("{pk:#?}"),
        format!("{verifier:?}"),
        format!("{verifier:#?}"),
    ] {
        assert!(shown.contains("<redacted"), "{shown}");
        for material in ["whsk_", "whpk_", "nWGx", "11qY", "157", "215"] {
            // 157 = 0x9d and 215 = 0xd7, the first bytes of the seed and the public key.
            assert!(!shown.contains(material), "{material} in {shown}");
        }
    }
}

#[test]
fn garbage_never_panics() {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let alphabet = b"v1a,= +/AZaz09_-whskpec";
    let verifiers = [
        Verifier::new(secret(PK)),
        Verifier::new(secret(SK)),
        Verifier::from_secrets([secret(PK), secret(SECRET_A)]),
    ];
    for _ in 0..500 {
        let len = usize::try_from(next() % 120).unwrap();
        let text: String = (0..len)
            .map(|_| char::from(alphabet[usize::try_from(next() % alphabet.len() as u64).unwrap()]))
            .collect();
        for verifier in &verifiers {
            let _ = check(verifier, &text);
            let _ = check(verifier, &format!("v1a,{text}"));
        }
        let _ = text.parse::<Secret>();
        let _ = format!("whsk_{text}").parse::<Secret>();
        let _ = format!("whpk_{text}").parse::<Secret>();
    }
    // Every 32-byte pattern of one repeated byte, as a public key and as a seed.
    for byte in 0..=u8::MAX {
        let _ = format!("whpk_{}", BASE64.encode([byte; 32])).parse::<Secret>();
        let _ = format!("whsk_{}", BASE64.encode([byte; 64])).parse::<Secret>();
    }
    assert_eq!(check(&verifiers[0], SIG_A_ED25519), Ok(()));
}
