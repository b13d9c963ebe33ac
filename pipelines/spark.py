"""The Spark session the ``--engine spark`` / ``--backend spark`` paths use (optional extra ``.[spark]``).

Spark is imported only in the Spark rooms (here, the ``score --engine spark`` flow and the training
backend) and only when asked for, so the default single-machine path and ``--help`` never pay for it.
"""

from __future__ import annotations

import os
import shutil
import sys
from typing import Any

from ketamine_response.features.errors import UsageError

DEFAULT_MASTER = "local[2]"


def session(master: str | None = None) -> Any:
    """The active SparkSession, or a new one on *master* (default ``$SPARK_MASTER`` or local[2]), whose
    local workers run this Python interpreter unless ``$PYSPARK_PYTHON`` names another.

    Missing pyspark or Java is a usage error (exit 2) that says how to install them.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise UsageError("Spark is not installed: pip install 'ketamine-response[spark]' (it needs Java 17+ "
                         "on the machine).") from None
    if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
        raise UsageError("Spark needs Java: install a JRE 17+ (e.g. apt-get install default-jre-headless) or set JAVA_HOME.")
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # no hostname lookup, no network exposure
    # local workers must run this interpreter, which has the project and its dependencies (pyspark's default
    # is whatever `python3` is on PATH); on a cluster, PYSPARK_PYTHON names the executors' environment
    chosen = os.environ.get("PYSPARK_PYTHON")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.master(master or os.environ.get("SPARK_MASTER", DEFAULT_MASTER))
    spark = (builder.appName("ketamine-response").config("spark.ui.enabled", "false")
             .config("spark.sql.session.timeZone", "UTC").getOrCreate())
    context = spark.sparkContext
    if chosen is None and str(context.master).startswith("local") and context.pythonExec != sys.executable:
        # a local session started earlier in this process, before PYSPARK_PYTHON was set: its workers would
        # run `python3` from PATH, which may lack the project. pyspark reads this attribute for every job.
        context.pythonExec = sys.executable
    return spark
