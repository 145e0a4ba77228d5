import uuid

from gateway.users.tokens import hash_token, new_token, token_matches


def test_new_tokens_are_uuid4_text() -> None:
    token = new_token()
    assert str(uuid.UUID(token)) == token
    assert uuid.UUID(token).version == 4


def test_a_token_matches_its_hash_whatever_the_case_of_its_hex_digits() -> None:
    token = new_token()
    stored = hash_token(token)
    assert token_matches(token, stored)
    assert token_matches(token.upper(), stored)


def test_wrong_missing_malformed_and_userless_tokens_do_not_match() -> None:
    token = new_token()
    stored = hash_token(token)
    assert not token_matches(new_token(), stored)
    assert not token_matches(None, stored)
    assert not token_matches("", stored)
    assert not token_matches("not-a-uuid", stored)
    assert not token_matches(token.replace("-", ""), stored)
    assert not token_matches(token, None)
