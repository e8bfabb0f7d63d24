"""Alerts as code: promtool checks the rules and runs their unit tests (each alert fires on the series that
should fire it and stays quiet on its near misses); every alert has a test, a runbook section in
docs/DEPLOY.md and metrics the learner exports; Compose's Prometheus loads the file, and the Prometheus
Operator's PrometheusRule holds the same groups."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from .conftest import DEPLOY, REPO, debian_prometheus, run, tool
from .kustomize import by_kind

RULES = DEPLOY / "prometheus" / "rules" / "relayrl.yml"
RULES_TEST = Path(__file__).parent / "rules_test.yml"
GENERATOR = DEPLOY / "tools" / "prometheus-rule.py"
DEPLOY_DOC = REPO / "docs" / "DEPLOY.md"


@pytest.fixture(scope="session")
def promtool() -> str:
    return debian_prometheus("promtool")


def alerts() -> dict[str, dict]:
    return {r["alert"]: r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"] if "alert" in r}


def test_promtool_checks_the_rules(promtool):
    result = run([promtool, "check", "rules", str(RULES)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass(promtool):
    result = run([promtool, "test", "rules", str(RULES_TEST)])
    assert result.returncode == 0, result.stdout + result.stderr


def series_labels(series: str) -> dict[str, str]:
    return dict(re.findall(r'(\w+)="([^"]*)"', series))


def test_every_alert_is_tested_firing_and_quiet():
    """Each alert has a case where it fires, and one where it must not: an earlier evaluation, or series
    beside the firing ones (another target or label) that it must leave alone."""
    tests = yaml.safe_load(RULES_TEST.read_text())["tests"]
    for name in alerts():
        cases = [(t, c) for t in tests for c in t["alert_rule_test"] if c["alertname"] == name]
        fired = [a["exp_labels"] for _, c in cases for a in c["exp_alerts"]]
        assert fired, f"{name}: no case where it fires"
        spared = [s for t, _ in cases for s in t["input_series"]
                  if not any(series_labels(s["series"]).items() <= f.items() for f in fired)]
        assert spared or any(not c["exp_alerts"] for _, c in cases), f"{name}: no case where it stays quiet"


def runbook_base() -> str:
    """RUNBOOK_BASE in deploy/deploy.mk: the one place for the runbooks' URL."""
    (base,) = re.findall(r"(?m)^RUNBOOK_BASE \?= (\S+)$", (DEPLOY / "deploy.mk").read_text())
    return base


def test_every_alert_has_a_runbook_url_to_its_section():
    """runbook_url (the annotation Alertmanager templates and kube-prometheus-stack use), a URL: the base set
    in one place, then the alert's section of docs/DEPLOY.md."""
    headings = {re.sub(r"[^a-z0-9-]", "", line.lstrip("#").strip().lower().replace(" ", "-"))
                for line in DEPLOY_DOC.read_text().splitlines() if line.startswith("#")}
    base = runbook_base()
    assert re.fullmatch(r"https?://[^#\s]+/DEPLOY\.md", base), base
    for name, rule in alerts().items():
        assert set(rule["annotations"]) == {"summary", "runbook_url"}, name
        assert rule["annotations"]["runbook_url"] == f"{base}#{name.lower()}", name
        assert name.lower() in headings, f"{name}: docs/DEPLOY.md has no section '### {name}'"
        assert rule["labels"]["severity"] in ("warning", "critical"), name


