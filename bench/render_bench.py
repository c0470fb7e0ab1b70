"""CPU per guardian to render a meeting's notification: each guardian alone, and once per meeting (RenderOnce).

    uv run python bench/render_bench.py                    # invitation with answer link, nb, pl and ar
    uv run python bench/render_bench.py --template meeting_reminder --languages nb,ar --guardians 30

One meeting of `--guardians` guardians is rendered (subject, text, HTML and SMS) `--rounds` times; the shared
renderings are dropped before each round, so every round pays for its meeting's rendering as a new event would.
Printed: the best of `--repeat` runs, in ms of CPU per guardian. In process, no Kafka: for the pipeline's
figures see pipeline_bench.py.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Mapping, Sequence

from notify_shared import samples
from notify_shared.rendering import RenderedNotification, render_notification
from notify_shared.rendering.render_once import RenderOnce

ANSWER_URL = "https://svar.skole.example/r/aXk3m9Qw2Lr8Tz0Vb5Nc7Hd1Fg4Js6Pq"

Render = Callable[[str, str, str, Mapping[str, object]], RenderedNotification]


def _contexts(template: str, language: str, guardians: int) -> list[dict[str, object]]:
    school, meeting = samples.sample_school(), samples.sample_meeting()
    shared: dict[str, object] = {"school": school, "meeting": meeting}
    if template == "meeting_update":
        shared |= {"changes": frozenset({"time"}), "previous": meeting}
    contexts = []
    for number in range(1, guardians + 1):
        values = shared | {"guardian": samples.sample_guardian(number, language=language)}
        if template in ("meeting_invitation", "meeting_update"):
            values["answer_url"] = ANSWER_URL
        contexts.append(values)
    return contexts


def _ms_per_guardian(
    make_render: Callable[[], Render],
    template: str,
    language: str,
    contexts: Sequence[Mapping[str, object]],
    rounds: int,
) -> float:
    start = time.process_time()
    for _ in range(rounds):
        render = make_render()  # a new meeting: nothing shared from the round before
        for values in contexts:
            render(template, language, "nb", values)
    return (time.process_time() - start) / (rounds * len(contexts)) * 1000


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--template", default="meeting_invitation", help="a meeting template (meeting_invitation)")
    parser.add_argument("--languages", default="nb,pl,ar", help="comma-separated language tags (nb,pl,ar)")
    parser.add_argument("--guardians", type=int, default=5, help="guardians of the meeting (5, as pipeline_bench)")
    parser.add_argument("--rounds", type=int, default=100, help="meetings rendered per run (100)")
    parser.add_argument("--repeat", type=int, default=5, help="runs; the best is printed (5)")
    args = parser.parse_args(argv)
    makers: dict[str, Callable[[], Render]] = {"alone": lambda: render_notification, "once": RenderOnce}
    print(f"{args.template}, {args.guardians} guardians per meeting: CPU ms per guardian (best of {args.repeat})")
    for language in args.languages.split(","):
        contexts = _contexts(args.template, language, args.guardians)
        best = {
            name: min(
                _ms_per_guardian(make, args.template, language, contexts, args.rounds) for _ in range(args.repeat)
            )
            for name, make in makers.items()
        }
        print(f"{language:>4}  alone {best['alone']:.3f}  once {best['once']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
