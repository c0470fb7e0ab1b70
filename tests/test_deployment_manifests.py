"""The deployment files stay true to the code: docker-compose.yml, deploy/k8s, deploy/prometheus and deploy/grafana.

No Docker engine or cluster is needed: the files are read as data. Every environment variable they set must be a
setting the service reads (and the values must pass its settings class), every metric an alert or a dashboard
panel asks for must be one the services export, with the labels they export, and the Kubernetes Deployments must
have the probes, limits and security context an operator relies on. docs/deployment.md describes the files.
"""

from __future__ import annotations

import copy
import importlib
import importlib.metadata
import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError
from pydantic_settings import BaseSettings

from notify_digest.app import create_app as create_digest_app
from notify_digest.settings import DigestSettings
from notify_ingest.auth import api_key_digest
from notify_ingest.runtime import Runtime as IngestRuntime
from notify_ingest.settings import IngestSettings
from notify_invitations.app import create_app as create_invitations_app
from notify_invitations.settings import InvitationsSettings
from notify_reminders.app import create_app as create_reminders_app
from notify_reminders.settings import RemindersSettings
from notify_responses.settings import ResponsesSettings
from notify_shared.kafka import service_app
from notify_shared.observability import ServiceMetrics
from notify_shared.workers.admin import SupervisorMetrics

REPO = Path(__file__).resolve().parents[1]
COMPOSE = REPO / "docker-compose.yml"
K8S_BASE = REPO / "deploy" / "k8s" / "base"
K8S_OVERLAY = REPO / "deploy" / "k8s" / "overlays" / "example"
PROMETHEUS_CONFIG = REPO / "deploy" / "prometheus" / "prometheus.yml"
ALERTS = REPO / "deploy" / "prometheus" / "alerts.yml"
GRAFANA = REPO / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "notify.json"
POSTGRES_INIT = REPO / "deploy" / "postgres" / "init"

SETTINGS_CLASSES: dict[str, type[BaseSettings]] = {
    "invitations": InvitationsSettings,
    "reminders": RemindersSettings,
    "digest": DigestSettings,
    "ingest": IngestSettings,
    "responses": ResponsesSettings,
}
SERVICES = tuple(SETTINGS_CLASSES)
CONSUMERS = ("invitations", "reminders", "digest")
COMMANDS = {
    **{name: ["faststream", "run", f"notify_{name}.app:create_app", "--factory"] for name in CONSUMERS},
    "ingest": ["notify-ingest"],
    "responses": ["notify-responses"],
}
# The services whose database URL has a prefixed name (the others read DATABASE_URL).
DATABASE_URL_SETTINGS = {"ingest": "INGEST_DATABASE_URL", "responses": "RESPONSES_DATABASE_URL"}
REQUIRED_ALERTS = ("NotifyDeadLetters", "NotifyFailureRateHigh", "NotifyConsumerLagHigh", "NotifyRemindersRunningLate")
NON_ROOT_UID = 10001  # the `notify` user of deploy/docker/Dockerfile
CONTAINER_TMP = "/tmp"  # noqa: S108 - the path inside the container that needs a volume, not a temp file here
# Environment variables read outside the settings classes: the log level (notify_shared.logs), the
# OpenTelemetry SDK's own OTEL_* variables (OTEL_ENABLED itself is a setting), uvicorn's trusted proxies and
# asyncpg's PGSSLROOTCERT.
READ_OUTSIDE_SETTINGS = re.compile(r"LOG_LEVEL|OTEL_[A-Z0-9_]+|FORWARDED_ALLOW_IPS|PGSSLROOTCERT")
# Settings that hold credentials: they come from a Secret, never from a ConfigMap or a literal in a manifest.
SECRET_SETTINGS = re.compile(r"PASSWORD|TOKEN|SECRET|API_KEYS|DATABASE_URL|SASL_USERNAME")

# Labels Prometheus adds to every scraped series, and the series it makes itself for every target.
TARGET_LABELS = frozenset({"job", "instance"})
PROMETHEUS_SERIES = {"up": set(TARGET_LABELS)}


@pytest.fixture(scope="module")
def yaml() -> Any:
    """PyYAML, which reads the manifests; the tests that need it are skipped, with this reason, where it is missing."""
    return pytest.importorskip("yaml", reason="PyYAML reads the deployment manifests: add pyyaml to the dev group")


