"""nbgrader on the course's JupyterHub: what every server (and the grader) of the hub loads.

The hub's spawner puts this folder on JUPYTER_CONFIG_PATH; the course's own
nbgrader_config.py loads it when COURSE_AD_HUB_CONFIG names it (so grading in the
instructor's course folder uses the shared exchange and the PostgreSQL gradebook).
"""

import os

c = get_config()  # noqa: F821 - provided by the loader

c.CourseDirectory.course_id = os.environ.get("COURSE_AD_COURSE_ID", "course-ad")
c.Exchange.root = os.environ.get("COURSE_AD_EXCHANGE", "/srv/nbgrader/exchange")
# only the staff's servers are given the gradebook's URL (it holds the password)
if os.environ.get("COURSE_AD_DB_URL"):
    c.CourseDirectory.db_url = os.environ["COURSE_AD_DB_URL"]
# a submission's folder is readable by the course's staff only (nbgrader's is 0777)
c.ExchangeFactory.submit = "course_ad.hub.guarded.GuardedSubmit"
