"""asv benchmarks of tridiag-numba (see ../README.md).

Importing this package, before anything imports numba:

* keys numba's on-disk cache to the benchmarked code: ``NUMBA_CACHE_DIR``
  becomes ``<root>/<commit>-<sha256 of the installed tridiag_numba sources>``,
  where ``<root>`` is ``$NUMBA_CACHE_DIR`` if set, else ``.asv/numba_cache``
  beside asv.conf.json, and ``<commit>`` is asv's ``ASV_COMMIT`` when asv
  installed the commit itself.  numba only checks the timestamp of the file
  that defines a cached function, not of helpers in other files, so one shared
  cache could serve machine code compiled from another commit.
* defaults ``NUMBA_NUM_THREADS`` to 2, the value asv.conf.json pins through
  ``env_nobuild``, so that runs in an existing environment (``--python=same``)
  use it too.
"""

import hashlib
import importlib.util
import os
import sys
from pathlib import Path


def _source_hash():
    """SHA-256 of the installed ``tridiag_numba`` sources, found without importing it."""
    spec = importlib.util.find_spec("tridiag_numba")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("tridiag_numba is not installed in the benchmark environment")
    digest = hashlib.sha256()
    for root in spec.submodule_search_locations:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(x for x in dirnames if x != "__pycache__")
            for filename in sorted(x for x in filenames if x.endswith(".py")):
                path = os.path.join(dirpath, filename)
                digest.update(os.path.relpath(path, root).encode())
                digest.update(Path(path).read_bytes())
    return digest.hexdigest()


def _numba_cache_dir():
    root = os.environ.get("NUMBA_CACHE_DIR") or Path(__file__).resolve().parents[1] / ".asv" / "numba_cache"
    commit = os.environ.get("ASV_COMMIT", "")[:10] or "installed"
    return os.path.join(root, f"{commit}-{_source_hash()[:16]}")


os.environ["NUMBA_CACHE_DIR"] = _numba_cache_dir()
os.environ.setdefault("NUMBA_NUM_THREADS", "2")
if "numba" in sys.modules:  # numba reads its configuration at import
    sys.modules["numba"].core.config.reload_config()
