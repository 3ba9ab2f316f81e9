"""Drives the Python client that openapi-python-client generates from
openapi/openapi.json against a live server.

sdk/ci.sh generates the client into target/sdk/python, puts it on
PYTHONPATH, starts the server and sets BIRTHDAY_API_URL and
BIRTHDAY_API_TOKEN.
"""

import datetime
import os
import re

import pytest
from birthday_api_client import AuthenticatedClient
from birthday_api_client.api.birthdays import delete_birthday, get_greeting, put_birthday
from birthday_api_client.models import BirthdayRequest, GreetingMessage, Problem

# Letters only, and no other driver uses it, so the drivers can share a server.
USERNAME = "Pythonista"


@pytest.fixture
def client():
    with AuthenticatedClient(
        base_url=os.environ["BIRTHDAY_API_URL"],
        token=os.environ["BIRTHDAY_API_TOKEN"],
        raise_on_unexpected_status=True,
    ) as client:
        yield client


def test_put_get_delete_round_trip(client):
    saved = put_birthday.sync_detailed(
        USERNAME, client=client, body=BirthdayRequest(date_of_birth=datetime.date(1990, 7, 14))
    )
    assert saved.status_code == 204

    greeting = get_greeting.sync_detailed(USERNAME, client=client)
    assert greeting.status_code == 200
    assert isinstance(greeting.parsed, GreetingMessage)
    assert re.fullmatch(
        rf"Hello, {USERNAME}! (Your birthday is in [1-9][0-9]* day\(s\)|Happy birthday!)",
        greeting.parsed.message,
    )

    deleted = delete_birthday.sync_detailed(USERNAME, client=client)
    assert deleted.status_code == 204

    gone = get_greeting.sync_detailed(USERNAME, client=client)
    assert gone.status_code == 404
    assert isinstance(gone.parsed, Problem)
    assert gone.parsed.status == 404
    assert USERNAME in gone.parsed.detail


def test_unknown_user_is_a_problem_document(client):
    response = get_greeting.sync_detailed("Nobodyknowsme", client=client)
    assert response.status_code == 404
    assert isinstance(response.parsed, Problem)
    assert response.parsed.title == "Not Found"
    assert response.headers["content-type"] == "application/problem+json"


def test_bad_date_names_the_rule(client):
    # Two days ahead is in the future whatever the server's time zone.
    future = datetime.date.today() + datetime.timedelta(days=2)
    response = put_birthday.sync_detailed(
        USERNAME, client=client, body=BirthdayRequest(date_of_birth=future)
    )
    assert response.status_code == 400
    assert isinstance(response.parsed, Problem)
    assert response.parsed.errors.invalid_date.startswith("dateOfBirth must be")
    assert not response.parsed.errors.invalid_username


def test_writes_need_the_token(client):
    anonymous = AuthenticatedClient(base_url=os.environ["BIRTHDAY_API_URL"], token="wrong")
    response = put_birthday.sync_detailed(
        USERNAME, client=anonymous, body=BirthdayRequest(date_of_birth=datetime.date(1990, 7, 14))
    )
    assert response.status_code == 401
    assert isinstance(response.parsed, Problem)
