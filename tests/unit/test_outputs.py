"""Output roots and URLs: what a worker may write, where an object output is staged, and the
two output backends' local halves (no object store needed: one that is not there fails)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from celery_animate.config import Settings
from celery_animate.errors import InvalidArgument, OutputPathRefused, OutputUploadFailed
from celery_animate.job import lifecycle
from celery_animate.options import RenderResult
from celery_animate.outputs import open_output
from celery_animate.outputs.local import LocalOutput
from celery_animate.outputs.object_store import ObjectOutput, store_options
from celery_animate.paths import (
    ObjectUrl,
    StagedOutput,
    output_path,
    parse_object_url,
    partial_path,
    resolve_output,
)

ROOTS = "s3://renders/out/,{local}"


@pytest.fixture
def settings(tmp_path) -> Settings:
    (tmp_path / "videos").mkdir()
    return Settings(output_root=ROOTS.format(local=tmp_path / "videos"),
                    staging_dir=str(tmp_path / "staging"))


@pytest.mark.parametrize("output, url", [
    ("s3://renders/out/v.mp4", "s3://renders/out/v.mp4"),
    ("s3://renders/out/a/b/v.mp4", "s3://renders/out/a/b/v.mp4"),
    ("S3://renders/out/v.mp4", "s3://renders/out/v.mp4"),
    ("v.mp4", "s3://renders/out/v.mp4"),  # relative names go under the first root
    ("team/v.mp4", "s3://renders/out/team/v.mp4"),
])
def test_urls_under_a_url_root_are_staged_under_the_staging_dir(settings, tmp_path, output, url):
    staged = output_path(output, settings)
    assert isinstance(staged, StagedOutput)
    assert str(staged.url) == url
    assert staged == tmp_path / "staging" / "s3" / "renders" / url[len("s3://renders/"):]
    assert isinstance(open_output(staged), ObjectOutput)
    assert open_output(staged).location == url


@pytest.mark.parametrize("output, reason", [
    ("s3://other/out/v.mp4", "outside"),               # another bucket
    ("gs://renders/out/v.mp4", "outside"),             # another scheme of the library
    ("http://renders/out/v.mp4", "not supported"),     # a scheme no backend has
    ("ftp://renders/out/v.mp4", "not supported"),
    ("s3://renders/v.mp4", "outside"),                 # the bucket, but outside the prefix
    ("s3://renders/outside/v.mp4", "outside"),         # a prefix that only starts the same
    ("s3://renders/out/../v.mp4", "'..'"),
    ("s3://renders/out/a/../../v.mp4", "'..'"),
    ("s3://renders/out/./v.mp4", "'.'"),
    ("s3://renders/out//v.mp4", "empty"),
    ("s3://renders/out/%2e%2e/v.mp4", "'%'"),
    ("s3://renders/out/%2Fv.mp4", "'%'"),
    ("s3://renders/out/a\\..\\v.mp4", "'\\\\\\\\'"),
    ("s3://renders/out/a\0.mp4", "'\\\\x00'"),
    ("s3://renders/out/a\n.mp4", "'\\\\n'"),
    ("s3://renders/out/v.mp4?x=1", "'\\?'"),
    ("s3://renders/out/v.mp4#x", "'#'"),
    ("s3://renders/out/", "names no object"),
    ("s3://Renders/out/v.mp4", "bucket name"),
    ("s3://../out/v.mp4", "bucket name"),
    ("../v.mp4", "'..'"),                              # relative, under the URL root
    ("/etc/v.mp4", "outside"),                         # a path outside the local root
    ("file:///etc/v.mp4", "outside"),
    ("file://otherhost/v.mp4", "no host"),
])
def test_outputs_outside_the_roots_are_refused(settings, tmp_path, output, reason):
    with pytest.raises(OutputPathRefused, match=reason):
        output_path(output, settings)
    with pytest.raises((OutputPathRefused, InvalidArgument)):
        resolve_output(output, settings)
    assert not (tmp_path / "staging").exists()


def test_paths_and_file_urls_under_a_local_root_are_local(settings, tmp_path):
    videos = tmp_path / "videos"
    for output in (videos / "v.mp4", f"file://{videos}/v.mp4", (videos / "v.mp4").as_uri()):
        path = output_path(str(output), settings)
        assert path == videos / "v.mp4" and not isinstance(path, StagedOutput)
        assert isinstance(open_output(path), LocalOutput)


def test_resolve_output_records_the_url_or_the_name_as_given(settings):
    assert resolve_output("s3://renders/out/x/v.mp4", settings) == "s3://renders/out/x/v.mp4"
    assert resolve_output("S3://renders/out/v.mp4", settings) == "s3://renders/out/v.mp4"
    assert resolve_output("v.mp4", settings) == "v.mp4"  # each worker resolves it under its root


def test_without_roots_any_supported_url_is_allowed_but_still_checked(tmp_path):
    settings = Settings(staging_dir=str(tmp_path / "staging"))
    assert resolve_output("gs://any-bucket/k/v.mp4", settings) == "gs://any-bucket/k/v.mp4"
    assert str(output_path("az://container/v.mp4", settings).url) == "az://container/v.mp4"
    for bad in ("s3://b1b/../v.mp4", "s3://b1b/a//v.mp4", "http://h/v.mp4", "s3://b1b/%00.mp4"):
        with pytest.raises(OutputPathRefused):
            resolve_output(bad, settings)


def test_a_bucket_root_allows_the_whole_bucket_and_a_key_root_its_children(tmp_path):
    whole = Settings(output_root="s3://renders", staging_dir=str(tmp_path))
    assert str(output_path("s3://renders/any/v.mp4", whole).url) == "s3://renders/any/v.mp4"
    assert str(output_path("v.mp4", whole).url) == "s3://renders/v.mp4"
    no_slash = Settings(output_root="s3://renders/out", staging_dir=str(tmp_path))
    assert str(output_path("s3://renders/out/v.mp4", no_slash).url) == "s3://renders/out/v.mp4"
    with pytest.raises(OutputPathRefused):
        output_path("s3://renders/outer/v.mp4", no_slash)


def test_parse_object_url_splits_and_rejects():
    assert parse_object_url("s3://b-1.x/k/v.mp4") == ObjectUrl("s3", "b-1.x", "k/v.mp4")
    assert parse_object_url("s3://bkt/out/", prefix=True) == ObjectUrl("s3", "bkt", "out/")
    with pytest.raises(OutputPathRefused):
        parse_object_url("s3://bkt/out/")  # a prefix is not an object


def test_settings_read_output_roots_and_only_the_standard_store_variables():
    settings = Settings.from_env({
        "CELERY_ANIMATE_OUTPUT_ROOT": " s3://renders/out/ , /srv/videos ",
        "CELERY_ANIMATE_STAGING_DIR": "/var/stage",
        "AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "secret",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9000", "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_PROFILE": "ignored", "HOME": "/root", "GOOGLE_SERVICE_ACCOUNT": "/k.json",
    })
    assert settings.output_roots == ("s3://renders/out/", "/srv/videos")
    assert settings.staging_dir == "/var/stage"
    assert dict(settings.object_store_env) == {
        "AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "secret",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9000", "AWS_DEFAULT_REGION": "eu-west-1",
        "GOOGLE_SERVICE_ACCOUNT": "/k.json"}
    options = store_options(ObjectUrl("s3", "bkt", "v.mp4"), settings.object_store_env)
    assert options["config"] == {"aws_access_key_id": "id", "aws_secret_access_key": "secret",
                                 "aws_endpoint": "http://127.0.0.1:9000",
                                 "aws_region": "eu-west-1"}
    assert options["client_options"]["allow_http"] is True
    gcs = store_options(ObjectUrl("gs", "bkt", "v.mp4"), settings.object_store_env)
    assert gcs["config"] == {"google_service_account": "/k.json"}
    assert gcs["client_options"]["allow_http"] is False


def test_a_local_output_is_published_by_rename(tmp_path):
    output = LocalOutput(tmp_path / "sub" / "v.mp4")
    tmp = output.temporary("a" * 32, 3)
    assert tmp.parent == tmp_path / "sub" and tmp.name.startswith(".v.")
    tmp.write_bytes(b"video")
    assert output.publish(tmp) == 5
    assert (tmp_path / "sub" / "v.mp4").read_bytes() == b"video" and not tmp.exists()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_upload_to_an_unreachable_store_fails_clearly_and_removes_the_staged_file(tmp_path):
    settings = Settings(staging_dir=str(tmp_path / "staging"), object_store_env=(
        ("AWS_ACCESS_KEY_ID", "id"), ("AWS_SECRET_ACCESS_KEY", "secret"),
        ("AWS_ENDPOINT_URL", f"http://127.0.0.1:{_closed_port()}"), ("AWS_REGION", "us-east-1")))
    output = open_output(output_path("s3://bkt/out/v.mp4", settings))
    tmp = output.temporary("b" * 32, 0)
    assert tmp.parent == tmp_path / "staging" / "s3" / "bkt" / "out"
    tmp.write_bytes(b"video")
    with pytest.raises(OutputUploadFailed, match=r"s3://bkt/out/v.mp4.*Nothing was written"):
        output.publish(tmp)
    assert not tmp.exists()


def test_remove_files_removes_what_a_killed_encoder_staged_for_an_object_output(tmp_path):
    settings = Settings(staging_dir=str(tmp_path / "staging"))
    job_id = "c" * 32
    staged = output_path("s3://bkt/out/v.mp4", settings)
    staged.parent.mkdir(parents=True)
    left = partial_path(Path(staged), job_id, 2)
    left.write_bytes(b"half a video")
    other = partial_path(Path(staged), "d" * 32, 0)
    other.write_bytes(b"another job's")
    lifecycle.remove_files("s3://bkt/out/v.mp4", job_id, settings)
    assert not left.exists() and other.exists()


def test_a_result_in_an_object_store_says_how_to_play_it_in_a_notebook():
    result = RenderResult("s3://renders/out/v.mp4", 4, 64, 48, 10, "libx264", 123, 0.5)
    shown = result._repr_html_()
    assert "s3://renders/out/v.mp4" in shown and "RenderJob.url()" in shown and "<video" not in shown
