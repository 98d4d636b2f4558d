"""The locustfile the k8s/loadtest pods run: mtserve's own users, from the image's installed mtserve.

Locust loads this file by path (`locust -f /mnt/locust/locustfile.py`); the users, the master/worker
messages and the pre-flight live in mtserve.loadtest.locustfile (loadtest/locustfile.py in the repository),
installed in the image with `pip install '.[loadtest]'`, so this file never drifts from the code that
the capacity search runs locally. To try another load shape without rebuilding the image, put a full
locustfile here instead.
"""

from mtserve.loadtest.locustfile import *  # noqa: F403  (MultitaskUser, PerTaskUser and their event hooks)
