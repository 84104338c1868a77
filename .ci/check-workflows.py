#!/usr/bin/env python3
"""Fails when GitHub would reject a workflow run at startup because of how a job calls a
reusable workflow. The schema linter and zizmor accept such files; GitHub refuses the whole
run before any `if:` is evaluated (a run with zero jobs, "startup_failure").

Usage:
  check-workflows.py [--repository OWNER/NAME] [--workflows DIR] [--markdown README.md]
                     [CALLER.yml ...]
  check-workflows.py --self-test FIXTURES_DIR

Every workflow in DIR (default .github/workflows) and every extra CALLER file is read; each
job with `uses:` is checked against the workflow it calls. A call of
`OWNER/NAME/.github/workflows/FILE@REF` where OWNER/NAME is --repository (this project) is
checked against DIR/FILE: that is the file the ref will point at once released. Calls of
other repositories are checked for the form of their reference only.

The rules, each from GitHub's documentation (paraphrased; the pages are cited where used):

R1 permissions. "Reusing workflows" / "Reusable workflows" reference, section "Access and
   permissions for nested workflows" (https://docs.github.com/en/actions/reference/workflows-and-actions/reusable-workflows):
   GITHUB_TOKEN permissions can only be the same or more restrictive in nested workflows; in
   A > B > C, if A has `packages: read`, B and C cannot have `packages: write`. GitHub
   enforces it for every job of the called workflow when the run starts, whatever the job's
   `if:` ("The nested job 'compare' is requesting 'pull-requests: write', but is only allowed
   'pull-requests: none'").
   The caller job's grant: "Controlling permissions for GITHUB_TOKEN"
   (https://docs.github.com/en/actions/writing-workflows/choosing-what-your-workflow-does/controlling-permissions-for-github_token):
   `permissions` is a top-level key for all jobs or a job's key; a job's replaces the
   workflow's; "If you specify the access for any of these permissions, all of those that are
   not specified are set to none"; `read-all`/`write-all` give read/write to every scope,
   `{}` disables them all; `write` includes `read`. With neither key the repository's default
   applies; we assume the restricted default ("Automatic token authentication": contents and
   packages read, metadata read, everything else none), the setting of new repositories.
   A called job asks for its own `permissions`, else its workflow's top-level ones, else
   nothing (it inherits the caller's token).
R2 inputs. "Workflow syntax", `on.workflow_call.inputs`
   (https://docs.github.com/en/actions/writing-workflows/workflow-syntax-for-github-actions#onworkflow_callinputs):
   "If a caller workflow passes an input that is not specified in the called workflow, this
   results in an error"; `required` inputs must be passed (`jobs.<job_id>.with`: "Any inputs
   that you pass must match the input specifications defined in the called workflow");
   `type` is boolean, number or string. A string literal for a boolean or number input is
   refused; an expression (`${{ ... }}`) is only known at run time and is not judged here; a
   number or boolean literal for a string input is taken as its text (not flagged).
R3 secrets. Same page, `on.workflow_call.secrets`: "If a caller workflow passes a secret that
   is not specified in the called workflow, this results in an error"; `required: true`
   secrets must be passed; `jobs.<job_id>.secrets.inherit` passes every secret of the caller
   (then neither rule applies).
R4 references. Same page, `jobs.<job_id>.uses`: `{owner}/{repo}/.github/workflows/{filename}@{ref}`
   for another repository, `./.github/workflows/{filename}` for the same repository (the
   caller's commit; no `@ref`). "Reusing workflows": reusable workflows live in
   `.github/workflows` ("Subdirectories of the workflows directory are not supported") and
   "For a workflow to be reusable, the values for `on` must include `workflow_call`".
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

# Every scope of a GITHUB_TOKEN (the `permissions` keys GitHub documents).
SCOPES = (
    "actions",
    "attestations",
    "checks",
    "contents",
    "deployments",
    "discussions",
    "id-token",
    "issues",
    "models",
    "packages",
    "pages",
    "pull-requests",
    "repository-projects",
    "security-events",
    "statuses",
)
LEVEL = {"none": 0, "read": 1, "write": 2}
# The restricted repository default (R1): what a caller job gets with no `permissions:` key.
RESTRICTED_DEFAULT = {s: "none" for s in SCOPES} | {"contents": "read", "packages": "read"}

REMOTE = re.compile(
    r"^(?P<owner>[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)/(?P<repo>[A-Za-z0-9._-]+)"
    r"/\.github/workflows/(?P<file>[^/@]+\.ya?ml)@(?P<ref>[^@\s]+)$"
)
LOCAL = re.compile(r"^\./\.github/workflows/(?P<file>[^/@]+\.ya?ml)$")
EXPRESSION = re.compile(r"\$\{\{.*\}\}", re.S)


class Mapping(dict):
    """A YAML mapping that remembers the line of each key (1-based)."""

    lines: dict


class Loader(yaml.SafeLoader):
    """PyYAML's safe loader, keeping key lines, and reading `on:` as the string "on" (YAML 1.1
    would make it `True`)."""


def _mapping(loader, node, deep=False):
    loader.flatten_mapping(node)
    out = Mapping()
    out.lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key is True and key_node.value == "on":
            key = "on"
        out[key] = loader.construct_object(value_node, deep=deep)
        out.lines[key] = key_node.start_mark.line + 1
    return out


Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def line(mapping, key) -> int:
    return getattr(mapping, "lines", {}).get(key, 0)


@dataclass
class Problems:
    items: list = field(default_factory=list)

    def add(self, file: Path, at: int, rule: str, text: str) -> None:
        self.items.append(f"{file}:{at}: [{rule}] {text}")


def load(path: Path) -> Mapping:
    with path.open(encoding="utf-8") as f:
        data = yaml.load(f, Loader=Loader)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a workflow (a YAML mapping expected)")
    return data


def documented_callers(markdown: Path) -> list[dict]:
    """The ```yaml blocks of a Markdown file that call a reusable workflow: what the
    documentation tells a user to copy must start too. Each block is parsed padded with the
    lines above it, so the problems name the file's own line numbers."""
    text = markdown.read_text(encoding="utf-8")
    out = []
    for m in re.finditer(r"^```ya?ml\n(.*?)^```", text, re.S | re.M):
        if ".github/workflows/" not in m[1] or "uses:" not in m[1]:
            continue
        above = text[: m.start(1)].count("\n")
        data = yaml.load("\n" * above + m[1], Loader=Loader)
        if isinstance(data, dict) and isinstance(data.get("jobs"), dict):
            out.append(data)
    return out


def triggers(workflow: dict) -> dict:
    """`on:` as a mapping of event -> its settings (None when it has none)."""
    on = workflow.get("on")
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return {e: None for e in on}
    return on if isinstance(on, dict) else {}


def grant(value, fallback: dict) -> dict:
    """A `permissions:` value as scope -> level (R1); `fallback` when the key is absent."""
    if value is None:
        return dict(fallback)
    if value == "read-all":
        # id-token has no read level: write or none.
        return {s: "read" for s in SCOPES} | {"id-token": "none"}
    if value == "write-all":
        return {s: "write" for s in SCOPES}
    if isinstance(value, dict):
        out = {s: "none" for s in SCOPES}
        for scope, level in value.items():
            out[str(scope)] = str(level)
        return out
    raise ValueError(f"`permissions: {value!r}` is none of read-all, write-all, {{}} or a mapping")


def request(value) -> dict | None:
    """What a called job asks for: only the scopes above none (None: inherits, asks nothing)."""
    if value is None:
        return None
    return {s: v for s, v in grant(value, {}).items() if LEVEL.get(v, 0) > 0}


def literal_type(value) -> str | None:
    """The input type a `with:` literal has (None: an expression, known only at run time)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return None if EXPRESSION.search(value) else "string"
    return "other"


def check_call(
    caller_file: Path,
    caller: dict,
    job_id: str,
    job: dict,
    workflows: Path,
    repository: str,
    problems: Problems,
) -> None:
    uses = str(job.get("uses", ""))
    at = line(job, "uses")
    local, remote = LOCAL.match(uses), REMOTE.match(uses)
    if uses.startswith("./"):
        if not local:
            problems.add(
                caller_file,
                at,
                "R4 uses",
                f"job '{job_id}': `uses: {uses}` is not ./.github/workflows/FILE.yml "
                "(a local call takes no @ref and no subdirectory)",
            )
            return
        called_path = workflows / local["file"]
    elif remote:
        if f"{remote['owner']}/{remote['repo']}".lower() != repository.lower():
            return  # another repository's workflow: its content is not ours to read
        called_path = workflows / remote["file"]
    else:
        problems.add(
            caller_file,
            at,
            "R4 uses",
            f"job '{job_id}': `uses: {uses}` is neither {{owner}}/{{repo}}/.github/workflows/"
            "{file}@{ref} nor ./.github/workflows/{file}",
        )
        return
    if not called_path.is_file():
        problems.add(
            caller_file,
            at,
            "R4 uses",
            f"job '{job_id}': `uses: {uses}` names {called_path}, which does not exist",
        )
        return
    called = load(called_path)
    on = triggers(called)
    if "workflow_call" not in on:
        problems.add(
            caller_file,
            at,
            "R4 uses",
            f"job '{job_id}': {called_path} is not reusable (its `on:` has no workflow_call)",
        )
        return
    call = on["workflow_call"] or {}
    check_inputs(caller_file, job_id, job, call.get("inputs") or {}, called_path, problems)
    check_secrets(caller_file, job_id, job, call.get("secrets") or {}, called_path, problems)
    check_permissions(caller_file, caller, job_id, job, called, called_path, problems)


def check_inputs(caller_file, job_id, job, declared, called_path, problems) -> None:
    given = job.get("with") or {}
    for name, value in given.items():
        at = line(given, name)
        spec = declared.get(name)
        if spec is None:
            problems.add(
                caller_file,
                at,
                "R2 inputs",
                f"job '{job_id}': input '{name}' is not defined in {called_path} "
                f"(it declares: {', '.join(declared) or 'none'})",
            )
            continue
        want = (spec or {}).get("type")
        got = literal_type(value)
        if want in ("boolean", "number") and got not in (None, want):
            problems.add(
                caller_file,
                at,
                "R2 inputs",
                f"job '{job_id}': input '{name}' is a {want} in {called_path}, "
                f"but {value!r} is a {got}",
            )
    for name, spec in declared.items():
        if (spec or {}).get("required") is True and name not in given:
            problems.add(
                caller_file,
                line(job, "uses"),
                "R2 inputs",
                f"job '{job_id}': input '{name}' is required by {called_path} but not passed",
            )


def check_secrets(caller_file, job_id, job, declared, called_path, problems) -> None:
    given = job.get("secrets")
    if given == "inherit":
        return
    given = given or {}
    if not isinstance(given, dict):
        problems.add(
            caller_file,
            line(job, "secrets"),
            "R3 secrets",
            f"job '{job_id}': `secrets:` is neither `inherit` nor a mapping",
        )
        return
    for name in given:
        if name not in declared:
            problems.add(
                caller_file,
                line(given, name),
                "R3 secrets",
                f"job '{job_id}': secret '{name}' is not defined in {called_path} "
                f"(it declares: {', '.join(declared) or 'none'})",
            )
    for name, spec in declared.items():
        if (spec or {}).get("required") is True and name not in given:
            problems.add(
                caller_file,
                line(job, "uses"),
                "R3 secrets",
                f"job '{job_id}': secret '{name}' is required by {called_path} but not "
                "passed (pass it, or `secrets: inherit`)",
            )


def check_permissions(caller_file, caller, job_id, job, called, called_path, problems) -> None:
    top = grant(caller.get("permissions"), RESTRICTED_DEFAULT)
    allowed = grant(job.get("permissions"), top)
    where = "the job's `permissions:`"
    if job.get("permissions") is None:
        where = (
            "the workflow's `permissions:`"
            if caller.get("permissions") is not None
            else "the repository default (assumed restricted: contents and packages read)"
        )
    for nested_id, nested in (called.get("jobs") or {}).items():
        nested = nested or {}
        asked = request(nested.get("permissions"))
        if asked is None:
            asked = request(called.get("permissions"))
        if not asked:
            continue
        short = {s: v for s, v in asked.items() if LEVEL[v] > LEVEL.get(allowed.get(s, "none"), 0)}
        if short:
            wants = ", ".join(f"{s}: {v}" for s, v in sorted(short.items()))
            has = ", ".join(f"{s}: {allowed.get(s, 'none')}" for s in sorted(short))
            problems.add(
                caller_file,
                line(job, "permissions") or line(job, "uses"),
                "R1 permissions",
                f"job '{job_id}' calls {called_path}: the nested job '{nested_id}' is "
                f"requesting '{wants}', but is only allowed '{has}' (from {where}); "
                "GitHub refuses the run at startup, whatever the nested job's `if:`",
            )


def check(
    workflows: Path, callers: list[Path], repository: str, markdown: list[Path] = ()
) -> list[str]:
    problems = Problems()
    files = sorted(workflows.glob("*.yml")) + sorted(workflows.glob("*.yaml")) + callers
    loaded = []
    for path in files:
        try:
            loaded.append((path, load(path)))
        except (OSError, ValueError, yaml.YAMLError) as e:
            problems.add(path, 0, "read", str(e))
    for path in markdown:
        try:
            loaded.extend((path, block) for block in documented_callers(path))
        except (OSError, yaml.YAMLError) as e:
            problems.add(path, 0, "read", str(e))
    for path, workflow in loaded:
        for job_id, job in (workflow.get("jobs") or {}).items():
            if isinstance(job, dict) and "uses" in job:
                try:
                    check_call(path, workflow, job_id, job, workflows, repository, problems)
                except (OSError, ValueError, yaml.YAMLError) as e:
                    problems.add(path, line(job, "uses"), "read", f"job '{job_id}': {e}")
    return problems.items


def self_test(fixtures: Path, repository: str) -> int:
    """Each fixture is a directory with `workflows/` (the shipped workflows), optionally
    `callers/` (workflows of a plugin repository, such as the one `init` writes), and `expect`:
    `pass`, or the lines every one of which some problem must contain."""
    failures = 0
    cases = sorted(p for p in fixtures.iterdir() if (p / "expect").is_file())
    for case in cases:
        callers = sorted((case / "callers").glob("*.yml")) if (case / "callers").is_dir() else []
        found = check(case / "workflows", callers, repository)
        expect = [l for l in (case / "expect").read_text().splitlines() if l.strip()]
        if expect == ["pass"]:
            ok = not found
        else:
            ok = bool(found) and all(any(e in f for f in found) for e in expect)
        status = "ok" if ok else "FAILED"
        print(f"self-test {case.name}: {status} ({len(found)} problems)")
        if not ok:
            failures += 1
            print("  expected: " + "; ".join(expect))
            for f in found:
                print("  found:    " + f)
    if not cases:
        print(f"self-test: no fixtures in {fixtures}", file=sys.stderr)
        return 2
    return 1 if failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repository", default="simonsobs/ocs-harness")
    parser.add_argument("--workflows", type=Path, default=Path(".github/workflows"))
    parser.add_argument("--self-test", type=Path, metavar="FIXTURES")
    parser.add_argument(
        "--markdown",
        type=Path,
        action="append",
        default=[],
        help="also check the callers this Markdown file shows in ```yaml blocks",
    )
    parser.add_argument("callers", nargs="*", type=Path)
    args = parser.parse_args()
    if args.self_test:
        return self_test(args.self_test, args.repository)
    found = check(args.workflows, args.callers, args.repository, args.markdown)
    for f in found:
        print(f"error: {f}", file=sys.stderr)
    checked = len(list(args.workflows.glob("*.y*ml"))) + len(args.callers) + len(args.markdown)
    if found:
        print(f"check-workflows: {len(found)} problem(s) in {checked} files", file=sys.stderr)
        return 1
    print(f"check-workflows: {checked} files, every reusable-workflow call would start")
    return 0


if __name__ == "__main__":
    sys.exit(main())
