"""Where covid_daily may read its sources from, and how much (pipelines.sources)."""

from __future__ import annotations

import httpx
import pytest

from pipelines.redaction import redact_url
from pipelines.sources import (
    ALLOW_LOCAL_ENV,
    DEFAULT_ALLOWED_PREFIXES,
    SourcePolicy,
    SourceRefused,
    SourceUnavailable,
    fetch,
    local_sources_allowed,
    parse_prefixes,
)

BUCKET = "pipelines-data-lake"
NYT = "https://raw.githubusercontent.com/nytimes/covid-19-data/master/us.csv"
CSV = b"date,cases,deaths\n2020-01-21,1,0\n"


def policy(**overrides) -> SourcePolicy:
    settings = {"allowed_prefixes": DEFAULT_ALLOWED_PREFIXES, "s3_bucket": BUCKET}
    return SourcePolicy(**{**settings, **overrides})


class Recorder:
    """An httpx transport that answers from ``routes`` and records every URL requested."""

    def __init__(self, routes):
        self.routes, self.requested = routes, []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requested.append(str(request.url))
        return self.routes(request)


def transport(routes) -> tuple[httpx.MockTransport, Recorder]:
    recorder = Recorder(routes)
    return httpx.MockTransport(recorder), recorder


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://evil.example.com/us.csv", "evil.example.com/us.csv is not under an allowed prefix"),
        ("http://raw.githubusercontent.com/us.csv", "scheme 'http' is not allowed"),
        ("https://169.254.169.254/latest/meta-data/", "169.254.169.254/latest/meta-data/ is not under"),
        ("https://raw.githubusercontent.com.evil.example/nytimes/covid-19-data/us.csv", "is not under"),
        ("https://user:pw@raw.githubusercontent.com/us.csv", "credentials in the URL are not allowed"),
        ("s3://another-bucket/covid/us.csv", f"only objects under s3://{BUCKET}/covid/ are allowed"),
        (f"s3://{BUCKET}/market/raw/x.json", f"only objects under s3://{BUCKET}/covid/"),
        ("/proc/self/environ", f"local files are allowed only offline ({ALLOW_LOCAL_ENV}=1)"),
        ("file:///etc/passwd", "local files are allowed only offline"),
        ("ftp://raw.githubusercontent.com/us.csv", "scheme 'ftp' is not allowed"),
    ],
)
def test_urls_outside_the_allow_list_are_refused_before_any_request(url, reason):
    mock, recorder = transport(lambda request: httpx.Response(200, content=CSV))
    with pytest.raises(SourceRefused) as refused:
        fetch(url, policy(), transport=mock)
    assert reason in str(refused.value)
    assert recorder.requested == []
    assert "pw" not in str(refused.value)


RAW = "https://raw.githubusercontent.com"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        # the raw host serves every GitHub user's files: the host alone is not enough
        (f"{RAW}/attacker/covid-19-data/master/us.csv", "is not under an allowed prefix"),
        (f"{RAW}/nytimes/covid-19-data-evil/master/us.csv", "is not under an allowed prefix"),
        (f"{RAW}/nytimes/us.csv", "is not under an allowed prefix"),
        # a path that starts inside a prefix but climbs out of it
        (f"{RAW}/nytimes/covid-19-data/../../attacker/x/us.csv", "a '.' or '..' segment in the path"),
        (f"{RAW}/nytimes/covid-19-data/./us.csv", "a '.' or '..' segment in the path"),
        (f"{RAW}/nytimes/covid-19-data/%2e%2e/%2E%2E/attacker/x/us.csv", "a percent-encoded"),
        (f"{RAW}/nytimes/covid-19-data%2F..%2F..%2Fattacker/x/us.csv", "a percent-encoded"),
        (f"{RAW}/nytimes/covid-19-data/%252e%252e/x.csv", "a percent-encoded"),
        (f"{RAW}/nytimes/covid-19-data/..%5c..%5cattacker/us.csv", "a percent-encoded"),
        (f"{RAW}/nytimes/covid-19-data/..\\..\\attacker/us.csv", "a backslash in the path"),
        (f"{RAW}:8443/nytimes/covid-19-data/master/us.csv", "port 8443 is not allowed"),
        (f"s3://{BUCKET}/covid/../market/raw/x.json", "a '.' or '..' segment in the path"),
    ],
)
def test_the_allow_list_is_host_and_path_prefix_and_nothing_climbs_out(url, reason):
    mock, recorder = transport(lambda request: httpx.Response(200, content=CSV))
    with pytest.raises(SourceRefused) as refused:
        fetch(url, policy(), transport=mock)
    assert reason in str(refused.value)
    assert recorder.requested == []


