"""Pools of legitimate requests: people's conversations, and app/eval templates filled from them.

Everything a user says comes from the legitimate corpora (hh_rlhf, sharegpt,
dolly, fastchat_bench). Only the task templates of apps and evaluation teams
(``data/legit_templates.yaml``) were written for the simulator.

Held-out split: with ``split`` "train" or "test", each legitimate corpus
contributes only one fixed half of its items (by a hash of the item's first
user message, so an opening line that recurs in a corpus stays on one side),
so the two sides see different people and different questions.
"""

from __future__ import annotations

import functools
import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from distillguard.corpora import corpus_files, file_stamp, iter_corpus
from distillguard.errors import InputError
from distillguard.sim.content import StoreBuilder
from distillguard.sim.templates import LegitTemplates, TaskTemplate

__all__ = ["CHAT_POOLS", "LEGIT_CORPORA", "LegitCorpora", "add_legit_pools", "app_pool",
           "judge_pool", "load_legit_corpora", "public_judge_templates"]

LEGIT_CORPORA = ("hh_rlhf", "sharegpt", "dolly", "fastchat_bench")
CHAT_POOLS = ("chat_hh", "chat_sharegpt", "dolly")
MAX_CONVERSATION_CHARS = 16_000
MAX_FILL_CHARS = 4_000
_CODE_MARKERS = ("```", "def ", "function ", "#include", "public class", "SELECT ", "import ",
                 "const ", "=>")

Message = tuple[str, str]


@dataclass
class LegitCorpora:
    conversations: dict[str, list[list[Message]]] = field(default_factory=dict)
    systems: dict[str, list[str | None]] = field(default_factory=dict)
    dolly: list[tuple[str, str, str | None]] = field(default_factory=list)  # prompt, answer, ctx
    bench: list[tuple[str, str | None]] = field(default_factory=list)        # question, answer
    sensitive: list[tuple[str, str | None]] = field(default_factory=list)


def in_split(corpus: str, first_turn: str, split: str) -> bool:
    """Whether an item opening with ``first_turn`` belongs to ``split`` (all, train, test)."""
    if split == "all":
        return True
    half = zlib.crc32(f"{corpus}:{first_turn}".encode()) & 1
    return half == (0 if split == "train" else 1)


def _messages(item: dict) -> list[Message]:
    raw = item.get("messages") or [{"role": "user", "content": item["prompt"]},
                                   {"role": "assistant", "content": item.get("response")}]
    out: list[Message] = []
    total = 0
    for m in raw:
        content = m.get("content")
        if not content or m.get("role") not in ("user", "assistant"):
            continue
        if total + len(content) > MAX_CONVERSATION_CHARS and len(out) >= 2 \
                and m["role"] == "user":
            break
        out.append((m["role"], content))
        total += len(content)
    while out and out[0][0] != "user":
        out.pop(0)
    return out


def load_legit_corpora(corpora_dir: Path, split: str) -> LegitCorpora:
    """The legitimate corpora's items on ``split``'s side, read once per process for the
    same files (callers only read them)."""
    files = corpus_files(corpora_dir)
    missing = [c for c in LEGIT_CORPORA if c not in files]
    if missing:
        msg = f"legitimate corpora missing from {corpora_dir}: {', '.join(missing)}"
        raise InputError(msg)
    return _read_legit_corpora(tuple((c, files[c], file_stamp(files[c])) for c in LEGIT_CORPORA),
                               split)


@functools.lru_cache(maxsize=4)
def _read_legit_corpora(sources: tuple[tuple[str, Path, tuple[int, int]], ...], split: str
                        ) -> LegitCorpora:
    files = {name: path for name, path, _ in sources}
    out = LegitCorpora()
    for name in ("hh_rlhf", "sharegpt"):
        convs, systems = out.conversations.setdefault(name, []), out.systems.setdefault(name, [])
        for item in iter_corpus(files[name]):
            msgs = _messages(item)
            if not msgs or not in_split(name, msgs[0][1], split):
                continue
            convs.append(msgs)
            systems.append(item.get("system"))
            if item.get("family") == "hh-rlhf-harmless-base":
                answer = msgs[1][1] if len(msgs) > 1 else None
                out.sensitive.append((msgs[0][1], answer))
    for item in iter_corpus(files["dolly"]):
        if in_split("dolly", item["prompt"], split):
            out.dolly.append((item["prompt"], item.get("response") or "", item.get("context")))
    for item in iter_corpus(files["fastchat_bench"]):
        if in_split("fastchat_bench", item["prompt"], split):
            msgs = item.get("messages") or []
            answer = msgs[1]["content"] if len(msgs) > 1 and msgs[1]["role"] == "assistant" \
                else item.get("response") if item.get("turns") == 1 else None
            out.bench.append((item["prompt"], answer))
    return out


