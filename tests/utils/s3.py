"""An S3 endpoint for the tests: a real one when TEST_S3_ENDPOINT is set, else moto's server.

No S3 server can be installed on this machine, so moto in server mode (a real HTTP S3
endpoint, in a process of its own on a free port) stands in for one; it is the only stand-in
here and declared as such. With `TEST_S3_ENDPOINT=https://…` (and TEST_S3_ACCESS_KEY_ID,
TEST_S3_SECRET_ACCESS_KEY, optionally TEST_S3_REGION) the same tests run against that
endpoint instead: MinIO, Ceph, R2 or AWS itself. A run makes a bucket of its own there,
named after the run, and removes only that bucket and what is in it.
"""

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from tests.utils.databases import RUN_ID
from tests.utils.processes import free_port, stop
from tests.utils.waiting import wait_until_serving


@dataclass(frozen=True)
class S3Endpoint:
    url: str
    access_key: str
    secret_key: str
    region: str
    bucket: str

    def env(self, prefix: str = "") -> dict[str, str]:
        """The service's settings for this endpoint and bucket."""
        return {
            "STORAGE_BACKEND": "s3", "S3_BUCKET": self.bucket, "S3_PREFIX": prefix,
            "S3_ENDPOINT_URL": self.url, "S3_REGION": self.region,
            "AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key,
            # No credentials-from-the-instance probing (a 1-s timeout per call without it).
            "AWS_EC2_METADATA_DISABLED": "true",
        }  # fmt: skip

    def client(self) -> Any:
        return boto3.client(
            "s3", endpoint_url=self.url, region_name=self.region,
            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key,
            config=Config(s3={"addressing_style": "path"}),
        )  # fmt: skip


def configured_endpoint() -> S3Endpoint | None:
    url = os.environ.get("TEST_S3_ENDPOINT")
    if not url:
        return None
    return S3Endpoint(
        url, os.environ["TEST_S3_ACCESS_KEY_ID"], os.environ["TEST_S3_SECRET_ACCESS_KEY"],
        os.environ.get("TEST_S3_REGION", "us-east-1"), f"asr-test-{RUN_ID}",
    )  # fmt: skip


@contextmanager
def moto_server(host: str = "127.0.0.1", advertised: str | None = None) -> Iterator[S3Endpoint]:
    """moto's S3 server in a process of its own, listening on `host` (0.0.0.0 for other
    network namespaces); the endpoint URL names `advertised` (default: `host`)."""
    port = free_port()
    url = f"http://{advertised or host}:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", host, "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        reachable = "127.0.0.1" if host == "0.0.0.0" else host
        wait_until_serving(f"http://{reachable}:{port}/moto-api/", timeout=60)
        yield S3Endpoint(url, "testing", "testing", "us-east-1", f"asr-test-{RUN_ID}")
    finally:
        stop(process, timeout=10)


@contextmanager
def run_bucket(endpoint: S3Endpoint) -> Iterator[S3Endpoint]:
    """The run's own bucket on `endpoint`: created, then emptied and removed."""
    client = endpoint.client()
    client.create_bucket(Bucket=endpoint.bucket)
    try:
        yield endpoint
    finally:
        empty_prefix(endpoint, "")
        client.delete_bucket(Bucket=endpoint.bucket)


@contextmanager
def s3_endpoint() -> Iterator[S3Endpoint]:
    """TEST_S3_ENDPOINT's bucket for this run, or moto's."""
    configured = configured_endpoint()
    if configured is not None:
        with run_bucket(configured) as endpoint:
            yield endpoint
        return
    with moto_server() as server, run_bucket(server) as endpoint:
        yield endpoint


def new_prefix() -> str:
    """A key prefix of one test's own in the run's bucket."""
    return f"t-{uuid.uuid4().hex[:12]}/"


def object_keys(endpoint: S3Endpoint, prefix: str = "") -> list[str]:
    pages = endpoint.client().get_paginator("list_objects_v2")
    return [entry["Key"] for page in pages.paginate(Bucket=endpoint.bucket, Prefix=prefix)
            for entry in page.get("Contents", [])]  # fmt: skip


def unfinished_uploads(endpoint: S3Endpoint, prefix: str = "") -> list[str]:
    """Keys of multipart uploads begun and neither completed nor aborted."""
    listing = endpoint.client().list_multipart_uploads(Bucket=endpoint.bucket, Prefix=prefix)
    return [upload["Key"] for upload in listing.get("Uploads", [])]


def empty_prefix(endpoint: S3Endpoint, prefix: str) -> None:
    client = endpoint.client()
    for key in object_keys(endpoint, prefix):
        client.delete_object(Bucket=endpoint.bucket, Key=key)
    listing = client.list_multipart_uploads(Bucket=endpoint.bucket, Prefix=prefix)
    for upload in listing.get("Uploads", []):
        client.abort_multipart_upload(Bucket=endpoint.bucket, Key=upload["Key"],
                                      UploadId=upload["UploadId"])  # fmt: skip
