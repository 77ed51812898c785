"""A real class on one machine: JupyterHub, nbgrader's exchange and a PostgreSQL gradebook.

- ``roster``: the class list (CSV: id, name, role) and its local accounts.
- ``exchange``: nbgrader's exchange with permissions that keep students out of each other's work.
- ``postgres``: a PostgreSQL cluster in a folder for the gradebook, started when it is down.
- ``jupyterhub_config.py``: the hub; ``config/``: what each role's server loads.
- ``__main__``: ``make hub`` (``python -m course_ad.hub``).
"""

from __future__ import annotations

from pathlib import Path

CONFIG = Path(__file__).resolve().parent / "config"  # JUPYTER_CONFIG_PATH of the hub's servers
ROLES = ("instructor", "grader", "student")
STAFF = ("instructor", "grader")  # formgrader and create-assignment; students get neither
