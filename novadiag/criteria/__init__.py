"""Success criteria as pytest: built-in checks, ``*.novadiag.yaml`` files, and the plugin.

The plugin module (:mod:`novadiag.criteria.plugin`) is registered through the
``pytest11`` entry point; ``novadiag check FILE...`` runs pytest on criteria files.
"""

from novadiag.criteria.builtin import REGISTRY, Outcome
from novadiag.criteria.context import CheckContext, CriteriaSettings
from novadiag.criteria.files import CriteriaFileError, CriterionSpec, load_criteria_file

__all__ = [
    "REGISTRY",
    "CheckContext",
    "CriteriaFileError",
    "CriteriaSettings",
    "CriterionSpec",
    "Outcome",
    "load_criteria_file",
]
