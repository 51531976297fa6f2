"""One BLAS thread for the lead's figures: their products are small, a second thread only spins.

A figure multiplies 100,000 x 5 counts by 5 x 5 distances; on a busy machine OpenBLAS's
second thread spins rather than helps (seven times the CPU for a figure's products, measured
at 100,000 items). The figures do not depend on the number of threads.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from threadpoolctl import threadpool_limits

P = ParamSpec("P")
R = TypeVar("R")


def one_blas_thread(compute: Callable[P, R]) -> Callable[P, R]:
    """`compute`, run with one BLAS thread."""

    @functools.wraps(compute)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        with threadpool_limits(limits=1, user_api="blas"):
            return compute(*args, **kwargs)

    return run
