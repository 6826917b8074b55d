"""Topic and service name resolution: namespaces, private names and remaps (ROS 2 rules)."""

from __future__ import annotations

import re
from typing import Mapping

_VALID = re.compile(r"^(~/|/)?[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*$|^~$")


def join_namespace(*parts: str) -> str:
    """Join namespace fragments into an absolute namespace ("/" for none)."""
    segs = [s for p in parts for s in p.strip("/").split("/") if s]
    return "/" + "/".join(segs)


def resolve(name: str, namespace: str, node: str) -> str:
    """Absolute name of ``name`` as used by node ``node`` in ``namespace``.

    ``/abs`` stays; ``~/x`` becomes ``<ns>/<node>/x``; ``rel`` becomes ``<ns>/rel``.
    """
    if not name or not _VALID.match(name):
        raise ValueError(f"invalid topic or service name {name!r}")
    if name.startswith("/"):
        return name
    if name.startswith("~"):
        return join_namespace(namespace, node, name[1:])
    return join_namespace(namespace, name)


def apply_remaps(name: str, remaps: Mapping[str, str], namespace: str, node: str) -> str:
    """Resolve ``name`` and apply the first remap whose source resolves to the same name."""
    resolved = resolve(name, namespace, node)
    for src, dst in remaps.items():
        if resolve(src, namespace, node) == resolved:
            return resolve(dst, namespace, node)
    return resolved
