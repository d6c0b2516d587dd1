//! Given/when/then tests of the Token aggregate.

use super::*;
use uuid::Uuid;

const NOW: i64 = 1_700_000_000_000;

fn hash() -> SecretHash {
    SecretHash::parse(&"ab".repeat(32), "hash").unwrap()
}

fn issue(role: Role, spacecraft: &[&str], expires_at_ms: Option<i64>) -> TokenCommand {
    TokenCommand::Issue(IssueToken {
        id: TokenId::from_uuid(Uuid::from_u128(7)),
        name: Name::parse("ci", "name").unwrap(),
        role,
        spacecraft: spacecraft
            .iter()
            .map(|s| SpacecraftId::parse(s, "spacecraft").unwrap())
            .collect(),
        expires_at_ms,
        secret_hash: hash(),
        now_ms: NOW,
    })
}

fn given(events: &[TokenEvent]) -> Token {
    events.iter().fold(Token::Absent, |s, e| s.evolve(e))
}

fn fields(err: DomainError) -> Vec<String> {
    match err {
        DomainError::Validation(f) => f.into_iter().map(|f| f.field).collect(),
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[test]
fn roles_include_the_ones_below_except_producer() {
    use Role::*;
    let allowed = |r: Role| Role::ALL.into_iter().filter(move |req| r.satisfies(*req));
    assert_eq!(allowed(Viewer).collect::<Vec<_>>(), [Viewer]);
    assert_eq!(allowed(Producer).collect::<Vec<_>>(), [Producer]);
    assert_eq!(allowed(Operator).collect::<Vec<_>>(), [Viewer, Operator]);
    assert_eq!(allowed(Admin).collect::<Vec<_>>(), Role::ALL);
    for r in Role::ALL {
        assert_eq!(r.as_str().parse::<Role>(), Ok(r));
    }
    assert!("root".parse::<Role>().unwrap_err().contains("viewer"));
}

#[test]
fn issuing_a_producer_token_keeps_its_spacecraft_sorted_once() {
    let events = Token::Absent
        .decide(&issue(
            Role::Producer,
            &["SC-2", "SC-1", "SC-2"],
            Some(NOW + 1),
        ))
        .unwrap();
    let [TokenEvent::Issued(data)] = events.as_slice() else {
        panic!("{events:?}")
    };
    assert_eq!(data.spacecraft, ["SC-1", "SC-2"]);
    assert_eq!(data.role, Role::Producer);
    assert_eq!(data.issued_at_ms, NOW);
    assert_eq!(data.expires_at_ms, Some(NOW + 1));
}

#[test]
fn a_producer_token_must_name_spacecraft_and_only_producers_may() {
    let err = Token::Absent
        .decide(&issue(Role::Producer, &[], None))
        .unwrap_err();
    assert_eq!(fields(err), ["spacecraft"]);
    let err = Token::Absent
        .decide(&issue(Role::Operator, &["SC-1"], None))
        .unwrap_err();
    assert_eq!(fields(err), ["spacecraft"]);
}

#[test]
fn an_expiry_in_the_past_is_refused() {
    let err = Token::Absent
        .decide(&issue(Role::Admin, &[], Some(NOW)))
        .unwrap_err();
    assert_eq!(fields(err), ["expires"]);
}

#[test]
fn a_token_is_issued_once() {
    let state = given(
        &Token::Absent
            .decide(&issue(Role::Viewer, &[], None))
            .unwrap(),
    );
    assert_eq!(
        state.decide(&issue(Role::Viewer, &[], None)),
        Err(DomainError::AlreadyExists { aggregate: "token" })
    );
}

#[test]
fn revoking_is_final_and_idempotent() {
    let issued = Token::Absent
        .decide(&issue(Role::Viewer, &[], None))
        .unwrap();
    let state = given(&issued);
    let revoke = TokenCommand::Revoke {
        reason: Some("leaked".into()),
    };
    let events = state.decide(&revoke).unwrap();
    assert_eq!(
        events,
        [TokenEvent::Revoked {
            reason: Some("leaked".into())
        }]
    );
    let revoked = state.evolve(&events[0]);
    assert!(matches!(revoked, Token::Revoked(_)));
    assert_eq!(revoked.decide(&revoke), Ok(vec![]));
    assert_eq!(
        Token::Absent.decide(&revoke),
        Err(DomainError::NotFound { aggregate: "token" })
    );
}

#[test]
fn secret_hashes_are_64_lowercase_hex_digits() {
    assert!(SecretHash::parse(&"0f".repeat(32), "h").is_ok());
    for bad in [
        "",
        "AB".repeat(32).as_str(),
        &"0".repeat(63),
        &"g".repeat(64),
    ] {
        assert!(SecretHash::parse(bad, "h").is_err(), "{bad}");
    }
}
