"""Reference answers for the replay upstream, from the corpora's ``response`` fields.

A prompt seen in a corpus gets its own reference answer; any other prompt gets
one picked by a stable hash of its text, so the same request always gets the
same answer. The reasoning trace is made up from the prompt and the answer: it
only has to look like one, so that withholding it can be seen and tested.
"""

from __future__ import annotations

from pathlib import Path

from xxhash import xxh3_64_intdigest

from distillguard.corpora import corpus_files, find_corpora_dir, iter_corpus
from distillguard.errors import InputError

__all__ = ["ANSWER_CORPORA", "ReplayCorpus", "first_sentence"]

# The corpora that carry reference answers (shared/corpora/README.md).
ANSWER_CORPORA = ("dolly", "fastchat_bench", "hh_rlhf", "sharegpt")


def first_sentence(text: str, limit: int) -> str:
    text = " ".join(text.split())
    for end in (". ", "? ", "! "):
        cut = text.find(end)
        if 0 < cut < limit:
            return text[:cut + 1]
    return text[:limit].rsplit(" ", 1)[0] if len(text) > limit else text


class ReplayCorpus:
    def __init__(self, answers: dict[str, str]) -> None:
        if not answers:
            raise InputError("the replay upstream has no reference answers")
        self.by_prompt = answers
        self.answers = list(answers.values())

    @classmethod
    def load(cls, corpora: str | Path | None = None, *, max_chars: int = 4000) -> ReplayCorpus:
        """Load every answer of ``ANSWER_CORPORA``; long answers cut at ``max_chars``."""
        files = corpus_files(find_corpora_dir(corpora))
        answers: dict[str, str] = {}
        for name in ANSWER_CORPORA:
            if name not in files:
                continue
            for item in iter_corpus(files[name]):
                response, prompt = item.get("response"), item.get("prompt")
                if isinstance(response, str) and response and isinstance(prompt, str):
                    answers.setdefault(prompt.strip(), response[:max_chars])
        return cls(answers)

    def answer(self, prompt: str) -> str:
        key = prompt.strip()
        found = self.by_prompt.get(key)
        if found is not None:
            return found
        return self.answers[xxh3_64_intdigest(key.encode()) % len(self.answers)]

    @staticmethod
    def reasoning(prompt: str, answer: str) -> str:
        return (f"The user asks: {first_sentence(prompt, 120)} Let me work through this step "
                f"by step. First, I identify what is being asked and what a complete answer "
                f"needs. Next, I recall what is relevant: {first_sentence(answer, 160)} "
                f"Then I check the facts and the order of the steps. Finally, I write the "
                f"answer clearly and concisely.")
