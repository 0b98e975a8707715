"""Suite-wide settings.

``tests/criteria/*.novadiag.yaml`` are the Nova scenario's success criteria: they
describe a cluster *after* the migration, so the suite runs them from
``tests/lab/test_nova_migration.py`` against a lab it migrated, not on their own.

Property tests explore new examples on every run on a developer's machine; in CI
(``CI=true``, as ``.ci/run`` is run) they draw the same examples each time, so a
landing is judged on a reproducible run. A failure found locally is pinned with
``@example`` and then fails in CI too.
"""

import os

from hypothesis import settings

collect_ignore_glob = ["criteria/*"]

settings.register_profile("ci", derandomize=True)
if os.environ.get("CI") == "true":
    settings.load_profile("ci")
