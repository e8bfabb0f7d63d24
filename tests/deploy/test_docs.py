"""docs/DEPLOY.md's metric table must list exactly what the services export, with their types and labels."""

from __future__ import annotations

import re

from .conftest import REPO

DOC = REPO / "docs" / "DEPLOY.md"
ROW = re.compile(r"^\|\s*`(relayrl_\w+)`\s*\|([^|]*)\|([^|]*)\|([^|]*)\|")


def documented() -> dict[str, tuple[str, set[str], set[str]]]:
    """metric -> (type, services, labels) from the table's rows."""
    rows = {}
    for line in DOC.read_text().splitlines():
        match = ROW.match(line)
        if match:
            name, kind, services, labels = match.groups()
            assert name not in rows, f"{name} documented twice"
            rows[name] = (kind.strip(), {s.strip() for s in services.split(",")}, set(re.findall(r"`(\w+)`", labels)))
    return rows


def test_metric_table_matches_the_registries(metric_families):
    rows = documented()
    expected: dict[str, tuple[str, set[str], set[str]]] = {}
    for service, families in metric_families.items():
        for name, (kind, labels, _help) in families.items():
            _, services, _ = expected.setdefault(name, (kind, set(), labels))
            services.add(service)
    assert set(rows) == set(expected), (f"undocumented: {sorted(set(expected) - set(rows))}, "
                                        f"not exported: {sorted(set(rows) - set(expected))}")
    for name, (kind, services, labels) in expected.items():
        exported = (kind, services, labels)
        assert rows[name] == exported, f"{name}: documented {rows[name]}, exported {exported}"
