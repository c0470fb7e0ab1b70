"""The figures of a run judged against the issue's targets and printed as tables."""

from __future__ import annotations

import math
from typing import Any

from pipeline_events import CHANNELS
from pipeline_phases import Options
from rich.console import Console
from rich.table import Table

# --------------------------------------------------------------------------------------------- ratios, targets


def run_label(run: dict[str, Any]) -> str:
    """N, and the worker processes per instance when more than one (runs of one N side by side)."""
    workers = run.get("workers", 1)
    return f"{run['events']:,}" + (f" · {workers} workers" if workers > 1 else "")


def judge(results: dict[str, Any], options: Options) -> dict[str, Any]:
    """The issue's ratios and targets, per N, from the figures of this run."""
    per_notification = options.guardians * len(CHANNELS)
    email_share = sms_share = 1 / len(CHANNELS)
    verdicts: dict[str, Any] = {"sizes": {}}
    ceilings = results.get("sink_ceilings", {})
    smtp_rate = ceilings.get("smtp", {}).get("messages_per_second")
    sms_rate = ceilings.get("sms", {}).get("messages_per_second")
    naive_rate = ceilings.get("naive", {}).get("prerendered", {}).get("emails_per_second")
    for run in results["runs"]:
        pipeline = run.get("pipeline", {})
        rate = pipeline.get("notifications_per_second")
        if not rate:
            continue
        # Every ceiling in notifications/s of this mix (half email, half SMS): what that part alone would allow.
        candidates = {}
        kafka = run.get("kafka_ceiling", {}).get("events_per_second")
        if kafka:
            candidates["kafka (events/s × notifications per event)"] = kafka * per_notification
        if smtp_rate:
            candidates["smtp sink (emails/s ÷ email share)"] = smtp_rate / email_share
        if sms_rate:
            candidates["sms sink (SMS/s ÷ SMS share)"] = sms_rate / sms_share
        verdict: dict[str, Any] = {"notifications_per_second": rate, "ceilings_notifications_per_second": candidates}
        if candidates:
            lower_name = min(candidates, key=lambda name: candidates[name])
            verdict |= {
                "lower_ceiling": lower_name,
                "pipeline_over_lower_ceiling": rate / candidates[lower_name],
                "target_0_7_of_lower_ceiling_met": rate >= 0.7 * candidates[lower_name],
            }
        email_rate = pipeline.get("per_channel_per_second", {}).get("email")
        if naive_rate and email_rate:
            verdict |= {
                "pipeline_emails_over_naive_emails": email_rate / naive_rate,
                "pipeline_notifications_over_naive_emails": rate / naive_rate,
                "target_5x_naive_met_emails": email_rate >= 5 * naive_rate,
                "target_5x_naive_met_notifications": rate >= 5 * naive_rate,
            }
        verdicts["sizes"][run_label(run)] = verdict
    # Memory against N, for one worker process per instance (several workers' peaks add up).
    rss = {
        run_label(run): max((service.get("peak_rss_mib", 0.0) for service in run.get("services", [])), default=0.0)
        for run in results["runs"]
        if run.get("workers", 1) == 1
    }
    verdicts["peak_rss_mib_by_n"] = rss
    if len(rss) >= 2:
        values = list(rss.values())
        verdicts["memory_growth_mib_smallest_to_largest_n"] = values[-1] - values[0]
        verdicts["target_memory_flat_met"] = values[-1] <= values[0] * 1.10
    latency = results.get("paced", {}).get("pipeline", {}).get("latency_ms", {}).get("all", {})
    if latency:
        verdicts["paced_p99_ms"] = latency["p99"]
        verdicts["target_p99_below_500_ms_met"] = latency["p99"] < 500
    return verdicts


# --------------------------------------------------------------------------------------------------- output


def _fmt(value: Any, spec: str = ",.0f", unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:{spec}}{unit}"


def _met(flag: Any) -> str:
    return "–" if flag is None else ("[green]met[/]" if flag else "[red]not met[/]")


def print_summary(results: dict[str, Any]) -> None:
    out = Console(width=140)
    print_runs(out, results)
    if results.get("sink_ceilings"):
        print_ceilings(out, results["sink_ceilings"])
    if results.get("paced", {}).get("pipeline", {}).get("latency_ms"):
        print_paced(out, results["paced"])
    if any("lower_ceiling" in verdict for verdict in results.get("targets", {}).get("sizes", {}).values()):
        print_targets(out, results["targets"])
    for run in results["runs"]:
        if "own_by_component" in run.get("profile", {}):
            print_profile(out, run["events"], run["profile"])


