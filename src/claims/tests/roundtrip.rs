//! Property tests: encode → decode is the identity, jti is stable, and any
//! change to the payload or signature makes decoding fail.

use super::strategies::*;
use crate::claims::*;
use nkeys::KeyPair;
use proptest::prelude::*;

fn round_trip<N>(kp: &KeyPair, mut claims: Claims<N>) -> Result<(), TestCaseError>
where
    N: ClaimPayload + Clone + PartialEq + std::fmt::Debug,
    Claims<N>: TryFrom<AnyClaims, Error = AnyClaims>,
{
    let token = encode(&mut claims, kp).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let decoded = decode(&token).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert!(decoded.verified);
    prop_assert_eq!(&decoded.payload, &gojson::to_string(&claims));
    let back =
        Claims::<N>::try_from(decoded.claims).map_err(|_| TestCaseError::fail("wrong type"))?;
    prop_assert_eq!(&back, &claims);
    prop_assert_eq!(back.nats.generic().version, 2);
    prop_assert_eq!(&back.nats.generic().claim_type, N::CLAIM_TYPE);
    prop_assert_eq!(&back.data.iss, &kp.public_key());

    // Encoding the same values again gives the same jti and, because
    // Ed25519 is deterministic, the same token.
    let mut again = back.clone();
    prop_assert_eq!(encode(&mut again, kp).unwrap(), token);
    prop_assert_eq!(compute_jti(&back.data), back.data.jti);
    Ok(())
}

const B64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn operator_claims_round_trip((kp, claims) in operator_claims()) {
        round_trip(&kp, claims)?;
    }

    #[test]
    fn account_claims_round_trip((kp, claims) in account_claims()) {
        round_trip(&kp, claims)?;
    }

    #[test]
    fn user_claims_round_trip((kp, claims) in user_claims()) {
        round_trip(&kp, claims)?;
    }

    #[test]
    fn activation_claims_round_trip((kp, claims) in activation_claims()) {
        round_trip(&kp, claims)?;
    }

    #[test]
    fn changing_any_payload_or_signature_character_fails_decode(
        (kp, mut claims) in user_claims(),
        pos in any::<prop::sample::Index>(),
        replacement in any::<prop::sample::Index>(),
    ) {
        let token = encode(&mut claims, &kp).unwrap();
        let start = HEADER_B64.len() + 1;
        let i = start + pos.index(token.len() - start);
        prop_assume!(token.as_bytes()[i] != b'.');
        let mut new = B64URL[replacement.index(B64URL.len())];
        if new == token.as_bytes()[i] {
            new = if new == b'A' { b'B' } else { b'A' };
        }
        let mut bytes = token.into_bytes();
        bytes[i] = new;
        let tampered = String::from_utf8(bytes).unwrap();
        prop_assert!(decode(&tampered).is_err(), "tampered token decoded");
    }
}

#[test]
fn a_different_key_of_the_same_kind_cannot_forge_a_token() {
    let acct = KeyPair::new_account();
    let mut u = UserClaims::new(KeyPair::new_user().public_key());
    u.data.iat = 1;
    let token = encode(&mut u, &acct).unwrap();
    let forger = KeyPair::new_account();
    let sig = forger
        .sign(token.rsplit_once('.').unwrap().0.as_bytes())
        .unwrap();
    let forged = format!(
        "{}.{}",
        token.rsplit_once('.').unwrap().0,
        data_encoding::BASE64URL_NOPAD.encode(&sig)
    );
    assert_eq!(decode(&forged).unwrap_err(), ClaimsError::Signature);
    assert!(peek(&forged).is_ok(), "peek does not verify");
}

