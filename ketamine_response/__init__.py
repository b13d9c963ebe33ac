"""ketamine-response: honest response prediction for ketamine and esketamine in treatment-resistant depression.

The repository keeps ``features/``, ``models/`` and ``pipelines/`` at its top; this package links them
under one installed name (``ketamine_response.features`` and so on), so a wheel claims only
``ketamine_response`` in site-packages. Code imports only through this namespace (a ruff rule bans the bare names).
"""