def test_the_runbook_base_is_set_in_one_place(tmp_path, promtool):
    """`make prometheus-rule RUNBOOK_BASE=...` rewrites every runbook_url of the rules and of their unit tests
    (which still pass) and the PrometheusRule carries them."""
    rules, rules_test = tmp_path / "rules.yml", tmp_path / "rules_test.yml"
    rules.write_text(RULES.read_text())
    rules_test.write_text(RULES_TEST.read_text().replace("../../deploy/prometheus/rules/relayrl.yml", str(rules)))
    base = "https://docs.example.com/ops/relayrl/DEPLOY.md"
    result = run([sys.executable, str(GENERATOR), "--runbook-base", base, "--rules", str(rules),
                  "--rules-test", str(rules_test)])
    assert result.returncode == 0, result.stderr
    generated = yaml.safe_load(result.stdout)
    urls = [r["annotations"]["runbook_url"] for g in generated["spec"]["groups"] for r in g["rules"]]
    assert urls and all(u.startswith(base + "#") for u in urls)
    assert RULES.read_text().count("runbook_url: ") == rules.read_text().count(f"runbook_url: {base}#") == len(alerts())
    assert rules_test.read_text().count(f"runbook_url: {base}#") == RULES_TEST.read_text().count("runbook_url: ")
    result = run([promtool, "test", "rules", str(rules_test)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_alerts_read_metrics_the_learner_exports(exported):
    for name, rule in alerts().items():
        for metric in re.findall(r"\b(relayrl_\w+)", rule["expr"]):
            assert metric in exported["learner"], f"{name}: the learner exports no {metric}"
        assert re.findall(r'job="(\w+)"', rule["expr"]) and set(re.findall(r'job="(\w+)"', rule["expr"])) == {"learner"}


def test_compose_prometheus_loads_the_rules():
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    result = run([tool("docker-compose"), "-f", str(DEPLOY / "compose" / "compose.yaml"), "--profile", "observability",
                  "config", "--format", "json"])
    assert result.returncode == 0, result.stderr
    prometheus = json.loads(result.stdout)["services"]["prometheus"]
    mounts = {m["target"]: Path(m["source"]) for m in prometheus["volumes"] if m["type"] == "bind"}
    config_dir = Path(next(a.split("=", 1)[1] for a in prometheus["command"] if a.startswith("--config.file="))).parent
    for pattern in config["rule_files"]:
        in_container = config_dir / pattern
        sources = [src / in_container.relative_to(target) for target, src in mounts.items()
                   if in_container.is_relative_to(target)]
        assert sources, f"{in_container} is not mounted"
        assert RULES in [p for s in sources for p in s.parent.glob(s.name)], f"{pattern} does not load {RULES}"


def test_the_prometheus_rule_holds_the_same_groups(rendered):
    (rule,) = by_kind(rendered["overlays/monitoring"], "PrometheusRule").values()
    expected = yaml.safe_load(RULES.read_text())["groups"]
    assert rule["spec"]["groups"] == expected, "stale: run `make prometheus-rule`"
    spec = importlib.util.spec_from_file_location("prometheus_rule", GENERATOR)
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    assert generator.prometheus_rule()["spec"] == rule["spec"]


COMPARISON = re.compile(r"(==|>=|<=|>|<)\s*(\d+(?:\.\d+)?)")


def number(value: float) -> str:
    return f"{value:g}"


def duration(minutes: float) -> str:
    """Prometheus' form: whole minutes, else whole seconds (it takes no "2.5m")."""
    return f"{number(minutes)}m" if minutes == int(minutes) else f"{round(minutes * 60)}s"


def minutes(text: str) -> float:
    (amount, unit), = re.findall(r"^(\d+(?:\.\d+)?)([smh])$", text)
    return float(amount) * {"s": 1 / 60, "m": 1, "h": 60}[unit]


def mutants() -> list[tuple[str, str, str]]:
    """(alert, what changed, the rules file with that one change): every threshold moved to each side (half
    and one and a half times it; 0 to -0.5 and 2; `== v` to `>= v` and `<= v + 1`) and every `for:` halved and
    doubled (absent: 5m). The unit tests must fail on each: a case on each side of every threshold and of every
    duration."""
    text = RULES.read_text()
    out = []
    for name, rule in alerts().items():
        expr = rule["expr"]
        for match in COMPARISON.finditer(expr):
            op, value = match.group(1), float(match.group(2))
            if op == "==":
                changed = [f">= {number(value)}", f"<= {number(value + 1)}"]
            elif value == 0:
                changed = [f"{op} -0.5", f"{op} 2"]
            else:
                changed = [f"{op} {number(value / 2)}", f"{op} {number(value * 1.5)}"]
            for change in changed:
                mutated = expr[:match.start()] + change + expr[match.end():]
                out.append((name, f"{match.group(0)} -> {change}", yaml_replace(text, name, "expr", mutated)))
        if "for" in rule:
            for factor in (0.5, 2):
                change = duration(minutes(rule["for"]) * factor)
                out.append((name, f"for: {rule['for']} -> {change}", yaml_replace(text, name, "for", change)))
        else:
            out.append((name, "for: (none) -> 5m", yaml_replace(text, name, "for", "5m")))
    return out


def yaml_replace(text: str, alert: str, key: str, value: str) -> str:
    """The rules file with ``key`` of ``alert`` set to ``value``, through YAML (comments do not matter here)."""
    doc = yaml.safe_load(text)
    for group in doc["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == alert:
                rule[key] = value
    return yaml.safe_dump(doc, sort_keys=False, width=1000)


def test_the_unit_tests_fail_when_a_threshold_or_duration_moves(promtool, tmp_path):
    """Mutation testing of the rules' numbers: thresholds and `for:` durations are what the alerts mean, and a
    unit test that still passes with one of them moved does not pin it."""
    cases = mutants()
    assert len(cases) >= 2 * len(alerts())

    def passes(index: int) -> bool:
        rules, test = tmp_path / f"rules-{index}.yml", tmp_path / f"rules_test-{index}.yml"
        rules.write_text(cases[index][2])
        test.write_text(RULES_TEST.read_text().replace("../../deploy/prometheus/rules/relayrl.yml", str(rules)))
        result = run([promtool, "test", "rules", str(test)])
        # A failing case, not a broken file: promtool prints FAILED with the expected and the got alerts.
        assert result.returncode == 0 or "exp:" in result.stdout + result.stderr, result.stdout + result.stderr
        return result.returncode == 0

    # promtool mostly waits (about 2 s a run here, a fraction of it on the CPU): run them side by side.
    with ThreadPoolExecutor(max_workers=8) as pool:
        passed = list(pool.map(passes, range(len(cases))))
    survivors = [f"{alert}: {change}" for (alert, change, _), ok in zip(cases, passed, strict=True) if ok]
    assert not survivors, "the unit tests still pass with:\n" + "\n".join(survivors)
