"""The lines of a JSON manifest, found in its text: any names, any JSON layout, any noise around them.

Whatever the strings hold (quotes, backslashes, non-ASCII, braces) and however
the file is laid out (indented, one line, extra spaces, CRLF), each env entry's
recorded line is the line of its ``"name"`` member and each data key's line
the line of that key: found again in the file's own text.
"""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from novadiag.sourcelines import SourceLines, record_json

PROPERTY = settings(max_examples=200, deadline=None, database=None)

names = st.text(min_size=1, max_size=12)
noise = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
layouts = st.sampled_from([{"indent": 2}, {"indent": 1, "sort_keys": True}, {}, {"separators": (" , ", " : ")}])


def workload(env_names: list[str], extra: object) -> dict[str, object]:
    env = [{"value": extra, "name": n} if i % 2 else {"name": n, "value": "x"} for i, n in enumerate(env_names)]
    container = {"image": "i", "extra": extra, "env": env, "name": "c"}
    template = {"metadata": {"annotations": {"a": json.dumps(extra)}}, "spec": {"containers": [container]}}
    return {"kind": "Deployment", "metadata": {"name": "w", "namespace": "n"}, "spec": {"template": template}}


def config_map(keys: list[str], extra: object) -> dict[str, object]:
    metadata = {"name": "cm", "namespace": "n"}
    return {"kind": "ConfigMap", "noise": extra, "metadata": metadata, "data": dict.fromkeys(keys, "v")}


def recorded(doc: object, layout: dict[str, object], *, crlf: bool) -> tuple[SourceLines, list[str]]:
    text = json.dumps(doc, ensure_ascii=False, **layout)  # type: ignore[arg-type]
    if crlf:
        text = text.replace("\n", "\r\n")
    json.loads(text)  # the loader hands record_json only text json.loads has read
    lines: SourceLines = {}
    record_json(text, "m.json", lines)
    return lines, text.split("\n")


@PROPERTY
@given(st.lists(names, min_size=1, max_size=5, unique=True), noise, layouts, st.booleans())
def test_each_env_entry_is_found_on_the_line_of_its_name(env_names, extra, layout, crlf) -> None:
    doc = {"kind": "List", "items": [workload(env_names, extra)]}
    lines, text = recorded(doc, layout, crlf=crlf)
    found = lines[("Deployment", "n", "w")].env
    assert set(found) == {("c", n) for n in env_names}
    for (_container, name), line in found.items():
        written = json.dumps(name, ensure_ascii=False)
        assert f'"name"{layout.get("separators", (",", ": "))[1]}{written}' in text[line - 1]


@PROPERTY
@given(st.lists(names, min_size=1, max_size=5, unique=True), noise, layouts, st.booleans())
def test_each_data_key_is_found_on_its_own_line(keys, extra, layout, crlf) -> None:
    lines, text = recorded(config_map(keys, extra), layout, crlf=crlf)
    found = lines[("ConfigMap", "n", "cm")].keys
    assert set(found) == set(keys)
    for key, line in found.items():
        assert json.dumps(key, ensure_ascii=False) in text[line - 1]