def print_runs(out: Console, results: dict[str, Any]) -> None:
    options = results["options"]
    per_event = options["guardians"] * len(CHANNELS)
    runs = results["runs"]
    table = Table(
        title=f"pipeline benchmark — invitations service, {results['machine']['cpus']} CPUs, "
        f"{options['guardians']} guardians × email+SMS = {per_event} notifications per event"
    )
    table.add_column("figure")
    for run in runs:
        table.add_column(f"N = {run_label(run)}", justify="right")

    def row(label: str, cell: Any) -> None:
        table.add_row(label, *(cell(run) for run in runs))

    def kafka(run: dict[str, Any]) -> str:
        rate = run.get("kafka_ceiling", {}).get("events_per_second")
        return f"{_fmt(rate)} (≙ {_fmt(rate * per_event)})" if rate else "–"

    def cpu(service: dict[str, Any]) -> str:
        return f"{_fmt(service.get('cpu_seconds_until_ready'), '.1f')} + {_fmt(service.get('cpu_seconds_after_ready'))}"

    row(
        "load average: at start · mean during drain",
        lambda run: (
            f"{run['load_average_at_start'][0]:.2f} · "
            f"{_fmt(run['wait'].get('load_average_during', {}).get('mean'), '.2f')}"
        ),
    )
    row(
        "CPU calibration loop at start (lower = faster)",
        lambda run: _fmt(run.get("calibration_ms_at_start"), ".0f", " ms"),
    )
    row("database · instances", lambda run: f"{run.get('database', '?')} · {len(run.get('services', []))}")
    row("accepted / expected", lambda run: f"{run['pipeline']['accepted']:,} / {run['wait']['expected']:,}")
    row("outcome", lambda run: run["wait"]["outcome"])
    row(
        "[bold]pipeline notifications/s[/] (first→last acceptance)",
        lambda run: f"[bold]{_fmt(run['pipeline'].get('notifications_per_second'))}[/]",
    )
    row(
        "  emails/s · SMS/s",
        lambda run: " · ".join(
            _fmt(run["pipeline"].get("per_channel_per_second", {}).get(channel.value)) for channel in CHANNELS
        ),
    )
    row("  events/s", lambda run: _fmt(run["pipeline"].get("notifications_per_second", 0) / per_event, ",.1f"))
    row("  first→last acceptance", lambda run: _fmt(run["pipeline"].get("first_to_last_seconds"), ",.1f", " s"))
    row(
        "duplicates · missing · unexpected",
        lambda run: "{duplicates} · {missing} · {unexpected}".format(**run["pipeline"]),
    )
    row("ledger", lambda run: ", ".join(f"{key} {value:,}" for key, value in sorted(run.get("ledger", {}).items())))
    row("Kafka ceiling events/s (≙ notifications/s)", kafka)
    row("service CPU s (start-up + drain)", lambda run: " | ".join(cpu(service) for service in run["services"]))
    row(
        "CPU ms per notification: service · sinks · broker",
        lambda run: " · ".join(
            _fmt(run["cost"].get(f"{name}_cpu_ms_per_notification"), ".2f") for name in ("service", "sinks", "broker")
        ),
    )
    row(
        "[bold]service peak RSS[/] (VmHWM)",
        lambda run: " | ".join(_fmt(service.get("peak_rss_mib"), ".0f", " MiB") for service in run["services"]),
    )
    row(
        "sinks peak RSS · broker RSS",
        lambda run: (
            f"{_fmt(run['sinks_process'].get('peak_rss_mib'), '.0f', ' MiB')} · "
            f"{_fmt(run.get('broker_process', {}).get('rss_mib'), '.0f', ' MiB')}"
        ),
    )
    if any(run.get("workers", 1) > 1 for run in runs):
        row(
            "sent per worker process (its /metrics)",
            lambda run: " | ".join(
                " · ".join(f"{sent:,}" for sent in metrics.get("sent_by_worker", {}).values())
                for metrics in run.get("service_metrics", [])
            ),
        )
    if any(len(run.get("services", [])) > 1 or run.get("workers", 1) > 1 for run in runs):
        row(
            "sent per instance (its /metrics)",
            lambda run: " | ".join(f"{metrics.get('sent', 0):,}" for metrics in run.get("service_metrics", [])),
        )
        row("meeting.created partitions per member", lambda run: str(run.get("group", {}).get("partitions_of_topic")))
    out.print(table)


