"""The seed's seven workflows, and then every other operation, through a Python client
generated from docs/openapi.yaml by openapi-python-client (crates/server/tests/consumers runs
it against a live server).

Environment: STORAGE_API (base URL), TOKEN_ALICE, TOKEN_BOB (members of project 5678: alice
may read, write, delete, lock and validate; bob read, write, lock and validate), TOKEN_CAROL
(no project member). The generated package `storage_client` is on PYTHONPATH.

Every call goes through the generated functions and models; nothing is hand-written HTTP but
the presigned PUT, which goes to the URL given (the object store's, or the service's own). It
prints one line per workflow and `N passed, 0 failed` at the end; the first failed expectation
stops it (exit 1).
"""

import hashlib
import io
import json
import os
import sys
import urllib.request
from uuid import UUID

from storage_client import AuthenticatedClient, Client
from storage_client.api.collaboration import copy_file, list_locks, lock_file, unlock_file
from storage_client.api.downloads import download_proxy, presign_download
from storage_client.api.files import (
    archive_file,
    delete_file,
    get_audit,
    get_metadata,
    list_directory,
    list_trash,
    purge_trash,
    restore_from_trash,
    trash_file,
    unarchive_file,
    update_tags,
)
from storage_client.api.system import (
    get_config,
    get_health,
    get_health_live,
    get_health_ready,
    get_metrics,
    get_openapi,
    get_version,
)
from storage_client.api.uploads import complete_upload, presign_upload, upload_proxy
from storage_client.api.versions import (
    approve_version,
    commit_version,
    list_reviews,
    list_versions,
    pin_version,
    reject_version,
    restore_version,
    submit_version,
    unpin_version,
)
from storage_client.models import (
    Bucket,
    CommitRequest,
    CompleteUploadRequest,
    CopyRequest,
    ErrorBody,
    FileRef,
    OnConflictDto,
    LockRequest,
    PinRequest,
    PresignDownloadRequest,
    PresignUploadRequest,
    ProxyUploadForm,
    ProxyUploadFormTags,
    RejectRequest,
    RestoreRequest,
    ReviewRequest,
    TagsRequest,
    TagsRequestTags,
    TrashRequest,
    TrashRestoreRequest,
    UnlockRequest,
)
from storage_client.types import UNSET, File

API = os.environ["STORAGE_API"]
PROJECT = "/projects/5678/docs/specifications_v1.pdf"
WORKSPACE = "/users/alice/work/specifications_v1.pdf"

passed = 0
operations = set()


def client(token: str) -> AuthenticatedClient:
    return AuthenticatedClient(base_url=API, token=token, raise_on_unexpected_status=True)


alice = client(os.environ["TOKEN_ALICE"])
bob = client(os.environ["TOKEN_BOB"])
carol = client(os.environ["TOKEN_CAROL"])
anonymous = Client(base_url=API, raise_on_unexpected_status=True)


def call(module, *args, expect=200, **kwargs):
    """Calls a generated operation; checks the status; returns the parsed answer."""
    operations.add(module.__name__.rsplit(".", 1)[-1])
    response = module.sync_detailed(*args, **kwargs)
    if response.status_code != expect:
        sys.exit(
            f"FAILED: {module.__name__} answered {response.status_code} "
            f"(expected {expect}): {response.content[:300]!r}"
        )
    if expect >= 400:
        assert isinstance(response.parsed, ErrorBody), response.parsed
    return response


def check(condition, what):
    if not condition:
        sys.exit(f"FAILED: {what}")


def workflow(name):
    def run(fn):
        global passed
        fn()
        passed += 1
        print(f"ok: {name}")
        return fn

    return run


@workflow("0. service: health, version, config, OpenAPI document")
def service():
    health = call(get_health, client=anonymous).parsed
    check(health.database == "ok" and health.object_store == "ok", health)
    check(call(get_health_live, client=anonymous).parsed.status == "ok", "live")
    ready = call(get_health_ready, client=anonymous).parsed
    check(ready.database == "ok" and ready.object_store == "ok", ready)
    exposition = call(get_metrics, client=anonymous).content.decode()
    check("storage_http_requests_total" in exposition, "metrics exposition")
    check(call(get_version, client=anonymous).parsed.api_version == "1", "api_version")
    config = call(get_config, client=anonymous).parsed
    check(Bucket.PROJECTS in config.buckets, config)
    document = json.loads(call(get_openapi, client=anonymous).content)
    check(document["openapi"].startswith("3.1"), "OpenAPI 3.1")


first = b"Specifications, first draft\n"