def load_yaml(yaml: Any, path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def load_yaml_documents(yaml: Any, path: Path) -> list[Any]:
    return [document for document in yaml.safe_load_all(path.read_text(encoding="utf-8")) if document]


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=value lines as kustomize and docker read them: no quoting, `#` starts a comment line."""
    entries: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, separator, value = line.partition("=")
            assert separator, f"{path.name}: not KEY=value: {line!r}"
            entries[key.strip()] = value
    return entries


# --- settings ------------------------------------------------------------------------------------------------------


def environment_names(settings_class: type[BaseSettings]) -> set[str]:
    """The environment variables a settings class reads: its aliases, or its prefixed field names."""
    prefix = str(settings_class.model_config.get("env_prefix", ""))
    names: set[str] = set()
    for name, field in settings_class.model_fields.items():
        alias = field.validation_alias or field.alias
        if alias is None:
            names.add(f"{prefix}{name}".upper())
        elif isinstance(alias, str):
            names.add(alias.upper())
        else:  # AliasChoices
            names.update(str(choice).upper() for choice in getattr(alias, "choices", ()) if isinstance(choice, str))
    return names


def assert_settings_accept(
    monkeypatch: pytest.MonkeyPatch, service: str, environment: Mapping[str, str], where: str
) -> None:
    """Every name is a setting of `service`, and its settings class takes the values."""
    settings_class = SETTINGS_CLASSES[service]
    known = environment_names(settings_class)
    unknown = sorted(name for name in set(environment) - known if not READ_OUTSIDE_SETTINGS.fullmatch(name))
    assert not unknown, f"{where}: {service} has no settings named {unknown}"
    with monkeypatch.context() as patch:
        for name in known:
            patch.delenv(name, raising=False)
        for name, value in environment.items():
            patch.setenv(name, value)
        settings_class()  # raises ValidationError naming the bad variable


# --- metrics -------------------------------------------------------------------------------------------------------


def exposed_series(registry: CollectorRegistry) -> dict[str, set[str]]:
    """Sample name → label names, as /metrics shows them once every labelled metric has a series."""
    # prometheus_client keeps its collectors privately; a labelled metric shows no sample until it has a child.
    collectors: dict[str, Any] = registry._names_to_collectors
    for collector in {id(collector): collector for collector in collectors.values()}.values():
        labelnames = getattr(collector, "_labelnames", ())
        if labelnames:
            collector.labels(*("x" for _ in labelnames))
    series: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            series.setdefault(sample.name, set()).update(sample.labels)
    return series


@pytest.fixture(scope="module")
def exported_metrics() -> dict[str, set[str]]:
    """Every series the four services export, with its labels, read from the apps the services really build."""
    registries: list[CollectorRegistry] = []

    class RecordingMetrics(ServiceMetrics):
        def __init__(self, service: str, registry: CollectorRegistry | None = None) -> None:
            super().__init__(service, registry)
            registries.append(self.registry)

    with pytest.MonkeyPatch.context() as patch:
        # build_service_app makes each consumer's ServiceMetrics; the service's app.py adds its own gauges to it.
        patch.setattr(service_app, "ServiceMetrics", RecordingMetrics)
        create_invitations_app(InvitationsSettings())
        create_reminders_app(RemindersSettings())
        create_digest_app(DigestSettings())
    assert len(registries) == len(CONSUMERS)
    ingest = IngestRuntime(
        IngestSettings(
            api_keys={"nor-0301-bjolsen": api_key_digest("a-test-key-of-enough-length")},
            schools={"nor-0301-bjolsen": {"name": "Bjølsen skole", "sms_sender_id": "Bjolsen"}},
        )
    )
    registries.append(ingest.metrics.registry)
    # With WORKERS above 1 the supervisor adds its own series to the instance's /metrics.
    registries.append(SupervisorMetrics("invitations").registry)

    series: dict[str, set[str]] = {name: set(labels) for name, labels in PROMETHEUS_SERIES.items()}
    for registry in registries:
        for name, labels in exposed_series(registry).items():
            series.setdefault(name, set()).update(labels)
    return series


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_SELECTOR = re.compile(r"(?<![\w:])([A-Za-z_:][\w:]*)?\s*\{([^{}]*)\}")
_MATCHER = re.compile(r'([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"')
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^()]*)\)")
_RANGE = re.compile(r"\[[^\]]*\]")
# A whole identifier (not the tail of a number such as 15m or 1e3) that is not a function call.
_IDENTIFIER = re.compile(r"(?<![\w:.$])([A-Za-z_:][\w:]*)(?![\w:])(?!\s*\()")
_KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "inf", "nan"})
_TEMPLATE_LABEL = re.compile(r"\{\{\s*\$?(?:labels\.)?(\w+)\s*\}\}")


def promql_references(expression: str) -> tuple[dict[str, set[str]], set[str]]:
    """The metrics a PromQL expression selects (with the labels its matchers name) and the labels it groups by."""
    metrics: dict[str, set[str]] = {}

    def selector(match: re.Match[str]) -> str:
        name = match.group(1) or ""
        assert name, f"a selector without a metric name: {match.group(0)}"
        metrics.setdefault(name, set()).update(_MATCHER.findall(match.group(2)))
        return " "

    text = _SELECTOR.sub(selector, expression)
    text = _STRING.sub(" ", text)
    grouping = {label.strip() for labels in _GROUPING.findall(text) for label in labels.split(",") if label.strip()}
    text = _RANGE.sub(" ", _GROUPING.sub(" ", text))
    for name in _IDENTIFIER.findall(text):
        if name not in _KEYWORDS:
            metrics.setdefault(name, set())
    return metrics, grouping


def assert_query_is_answerable(expression: str, exported: Mapping[str, set[str]], where: str) -> set[str]:
    """Every metric exists with every label named; returns the labels a result of the query can carry."""
    metrics, grouping = promql_references(expression)
    assert metrics, f"{where}: no metric in {expression!r}"
    unknown = sorted(set(metrics) - set(exported))
    assert not unknown, f"{where}: no service exports {unknown} (in {expression!r})"
    available = set(TARGET_LABELS).union(*(exported[name] for name in metrics))
    for name, labels in metrics.items():
        missing = sorted(labels - exported[name] - TARGET_LABELS)
        assert not missing, f"{where}: {name} has no labels {missing}"
    missing_grouping = sorted(grouping - available)
    assert not missing_grouping, f"{where}: groups by labels that none of {sorted(metrics)} has: {missing_grouping}"
    return grouping or available


def alert_rules(yaml: Any) -> list[dict[str, Any]]:
    return [rule for group in load_yaml(yaml, ALERTS)["groups"] for rule in group["rules"] if "alert" in rule]


def dashboard_targets() -> Iterator[tuple[str, dict[str, Any]]]:
    def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for panel in items:
            yield panel
            yield from panels(panel.get("panels", []))

    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    for panel in panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            yield panel["title"], target


# --- docker compose ------------------------------------------------------------------------------------------------


def compose_services(yaml: Any) -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = load_yaml(yaml, COMPOSE)["services"]
    return services


def compose_environment(service: Mapping[str, Any]) -> dict[str, str]:
    environment = service.get("environment", {})
    if isinstance(environment, list):  # the KEY=value list form
        return dict(str(entry).partition("=")[::2] for entry in environment)
    return {str(name): str(value) for name, value in environment.items()}


def created_databases() -> set[str]:
    scripts = "\n".join(path.read_text(encoding="utf-8") for path in sorted(POSTGRES_INIT.glob("*.sql")))
    return set(re.findall(r"CREATE DATABASE (\w+)", scripts, flags=re.IGNORECASE))


def test_compose_runs_kafka_postgres_mailpit_the_four_services_prometheus_and_grafana(yaml: Any) -> None:
    services = compose_services(yaml)
    required = {"kafka", "postgres", "mailpit", *SERVICES, "prometheus", "grafana"}
    assert required <= set(services), f"missing from docker-compose.yml: {sorted(required - set(services))}"
    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"


def test_compose_pins_every_image_it_pulls(yaml: Any) -> None:
    expected = {
        "kafka": "apache/kafka",
        "postgres": "postgres",
        "mailpit": "axllent/mailpit",
        "prometheus": "prom/prometheus",
        "grafana": "grafana/grafana",
    }
    services = compose_services(yaml)
    for name, service in services.items():
        image = str(service.get("image", ""))
        repository, _, tag = image.rpartition(":")
        assert repository, f"{name}: no image"
        assert tag not in {"", "latest"}, f"{name}: pin a version, not {image!r}"
        if name in expected:
            assert repository == expected[name], f"{name} should run the {expected[name]} image"
        if name in SERVICES:
            assert service["build"]["dockerfile"] == "deploy/docker/Dockerfile", f"{name}: the one notify image"


def test_compose_starts_each_service_by_its_command_after_its_dependencies_are_healthy(yaml: Any) -> None:
    services = compose_services(yaml)
    for name in SERVICES:
        service = services[name]
        assert service["command"] == COMMANDS[name]
        depends_on = service["depends_on"]
        for dependency in ("kafka", "postgres", *(["mailpit"] if name in CONSUMERS else [])):
            assert depends_on[dependency]["condition"] == "service_healthy", f"{name} must wait for {dependency}"
        healthcheck = " ".join(service["healthcheck"]["test"])
        assert "127.0.0.1:9000/healthz" in healthcheck, f"{name}: the healthcheck asks /healthz on ADMIN_PORT"
        environment = compose_environment(service)
        assert (environment["HTTP_PORT"], environment["ADMIN_PORT"]) == ("8000", "9000"), name


def test_compose_settings_are_settings_the_services_read_and_accept(yaml: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    services = compose_services(yaml)
    for name in SERVICES:
        assert_settings_accept(monkeypatch, name, compose_environment(services[name]), f"docker-compose.yml {name}")


def test_compose_services_send_email_to_mailpit_and_keep_state_in_their_own_postgres_database(yaml: Any) -> None:
    services = compose_services(yaml)
    databases = created_databases()
    for name in SERVICES:
        environment = compose_environment(services[name])
        url = environment[DATABASE_URL_SETTINGS.get(name, "DATABASE_URL")]
        assert url.startswith("postgresql+asyncpg://"), f"{name}: {url}"
        database = url.rsplit("/", 1)[1]
        assert database == name, f"{name} uses the database of another service: {database}"
        assert database in databases, f"{name}: no script in deploy/postgres/init creates database {database}"
        if name in CONSUMERS:
            assert environment["SMTP_HOST"] == "mailpit"
            assert environment["SMTP_PORT"] == "1025"
            assert environment["SMTP_SECURITY"] == "none"
            assert environment["SMS_PROVIDER"] in {"outbox", "webhook"}
    ingest = compose_environment(services["ingest"])
    api_keys = json.loads(ingest["INGEST_API_KEYS"])
    # docs/deployment.md tells the reader to post with this key.
    assert api_keys == {"nor-0301-bjolsen": api_key_digest("local-demo-key-bjolsen")}
    assert set(json.loads(ingest["INGEST_SCHOOLS"])) == set(api_keys)


def test_compose_publishes_the_mailpit_grafana_prometheus_and_ingest_ports(yaml: Any) -> None:
    services = compose_services(yaml)
    for name, port in (("mailpit", "8025"), ("grafana", "3000"), ("prometheus", "9090"), ("ingest", "8000")):
        published = [str(mapping) for mapping in services[name].get("ports", [])]
        assert any(mapping.endswith(f":{port}") for mapping in published), f"{name}: publish container port {port}"


def test_compose_mounts_only_files_that_exist(yaml: Any) -> None:
    for name, service in compose_services(yaml).items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":", 1)[0]
            if source.startswith("./"):
                assert (REPO / source).exists(), f"{name} mounts {source}, which does not exist"


# --- prometheus and grafana ----------------------------------------------------------------------------------------


def test_prometheus_scrapes_the_four_services_and_loads_the_alert_rules(yaml: Any) -> None:
    config = load_yaml(yaml, PROMETHEUS_CONFIG)
    targets = {
        job["job_name"]: [target for static in job.get("static_configs", []) for target in static["targets"]]
        for job in config["scrape_configs"]
    }
    for name in SERVICES:
        # The job is the service name: the alert rules select `up{job="reminders"}`.
        assert targets.get(name) == [f"{name}:9000"], f"scrape {name}:9000 (the admin port) as job {name}"
    for rule_file in config["rule_files"]:
        assert (PROMETHEUS_CONFIG.parent / rule_file).is_file()
    assert "alerts.yml" in config["rule_files"]


def test_the_four_required_alerts_exist_each_with_a_summary(yaml: Any) -> None:
    rules = alert_rules(yaml)
    names = [rule["alert"] for rule in rules]
    assert set(REQUIRED_ALERTS) <= set(names), f"missing alerts: {sorted(set(REQUIRED_ALERTS) - set(names))}"
    assert len(names) == len(set(names)), "alert names must be unique"
    for rule in rules:
        assert rule.get("annotations", {}).get("summary"), f"{rule['alert']} needs a summary annotation"
        assert rule.get("labels", {}).get("severity") in {"warning", "critical"}, f"{rule['alert']}: severity"


def test_alert_rules_ask_only_for_metrics_and_labels_the_services_export(
    yaml: Any, exported_metrics: dict[str, set[str]]
) -> None:
    for rule in alert_rules(yaml):
        result_labels = assert_query_is_answerable(rule["expr"], exported_metrics, rule["alert"])
        result_labels |= set(rule.get("labels", {}))
        for text in rule.get("annotations", {}).values():
            used = set(_TEMPLATE_LABEL.findall(text)) - {"value"}
            assert used <= result_labels, f"{rule['alert']}: annotations use labels {sorted(used - result_labels)}"


def test_dashboard_queries_ask_only_for_metrics_and_labels_the_services_export(
    exported_metrics: dict[str, set[str]],
) -> None:
    targets = list(dashboard_targets())
    assert targets
    for title, target in targets:
        result_labels = assert_query_is_answerable(target["expr"], exported_metrics, f"panel {title!r}")
        legend_labels = set(_TEMPLATE_LABEL.findall(target.get("legendFormat", "")))
        assert legend_labels <= result_labels, f"panel {title!r}: legend uses {sorted(legend_labels - result_labels)}"


def test_dashboard_shows_events_notifications_latency_retries_dead_letters_lag_and_pending_work() -> None:
    queries = [target["expr"] for _, target in dashboard_targets()]
    shown = set().union(*(promql_references(query)[0] for query in queries))
    wanted = {
        "faststream_received_messages_total",  # events consumed
        "notify_notifications_total",  # notifications by channel and status
        "notify_delivery_latency_seconds_bucket",
        "notify_delivery_retries_total",
        "notify_dead_letters_total",
        "notify_consumer_lag",
        "notify_reminders_pending",
        "notify_digest_items_pending",
    }
    assert wanted <= shown, f"the dashboard does not show {sorted(wanted - shown)}"
    latency = [query for query in queries if "notify_delivery_latency_seconds_bucket" in query]
    for quantile in ("0.5", "0.95", "0.99"):
        assert any(f"histogram_quantile({quantile}," in query for query in latency), f"latency quantile {quantile}"
    notifications = [query for query in queries if "notify_notifications_total" in query]
    assert any({"channel", "status"} <= promql_references(query)[1] for query in notifications)


def test_grafana_provisions_the_prometheus_datasource_the_dashboard_uses_and_loads_the_dashboard(
    yaml: Any,
) -> None:
    datasources = load_yaml(yaml, GRAFANA / "provisioning" / "datasources" / "prometheus.yml")["datasources"]
    uids = {source["uid"] for source in datasources if source["type"] == "prometheus"}
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    used = {panel["datasource"]["uid"] for panel in dashboard["panels"] if "datasource" in panel}
    assert used
    assert used <= uids
    providers = load_yaml(yaml, GRAFANA / "provisioning" / "dashboards" / "notify.yml")["providers"]
    mounts = [str(volume) for volume in compose_services(yaml)["grafana"]["volumes"]]
    for provider in providers:
        assert f"./deploy/grafana/dashboards:{provider['options']['path']}:ro" in mounts


# --- kubernetes ----------------------------------------------------------------------------------------------------


def kustomization(yaml: Any, root: Path) -> dict[str, Any]:
    spec: dict[str, Any] = load_yaml(yaml, root / "kustomization.yaml")
    return spec


def generator_files(spec: Mapping[str, Any]) -> Iterator[str]:
    for generator in [*spec.get("configMapGenerator", []), *spec.get("secretGenerator", [])]:
        yield from generator.get("envs", [])
        yield from (entry.rpartition("=")[2] for entry in generator.get("files", []))


def generated_data(yaml: Any, root: Path) -> dict[str, dict[str, str]]:
    """Name → data of every generated ConfigMap and Secret, bases first, then this kustomization's merges."""
    spec = kustomization(yaml, root)
    data: dict[str, dict[str, str]] = {}
    for resource in spec.get("resources", []):
        if (root / resource).is_dir():
            data.update(generated_data(yaml, (root / resource).resolve()))
    for generator in [*spec.get("configMapGenerator", []), *spec.get("secretGenerator", [])]:
        values: dict[str, str] = {}
        for env_file in generator.get("envs", []):
            values.update(read_env_file(root / env_file))
        for literal in generator.get("literals", []):
            key, _, value = str(literal).partition("=")
            values[key] = value
        for entry in generator.get("files", []):
            key, _, path = str(entry).rpartition("=")
            values[key or Path(path).name] = (root / path).read_text(encoding="utf-8")
        if generator.get("behavior") == "merge":
            values = {**data[generator["name"]], **values}
        data[generator["name"]] = values
    return data


def apply_json_patch(document: dict[str, Any], operations: list[dict[str, Any]]) -> None:
    """The `add` operations of RFC 6902, which is all the overlays use."""
    for operation in operations:
        assert operation["op"] == "add", f"teach this test the {operation['op']} operation"
        *parents, last = [part.replace("~1", "/").replace("~0", "~") for part in operation["path"].split("/")[1:]]
        node: Any = document
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node.insert(len(node) if last == "-" else int(last), copy.deepcopy(operation["value"]))
        else:
            node[last] = copy.deepcopy(operation["value"])


def selected(document: Mapping[str, Any], target: Mapping[str, Any]) -> bool:
    if target.get("kind") not in (None, document["kind"]) or target.get("name") not in (
        None,
        document["metadata"]["name"],
    ):
        return False
    labels = document["metadata"].get("labels", {})
    for requirement in filter(None, str(target.get("labelSelector", "")).split(",")):
        key, _, value = requirement.partition("=")
        if labels.get(key.strip()) != value.strip():
            return False
    return True


def kustomized_documents(yaml: Any, root: Path) -> list[dict[str, Any]]:
    """The resources of a kustomization with its bases, common labels and patches applied (not the generators)."""
    spec = kustomization(yaml, root)
    documents: list[dict[str, Any]] = []
    for resource in spec.get("resources", []):
        path = (root / resource).resolve()
        documents += kustomized_documents(yaml, path) if path.is_dir() else load_yaml_documents(yaml, path)
    for label in spec.get("labels", []):
        for document in documents:
            document["metadata"].setdefault("labels", {}).update(label["pairs"])
            if label.get("includeTemplates") and "template" in document.get("spec", {}):
                document["spec"]["template"]["metadata"].setdefault("labels", {}).update(label["pairs"])
    for patch in spec.get("patches", []):
        operations = load_yaml(yaml, root / patch["path"])
        assert isinstance(operations, list), f"{patch['path']}: this test knows JSON patches only"
        matched = [document for document in documents if selected(document, patch["target"])]
        assert matched, f"{patch['path']} patches nothing"
        for document in matched:
            apply_json_patch(document, operations)
    return documents


def deployments(yaml: Any, root: Path) -> dict[str, dict[str, Any]]:
    """Deployment by service name (app.kubernetes.io/name)."""
    return {
        document["metadata"]["labels"]["app.kubernetes.io/name"]: document
        for document in kustomized_documents(yaml, root)
        if document["kind"] == "Deployment"
    }


def container_environment(
    container: Mapping[str, Any], data: Mapping[str, Mapping[str, str]]
) -> tuple[dict[str, str], dict[str, str]]:
    """The container's environment with values resolved from the generated data, and where each name came from."""
    environment: dict[str, str] = {}
    sources: dict[str, str] = {}
    for source in container.get("envFrom", []):
        kind = "configMap" if "configMapRef" in source else "secret"
        name = source.get("configMapRef", source.get("secretRef"))["name"]
        for key, value in data[name].items():
            environment[key], sources[key] = value, kind
    for variable in container.get("env", []):
        reference = variable.get("valueFrom", {})
        if "value" in variable:
            environment[variable["name"]], sources[variable["name"]] = str(variable["value"]), "literal"
        elif "secretKeyRef" in reference:
            key_ref = reference["secretKeyRef"]
            environment[variable["name"]] = data[key_ref["name"]][key_ref["key"]]
            sources[variable["name"]] = "secret"
        elif "configMapKeyRef" in reference:
            key_ref = reference["configMapKeyRef"]
            if key_ref["key"] not in data[key_ref["name"]]:
                # A required key the ConfigMap lacks: the pod would not start until an overlay adds it.
                sources[variable["name"]] = "missing"
                continue
            environment[variable["name"]] = data[key_ref["name"]][key_ref["key"]]
            sources[variable["name"]] = "configMap"
        elif "fieldRef" in reference:
            environment[variable["name"]], sources[variable["name"]] = "notify-pod-0", "fieldRef"
    return environment, sources


K8S_ROOTS = pytest.mark.parametrize("root", [K8S_BASE, K8S_OVERLAY], ids=["base", "overlays/example"])


@K8S_ROOTS
def test_each_kustomization_lists_every_file_in_its_directory(yaml: Any, root: Path) -> None:
    spec = kustomization(yaml, root)
    listed = {"kustomization.yaml"}
    listed |= {resource for resource in spec.get("resources", []) if not (root / resource).is_dir()}
    listed |= {patch["path"] for patch in spec.get("patches", [])}
    listed |= set(generator_files(spec))
    present = {path.name for path in root.iterdir() if path.is_file()}
    assert present == listed, f"unlisted: {sorted(present - listed)}; missing: {sorted(listed - present)}"


@K8S_ROOTS
def test_there_is_one_deployment_and_one_service_per_notify_service(yaml: Any, root: Path) -> None:
    documents = kustomized_documents(yaml, root)
    assert set(deployments(yaml, root)) == set(SERVICES)
    services = [document for document in documents if document["kind"] == "Service"]
    for name, deployment in deployments(yaml, root).items():
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
        matching = [service for service in services if service["spec"]["selector"].items() <= pod_labels.items()]
        assert len(matching) == 1, f"{name}: one Service for its HTTP port"
        # The public port only: the Service is what an Ingress points at, and /metrics is not for it.
        assert [port["targetPort"] for port in matching[0]["spec"]["ports"]] == ["http"]


@K8S_ROOTS
def test_every_deployment_has_probes_limits_and_runs_as_non_root_on_a_read_only_root(yaml: Any, root: Path) -> None:
    for name, deployment in deployments(yaml, root).items():
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["command"] == COMMANDS[name]
        assert {port["name"]: port["containerPort"] for port in container["ports"]} == {"http": 8000, "admin": 9000}
        assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "admin"}, name
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "admin"}, name
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "admin"}, name
        assert {"cpu", "memory"} <= set(container["resources"]["limits"]), f"{name}: cpu and memory limits"
        assert {"cpu", "memory"} <= set(container["resources"]["requests"]), f"{name}: cpu and memory requests"
        security = pod.get("securityContext", {}) | container.get("securityContext", {})
        assert security["runAsNonRoot"] is True, name
        assert security["runAsUser"] == NON_ROOT_UID, name
        assert security["readOnlyRootFilesystem"] is True, name
        assert security["allowPrivilegeEscalation"] is False, name
        assert security["capabilities"]["drop"] == ["ALL"], name
        volumes = {volume["name"]: volume for volume in pod["volumes"]}
        mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
        assert set(mounts.values()) <= set(volumes), f"{name} mounts a volume it does not declare"
        assert "emptyDir" in volumes[mounts[CONTAINER_TMP]], f"{name}: a writable /tmp on the read-only root"