def app_pool(template: str, product: str | None = None) -> str:
    """Pool name of an app template (``product`` names the app instance's own system prompt)."""
    return f"app:{template}" if product is None else f"app:{template}@{product}"


class _Fills:
    """Values for template placeholders, drawn from the legitimate corpora."""

    def __init__(self, corpora: LegitCorpora, rng: np.random.Generator) -> None:
        self.rng = rng
        convs = [c for name in ("hh_rlhf", "sharegpt") for c in corpora.conversations[name]]
        firsts = [c[0][1] for c in convs]
        answers = [c[1][1] for c in convs if len(c) > 1]
        self.text = _short(firsts + [p for p, _, ctx in corpora.dolly if not ctx])
        self.answer = [a for a in _short(answers + [a for _, a, _ in corpora.dolly])
                       if len(a) >= 200]
        self.qa = [(c[0][1], c[1][1]) for c in convs if len(c) > 1
                   and len(c[0][1]) <= MAX_FILL_CHARS and 100 <= len(c[1][1]) <= MAX_FILL_CHARS]
        self.transcript = [_transcript(c) for c in convs if len(c) >= 4]
        self.code = [t for t in _short(firsts) if any(m in t for m in _CODE_MARKERS)]
        self.context = [(ctx, p) for p, _, ctx in corpora.dolly if ctx]
        self.question = [q for q, _ in corpora.bench] + [p for p, _, ctx in corpora.dolly
                                                          if not ctx]
        self.sensitive = [p for p, _ in corpora.sensitive]

    def draw(self, fill: str, n: int, languages: tuple[str, ...]) -> Iterable[dict[str, str]]:
        """Up to ``n`` placeholder mappings for ``fill`` (every question once, for ``question``)."""
        if fill == "question":
            for q in self.question:
                yield {"question": q}
            return
        source: list = getattr(self, "qa" if fill == "qa_pair" else fill)
        if not source:
            return
        for i in self.rng.permutation(len(source))[:n]:
            value = source[int(i)]
            if fill in ("qa", "qa_pair"):
                values = {"question": value[0], "answer": value[1]}
                if fill == "qa_pair":   # the team's own answer and other systems' answers
                    others = [self.qa[int(i)][1] for i in self.rng.integers(len(self.qa), size=3)]
                    values = {"question": value[0], "answer_a": value[1], "answer_b": others[0],
                              "answer_c": others[1], "answer_d": others[2]}
            elif fill == "context":
                values = {"context": value[0], "question": value[1]}
            else:
                values = {fill: value}
            values["language"] = languages[int(self.rng.integers(len(languages)))]
            yield values


def _short(texts: list[str]) -> list[str]:
    return [t for t in texts if 0 < len(t) <= MAX_FILL_CHARS]


def _transcript(conv: list[Message]) -> str:
    lines: list[str] = []
    total = 0
    for role, content in conv:
        line = f"{'User' if role == 'user' else 'Assistant'}: {content}"
        if lines and total + len(line) > 3_000:
            break
        lines.append(line)
        total += len(line)
    return "\n".join(lines)


def _fill(template: str, values: dict[str, str]) -> str:
    out = template
    for key, value in values.items():
        out = out.replace("{" + key + "}", value)
    return out


def _add_template_pool(builder: StoreBuilder, pool: str, t: TaskTemplate, fills: _Fills,
                       n: int, languages: tuple[str, ...]) -> None:
    system = t.system if t.system and "{product}" not in t.system else None
    for values in fills.draw(t.fill, n, languages):
        builder.add_single(pool, _fill(t.template, values), system=system, tools=t.tools,
                           tool_schema_chars=120 * len(t.tools))
    builder.describe(pool, out_tokens=t.output_tokens, image=t.image)


def _spans_template(text: str, spans: list[tuple[int, int, str]]) -> str:
    """``text`` with each (start, end) span replaced by its ``{placeholder}``."""
    out, pos = [], 0
    for start, end, name in sorted(spans):
        out += [text[pos:start], "{" + name + "}"]
        pos = end
    return "".join([*out, text[pos:]])


_ANSWERS = ("answer_a", "answer_b", "answer_c", "answer_d")
_TEXT_TAG = re.compile(r"<text (\d)> ?")