def test_both_default_sources_are_under_the_default_prefixes():
    from dags.covid_daily import JHU_COMBINED_CSV, NYT_US_CSV

    for url in (NYT_US_CSV, JHU_COMBINED_CSV):
        mock, recorder = transport(lambda request: httpx.Response(200, content=CSV))
        assert fetch(url, policy(), transport=mock) == CSV
        assert recorder.requested == [url]


def test_the_prefix_variable_is_parsed_strictly():
    assert parse_prefixes(",".join(DEFAULT_ALLOWED_PREFIXES)) == DEFAULT_ALLOWED_PREFIXES
    # a missing trailing "/" is added: ".../covid-19-data" must not allow ".../covid-19-data-evil"
    assert parse_prefixes(" https://Data.Example.org/covid , raw.githubusercontent.com/me/x/ ") == (
        "data.example.org/covid/",
        "raw.githubusercontent.com/me/x/",
    )
    for bad in ("raw.githubusercontent.com", "raw.githubusercontent.com/", "host/a/../b/", "user@host/x/"):
        with pytest.raises(ValueError, match="covid_source_prefixes"):
            parse_prefixes(bad)


def test_a_redirect_out_of_the_prefix_on_the_same_host_is_not_followed():
    def routes(request):
        if request.url.path.startswith("/nytimes/"):
            return httpx.Response(302, headers={"Location": "/attacker/repo/main/us.csv"})
        return httpx.Response(200, content=b"attacker's numbers")

    mock, recorder = transport(routes)
    with pytest.raises(SourceRefused, match="redirected, and then .* is not under an allowed prefix"):
        fetch(NYT, policy(), transport=mock)
    assert recorder.requested == [NYT]


@pytest.mark.parametrize(
    "location",
    [
        "../../../attacker/repo/main/us.csv",  # urljoin resolves it: outside every prefix
        f"{RAW}/nytimes/covid-19-data/../../attacker/repo/us.csv",  # kept as is: refused
        f"{RAW}/nytimes/covid-19-data/%2e%2e/%2e%2e/attacker/repo/us.csv",
    ],
)
def test_a_redirect_that_climbs_out_of_the_prefix_is_not_followed(location):
    mock, recorder = transport(lambda request: httpx.Response(302, headers={"Location": location}))
    with pytest.raises(SourceRefused, match="redirected, and then"):
        fetch(NYT, policy(), transport=mock)
    assert recorder.requested == [NYT]


SECRET_URL = "https://user:s3cr3t@evil.com/x?token=abc"


@pytest.mark.parametrize(
    "url",
    [
        SECRET_URL,
        "https://user:s3cr3t@raw.githubusercontent.com/nytimes/covid-19-data/us.csv?token=abc",
        "ftp://user:s3cr3t@evil.com/x?token=abc",
        "s3://another-bucket/covid/us.csv?token=abc#s3cr3t",
    ],
)
def test_a_refused_url_is_quoted_without_userinfo_or_query(url):
    mock, _ = transport(lambda request: httpx.Response(200, content=CSV))
    with pytest.raises(SourceRefused) as refused:
        fetch(url, policy(), transport=mock)
    message = str(refused.value)
    assert "s3cr3t" not in message and "abc" not in message and "user:" not in message
    assert "[redacted]" in message


def test_an_unavailable_source_is_quoted_without_its_query():
    mock, _ = transport(lambda request: httpx.Response(404))
    with pytest.raises(SourceUnavailable) as error:
        fetch(NYT + "?token=abc", policy(), transport=mock)
    assert str(error.value) == f"{NYT}?[redacted]: HTTP 404"


def test_redact_url_keeps_scheme_host_port_and_path_only():
    # expected values written by hand
    assert redact_url(SECRET_URL) == "https://[redacted]@evil.com/x?[redacted]"
    assert redact_url("https://evil.com:8443/a/b.csv#frag") == "https://evil.com:8443/a/b.csv#[redacted]"
    assert redact_url("https://tok@[::1]:9/x") == "https://[redacted]@[::1]:9/x"
    assert redact_url(NYT) == NYT
    assert redact_url("/tmp/us.csv") == "/tmp/us.csv"
    assert redact_url("https://h:notaport/x") == "(an unparseable URL, not shown)"


def test_a_credentialed_source_never_reaches_the_log_alert_or_sns(airflow_db, aws, mailbox, capfd, caplog):
    from tests.covid.test_covid_daily_dag import messages, run, table

    result = run({"cases_url": SECRET_URL})
    assert result.state == "failed" and table(aws) == {}
    [failure] = messages(aws)
    mails = [mail.subject + mail.text for mail in mailbox.wait_for(1)]
    out, err = capfd.readouterr()
    assert "evil.com" in failure["message"] and "evil.com" in mails[0]  # the refusal is reported ...
    for text in (failure["message"], *mails, out + err + caplog.text):
        assert "s3cr3t" not in text and "token=abc" not in text  # ... without its secrets


