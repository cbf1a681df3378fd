"""A small Hugging Face hub on 127.0.0.1 for tests: the requests huggingface_hub and datasets really make.

Start it, point HF_ENDPOINT at `server.endpoint`, and the libraries talk to it
as to https://huggingface.co. Nothing but the standard library.

URL patterns seen from huggingface_hub 2.4.0 and datasets 5.2.0 (found by
running them against this server with every request logged; {rev} is a
branch such as main or refs%2Fconvert%2Fparquet, {commit} the 40-hex id the
server returned in X-Repo-Commit / "sha"):

w2s-gguf models pull (get_hf_file_metadata, then hf_hub_download):
  HEAD /{repo}/resolve/{revision}/{filename}        twice; reads ETag / X-Linked-Etag (the LFS
                                                    sha256), X-Linked-Size, X-Repo-Commit
  GET  /{repo}/resolve/{revision}/{filename}        then "Range: bytes=N-" after a cut body, N a
                                                    multiple of its 10 MB read chunk
datasets.load_dataset(name, split=..., revision=...), per call:
  GET  /api/agent-harnesses                         huggingface_hub, once per HF_HOME (404 is fine)
  HEAD+GET /datasets/{repo}/resolve/{rev}/README.md (a branch other than main: HEAD only, then
  GET  /api/datasets/{repo}/revision/{rev})
  HEAD /datasets/{repo}/resolve/{commit}/{name}.py  a loading script (404: there is none)
  GET  /api/datasets/{repo}/revision/{commit}
  HEAD /datasets/{repo}/resolve/{commit}/.huggingface.yaml
  GET  /api/datasets/{repo}/tree/{commit}/data?recursive=false&expand=false  (or /{config})
  GET  /api/datasets/{repo}/tree/{commit}?recursive=false&expand=false
  GET  /api/datasets/{repo}/tree/{commit}[/{dir}]?recursive=true&expand=false  (no configs in
                                                    the card, or a {config}/{split}/ layout)
  HEAD /datasets/{repo}/resolve/{commit}/dataset_infos.json
  HEAD+GET /datasets/{repo}/resolve/{commit}/{data file}   every split's files, whatever split
                                                    was asked; a second call finds them cached
                                                    and repeats only the HEADs above
POST /api/datasets/{repo}/paths-info/{rev} is answered too but was not asked.

Large files through a CDN (`HubServer(cdn=True)`), as the real hub serves them: `resolve`
of an LFS file answers 302 with Location on a second loopback server (another port, so
another host to huggingface_hub: it does not follow HEAD there), the sha256 in
X-Linked-Etag and the size in X-Linked-Size; the CDN server answers GET (and Range) at
/blobs/{sha256}/{filename}?X-Amz-Signature=... . Its requests are logged with the path
prefixed "cdn:" and faults match them too.

Errors are answered like the hub: 401 with X-Error-Code RepoNotFound (no token
sent), 404 with RevisionNotFound or EntryNotFound, and a JSON body {"error": ...}.
Faults for tests (`HubServer.fault`): answer a status code, cut a body short
after some bytes, or serve wrong bytes, for the next N matching requests.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

LFS_SUFFIXES = (".gguf", ".parquet", ".gz", ".arrow", ".bin")


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Snapshot:
    """One revision of a repo: its commit id and files."""

    commit: str
    files: dict[str, bytes]
    _sha256: dict[str, str] = field(default_factory=dict)

    def sha256(self, path: str) -> str:
        if path not in self._sha256:
            self._sha256[path] = hashlib.sha256(self.files[path]).hexdigest()
        return self._sha256[path]

    def is_lfs(self, path: str) -> bool:
        return path.endswith(LFS_SUFFIXES)

    def entry(self, path: str) -> dict:
        """A file as /tree and /paths-info list it."""
        data = self.files[path]
        item = {"type": "file", "oid": git_blob_sha1(data), "size": len(data), "path": path}
        if self.is_lfs(path):
            item["lfs"] = {"oid": self.sha256(path), "size": len(data), "pointerSize": 134}
        return item


@dataclass
class Fault:
    """Do something wrong to the next `times` requests whose path contains `match`."""

    match: str
    methods: tuple[str, ...] = ("GET",)
    status: int | None = None  # answer this status instead
    cut_after: int | None = None  # send only this many body bytes, then close the connection
    corrupt: bool = False  # flip the body's bytes (same length)
    block: threading.Event | None = None  # after cut_after bytes, wait for this event instead of closing
    times: int | None = 1  # None = every time


class HubServer:
    """The hub on 127.0.0.1, random port. Use as a context manager."""

    def __init__(self, cdn: bool = False):
        self.repos: dict[tuple[str, str], dict[str, Snapshot]] = {}
        self.faults: list[Fault] = []
        self.log: list[tuple[str, str, str]] = []  # (method, path with query, Range header)
        self.answers: list[tuple[str, str, int]] = []  # (method, path, status answered)
        self.sent: dict[str, int] = {}  # path -> body bytes sent in total
        self.lock = threading.Lock()
        self.progress = threading.Condition(self.lock)
        self.servers = [ThreadingHTTPServer(("127.0.0.1", 0), _handler(self, cdn=False))]
        if cdn:
            self.servers.append(ThreadingHTTPServer(("127.0.0.1", 0), _handler(self, cdn=True)))
        for server in self.servers:
            server.daemon_threads = True
        self.httpd = self.servers[0]
        self.endpoint = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.cdn = f"http://127.0.0.1:{self.servers[1].server_address[1]}" if cdn else None
        self._threads = [threading.Thread(target=server.serve_forever, daemon=True) for server in self.servers]

    def __enter__(self) -> "HubServer":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        for f in self.faults:
            if f.block is not None:
                f.block.set()
        for server in self.servers:
            server.shutdown()
            server.server_close()

    def blob(self, sha256: str) -> bytes | None:
        """An LFS file's bytes by sha256, from any repo and revision (what the CDN stores)."""
        for revisions in self.repos.values():
            for snap in revisions.values():
                for path in snap.files:
                    if snap.is_lfs(path) and snap.sha256(path) == sha256:
                        return snap.files[path]
        return None

    # ------------------------------------------------------------ content

    def add_repo(self, repo_type: str, repo_id: str, files: dict[str, bytes], revision: str = "main", commit: str | None = None) -> Snapshot:
        """Files of one revision; the snapshot is also reachable by its 40-hex commit id."""
        commit = commit or hashlib.sha1(f"{repo_type}/{repo_id}@{revision}".encode()).hexdigest()
        snap = Snapshot(commit, dict(files))
        revisions = self.repos.setdefault((repo_type, repo_id), {})
        revisions[revision] = revisions[commit] = snap
        return snap

    def fault(self, match: str, **kwargs) -> Fault:
        f = Fault(match, **kwargs)
        with self.lock:
            self.faults.append(f)
        return f

    def requests(self, method: str | None = None, contains: str = "") -> list[tuple[str, str, str]]:
        with self.lock:
            return [r for r in self.log if (method is None or r[0] == method) and contains in r[1]]

    def wait_sent(self, contains: str, nbytes: int, timeout: float = 60) -> bool:
        """Block until at least `nbytes` body bytes of a matching path went out."""
        with self.progress:
            return self.progress.wait_for(lambda: any(contains in p and n >= nbytes for p, n in self.sent.items()), timeout)

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for f in self.faults:
                if f.match in path and method in f.methods and (f.times is None or f.times > 0):
                    if f.times is not None:
                        f.times -= 1
                    return f
        return None


