"""The plan as a bash script: dry run by default, every value quoted, names checked twice.

The script is for operators who review and run commands themselves; it walks
the same steps as ``novadiag plan --apply`` and reaches the same end state.
Safety is layered:

- ``set -euo pipefail`` plus an ``ERR`` trap that names the failed step and
  prints the rollback of it and of every step done before it, newest first;
- nothing runs without ``--execute``: by default each command is printed;
- every name was checked against DNS-1123 when the script was generated
  (:func:`~novadiag.planning.kubectl.check_ref`) and is checked again when it
  runs (``check_names``), every value is quoted with :func:`shlex.quote`, and
  manifests sit in quoted heredocs, so nothing in them is expanded;
- Secret values are never in the script: ``copy_secret`` and
  ``rewrite_secret`` read them from the cluster into a private temporary
  directory, rewrite hosts with ``sed``, and write them back through a
  manifest or patch *file* (never a command line, where ``ps`` would show them);
  they need only ``kubectl``, ``sed``, ``base64`` and ``mktemp`` — no jq, no python;
- values the snapshot masked (a password inside an env value or a ConfigMap
  key) are not in the script either: an ``edit`` or a ``copy`` step reads each
  one from the live object (``live_value``, a ``kubectl`` go-template) into
  the private directory, rewrites its hosts with the same ``sed``, and puts it
  into the manifest or patch in place of a placeholder (``live_create``,
  ``live_patch``), JSON-escaped by bash itself;
- deletes run only with ``--allow-delete``; data-migration and other manual
  steps stop the script until the operator passes ``--ack-manual``; the grace
  period stops it until ``--cleanup`` (or ``--no-grace``).
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable

from novadiag.errors import PlanError
from novadiag.planning.kubectl import HEREDOC, check_ref, operation_lines, rollback_text
from novadiag.planning.values import Plan, Step
from novadiag.version import __version__

PRELUDE = r"""
DRY_RUN=1
ALLOW_DELETE=0
CLEANUP_ONLY=0
NO_GRACE=0
ACK_MANUAL=0
FROM=""
KUBECTL=(kubectl)
NOVADIAG=(novadiag)
NOVADIAG_OPTS=()
DONE=()
CURRENT=""

usage() {
  cat <<'USAGE'
usage: plan.sh [--execute] [--allow-delete] [--cleanup] [--no-grace] [--ack-manual]
               [--from STEP] [--kubeconfig FILE] [--context NAME]

  --execute             run the commands (default: print them, a dry run)
  --allow-delete        let the cleanup phase delete the old objects
  --cleanup             run only the cleanup phase (after the grace period)
  --no-grace            go straight from the switch to the cleanup (needs --allow-delete)
  --ack-manual          the manual steps (data migration, external traffic) are done: continue past them
  --from STEP           start at this step id (resume after a stop)
USAGE
}

while [ "$#" -gt 0 ]; do
  case "$1" in
    --execute) DRY_RUN=0 ;;
    --dry-run) DRY_RUN=1 ;;
    --allow-delete) ALLOW_DELETE=1 ;;
    --cleanup) CLEANUP_ONLY=1 ;;
    --no-grace) NO_GRACE=1 ;;
    --ack-manual) ACK_MANUAL=1 ;;
    --from) FROM="${2:?--from needs a step id}"; shift ;;
    --kubeconfig)
      KUBECTL+=(--kubeconfig "${2:?--kubeconfig needs a file}")
      NOVADIAG_OPTS+=(--kubeconfig "$2")
      shift ;;
    --context) KUBECTL+=(--context "${2:?--context needs a name}"); NOVADIAG_OPTS+=(--context "$2"); shift ;;
    -h|--help) usage; exit 0 ;;
    *) printf 'unknown option: %s\n' "$1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

say() { printf '%s\n' "$*" >&2; }

run() {
  if [ "$DRY_RUN" = 1 ]; then
    printf '[dry-run]'
    printf ' %q' "$@"
    printf '\n'
    return 0
  fi
  "$@"
}

kc() { run "${KUBECTL[@]}" "$@"; }

check_names() {
  local name
  for name in "$@"; do
    if ! [[ "$name" =~ ^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$ ]] || [ "${#name}" -gt 253 ]; then
      say "refusing to run: ${name@Q} is not a valid DNS-1123 name"
      exit 2
    fi
  done
}

