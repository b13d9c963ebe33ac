"""Where the training procedure's parallel work runs: joblib processes here, or Spark tasks.

:func:`parallel` yields the ``joblib.Parallel`` that :func:`~pipelines.training.nested.run_nested`,
:func:`~pipelines.training.permutation.permutation_test` and the benefit model hand their work to:
one task per outer fold (its inner search over every family's candidates, the calibrated refits and
its SHAP), for the observed labels and then for each permutation in turn. Each task is seeded from
the config alone, so where it runs changes no number.

* ``local``: joblib's default (loky) worker processes, ``n_jobs`` of them, which die with the process
  that started them, even one killed with SIGKILL (Linux; see :func:`_die_with_parent_kwargs`).
* ``spark``: joblib's Spark backend from the maintained ``joblibspark`` library; each task is one
  Spark job of one task, and as many run at once as the cluster's default parallelism (``local[N]``:
  N; a cluster: its executors' cores). The config's ``n_jobs`` does not apply there: it sizes this
  machine's pool, not the cluster's. The session is :func:`ketamine_response.pipelines.spark.session` (``$SPARK_MASTER``,
  default local[2]); missing pyspark, joblibspark or Java is a usage error (exit 2).

On a cluster the executors must import this project and its dependencies: run them on a Python
environment that has it installed (e.g. a packed virtual environment shipped with ``spark.archives``
and ``PYSPARK_PYTHON`` pointing into it), or ship the wheel with ``--py-files`` where the dependencies
are already installed. On ``local[N]`` the workers run this interpreter, so nothing needs shipping.
"""

from __future__ import annotations

import contextlib
import os
import signal
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ketamine_response.features.errors import UsageError
from ketamine_response.pipelines.config import TrainConfig

BACKENDS = ("local", "spark")


@contextmanager
def parallel(config: TrainConfig) -> Iterator[Any]:
    """A ``joblib.Parallel`` on *config*'s backend, open for several calls (its workers are reused)."""
    from joblib import Parallel

    if config.backend != "spark":
        with Parallel(n_jobs=config.n_jobs, **_die_with_parent_kwargs()) as runner:
            yield runner
        return
    with spark_parallel() as runner, warnings.catch_warnings():
        # pyspark 4 warns on every task that joblibspark starts its thread without a session, so Spark Connect
        # job tags are not inherited: this backend runs on a classic session and cancels by job group, not tag
        warnings.filterwarnings("ignore", message=r"Spark session is not provided\. Tags will not be inherited",
                                category=UserWarning)
        yield runner


# prctl(2) option: the signal the kernel sends this process when the thread that forked it ends
PR_SET_PDEATHSIG = 1


def _die_with_parent_kwargs() -> dict[str, Any]:
    """The loky ``initializer`` that makes each worker die with this process, where it can (Linux, main thread).

    loky's workers do not watch their parent: they wait on their task queue, whose pipe they hold both ends
    of, and leave only after 300 s idle. A ``train`` killed with SIGKILL (or by the OOM killer) would leave
    them computing for minutes; they stay in its process group (``kill -- -PGID`` reaches them), but a kill
    of the one process does not. The kernel's parent-death signal needs no help from the parent. It fires
    when the *thread* that forked the worker ends, so it is only asked for from the main thread (loky forks
    from the thread that submits, or from its manager thread, which lives as long as the pool)."""
    import sys
    import threading

    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return {}
    return {"initializer": die_with_parent, "initargs": (os.getpid(),)}


def die_with_parent(parent: int) -> None:
    """In a worker: be sent SIGKILL when *parent* ends (nothing to save: its results would go nowhere).
    A parent killed before this ran is caught by the check after it (the worker was re-parented)."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):  # no prctl in this libc: the pool's idle timeout remains
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGKILL)


def spark_session() -> Any:
    """The Spark session the backend runs on (started if none is active), after checking joblibspark is
    installed; missing pyspark, joblibspark or Java is a usage error (exit 2). ``train`` calls it before
    the MLflow run opens, so a machine without Spark fails fast and leaves no failed run behind."""
    try:
        import joblibspark  # noqa: F401
    except ImportError:
        raise UsageError("the spark backend needs pyspark and joblibspark: pip install 'ketamine-response[spark]' "
                         "(it needs Java 17+ on the machine).") from None
    from ketamine_response.pipelines.spark import session

    return session()


def spark_parallel() -> Any:
    """A ``joblib.Parallel`` whose tasks run on the active (or a new) Spark session, one Spark task each."""
    from joblib import Parallel, parallel_config, register_parallel_backend

    n_jobs = int(spark_session().sparkContext.defaultParallelism)
    register_parallel_backend("spark", _spark_backend_class())
    with warnings.catch_warnings():
        # joblibspark 0.6 warns, when its backend is built, that stage-level scheduling is unavailable: always
        # on local[N], and on every non-local master too (an unconditional warning in its code). It only
        # means each task takes spark.task.cpus cores; nothing to act on.
        warnings.filterwarnings("ignore", message=r"Spark (local mode|version) does(n't| not) support stage-level "
                                "scheduling", category=UserWarning)
        # set only while the Parallel is built: it keeps this backend, and joblib calls elsewhere in the
        # driver (scikit-learn's n_jobs=None) stay sequential, as they are with the local backend
        with parallel_config(backend="spark", n_jobs=n_jobs):
            return Parallel()


def _spark_backend_class() -> type:
    """joblibspark 0.6's backend, adapted to joblib >= 1.5 (which it predates) in three methods; the
    scheduling (one Spark job per batch of tasks, job-group cancellation) is joblibspark's own."""
    from joblibspark.backend import SparkDistributedBackend

    try:
        from joblib._utils import _retrieve_traceback_capturing_wrapped_call as unwrap
    except ImportError:  # an older or newer joblib: take the result as it comes
        def unwrap(out: Any) -> Any:
            return out

    class SparkBackend(SparkDistributedBackend):
        def submit(self, func: Any, callback: Any = None) -> Any:
            # joblib >= 1.5 calls submit; the base class's submit warns that apply_async is deprecated
            return self.apply_async(func, callback)

        def retrieve_result(self, out: Any, timeout: float | None = None) -> Any:
            # a failed task comes back wrapped with its traceback: raise it, as joblib's own pool backends do
            # (joblibspark returns the wrapper as the result, and joblib fails with "not iterable")
            return unwrap(super().retrieve_result(out, timeout))

        def abort_everything(self, ensure_ready: bool = True) -> None:
            # joblibspark reads Parallel._backend_args, renamed _backend_kwargs in joblib 1.5: the resulting
            # AttributeError would replace the task's error
            self._cancel_all_jobs()
            if ensure_ready:
                self.configure(n_jobs=self.parallel.n_jobs, parallel=self.parallel)

    return SparkBackend
