//! Tests of signing and verifying: the Standard Webhooks test vectors, rotation, tolerance,
//! malformed headers and secrets. (Past 600 lines: one case per rule of the specification.)
//! Ed25519 (`v1a`) has its own file, `tests/ed25519.rs`.

use super::*;
use http::{HeaderMap, HeaderValue};

mod ed25519;

const SECRET_A: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const ID_A: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const TS_A: i64 = 1614265330;
const BODY_A: &[u8] = br#"{"test": 2432232314}"#;
const SIG_A: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

const SECRET_B: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const ID_B: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
const TS_B: i64 = 1649367553;
const BODY_B: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;
const SIG_B: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";

fn secret(text: &str) -> Secret {
    text.parse().unwrap()
}

fn at(unix: i64) -> SystemTime {
    if unix >= 0 {
        UNIX_EPOCH + Duration::from_secs(unix.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_secs(unix.unsigned_abs())
    }
}

fn unix_now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

/// Vector A, verified at `now`.
fn verify_a(signatures: &str, now: i64) -> Result<(), VerifyError> {
    Verifier::new(secret(SECRET_A)).verify_at(ID_A, &TS_A.to_string(), signatures, BODY_A, at(now))
}

fn headers(id: &str, timestamp: &str, signatures: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(HEADER_ID, id.parse().unwrap());
    headers.insert(HEADER_TIMESTAMP, timestamp.parse().unwrap());
    headers.insert(HEADER_SIGNATURE, signatures.parse().unwrap());
    headers
}

#[test]
fn vector_a() {
    assert_eq!(secret(SECRET_A).sign(ID_A, TS_A, BODY_A), SIG_A);
    assert_eq!(verify_a(SIG_A, TS_A), Ok(()));
}

#[test]
fn vector_b() {
    let verifier = Verifier::new(secret(SECRET_B));
    assert_eq!(secret(SECRET_B).sign(ID_B, TS_B, BODY_B), SIG_B);
    assert_eq!(
        verifier.verify_at(ID_B, &TS_B.to_string(), SIG_B, BODY_B, at(TS_B)),
        Ok(())
    );
    assert_eq!(
        verifier.verify_headers_at(&headers(ID_B, "1649367553", SIG_B), BODY_B, at(TS_B)),
        Ok(())
    );
}

#[test]
fn altered_message_fails() {
    let verifier = Verifier::new(secret(SECRET_A));
    let ts = TS_A.to_string();
    let mismatch = Err(VerifyError::SignatureMismatch);
    assert_eq!(
        verifier.verify_at(ID_A, &ts, SIG_A, b"{}", at(TS_A)),
        mismatch
    );
    assert_eq!(
        verifier.verify_at("msg_other", &ts, SIG_A, BODY_A, at(TS_A)),
        mismatch
    );
    let later = (TS_A + 1).to_string();
    assert_eq!(
        verifier.verify_at(ID_A, &later, SIG_A, BODY_A, at(TS_A)),
        mismatch
    );
    // Another secret.
    let other = Verifier::new(secret(SECRET_B));
    assert_eq!(
        other.verify_at(ID_A, &ts, SIG_A, BODY_A, at(TS_A)),
        mismatch
    );
}

#[test]
fn truncated_or_empty_entries_fail() {
    let mismatch = Err(VerifyError::SignatureMismatch);
    assert_eq!(verify_a("v1,", TS_A), mismatch);
    assert_eq!(verify_a("v1,g0hM9SsE+OTPJTGt", TS_A), mismatch);
    assert_eq!(verify_a(&SIG_A[..SIG_A.len() - 1], TS_A), mismatch);
    assert_eq!(verify_a(&SIG_A[..8], TS_A), mismatch);
    // Unpadded, extended, or in another base64 alphabet: not the canonical encoding.
    assert_eq!(verify_a(SIG_A.trim_end_matches('='), TS_A), mismatch);
    assert_eq!(verify_a(&format!("{SIG_A}AAAA"), TS_A), mismatch);
    assert_eq!(
        verify_a(&SIG_A.replace('+', "-").replace('/', "_"), TS_A),
        mismatch
    );
    // A bare tag without its version, or just the version: no v1 entry at all.
    assert_eq!(verify_a(&SIG_A[3..], TS_A), Err(VerifyError::NoSignatures));
    assert_eq!(verify_a("v1", TS_A), Err(VerifyError::NoSignatures));
    assert_eq!(verify_a("", TS_A), Err(VerifyError::NoSignatures));
    assert_eq!(verify_a("   ", TS_A), Err(VerifyError::NoSignatures));
}

#[test]
fn one_valid_entry_among_several_passes() {
    let garbage = "v1,bm90IHRoZSBzaWduYXR1cmUgb2YgdGhpcyBtZXNzYWdlIQ==";
    let other = secret(SECRET_B).sign(ID_A, TS_A, BODY_A);
    // An Ed25519 entry (64-byte signature) that this verifier skips.
    let v1a = format!("v1a,{}", BASE64.encode([0x42; 64]));
    for header in [
        format!("{garbage} {SIG_A}"),
        format!("{SIG_A} {garbage}"),
        format!("{other} {SIG_A} v1,"),
        format!("v2,{} {v1a} {garbage} {SIG_A}", &SIG_A[3..]),
        format!("  {garbage}\t{SIG_A}  "),
    ] {
        assert_eq!(verify_a(&header, TS_A), Ok(()), "{header}");
    }
    assert_eq!(
        verify_a(&format!("{garbage} {other} v1,"), TS_A),
        Err(VerifyError::SignatureMismatch)
    );
}

#[test]
fn unknown_versions_are_ignored() {
    // Even carrying the right tag, a `v2` entry is not a `v1` signature.
    let v2 = SIG_A.replacen("v1,", "v2,", 1);
    assert_eq!(verify_a(&v2, TS_A), Err(VerifyError::NoSignatures));
    assert_eq!(
        verify_a(&format!("v1a,{}", &SIG_A[3..]), TS_A),
        Err(VerifyError::NoSignatures)
    );
    assert_eq!(
        verify_a(&format!("V1,{}", &SIG_A[3..]), TS_A),
        Err(VerifyError::NoSignatures)
    );
    assert_eq!(verify_a(&format!("{v2} {SIG_A}"), TS_A), Ok(()));
}

#[test]
fn tolerance_edges() {
    assert_eq!(verify_a(SIG_A, TS_A + 300), Ok(()));
    assert_eq!(verify_a(SIG_A, TS_A - 300), Ok(()));
    assert_eq!(
        verify_a(SIG_A, TS_A + 301),
        Err(VerifyError::TimestampTooOld {
            age_secs: 301,
            tolerance_secs: 300
        })
    );
    assert_eq!(
        verify_a(SIG_A, TS_A - 301),
        Err(VerifyError::TimestampTooNew {
            ahead_secs: 301,
            tolerance_secs: 300
        })
    );
    // Sub-second parts of `now` are dropped, as the timestamp has none.
    let verifier = Verifier::new(secret(SECRET_A));
    let ts = TS_A.to_string();
    let nearly_301 = at(TS_A + 300) + Duration::from_millis(999);
    assert_eq!(
        verifier.verify_at(ID_A, &ts, SIG_A, BODY_A, nearly_301),
        Ok(())
    );
    // The timestamp is checked before the signature.
    assert!(matches!(
        verify_a("v1,", TS_A + 301),
        Err(VerifyError::TimestampTooOld { .. })
    ));
}

#[test]
fn custom_tolerance() {
    let ts = TS_A.to_string();
    let strict = Verifier::new(secret(SECRET_A)).tolerance(Duration::ZERO);
    assert_eq!(strict.verify_at(ID_A, &ts, SIG_A, BODY_A, at(TS_A)), Ok(()));
    assert!(
        strict
            .verify_at(ID_A, &ts, SIG_A, BODY_A, at(TS_A + 1))
            .is_err()
    );
    assert!(
        strict
            .verify_at(ID_A, &ts, SIG_A, BODY_A, at(TS_A - 1))
            .is_err()
    );

    let lax = Verifier::new(secret(SECRET_A)).tolerance(Duration::MAX);
    assert_eq!(
        lax.verify_at(ID_A, &ts, SIG_A, BODY_A, at(i64::MIN)),
        Ok(())
    );
    assert_eq!(
        lax.verify_at(ID_A, &ts, SIG_A, BODY_A, at(i64::MAX)),
        Ok(())
    );
}

#[test]
fn invalid_timestamps() {
    let verifier = Verifier::new(secret(SECRET_A));
    for ts in [
        "",
        " ",
        "+1614265330",
        "-1614265330",
        " 1614265330",
        "1614265330 ",
        "1614265330.0",
        "1.6e9",
        "0x6037",
        "99999999999999999999",
        "9223372036854775808",
        "-9223372036854775808",
        "１６１４２６５３３０",
    ] {
        assert_eq!(
            verifier.verify_at(ID_A, ts, SIG_A, BODY_A, at(TS_A)),
            Err(VerifyError::InvalidTimestamp),
            "{ts:?}"
        );
    }
    // Far from now but well-formed: a tolerance error, not a parse error, and no overflow.
    assert!(matches!(
        verifier.verify_at(ID_A, "9223372036854775807", SIG_A, BODY_A, at(TS_A)),
        Err(VerifyError::TimestampTooNew { .. })
    ));
    assert!(matches!(
        verifier.verify_at(ID_A, "0", SIG_A, BODY_A, at(TS_A)),
        Err(VerifyError::TimestampTooOld { .. })
    ));
}

#[test]
fn rotation_accepts_either_secret() {
    let (old, new) = (Secret::generate(), Secret::generate());
    let verifier = Verifier::from_secrets([old.clone(), new.clone()]);
    let ts = "1700000000";
    let now = at(1_700_000_000);
    let check = |signatures: &str| verifier.verify_at("msg_1", ts, signatures, b"{}", now);

    let by_old = old.sign("msg_1", 1_700_000_000, b"{}");
    let by_new = new.sign("msg_1", 1_700_000_000, b"{}");
    let by_both = signature_header([&new, &old], "msg_1", 1_700_000_000, b"{}");
    assert_eq!(by_both, format!("{by_new} {by_old}"));
    assert_eq!(check(&by_old), Ok(()));
    assert_eq!(check(&by_new), Ok(()));
    assert_eq!(check(&by_both), Ok(()));

    let stranger = Secret::generate().sign("msg_1", 1_700_000_000, b"{}");
    assert_eq!(check(&stranger), Err(VerifyError::SignatureMismatch));
    // A receiver that dropped the old secret still accepts the rotation header.
    assert_eq!(
        Verifier::new(new).verify_at("msg_1", ts, &by_both, b"{}", now),
        Ok(())
    );
}

#[test]
fn no_secrets() {
    let verifier = Verifier::from_secrets([]);
    let ts = TS_A.to_string();
    assert_eq!(
        verifier.verify_at(ID_A, &ts, SIG_A, BODY_A, at(TS_A)),
        Err(VerifyError::NoSecrets)
    );
    assert_eq!(signature_header([], ID_A, TS_A, BODY_A), "");
}

#[test]
fn header_map_variant() {
    let verifier = Verifier::new(secret(SECRET_A));
    let valid = headers(ID_A, "1614265330", SIG_A);
    assert_eq!(verifier.verify_headers_at(&valid, BODY_A, at(TS_A)), Ok(()));
    assert!(matches!(
        verifier.verify_headers(&valid, BODY_A),
        Err(VerifyError::TimestampTooOld { .. })
    ));

    for name in [HEADER_ID, HEADER_TIMESTAMP, HEADER_SIGNATURE] {
        let mut missing = valid.clone();
        missing.remove(name);
        assert_eq!(
            verifier.verify_headers_at(&missing, BODY_A, at(TS_A)),
            Err(VerifyError::MissingHeader(name))
        );

        let mut invalid = valid.clone();
        invalid.insert(name, HeaderValue::from_bytes(b"v1,\xff\x80").unwrap());
        assert_eq!(
            verifier.verify_headers_at(&invalid, BODY_A, at(TS_A)),
            Err(VerifyError::InvalidHeader(name))
        );
    }

    // Header names are case-insensitive; of repeated headers the first is used.
    let mut repeated = HeaderMap::new();
    repeated.insert("Webhook-Id", ID_A.parse().unwrap());
    repeated.insert("WEBHOOK-TIMESTAMP", "1614265330".parse().unwrap());
    repeated.append(HEADER_SIGNATURE, SIG_A.parse().unwrap());
    repeated.append(HEADER_SIGNATURE, "v1,".parse().unwrap());
    assert_eq!(
        verifier.verify_headers_at(&repeated, BODY_A, at(TS_A)),
        Ok(())
    );

    let empty = headers(ID_A, "1614265330", "");
    assert_eq!(
        verifier.verify_headers_at(&empty, BODY_A, at(TS_A)),
        Err(VerifyError::NoSignatures)
    );
}

#[test]
fn secret_text_round_trip() {
    let parsed = secret(SECRET_A);
    assert_eq!(parsed.expose(), SECRET_A);
    assert_eq!(parsed.as_bytes().len(), 24);

    let generated = Secret::generate();
    assert_eq!(generated.as_bytes().len(), 32);
    assert_ne!(generated, Secret::generate());
    assert_eq!(secret(&generated.expose()), generated);

    // Bare base64, as the Svix libraries accept, and surrounding whitespace.
    assert_eq!(secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), parsed);
    assert_eq!(secret(&format!(" {SECRET_A}\n")), parsed);

    let bytes = Secret::from_bytes(parsed.as_bytes()).unwrap();
    assert_eq!(bytes, parsed);
    assert_eq!(
        Secret::from_bytes(vec![7; MAX_SECRET_LEN])
            .unwrap()
            .as_bytes()
            .len(),
        1024
    );
    let longest = Secret::from_bytes(vec![0xff; MAX_SECRET_LEN]).unwrap();
    assert_eq!(secret(&longest.expose()), longest);
}

