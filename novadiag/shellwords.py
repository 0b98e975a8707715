"""Shell scripts in container commands, cut into simple commands a reader can look at.

Init containers wait for their dependencies with one-line scripts
(``sh -c 'until nc -z kafka 9092; do sleep 2; done'``), and entrypoints start
their program through ``sh -c`` so that variables expand. This module finds
such a script in a container's ``command``/``args`` and splits it, line by
line, into simple commands: words as ``shlex`` reads them, cut at ``;``,
``&&``, ``||``, ``|`` and ``&``, with the shell's keywords (``until``,
``do``, ``if``, ...) and leading ``VAR=value`` assignments taken off, so the
first word is the program run. A backslash continuation joins lines (the
command keeps the line it started on); a line that does not tokenize (an
unbalanced quote) falls back to plain whitespace words, so a script is never
skipped whole.

Pure and small on purpose: which words are hosts is
:mod:`novadiag.commandrefs`' question.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

SHELLS = frozenset({"sh", "bash", "ash", "dash", "zsh", "ksh", "busybox"})
_OPERATORS = frozenset({";", "&&", "||", "|", "&", ";;", "(", ")", "|&"})
_KEYWORDS = frozenset(
    {"until", "while", "do", "done", "if", "then", "else", "elif", "fi", "!", "{", "}", "for", "case", "esac"}
)
_ASSIGNMENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
_REDIRECT_RE = re.compile(r"\d*[<>]+")
# ``2>&1``, ``>&2``, ``&>``: the ``&`` there duplicates a file descriptor, it does not end a command.
_FD_DUPLICATION_RE = re.compile(r"\d*[<>]&(?:\d+|-)|&>>?")


@dataclass(frozen=True)
class Script:
    """A shell script found in a container: its text and which item holds it."""

    text: str
    origin: str
    """``command`` or ``args``: the list the script item is in."""
    index: int


@dataclass(frozen=True)
class SimpleCommand:
    """One simple command of a script: its words and the 1-based line it starts on.

    ``assignments`` are the ``VAR=value`` words before the program (``PGHOST=db
    pg_isready``), or a line of assignments alone: their values may name hosts too.
    """

    line: int
    words: tuple[str, ...]
    assignments: tuple[str, ...] = ()


def find_script(command: Sequence[str], args: Sequence[str]) -> Script | None:
    """The script a container runs through ``sh -c`` (``command`` then ``args``, as the kubelet joins them).

    >>> find_script(["/bin/sh", "-c"], ["until nc -z db 5432; do sleep 1; done"])
    Script(text='until nc -z db 5432; do sleep 1; done', origin='args', index=0)
    >>> find_script(["sh"], ["-c", "echo hi"]).index
    1
    >>> find_script(["python", "-c", "print(1)"], []) is None
    True
    """
    argv = [("command", i, word) for i, word in enumerate(command)]
    argv += [("args", i, word) for i, word in enumerate(args)]
    if not argv or not _is_shell(argv[0][2]):
        return None
    position = 1
    if argv[0][2].rsplit("/", 1)[-1] == "busybox" and len(argv) > 1 and _is_shell(argv[1][2]):
        position = 2  # busybox sh -c '...'
    option_value = False
    for origin, index, word in argv[position:]:
        if option_value:  # the name after ``-o``/``+o`` (``bash -o pipefail -c ...``)
            option_value = False
            continue
        if word in ("-o", "+o", "-O", "+O"):
            option_value = True
            continue
        if not word.startswith("-"):
            return None
        if "c" in word.lstrip("-") and not word.startswith("--"):  # -c, -ec, -xc
            following = argv[argv.index((origin, index, word)) + 1 :]
            if not following:
                return None
            script_origin, script_index, text = following[0]
            return Script(text, script_origin, script_index)
    return None


def _is_shell(word: str) -> bool:
    return word.rsplit("/", 1)[-1] in SHELLS


def simple_commands(script: str) -> Iterator[SimpleCommand]:
    """Every simple command of ``script``, in order, keywords and assignments taken off.

    >>> [(c.line, c.words) for c in simple_commands("until nc -z kafka 9092; do\\n  sleep 2\\ndone")]
    [(1, ('nc', '-z', 'kafka', '9092')), (2, ('sleep', '2'))]
    >>> [c.words for c in simple_commands("PGHOST=db pg_isready -h db && echo 'up; ok'")]
    [('pg_isready', '-h', 'db'), ('echo', 'up; ok')]
    """
    for line, text in _logical_lines(script):
        current: list[str] = []
        for word in _tokens(text):
            if word in _OPERATORS:
                yield from _command(line, current)
                current = []
            else:
                current.append(word)
        yield from _command(line, current)


def _logical_lines(script: str) -> Iterator[tuple[int, str]]:
    """Lines with backslash continuations joined; each keeps the number of its first line."""
    pending: list[str] = []
    start = 1
    for number, line in enumerate(script.splitlines(), start=1):
        if not pending:
            start = number
        if line.endswith("\\") and not line.endswith("\\\\"):
            pending.append(line[:-1])
            continue
        pending.append(line)
        yield start, " ".join(pending)
        pending = []
    if pending:
        yield start, " ".join(pending)


def _tokens(text: str) -> list[str]:
    """Words and operators of one line; plain whitespace words when the line does not tokenize."""
    text = _without_comment(text)
    text = _FD_DUPLICATION_RE.sub(lambda m: " >" if m[0].startswith("&") else " ", text)
    lexer = shlex.shlex(text, posix=True, punctuation_chars=";&|()")
    lexer.whitespace_split = True
    lexer.commenters = ""  # shlex would end a word at any "#" (``${HOSTNAME##*-}``); the shell only at a word's start
    try:
        return list(lexer)
    except ValueError:  # an unbalanced quote: read what is there word by word
        words = text.split()
        return [w.strip("'\"") for w in words if w.strip("'\"")]


def _without_comment(text: str) -> str:
    """The line up to a ``#`` that starts a word outside quotes (where the shell starts a comment)."""
    quote = ""
    for position, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (position == 0 or text[position - 1].isspace()):
            return text[:position]
    return text


def _command(line: int, words: list[str]) -> Iterator[SimpleCommand]:
    assignments: list[str] = []
    while words and (words[0] in _KEYWORDS or _ASSIGNMENT_RE.match(words[0])):
        if words[0] not in _KEYWORDS:
            assignments.append(words[0])
        words = words[1:]
    words = _without_redirections(words)
    if words or assignments:
        yield SimpleCommand(line, tuple(words), tuple(assignments))


def _without_redirections(words: list[str]) -> list[str]:
    """``>/dev/null``, ``2>&1``, ``< file``: where output goes is not an argument of the program."""
    kept: list[str] = []
    skip_next = False
    for word in words:
        if skip_next:
            skip_next = False
            continue
        redirect = _REDIRECT_RE.match(word)
        if redirect is not None:
            skip_next = redirect.end() == len(word)  # ``> file``: the target is the next word
            continue
        kept.append(word)
    return kept
