"""NetworkPolicy logic in one home, one idea per module.

- :mod:`~novadiag.netpol.policy`: policies and pods as values, parsed from raw objects
  (analysis layer, next to the resolver).
- :mod:`~novadiag.netpol.evaluation`: which traffic a set of policies admits, and the
  rule that would admit a denied connection (analysis layer; the verdicts use it).
- :mod:`~novadiag.netpol.rewrite`: the policies as they must read after a namespace
  move (analysis layer: pure, the planner calls it).
- :mod:`~novadiag.netpol.view`: what ``novadiag policies`` prints (planning layer:
  it reads a Report).

The generator of least-privilege policies (:mod:`novadiag.least_privilege`) lives
outside: it joins these with the routing objects' data planes, and the routing
judges read label selectors the verdicts share with this package, so inside it
would close a circle between the two packages.

The planner's own glue (where retired and held pods end up, in
:mod:`novadiag.planning.netpol`) stays in ``planning/``: it is about the plan's
moves, and only uses the rewrite here.

This ``__init__`` imports nothing, so each submodule keeps its own layer: importing
``novadiag.netpol.policy`` never loads the view.
"""