#[test]
fn secret_errors() {
    let parse = |text: &str| text.parse::<Secret>().err();
    assert_eq!(parse(""), Some(SecretError::Empty));
    assert_eq!(parse("whsec_"), Some(SecretError::Empty));
    assert_eq!(parse("  whsec_ \n"), Some(SecretError::Empty));
    assert_eq!(
        Secret::from_bytes(Vec::new()).err(),
        Some(SecretError::Empty)
    );

    for text in [
        "whsec_!!!!",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS", // truncated
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw=", // stray padding
        "whsec_AB==",                            // non-zero trailing bits
        "whsec_MfKQ9r8G KYqrTwjUPD8ILPZIo2LaLaSw", // inner space
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw_", // URL-safe alphabet
        "whsec_whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "whsec_\u{e9}t\u{e9}",
    ] {
        assert_eq!(parse(text), Some(SecretError::InvalidBase64), "{text}");
    }

    let too_long = SecretError::TooLong {
        max: MAX_SECRET_LEN,
    };
    assert_eq!(
        Secret::from_bytes(vec![1; MAX_SECRET_LEN + 1]).err(),
        Some(too_long.clone())
    );
    let encoded = BASE64.encode([1; MAX_SECRET_LEN + 1]);
    assert_eq!(parse(&format!("whsec_{encoded}")), Some(too_long.clone()));
    assert_eq!(parse(&"A".repeat(10_000_000)), Some(too_long));
    // Nothing of the rejected text is echoed (the base64 decoder's own error would).
    let err = "whsec_c2VjcmV0!c2VjcmV0".parse::<Secret>().unwrap_err();
    for shown in [err.to_string(), format!("{err:?}")] {
        assert!(!shown.contains("c2Vj") && !shown.contains('!'), "{shown}");
    }
}