@K8S_ROOTS
def test_prometheus_scrapes_every_pod_on_its_admin_port(yaml: Any, root: Path) -> None:
    for name, deployment in deployments(yaml, root).items():
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true", name
        assert annotations["prometheus.io/port"] == "9000", name
        assert annotations["prometheus.io/path"] == "/metrics", name


@K8S_ROOTS
def test_a_network_policy_lets_only_the_ingress_reach_the_public_port_and_only_prometheus_the_admin_port(
    yaml: Any, root: Path
) -> None:
    documents = kustomized_documents(yaml, root)
    (policy,) = [document for document in documents if document["kind"] == "NetworkPolicy"]
    spec = policy["spec"]
    assert spec["policyTypes"] == ["Ingress"]
    for name, deployment in deployments(yaml, root).items():
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert spec["podSelector"]["matchLabels"].items() <= pod_labels.items(), f"{name} is not covered"
    rules = {tuple(port["port"] for port in rule["ports"]): rule["from"] for rule in spec["ingress"]}
    assert set(rules) == {("http",), ("admin",)}, "one rule per port, and no rule open to every port"
    for port, allowed in ((("http",), "ingress-nginx"), (("admin",), "prometheus")):
        (peer,) = rules[port]
        # Both selectors in one peer: pods with that name in that namespace, not any pod of the namespace.
        assert set(peer) == {"namespaceSelector", "podSelector"}, port
        assert peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == allowed, port


