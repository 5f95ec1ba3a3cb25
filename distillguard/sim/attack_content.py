"""Pools of attack requests: what real distillation pipelines sent to teacher models.

One pool per distillation corpus, named after it (``orca_style``,
``ultrafeedback`` ...), verbatim. With the ``templates`` evasion knob each pool
also gets re-worded variants ``<corpus>~<style>`` (see ``rewording``).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from distillguard.corpora import corpus_files, file_stamp, iter_corpus
from distillguard.errors import InputError
from distillguard.sim.content import StoreBuilder, tool_schema_chars
from distillguard.sim.rewording import reword, skeleton_lines

__all__ = ["ATTACK_CORPORA", "RECURRING_MIN_ITEMS", "add_attack_pools", "is_attack_pool",
           "recurring_lines", "style_pool"]

# corpus -> typical answer length in tokens (none of these corpora carries the teacher's answer)
ATTACK_CORPORA: dict[str, float] = {
    "orca_style": 260,
    "ultrafeedback": 380,
    "alpaca_eval_judge": 20,
    "alpaca_selfinstruct": 1_100,
    "codealpaca_selfinstruct": 1_200,
    "self_instruct": 420,
    "toolbench": 150,
    "magpie": 450,
}


# a line sent with at least this many of a corpus's items (digits folded: list numbers vary)
# is its template, or a seed task its meta-prompt repeats, not one item's own data
RECURRING_MIN_ITEMS = 8
_DIGITS = re.compile(r"\d+")


def recurring_lines(prompts: list[str]) -> set[str]:
    """The lines (digits folded to 0) that at least ``RECURRING_MIN_ITEMS`` of a corpus's
    user messages share."""
    return skeleton_lines([_DIGITS.sub("0", p) for p in prompts], min_share=0.0,
                          min_count=RECURRING_MIN_ITEMS)


def is_attack_pool(pool: str) -> bool:
    """A pool of pipeline requests: a corpus or one of its re-worded styles."""
    return pool.split("~", 1)[0] in ATTACK_CORPORA


def style_pool(corpus: str, style: int) -> str:
    return f"{corpus}~{style}"


def _unit(item: dict[str, Any]) -> tuple[list[tuple[str, str]], str | None]:
    """An item as messages (tool calls and results kept as turns) and its system prompt."""
    system = item.get("system")
    raw = item.get("messages")
    if not raw:
        return [("user", item["prompt"])], system
    messages: list[tuple[str, str]] = []
    for m in raw:
        role = m.get("role")
        if role == "system":
            system = system or m.get("content")
            continue
        content = m.get("content")
        if role == "assistant" and not content and m.get("function_call"):
            content = orjson.dumps(m["function_call"]).decode()
        if content:
            messages.append(("tool" if role in ("function", "tool") else role, content))
    return messages, system


@dataclass(frozen=True)
class _AttackCorpus:
    """What the pools take from one corpus file, whatever the seed."""

    units: tuple[tuple[tuple[tuple[str, str], ...], str | None, tuple[str, ...] | None, int],
                 ...]                               # messages, system, tools, schema chars
    singles: tuple[int, ...]                        # the units of one user message
    recurring: frozenset[str]                       # ``recurring_lines`` of its user messages
    skeleton: tuple[str, ...]                       # ``skeleton_lines`` of the singles, sorted


@functools.lru_cache(maxsize=len(ATTACK_CORPORA))
def _read_attack_corpus(path: Path, stamp: tuple[int, int]) -> _AttackCorpus:
    """One corpus file read and analysed once per process (``stamp``: its mtime and size,
    so a changed file is read again): every world a process builds from the same corpora
    (tests, benchmarks) shares it."""
    units = []
    prompts: list[str] = []
    for item in iter_corpus(path):
        tools = tuple(t["name"] for t in item.get("tools") or [] if isinstance(t, dict)) or None
        schema = tool_schema_chars(item["tools"]) if tools else 0
        messages, system = _unit(item)
        prompts += [text for role, text in messages if role == "user"]
        units.append((tuple(messages), system, tools, schema))
    singles = tuple(i for i, u in enumerate(units) if len(u[0]) == 1)
    return _AttackCorpus(tuple(units), singles, frozenset(recurring_lines(prompts)),
                         tuple(sorted(skeleton_lines([units[i][0][0][1] for i in singles]))))


def add_attack_pools(builder: StoreBuilder, corpora_dir: Path, names: list[str], *,
                     styles: int, rng: np.random.Generator) -> frozenset[str]:
    """Add one pool per corpus in ``names``, and ``styles`` re-worded variants of each.

    Returns the lines that recur across each corpus's requests (its instructions, and
    the seed tasks a meta-prompt repeats): what the ``paraphrase`` knob rewords fully.
    """
    files = corpus_files(corpora_dir)
    recurring: set[str] = set()
    for name in names:
        if name not in ATTACK_CORPORA:
            msg = (f"unknown attack corpus {name!r} (known: {', '.join(ATTACK_CORPORA)})")
            raise InputError(msg)
        if name not in files:
            msg = f"attack corpus {name!r} is missing from {corpora_dir}"
            raise InputError(msg)
        corpus = _read_attack_corpus(files[name], file_stamp(files[name]))
        for messages, system, tools, schema in corpus.units:
            builder.add_conversation(name, messages, system=system, tools=tools,
                                     tool_schema_chars=schema)
        builder.describe(name, out_tokens=ATTACK_CORPORA[name])
        recurring |= corpus.recurring
        if not styles:
            continue
        singles = [corpus.units[i] for i in corpus.singles]
        variants = reword([(u[0][0][1], u[1]) for u in singles], styles, rng,
                          skeleton=corpus.skeleton)
        for style, items in enumerate(variants):
            pool = style_pool(name, style)
            for (prompt, system), i in items:
                _, _, tools, schema = singles[i]
                builder.add_single(pool, prompt, system=system, tools=tools,
                                   tool_schema_chars=schema)
            builder.describe(pool, out_tokens=ATTACK_CORPORA[name])
    return frozenset(recurring)