#[test]
fn secret_equality() {
    let a = Secret::from_bytes(*b"0123456789abcdef").unwrap();
    assert_eq!(a, a.clone());
    assert_ne!(a, Secret::from_bytes(*b"0123456789abcdeF").unwrap());
    assert_ne!(a, Secret::from_bytes(*b"0123456789abcde").unwrap());
    assert_ne!(a, Secret::from_bytes(*b"0123456789abcdef0").unwrap());
}

#[test]
fn debug_never_shows_the_key() {
    let secret = secret(SECRET_A);
    let verifier = Verifier::from_secrets([secret.clone(), Secret::generate()]);
    for shown in [
        format!("{secret:?}"),
        format!("{secret:#?}"),
        format!("{verifier:?}"),
        format!("{verifier:#?}"),
    ] {
        assert!(shown.contains("<redacted>"), "{shown}");
        assert!(!shown.contains("whsec_"), "{shown}");
        assert!(!shown.contains("MfKQ"), "{shown}");
        assert!(!shown.contains("49"), "no key bytes: {shown}"); // 0x31 = 49, the first byte
    }
    assert_eq!(format!("{secret:?}"), "Secret(<redacted>)");
}

#[test]
fn error_messages() {
    assert_eq!(
        verify_a(SIG_A, TS_A + 400).unwrap_err().to_string(),
        "webhook-timestamp is 400 s in the past (tolerance 300 s)"
    );
    assert_eq!(
        verify_a(SIG_A, TS_A - 400).unwrap_err().to_string(),
        "webhook-timestamp is 400 s in the future (tolerance 300 s)"
    );
    assert_eq!(
        VerifyError::MissingHeader(HEADER_ID).to_string(),
        "missing webhook-id header"
    );
    assert_eq!(
        SecretError::TooLong {
            max: MAX_SECRET_LEN
        }
        .to_string(),
        "the webhook secret is longer than 1024 bytes"
    );
}

