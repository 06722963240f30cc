"""Find a BEIR dataset by name on disk, or fetch its standard zip: resumable, checksummed, atomic.

    download_beir("scifact")  # -> ~/.cache/hardneg/datasets/scifact (corpus.jsonl, queries.jsonl, qrels/)

The zip is fetched to ``NAME.zip.part`` (an interrupted download resumes with an HTTP Range
request), verified against the md5 BEIR publishes, extracted into a temporary folder and renamed
into place, so a folder named ``NAME`` is always complete. For a name without a published md5 the
sha256 of the first download is recorded in ``NAME.zip.sha256`` and later downloads must match it.
"""

from __future__ import annotations

import http.client
import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from hardneg.core.errors import HardnegError
from hardneg.core.files import file_hash
from hardneg.core.paths import cache_root as _root

log = logging.getLogger(__name__)

DEFAULT_BEIR_URL = "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets"

# md5 of each zip as published in the BEIR README's "Available Datasets" table (beir-cellar/beir).
BEIR_MD5: dict[str, str | None] = {
    "msmarco": "444067daf65d982533ea17ebd59501e4",
    "trec-covid": "ce62140cb23feb9becf6270d0d1fe6d1",
    "nfcorpus": "a89dba18a62ef92f7d323ec890a0d38d",
    "nq": "d4d3d2e48787a744b6f6e691ff534307",
    "hotpotqa": "f412724f78b0d91183a0e86805e16114",
    "fiqa": "17918ed23cd04fb15047f73e6c3bd9d9",
    "arguana": "8ad3e3c2a5867cdced806d6503f29b99",
    "webis-touche2020": "46f650ba5a527fc69e0a6521c5a23563",
    "cqadupstack": "4e41456d7df8ee7760a7f866133bda78",
    "quora": "18fb154900ba42a600f84b839c173167",
    "dbpedia-entity": "c2a39eb420a3164af735795df012ac2c",
    "scidocs": "38121350fc3a4d2f48850f6aff52e4a9",
    "fever": "5a818580227bfb4b35bb6fa46d9b6c03",
    "climate-fever": "8b66f0a9126c521bae2bde127b4dc99d",
    "scifact": "5f7d1de60b170fc8027bb7898e2efca1",
    "germanquad": None,  # on the BEIR server, no published md5: sha256 recorded on first download
}
# BEIR-layout sets that exist only as local folders (../shared/data); they have no public zip.
LOCAL_ONLY = ("cosqa", "msmarco-nano", "dbpedia-nano")
KNOWN = tuple(BEIR_MD5) + LOCAL_ONLY
CHUNK = 1 << 20


def cache_root() -> Path:
    """``<cache root>/datasets``: ``$HARDNEG_CACHE/datasets`` or ``~/.cache/hardneg/datasets``."""
    return _root() / "datasets"


def local_candidates(name: str) -> list[Path]:
    """Where a dataset NAME is looked for, in order."""
    places = []
    if os.environ.get("HARDNEG_DATA_DIR"):
        places.append(Path(os.environ["HARDNEG_DATA_DIR"]).expanduser() / name)
    places += [Path("shared/data") / name, Path("../shared/data") / name, cache_root() / name]
    return places


def is_dataset(folder: Path) -> bool:
    """A BEIR folder, or a folder of BEIR sub-folders (cqadupstack ships one per forum)."""
    return (folder / "corpus.jsonl").is_file() or any(folder.glob("*/corpus.jsonl"))


def find_or_download(name: str) -> Path:
    """Path of dataset ``name``: the first local candidate holding ``corpus.jsonl``, else downloaded."""
    if name not in KNOWN:
        raise HardnegError(f"data {name!r} is neither an existing path nor a known dataset name; "
                           f"known names: {', '.join(sorted(KNOWN))}")
    for place in local_candidates(name):
        if is_dataset(place):
            log.info("dataset %s: using %s", name, place.resolve())
            return place
    if name in LOCAL_ONLY:
        raise HardnegError(f"dataset {name!r} has no public BEIR zip and was not found in "
                           f"{', '.join(str(p) for p in local_candidates(name))}; set HARDNEG_DATA_DIR "
                           "to the folder that holds it")
    log.info("dataset %s not found locally; downloading", name)
    return download_beir(name)


