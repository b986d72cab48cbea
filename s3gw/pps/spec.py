"""Pipeline specs: parse, validate, normalise (pure).

Theory of operation
-------------------
A spec is the JSON (or YAML) document a user hands to ``s3gw pipeline
create``, shaped like Pachyderm's, with Pachyderm's field names::

    {"pipeline": {"name": "copy"},
     "input": {"pfs": {"repo": "labresults", "glob": "/", "s3": true}},
     "transform": {"cmd": ["sh"], "stdin": ["..."]},
     "s3_out": true}

:func:`parse_spec` turns the document into a frozen :class:`PipelineSpec`
or raises :class:`SpecError` naming the field that is wrong.  Rules:

* Unknown fields are refused (a typo must not silently change nothing).
  Pachyderm fields that only make sense on Kubernetes are accepted where a
  local run can honour their meaning by ignoring them (``transform.image``,
  ``parallelism_spec``, ``resource_requests``/``resource_limits``,
  ``description``, ``metadata``); other Pachyderm fields s3gw does not
  implement (``cron``, ``spout``, ``service`` ...) are refused as such.
* Inputs: ``pfs`` (``repo`` required; ``name`` defaults to the repo,
  ``branch`` to ``master``, ``glob`` to ``/``), and ``cross`` of inputs.
  ``join``, ``group`` and ``union`` are refused: with an S3 input inside
  (Pachyderm's rule: an S3 input is the whole repo, it cannot be joined
  datum by datum) and otherwise (not implemented by s3gw).
* An S3 input needs glob ``/`` (Pachyderm's rule).  Input names are unique
  repo/branch-style names and never ``out``.
* ``s3_out`` must be true: the job writes its output to the ``out`` bucket
  (a spec whose output is files under ``/pfs/out`` is refused with a hint).
* ``transform.cmd`` is a non-empty list of strings; ``stdin`` lines are
  joined with newlines and fed to it; ``env`` is a string map;
  ``accept_return_code`` lists exit codes that also count as success.
* Timeouts: ``job_timeout`` / ``datum_timeout`` (Go durations as Pachyderm
  writes them, ``"90s"``, ``"1h30m"``) and ``transform.timeout`` (s3gw's
  name for the same as ``datum_timeout``; seconds or a duration).

What needs the store (the input repos exist, the output name is free) is
checked by :func:`check_names`, which takes the facts as arguments.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

__all__ = ["SpecError", "PfsInput", "CrossInput", "Transform", "PipelineSpec", "parse_spec",
           "load_spec_text", "check_names", "parse_duration", "s3_inputs", "pfs_inputs",
           "validate_glob"]

_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?")
_GO_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}

_TOP = {"pipeline", "input", "transform", "s3_out", "description", "job_timeout",
        "datum_timeout", "output_branch", "parallelism_spec", "resource_requests",
        "resource_limits", "metadata", "datum_tries", "reprocess_spec", "autoscaling"}
_PACHYDERM_UNSUPPORTED = {"egress", "cache_size", "enable_stats", "spout", "service",
                          "scheduling_spec", "pod_spec", "pod_patch", "spec_commit",
                          "standby", "chunk_spec", "max_queue_size", "sidecar_resource_limits",
                          "sidecar_resource_requests", "tolerations", "s3_in",
                          "tf_job", "update", "reprocess", "determined"}
_TRANSFORM = {"cmd", "stdin", "env", "image", "accept_return_code", "timeout", "working_dir",
              "err_cmd", "err_stdin", "debug", "user", "image_pull_secrets", "secrets"}
_TRANSFORM_IGNORED = {"image", "image_pull_secrets", "debug", "user"}
_PFS = {"name", "repo", "branch", "glob", "s3", "lazy", "empty_files", "repo_type", "commit",
        "project", "outer_join", "group_by", "join_on", "trigger"}


class SpecError(ValueError):
    """The spec is not valid; the message names the field and the rule."""


@dataclass(frozen=True)
class PfsInput:
    """One input repo branch: the bucket (``s3``) or the files (glob datums) of a job."""

    name: str
    repo: str
    branch: str = "master"
    glob: str = "/"
    s3: bool = False


@dataclass(frozen=True)
class CrossInput:
    """Every combination of the datums of its inputs."""

    inputs: tuple["PfsInput | CrossInput", ...]


@dataclass(frozen=True)
class Transform:
    cmd: tuple[str, ...]
    stdin: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    accept_return_code: tuple[int, ...] = ()
    image: str | None = None          # ignored by the local executor (see docs/pipelines.md)
    working_dir: str | None = None


@dataclass(frozen=True)
class PipelineSpec:
    name: str
    input: PfsInput | CrossInput
    transform: Transform
    s3_out: bool = True
    description: str = ""
    output_branch: str = "master"
    job_timeout: float | None = None     # seconds for the whole job
    datum_timeout: float | None = None   # seconds for one run of the transform
    ignored: tuple[str, ...] = field(default=(), compare=False)   # fields accepted, no effect
    document: str = field(default="", compare=False)              # the canonical JSON

    @property
    def inputs(self) -> list[PfsInput]:
        return pfs_inputs(self.input)


def load_spec_text(text: str) -> dict:
    """The spec document as a dict, from JSON or YAML text."""
    text = text.strip()
    if not text:
        raise SpecError("the spec is empty")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        if text.startswith("{"):
            raise SpecError(f"invalid JSON: {exc}") from None
        try:
            import yaml
        except ImportError:  # pragma: no cover - pyyaml is a dependency
            raise SpecError(f"invalid JSON: {exc}") from None
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as yexc:
            raise SpecError(f"neither JSON nor YAML: {yexc}") from None
    if not isinstance(doc, dict):
        raise SpecError("the spec must be an object (a mapping) at the top")
    return doc


def parse_duration(value, what: str) -> float:
    """Seconds from a number or a Go duration string (``"1h30m"``, ``"90s"``)."""
    if isinstance(value, bool):
        raise SpecError(f"{what}: expected a duration like \"90s\" or \"1h30m\"")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and value:
        pos, seconds = 0, 0.0
        for m in _GO_DURATION.finditer(value):
            if m.start() != pos:
                break
            seconds += float(m.group(1)) * _UNITS[m.group(2)]
            pos = m.end()
        if pos != len(value):
            raise SpecError(f"{what}: {value!r} is not a duration like \"90s\" or \"1h30m\"")
    else:
        raise SpecError(f"{what}: expected a duration like \"90s\" or \"1h30m\"")
    if seconds <= 0:
        raise SpecError(f"{what}: must be positive")
    return seconds


def validate_glob(glob: str, where: str) -> None:
    """A glob is ``/`` or ``/`` followed by path patterns (``*``, ``?``, ``[...]``)."""
    if not isinstance(glob, str) or not glob.startswith("/"):
        raise SpecError(f"{where}.glob: {glob!r} must start with '/' (e.g. \"/\" or \"/*\")")
    if "\x00" in glob or "//" in glob.rstrip("/") or len(glob) > 1024:
        raise SpecError(f"{where}.glob: {glob!r} is not a valid glob")
    depth = 0
    for ch in glob:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth < 0:
                break
    if depth != 0:
        raise SpecError(f"{where}.glob: {glob!r} has an unbalanced '['")


def _check_keys(doc: dict, allowed: set[str], where: str, unsupported: set[str] = frozenset()):
    for key in doc:
        if key in unsupported:
            raise SpecError(f"{where}.{key}: a Pachyderm field s3gw does not support")
        if key not in allowed:
            raise SpecError(f"{where}.{key}: unknown field")


def _name(value, where: str) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise SpecError(f"{where}: {value!r} is not a valid name (1-63 letters, digits, "
                        "'_' or '-', starting and ending with a letter or digit)")
    return value


def _strings(value, where: str, *, empty_ok: bool = True) -> tuple[str, ...]:
    if isinstance(value, str):
        raise SpecError(f"{where}: expected a list of strings, got a string")
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SpecError(f"{where}: expected a list of strings")
    if not value and not empty_ok:
        raise SpecError(f"{where}: must not be empty")
    return tuple(value)


def _parse_input(doc, where: str) -> PfsInput | CrossInput:
    if not isinstance(doc, dict) or len(doc) != 1:
        raise SpecError(f"{where}: an input is an object with exactly one of "
                        "pfs, cross (join, group, union and cron are not supported)")
    (kind, body), = doc.items()
    if kind == "pfs":
        if not isinstance(body, dict):
            raise SpecError(f"{where}.pfs: expected an object")
        _check_keys(body, _PFS, f"{where}.pfs")
        for key in ("lazy", "empty_files", "repo_type", "commit", "project", "outer_join",
                    "group_by", "join_on", "trigger"):
            if key in body and key not in ("lazy", "empty_files"):
                raise SpecError(f"{where}.pfs.{key}: a Pachyderm field s3gw does not support")
        if "repo" not in body:
            raise SpecError(f"{where}.pfs.repo: required")
        repo = _name(body["repo"], f"{where}.pfs.repo")
        name = _name(body.get("name", repo), f"{where}.pfs.name")
        branch = _name(body.get("branch", "master"), f"{where}.pfs.branch")
        glob = body.get("glob", "/")
        validate_glob(glob, f"{where}.pfs")
        s3 = body.get("s3", False)
        if not isinstance(s3, bool):
            raise SpecError(f"{where}.pfs.s3: expected true or false")
        if s3 and glob != "/":
            raise SpecError(f"{where}.pfs: an S3 input must have glob \"/\" (it is served whole, "
                            f"as one bucket), not {glob!r}")
        return PfsInput(name=name, repo=repo, branch=branch, glob=glob, s3=s3)
    if kind == "cross":
        if not isinstance(body, list) or len(body) < 1:
            raise SpecError(f"{where}.cross: expected a non-empty list of inputs")
        return CrossInput(tuple(_parse_input(d, f"{where}.cross[{i}]")
                                for i, d in enumerate(body)))
    if kind in ("join", "group", "union"):
        if isinstance(body, list) and any(i.s3 for i in _flat_inputs(body)):
            raise SpecError(f"{where}.{kind}: S3 inputs cannot be inside a {kind} "
                            "(an S3 input is served whole; only cross combines it)")
        raise SpecError(f"{where}.{kind}: not supported by s3gw (use cross)")
    if kind == "cron":
        raise SpecError(f"{where}.cron: a Pachyderm input s3gw does not support")
    raise SpecError(f"{where}.{kind}: unknown input type")


def _flat_inputs(body: list) -> list[PfsInput]:
    """Best-effort flattening of a raw input list (for the S3-inside-join message)."""
    out = []
    for d in body:
        if isinstance(d, dict):
            for kind, inner in d.items():
                if kind == "pfs" and isinstance(inner, dict):
                    out.append(PfsInput(name="x", repo="x", s3=bool(inner.get("s3"))))
                elif isinstance(inner, list):
                    out.extend(_flat_inputs(inner))
    return out


def pfs_inputs(node: PfsInput | CrossInput) -> list[PfsInput]:
    """Every ``pfs`` input of the tree, in spec order."""
    if isinstance(node, PfsInput):
        return [node]
    return [leaf for child in node.inputs for leaf in pfs_inputs(child)]


def s3_inputs(node: PfsInput | CrossInput) -> list[PfsInput]:
    return [i for i in pfs_inputs(node) if i.s3]


def parse_spec(doc: dict | str) -> PipelineSpec:
    """Validate a spec document (a dict, or JSON/YAML text) into a :class:`PipelineSpec`.

    Raises:
        SpecError: the first rule the document breaks, naming the field.
    """
    if isinstance(doc, str):
        doc = load_spec_text(doc)
    _check_keys(doc, _TOP, "spec", _PACHYDERM_UNSUPPORTED)
    pipeline = doc.get("pipeline")
    if not isinstance(pipeline, dict) or "name" not in pipeline:
        raise SpecError("pipeline.name: required")
    _check_keys(pipeline, {"name", "project"}, "pipeline")
    if "project" in pipeline:
        raise SpecError("pipeline.project: a Pachyderm field s3gw does not support")
    name = _name(pipeline["name"], "pipeline.name")
    if "input" not in doc:
        raise SpecError("input: required")
    root = _parse_input(doc["input"], "input")
    names = [i.name for i in pfs_inputs(root)]
    for n in names:
        if n == "out":
            raise SpecError("input name \"out\" is reserved for the output bucket")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise SpecError(f"input names must be unique: {', '.join(dupes)} appears more than "
                        "once (set pfs.name)")
    if name in {i.repo for i in pfs_inputs(root)}:
        raise SpecError(f"pipeline.name: {name!r} is also an input repo (a pipeline cannot "
                        "read its own output)")
    t = doc.get("transform")
    if not isinstance(t, dict):
        raise SpecError("transform: required (an object with cmd)")
    _check_keys(t, _TRANSFORM, "transform")
    for key in ("err_cmd", "err_stdin", "secrets"):
        if key in t:
            raise SpecError(f"transform.{key}: a Pachyderm field s3gw does not support")
    if "cmd" not in t:
        raise SpecError("transform.cmd: required")
    cmd = _strings(t["cmd"], "transform.cmd", empty_ok=False)
    stdin = _strings(t.get("stdin", []), "transform.stdin")
    env = t.get("env", {})
    if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                            for k, v in env.items()):
        raise SpecError("transform.env: expected an object of strings")
    codes = t.get("accept_return_code", [])
    if not isinstance(codes, list) or not all(isinstance(c, int) and not isinstance(c, bool)
                                              for c in codes):
        raise SpecError("transform.accept_return_code: expected a list of integers")
    working_dir = t.get("working_dir")
    if working_dir is not None and not isinstance(working_dir, str):
        raise SpecError("transform.working_dir: expected a string")
    image = t.get("image")
    if image is not None and not isinstance(image, str):
        raise SpecError("transform.image: expected a string")
    s3_out = doc.get("s3_out", False)
    if s3_out is not True:
        raise SpecError("s3_out: must be true: s3gw jobs write their output to the \"out\" "
                        "bucket (files under /pfs/out are not collected)")
    output_branch = _name(doc.get("output_branch", "master"), "output_branch")
    description = doc.get("description", "")
    if not isinstance(description, str):
        raise SpecError("description: expected a string")
    job_timeout = (parse_duration(doc["job_timeout"], "job_timeout")
                   if "job_timeout" in doc else None)
    datum_timeout = (parse_duration(doc["datum_timeout"], "datum_timeout")
                     if "datum_timeout" in doc else None)
    if "timeout" in t:
        datum_timeout = parse_duration(t["timeout"], "transform.timeout")
    ignored = sorted({k for k in doc if k in {"parallelism_spec", "resource_requests",
                                              "resource_limits", "metadata", "datum_tries",
                                              "reprocess_spec", "autoscaling"}}
                     | {f"transform.{k}" for k in t if k in _TRANSFORM_IGNORED})
    transform = Transform(cmd=cmd, stdin=stdin, env=tuple(sorted(env.items())),
                          accept_return_code=tuple(codes), image=image, working_dir=working_dir)
    return PipelineSpec(name=name, input=root, transform=transform, s3_out=True,
                        description=description, output_branch=output_branch,
                        job_timeout=job_timeout, datum_timeout=datum_timeout,
                        ignored=tuple(ignored),
                        document=json.dumps(doc, sort_keys=True, separators=(",", ":")))


def check_names(spec: PipelineSpec, *, repos: set[str], branches: set[tuple[str, str]],
                outputs: set[str], updating: bool) -> None:
    """The checks that need the store, given its facts.

    Args:
        repos: every repo that exists.
        branches: every (repo, branch) that exists.
        outputs: the output repos of existing pipelines (pipeline names).
        updating: the spec replaces the existing pipeline of the same name.

    Raises:
        SpecError: a missing input repo or branch, an input that is this
            pipeline's own output, or a name taken by a repo that is not this
            pipeline's output, or by another pipeline.
    """
    for i in spec.inputs:
        if i.repo not in repos:
            raise SpecError(f"input {i.name}: repo {i.repo!r} does not exist")
        if (i.repo, i.branch) not in branches:
            raise SpecError(f"input {i.name}: branch {i.branch!r} of repo {i.repo!r} does not "
                            "exist")
    if spec.name in outputs and not updating:
        raise SpecError(f"pipeline {spec.name!r} exists already (use pipeline update)")
    if not updating and spec.name in repos:
        raise SpecError(f"pipeline.name: repo {spec.name!r} exists and is not a pipeline's "
                        "output: choose another name")
