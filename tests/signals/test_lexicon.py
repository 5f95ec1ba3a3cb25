"""The lexicon is the one list of techniques: every consumer reads it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from distillguard.behavior import ACCOUNT_CONTENT_SQL
from distillguard.errors import RuleValidationError
from distillguard.gateway.account_window import COUNTERS
from distillguard.gateway.config import SCHEMA as GATEWAY_SCHEMA
from distillguard.signals import SIGNAL_SCHEMA, TECHNIQUES, load_lexicon
from distillguard.signals.capabilities import CAPABILITIES
from distillguard.verdict.evidence import ACCOUNT_EVIDENCE_SQL

PACKAGE = Path(__file__).resolve().parents[2] / "distillguard"


def test_techniques_are_the_lexicons_in_its_order() -> None:
    lexicon = load_lexicon()
    assert lexicon.technique_names == TECHNIQUES and len(TECHNIQUES) == 5
    assert set(lexicon.technique_reasons) == set(TECHNIQUES)
    assert all(lexicon.technique_reasons.values())


def test_every_consumer_follows_the_lexicon() -> None:
    assert tuple(SIGNAL_SCHEMA.names[:len(TECHNIQUES)]) == TECHNIQUES
    assert COUNTERS[1:1 + len(TECHNIQUES)] == TECHNIQUES
    shares = GATEWAY_SCHEMA.fields["rules"].inner.item.fields["when"].inner.fields[
        "shares_at_least"].keys.values
    assert shares[:len(TECHNIQUES)] == TECHNIQUES
    for technique in TECHNIQUES:
        assert f"AS {technique}," in ACCOUNT_CONTENT_SQL
        assert f"coalesce(c.{technique}, 0) AS {technique}" in ACCOUNT_EVIDENCE_SQL
    assert CAPABILITIES[2:-1] == tuple(name for name, _ in load_lexicon().capabilities)


def test_technique_names_are_written_nowhere_else_in_the_code() -> None:
    """Names as identifiers or quoted strings (``grading`` is also an English word).
    ``tool_use`` also names a capability and an Anthropic content block, and its
    scores take the request's tool definitions into account, so it is left out."""
    names = [t for t in TECHNIQUES if t != "tool_use"]
    pattern = re.compile("|".join(rf"\b{re.escape(n)}\b" if "_" in n else rf"[\"']{re.escape(n)}[\"']"
                                  for n in names))
    found = [f"{path.relative_to(PACKAGE)}:{i}" for path in sorted(PACKAGE.rglob("*.py"))
             for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if pattern.search(line)]
    assert found == []


def test_an_own_lexicon_may_change_patterns_not_names(tmp_path: Path) -> None:
    from importlib import resources

    text = resources.files("distillguard.signals").joinpath("data/lexicon.yaml").read_text()
    own = tmp_path / "lexicon.yaml"
    own.write_text(text.replace("'chain[- ]of[- ]thoughts?'", "'chain of thought'"))
    assert load_lexicon(own).technique_names == TECHNIQUES
    renamed = tmp_path / "renamed.yaml"
    renamed.write_text(text.replace("  grading:\n", "  judging:\n"))
    with pytest.raises(RuleValidationError, match=r"The 'techniques' of lexicon .*renamed.yaml "
                                                  r"must name cot_elicitation, grading"):
        load_lexicon(renamed)
    broken = tmp_path / "broken.yaml"
    broken.write_text(text.replace("    reason: 'carry tools", "    reasn: 'carry tools"))
    with pytest.raises(RuleValidationError, match=r"'techniques.tool_use.reasn' key of lexicon"):
        load_lexicon(broken)