def test_the_base_requires_an_overlay_to_choose_the_sms_provider(yaml: Any) -> None:
    base_delivery = generated_data(yaml, K8S_BASE)["notify-delivery"]
    overlay_delivery = generated_data(yaml, K8S_OVERLAY)["notify-delivery"]
    assert "SMS_PROVIDER" not in base_delivery
    assert overlay_delivery["SMS_PROVIDER"] in {"webhook", "twilio"}
    for root in (K8S_BASE, K8S_OVERLAY):
        for name in CONSUMERS:
            (container,) = deployments(yaml, root)[name]["spec"]["template"]["spec"]["containers"]
            (variable,) = [variable for variable in container["env"] if variable["name"] == "SMS_PROVIDER"]
            reference = variable["valueFrom"]["configMapKeyRef"]
            # Not optional: a pod whose ConfigMap lacks the key does not start (CreateContainerConfigError).
            assert reference == {"name": "notify-delivery", "key": "SMS_PROVIDER"}, name


def mount_secret_files(
    pod: Mapping[str, Any], environment: dict[str, str], data: Mapping[str, Mapping[str, str]], directory: Path
) -> None:
    """Point settings that name a file on a mounted Secret (e.g. KAFKA_SSL_CAFILE) at a copy of it in `directory`:
    the settings classes check that such a file exists."""
    secrets = {volume["name"]: volume["secret"]["secretName"] for volume in pod["volumes"] if "secret" in volume}
    for mount in pod["containers"][0].get("volumeMounts", []):
        if mount["name"] not in secrets:
            continue
        for key, value in environment.items():
            if value.startswith(mount["mountPath"] + "/"):
                file_name = value.removeprefix(mount["mountPath"] + "/")
                copy_path = directory / mount["name"] / file_name
                copy_path.parent.mkdir(parents=True, exist_ok=True)
                copy_path.write_text(data[secrets[mount["name"]]][file_name], encoding="utf-8")
                environment[key] = str(copy_path)


