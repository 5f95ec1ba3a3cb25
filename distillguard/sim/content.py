"""One store for all the text simulated requests are made of, addressed by integers.

Every request the simulator can send is an *entry*: a run of messages in one
flat message array, plus a system prompt, a response and tool names by index.
A conversation stores its messages once; its turn-by-turn requests are entries
over growing prefixes of the same run. A *pool* is a list of *units* (a
conversation, or a single-turn request) that a stream samples from.

Columnar on purpose: a batch of exchanges is built with one ``take`` per column
over the whole store, never with per-row Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from distillguard.logs.schema import MESSAGE_TYPE

__all__ = ["ROLES", "ContentStore", "Pool", "StoreBuilder", "tool_schema_chars"]

ROLES = ("user", "assistant", "tool")
_ROLE_CODE = {"user": 0, "human": 0, "assistant": 1, "gpt": 1, "tool": 2, "function": 2}
_ROLE_ARRAY = pa.array(ROLES)


@dataclass(frozen=True)
class Pool:
    """Units a stream samples from: unit ``u`` is entries ``first[u] .. first[u] + turns[u] - 1``."""

    name: str
    first: np.ndarray
    turns: np.ndarray
    out_tokens: float = 300.0    # typical answer length when the corpus has no answer
    image: bool = False          # requests carry an image

    def __len__(self) -> int:
        return len(self.first)

    @property
    def mean_turns(self) -> float:
        return float(self.turns.mean()) if len(self.turns) else 1.0


@dataclass(frozen=True)
class ContentStore:
    """Flat messages and the entries over them (see the module docstring)."""

    roles: np.ndarray            # int8 per flat message
    contents: pa.StringArray     # per flat message
    msg_start: np.ndarray        # int64 per entry
    msg_len: np.ndarray          # int32 per entry
    response_msg: np.ndarray     # int64 per entry: flat message holding the answer, -1 none
    system_idx: np.ndarray       # int32 per entry into ``systems``, -1 none
    systems: pa.StringArray
    tools_idx: np.ndarray        # int32 per entry into ``tool_lists``, -1 none
    tool_lists: pa.ListArray
    in_chars: np.ndarray         # int64 per entry: characters sent (system, messages, tools)
    out_chars: np.ndarray        # int64 per entry: characters of the answer, -1 unknown
    pools: dict[str, Pool]

    def message_index(self, entries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(offsets, flat): where each entry's messages start in the ``messages`` column of
        ``entries``, and the flat message behind each of them."""
        lens = self.msg_len[entries].astype(np.int64)
        offsets = np.zeros(len(entries) + 1, dtype=np.int64)
        np.cumsum(lens, out=offsets[1:])
        flat = np.repeat(self.msg_start[entries] - offsets[:-1], lens) + np.arange(offsets[-1])
        return offsets, flat

    def messages(self, entries: np.ndarray, contents: pa.Array | None = None) -> pa.ListArray:
        """The ``messages`` column for ``entries`` (list<struct<role, content>>); ``contents``
        replaces the texts (one per message, in ``message_index`` order)."""
        offsets, flat = self.message_index(entries)
        values = pa.StructArray.from_arrays(
            [_ROLE_ARRAY.take(self.roles[flat]),
             self.contents.take(flat) if contents is None else contents],
            fields=list(MESSAGE_TYPE))
        return pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), values,
                                        type=pa.list_(MESSAGE_TYPE))

    def system(self, entries: np.ndarray) -> pa.Array:
        return _take_or_null(self.systems, self.system_idx[entries])

    def tools(self, entries: np.ndarray) -> pa.Array:
        return _take_or_null(self.tool_lists, self.tools_idx[entries])

    def response(self, entries: np.ndarray, keep: np.ndarray) -> pa.Array:
        """Reference answers for ``entries``; null where unknown or ``keep`` is False."""
        idx = np.where(keep, self.response_msg[entries], -1)
        return _take_or_null(self.contents, idx)


def _take_or_null(values: pa.Array, idx: np.ndarray) -> pa.Array:
    missing = idx < 0
    if missing.all():
        return pa.nulls(len(idx), values.type)
    return values.take(pa.array(np.where(missing, 0, idx), mask=missing))


