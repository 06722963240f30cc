"""BEIR zip download against a loopback HTTP server with Range support (never the internet)."""

from __future__ import annotations

import hashlib
import http.server
import threading
import zipfile
from pathlib import Path

import pytest
from conftest import write_beir

from hardneg import cli
from hardneg.core.errors import HardnegError
from hardneg.data.beir import load_beir
from hardneg.data.download import download_beir


def _make_zip(tmp_path: Path, name: str = "tinyset") -> bytes:
    src = write_beir(tmp_path / "src" / name)
    zpath = tmp_path / f"{name}.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for f in sorted(src.rglob("*")):
            zf.write(f, f.relative_to(src.parent).as_posix())  # "tinyset/corpus.jsonl", as BEIR zips
    return zpath.read_bytes()


class _Server:
    """Serves ``files`` ({url path: bytes}); honours ``Range: bytes=N-``; records Range headers."""

    def __init__(self, files: dict[str, bytes]):
        self.files, self.ranges = files, []
        self.cut_once: int | None = None  # send only this many bytes once, then drop the connection
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                body = outer.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                rng = self.headers.get("Range")
                outer.ranges.append(rng)
                start = int(rng.split("=")[1].split("-")[0]) if rng else 0
                if start >= len(body) and rng:
                    self.send_error(416)
                    return
                self.send_response(206 if rng else 200)
                if rng:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                end = len(body)
                if outer.cut_once is not None:
                    end, outer.cut_once = start + outer.cut_once, None
                    self.close_connection = True
                self.wfile.write(body[start:end])

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def served(tmp_path):
    blob = _make_zip(tmp_path)
    server = _Server({"/tinyset.zip": blob})
    yield server, blob
    server.close()


def test_download_verify_extract(served, tmp_path):
    server, blob = served
    out = download_beir("tinyset", tmp_path / "dl", base_url=server.url, md5=hashlib.md5(blob).hexdigest())
    assert out == tmp_path / "dl" / "tinyset"
    assert len(load_beir(out, "test").corpus) == 6
    assert sorted(p.name for p in (tmp_path / "dl").iterdir()) == ["tinyset"]  # no .part, no temp dir
    assert server.ranges == [None]
    assert download_beir("tinyset", tmp_path / "dl", base_url=server.url) == out  # cached: no request
    assert server.ranges == [None]


def test_resume_from_partial_part_file(served, tmp_path):
    server, blob = served
    dest = tmp_path / "dl"
    dest.mkdir()
    half = len(blob) // 2
    (dest / "tinyset.zip.part").write_bytes(blob[:half])
    out = download_beir("tinyset", dest, base_url=server.url, md5=hashlib.md5(blob).hexdigest())
    assert server.ranges == [f"bytes={half}-"]
    assert (out / "qrels" / "train.tsv").is_file() and not (dest / "tinyset.zip.part").exists()


def test_bad_checksum_leaves_nothing_behind(served, tmp_path):
    server, _ = served
    dest = tmp_path / "dl"
    with pytest.raises(HardnegError) as e:
        download_beir("tinyset", dest, base_url=server.url, md5="0" * 32)
    assert "checksum mismatch for tinyset.zip" in str(e.value) and "expected 000" in str(e.value)
    assert list(dest.iterdir()) == []  # neither an extracted folder nor a corrupt .part


def test_unpublished_checksum_is_recorded_then_enforced(served, tmp_path, monkeypatch):
    server, blob = served
    monkeypatch.setenv("HARDNEG_BEIR_URL", server.url)
    dest = tmp_path / "dl"
    download_beir("tinyset", dest)
    recorded = (dest / "tinyset.zip.sha256").read_text().split()[0]
    assert recorded == hashlib.sha256(blob).hexdigest()
    server.files["/tinyset.zip"] = blob[:-1] + b"!"  # the mirror now serves different bytes
    (dest / "tinyset").rename(dest / "old")
    with pytest.raises(HardnegError, match="sha256 .* recorded"):
        download_beir("tinyset", dest)
    assert not (dest / "tinyset").exists()


def test_http_error_and_unknown_name(served, tmp_path):
    server, _ = served
    with pytest.raises(HardnegError, match="HTTP 404"):
        download_beir("missing", tmp_path, base_url=server.url)
    with pytest.raises(HardnegError, match="known names: .*scifact"):
        download_beir("not-a-beir-set", tmp_path)  # default server: only known names, no request


def test_cli_download(served, tmp_path, capsys):
    server, _ = served
    rc = cli.main(["data", "download", "tinyset", "--dir", str(tmp_path / "d"), "--url", server.url])
    assert rc == 0 and capsys.readouterr().out.strip() == str(tmp_path / "d" / "tinyset")
    assert (tmp_path / "d" / "tinyset" / "corpus.jsonl").is_file()


def test_interrupted_download_keeps_part_and_resumes(served, tmp_path):
    server, blob = served
    server.cut_once = 100
    md5 = hashlib.md5(blob).hexdigest()
    with pytest.raises(HardnegError, match="rerun the same command to resume"):
        download_beir("tinyset", tmp_path, base_url=server.url, md5=md5)
    assert (tmp_path / "tinyset.zip.part").stat().st_size == 100 and not (tmp_path / "tinyset").exists()
    out = download_beir("tinyset", tmp_path, base_url=server.url, md5=md5)
    assert server.ranges == [None, "bytes=100-"] and (out / "corpus.jsonl").is_file()


def test_unreachable_server_is_a_clear_error(tmp_path):
    import socket

    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(HardnegError, match="cannot reach .*HARDNEG_BEIR_URL"):
        download_beir("scifact", tmp_path, base_url=f"http://127.0.0.1:{port}")


def test_flat_zip_and_multi_set_zip(tmp_path):
    flat_src = write_beir(tmp_path / "flat_src")
    multi_src = tmp_path / "multi_src" / "multi"
    for sub in ("a", "b"):
        write_beir(multi_src / sub)
    blobs = {}
    for name, src, base in (("flat", flat_src, flat_src), ("multi", multi_src, multi_src.parent)):
        zpath = tmp_path / f"{name}.zip"
        with zipfile.ZipFile(zpath, "w") as zf:
            for f in sorted(src.rglob("*")):
                zf.write(f, f.relative_to(base).as_posix())
        blobs[f"/{name}.zip"] = zpath.read_bytes()
    server = _Server(blobs)
    try:
        flat = download_beir("flat", tmp_path / "dl", base_url=server.url)
        multi = download_beir("multi", tmp_path / "dl", base_url=server.url)
    finally:
        server.close()
    assert (flat / "corpus.jsonl").is_file()
    assert sorted(p.parent.name for p in multi.glob("*/corpus.jsonl")) == ["a", "b"]
    from hardneg.core.errors import DataError
    from hardneg.data.load import load_data

    with pytest.raises(DataError, match="several BEIR sets"):
        load_data(multi)
