"""The Spark session the ``--engine spark`` / ``--backend spark`` paths use (optional extra ``.[spark]``).

Spark is imported only here and only when asked for, so the default single-machine path and
``--help`` never pay for it.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

from ketamine_response.features.errors import UsageError

DEFAULT_MASTER = "local[2]"


def session(master: str | None = None) -> Any:
    """The active SparkSession, or a new one on *master* (default ``$SPARK_MASTER`` or local[2]).

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
    builder = SparkSession.builder.master(master or os.environ.get("SPARK_MASTER", DEFAULT_MASTER))
    return (builder.appName("ketamine-response").config("spark.ui.enabled", "false")
            .config("spark.sql.session.timeZone", "UTC").getOrCreate())
