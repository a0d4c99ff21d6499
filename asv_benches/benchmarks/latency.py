"""First-call latency: a fresh Python process, empty vs warm numba cache."""

import shutil
import tempfile

from tridiag_numba import _bench


class FirstCall:
    """Seconds of the first ``kth_eigenvalue`` call (50x100 float64) in a new process.

    ``empty``: a new empty ``NUMBA_CACHE_DIR``, so numba compiles every kernel
    the call needs.  ``warm``: the same directory after one earlier process
    filled it, so the call loads machine code from disk.  Import time is not
    included.
    """

    params = [["empty", "warm"]]
    param_names = ["numba_cache"]
    unit = "seconds"
    timeout = 600

    def setup(self, numba_cache):
        self.cache_dir = tempfile.mkdtemp(prefix="tridiag-numba-cache-")
        if numba_cache == "warm":
            _bench.first_call_latency(self.cache_dir)

    def teardown(self, numba_cache):
        shutil.rmtree(self.cache_dir, ignore_errors=True)

    def track_first_call(self, numba_cache):
        return _bench.first_call_latency(self.cache_dir)["first_call"]