@workflow("1. upload through a presigned URL")
def presigned_upload():
    # Without a size, as the seed presigns (on S3 the URL is then the service's own).
    body = PresignUploadRequest(
        bucket=Bucket.PROJECTS,
        path=PROJECT,
        content_type="application/pdf",
        sha256=hashlib.sha256(first).hexdigest(),
    )
    presigned = call(presign_upload, client=alice, body=body).parsed
    check(isinstance(presigned.upload_id, UUID), "upload_id is a UUID")
    request = urllib.request.Request(
        presigned.url,
        data=first,
        method=presigned.method.value,
        headers=dict(presigned.headers.additional_properties),
    )
    with urllib.request.urlopen(request) as answer:
        check(answer.status == 200, f"presigned PUT answered {answer.status}")
    # The UUID of the presign answer goes straight into the completion's body.
    done = call(
        complete_upload,
        client=alice,
        body=CompleteUploadRequest(upload_id=presigned.upload_id),
    ).parsed
    check(done.file.version == 1 and done.version.size == len(first), done)
    again = call(
        complete_upload, client=alice, body=CompleteUploadRequest(upload_id=presigned.upload_id)
    ).parsed
    check(again.version.id == done.version.id, "completing twice gives the same version")


@workflow("2. upload through the service (multipart, the generator's field order)")
def proxy_upload():
    form = ProxyUploadForm(
        bucket=Bucket.PROJECTS,
        path="/projects/5678/docs/annex.txt",
        file=File(payload=io.BytesIO(b"Annex A\n"), file_name="annex.txt", mime_type="text/plain"),
        message="Annex, first draft",
        tags=ProxyUploadFormTags.from_dict({"kind": "annex"}),
        expected_version=0,
    )
    done = call(upload_proxy, client=alice, body=form).parsed
    check(done.file.content_type == "text/plain", done.file)
    check(done.file.tags.additional_properties == {"kind": "annex"}, done.file.tags)
    check(done.version.message == "Annex, first draft", done.version)
    # Conditional: the file exists now, so `expected_version=0` is a conflict.
    form.file = File(payload=io.BytesIO(b"again"), file_name="annex.txt")
    call(upload_proxy, client=alice, body=form, expect=409)
    # The If-Match header of the same operation answers 412.
    form.expected_version = UNSET
    form.file = File(payload=io.BytesIO(b"v2"), file_name="annex.txt")
    call(upload_proxy, client=alice, body=form, if_match="5", expect=412)


checkout_version = {}


@workflow("3. copy a project file into one's workspace (automatic lock)")
def checkout():
    body = CopyRequest(
        source_bucket=Bucket.PROJECTS,
        source_path=PROJECT,
        target_bucket=Bucket.USERS,
        target_path=WORKSPACE,
    )
    done = call(copy_file, client=alice, body=body).parsed
    check(done.file.path == WORKSPACE, done.file)
    source = call(get_metadata, client=alice, bucket=Bucket.PROJECTS, path=PROJECT).parsed
    check(source.file.locked_by == "alice", source.file)
    check(source.file.lock.base_version == 1, source.file.lock)
    # Bob cannot check it out meanwhile.
    body.target_path = "/users/bob/work/specifications_v1.pdf"
    refused = call(copy_file, client=bob, body=body, expect=409).parsed
    check(refused.message == "file_locked" and refused.lock.holder == "alice", refused)


@workflow("4. edit locally and commit a new version")
def commit():
    edited = b"Specifications, second draft\n"
    form = ProxyUploadForm(
        bucket=Bucket.USERS,
        path=WORKSPACE,
        file=File(payload=io.BytesIO(edited), file_name="specifications_v1.pdf"),
        content_type="application/pdf",
    )
    call(upload_proxy, client=alice, body=form)
    body = CommitRequest(
        source_bucket=Bucket.USERS,
        source_path=WORKSPACE,
        target_bucket=Bucket.PROJECTS,
        target_path=PROJECT,
        message="Updated specifications with new requirements",
    )
    done = call(commit_version, client=alice, body=body).parsed
    check(done.version.number == 2 and done.version.status.value == "pending_validation", done)
    check(done.file.locked_by is None, "the commit released the lock")
    checkout_version["id"] = done.version.id


