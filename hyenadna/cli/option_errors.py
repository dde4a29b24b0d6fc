"""What the command says when its options are refused: the one line a user needs out of the
option parser's (jsonargparse's) and Lightning's errors, and which errors are the options' at
all (a bug of ours keeps its traceback). Used by :mod:`hyenadna.cli`."""

from __future__ import annotations

import dataclasses
import inspect
import re
import traceback
import types
import typing
from argparse import ArgumentError
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hyenadna.errors import HyenaDNAError

__all__ = ["causes", "check_groups", "in_config_files", "innermost_message", "is_lightning_misconfiguration",
           "refused_by_options"]  # fmt: skip


def innermost_message(exc: BaseException, fn: Callable | None = None) -> str:
    """The one line a user needs from an error of the option parser or of Lightning: our own
    message where one is in the chain of causes, else the innermost message, where jsonargparse
    lists an error per alternative of an optional group the first that is not "expected None".
    A group of options of ``fn`` (``--tiling``) given one value instead of its options is said
    so, not in jsonargparse's words about class paths and configs."""
    chain = causes(exc)
    ours = [e for e in chain if isinstance(e, HyenaDNAError)]
    if ours:
        return str(ours[-1])
    keys: list[str] = []  # the option, as nested parsers name it on the way down: tiling, window
    for error in chain:
        key = re.match(r'Parser key "([^"]+)":', str(error))
        if key and keys and key.group(1).startswith(keys[-1] + "."):  # a nested parser's full name
            keys[-1] = key.group(1)
        elif key and key.group(1) not in keys:
            keys.append(key.group(1))
    innermost = str(chain[-1])
    if fn is not None and keys and any(re.search(_NOT_A_GROUP, str(e)) for e in chain):
        given = next(filter(None, (re.search(_GIVEN, str(e), re.M) for e in chain)), None)
        hint = group_hint(fn, ".".join(keys), None if given is None else given.group(given.lastindex))
        if hint:
            return hint
    alternatives = [line.strip()[2:] for line in innermost.splitlines() if line.strip().startswith("- ")]
    alternatives = [a for a in alternatives if "NoneType" not in a]
    message = " ".join(line.strip() for line in (alternatives or [innermost])[0].splitlines() if line.strip())
    message = message.replace("Expected a ", "expected ")
    message = re.sub(r"<class '([\w.]+)'>", r"\1", message)
    return (f"--{'.'.join(keys)}: " if keys else "") + message


# jsonargparse's words when a group of options gets a plain value, and where it quotes the value
_NOT_A_GROUP = r"class path|import path|must be a mapping|Unable to load config"
_GIVEN = r"^\s*Given value: (.*)$|Unable to load config \'(.*)\'|Unable to load config \"(.*)\""


def causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions it was raised from or during, outermost first."""
    chain, seen = [], set()
    error: BaseException | None = exc
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        chain.append(error)
        error = error.__cause__ or error.__context__
    return chain


def option_group(fn: Callable, key: str) -> tuple[type, bool] | None:
    """The dataclass behind option ``key`` of ``fn`` (``tiling``, ``data``) and whether the option
    is a list of them (``data.genomes``), or None when the option is a plain value."""
    hint: Any = fn
    many = False
    for part in key.split("."):
        try:
            hint = typing.get_type_hints(hint).get(part)
        except Exception:  # a hint that does not resolve: not ours to explain
            return None
        many = typing.get_origin(hint) is list
        union = many or typing.get_origin(hint) in (typing.Union, types.UnionType)  # Tiling | None, list[...]
        members = [m for m in (typing.get_args(hint) if union else (hint,)) if dataclasses.is_dataclass(m)]
        if not members:
            return None
        hint = members[0]
    return hint, many


def group_hint(fn: Callable, key: str, value: object) -> str | None:
    """``--key: expected a group of options such as --key.field N, got VALUE`` when ``key`` is a
    group of options of ``fn`` (or a list of groups), else None."""
    found = option_group(fn, key)
    if found is None or not dataclasses.fields(found[0]):
        return None
    group, many = found
    first = dataclasses.fields(group)[0]
    example = {int: "N", float: "X"}.get(typing.get_type_hints(group).get(first.name), "...")
    got = "" if value is None else f", got {value}"
    if many:
        return f"--{key}: expected a list of groups of options such as [{{{first.name}: {example}}}]{got}"
    return f"--{key}: expected a group of options such as --{key}.{first.name} {example} (a mapping in YAML){got}"


def check_groups(fn: Callable, values: Any) -> None:
    """Refuse a group of options of ``fn`` given one value in YAML (``input: 5``), which the
    parser lets through to fail in the dataclass's construction."""
    from jsonargparse import Namespace

    for key in inspect.signature(fn).parameters:
        value = values.get(key) if hasattr(values, "get") else None
        if value is not None and not isinstance(value, dict | Namespace) and option_group(fn, key) is not None:
            raise HyenaDNAError(group_hint(fn, key, value))


def refused_by_options(exc: BaseException) -> bool:
    """Whether ``exc``, raised while the options were parsed and their dataclasses built, is a
    value the options refuse: our own error somewhere in its causes, or one that the option
    parser (or the YAML reader) raised itself, not one from inside our code."""
    chain = causes(exc)
    if any(isinstance(e, HyenaDNAError) for e in chain):
        return True
    frames = traceback.extract_tb(chain[-1].__traceback__)
    where = Path(frames[-1].filename).parts if frames else ()
    return isinstance(chain[-1], ArgumentError) or any(p in where for p in ("jsonargparse", "yaml"))


def is_lightning_misconfiguration(exc: BaseException) -> bool:
    return type(exc).__name__ == "MisconfigurationException" and type(exc).__module__.startswith("lightning")


def in_config_files(message: str, args: Sequence[str]) -> str:
    """``message`` with the YAML reader's ``"<unicode string>"`` replaced by the ``--config``
    file(s) it read: a syntax error names the file to fix."""
    configs = [args[i + 1] for i, arg in enumerate(args[:-1]) if arg == "--config"]
    configs += [arg.split("=", 1)[1] for arg in args if arg.startswith("--config=")]
    if not configs or "<unicode string>" not in message:
        return message
    return message.replace('"<unicode string>"', " or ".join(configs)).replace("<unicode string>", " or ".join(configs))
