"""Time per call on a whole batch: this library vs scipy's tridiagonal solvers vs dense eigh."""

from .common import Comparison, params_for


class KthEigenvalue(Comparison):
    """k-th eigenvalue, k = n // 2 (dense: all eigenvalues, then index)."""

    operation = "kth_eigenvalue"
    params = params_for(operation)

    def time_kth_eigenvalue(self, implementation, shape, dtype):
        self.func()


class KthEigenpair(Comparison):
    """k-th eigenvalue and its eigenvector, k = n // 2 (dense: full eigh)."""

    operation = "kth_eigenpair"
    params = params_for(operation)

    def time_kth_eigenpair(self, implementation, shape, dtype):
        self.func()


class AllEigenvalues(Comparison):
    """All eigenvalues (``select='a'``)."""

    operation = "eigvalsh_all"
    params = params_for(operation)

    def time_eigvalsh_all(self, implementation, shape, dtype):
        self.func()


class IndexRange(Comparison):
    """Eigenvalues n // 4 .. n // 2 (``select='i'``, inclusive)."""

    operation = "eigvalsh_index"
    params = params_for(operation)

    def time_eigvalsh_index(self, implementation, shape, dtype):
        self.func()