@K8S_ROOTS
def test_k8s_settings_are_settings_the_services_read_and_accept(
    yaml: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, root: Path
) -> None:
    data = generated_data(yaml, root)
    for name, deployment in deployments(yaml, root).items():
        pod = deployment["spec"]["template"]["spec"]
        environment, _ = container_environment(pod["containers"][0], data)
        mount_secret_files(pod, environment, data, tmp_path / name)
        where = f"{root.relative_to(REPO)} {name}"
        if name == "ingest":
            environment["INGEST_API_KEYS"] = replaced_placeholder_keys(monkeypatch, environment, where)
        assert_settings_accept(monkeypatch, name, environment, where)


def replaced_placeholder_keys(monkeypatch: pytest.MonkeyPatch, environment: Mapping[str, str], where: str) -> str:
    """The example's API keys are placeholders the ingest must refuse; the same schools with real key digests,
    as an operator fills them in."""
    with monkeypatch.context() as patch:
        for name, value in environment.items():
            patch.setenv(name, value)
        with pytest.raises(ValidationError, match="example placeholder"):
            IngestSettings()
    schools = json.loads(environment["INGEST_API_KEYS"])
    assert schools, f"{where}: INGEST_API_KEYS names no school"
    return json.dumps({school: api_key_digest(f"the-real-key-of-{school}") for school in schools})