def test_an_allowed_host_is_fetched():
    mock, recorder = transport(lambda request: httpx.Response(200, content=CSV))
    assert fetch(NYT, policy(), transport=mock) == CSV
    assert recorder.requested == [NYT]


def test_a_redirect_to_another_host_is_not_followed():
    def routes(request):
        if request.url.host == "raw.githubusercontent.com":
            return httpx.Response(302, headers={"Location": "https://169.254.169.254/latest/meta-data/"})
        return httpx.Response(200, content=b"instance credentials")

    mock, recorder = transport(routes)
    with pytest.raises(
        SourceRefused, match=r"redirected to another host or scheme \(https://169.254.169.254\)"
    ):
        fetch(NYT, policy(), transport=mock)
    assert recorder.requested == [NYT]


def test_a_redirect_to_plain_http_on_the_same_host_is_not_followed():
    mock, recorder = transport(
        lambda request: httpx.Response(301, headers={"Location": "http://raw.githubusercontent.com/x.csv"})
    )
    with pytest.raises(SourceRefused, match="redirected to another host or scheme"):
        fetch(NYT, policy(), transport=mock)
    assert recorder.requested == [NYT]


def test_a_redirect_within_the_same_host_is_followed():
    def routes(request):
        if "/master/" in request.url.path:
            return httpx.Response(302, headers={"Location": "/nytimes/covid-19-data/main/us.csv?moved"})
        return httpx.Response(200, content=CSV)

    mock, recorder = transport(routes)
    assert fetch(NYT, policy(), transport=mock) == CSV
    assert (
        recorder.requested[-1] == "https://raw.githubusercontent.com/nytimes/covid-19-data/main/us.csv?moved"
    )


def test_the_size_cap_is_enforced_while_streaming_without_reading_the_rest():
    produced = []

    def endless():
        for _ in range(10_000):  # 640 MB if anyone read it all
            produced.append(1)
            yield b"x" * 65536

    mock, _ = transport(lambda request: httpx.Response(200, content=endless()))
    with pytest.raises(SourceRefused, match="larger than the 1,000,000-byte cap"):
        fetch(NYT, policy(max_bytes=1_000_000), transport=mock)
    assert len(produced) < 20


def test_a_declared_length_over_the_cap_is_refused_before_reading():
    mock, _ = transport(lambda request: httpx.Response(200, content=b"x" * 2048))
    with pytest.raises(SourceRefused, match="2,048 bytes, over the 1,024-byte cap"):
        fetch(NYT, policy(max_bytes=1024), transport=mock)


def test_an_error_page_is_never_quoted():
    mock, _ = transport(lambda request: httpx.Response(404, content=b"SECRET-BODY not found"))
    with pytest.raises(SourceUnavailable) as error:
        fetch(NYT, policy(), transport=mock)
    assert str(error.value) == f"{NYT}: HTTP 404"


def test_local_files_only_when_the_offline_setting_is_on(tmp_path):
    path = tmp_path / "us.csv"
    path.write_bytes(CSV)
    assert fetch(str(path), policy(allow_local=True)) == CSV
    assert fetch(f"file://{path}", policy(allow_local=True)) == CSV
    with pytest.raises(SourceRefused):
        fetch(str(path), policy(allow_local=False))
    assert local_sources_allowed({ALLOW_LOCAL_ENV: "1"}) and local_sources_allowed({ALLOW_LOCAL_ENV: "true"})
    assert not local_sources_allowed({}) and not local_sources_allowed({ALLOW_LOCAL_ENV: "0"})


def test_a_local_file_that_reports_size_zero_is_still_capped():
    # /proc files report st_size 0: the cap must count what is read, not trust the size
    with pytest.raises(SourceRefused, match="larger than the 10-byte cap"):
        fetch("/proc/self/status", policy(allow_local=True, max_bytes=10))


def test_s3_sources_inside_the_prefix_are_read_and_capped(aws):
    s3 = aws.client("s3")
    s3.put_object(Bucket=BUCKET, Key="covid/inputs/us.csv", Body=CSV)
    s3.put_object(Bucket=BUCKET, Key="covid/inputs/big.csv", Body=b"x" * 5000)
    assert fetch(f"s3://{BUCKET}/covid/inputs/us.csv", policy()) == CSV
    with pytest.raises(SourceRefused, match="5,000 bytes, over the 4,096-byte cap"):
        fetch(f"s3://{BUCKET}/covid/inputs/big.csv", policy(max_bytes=4096))
    with pytest.raises(SourceUnavailable, match="S3 NoSuchKey"):
        fetch(f"s3://{BUCKET}/covid/inputs/absent.csv", policy())
