"""The project config file, ``.flowpipe.yaml``: settings a whole team shares through git.

It is looked for in the recipe's folder (or the current folder for ``flowpipe cache``)
and then in each parent folder; the first one found is used. A leading dot keeps it
out of ``*.yaml`` globs of recipes. Today it holds the remote cache:

    remote: s3://team-assets/flowpipe          # or, with an endpoint:
    remote:
      url: s3://team-assets/flowpipe
      endpoint: https://ACCOUNT.r2.cloudflarestorage.com
      region: auto

``--remote`` and ``FLOWPIPE_REMOTE`` win over ``remote:``; ``AWS_ENDPOINT_URL_S3`` /
``AWS_ENDPOINT_URL`` and ``AWS_REGION`` win over ``endpoint:`` and ``region:``.
Credentials never go here: they come from the AWS chain, and a key that looks like one
is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from flowpipe.errors import UsageError

__all__ = ["CONFIG_NAME", "ProjectConfig", "find_config", "load_config"]

CONFIG_NAME = ".flowpipe.yaml"
_REMOTE_KEYS = ("url", "endpoint", "region")
_SECRET_WORDS = ("secret", "access_key", "accesskey", "token", "password", "credential")


@dataclass(frozen=True, slots=True)
class ProjectConfig:
    """What the config file says; every field None when there is none."""

    path: Path | None = None
    remote: str | None = None
    endpoint: str | None = None
    region: str | None = None


def find_config(start: Path) -> Path | None:
    """The nearest ``.flowpipe.yaml`` in ``start`` or a parent folder."""
    folder = start.resolve()
    for candidate in (folder, *folder.parents):
        path = candidate / CONFIG_NAME
        if path.is_file():
            return path
    return None


def _where(path: Path, node: yaml.Node) -> str:
    mark = node.start_mark
    return f"{path}:{mark.line + 1}:{mark.column + 1}"


def _scalar(path: Path, node: yaml.Node, what: str) -> str:
    if not isinstance(node, yaml.ScalarNode) or not str(node.value).strip():
        raise UsageError(f"{_where(path, node)}: {what} must be a non-empty string")
    return str(node.value).strip()


def _mapping(path: Path, node: yaml.Node, known: tuple[str, ...]) -> dict[str, yaml.Node]:
    if not isinstance(node, yaml.MappingNode):
        raise UsageError(f"{_where(path, node)}: expected a mapping of {', '.join(known)}")
    found: dict[str, yaml.Node] = {}
    for key_node, value in node.value:
        key = str(key_node.value)
        if any(word in key.lower() for word in _SECRET_WORDS):
            raise UsageError(
                f"{_where(path, key_node)}: '{key}': credentials never go in {CONFIG_NAME}",
                hint="they come from the AWS chain: environment variables or an AWS profile",
            )
        if key not in known:
            raise UsageError(f"{_where(path, key_node)}: unknown key '{key}' "
                             f"(known: {', '.join(known)})")
        if key in found:
            raise UsageError(f"{_where(path, key_node)}: '{key}' is given twice")
        found[key] = value
    return found


def load_config(start: Path) -> ProjectConfig:
    """Read the nearest config file; a bad one is a usage error naming file:line:col."""
    path = find_config(start)
    if path is None:
        return ProjectConfig()
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise UsageError(f"{where}: {exc.problem or 'not valid YAML'}") from exc
    except yaml.YAMLError as exc:
        raise UsageError(f"{path}: not valid YAML: {exc}") from exc
    if root is None:
        return ProjectConfig(path=path)
    top = _mapping(path, root, ("remote",))
    remote = top.get("remote")
    if remote is None:
        return ProjectConfig(path=path)
    if isinstance(remote, yaml.ScalarNode):
        return ProjectConfig(path=path, remote=_scalar(path, remote, "remote"))
    fields = _mapping(path, remote, _REMOTE_KEYS)
    if "url" not in fields:
        raise UsageError(f"{_where(path, remote)}: remote needs a url: s3://BUCKET/PREFIX")
    values = {k: _scalar(path, v, f"remote.{k}") for k, v in fields.items()}
    return ProjectConfig(path=path, remote=values["url"], endpoint=values.get("endpoint"),
                         region=values.get("region"))
