"""Media stores against real storage: an S3-compatible server (moto) and the local disk."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from storage.media import LocalMediaStore, MediaNotFound, S3MediaStore, new_key
from tests.conftest import ACCESS_KEY, REGION, SECRET_KEY


def make_store(endpoint: str, bucket: str, region: str = REGION) -> S3MediaStore:
    return S3MediaStore(
        bucket=bucket,
        endpoint_url=endpoint,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        region=region,
    )


@pytest.fixture
def store(moto_endpoint: str, bucket: str) -> S3MediaStore:
    return make_store(moto_endpoint, bucket)


async def test_put_get_exists_check_round_trip(store: S3MediaStore) -> None:
    await store.check()
    key = new_key("proofs", "jpg")
    data = secrets.token_bytes(4096)
    assert not await store.exists(key)

    await store.put(key, data, "image/jpeg")

    assert await store.exists(key)
    assert await store.get(key) == data
    head = store.client.head_object(Bucket=store.bucket, Key=key)
    assert head["ContentType"] == "image/jpeg"


async def test_overwrite_replaces_the_object(store: S3MediaStore) -> None:
    await store.put("proofs/a.pdf", b"first", "application/pdf")
    await store.put("proofs/a.pdf", b"second", "application/pdf")
    assert await store.get("proofs/a.pdf") == b"second"


async def test_missing_key_raises_media_not_found(store: S3MediaStore) -> None:
    with pytest.raises(MediaNotFound):
        await store.get("proofs/2026/01/nothing-here.jpg")
    assert not await store.exists("proofs/2026/01/nothing-here.jpg")


async def test_auto_region_works_with_an_endpoint(moto_endpoint: str, bucket: str) -> None:
    """The production default (``region="auto"``, as for R2) against the same server."""
    store = make_store(moto_endpoint, bucket, region="auto")
    await store.check()
    await store.put("proofs/r2.png", b"png-bytes", "image/png")
    assert await store.get("proofs/r2.png") == b"png-bytes"


async def test_check_raises_for_a_missing_bucket(moto_endpoint: str) -> None:
    from botocore.exceptions import ClientError

    store = make_store(moto_endpoint, f"no-such-bucket-{secrets.token_hex(4)}")
    with pytest.raises(ClientError):
        await store.check()


# ------------------------------------------------------------------ local disk


async def test_local_store_round_trip(tmp_path: Path) -> None:
    store = LocalMediaStore(tmp_path / "media")
    await store.check()
    await store.put("proofs/2026/01/x.jpg", b"abc", "image/jpeg")
    assert await store.exists("proofs/2026/01/x.jpg")
    assert await store.get("proofs/2026/01/x.jpg") == b"abc"
    with pytest.raises(MediaNotFound):
        await store.get("proofs/2026/01/missing.jpg")


@pytest.mark.parametrize("key", ["../x", "proofs/../../x", "/etc/passwd"])
async def test_local_store_refuses_keys_escaping_its_root(tmp_path: Path, key: str) -> None:
    root = tmp_path / "media"
    store = LocalMediaStore(root)
    with pytest.raises(ValueError):
        await store.put(key, b"evil", "image/jpeg")
    with pytest.raises(ValueError):
        await store.get(key)
    assert not (tmp_path / "x").exists()


async def test_local_store_refuses_a_sibling_directory_with_the_same_prefix(
    tmp_path: Path,
) -> None:
    """``media-evil`` starts with the string ``media`` but is outside ``media/``."""
    store = LocalMediaStore(tmp_path / "media")
    with pytest.raises(ValueError):
        await store.put("../media-evil/x", b"evil", "image/jpeg")
    assert not (tmp_path / "media-evil" / "x").exists()
