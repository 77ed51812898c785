"""JupyterHub for the course (``make hub`` starts it with this file; settings come from the
environment that ``python -m course_ad.hub`` prepares).

- Login: PAM with the roster's local accounts (the default), or, only with
  COURSE_AD_HUB_DEMO=1, a dummy authenticator that takes one shared demo password.
- Servers: each user's own process (LocalProcessSpawner) from the course's environment; the
  roster's role picks the extensions (formgrader for staff, the assignment list for all).
- Everything listens on 127.0.0.1.
"""

import os
import sys
from pathlib import Path

from course_ad.hub import CONFIG
from course_ad.hub.roster import read_roster

c = get_config()  # noqa: F821 - provided by JupyterHub

env = os.environ
state = Path(env.get("COURSE_AD_HUB_STATE", ".hub")).resolve()
members = read_roster(env["COURSE_AD_ROSTER"])
roles = {member.id: member.role for member in members}

c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = int(env.get("COURSE_AD_HUB_PORT", "8000"))
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = int(env.get("COURSE_AD_HUB_API_PORT", "8081"))
c.JupyterHub.db_url = f"sqlite:///{state / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(state / "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = str(state / "jupyterhub.pid")
c.ConfigurableHTTPProxy.command = [env.get("COURSE_AD_PROXY", "configurable-http-proxy")]
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{env.get('COURSE_AD_PROXY_API_PORT', '8001')}"
c.ConfigurableHTTPProxy.pid_file = str(state / "proxy.pid")

# ---- who may log in ----
c.Authenticator.allowed_users = set(roles)
c.Authenticator.admin_users = {user for user, role in roles.items() if role == "instructor"}
# COURSE_AD_HUB_AUTHENTICATOR picks another (e.g. an OAuth class); the dummy one only in demo
authenticator = env.get("COURSE_AD_HUB_AUTHENTICATOR", "pam")
if env.get("COURSE_AD_HUB_DEMO") == "1":
    c.JupyterHub.authenticator_class = "dummy"
    c.DummyAuthenticator.password = env["COURSE_AD_HUB_DEMO_PASSWORD"]
elif "dummy" in authenticator.lower():
    sys.exit("course_ad hub: the dummy authenticator lets anyone log in with one password; "
             "it runs only in demo mode (make hub DEMO=1). Use PAM (the default) for a class.")
else:
    c.JupyterHub.authenticator_class = authenticator
    c.PAMAuthenticator.open_sessions = False

# an API token for the course's own tools (the test, scripts): full admin of users and servers
if env.get("COURSE_AD_HUB_ADMIN_TOKEN"):
    c.JupyterHub.services = [{"name": "course-admin",
                              "api_token": env["COURSE_AD_HUB_ADMIN_TOKEN"]}]
    c.JupyterHub.load_roles = [{"name": "course-admin", "services": ["course-admin"],
                                "scopes": ["admin:users", "admin:servers", "tokens",
                                           "access:servers", "list:users", "read:users"]}]

# ---- each user's server ----
venv = Path(env.get("COURSE_AD_HUB_VENV", sys.prefix))
c.Spawner.cmd = [str(venv / "bin" / "jupyterhub-singleuser")]
c.Spawner.default_url = "/lab"
c.Spawner.start_timeout = 180
c.Spawner.http_timeout = 120
shared = {"COURSE_AD_HUB_CONFIG": str(CONFIG / "nbgrader_config.py"),
          "COURSE_AD_EXCHANGE": env.get("COURSE_AD_EXCHANGE", "/srv/nbgrader/exchange"),
          "COURSE_AD_COURSE_ID": env.get("COURSE_AD_COURSE_ID", "course-ad"),
          "PATH": f"{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin"}


def role_environment(spawner):  # noqa: ANN001, ANN201
    """Staff get formgrader and the gradebook's URL; students only the assignment list."""
    role = roles.get(spawner.user.name, "student")
    folder = CONFIG / ("staff" if role in ("instructor", "grader") else "student")
    spawner.environment.update(shared, JUPYTER_CONFIG_PATH=f"{folder}:{CONFIG}")
    if role != "student" and env.get("COURSE_AD_DB_URL"):
        spawner.environment["COURSE_AD_DB_URL"] = env["COURSE_AD_DB_URL"]


c.Spawner.pre_spawn_hook = role_environment