@K8S_ROOTS
def test_passwords_keys_and_database_urls_come_from_secrets(yaml: Any, root: Path) -> None:
    data = generated_data(yaml, root)
    for name, deployment in deployments(yaml, root).items():
        _, sources = container_environment(deployment["spec"]["template"]["spec"]["containers"][0], data)
        leaked = sorted(key for key, source in sources.items() if SECRET_SETTINGS.search(key) and source != "secret")
        assert not leaked, f"{name}: {leaked} must come from a Secret"


@K8S_ROOTS
def test_replicated_services_use_postgresql(yaml: Any, root: Path) -> None:
    data = generated_data(yaml, root)
    for name, deployment in deployments(yaml, root).items():
        environment, _ = container_environment(deployment["spec"]["template"]["spec"]["containers"][0], data)
        url = environment[DATABASE_URL_SETTINGS.get(name, "DATABASE_URL")]
        if deployment["spec"].get("replicas", 1) > 1 or int(environment.get("WORKERS", "1")) > 1:
            assert url.startswith("postgresql+asyncpg://"), f"{name}: several processes need PostgreSQL, not {url}"


@K8S_ROOTS
def test_every_postgresql_url_asks_for_verified_tls(yaml: Any, root: Path) -> None:
    data = generated_data(yaml, root)
    for name, deployment in deployments(yaml, root).items():
        environment, _ = container_environment(deployment["spec"]["template"]["spec"]["containers"][0], data)
        url = environment[DATABASE_URL_SETTINGS.get(name, "DATABASE_URL")]
        assert url.endswith("?ssl=verify-full"), f"{name}: {url.split('@')[-1]}"


