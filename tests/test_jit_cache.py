"""numba's on-disk cache across modules, and the one-line notice of a one-time compile.

numba stamps a cached function with the hash of the file that defines it; a
helper edited in another module would leave its callers running stale machine
code.  ``tridiag_numba._jit.KernelSourcesLocator`` adds every module of the
package to the stamp.  The test works on a copy of the package in a temporary
directory, with a fresh process per step sharing one ``NUMBA_CACHE_DIR``.
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import tridiag_numba

PACKAGE = Path(tridiag_numba.__file__).resolve().parent

_HELPER = textwrap.dedent(
    """
    from tridiag_numba._jit import kernel_inner


    @kernel_inner
    def probe_helper(x):
        return x + {increment}
    """
)
_DRIVER = textwrap.dedent(
    """
    from tridiag_numba._jit import kernel_inner
    from tridiag_numba._probe_helper import probe_helper


    @kernel_inner
    def probe_driver(x):
        return 2.0 * probe_helper(x)
    """
)
_RUN = textwrap.dedent(
    """
    import json
    from tridiag_numba._probe_driver import probe_driver
    value = probe_driver(1.0)
    stats = probe_driver.stats
    print(json.dumps({"value": value, "hits": sum(stats.cache_hits.values()), "misses": sum(stats.cache_misses.values())}))
    """
)


@pytest.fixture
def package_copy(tmp_path):
    root = tmp_path / "src"
    shutil.copytree(PACKAGE, root / "tridiag_numba", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "tridiag_numba" / "_probe_helper.py").write_text(_HELPER.format(increment="1.0"))
    (root / "tridiag_numba" / "_probe_driver.py").write_text(_DRIVER)
    return root


def _run(root, cache):
    env = dict(os.environ, PYTHONPATH=str(root), NUMBA_CACHE_DIR=str(cache))
    proc = subprocess.run([sys.executable, "-c", _RUN], env=env, capture_output=True, text=True, timeout=300, cwd=root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr


def test_edit_to_helper_in_another_module_invalidates_cache(package_copy, tmp_path):
    cache = tmp_path / "numba_cache"
    first, _ = _run(package_copy, cache)
    assert first == {"value": 4.0, "hits": 0, "misses": 1}
    again, _ = _run(package_copy, cache)
    assert again == {"value": 4.0, "hits": 1, "misses": 0}, "unchanged sources must load from the cache"
    with open(package_copy / "tridiag_numba" / "_bench.py", "a") as f:
        f.write("\n# an edit to a module without kernels\n")
    unrelated, _ = _run(package_copy, cache)
    assert unrelated == {"value": 4.0, "hits": 1, "misses": 0}, "a module without kernels must not invalidate the cache"
    (package_copy / "tridiag_numba" / "_probe_helper.py").write_text(_HELPER.format(increment="2.0"))
    edited, _ = _run(package_copy, cache)
    assert edited["value"] == 6.0, f"stale machine code after editing the helper's module: {edited}"
    assert edited["misses"] == 1


def test_compile_notice_on_stderr_only_when_compiling(package_copy, tmp_path):
    cache = tmp_path / "numba_cache"
    _, cold = _run(package_copy, cache)
    lines = [line for line in cold.splitlines() if line.startswith("tridiag_numba:")]
    assert len(lines) == 1, cold
    assert "compiling probe_driver" in lines[0] and "first use" in lines[0], lines
    _, warm = _run(package_copy, cache)
    assert "tridiag_numba:" not in warm, warm