def print_ceilings(out: Console, ceilings: dict[str, Any]) -> None:
    table = Table(title="ceilings and the naive peer (messages/s of one channel)")
    table.add_column("reference")
    table.add_column("rate", justify="right")
    table.add_column("detail")
    smtp, sms, naive = ceilings["smtp"], ceilings["sms"], ceilings["naive"]
    sink_cpu = {name: ceilings[name]["sink_process"].get("cpu_ms_per_message") for name in ("smtp", "sms")}
    table.add_row(
        f"SMTP sink blasted ({smtp['connections']} aiosmtplib sessions)",
        f"{smtp['messages_per_second']:,.0f} emails/s",
        f"{smtp['email_bytes']:,} B emails; sink CPU {_fmt(sink_cpu['smtp'], '.2f')} ms each",
    )
    table.add_row(
        f"SMS sink blasted ({sms['concurrency']} httpx requests in flight)",
        f"{sms['messages_per_second']:,.0f} SMS/s",
        f"sink CPU {_fmt(sink_cpu['sms'], '.2f')} ms each; "
        f"client CPU {1000 * sms['process']['cpu_seconds'] / max(sms['sent'], 1):.2f} ms each",
    )
    table.add_row(
        "naive peer: smtplib, new connection per email",
        f"{naive['prerendered']['emails_per_second']:,.0f} emails/s",
        f"{naive['prerendered']['ms_per_email']:.2f} ms per email, pre-rendered",
    )
    table.add_row(
        "  … rendering each email first",
        f"{naive['rendering_each']['emails_per_second']:,.0f} emails/s",
        f"{naive['rendering_each']['ms_per_email']:.2f} ms per email",
    )
    out.print(table)


def print_paced(out: Console, pace: dict[str, Any]) -> None:
    table = Table(
        title=f"paced: {pace['notifications_per_second']:,.0f} notifications/s ({pace['events_per_second']:.2f} "
        f"events/s) for {pace['events']:,} events — latency = acceptance − event time"
    )
    table.add_column("channel")
    for name in ("count", "p50", "p95", "p99", "max"):
        table.add_column(name, justify="right")
    for name, figures in pace["pipeline"]["latency_ms"].items():
        if figures:
            quantiles = (f"{figures[key]:,.0f} ms" for key in ("p50", "p95", "p99", "max"))
            table.add_row(name, f"{figures['count']:,}", *quantiles)
    out.print(table)


def print_targets(out: Console, verdicts: dict[str, Any]) -> None:
    table = Table(title="the issue's targets")
    table.add_column("N")
    table.add_column("pipeline / lower ceiling (≥ 0.7)")
    table.add_column("pipeline / naive (≥ 5×): emails/s · notifications/s")
    for size, verdict in verdicts["sizes"].items():
        table.add_row(
            size,
            f"{_fmt(verdict.get('pipeline_over_lower_ceiling'), '.3f')} of {verdict.get('lower_ceiling', '–')} "
            f"{_met(verdict.get('target_0_7_of_lower_ceiling_met'))}",
            f"{_fmt(verdict.get('pipeline_emails_over_naive_emails'), '.3f', '×')} "
            f"{_met(verdict.get('target_5x_naive_met_emails'))} · "
            f"{_fmt(verdict.get('pipeline_notifications_over_naive_emails'), '.3f', '×')} "
            f"{_met(verdict.get('target_5x_naive_met_notifications'))}",
        )
    out.print(table)
    if "paced_p99_ms" in verdicts:
        met = _met(verdicts["target_p99_below_500_ms_met"])
        out.print(f"p99 latency at the paced rate: {verdicts['paced_p99_ms']:,.0f} ms (< 500 ms: {met})")
    if "target_memory_flat_met" in verdicts:
        met = _met(verdicts["target_memory_flat_met"])
        out.print(f"service peak RSS by N: {verdicts['peak_rss_mib_by_n']} (flat within 10 %: {met})")


def print_profile(out: Console, events: int, profile: dict[str, Any]) -> None:
    split = ", ".join(f"{name} {count:,}" for name, count in profile.get("samples_by_thread", {}).items())
    table = Table(
        title=f"py-spy profile of the service, N = {events:,}: {profile['samples']:,} samples ({split}); "
        "shares of the main thread's busy samples"
    )
    table.add_column("own time by component")
    table.add_column("share", justify="right")
    table.add_column("inclusive time by function")
    table.add_column("share", justify="right")
    components, frames = profile["own_by_component"][:15], profile["inclusive_by_frame"][:15]
    for index in range(max(len(components), len(frames))):
        left = components[index] if index < len(components) else None
        right = frames[index] if index < len(frames) else None
        table.add_row(
            left["name"] if left else "",
            f"{left['share']:.1%}" if left else "",
            right["name"] if right else "",
            f"{right['share']:.1%}" if right else "",
        )
    out.print(table)


DEFINITIONS = {
    "notifications_per_second": "notifications (emails + SMS) accepted by the sinks, divided by the time from the "
    "first acceptance to the last",
    "kafka_ceiling.events_per_second": "events read by a plain aiokafka consumer doing no work, first record to last; "
    "× notifications per event gives the notification-equivalent",
    "sink_ceilings.*.messages_per_second": "messages of that one channel accepted per second when blasted directly",
    "naive.prerendered": "smtplib, one new connection per email, sequential, the email rendered beforehand",
    "latency_ms": "sink acceptance time − the event's CloudEvents time (= its publish moment), first acceptance",
    "cpu_seconds": "utime + stime from /proc/<pid>/stat; peak_rss_mib is VmHWM from /proc/<pid>/status",
    "calibration_ms": "CPU ms of a fixed pure-Python loop (best of 3): how fast the shared CPUs were at that moment",
}
