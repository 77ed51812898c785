"""``make hub``: the class's accounts, the guarded exchange, the gradebook, then JupyterHub.

    python -m course_ad.hub --roster roster.csv [--exchange DIR] [--db URL] [--demo]

Without ``--db`` the gradebook is PostgreSQL in ``.hub/postgres`` (created and started when it
is down). The default login is PAM with the roster's local accounts; ``--demo`` uses a dummy
authenticator with one printed password and must be asked for.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import sys
from pathlib import Path

from . import CONFIG, exchange, postgres
from .roster import STAFF_GROUP, RosterError, ensure_accounts, read_roster

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent


def environment(roster: Path, state: Path, exchange_root: Path, db_url: str, *,
                port: int = 8000, api_port: int = 8081, proxy_api_port: int = 8001,
                course_id: str = "course-ad", demo: bool = False,
                venv: Path | None = None) -> dict[str, str]:
    """The settings jupyterhub_config.py reads, as environment variables."""
    proxy = REPO / "node_modules" / ".bin" / "configurable-http-proxy"
    settings = {
        "COURSE_AD_ROSTER": str(roster.resolve()), "COURSE_AD_HUB_STATE": str(state),
        "COURSE_AD_EXCHANGE": str(exchange_root), "COURSE_AD_DB_URL": db_url,
        "COURSE_AD_COURSE_ID": course_id, "COURSE_AD_HUB_PORT": str(port),
        "COURSE_AD_HUB_API_PORT": str(api_port),
        "COURSE_AD_PROXY_API_PORT": str(proxy_api_port),
        "COURSE_AD_PROXY": str(proxy if proxy.exists() else "configurable-http-proxy"),
        "COURSE_AD_HUB_VENV": str(venv or Path(sys.prefix)),
        "COURSE_AD_HUB_CONFIG": str(CONFIG / "nbgrader_config.py"),
    }
    if demo:
        settings.update(COURSE_AD_HUB_DEMO="1",
                        COURSE_AD_HUB_DEMO_PASSWORD=secrets.token_urlsafe(9))
    return settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make hub", description=__doc__.split("\n")[0])
    parser.add_argument("--roster", type=Path, default=Path("roster.csv"))
    parser.add_argument("--exchange", type=Path, default=Path("/srv/nbgrader/exchange"))
    parser.add_argument("--db", default="", help="the gradebook's URL (default: PostgreSQL "
                        "in .hub/postgres, started when it is down)")
    parser.add_argument("--state", type=Path, default=Path(".hub"))
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--pg-port", type=int, default=5433)
    parser.add_argument("--course-id", default="course-ad")
    parser.add_argument("--demo", action="store_true", help="dummy login (one shared "
                        "password): for a demonstration, never for a class")
    args = parser.parse_args(argv)
    try:
        members = read_roster(args.roster)
        created = ensure_accounts(members)
    except (RosterError, PermissionError) as error:
        print(error, file=sys.stderr)
        return 2
    print(f"accounts: {len(members)} in the roster, {len(created)} created")
    instructor = next(m.id for m in members if m.role == "instructor")
    exchange.prepare(args.exchange, args.course_id, instructor, STAFF_GROUP)
    for problem in exchange.problems(args.exchange, args.course_id):
        print(f"exchange: {problem}", file=sys.stderr)
        return 2
    state = args.state.resolve()  # 0711: the postgres account reaches its own folder only
    state.mkdir(parents=True, exist_ok=True)
    os.chmod(state, 0o711)
    (state / "hub").mkdir(mode=0o700, exist_ok=True)  # the hub's database and cookie secret
    try:
        url = args.db or postgres.Cluster(state / "postgres", args.pg_port).ensure()
    except postgres.GradebookUnavailableError as error:
        print(error, file=sys.stderr)
        return 2
    problem = postgres.reachable(url)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    print(f"gradebook: {postgres.hide_password(url)}")
    settings = environment(args.roster, state / "hub", args.exchange, url, port=args.port,
                           course_id=args.course_id, demo=args.demo)
    if args.demo:
        print(f"DEMO MODE: any roster id logs in with the password "
              f"{settings['COURSE_AD_HUB_DEMO_PASSWORD']}")
    jupyterhub = shutil.which("jupyterhub", path=str(Path(sys.prefix) / "bin"))
    if not jupyterhub:
        print("jupyterhub is not installed: make hub installs the `hub` extra", file=sys.stderr)
        return 2
    print(f"JupyterHub on http://127.0.0.1:{args.port}/ (Ctrl-C stops it)")
    os.chdir(state / "hub")
    os.execve(jupyterhub, [jupyterhub, "-f", str(HERE / "jupyterhub_config.py")],
              {**os.environ, **settings})
    return 0


if __name__ == "__main__":
    sys.exit(main())