def test_the_example_overlay_gives_every_process_the_ca_that_verifies_postgresql(yaml: Any) -> None:
    data = generated_data(yaml, K8S_OVERLAY)
    for name, deployment in deployments(yaml, K8S_OVERLAY).items():
        pod = deployment["spec"]["template"]["spec"]
        environment, _ = container_environment(pod["containers"][0], data)
        secrets = {volume["name"]: volume["secret"]["secretName"] for volume in pod["volumes"] if "secret" in volume}
        mounts = {
            mount["mountPath"]: secrets[mount["name"]]
            for mount in pod["containers"][0]["volumeMounts"]
            if mount["name"] in secrets
        }
        directory, _, file_name = environment["PGSSLROOTCERT"].rpartition("/")
        assert file_name in data[mounts[directory]], f"{name}: PGSSLROOTCERT is not a file of a mounted Secret"


def test_the_example_overlay_sets_the_image_and_talks_sasl_ssl_to_kafka_and_tls_to_smtp(yaml: Any) -> None:
    spec = kustomization(yaml, K8S_OVERLAY)
    assert any(image["name"] == "notify" and image.get("newName") and image.get("newTag") for image in spec["images"])
    data = generated_data(yaml, K8S_OVERLAY)
    for name, deployment in deployments(yaml, K8S_OVERLAY).items():
        pod = deployment["spec"]["template"]["spec"]
        environment, sources = container_environment(pod["containers"][0], data)
        assert environment["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL", name
        assert environment["KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512", name
        assert sources["KAFKA_SASL_USERNAME"] == sources["KAFKA_SASL_PASSWORD"] == "secret", name
        # The CA bundle is a file from a Secret volume, where KAFKA_SSL_CAFILE points.
        secret_volumes = {volume["name"] for volume in pod["volumes"] if "secret" in volume}
        ca_mounts = [
            mount
            for mount in pod["containers"][0]["volumeMounts"]
            if mount["name"] in secret_volumes and environment["KAFKA_SSL_CAFILE"].startswith(mount["mountPath"] + "/")
        ]
        assert ca_mounts, f"{name}: KAFKA_SSL_CAFILE is not on a mounted Secret"
        if name in CONSUMERS:
            assert environment["SMTP_SECURITY"] in {"tls", "starttls"}, name


def test_every_command_the_manifests_run_is_a_real_entry_point_of_the_project() -> None:
    scripts = {entry.name: entry for entry in importlib.metadata.entry_points(group="console_scripts")}
    for name, command in COMMANDS.items():
        program, *arguments = command
        assert program in scripts, f"{name}: {program} is not an installed console script"
        scripts[program].load()  # the function it names exists
        if program == "faststream":
            module_name, _, attribute = arguments[1].partition(":")
            factory = getattr(importlib.import_module(module_name), attribute)
            assert callable(factory), f"{name}: {arguments[1]} is not a factory"
