//! Which status, code and message each service error answers: the codes are the API's contract
//! (docs/openapi.yaml) and the messages are what users read, so both are pinned here.

use shipwatch_api::error::ApiError;
use shipwatch_service::destinations::DestinationError;
use shipwatch_service::keys::KeyError;
use shipwatch_service::names::InvalidName;
use shipwatch_service::ports::StoreError;
use shipwatch_service::queries::QueryError;
use shipwatch_service::teams::TeamError;
use shipwatch_shared::credentials::KeyId;

fn answer(err: impl Into<ApiError>) -> (u16, &'static str, String) {
    let err = err.into();
    (err.status.as_u16(), err.code, err.message)
}

fn expect(status: u16, code: &'static str, message: &str) -> (u16, &'static str, String) {
    (status, code, message.to_owned())
}

#[test]
fn key_errors_answer_their_codes() {
    let key_id = KeyId::parse("ABCDE12345").expect("a valid Key ID");
    assert_eq!(
        answer(KeyError::KeyIdMismatch {
            file: "ABCDE12345".into(),
            field: "ZZZZZ99999".into(),
        }),
        expect(
            400,
            "key_id_mismatch",
            "the file is named for key ABCDE12345 but key_id says ZZZZZ99999; upload the matching .p8 or fix key_id"
        )
    );
    assert_eq!(
        answer(KeyError::InvalidPrivateKey("not a PEM".into())),
        expect(400, "invalid_private_key", "not a PEM")
    );
    assert_eq!(
        answer(KeyError::InvalidKeyId("bad".into())),
        expect(400, "invalid_key_id", "bad")
    );
    assert_eq!(
        answer(KeyError::InvalidIssuerId("bad".into())),
        expect(400, "invalid_issuer_id", "bad")
    );
    assert_eq!(
        answer(KeyError::InvalidName),
        expect(
            400,
            "invalid_request",
            "name must be at most 100 printable characters"
        )
    );
    assert_eq!(
        answer(KeyError::KeyExists { key_id }),
        expect(
            409,
            "key_exists",
            "your team already has key ABCDE12345; delete it first to upload it again"
        )
    );
    assert_eq!(
        answer(KeyError::NotFound),
        expect(404, "not_found", "no such key in your team")
    );
}

#[test]
fn destination_errors_answer_their_codes() {
    assert_eq!(
        answer(DestinationError::InvalidType),
        expect(
            400,
            "invalid_destination_type",
            "type must be one of slack, discord, teams, webhook"
        )
    );
    assert_eq!(
        answer(DestinationError::InvalidName(InvalidName {
            what: "destination"
        })),
        expect(
            400,
            "invalid_request",
            "destination name must be 1 to 100 printable characters"
        )
    );
    assert_eq!(
        answer(DestinationError::InvalidUrl("use https".into())),
        expect(400, "invalid_destination_url", "use https")
    );
    assert_eq!(
        answer(DestinationError::Unencodable),
        expect(
            400,
            "invalid_request",
            "the destination could not be encoded"
        )
    );
    assert_eq!(
        answer(DestinationError::UnknownDestination),
        expect(
            400,
            "unknown_destination",
            "destination_id names no destination of your team; create one with POST /v1/destinations"
        )
    );
    assert_eq!(
        answer(DestinationError::InvalidAppIds),
        expect(
            400,
            "invalid_app_ids",
            "app_ids must be [\"*\"] or a list of App Store Connect app ids (the numeric Apple ID of each app, see GET /v1/apps)"
        )
    );
    let (status, code, message) = answer(DestinationError::InvalidEventTypes);
    assert_eq!((status, code), (400, "invalid_event_types"));
    assert_eq!(
        message,
        format!(
            "event_types must be [\"*\"] or a list of: {}",
            shipwatch_service::domain::routing::known_event_types().join(", ")
        )
    );
    assert_eq!(
        answer(DestinationError::NotFound),
        expect(404, "not_found", "no such destination in your team")
    );
    assert_eq!(
        answer(DestinationError::WorkflowNotFound),
        expect(404, "not_found", "no such workflow in your team")
    );
}

#[test]
fn team_and_query_errors_answer_their_codes() {
    assert_eq!(
        answer(TeamError::InvalidName(InvalidName { what: "team" })),
        expect(
            400,
            "invalid_request",
            "team name must be 1 to 100 printable characters"
        )
    );
    assert_eq!(
        answer(QueryError::InvalidLimit { max: 100 }),
        expect(
            400,
            "invalid_request",
            "limit must be a whole number from 1 to 100"
        )
    );
    assert_eq!(
        answer(QueryError::InvalidCursor),
        expect(
            400,
            "invalid_request",
            "cursor is not one this API returned; start again without it"
        )
    );
}

#[test]
fn store_errors_answer_the_same_whoever_reports_them() {
    let conflict = expect(
        409,
        "conflict",
        "the resource changed while the request ran; try again",
    );
    let unavailable = expect(
        503,
        "store_unavailable",
        "storage is unavailable right now; nothing was changed, try again shortly",
    );
    let corrupt = expect(
        500,
        "internal",
        "a stored record could not be read; the operator has been told in the logs",
    );
    let store = || {
        [
            (StoreError::Conflict("x".into()), conflict.clone()),
            (StoreError::Unavailable("x".into()), unavailable.clone()),
            (StoreError::Corrupt("x".into()), corrupt.clone()),
        ]
    };
    for (err, expected) in store() {
        assert_eq!(answer(err), expected);
    }
    for (err, expected) in store() {
        assert_eq!(answer(KeyError::Store(err)), expected);
    }
    for (err, expected) in store() {
        assert_eq!(answer(DestinationError::Store(err)), expected);
    }
    for (err, expected) in store() {
        assert_eq!(answer(TeamError::Store(err)), expected);
    }
    for (err, expected) in store() {
        assert_eq!(answer(QueryError::Store(err)), expected);
    }
}