def _alpaca_eval_template(prompt: str) -> str | None:
    """AlpacaEval's judge prompt: the instruction, then the outputs, each in triple quotes."""
    parts = prompt.split('"""')
    if len(parts) != 7:
        return None
    names = ("question", "answer_a", "answer_b")
    return "".join(p if i % 2 == 0 else '"""{' + names[i // 2] + '}"""'
                   for i, p in enumerate(parts))


def _ultrafeedback_template(prompt: str) -> str | None:
    """An UltraFeedback rating prompt: its rubric, then the instruction and four texts."""
    at = prompt.find("## Annotation")
    instruction = prompt.find("Instruction: ", at)
    texts = prompt.find("\n\nTexts:\n", instruction)
    tags = list(_TEXT_TAG.finditer(prompt, texts))
    ends = [prompt.find(marker, texts) for marker in ("\n\nWorld Knowledge:", "\n\n### Output")]
    end = min(e for e in ends if e >= 0) if any(e >= 0 for e in ends) else -1
    if min(at, instruction, texts, end) < 0 or len(tags) != len(_ANSWERS):
        return None
    spans = [(instruction + len("Instruction: "), texts, "question")]
    for i, tag in enumerate(tags):
        stop = tags[i + 1].start() - 1 if i + 1 < len(tags) else end
        spans.append((tag.end(), stop, _ANSWERS[i]))
    return _spans_template(prompt, spans)


_PUBLIC_JUDGES = {"alpaca_eval_judge": (None, _alpaca_eval_template, 20.0),
                  "ultrafeedback": ("preference_templates:", _ultrafeedback_template, 380.0)}


def public_judge_templates(corpora_dir: Path, names: Iterable[str]) -> list[TaskTemplate]:
    """The public judge prompts among the pipelines ``names`` (AlpacaEval's, UltraFeedback's
    rating prompts), as templates an evaluation team fills with its own models' outputs:
    the same instructions the pipelines send, with other questions and answers."""
    files = corpus_files(corpora_dir)
    return [t for name in names if name in _PUBLIC_JUDGES and name in files
            for t in _judge_templates(name, files[name], file_stamp(files[name]))]


@functools.lru_cache(maxsize=len(_PUBLIC_JUDGES))
def _judge_templates(name: str, path: Path, stamp: tuple[int, int]) -> tuple[TaskTemplate, ...]:
    """One corpus's public judge templates, read once per process (``stamp``: the file's)."""
    prefix, convert, tokens = _PUBLIC_JUDGES[name]
    out: list[TaskTemplate] = []
    seen: set[str] = set()
    for item in iter_corpus(path):
        template_id = str(item.get("template_id"))
        if template_id in seen or (prefix and not template_id.startswith(prefix)):
            continue
        template = convert(item["prompt"])
        if template is None:
            continue
        seen.add(template_id)
        out.append(TaskTemplate(name=f"{name}:{template_id}", system=item.get("system"),
                                template=template, fill="qa_pair", output_tokens=tokens))
    return tuple(out)


def judge_pool(corpus: str) -> str:
    """Pool of evaluation teams running ``corpus``'s public judge prompt."""
    return f"judge:{corpus}"


def add_legit_pools(builder: StoreBuilder, corpora: LegitCorpora, templates: LegitTemplates,
                    rng: np.random.Generator, *, fills_per_template: int = 800,
                    public_judges: Iterable[TaskTemplate] = ()) -> None:
    """Add the chat pools, one pool per app template and app instance, the eval pools, and
    one pool per pipeline whose public judge prompt evaluation teams run."""
    for name, pool in (("hh_rlhf", "chat_hh"), ("sharegpt", "chat_sharegpt")):
        for conv, system in zip(corpora.conversations[name], corpora.systems[name], strict=True):
            builder.add_conversation(pool, conv, system=system)
            if name == "sharegpt" and any(m in conv[0][1] for m in _CODE_MARKERS):
                builder.add_conversation("chat_code", conv, system=system)
        builder.describe(pool, out_tokens=250)
    for prompt, answer, context in corpora.dolly:
        builder.add_single("dolly", f"{prompt}\n\n{context}" if context else prompt,
                           response=answer or None)
    for question, answer in corpora.bench:
        builder.add_single("bench", question, response=answer)
    for prompt, answer in corpora.sensitive:
        builder.add_single("sensitive", prompt, response=answer)
    fills = _Fills(corpora, rng)
    for t in templates.apps.values():
        _add_template_pool(builder, app_pool(t.name), t, fills, fills_per_template,
                           templates.languages)
        if t.system and "{product}" in t.system and builder.has_pool(app_pool(t.name)):
            for product in templates.products:
                builder.alias_pool(app_pool(t.name, product), app_pool(t.name),
                                   system=t.system.replace("{product}", product))
    for t in templates.eval.values():
        _add_template_pool(builder, f"eval:{t.name}", t, fills, fills_per_template,
                           templates.languages)
    for t in public_judges:
        _add_template_pool(builder, judge_pool(t.name.split(":", 1)[0]), t, fills,
                           fills_per_template // 2, templates.languages)