check_key() {
  if ! [[ "$1" =~ ^[-._a-zA-Z0-9]+$ ]]; then
    say "refusing Secret key ${1@Q}: not a valid key"
    exit 2
  fi
}

# create_manifest LABEL: create the object whose JSON manifest comes on stdin (a quoted heredoc)
create_manifest() {
  local label="$1" manifest
  if [ "$DRY_RUN" = 1 ]; then
    printf '[dry-run] kubectl create -f - # %s\n' "$label"
    return 0
  fi
  manifest="$(cat)"
  printf '%s\n' "$manifest" | "${KUBECTL[@]}" create -f -
}

# rewrite_host FILE OLD NEW...: replace each OLD host by its NEW, as whole host names, all at once
rewrite_host() {
  local file="$1" i=0 old new pattern
  shift
  local -a back=()
  local -a args=("$@")
  while [ "$i" -lt "${#args[@]}" ]; do
    old="${args[$i]}"; new="${args[$((i + 1))]}"
    pattern="${old//./[.]}"
    local before='(^|[^A-Za-z0-9_.-])' after='([^A-Za-z0-9_.:-]|:[^/]|:$|[.][^A-Za-z0-9]|[.]?$)'
    # twice: a match consumes the character after it, which may start the next occurrence
    sed -E -e "s/${before}${pattern}${after}/\1@@NOVADIAG${i}@@\2/g" \
      -e "s/${before}${pattern}${after}/\1@@NOVADIAG${i}@@\2/g" "$file" > "$file.tmp"
    mv "$file.tmp" "$file"
    back+=(-e "s/@@NOVADIAG${i}@@/${new}/g")
    i=$((i + 2))
  done
  if [ "${#back[@]}" -gt 0 ]; then
    sed "${back[@]}" "$file" > "$file.tmp"
    mv "$file.tmp" "$file"
  fi
}

# read_secret NS NAME DIR: every key of the Secret into DIR/KEY (mode 600), prints its type
read_secret() {
  local ns="$1" name="$2" dir="$3" key keys type
  type="$("${KUBECTL[@]}" get secret "$name" -n "$ns" -o 'go-template={{.type}}')"
  if ! [[ "$type" =~ ^[A-Za-z0-9./_-]+$ ]]; then
    say "refusing Secret type ${type@Q}"
    exit 2
  fi
  keys="$("${KUBECTL[@]}" get secret "$name" -n "$ns" -o 'go-template={{range $k, $v := .data}}{{$k}}{{"\n"}}{{end}}')"
  while IFS= read -r key; do
    [ -n "$key" ] || continue
    check_key "$key"
    "${KUBECTL[@]}" get secret "$name" -n "$ns" -o "go-template={{index .data \"$key\" | base64decode}}" > "$dir/$key"
  done <<< "$keys"
  printf '%s' "$type"
}

# apply_rewrites DIR KEY OLD NEW...: rewrite hosts in the keys named
apply_rewrites() {
  local dir="$1" key
  shift
  local -a rest=("$@") keys=()
  local i=0
  while [ "$i" -lt "${#rest[@]}" ]; do
    keys+=("${rest[$i]}")
    i=$((i + 3))
  done
  for key in $(printf '%s\n' "${keys[@]+"${keys[@]}"}" | sort -u); do
    local -a pairs=()
    i=0
    while [ "$i" -lt "${#rest[@]}" ]; do
      if [ "${rest[$i]}" = "$key" ]; then
        pairs+=("${rest[$((i + 1))]}" "${rest[$((i + 2))]}")
      fi
      i=$((i + 3))
    done
    if [ ! -f "$dir/$key" ]; then
      say "the Secret has no key ${key@Q}, which the plan rewrites: the cluster changed since the audit"
      return 1
    fi
    rewrite_host "$dir/$key" "${pairs[@]}"
  done
}

# data_json DIR: the "data" object of a Secret from the files in DIR (values base64, never echoed)
data_json() {
  local dir="$1" file sep=""
  printf '{'
  for file in "$dir"/* "$dir"/.[!.]*; do
    [ -f "$file" ] || continue
    case "$file" in *.tmp|*/manifest.json|*/patch.json) continue ;; esac
    printf '%s"%s":"%s"' "$sep" "${file##*/}" "$(base64 < "$file" | tr -d '\n')"
    sep=","
  done
  printf '}'
}

