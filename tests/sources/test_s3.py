"""S3Source against moto's S3 server on loopback: the Source contract, the version identity,
errors, and ``etl4all run``, ``estimate`` and ``check`` on an ``s3://`` source."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import moto.settings
import pytest
from click.testing import CliRunner
from contracts.source import SourceContract
from s3_server import SECRET_KEY, Bucket, S3TestServer, aws_environment

from etl4all import exits, sample, sources
from etl4all.cli import cli
from etl4all.errors import ConfigError, MissingDependencyError, SourceConfigError, SourceError
from etl4all.operations import check
from etl4all.settings import Settings
from etl4all.sources.s3 import S3Source
from etl4all.sources.settle import by_key, settled


@pytest.fixture(scope="module")
def s3_server() -> Iterator[S3TestServer]:
    with S3TestServer() as server:
        yield server


@pytest.fixture(autouse=True)
def aws(s3_server: S3TestServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every test reaches the server the way a user reaches an S3-compatible store."""
    aws_environment(monkeypatch, tmp_path, s3_server.endpoint)


@pytest.fixture
def bucket(s3_server: S3TestServer) -> Bucket:
    """A new bucket whose files go under ``in/``."""
    return s3_server.bucket("in/")


class TestS3Source(SourceContract):
    @pytest.fixture
    def served(self, bucket: Bucket) -> Bucket:
        return bucket

    @pytest.fixture
    def url_of(self, bucket: Bucket) -> Callable[[str], str]:
        return bucket.url


@pytest.fixture
def files(bucket: Bucket) -> dict[str, str]:
    """Three objects under ``in/``; their ETags by name."""
    return {
        "day1.txt": bucket.write("day1.txt", b"Latitude: 30\xc2\xb0S   -30.1\r\nLongitude: x\r\n"),
        "2024/day2.txt": bucket.write("2024/day2.txt", bytes(range(256)) * 40),
        "readme.md": bucket.write("readme.md", b"not coordinates"),
    }


def test_keys_are_s3_urls_and_etags_are_the_stores(bucket: Bucket, files: dict[str, str]) -> None:
    with S3Source(url=f"s3://{bucket.name}/in") as source:
        refs = source.list_files()
    assert [ref.key for ref in refs] == [
        f"s3://{bucket.name}/in/2024/day2.txt",
        f"s3://{bucket.name}/in/day1.txt",
    ]
    assert [ref.etag for ref in refs] == [files["2024/day2.txt"], files["day1.txt"]]
    assert all(ref.etag for ref in refs)


def test_a_rewrite_is_settled_only_once_two_listings_agree(
    bucket: Bucket, files: dict[str, str]
) -> None:
    with sources.from_url(bucket.url()) as source:
        first = by_key(source.list_files())
        bucket.write("day1.txt", b"Latitude: 31\xc2\xb0S   -30.1\r\nLongitude: x\r\n")  # same size
        second = source.list_files()
        assert [ref.name for ref in settled(first, second)] == ["2024/day2.txt"]
        assert [ref.name for ref in settled(by_key(second), source.list_files())] == [
            "2024/day2.txt",
            "day1.txt",
        ]


def test_non_recursive_listing(bucket: Bucket, files: dict[str, str]) -> None:
    with S3Source(url=bucket.url() + "?recursive=no") as source:
        assert [ref.name for ref in source.list_files()] == ["day1.txt"]


def test_a_missing_prefix_lists_nothing_and_a_whole_bucket_lists_all(
    bucket: Bucket, files: dict[str, str]
) -> None:
    with S3Source(url=f"s3://{bucket.name}/out") as source:
        assert source.list_files() == []
    with S3Source(url=f"s3://{bucket.name}", pattern="*") as source:
        names = [ref.name for ref in source.list_files()]
    assert names == ["in/2024/day2.txt", "in/day1.txt", "in/readme.md"]


def test_a_bad_bucket_is_a_one_line_config_fault(s3_server: S3TestServer) -> None:
    source = S3Source(url="s3://etl4all-no-such-bucket/in")
    with source, pytest.raises(SourceConfigError) as info:
        source.list_files()
    text = str(info.value)
    assert "no bucket 'etl4all-no-such-bucket'" in text and s3_server.endpoint in text
    assert "\n" not in text and not info.value.retryable


def test_missing_credentials_are_a_one_line_config_fault(
    bucket: Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    source = S3Source(url=bucket.url())
    with source, pytest.raises(SourceConfigError, match="no AWS credentials found") as info:
        source.list_files()
    assert "\n" not in str(info.value) and "AWS_ACCESS_KEY_ID" in str(info.value)


def test_refused_credentials_are_a_one_line_config_fault(
    bucket: Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(moto.settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)  # check signatures
    source = S3Source(url=bucket.url())
    with source, pytest.raises(SourceConfigError, match="InvalidAccessKeyId") as info:
        source.list_files()
    assert "\n" not in str(info.value) and SECRET_KEY not in str(info.value)


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("AWS_PROFILE", "nope", r"profile \(nope\) could not be found"),
        ("AWS_ENDPOINT_URL", "not a url", "Invalid endpoint"),
    ],
)
def test_a_wrong_aws_configuration_is_a_config_fault(
    bucket: Bucket, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, says: str
) -> None:
    monkeypatch.setenv(variable, value)
    source = S3Source(url=bucket.url())
    with source, pytest.raises(SourceConfigError, match=says) as info:
        source.list_files()
    assert "AWS_PROFILE" in str(info.value) and "\n" not in str(info.value)