#[test]
fn binary_bodies_and_long_keys() {
    // The body is bytes, not text; keys longer than SHA-256's 64-byte block are hashed first.
    for key_len in [1, 24, 63, 64, 65, 100, MAX_SECRET_LEN] {
        let secret = Secret::from_bytes(vec![0xa5; key_len]).unwrap();
        let body = [0xff, 0x00, 0xfe, b'.', 0x80];
        let signature = secret.sign("msg_1", 1_700_000_000, &body);
        let verifier = Verifier::new(secret);
        let now = at(1_700_000_000);
        assert_eq!(
            verifier.verify_at("msg_1", "1700000000", &signature, &body, now),
            Ok(())
        );
        assert_eq!(
            verifier.verify_at("msg_1", "1700000000", &signature, &body[..4], now),
            Err(VerifyError::SignatureMismatch)
        );
    }
}

#[test]
fn garbage_never_panics() {
    // A small xorshift generator keeps the test deterministic without extra dependencies.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let alphabet = b"v1a2,= +/AZaz09_-.\t\xff\xc3\xa9whsec";
    let mut random_text = |max_len: u64| {
        let len = next() % (max_len + 1);
        let bytes: Vec<u8> = (0..len)
            .map(|_| alphabet[usize::try_from(next() % alphabet.len() as u64).unwrap()])
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };

    let big = "v1,".repeat(100_000);
    let fixed = [
        String::new(),
        " ".into(),
        ",".into(),
        ",,,".into(),
        "v1".into(),
        "v1,".into(),
        "v1,,".into(),
        "v1,====".into(),
        "v1,====================================================".into(),
        "v1,".to_string() + &"=".repeat(44),
        "v1,".to_string() + &"A".repeat(44),
        "v1,".to_string() + &"/".repeat(43) + "=",
        "v1,\u{e9}".repeat(30),
        "\u{0}\u{7f}\u{feff}".into(),
        format!("{SIG_A},{SIG_A}"),
        big.clone(),
        "9".repeat(1_000_000),
        i64::MIN.to_string(),
        i64::MAX.to_string(),
    ];
    let verifiers = [
        Verifier::new(secret(SECRET_A)),
        Verifier::from_secrets([]),
        Verifier::new(secret(SECRET_A)).tolerance(Duration::MAX),
    ];
    let nows = [
        UNIX_EPOCH,
        at(TS_A),
        at(i64::MIN),
        at(i64::MAX),
        UNIX_EPOCH - Duration::from_nanos(1),
        SystemTime::now(),
    ];
    let mut inputs: Vec<String> = fixed.to_vec();
    inputs.extend((0..300).map(|_| random_text(120)));

    for (i, text) in inputs.iter().enumerate() {
        let other = &inputs[(i * 7 + 3) % inputs.len()];
        for verifier in &verifiers {
            for &now in &nows {
                let _ = verifier.verify_at(text, other, text, text.as_bytes(), now);
                let _ = verifier.verify_at(ID_A, "1614265330", text, BODY_A, now);
                let _ = verifier.verify_at(ID_A, text, SIG_A, BODY_A, now);
            }
            if let (Ok(a), Ok(b)) = (HeaderValue::from_str(text), HeaderValue::from_str(other)) {
                let mut map = HeaderMap::new();
                map.insert(HEADER_ID, a.clone());
                map.insert(HEADER_TIMESTAMP, b);
                map.insert(HEADER_SIGNATURE, a);
                let _ = verifier.verify_headers_at(&map, text.as_bytes(), at(TS_A));
            }
        }
        let _ = text.parse::<Secret>();
        let _ = format!("whsec_{text}").parse::<Secret>();
    }
    for ts in [i64::MIN, -1, 0, i64::MAX] {
        let signature = secret(SECRET_A).sign(&big, ts, big.as_bytes());
        assert!(signature.starts_with("v1,"));
    }
    // Arbitrary header bytes, including obs-text the `http` crate admits.
    for byte in 0..=u8::MAX {
        if let Ok(value) = HeaderValue::from_bytes(&[b'1', byte, b'2']) {
            let map = {
                let mut map = headers(ID_A, "1614265330", SIG_A);
                map.insert(HEADER_TIMESTAMP, value.clone());
                map.insert(HEADER_SIGNATURE, value);
                map
            };
            let _ = verifiers[0].verify_headers_at(&map, BODY_A, at(TS_A));
        }
    }
    // Still correct afterwards.
    assert_eq!(verify_a(SIG_A, TS_A), Ok(()));
}