#[test]
fn encode_checks_subject_signer_and_iat() {
    let op = KeyPair::new_operator();
    let acct = KeyPair::new_account();
    let mut a = AccountClaims::new(acct.public_key());
    a.data.iat = 10;
    assert!(
        matches!(encode(&mut a, &acct), Err(ClaimsError::SignerKind { .. })),
        "no self-signed accounts"
    );
    assert!(encode(&mut a, &op).is_ok());

    let mut u = UserClaims::new(acct.public_key());
    u.data.iat = 10;
    assert!(matches!(
        encode(&mut u, &acct),
        Err(ClaimsError::SubjectKind { .. })
    ));

    let mut u = UserClaims::new(KeyPair::new_user().public_key());
    assert_eq!(encode(&mut u, &acct), Err(ClaimsError::IssuedAtMissing));
    u.data.iat = 10;
    assert!(matches!(
        encode(&mut u, &op),
        Err(ClaimsError::SignerKind { .. })
    ));

    let mut empty = UserClaims::default();
    assert_eq!(encode(&mut empty, &acct), Err(ClaimsError::SubjectMissing));

    let mut o = OperatorClaims::new(op.public_key());
    o.data.iat = 10;
    o.nats.account_server_url = "localhost".into();
    assert!(matches!(
        encode(&mut o, &op),
        Err(ClaimsError::Unencodable(_))
    ));
}

#[test]
fn account_encode_sorts_exports_and_imports_by_subject() {
    let op = KeyPair::new_operator();
    let mut a = AccountClaims::new(KeyPair::new_account().public_key());
    a.data.iat = 10;
    for s in ["b", "a", "c"] {
        a.nats.exports.push(Export {
            subject: s.into(),
            ..Default::default()
        });
        a.nats.imports.push(Import {
            subject: s.into(),
            ..Default::default()
        });
    }
    encode(&mut a, &op).unwrap();
    let subjects: Vec<&str> = a.nats.exports.iter().map(|e| e.subject.as_str()).collect();
    assert_eq!(subjects, ["a", "b", "c"]);
    let subjects: Vec<&str> = a.nats.imports.iter().map(|e| e.subject.as_str()).collect();
    assert_eq!(subjects, ["a", "b", "c"]);
}

#[test]
fn unknown_fields_from_newer_tools_are_ignored() {
    let acct = KeyPair::new_account();
    let payload = format!(
        r#"{{"iat":5,"iss":"{}","sub":"{}","future":1,"nats":{{"pub":{{"allow":["x"],"someday":true}},"new_thing":{{"a":1}},"type":"user","version":2}}}}"#,
        acct.public_key(),
        KeyPair::new_user().public_key()
    );
    let p64 = data_encoding::BASE64URL_NOPAD.encode(payload.as_bytes());
    let input = format!("{HEADER_B64}.{p64}");
    let sig = data_encoding::BASE64URL_NOPAD.encode(&acct.sign(input.as_bytes()).unwrap());
    let user = decode_as::<User>(&format!("{input}.{sig}")).unwrap();
    assert_eq!(user.nats.permission_limits.permissions.publish.allow, ["x"]);
}

#[test]
fn a_v2_signed_generic_claim_decodes_as_generic() {
    // The CLAIMS.DELETE request: self-signed by an operator key, no known type.
    let op = KeyPair::new_operator();
    let payload = format!(
        r#"{{"iat":5,"iss":"{0}","sub":"{0}","nats":{{"accounts":["A"],"type":"generic","version":2}}}}"#,
        op.public_key()
    );
    let input = format!(
        "{HEADER_B64}.{}",
        data_encoding::BASE64URL_NOPAD.encode(payload.as_bytes())
    );
    let sig = data_encoding::BASE64URL_NOPAD.encode(&op.sign(input.as_bytes()).unwrap());
    let d = decode(&format!("{input}.{sig}")).unwrap();
    assert_eq!(d.claims.claim_type(), "generic");
    assert_eq!(d.claims.data().sub, op.public_key());
}

#[test]
fn a_user_signed_by_an_operator_is_refused_on_decode() {
    let op = KeyPair::new_operator();
    let payload = format!(
        r#"{{"iat":5,"iss":"{}","sub":"{}","nats":{{"type":"user","version":2}}}}"#,
        op.public_key(),
        KeyPair::new_user().public_key()
    );
    let input = format!(
        "{HEADER_B64}.{}",
        data_encoding::BASE64URL_NOPAD.encode(payload.as_bytes())
    );
    let sig = data_encoding::BASE64URL_NOPAD.encode(&op.sign(input.as_bytes()).unwrap());
    assert!(matches!(
        decode(&format!("{input}.{sig}")),
        Err(ClaimsError::IssuerKind { .. })
    ));
}
