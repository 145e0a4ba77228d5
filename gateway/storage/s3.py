"""Objects in an S3-compatible bucket (MinIO in the stack): the only module that imports boto3."""

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from gateway.storage.base import (
    CHUNK_BYTES,
    IncompleteUpload,
    ObjectMissing,
    StorageUnavailable,
    StoredObject,
)

if TYPE_CHECKING:
    from botocore.response import StreamingBody
    from mypy_boto3_s3 import S3Client

_MISSING_CODES = {"NoSuchKey", "404", "NotFound"}
_MULTIPART_BYTES = 16 * 1024 * 1024


def client_timeouts(timeout_seconds: float) -> dict[str, Any]:
    """botocore settings under which one call, its retries included, ends within
    ``timeout_seconds``: a connect bound of 2 s, and a read bound per attempt (a hung endpoint
    stops sending; each attempt then waits at most connect + read). A large put is bounded per
    part the same way."""
    attempts = 2 if timeout_seconds >= 10 else 1
    connect = min(2.0, timeout_seconds / 4)
    return {
        "connect_timeout": connect,
        "read_timeout": max(0.5, timeout_seconds / attempts - connect),
        "retries": {"total_max_attempts": attempts, "mode": "standard"},
    }


class S3ObjectStore:
    """One bucket; every call bounded by connect/read time-outs and its retries (``timeout``)."""

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None,
        region: str,
        access_key_id: str | None,
        secret_access_key: str | None,
        timeout_seconds: float = 30,
        max_connections: int = 20,
    ) -> None:
        self.bucket = bucket
        config = Config(
            region_name=region,
            **client_timeouts(timeout_seconds),
            max_pool_connections=max_connections,
            s3={"addressing_style": "path"},
            # botocore >= 1.36 adds CRC32 checksums by default, which some S3-compatible servers
            # reject; ask for them only where the API requires them.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        self._client: S3Client = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint_url,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            config=config,
        )
        self._bucket_ready = False
        self._transfer = TransferConfig(
            multipart_threshold=_MULTIPART_BYTES,
            multipart_chunksize=_MULTIPART_BYTES,
            max_concurrency=4,
        )

    def ensure_bucket(self) -> None:
        """Create the bucket when it is missing (idempotent); remembered once it exists."""
        if self._bucket_ready:
            return
        try:
            self._client.head_bucket(Bucket=self.bucket)
        except ClientError as error:
            if _code(error) not in {"404", "NoSuchBucket", "NotFound"}:
                raise StorageUnavailable() from error
            try:
                self._client.create_bucket(Bucket=self.bucket)
            except ClientError as create_error:
                if _code(create_error) not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                    raise StorageUnavailable() from create_error
        except BotoCoreError as error:
            raise StorageUnavailable() from error
        self._bucket_ready = True

    def put_file(
        self, key: str, path: Path, *, content_type: str, metadata: Mapping[str, str]
    ) -> None:
        # Storage may have been down when the gateway started: the bucket is made on first need.
        self.ensure_bucket()
        try:
            if path.stat().st_size < _MULTIPART_BYTES:
                # One PUT: the transfer manager's threads and futures cost more than they save.
                with path.open("rb") as body:
                    self._client.put_object(
                        Bucket=self.bucket,
                        Key=key,
                        Body=body,
                        ContentType=content_type,
                        Metadata=dict(metadata),
                    )
                return
            self._client.upload_file(
                str(path),
                self.bucket,
                key,
                ExtraArgs={"ContentType": content_type, "Metadata": dict(metadata)},
                Config=self._transfer,
            )
        except (BotoCoreError, ClientError, S3UploadFailedError) as error:
            raise StorageUnavailable() from error

    def open_range(self, key: str, start: int, end: int) -> Iterator[bytes]:
        try:
            response = self._client.get_object(
                Bucket=self.bucket, Key=key, Range=f"bytes={start}-{end}"
            )
        except ClientError as error:
            if _code(error) in _MISSING_CODES:
                raise ObjectMissing(key) from error
            raise StorageUnavailable() from error
        except BotoCoreError as error:
            raise StorageUnavailable() from error
        return _stream(response["Body"])

    def open_file(self, key: str) -> None:
        return None  # objects are S3's, behind HTTP

    def delete(self, key: str) -> None:
        try:
            self._client.delete_object(Bucket=self.bucket, Key=key)
        except (BotoCoreError, ClientError) as error:
            raise StorageUnavailable() from error

    def list_objects(self, prefix: str) -> Iterator[StoredObject]:
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix, PaginationConfig={"PageSize": 1000}
        )
        try:
            for page in pages:
                for item in page.get("Contents", []):
                    yield StoredObject(item["Key"], item["LastModified"])
        except (BotoCoreError, ClientError) as error:
            raise StorageUnavailable() from error

    def list_incomplete(self, prefix: str) -> Iterator[IncompleteUpload]:
        pages = self._client.get_paginator("list_multipart_uploads").paginate(
            Bucket=self.bucket, Prefix=prefix
        )
        try:
            for page in pages:
                for item in page.get("Uploads", []):
                    yield IncompleteUpload(item["Key"], item["Initiated"], item["UploadId"])
        except (BotoCoreError, ClientError) as error:
            raise StorageUnavailable() from error

    def abort_incomplete(self, upload: IncompleteUpload) -> None:
        try:
            self._client.abort_multipart_upload(
                Bucket=self.bucket, Key=upload.key, UploadId=upload.handle
            )
        except ClientError as error:
            if _code(error) != "NoSuchUpload":
                raise StorageUnavailable() from error
        except BotoCoreError as error:
            raise StorageUnavailable() from error

    def check(self) -> None:
        self._bucket_ready = False  # a bucket deleted behind our back is made again
        self.ensure_bucket()

    def close(self) -> None:
        self._client.close()


def _stream(body: "StreamingBody") -> Iterator[bytes]:
    try:
        yield from body.iter_chunks(CHUNK_BYTES)
    finally:
        body.close()


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))