@workflow("5. approve a version (four eyes)")
def approve():
    version_id = checkout_version["id"]
    queue = call(list_reviews, client=bob, bucket=Bucket.PROJECTS, path="/projects/5678/").parsed
    check(
        [(r.file.path, r.version.id) for r in queue.reviews] == [(PROJECT, version_id)]
        and queue.next_cursor is None,
        queue,
    )
    own = call(
        approve_version, version_id, client=alice, body=ReviewRequest(comment="mine"), expect=403
    ).parsed
    check(own.message == "access_denied", own)
    done = call(
        approve_version,
        version_id,
        client=bob,
        body=ReviewRequest(comment="Changes approved by team lead"),
    ).parsed
    check(done.version.status.value == "validated" and done.file.validated_version == 2, done)
    after = call(list_reviews, client=bob, bucket=Bucket.PROJECTS, path="/projects/5678/").parsed
    check(after.reviews == [], "the review queue is empty once v2 is approved")
    history = call(list_versions, client=alice, bucket=Bucket.PROJECTS, path=PROJECT).parsed
    check([v.number for v in history.versions] == [2, 1], history.versions)
    check(history.next_cursor is None, history.next_cursor)
    newest = call(
        list_versions, client=alice, bucket=Bucket.PROJECTS, path=PROJECT, limit=1
    ).parsed
    check([v.number for v in newest.versions] == [2] and newest.next_cursor, newest)
    older = call(
        list_versions,
        client=alice,
        bucket=Bucket.PROJECTS,
        path=PROJECT,
        limit=1,
        cursor=newest.next_cursor,
    ).parsed
    check([v.number for v in older.versions] == [1] and older.next_cursor is None, older)
    data = call(
        download_proxy, client=alice, bucket=Bucket.PROJECTS, path=PROJECT, version="validated"
    )
    check(data.content == b"Specifications, second draft\n", data.content)
    check(
        "specifications_v1.pdf" in data.headers["content-disposition"],
        data.headers["content-disposition"],
    )
    ranged = call(
        download_proxy,
        client=alice,
        bucket=Bucket.PROJECTS,
        path=PROJECT,
        range_="bytes=0-13",
        expect=206,
    )
    check(ranged.content == b"Specifications", ranged.content)


@workflow("6. force an unlock")
def force_unlock():
    call(lock_file, client=alice, body=LockRequest(bucket=Bucket.PROJECTS, path=PROJECT, ttl_seconds=3600))
    held = call(
        lock_file, client=bob, body=LockRequest(bucket=Bucket.PROJECTS, path=PROJECT), expect=409
    ).parsed
    check(held.message == "file_locked", held)
    released = call(
        unlock_file,
        client=bob,
        body=UnlockRequest(
            bucket=Bucket.PROJECTS, path=PROJECT, force=True, reason="Alice is on leave"
        ),
    ).parsed
    check(released.released.holder == "alice", released)


@workflow("7. list the locked files")
def locked_files():
    call(lock_file, client=bob, body=LockRequest(bucket=Bucket.PROJECTS, path=PROJECT))
    page = call(list_locks, client=alice, bucket=Bucket.PROJECTS, path="/projects/5678/").parsed
    check([(l.path, l.lock.holder) for l in page.locks] == [(PROJECT, "bob")], page.locks)
    call(unlock_file, client=bob, body=UnlockRequest(bucket=Bucket.PROJECTS, path=PROJECT))