# new_private_dir: NEW_DIR, a directory only this user can read, for values read at run time; every
# such directory is removed when the script exits, whether it succeeds, fails or is interrupted
PRIVATE_DIRS=()
new_private_dir() {
  NEW_DIR="$(umask 077 && mktemp -d)"
  PRIVATE_DIRS+=("$NEW_DIR")
}
remove_private_dirs() {
  if [ "${#PRIVATE_DIRS[@]}" -gt 0 ]; then
    rm -rf "${PRIVATE_DIRS[@]}"
  fi
}

# copy_secret SRC_NS NAME DST_NS METADATA_JSON [KEY OLD NEW]...: values read and written at run time
copy_secret() {
  local src="$1" name="$2" dst="$3" metadata="$4" dir type
  shift 4
  if [ "$DRY_RUN" = 1 ]; then
    printf '[dry-run] copy Secret %s/%s to %s (values read at run time, %d host rewrite(s))\n' \
      "$src" "$name" "$dst" "$(($# / 3))"
    return 0
  fi
  new_private_dir
  dir="$NEW_DIR"
  type="$(read_secret "$src" "$name" "$dir")"
  apply_rewrites "$dir" "$@"
  printf '{"apiVersion":"v1","kind":"Secret","metadata":%s,"type":"%s","data":%s}\n' \
    "$metadata" "$type" "$(data_json "$dir")" > "$dir/manifest.json"
  "${KUBECTL[@]}" create -f "$dir/manifest.json" || { rm -rf "$dir"; return 1; }
  rm -rf "$dir"
}

# rewrite_secret NS NAME [KEY OLD NEW]...: rewrite hosts in a Secret in place
rewrite_secret() {
  local ns="$1" name="$2" dir
  shift 2
  if [ "$DRY_RUN" = 1 ]; then
    printf '[dry-run] rewrite Secret %s/%s (%d host rewrite(s), values read at run time)\n' "$ns" "$name" "$(($# / 3))"
    return 0
  fi
  new_private_dir
  dir="$NEW_DIR"
  read_secret "$ns" "$name" "$dir" > /dev/null
  apply_rewrites "$dir" "$@"
  printf '{"data":%s}\n' "$(data_json "$dir")" > "$dir/patch.json"
  if ! "${KUBECTL[@]}" patch secret "$name" -n "$ns" --type merge --patch-file "$dir/patch.json"; then
    rm -rf "$dir"
    return 1
  fi
  rm -rf "$dir"
}

# live_begin: a private directory for the live values of one step
live_begin() {
  LIVE_DIR=""
  if [ "$DRY_RUN" = 1 ]; then
    return 0
  fi
  new_private_dir
  LIVE_DIR="$NEW_DIR"
}

# live_value RESOURCE NAME NS TEMPLATE N [OLD NEW]...: one live value into $LIVE_DIR/N, hosts rewritten
live_value() {
  local resource="$1" name="$2" ns="$3" template="$4" n="$5" value
  shift 5
  if [ "$DRY_RUN" = 1 ]; then
    printf '[dry-run] read a value of %s/%s -n %s at run time (%d host rewrite(s))\n' \
      "$resource" "$name" "$ns" "$(($# / 2))"
    return 0
  fi
  value="$("${KUBECTL[@]}" get "$resource" "$name" -n "$ns" -o "go-template=$template"; printf x)"
  value="${value%x}"
  if [ "${value#@@NOVADIAG_FOUND@@}" = "$value" ]; then
    say "$resource/$name -n $ns lacks a value the plan changes: the cluster changed since the plan"
    rm -rf "$LIVE_DIR"
    return 1
  fi
  printf '%s' "${value#@@NOVADIAG_FOUND@@}" > "$LIVE_DIR/$n"
  if [ "$#" -gt 0 ]; then
    rewrite_host "$LIVE_DIR/$n" "$@"
  fi
}

# json_string FILE: the file's text as a JSON string, escaped by bash (no process sees it)
json_string() {
  local v
  v="$(cat "$1"; printf x)"
  v="${v%x}"
  v="${v//\\/\\\\}"
  v="${v//\"/\\\"}"
  v="${v//$'\n'/\\n}"
  v="${v//$'\t'/\\t}"
  v="${v//$'\r'/\\r}"
  if [[ "$v" == *[[:cntrl:]]* ]]; then
    say "refusing a value with control characters: write it by hand"
    return 1
  fi
  printf '"%s"' "$v"
}

