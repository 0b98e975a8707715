"""Suite-wide settings.

``tests/criteria/*.novadiag.yaml`` are the Nova scenario's success criteria: they
describe a cluster *after* the migration, so the suite runs them from
``tests/lab/test_nova_migration.py`` against a lab it migrated, not on their own.
"""

collect_ignore_glob = ["criteria/*"]