class StoreBuilder:
    """Collect units in Python once, then freeze them into a ``ContentStore``."""

    def __init__(self) -> None:
        self._roles: list[int] = []
        self._contents: list[str] = []
        self._entries: list[tuple[int, int, int, int, int]] = []
        self._systems: dict[str, int] = {}
        self._tools: dict[tuple[str, ...], int] = {}
        self._tool_chars: list[int] = []
        self._pools: dict[str, tuple[list[int], list[int]]] = {}
        self._info: dict[str, tuple[float, bool]] = {}

    def _system(self, text: str | None) -> int:
        if not text:
            return -1
        return self._systems.setdefault(text, len(self._systems))

    def _tool_list(self, tools: Sequence[str] | None, schema_chars: int) -> int:
        if not tools:
            return -1
        key = tuple(tools)
        if key not in self._tools:
            self._tools[key] = len(self._tools)
            self._tool_chars.append(schema_chars)
        return self._tools[key]

    def add_conversation(self, pool: str, messages: Sequence[tuple[str, str]], *,
                         system: str | None = None, tools: Sequence[str] | None = None,
                         tool_schema_chars: int = 0) -> int:
        """Add one unit; a request is cut before every assistant answer. Returns its turns."""
        base = len(self._contents)
        for role, content in messages:
            self._roles.append(_ROLE_CODE[role])
            self._contents.append(content)
        sys_idx = self._system(system)
        tools_idx = self._tool_list(tools, tool_schema_chars)
        first = len(self._entries)
        n = len(messages)
        for i, (role, _) in enumerate(messages):
            nxt = messages[i + 1][0] if i + 1 < n else None
            if _ROLE_CODE[role] == 1 or (nxt is not None and _ROLE_CODE[nxt] != 1):
                continue  # a request ends at a user/tool turn that gets an answer (or ends the unit)
            answer = base + i + 1 if nxt is not None else -1
            self._entries.append((base, i + 1, answer, sys_idx, tools_idx))
        turns = len(self._entries) - first
        if turns:
            firsts, counts = self._pools.setdefault(pool, ([], []))
            firsts.append(first)
            counts.append(turns)
        return turns

    def add_single(self, pool: str, prompt: str, *, system: str | None = None,
                   response: str | None = None, tools: Sequence[str] | None = None,
                   tool_schema_chars: int = 0) -> int:
        messages = [("user", prompt)] + ([("assistant", response)] if response else [])
        return self.add_conversation(pool, messages, system=system, tools=tools,
                                     tool_schema_chars=tool_schema_chars)

    def alias_pool(self, name: str, source: str, *, system: str | None) -> None:
        """A copy of pool ``source`` whose entries carry another system prompt (no text copied)."""
        firsts, counts = self._pools[source]
        sys_idx = self._system(system)
        new_firsts = []
        for first, turns in zip(firsts, counts, strict=True):
            new_firsts.append(len(self._entries))
            for e in range(first, first + turns):
                start, length, answer, _, tools_idx = self._entries[e]
                self._entries.append((start, length, answer, sys_idx, tools_idx))
        self._pools[name] = (new_firsts, list(counts))
        if source in self._info:
            self._info[name] = self._info[source]

    def has_pool(self, name: str) -> bool:
        return name in self._pools

    def describe(self, pool: str, *, out_tokens: float, image: bool = False) -> None:
        """Typical answer length (tokens) and whether requests carry an image."""
        self._info[pool] = (out_tokens, image)

    def build(self) -> ContentStore:
        contents = pa.array(self._contents, pa.string())
        lengths = np.asarray(pc.utf8_length(contents).to_numpy(zero_copy_only=False),
                             dtype=np.int64)
        entries = np.array(self._entries, dtype=np.int64).reshape(-1, 5)
        msg_start, msg_len = entries[:, 0], entries[:, 1].astype(np.int32)
        response_msg = entries[:, 2]
        system_idx, tools_idx = entries[:, 3].astype(np.int32), entries[:, 4].astype(np.int32)
        systems = pa.array(list(self._systems), pa.string())
        sys_chars = np.asarray([len(s) for s in self._systems] + [0], dtype=np.int64)
        tool_chars = np.asarray([*self._tool_chars, 0], dtype=np.int64)
        cum = np.concatenate([[0], np.cumsum(lengths)])
        in_chars = (cum[msg_start + msg_len] - cum[msg_start] + sys_chars[system_idx]
                    + tool_chars[tools_idx])
        out_chars = np.where(response_msg >= 0, lengths[np.maximum(response_msg, 0)], -1)
        tool_lists = pa.array([list(t) for t in self._tools], pa.list_(pa.string()))
        pools = {name: Pool(name, np.asarray(f, dtype=np.int64), np.asarray(c, dtype=np.int32),
                            *self._info.get(name, (300.0, False)))
                 for name, (f, c) in self._pools.items()}
        return ContentStore(
            roles=np.asarray(self._roles, dtype=np.int8), contents=contents,
            msg_start=msg_start, msg_len=msg_len, response_msg=response_msg,
            system_idx=system_idx, systems=systems, tools_idx=tools_idx, tool_lists=tool_lists,
            in_chars=in_chars, out_chars=out_chars, pools=pools)


def tool_schema_chars(tools: Sequence[object]) -> int:
    """Characters the tool definitions add to a request (they are sent with it)."""
    return len(orjson.dumps(list(tools)))