# live_fill OUT: the JSON on stdin with each "@@NOVADIAG_VALUE_N@@" replaced by $LIVE_DIR/N, into OUT
live_fill() {
  local out="$1" text file n json
  text="$(cat)"
  for file in "$LIVE_DIR"/*; do
    [ -f "$file" ] || continue
    n="${file##*/}"
    case "$n" in *[!0-9]*) continue ;; esac
    json="$(json_string "$file")" || return 1
    text="${text//"\"@@NOVADIAG_VALUE_${n}@@\""/"$json"}"
  done
  printf '%s\n' "$text" > "$out"
}

# live_create LABEL: create the object whose manifest (with placeholders) comes on stdin
live_create() {
  local label="$1"
  if [ "$DRY_RUN" = 1 ]; then
    printf '[dry-run] kubectl create -f - # %s, with the values read above\n' "$label"
    return 0
  fi
  live_fill "$LIVE_DIR/manifest.json"
  "${KUBECTL[@]}" create -f "$LIVE_DIR/manifest.json" || { rm -rf "$LIVE_DIR"; return 1; }
  rm -rf "$LIVE_DIR"
}

# live_patch RESOURCE NAME NS TYPE: patch with the patch (with placeholders) on stdin
live_patch() {
  local resource="$1" name="$2" ns="$3" type="$4"
  if [ "$DRY_RUN" = 1 ]; then
    printf '[dry-run] kubectl patch %s/%s -n %s --type %s # with the values read above\n' \
      "$resource" "$name" "$ns" "$type"
    return 0
  fi
  live_fill "$LIVE_DIR/patch.json"
  if ! "${KUBECTL[@]}" patch "$resource" "$name" -n "$ns" --type "$type" --patch-file "$LIVE_DIR/patch.json"; then
    rm -rf "$LIVE_DIR"
    return 1
  fi
  rm -rf "$LIVE_DIR"
}

verify() {
  run "${NOVADIAG[@]}" audit --probe --fail-on broken "$@" "${NOVADIAG_OPTS[@]+"${NOVADIAG_OPTS[@]}"}"
}

manual() {
  local id="$1" note="$2"
  say "---- $id: $note"
  if [ "$DRY_RUN" = 1 ] || [ "$ACK_MANUAL" = 1 ]; then
    return 0
  fi
  say "stopped at $id: do this by hand (suggested commands above), then run again with --from $id --ack-manual"
  exit 3
}

grace() {
  local id="$1" note="$2"
  say "---- $id: $note"
  if [ "$DRY_RUN" = 1 ] || [ "$NO_GRACE" = 1 ]; then
    return 0
  fi
  say "grace period started: the old objects are kept (scaled down)."
  say "After it, run: $0 --execute --cleanup --allow-delete"
  exit 0
}

begin() {
  CURRENT="$1"
  say "==> $1 [$2] $3"
}