def download_beir(name: str, dest_dir: str | Path | None = None, *, base_url: str | None = None,
                  md5: str | None = None) -> Path:
    """Fetch ``{base_url}/{name}.zip`` into ``dest_dir/name`` (default: the cache) and return it.

    ``base_url`` defaults to ``$HARDNEG_BEIR_URL`` or BEIR's public server; ``md5`` overrides the
    published checksum. An existing complete folder is returned without network access.
    """
    base_url = (base_url or os.environ.get("HARDNEG_BEIR_URL") or DEFAULT_BEIR_URL).rstrip("/")
    if md5 is None:
        if name not in BEIR_MD5 and base_url == DEFAULT_BEIR_URL:
            raise HardnegError(f"unknown BEIR dataset {name!r}; known names: {', '.join(sorted(BEIR_MD5))}")
        md5 = BEIR_MD5.get(name)
    dest_dir = Path(dest_dir).expanduser() if dest_dir else cache_root()
    target = dest_dir / name
    if is_dataset(target):
        log.info("dataset %s already at %s", name, target)
        return target
    if target.exists():
        raise HardnegError(f"{target} exists but holds no corpus.jsonl; move it away or choose another --dir")
    dest_dir.mkdir(parents=True, exist_ok=True)
    part = dest_dir / f"{name}.zip.part"
    url = f"{base_url}/{name}.zip"
    _fetch(url, part)
    try:
        _verify(part, name, md5, dest_dir / f"{name}.zip.sha256")
        _extract(part, target, name)
    except HardnegError:
        part.unlink(missing_ok=True)  # a corrupt or unreadable zip is not worth resuming
        raise
    part.unlink(missing_ok=True)
    log.info("dataset %s ready at %s", name, target)
    return target


def _fetch(url: str, part: Path) -> None:
    """Download ``url`` into ``part``, resuming from its current size with an HTTP Range request."""
    from tqdm.auto import tqdm

    have = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"User-Agent": "hardneg"})
    if have:
        req.add_header("Range", f"bytes={have}-")
    try:
        resp = urllib.request.urlopen(req, timeout=60)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # nothing left to fetch: the .part is already whole
            log.info("%s: %s is complete", url, part.name)
            return
        raise HardnegError(f"download of {url} failed: HTTP {e.code} {e.reason} — check the dataset "
                           "name, or set HARDNEG_BEIR_URL to a mirror") from None
    except (urllib.error.URLError, OSError) as e:
        raise HardnegError(f"cannot reach {url}: {getattr(e, 'reason', e)} — check the network, set "
                           "HARDNEG_BEIR_URL to a mirror, or download the zip yourself and pass the "
                           "unzipped folder as --data") from None
    with resp:
        resumed = have and resp.status == 206
        if have and not resumed:
            log.info("server ignored the Range request; restarting %s", part.name)
            have = 0
        elif resumed:
            log.info("resuming %s at %d bytes", part.name, have)
        total = resp.headers.get("Content-Length")
        total = int(total) + have if total else None
        with open(part, "ab" if resumed else "wb") as f, tqdm(
                total=total, initial=have, unit="B", unit_scale=True, desc=f"download {part.name[:-5]}") as bar:
            try:
                while block := resp.read(CHUNK):
                    f.write(block)
                    bar.update(len(block))
            except (OSError, http.client.HTTPException) as e:
                raise HardnegError(f"download of {url} interrupted after {f.tell()} bytes ({e!r}); rerun "
                                   "the same command to resume") from None
    if total is not None and part.stat().st_size != total:
        raise HardnegError(f"download of {url} stopped at {part.stat().st_size} of {total} bytes; rerun "
                           "the same command to resume")




def _verify(zip_path: Path, name: str, md5: str | None, sha_file: Path) -> None:
    """Check the published md5, or the sha256 recorded at the first download of an unlisted name."""
    if md5:
        got = file_hash(zip_path, "md5")
        if got != md5.lower():
            raise HardnegError(f"checksum mismatch for {name}.zip: md5 {got}, expected {md5} — the "
                               "download is corrupt or the mirror changed; the file was removed, rerun "
                               "to download it again")
        log.info("%s.zip md5 verified (%s)", name, got)
        return
    got = file_hash(zip_path, "sha256")
    if sha_file.exists():
        want = sha_file.read_text().split()[0]
        if got != want:
            raise HardnegError(f"checksum mismatch for {name}.zip: sha256 {got}, recorded {want} in "
                               f"{sha_file} — delete that file if the dataset was republished")
        log.info("%s.zip sha256 matches the recorded %s", name, sha_file)
        return
    sha_file.write_text(f"{got}  {name}.zip\n")
    log.warning("%s has no published checksum; recorded sha256 %s in %s (later downloads must match)",
                name, got, sha_file)


def _extract(zip_path: Path, target: Path, name: str) -> None:
    """Unzip into a temporary sibling of ``target``, then rename the dataset folder into place."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.extract-", dir=target.parent))
    try:
        try:
            with zipfile.ZipFile(zip_path) as zf:
                for member in zf.namelist():
                    if member.startswith(("/", "\\")) or ".." in Path(member).parts:
                        raise HardnegError(f"{name}.zip holds an unsafe path {member!r}; refusing to extract")
                zf.extractall(tmp)
        except zipfile.BadZipFile as e:
            raise HardnegError(f"{zip_path} is not a valid zip ({e}); rerun to download it again") from None
        tops = [p for p in tmp.iterdir() if p.name != "__MACOSX"]
        root = tops[0] if len(tops) == 1 and tops[0].is_dir() else tmp  # "scifact/..." or flat
        if not is_dataset(root):
            raise HardnegError(f"{name}.zip holds no BEIR folder (no corpus.jsonl); check the URL")
        os.replace(root, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
