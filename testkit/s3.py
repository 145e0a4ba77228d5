"""A view of an S3 endpoint over HTTP (moto's server in tests) from outside the services."""

from dataclasses import dataclass
from typing import TYPE_CHECKING

import boto3

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


@dataclass(frozen=True)
class S3Endpoint:
    url: str

    def client(self) -> "S3Client":
        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def keys(self, bucket: str) -> list[str]:
        """Every object key in ``bucket`` (empty when the bucket does not exist)."""
        client = self.client()
        try:
            pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            return [item["Key"] for page in pages for item in page.get("Contents", [])]
        except client.exceptions.NoSuchBucket:
            return []