/// Interoperability with the independent `standardwebhooks` crate, in both directions. It
/// checks timestamps against the real clock and signs only UTF-8 bodies.
mod cross_check {
    use super::*;

    #[test]
    fn ours_accepted_by_theirs() {
        for (text, body) in [(SECRET_A, BODY_A), (SECRET_B, BODY_B)] {
            let ours = secret(text);
            let theirs = standardwebhooks::Webhook::new(text).unwrap();
            let now = unix_now();
            let signature = ours.sign("msg_x", now, body);
            let map = headers("msg_x", &now.to_string(), &signature);
            theirs.verify(body, &map).unwrap();

            // A rotation header, and a key longer than one SHA-256 block.
            let long = Secret::from_bytes(vec![0x5a; 100]).unwrap();
            let both = signature_header([&long, &ours], "msg_y", now, body);
            theirs
                .verify(body, &headers("msg_y", &now.to_string(), &both))
                .unwrap();
            let long_theirs = standardwebhooks::Webhook::from_bytes(vec![0x5a; 100]).unwrap();
            long_theirs
                .verify(body, &headers("msg_y", &now.to_string(), &both))
                .unwrap();
        }
    }

    #[test]
    fn theirs_accepted_by_ours() {
        for (text, body) in [(SECRET_A, BODY_A), (SECRET_B, BODY_B)] {
            let theirs = standardwebhooks::Webhook::new(text).unwrap();
            let now = unix_now();
            let signature = theirs.sign("msg_x", now, body).unwrap();
            let map = headers("msg_x", &now.to_string(), &signature);
            let verifier = Verifier::new(secret(text));
            assert_eq!(verifier.verify_headers(&map, body), Ok(()));
            assert_eq!(
                verifier.verify_headers(&map, b"tampered"),
                Err(VerifyError::SignatureMismatch)
            );
        }
        // The published vectors, signed by them, verified by us.
        let theirs = standardwebhooks::Webhook::new(SECRET_A).unwrap();
        assert_eq!(theirs.sign(ID_A, TS_A, BODY_A).unwrap(), SIG_A);
        let long_theirs = standardwebhooks::Webhook::from_bytes(vec![0x5a; 100]).unwrap();
        let signature = long_theirs.sign("msg_z", TS_A, b"{}").unwrap();
        let long_ours = Verifier::new(Secret::from_bytes(vec![0x5a; 100]).unwrap());
        assert_eq!(
            long_ours.verify_at("msg_z", &TS_A.to_string(), &signature, b"{}", at(TS_A)),
            Ok(())
        );
    }
}
