"""Performance benchmarks of novadiag at cluster scale (docs/performance.md).

``python -m benchmarks.run --size S|M|L`` prints one line per measurement;
:mod:`benchmarks.generate` builds the synthetic clusters it measures.
"""
