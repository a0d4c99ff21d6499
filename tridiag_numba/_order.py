"""Stable ordering of a few values inside kernels, without ``np.sort``/``np.argsort``.

numba's ``np.sort`` and ``np.argsort`` compile a recursive quicksort or
mergesort (several functions each, about a second per dtype), and every
kernel that calls them carries that code through each of its copies (numba
optimises a helper's machine code again in every caller).  The kernels sort
only in cold paths -- a matrix split into 1x1 blocks, stebz's block order
-- so a heapsort of indices, one small loop nest, does (the 1x1-block snap in
``_bisect._snap_single`` sorts at most a slot's few candidates in place).

The order is stable: indices are ranked by ``(x[i], i)``, so equal values
(``-0.0`` and ``0.0`` included) keep their order, exactly as
``np.argsort(x, kind="stable")``.  Inputs hold no NaN.
"""

from ._jit import kernel_inner


@kernel_inner
def _sift_down(x, idx, root, end):
    """Restore the max-heap order by ``(x[i], i)`` of ``idx[root:end]`` below ``root``."""
    while True:
        child = 2 * root + 1
        if child >= end:
            return
        a = idx[child]
        if child + 1 < end:
            b = idx[child + 1]
            if x[a] < x[b] or (x[a] == x[b] and a < b):
                child += 1
                a = b
        r = idx[root]
        if x[r] < x[a] or (x[r] == x[a] and r < a):
            idx[root] = a
            idx[child] = r
            root = child
        else:
            return


@kernel_inner
def argsort_stable(x, m, idx):
    """Write into ``idx[:m]`` the indices of ``x[:m]`` in stable ascending order.

    Same result as ``np.argsort(x[:m], kind="stable")``; O(m log m), in place.
    """
    for i in range(m):
        idx[i] = i
    for root in range(m // 2 - 1, -1, -1):
        _sift_down(x, idx, root, m)
    for end in range(m - 1, 0, -1):
        top = idx[0]
        idx[0] = idx[end]
        idx[end] = top
        _sift_down(x, idx, 0, end)