def test_credentials_come_from_the_aws_files(
    bucket: Bucket, files: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    credentials = tmp_path / "credentials"
    credentials.write_text("[reader]\naws_access_key_id = k\naws_secret_access_key = s\n")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_PROFILE", "reader")
    with S3Source(url=bucket.url()) as source:
        assert len(source.list_files()) == 2


def test_an_unreachable_store_is_a_retryable_one_line_error(
    bucket: Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    source = S3Source(url=bucket.url() + "?timeout=2")
    with source, pytest.raises(SourceError, match=r"127\.0\.0\.1:1") as info:
        source.list_files()
    assert info.value.retryable and "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("s3://key:secret@bucket/in", "names a bucket only"),
        ("s3://bucket:9000/in", "names a bucket only"),
        ("s3:///in", "names no bucket"),
        ("s3://bucket/in?region=eu-west-1", "unknown option 'region'"),
        ("s3://bucket/in?recursive=maybe", "recursive must be yes or no"),
        ("s3://bucket/in?timeout=0", "timeout must be positive"),
    ],
)
def test_bad_urls_are_config_errors(url: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says) as info:
        sources.from_url(url)
    assert "secret" not in str(info.value)


def test_without_boto3_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)
    monkeypatch.delitem(sys.modules, "etl4all.sources.s3")
    with pytest.raises(MissingDependencyError, match=r"etl4all\[s3\]"):
        sources.from_url("s3://bucket/in")


@pytest.fixture
def samples(bucket: Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Bucket:
    """The three sample files (2,994 coordinates) under ``in/``; the working directory is a
    fresh folder (the embedded run's DuckDB file and state go there)."""
    sample.write_sample(tmp_path / "made", files=3, points=998, seed=4)
    bucket.upload(tmp_path / "made")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return bucket


def test_run_loads_the_samples_once_and_skips_them_on_a_rerun(samples: Bucket) -> None:
    first = CliRunner().invoke(cli, ["run", samples.url()])
    assert first.exit_code == 0, first.output
    assert "3 processed" in first.output and "2994 inserted" in first.output
    again = CliRunner().invoke(cli, ["run", samples.url()])
    assert again.exit_code == 0, again.output
    assert "0 processed, 3 skipped" in again.output and "nothing new" in again.output


def test_run_loads_one_object_named_by_the_url(samples: Bucket) -> None:
    result = CliRunner().invoke(cli, ["run", samples.url("data_points_20180102.txt")])
    assert result.exit_code == 0, result.output
    assert "1 processed" in result.output and "998 inserted" in result.output


def test_estimate_reads_an_s3_source(samples: Bucket) -> None:
    result = CliRunner().invoke(cli, ["estimate", samples.url()])
    assert result.exit_code == 0, result.output
    assert "files          3" in result.output and "points         2994" in result.output


def test_check_lists_an_s3_source_without_resolving_the_bucket(bucket: Bucket) -> None:
    bucket.write("day1.txt", b"x")
    (result,) = check.run_checks(Settings(), ["source"], sources=[bucket.url()])
    assert result.ok and result.detail == "1 file"
    (missing,) = check.run_checks(Settings(), ["source"], sources=["s3://etl4all-no-bucket/in"])
    assert missing.config_fault and "no bucket 'etl4all-no-bucket'" in missing.detail


def test_a_shrunk_object_is_held_a_changed_one_read_again_and_force_redoes_all(
    samples: Bucket, tmp_path: Path
) -> None:
    def run(*options: str, code: int = 0) -> str:
        result = CliRunner().invoke(cli, ["run", samples.url(), *options])
        assert result.exit_code == code, result.output
        return result.output

    run()
    cut, changed = "data_points_20180101.txt", "data_points_20180102.txt"
    whole = samples.read(cut)
    samples.write(cut, whole[: len(whole) // 2])  # an upload cut short: a prefix
    (other,) = sample.write_sample(tmp_path / "other", files=1, points=5, seed=9)
    samples.write(changed, other.read_bytes())  # a new version: five other points
    second = run(code=exits.ATTENTION)
    assert "1 processed, 1 skipped (already done), 1 held" in second
    assert f"held: {cut}: now {len(whole) // 2} of {len(whole)} bytes" in second
    assert "5 inserted" in second and "998 pruned" in second
    assert "2 processed, 0 skipped (already done), 1 held" in run("--force", code=exits.ATTENTION)
    accepted = run("--accept-shrink", cut)
    assert "1 processed, 2 skipped" in accepted and "held" not in accepted
