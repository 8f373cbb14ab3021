"""Local stand-ins for the remote APIs the tests cannot reach.

`FakeServer` is a real HTTP server on 127.0.0.1 (http.server in a thread). Each platform app
below checks the request contract the way the real API defines it (paths, methods, headers,
body shape, batch sizes, hash formats), records what it received and keeps the audience it
would hold. Contract violations are collected in `server.problems` (and answered 400) so a
test can assert there were none. `server.force(...)` makes the next requests fail with a
chosen status (429 with Retry-After, 500...).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, bytes]:
        """Fields of a multipart/form-data body."""
        content_type = self.headers.get("content-type", "")
        message = BytesParser(policy=HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + self.body)
        fields: dict[str, bytes] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            fields[name] = part.get_payload(decode=True)
        return fields


Response = tuple[int, dict[str, str], bytes]


def json_response(body: Any, status: int = 200) -> Response:
    return status, {"Content-Type": "application/json"}, json.dumps(body).encode()


class Contract(Exception):
    """A request broke the API contract."""


class FakeServer:
    """An HTTP server on 127.0.0.1 that hands each request to `app`."""

    def __init__(self, app: Callable[[Request], Response]) -> None:
        self.app = app
        self.requests: list[Request] = []
        self.problems: list[str] = []
        self.forced: deque[Response] = deque()
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request = Request(self.command, self.path,
                                  {k.lower(): v for k, v in self.headers.items()},
                                  self.rfile.read(length))
                with server.lock:
                    server.requests.append(request)
                    forced = server.forced.popleft() if server.forced else None
                    if forced is None:
                        try:
                            forced = server.app(request)
                        except Contract as exc:
                            server.problems.append(f"{request.method} {request.path}: {exc}")
                            forced = json_response({"error": str(exc)}, 400)
                status, headers, body = forced
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_DELETE = do_PUT = _handle

            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def force(self, status: int, headers: dict[str, str] | None = None, body: bytes = b"",
              times: int = 1) -> None:
        for _ in range(times):
            self.forced.append((status, headers or {}, body))

    def start(self) -> FakeServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise Contract(message)


# --- Meta Custom Audiences -------------------------------------------------------------------

@dataclass
class MetaAudiences:
    """POST/DELETE /{version}/{audience_id}/users with a multipart `payload` field."""

    token: str
    schema: list[str]
    version: str = "v21.0"
    max_rows: int = 10_000
    audiences: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    added: Counter = field(default_factory=Counter)  # (audience, EXTERN_ID) -> times added
    removed: Counter = field(default_factory=Counter)
    batch_sizes: list[int] = field(default_factory=list)
    bodies: list[tuple[str, dict]] = field(default_factory=list)

    def __call__(self, request: Request) -> Response:
        match = re.fullmatch(rf"/{re.escape(self.version)}/(\d+)/users", request.path)
        expect(match is not None, "path must be /{version}/{audience_id}/users")
        expect(request.method in ("POST", "DELETE"), "add with POST, remove with DELETE")
        expect(request.headers.get("authorization") == f"Bearer {self.token}", "bad token")
        expect("?" not in request.path, "no query string: the token never goes in the URL")
        form = request.form()
        expect(set(form) == {"payload"}, "the body is one form field, payload")
        payload = json.loads(form["payload"])
        expect(set(payload) == {"schema", "data"}, "payload = {schema, data}")
        expect(payload["schema"] == self.schema, f"schema {payload['schema']}")
        rows = payload["data"]
        expect(0 < len(rows) <= self.max_rows, f"{len(rows)} rows in one request")
        extern = self.schema.index("EXTERN_ID") if "EXTERN_ID" in self.schema else None
        for row in rows:
            expect(len(row) == len(self.schema), "row width differs from the schema")
            for i, value in enumerate(row):
                if i != extern:
                    expect(value == "" or HEX64.fullmatch(value) is not None,
                           f"{self.schema[i]} is not a lowercase SHA-256 hex digest")
            if extern is not None:
                expect(HEX64.fullmatch(row[extern]) is None, "EXTERN_ID must not be hashed")
        audience = match.group(1)
        members = self.audiences.setdefault(audience, {})
        self.batch_sizes.append(len(rows))
        self.bodies.append((request.method, payload))
        for row in rows:
            key = row[extern] if extern is not None else "|".join(row)
            if request.method == "POST":
                members[key] = row
                self.added[(audience, key)] += 1
            else:
                members.pop(key, None)
                self.removed[(audience, key)] += 1
        return json_response({"audience_id": audience, "session_id": "1",
                              "num_received": len(rows), "num_invalid_entries": 0,
                              "invalid_entry_samples": {}})


# --- Google Ads Customer Match ---------------------------------------------------------------

IDENTIFIER_KEYS = {"hashedEmail", "hashedPhoneNumber", "addressInfo"}
ADDRESS_KEYS = {"hashedFirstName", "hashedLastName", "countryCode", "postalCode"}
CONSENT_VALUES = {"GRANTED", "DENIED"}


@dataclass
class GoogleCustomerMatch:
    """OfflineUserDataJobService over REST: :create, :addOperations, :run."""

    customer_id: str
    token: str
    developer_token: str
    version: str = "v21"
    login_customer_id: str | None = None
    max_operations: int = 10_000
    reject_emails: set[str] = field(default_factory=set)  # hashedEmail -> partial failure
    fail_run: bool = False
    jobs: dict[str, dict] = field(default_factory=dict)
    lists: dict[str, dict[str, dict]] = field(default_factory=dict)  # list -> key -> user
    batch_sizes: list[int] = field(default_factory=list)
    created: Counter = field(default_factory=Counter)  # (list, key) -> times applied

    def __call__(self, request: Request) -> Response:
        expect(request.method == "POST", "every OfflineUserDataJobService call is a POST")
        expect(request.headers.get("authorization") == f"Bearer {self.token}", "bad token")
        expect(request.headers.get("developer-token") == self.developer_token,
               "developer-token header")
        expect(request.headers.get("login-customer-id") == self.login_customer_id,
               "login-customer-id header")
        prefix = f"/{self.version}/customers/{self.customer_id}/offlineUserDataJobs"
        body = request.json()
        if request.path == f"{prefix}:create":
            return self._create(body)
        match = re.fullmatch(rf"{re.escape(prefix)}/(\d+):(addOperations|run)", request.path)
        expect(match is not None, f"unexpected path {request.path}")
        resource = f"customers/{self.customer_id}/offlineUserDataJobs/{match.group(1)}"
        expect(resource in self.jobs, "unknown job")
        if match.group(2) == "addOperations":
            return self._add(resource, body)
        return self._run(resource)

    def _create(self, body: dict) -> Response:
        job = body.get("job", {})
        expect(job.get("type") == "CUSTOMER_MATCH_USER_LIST", "job.type")
        metadata = job.get("customerMatchUserListMetadata", {})
        user_list = metadata.get("userList", "")
        expect(re.fullmatch(rf"customers/{self.customer_id}/userLists/\d+", user_list)
               is not None, "userList resource name")
        consent = metadata.get("consent")
        if consent is not None:
            expect(set(consent) == {"adUserData", "adPersonalization"}, "consent fields")
            expect(set(consent.values()) <= CONSENT_VALUES, "consent values")
        resource = f"customers/{self.customer_id}/offlineUserDataJobs/{len(self.jobs) + 1}"
        self.jobs[resource] = {"userList": user_list, "operations": [], "ran": False,
                               "consent": consent}
        return json_response({"resourceName": resource})

    def _add(self, resource: str, body: dict) -> Response:
        job = self.jobs[resource]
        expect(not job["ran"], "operations added to a job that already ran")
        expect(body.get("enablePartialFailure") is True, "enablePartialFailure")
        operations = body.get("operations", [])
        expect(0 < len(operations) <= self.max_operations, f"{len(operations)} operations")
        errors = []
        for index, operation in enumerate(operations):
            expect(len(operation) == 1 and set(operation) <= {"create", "remove"},
                   "an operation is exactly one of create / remove")
            kind, data = next(iter(operation.items()))
            identifiers = data.get("userIdentifiers", [])
            expect(0 < len(identifiers) <= 20, "1..20 identifiers per user")
            for identifier in identifiers:
                expect(len(identifier) == 1 and set(identifier) <= IDENTIFIER_KEYS,
                       "one identifier per UserIdentifier")
                (name, value), = identifier.items()
                if name == "addressInfo":
                    expect(set(value) == ADDRESS_KEYS, "addressInfo fields")
                    for hashed in ("hashedFirstName", "hashedLastName"):
                        expect(HEX64.fullmatch(value[hashed]) is not None, f"{hashed} hash")
                    expect(re.fullmatch(r"[A-Z]{2}", value["countryCode"]) is not None,
                           "countryCode: 2 letters, unhashed")
                    expect(HEX64.fullmatch(value["postalCode"]) is None,
                           "postalCode is sent unhashed")
                else:
                    expect(HEX64.fullmatch(value) is not None, f"{name} hash")
            if kind == "create":
                consent = data.get("consent", {})
                expect(set(consent) == {"adUserData", "adPersonalization"}
                       and set(consent.values()) <= CONSENT_VALUES, "per-user consent")
            email = next((i["hashedEmail"] for i in identifiers if "hashedEmail" in i), None)
            if email in self.reject_emails:
                errors.append({"errorCode": {"offlineUserDataJobError": "INVALID_SHA256_FORMAT"},
                               "message": "rejected",
                               "location": {"fieldPathElements": [
                                   {"fieldName": "operations", "index": index},
                                   {"fieldName": kind}]}})
            else:
                job["operations"].append((kind, data))
        self.batch_sizes.append(len(operations))
        if errors:
            return json_response({"partialFailureError": {"code": 3, "message": "partial",
                                  "details": [{"@type": "GoogleAdsFailure", "errors": errors}]}})
        return json_response({})

    def _run(self, resource: str) -> Response:
        if self.fail_run:
            return json_response({"error": {"code": 500, "status": "INTERNAL"}}, 500)
        job = self.jobs[resource]
        job["ran"] = True
        members = self.lists.setdefault(job["userList"], {})
        for kind, data in job["operations"]:
            ids = {next(iter(i)): i[next(iter(i))] for i in data["userIdentifiers"]}
            key = ids.get("hashedEmail") or ids.get("hashedPhoneNumber") or json.dumps(ids)
            if kind == "create":
                members[key] = data
                self.created[(job["userList"], key)] += 1
            else:
                members.pop(key, None)
        return json_response({"name": f"{resource}/operations/1"})


# --- TikTok ----------------------------------------------------------------------------------

@dataclass
class TikTokAudiences:
    """/dmp/custom_audience/file/upload/ then /dmp/custom_audience/update/."""

    token: str
    advertiser_id: str
    files: dict[str, bytes] = field(default_factory=dict)
    audiences: dict[str, set[tuple[str, str]]] = field(default_factory=dict)

    def __call__(self, request: Request) -> Response:
        expect(request.method == "POST", "POST")
        expect(request.headers.get("access-token") == self.token, "Access-Token header")
        if request.path == "/open_api/v1.3/dmp/custom_audience/file/upload/":
            form = request.form()
            expect(form.get("advertiser_id", b"").decode() == self.advertiser_id,
                   "advertiser_id")
            expect(form.get("calculate_type") == b"MULTIPLE_TYPES", "calculate_type")
            content = form.get("file", b"")
            expect(form.get("file_signature", b"").decode()
                   == hashlib.md5(content).hexdigest(), "file_signature is the file's MD5")
            lines = content.decode().splitlines()
            expect(lines[0] == "Email_SHA256,Phone_SHA256", "CSV headers")
            for line in lines[1:]:
                for value in line.split(","):
                    expect(value == "" or HEX64.fullmatch(value) is not None, "SHA-256 values")
            path = f"tt/{len(self.files)}.csv"
            self.files[path] = content
            return json_response({"code": 0, "message": "OK", "data": {"file_path": path}})
        expect(request.path == "/open_api/v1.3/dmp/custom_audience/update/", "path")
        body = request.json()
        expect(body.get("advertiser_id") == self.advertiser_id, "advertiser_id")
        expect(body.get("action") in ("APPEND", "REMOVE"), "action")
        members = self.audiences.setdefault(body["custom_audience_id"], set())
        for path in body.get("file_paths", []):
            expect(path in self.files, "unknown file_path")
            rows = {tuple(line.split(",")) for line in self.files[path].decode().splitlines()[1:]}
            if body["action"] == "APPEND":
                members |= rows
            else:
                members -= rows
        return json_response({"code": 0, "message": "OK", "data": {}})


# --- webhook receiver ------------------------------------------------------------------------

@dataclass
class WebhookReceiver:
    """Verifies the HMAC signature and applies each Idempotency-Key once."""

    secret: str
    authorization: str | None = None
    members: dict[str, dict[str, dict]] = field(default_factory=dict)  # segment -> id -> row
    processed: list[str] = field(default_factory=list)
    duplicates: int = 0
    applied: Counter = field(default_factory=Counter)  # (segment, customer_id, op) -> times

    def __call__(self, request: Request) -> Response:
        expect(request.method == "POST" and request.path == "/hooks/cdp", "POST /hooks/cdp")
        expect(request.headers.get("content-type") == "application/json", "JSON body")
        expect(request.headers.get("authorization") == self.authorization, "Authorization")
        stamp = request.headers.get("x-cdp-timestamp", "")
        mac = hmac.new(self.secret.encode(), stamp.encode() + b"." + request.body,
                       hashlib.sha256).hexdigest()
        expect(hmac.compare_digest(request.headers.get("x-cdp-signature", ""),
                                   f"sha256={mac}"), "bad signature")
        body = request.json()
        key = request.headers.get("idempotency-key")
        expect(key == body["batch_id"], "Idempotency-Key is the batch id")
        expect(body["count"] == len(body["members"]), "count")
        if key in self.processed:
            self.duplicates += 1
            return json_response({"status": "duplicate"})
        self.processed.append(key)
        segment = self.members.setdefault(body["segment"], {})
        for member in body["members"]:
            self.applied[(body["segment"], member["customer_id"], body["operation"])] += 1
            if body["operation"] == "add":
                segment[member["customer_id"]] = member
            else:
                segment.pop(member["customer_id"], None)
        return json_response({"status": "ok"})