_API = re.compile(r"^/api/(models|datasets)/(?P<repo>[^/]+/[^/]+)(?:/(?P<verb>revision|tree|paths-info)/(?P<rest>.*))?$")
_RESOLVE = re.compile(r"^/(?:(?P<type>datasets)/)?(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")


def _handler(hub: HubServer, cdn: bool):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # quiet: the hub's log is hub.log
            pass

        # -------------------------------------------------------- plumbing

        def _where(self) -> str:
            return f"cdn:{self.path}" if cdn else self.path

        def _record(self):
            with hub.lock:
                hub.log.append((self.command, self._where(), self.headers.get("Range", "")))

        def _send(self, status: int, body: bytes = b"", headers: dict | None = None, head: bool = False, fault: Fault | None = None):
            with hub.lock:
                hub.answers.append((self.command, self._where(), status))
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, str(v))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if head:
                return
            if fault is not None and fault.corrupt:
                body = bytes(b ^ 0xFF for b in body[:4096]) + body[4096:]
            if fault is not None and fault.cut_after is not None:
                self._write(body[: fault.cut_after])
                if fault.block is not None:
                    fault.block.wait(120)
                self.close_connection = True
                self.connection.shutdown(2)  # the client sees the body end early
                return
            self._write(body)

        def _write(self, data: bytes):
            for i in range(0, len(data), 1 << 20):
                chunk = data[i : i + (1 << 20)]
                self.wfile.write(chunk)
                with hub.progress:
                    hub.sent[self._where()] = hub.sent.get(self._where(), 0) + len(chunk)
                    hub.progress.notify_all()

        def _json(self, status: int, obj, headers: dict | None = None, head: bool = False):
            self._send(status, json.dumps(obj).encode(), {"Content-Type": "application/json", **(headers or {})}, head)

        def _error(self, status: int, code: str | None, message: str, head: bool = False, headers: dict | None = None):
            h = dict(headers or {})
            if code:
                h["X-Error-Code"] = code
            h["X-Error-Message"] = message
            self._json(status, {"error": message}, h, head)

        def _snapshot(self, repo_type: str, repo: str, revision: str, head: bool = False) -> Snapshot | None:
            revisions = hub.repos.get((repo_type, repo))
            if revisions is None:
                # The hub answers 401, not 404, for a missing repo asked without a token (it may be private).
                self._error(401, "RepoNotFound", f"Repository Not Found for url: {self.path}.", head)
                return None
            snap = revisions.get(unquote(revision))
            if snap is None:
                self._error(404, "RevisionNotFound", f"Invalid rev id: {unquote(revision)}", head)
            return snap

        # -------------------------------------------------------- verbs

        def do_HEAD(self):
            self._dispatch(head=True)

        def do_GET(self):
            self._dispatch(head=False)

        def do_POST(self):
            self._dispatch(head=False)

        def _dispatch(self, head: bool):
            self._record()
            url = urlsplit(self.path)
            fault = hub._take_fault(self.command, url.path)
            if fault is not None and fault.status is not None:
                codes = {401: None, 403: "GatedRepo", 404: "EntryNotFound", 500: None}
                self._error(fault.status, codes.get(fault.status), f"injected {fault.status}", head)
                return
            if cdn:
                return self._cdn(url.path, head, fault)
            if (m := _RESOLVE.match(url.path)) is not None:
                return self._resolve("dataset" if m["type"] else "model", m["repo"], m["rev"], unquote(m["path"]), head, fault)
            if (m := _API.match(url.path)) is not None:
                return self._api("dataset" if m[1] == "datasets" else "model", m["repo"], m["verb"], m["rest"] or "", parse_qs(url.query), head)
            self._error(404, None, f"hub_server: no route for {self.command} {self.path}", head)

        def _resolve(self, repo_type, repo, rev, path, head, fault):
            snap = self._snapshot(repo_type, repo, rev, head)
            if snap is None:
                return
            if path not in snap.files:
                self._error(404, "EntryNotFound", f"{path} does not exist on \"{unquote(rev)}\"", head, {"X-Repo-Commit": snap.commit})
                return
            data = snap.files[path]
            headers = {"X-Repo-Commit": snap.commit, "Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
            if snap.is_lfs(path):
                sha = snap.sha256(path)
                if hub.cdn:  # the real hub: a 302 to a signed CDN URL, the file's metadata on the redirect itself
                    location = f"{hub.cdn}/blobs/{sha}/{path.rsplit('/', 1)[-1]}?X-Amz-Signature={sha[:16]}"
                    self._send(302, b"", {"X-Repo-Commit": snap.commit, "ETag": f'"{git_blob_sha1(data)}"', "Location": location,
                                          "X-Linked-Etag": f'"{sha}"', "X-Linked-Size": len(data)}, head)
                    return
                headers.update({"ETag": f'"{sha}"', "X-Linked-Etag": f'"{sha}"', "X-Linked-Size": len(data)})
            else:
                headers["ETag"] = f'"{git_blob_sha1(data)}"'
            self._ranged(data, headers, head, fault)

        def _cdn(self, path, head, fault):
            m = re.fullmatch(r"/blobs/([0-9a-f]{64})/[^/]+", path)
            data = hub.blob(m[1]) if m else None
            if data is None:
                self._send(404, b"NoSuchKey", {"Content-Type": "application/xml"}, head)
                return
            self._ranged(data, {"Accept-Ranges": "bytes", "Content-Type": "application/octet-stream", "ETag": f'"{m[1]}"'}, head, fault)

        def _ranged(self, data, headers, head, fault):
            """200 with the whole body, or 206 with the part a Range header asks for."""
            status, body = 200, data
            rng = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", "").strip())
            if rng and not head:
                start = int(rng[1])
                end = int(rng[2]) if rng[2] else len(data) - 1
                if start >= len(data):
                    self._send(416, b"", {"Content-Range": f"bytes */{len(data)}"})
                    return
                status, body = 206, data[start : end + 1]
                headers["Content-Range"] = f"bytes {start}-{start + len(body) - 1}/{len(data)}"
            self._send(status, body, headers, head, fault)

        def _api(self, repo_type, repo, verb, rest, query, head):
            if verb == "paths-info":
                rev = rest.strip("/")
                snap = self._snapshot(repo_type, repo, rev)
                if snap is None:
                    return
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                form = parse_qs(raw) if "=" in raw and not raw.lstrip().startswith("{") else {}
                paths = form.get("paths") or (json.loads(raw).get("paths", []) if raw.strip().startswith("{") else [])
                self._json(200, [self._info(snap, p) for p in paths if self._info(snap, p)], {"X-Repo-Commit": snap.commit})
                return
            if verb == "tree":
                rev, _, sub = rest.partition("/")
                snap = self._snapshot(repo_type, repo, rev)
                if snap is None:
                    return
                recursive = query.get("recursive", ["false"])[0].lower() == "true"
                self._json(200, self._tree(snap, unquote(sub).strip("/"), recursive), {"X-Repo-Commit": snap.commit})
                return
            rev = rest.strip("/") if verb == "revision" else "main"
            snap = self._snapshot(repo_type, repo, rev, head)
            if snap is None:
                return
            info = {
                "_id": hashlib.sha1(repo.encode()).hexdigest()[:24],
                "id": repo,
                "author": repo.split("/")[0],
                "sha": snap.commit,
                "private": False,
                "gated": False,
                "disabled": False,
                "downloads": 0,
                "likes": 0,
                "tags": [],
                "lastModified": "2024-01-01T00:00:00.000Z",
                "createdAt": "2024-01-01T00:00:00.000Z",
                "siblings": [{"rfilename": p} for p in sorted(snap.files)],
            }
            self._json(200, info, {"X-Repo-Commit": snap.commit}, head)

        def _info(self, snap: Snapshot, path: str) -> dict | None:
            path = path.strip("/")
            if path in snap.files:
                return snap.entry(path)
            if any(p.startswith(path + "/") for p in snap.files):
                return {"type": "directory", "oid": hashlib.sha1(path.encode()).hexdigest(), "path": path}
            return None

        def _tree(self, snap: Snapshot, sub: str, recursive: bool) -> list[dict]:
            prefix = sub + "/" if sub else ""
            out, dirs = [], set()
            for p in sorted(snap.files):
                if not p.startswith(prefix):
                    continue
                parts = p[len(prefix):].split("/")
                for depth in range(1, len(parts)):
                    d = prefix + "/".join(parts[:depth])
                    if d not in dirs and (recursive or depth == 1):
                        dirs.add(d)
                        out.append({"type": "directory", "oid": hashlib.sha1(d.encode()).hexdigest(), "path": d})
                if recursive or len(parts) == 1:
                    out.append(snap.entry(p))
            return out

    return Handler
