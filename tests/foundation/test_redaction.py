"""Every place a message quotes a URL goes through pipelines.redaction.redact_url (issue 20.6).

``tests/covid/test_sources.py`` has the source refusals and a covid_daily run with a
credentialed URL (log, e-mail, SNS); here: the other places a URL reaches a message.
"""

from __future__ import annotations

import logging

import httpx
import pytest

from pipelines.redaction import redact_url

SECRET_URL = "https://user:s3cr3t@evil.com/x?token=abc"


def assert_clean(text: str) -> None:
    assert "s3cr3t" not in text and "token=abc" not in text and "user:" not in text


def test_an_allowed_source_with_a_query_is_fetched_but_its_query_never_logged(caplog):
    from pipelines.sources import DEFAULT_ALLOWED_PREFIXES, SourcePolicy, fetch

    url = "https://raw.githubusercontent.com/nytimes/covid-19-data/master/us.csv?token=abc"
    policy = SourcePolicy(allowed_prefixes=DEFAULT_ALLOWED_PREFIXES, s3_bucket="b")
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=b"date\n"))
    with caplog.at_level(logging.INFO, logger="httpx"):
        assert fetch(url, policy, transport=transport) == b"date\n"
    # httpx logged the request (the record is there) without the query string
    assert (
        "HTTP Request: GET https://raw.githubusercontent.com/nytimes/covid-19-data/master/us.csv?[redacted]"
        in (caplog.text)
    )
    assert "abc" not in caplog.text


def test_an_esi_error_names_the_url_without_its_query():
    from pipelines.market.esi import RetryableResponse

    request = httpx.Request("GET", "https://esi.example/latest/markets/1/orders/?page=2&token=abc")
    error = RetryableResponse(httpx.Response(503, request=request))
    assert str(error) == "HTTP 503 from https://esi.example/latest/markets/1/orders/?[redacted]"


def test_an_uri_that_is_not_s3_is_named_without_its_secrets():
    from pipelines.aws.s3 import split_uri

    with pytest.raises(ValueError) as error:
        split_uri(SECRET_URL)
    assert str(error.value) == "not an s3:// URI: https://[redacted]@evil.com/x?[redacted]"
    assert split_uri("s3://bucket/key?with-a-question-mark") == ("bucket", "key?with-a-question-mark")


def test_the_covid_failure_message_quotes_a_refused_url_redacted():
    from pipelines.covid.steps import failure_message
    from pipelines.sources import DEFAULT_ALLOWED_PREFIXES, SourcePolicy, SourceRefused

    policy = SourcePolicy(allowed_prefixes=DEFAULT_ALLOWED_PREFIXES, s3_bucket="b")
    with pytest.raises(SourceRefused) as refused:
        policy.check(SECRET_URL)
    subject, body = failure_message("covid_daily", "extract", "manual__1", refused.value, "http://log")
    assert "https://[redacted]@evil.com/x?[redacted]" in body
    assert_clean(subject + body)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("s3://bucket/covid/x.csv", "s3://bucket/covid/x.csv"),
        ("https://a:b@h:8443/p?q#f", "https://[redacted]@h:8443/p?[redacted]#[redacted]"),
        ("https://h/p?", "https://h/p"),  # an empty query carries nothing
        ("file:///tmp/x.csv", "file:///tmp/x.csv"),
    ],
)
def test_redact_url_by_hand(url, shown):
    assert redact_url(url) == shown