on_error() {
  local code=$?
  if [ "$BASH_SUBSHELL" -gt 0 ]; then
    exit "$code"  # the failing command was in a subshell: report once, from the script itself
  fi
  say "FAILED at step ${CURRENT:-?} (exit $code). Nothing after it ran."
  say "To roll back, run these, newest first:"
  rollback "$CURRENT"
  local i
  for ((i = ${#DONE[@]} - 1; i >= 0; i--)); do
    rollback "${DONE[$i]}"
  done
  exit "$code"
}
trap on_error ERR
trap remove_private_dirs EXIT
"""

MAIN = r"""
started=0
if [ -z "$FROM" ]; then
  started=1
fi
for entry in "${STEPS[@]}"; do
  id="${entry%% *}"
  phase="${entry#* }"
  if [ "$started" = 0 ]; then
    if [ "$id" != "$FROM" ]; then
      continue
    fi
    started=1
  fi
  if [ "$CLEANUP_ONLY" = 1 ] && [ "$phase" != cleanup ]; then
    continue
  fi
  if [ "$phase" = cleanup ] && [ "$ALLOW_DELETE" != 1 ] && [ "$DRY_RUN" != 1 ]; then
    say "stopped before $id: the cleanup phase deletes objects; run again with --cleanup --allow-delete"
    exit 4
  fi
  "step_$id"
  DONE+=("$id")
done
if [ "$started" = 0 ]; then
  say "no step $FROM in this plan"
  exit 2
fi
say "done."
"""


def render_script(plan: Plan) -> str:
    """The bash script; refuses (PlanError) a plan whose verification breaks a working edge."""
    if plan.verification is not None and plan.verification.value_problems:
        raise PlanError(f"refusing to write a script: {plan.verification.value_problems[0]}")
    if plan.verification is not None and plan.verification.refused:
        raise PlanError(
            f"refusing to write a script: the plan breaks {len(plan.verification.regressions)} working edge(s); "
            f"first: {plan.verification.regressions[0]}"
        )
    names = sorted(_names(plan.steps))
    parts = [
        "#!/usr/bin/env bash",
        "# shellcheck disable=SC2016  # single quotes keep $VAR and {{...}} for the pod's shell and kubectl templates",
        f"# novadiag {__version__}: {_describe(plan)}",
        f"# verification: {plan.verification.summary() if plan.verification else 'not verified'}",
        "# Dry run by default: pass --execute to run. --help for the options.",
        "set -euo pipefail",
        "set -E",
        PRELUDE.strip("\n"),
        "",
        "check_names " + " ".join(shlex.quote(n) for n in names),
        "",
    ]
    for step in plan.steps:
        parts.append(_step_function(step, done=step.id in plan.done))
        parts.append(_rollback_case(step))
    parts.append(_rollback_dispatch(plan.steps))
    parts.append("STEPS=(")
    parts += [f"  {shlex.quote(f'{s.id} {s.phase}')}" for s in plan.steps]
    parts.append(")")
    parts.append(MAIN.strip("\n"))
    return "\n".join(parts) + "\n"


def _describe(plan: Plan) -> str:
    o = plan.options
    if o.strategy == "consolidate":
        keep = f", keep {', '.join(o.keep)}" if o.keep else ""
        return f"consolidate into {o.into}{keep}; {len(plan.steps)} steps"
    return f"strategy {o.strategy}; {len(plan.steps)} steps"


def _names(steps: Iterable[Step]) -> set[str]:
    names: set[str] = set()
    for step in steps:
        for op in (step.operation, *step.rollback):
            for ref in (op.ref, op.source):
                if ref is not None:
                    check_ref(ref)
                    names.add(ref.name)
                    if ref.namespace:
                        names.add(ref.namespace)
    return names


def _step_function(step: Step, *, done: bool = False) -> str:
    """The step as a bash function; a step already in place when the plan was made only says so."""
    lines = [
        f"step_{step.id}() {{",
        f"  begin {shlex.quote(step.id)} {shlex.quote(step.phase)} {shlex.quote(step.title)}",
    ]
    if done:
        return "\n".join([*lines, "  say '    already in place when the plan was made: skipped'", "}"])
    if step.warning:
        lines.append(f"  say {shlex.quote('WARNING: ' + step.warning)}")
    lines += _indent(operation_lines(step.operation, step.id))
    lines.append("}")
    return "\n".join(lines)


def _indent(lines: list[str]) -> list[str]:
    """Indent function bodies, but never a heredoc's body or terminator."""
    out, inside = [], False
    for line in lines:
        out.append(line if inside else "  " + line)
        if line.endswith(f"<<'{HEREDOC}'"):
            inside = True
        elif line == HEREDOC:
            inside = False
    return out


def _rollback_case(step: Step) -> str:
    lines = [f"rollback_{step.id}() {{"]
    if not step.rollback:
        lines.append(f"  say {shlex.quote(f'  {step.id}: nothing to undo')}")
    for op in step.rollback:
        for line in rollback_text(op):
            lines.append(f"  say {shlex.quote(f'  {step.id}: {line}')}")
    lines.append("}")
    return "\n".join(lines)


def _rollback_dispatch(steps: Iterable[Step]) -> str:
    lines = ["rollback() {", '  case "$1" in']
    for step in steps:
        lines.append(f"    {step.id}) rollback_{step.id} ;;")
    lines += ["    *) ;;", "  esac", "}"]
    return "\n".join(lines)