@workflow("every other operation: list, tags, presigned download, review, restore, pins, archive, audit, delete")
def the_rest():
    listing = call(
        list_directory, client=alice, bucket=Bucket.PROJECTS, path="/projects/5678/docs/", limit=1
    ).parsed
    check(len(listing.entries) == 1 and listing.next_cursor, listing)
    rest = call(
        list_directory,
        client=alice,
        bucket=Bucket.PROJECTS,
        path="/projects/5678/docs/",
        cursor=listing.next_cursor,
    ).parsed
    names = [e.name for e in listing.entries + rest.entries]
    check(names == ["annex.txt", "specifications_v1.pdf"], names)

    tagged = call(
        update_tags,
        client=bob,
        body=TagsRequest(
            bucket=Bucket.PROJECTS,
            path=PROJECT,
            tags=TagsRequestTags.from_dict({"phase": "review"}),
        ),
    ).parsed
    check(tagged.file.tags.additional_properties == {"phase": "review"}, tagged.file.tags)

    link = call(
        presign_download,
        client=alice,
        body=PresignDownloadRequest(bucket=Bucket.PROJECTS, path=PROJECT, version=1),
    ).parsed
    with urllib.request.urlopen(link.url) as answer:
        check(answer.read() == first, "the presigned download gives version 1")

    draft = call(
        upload_proxy,
        client=alice,
        body=ProxyUploadForm(
            bucket=Bucket.PROJECTS,
            path=PROJECT,
            file=File(payload=io.BytesIO(b"third draft"), file_name="x.pdf"),
        ),
    ).parsed
    submitted = call(submit_version, draft.version.id, client=alice).parsed
    check(submitted.version.status.value == "pending_validation", submitted.version)
    rejected = call(
        reject_version,
        draft.version.id,
        client=bob,
        body=RejectRequest(comment="The totals in section 3 do not add up"),
    ).parsed
    check(rejected.version.status.value == "rejected", rejected.version)
    restored = call(
        restore_version,
        draft.version.id,
        client=alice,
        body=RestoreRequest(message="Back to the third draft"),
    ).parsed
    check(
        restored.version.restored_from == draft.version.number
        and restored.version.number == draft.version.number + 1
        and restored.version.sha256 == draft.version.sha256
        and restored.version.status.value == "draft",
        restored.version,
    )
    pinned = call(
        pin_version, draft.version.id, client=bob, body=PinRequest(label="release 1.0")
    ).parsed
    check(pinned.version.pinned == "release 1.0", pinned.version)
    unpinned = call(unpin_version, draft.version.id, client=bob).parsed
    check(unpinned.version.pinned is None, unpinned.version)

    archived = call(
        archive_file, client=alice, body=FileRef(bucket=Bucket.PROJECTS, path=PROJECT)
    ).parsed
    check(archived.file.status.value == "archived", archived.file)
    call(lock_file, client=alice, body=LockRequest(bucket=Bucket.PROJECTS, path=PROJECT), expect=409)
    call(unarchive_file, client=alice, body=FileRef(bucket=Bucket.PROJECTS, path=PROJECT))

    # Carol is no member: refused, and her attempt is in the trail.
    call(delete_file, client=carol, bucket=Bucket.PROJECTS, path=PROJECT, expect=403)
    trail = call(get_audit, client=alice, bucket=Bucket.PROJECTS, path=PROJECT).parsed
    actions = [(e.action, e.outcome.value) for e in trail.events]
    check(("delete", "denied") in actions and ("approve", "success") in actions, actions)

    gone = call(delete_file, client=alice, bucket=Bucket.PROJECTS, path=PROJECT).parsed
    check(gone.file.path == PROJECT, gone.file)
    call(get_metadata, client=alice, bucket=Bucket.PROJECTS, path=PROJECT, expect=404)


@workflow("the trash: trash, list, restore (fail, rename), purge")
def trash():
    path = "/projects/5678/docs/to-trash.txt"
    for text in (b"first\n", b"second\n"):
        form = ProxyUploadForm(
            bucket=Bucket.PROJECTS,
            path=path,
            file=File(payload=io.BytesIO(text), file_name="to-trash.txt", mime_type="text/plain"),
        )
        call(upload_proxy, client=alice, body=form)
    entry = call(trash_file, client=alice, body=TrashRequest(bucket=Bucket.PROJECTS, path=path)).parsed.entry
    check(entry.path == path and entry.versions == 2 and entry.trashed_by == "alice", entry)
    call(get_metadata, client=alice, bucket=Bucket.PROJECTS, path=path, expect=404)
    page = call(
        list_trash, client=alice, bucket=Bucket.PROJECTS, path="/projects/5678/docs/", limit=10
    ).parsed
    check(any(e.trash_id == entry.trash_id for e in page.entries), page)
    # The path is free: a new file there, then a restore that fails, then one that renames.
    form = ProxyUploadForm(
        bucket=Bucket.PROJECTS,
        path=path,
        file=File(payload=io.BytesIO(b"new\n"), file_name="to-trash.txt", mime_type="text/plain"),
    )
    call(upload_proxy, client=alice, body=form)
    call(
        restore_from_trash,
        client=alice,
        body=TrashRestoreRequest(trash_id=entry.trash_id),
        expect=409,
    )
    restored = call(
        restore_from_trash,
        client=alice,
        body=TrashRestoreRequest(trash_id=entry.trash_id, on_conflict=OnConflictDto.RENAME),
    ).parsed
    renamed = "/projects/5678/docs/to-trash (restored).txt"
    check(restored.file.path == renamed and restored.file.version == 2, restored.file)
    again = call(
        trash_file, client=alice, body=TrashRequest(bucket=Bucket.PROJECTS, path=renamed)
    ).parsed.entry
    purged = call(purge_trash, client=alice, trash_id=again.trash_id).parsed.entry
    check(purged.trash_id == again.trash_id, purged)
    call(purge_trash, client=alice, trash_id=again.trash_id, expect=404)


document = json.loads(call(get_openapi, client=anonymous).content)
declared = {
    op["operationId"] for item in document["paths"].values() for op in item.values()
}
missing = declared - operations
check(not missing, f"operations never called through the generated client: {sorted(missing)}")
print(f"{len(operations)} of {len(declared)} operations called")
print(f"{passed} passed, 0 failed")
