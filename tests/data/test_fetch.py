"""Fetching pinned files from a real HTTP server on loopback: good bytes, corrupted bytes, no server."""

import functools
import shutil
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from toxbench.data.datadir import DataDir
from toxbench.data.datasets import load_dataset
from toxbench.errors import DataError

FILES = [
    "toxifrench/benchmark/ToxiFrenchBalanced.csv",
    "toxifrench/benchmark/RTP-LX-french.csv",
    "toxifrench/prompts/system_prompt_french.txt",
]


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def serve():
    servers = []

    def start(directory) -> str:
        server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(directory)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def corrupted_mirror(tmp_path, data_root):
    root = tmp_path / "corrupted"
    for rel in FILES:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(data_root / rel, root / rel)
    target = root / FILES[0]
    content = bytearray(target.read_bytes())
    content[100] ^= 0x01  # one flipped bit, same size
    target.write_bytes(bytes(content))
    return root


def test_fetch_places_verified_files(tmp_path, cli, serve, data_root):
    url = serve(data_root)
    dest = tmp_path / "data"
    code, out, _ = cli("data", "fetch", *FILES, "--data-dir", dest, "--mirror", url)
    assert code == 0, out
    assert "3 fetched, 0 already present, 0 failed" in out
    for rel in FILES:
        assert (dest / rel).read_bytes() == (data_root / rel).read_bytes()
    assert not list(dest.rglob("*.part"))
    # readable as any file the user writes (umask 022 here), not the temporary file's 0600
    assert {oct((dest / rel).stat().st_mode & 0o777) for rel in FILES} == {oct(0o666 & ~_umask())}
    code, out, _ = cli("data", "fetch", *FILES, "--data-dir", dest, "--mirror", url)
    assert code == 0 and "0 fetched, 3 already present" in out


def _umask() -> int:
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_fetch_refuses_a_corrupted_file(tmp_path, cli, serve, corrupted_mirror):
    url = serve(corrupted_mirror)
    dest = tmp_path / "data"
    code, out, _ = cli("data", "fetch", *FILES, "--data-dir", dest, "--mirror", url)
    assert code == 1
    assert f"failed: refused {url}/{FILES[0]}" in out and "1 failed" in out
    assert not (dest / FILES[0]).exists()  # never placed
    assert not list(dest.rglob("*.part"))  # no temporary left behind
    assert (dest / FILES[1]).is_file()  # the good ones are


def test_first_use_fetches_a_missing_file(tmp_path, serve, data_root):
    data = DataDir(tmp_path / "data", mirror=serve(data_root), auto_fetch=True)
    ds = load_dataset("rtplx-fr", data)
    assert len(ds) == 672 and (tmp_path / "data" / "toxifrench/benchmark/RTP-LX-french.csv").is_file()


def test_no_network_says_which_file_and_how_to_provide_it(tmp_path, cli):
    import socket

    with socket.socket() as s:  # a port nobody listens on: the download is refused at once
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    data = DataDir(tmp_path / "empty", mirror=closed, auto_fetch=True)
    with pytest.raises(DataError) as info:
        load_dataset("toxifrench", data)
    message = str(info.value)
    assert "missing data file toxifrench/benchmark/ToxiFrenchBalanced.csv" in message
    assert "run `toxbench data fetch`" in message and "TOXBENCH_DATA_DIR" in message and "\n" not in message
    code, _, err = cli("data", "show", "toxifrench", "--data-dir", tmp_path / "empty2")
    assert code == 2 and err.count("\n") == 1 and "missing data file" in err


def test_a_modified_file_is_refused_on_load_and_by_verify(tmp_path, cli, data_root):
    dest = tmp_path / "data"
    for rel in FILES:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(data_root / rel, dest / rel)
    (dest / FILES[1]).write_text("content,label\nx,1\n", encoding="utf-8")
    with pytest.raises(DataError, match="checksum does not match .* run `toxbench data fetch --force`"):
        load_dataset("rtplx-fr", DataDir(dest, auto_fetch=False))
    code, out, _ = cli("data", "verify", "--data-dir", dest)
    assert code == 1
    assert f"mismatch {dest / FILES[1]}" in out and f"missing  {dest / 'rtp-lx/RTP_LX_FR.jsonl'}" in out
    assert "2 of 171 files verified" in out


def test_verify_passes_on_the_full_mirror(cli, data_root):
    code, out, _ = cli("data", "verify", "--data-dir", data_root)
    assert code == 0 and "171 of 171 files verified" in out
