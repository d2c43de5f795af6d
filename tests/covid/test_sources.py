"""Where covid_daily may read its sources from, and how much (pipelines.sources)."""

from __future__ import annotations

import httpx
import pytest

from pipelines.sources import (
    ALLOW_LOCAL_ENV,
    SourcePolicy,
    SourceRefused,
    SourceUnavailable,
    fetch,
    local_sources_allowed,
)

BUCKET = "pipelines-data-lake"
NYT = "https://raw.githubusercontent.com/nytimes/covid-19-data/master/us.csv"
CSV = b"date,cases,deaths\n2020-01-21,1,0\n"


def policy(**overrides) -> SourcePolicy:
    settings = {"allowed_hosts": frozenset({"raw.githubusercontent.com"}), "s3_bucket": BUCKET}
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
        ("https://evil.example.com/us.csv", "host 'evil.example.com' is not allowed"),
        ("http://raw.githubusercontent.com/us.csv", "scheme 'http' is not allowed"),
        ("https://169.254.169.254/latest/meta-data/", "host '169.254.169.254' is not allowed"),
        ("https://raw.githubusercontent.com.evil.example/us.csv", "is not allowed"),
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
