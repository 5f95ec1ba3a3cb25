"""The analyst's report: findings rendered as Markdown."""

from __future__ import annotations

from typing import Any

__all__ = ["findings_markdown"]


def _pct(x: float) -> str:
    return f"{x:.0%}"


def findings_markdown(findings: dict[str, Any], *, max_accounts: int = 25) -> str:
    """A Markdown report of ``findings`` (format v1), campaigns first."""
    inp = findings["input"]
    accounts = findings["accounts"]
    extraction = sum(a["verdict"] == "extraction" for a in accounts)
    review = sum(a["verdict"] == "review" for a in accounts)
    lines = [
        "# distillguard findings", "",
        f"Scanned {inp['exchanges']:,} exchanges from {inp['accounts']:,} accounts "
        f"({inp['from']} to {inp['to']}); {inp['quarantined']:,} records quarantined.", "",
        f"**{len(findings['campaigns'])} campaign(s)**, **{extraction} account(s) judged "
        f"extraction**, {review} for review.", "",
    ]
    for c in findings["campaigns"]:
        lines += [f"## Campaign {c['campaign_id']} (score {c['score']:.2f})", ""]
        rules = c.get("reason_rules") or [[] for _ in c["reasons"]]
        lines += [f"- {r}" + (f" (policy: {', '.join(f'`{x}`' for x in ids)})" if ids else "")
                  for r, ids in zip(c["reasons"], rules, strict=True)]
        lines += ["", f"- accounts: {len(c['accounts']):,}; exchanges: {c['exchanges']:,}; "
                  f"first seen {c['first_seen']}, last seen {c['last_seen']}"]
        caps = ", ".join(f"{k} {_pct(v)}" for k, v in list(c["capabilities"].items())[:6])
        lines.append(f"- capabilities targeted: {caps or '-'}")
        lines.append(f"- techniques: {', '.join(c['techniques']) or '-'}")
        for p in c["pivots"]:
            base = p.get("baseline_share_within_24h")
            base_words = f" (everyone else: {_pct(base)})" if base is not None else ""
            lines.append(f"- release of {p['model']} at {p['released_at']}: "
                         f"{_pct(p['share_within_24h'])} of the campaign's next-24-hour traffic "
                         f"went to it{base_words}")
        ind = c["indicators"]
        for key in ("payment_fingerprints", "ips", "asns", "client_fingerprints", "templates"):
            if ind.get(key):
                shown = ", ".join(map(str, ind[key][:8]))
                more = f" (+{len(ind[key]) - 8} more)" if len(ind[key]) > 8 else ""
                lines.append(f"- shared {key.replace('_', ' ')}: {shown}{more}")
        batches = c.get("created_in_batches")
        if batches and batches["accounts_with_creation_time"]:
            lines.append(f"- accounts opened in batches: {batches['created_within_10_min_of_another']:,}"
                         f" of {batches['accounts_with_creation_time']:,} were created within 10 "
                         "minutes of another account of the campaign")
        if c.get("sample_prompts"):
            lines += ["", "Sample requests carrying the campaign's templates:"]
            for prompt in c["sample_prompts"]:
                lines += ["", "> " + prompt.replace("\n", " ")[:300]]
        lines.append("")
    if accounts:
        lines += ["## Accounts", "", "| account | verdict | score | campaign | first reason |",
                  "|---|---|---|---|---|"]
        for a in accounts[:max_accounts]:
            lines.append(f"| {a['account_id']} | {a['verdict']} | {a['score']:.2f} | "
                         f"{a['campaign_id'] or '-'} | {a['reasons'][0]} |")
        if len(accounts) > max_accounts:
            lines.append(f"\n{len(accounts) - max_accounts:,} more accounts in findings.json.")
    return "\n".join(lines) + "\n"
