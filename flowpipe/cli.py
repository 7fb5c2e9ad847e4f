"""The ``flowpipe`` command: a thin face over the library.

Commands parse options, call one library function and turn a ``FlowpipeError`` into
one line on stderr and its exit code. No logic lives here.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from flowpipe import __version__, exitcodes
from flowpipe.errors import CacheIndexError, FlowpipeError

F = TypeVar("F", bound=Callable[..., Any])

#: The flag of each run option an error can be about: the library names its options,
#: the command line adds which flag that is.
FLAGS = {
    "accounts": "--account",
    "backend": "--backend",
    "captcha_retry": "--captcha-retry",
    "frozen": "--frozen",
    "lock_path": "--lock",
    "locks": "--lock",
    "max_concurrency": "--max-concurrency",
    "max_wait": "--max-wait",
    "port": "--port",
    "recipe": "--recipe",
    "refresh_steps": "--refresh",
    "remote": "--remote",
    "time_scale": "--time-scale",
    "update_lock": "--update-lock",
}


#: The command that mends an error of this kind, added after the library's own hint.
COMMANDS: dict[type[FlowpipeError], str] = {
    CacheIndexError: "`flowpipe cache verify --repair` rebuilds it, `flowpipe cache clear --yes` "
    "starts empty",
}


def error_lines(exc: FlowpipeError) -> list[str]:
    """An error as the CLI prints it: its lines, the first led by the flag it is about."""
    lines = str(exc).splitlines() or [type(exc).__name__]
    flag = FLAGS.get(exc.option or "")
    if flag:
        lines[0] = f"{flag}: {lines[0]}"
    for kind, advice in COMMANDS.items():
        if isinstance(exc, kind):
            lines[-1] = f"{lines[-1]}; {advice}"
    return lines


def _errors_to_exit(func: F) -> F:
    """Print a FlowpipeError as ``flowpipe: message`` lines and exit with its code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except FlowpipeError as exc:
            for line in error_lines(exc):
                click.echo(f"flowpipe: {line}", err=True)
            sys.exit(exitcodes.for_error(exc))

    return wrapper  # type: ignore[return-value]


def _warn(line: str) -> None:
    """A recipe warning: one ``flowpipe: ...`` line on stderr; the command goes on."""
    click.echo(f"flowpipe: {line}", err=True)


def parse_vars(values: tuple[str, ...]) -> dict[str, object]:
    """Turn ``--var k=v`` options into typed values (YAML scalars: 3, true, 1.5, text)."""
    from flowpipe.recipe import parse_var_overrides

    return parse_var_overrides(values)


remote_option = click.option(
    "--remote", metavar="s3://BUCKET/PREFIX", default=None,
    help="Shared remote cache on S3-compatible storage.  [default: FLOWPIPE_REMOTE, else "
    "remote: in .flowpipe.yaml]")

var_option = click.option(
    "--var",
    "variables",
    multiple=True,
    metavar="NAME=VALUE",
    help="Override a recipe variable; the value is read as a YAML scalar. Repeatable.",
)
out_option = click.option(
    "-o", "--out", type=click.Path(path_type=Path), default=None,
    help="Output folder.  [default: out/NAME, a folder-safe slug of the recipe's name]")
refresh_option = click.option(
    "--refresh", "refresh", multiple=True, metavar="[STEP]", is_flag=False, flag_value="*",
    help="Ignore the cache for STEP (repeatable), or for every step when given without a "
    "value.")
cache_dir_option = click.option(
    "--cache-dir", type=click.Path(path_type=Path), default=None, envvar="FLOWPIPE_CACHE_DIR",
    help="Cache folder.  [default: the user cache folder, or FLOWPIPE_CACHE_DIR]")
_LOCK_DEFAULT = ("  [default: RECIPE.lock.json beside the recipe; OUT/RECIPE.lock.json when "
                 "--var is given]")
lock_option = click.option(
    "--lock", "lock_file", type=click.Path(path_type=Path), default=None, metavar="PATH",
    help="The lock file to write (and to compare with)." + _LOCK_DEFAULT)
read_lock_option = click.option(  # plan and why never write one
    "--lock", "lock_file", type=click.Path(path_type=Path), default=None, metavar="PATH",
    help="The lock file to compare with (only read; `run` writes it)." + _LOCK_DEFAULT)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="flowpipe")
def cli() -> None:
    """Turn YAML recipes into image sets made by the Google Flow image API.

    \b
    Example:
        flowpipe run examples/campaign.yaml -o out/campaign
    """
    import logging  # here: `flowpipe --help` never gets this far, and logging is not small

    logging.basicConfig(level=logging.WARNING, format="flowpipe: %(message)s")


@cli.command("sim")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=0, show_default=True, help="Port; 0 picks a free one.")
@click.option("--token", "tokens", multiple=True, metavar="TOKEN",
              help="A bearer token to accept (repeatable). [default: sim-token]")
@click.option("--accounts", "accounts", multiple=True, metavar="EMAIL[,EMAIL...]",
              help="Account emails it knows (repeatable or comma-separated). "
                   "[default: sim@example.com]")
@click.option("--time-scale", default=1.0, show_default=True,
              help="Real seconds per API second: 1.0 is real latency, 0.01 is 100x faster.")
@click.option("--capacity", default="walk", show_default=True,
              help="Hidden capacity C(t): N, walk[:S], steps:S or square:S (API seconds).")
@click.option("--capacity-per-account", is_flag=True,
              help="Give each account its own C(t) (same trace) instead of one shared C(t).")
@click.option("--reject-status", type=click.Choice(["429", "503", "mixed"]), default="mixed",
              show_default=True, help="Status for requests over capacity.")
@click.option("--moderation-rate", default=0.0, show_default=True,
              help="Fraction of generations moderated (imagen-4: 400 UNSAFE, nano-banana: 500).")
@click.option("--moderation-word", default="forbidden", show_default=True,
              help="A prompt with this word is always moderated.")
@click.option("--nano-500-rate", default=0.0, show_default=True,
              help="Fraction of requests to a nano-banana model (2026-07: nano-banana-2-lite, -2, "
              "-pro) without references that get a 500.")
@click.option("--fault-rate", default=0.0, show_default=True,
              help="Fraction of /images requests answered by a reset or a truncated body.")
@click.option("--credits", type=int, default=None,
              help="Successful generations allowed before 402. [default: unlimited]")
@click.option("--broken-account", "broken", multiple=True, metavar="EMAIL",
              help="An account whose requests get 596 (repeatable; added to --accounts).")
@click.option("--latency-min", default=10.0, show_default=True, help="Shortest generation, API s.")
@click.option("--latency-max", default=20.0, show_default=True, help="Longest generation, API s.")
@click.option("--seed", default=0, show_default=True,
              help="Seed of every random choice (capacity, moderation, faults, seeds).")
@click.option("--dialect", type=click.Choice(["2025-11", "2026-07"]), default="2025-11",
              show_default=True, help="The API version to serve (see docs/recipes.md).")
@click.option("--fife-ttl", default=6 * 3600.0, show_default=True,
              help="2026-07: API seconds a signed image URL stays readable.")
@click.option("--fife-expired-rate", default=0.0, show_default=True,
              help="2026-07: fraction of signed image URLs issued already expired (a "
              "fresh draw when the request is made again).")
@click.option("--encoded-image-rate", default=0.25, show_default=True,
              help="2026-07: fraction of images that also carry encodedImage.")
@click.option("--png-rate", default=0.25, show_default=True,
              help="2026-07: fraction of images sent as PNG instead of JPEG.")
@click.option("--throttle", "throttles", multiple=True, metavar="EMAIL:T",
              help="2026-07: EMAIL answers USER_REQUESTS_THROTTLED from API second T, then "
              "is out for 30 API minutes (repeatable).")
@click.option("--model-quota", "model_quotas", multiple=True, metavar="MODEL:N",
              help="2026-07: after N generations of MODEL per account and UTC day, "
              "PER_MODEL_DAILY_QUOTA_REACHED until midnight UTC (repeatable).")
@click.option("--account-quota", type=int, default=None,
              help="2026-07: after N generations an account answers USER_QUOTA_REACHED "
              "and is out for 30 API minutes. [default: none]")
@click.option("--captcha-fail-rate", default=0.0, show_default=True,
              help="2026-07: chance that one captcha try fails; a request is refused "
              "(403 captcha_quality:) when all its captchaRetry tries fail.")
@click.option("--clock-start", default=None, metavar="ISO",
              help="UTC time at API second 0, e.g. 2026-07-15T23:50:00Z (for quotas that "
              "end at midnight). [default: now]")
@_errors_to_exit
def sim_command(
    *,
    host: str, port: int, tokens: tuple[str, ...], accounts: tuple[str, ...],
    time_scale: float, capacity: str, capacity_per_account: bool, reject_status: str,
    moderation_rate: float,
    moderation_word: str, nano_500_rate: float, fault_rate: float, credits: int | None,
    broken: tuple[str, ...], latency_min: float, latency_max: float, seed: int,
    dialect: str, fife_ttl: float, fife_expired_rate: float, encoded_image_rate: float,
    png_rate: float,
    throttles: tuple[str, ...], model_quotas: tuple[str, ...], account_quota: int | None,
    captcha_fail_rate: float, clock_start: str | None,
) -> None:
    """Serve a local simulator of the Google Flow image API.

    Prints its base URL (http://HOST:PORT/v1/google-flow) as the first line on
    stdout and serves until stopped (Ctrl-C or SIGTERM). See docs/simulator.md.

    \b
    Example:
        flowpipe sim --port 8787 --time-scale 0.05 --capacity steps:30
        curl -H "Authorization: Bearer sim-token" \\
             http://127.0.0.1:8787/v1/google-flow/accounts
        flowpipe sim --dialect 2026-07 --accounts a@x.io,b@x.io --throttle a@x.io:60
    """
    from flowpipe import sim  # lazy, so other commands never load aiohttp

    emails = tuple(e.strip() for value in accounts for e in value.split(",") if e.strip())
    config = sim.SimConfig(
        tokens=tokens or (sim.DEFAULT_TOKEN,), accounts=emails or (sim.DEFAULT_ACCOUNT,),
        time_scale=time_scale, capacity=sim.parse_capacity(capacity),
        capacity_per_account=capacity_per_account, reject_status=reject_status,  # type: ignore[arg-type]  # click.Choice checked it
        moderation_rate=moderation_rate, moderation_word=moderation_word,
        nano_500_rate=nano_500_rate, fault_rate=fault_rate, credits=credits,
        broken_accounts=broken, latency_min=latency_min, latency_max=latency_max, seed=seed,
        dialect=dialect, fife_ttl=fife_ttl, fife_expired_rate=fife_expired_rate,
        encoded_image_rate=encoded_image_rate,
        png_rate=png_rate, throttles=tuple(sim.parse_throttle(t) for t in throttles),
        model_quotas=tuple(sim.parse_model_quota(m) for m in model_quotas),
        account_quota=account_quota, captcha_fail_rate=captcha_fail_rate,
        clock_start=sim.parse_clock_start(clock_start) if clock_start else None,
    )
    sim.run_server(config, host, port)


@cli.command("run")
@click.argument("recipe", type=click.Path(path_type=Path))
@out_option
@var_option
@refresh_option
@click.option("--frozen", is_flag=True,
              help="Fail with exit 4 if any node is not cached (or differs from the lock "
              "file); sends nothing.")
@click.option("--account", "accounts", multiple=True, metavar="EMAIL",
              help="Account to generate with (repeatable).  [default: the recipe's "
              "accounts, else every healthy one from GET /accounts]")
@click.option("--backend", type=click.Choice(["auto", "sim", "useapi"]), default="auto",
              show_default=True, help="auto: the real API when USEAPI_TOKEN is set, else "
              "the embedded simulator.")
@click.option("--max-concurrency", type=click.IntRange(1, 20), default=None,
              help="Never run more than N generations at once per account.")
@click.option("--time-scale", type=click.FloatRange(min=0, min_open=True), default=None,
              help="API seconds to real seconds for retry delays and limiter timers; "
              "use the simulator's value when pointing FLOWPIPE_API_URL at `flowpipe sim`.")
@cache_dir_option
@remote_option
@click.option("--no-remote", is_flag=True, help="Use no remote cache, whatever is configured.")
@click.option("--max-wait", type=click.FloatRange(min=0), default=600.0, show_default=True,
              metavar="SECONDS", help="api 2026-07: when every account that could go on is "
              "paused by a quota for longer than this (API seconds), stop with exit 3.")
@click.option("--captcha-retry", type=click.IntRange(1, 10), default=None, metavar="N",
              help="api 2026-07: captchaRetry for every request (1-10), instead of the "
              "recipe's.  [default: the recipe's, else the API's 3]")
@click.option("--no-report", is_flag=True, help="Do not write report.html.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
@click.option("--plain", is_flag=True, help="One line per event instead of a live display.")
@lock_option
@click.option("--update-lock", is_flag=True,
              help="Write the lock beside the recipe even when --var (or another backend "
              "than the lock's) changes what the recipe makes: accept the change on purpose.")
@_errors_to_exit
def run_command(recipe: Path, out: Path | None, variables: tuple[str, ...],
                refresh: tuple[str, ...], frozen: bool, accounts: tuple[str, ...],
                backend: str, max_concurrency: int | None, time_scale: float | None,
                cache_dir: Path | None, remote: str | None, no_remote: bool,
                max_wait: float, captcha_retry: int | None, no_report: bool, as_json: bool,
                plain: bool, lock_file: Path | None, update_lock: bool) -> None:
    """Generate every image of RECIPE, from the cache where possible.

    With no USEAPI_TOKEN the run uses an embedded simulator (placeholder images, no
    cost). Each node it sends says why (new, or what changed since the lock). The
    lock beside the recipe is rewritten only by a run of the recipe as committed; a
    --var run writes OUT/RECIPE.lock.json and says so. Exit codes: 0 all done, 1 some
    nodes failed, 2 bad recipe or usage, 3 stopped by the API (token, credits,
    session, every account paused beyond --max-wait), 4 --frozen cache miss,
    5 waiting for review (a STEP.pick has no pick yet: run `flowpipe review OUT`),
    130 interrupted.

    \b
    Example:
        flowpipe run examples/campaign.yaml -o out/campaign
        flowpipe run examples/campaign.yaml --var product=boot   # lock in out/...
        USEAPI_TOKEN=... flowpipe run recipe.yaml --account me@example.com --json
    """
    from flowpipe.engine import RunOptions, run_recipe
    from flowpipe.progress import closing_lines, describe_backend, open_display

    options = RunOptions(
        out=out,
        variables=parse_vars(variables),
        refresh_all="*" in refresh,
        refresh_steps=frozenset(r for r in refresh if r != "*"),
        frozen=frozen,
        accounts=accounts,
        backend=backend,  # type: ignore[arg-type]  # click.Choice guarantees the literal
        max_concurrency=max_concurrency,
        time_scale=time_scale,
        cache_dir=cache_dir,
        remote=remote,
        use_remote=not no_remote,
        report=not no_report,
        lock=True,
        max_wait=max_wait,
        captcha_retry=captcha_retry,
        lock_path=lock_file,
        update_lock=update_lock,
    )
    click.echo(f"flowpipe: {describe_backend(options)}", err=True)
    with open_display(plain=plain) as sinks:
        result = run_recipe(recipe, options, sinks=sinks)
    if as_json:
        import json

        click.echo(json.dumps(result.run_info, indent=2))
    shared = result.remote
    if shared:
        state = "" if shared["available"] else " (stopped answering: see above)"
        click.echo(f"flowpipe: remote {shared['url']}: {shared['pulled']} pulled, "
                   f"{shared['pushed']} pushed, {shared['refused']} refused{state}", err=True)
    for line in closing_lines(result, update_flag=FLAGS["update_lock"]):
        click.echo(f"flowpipe: {line}", err=True)
    if result.exit_code != 0:
        sys.exit(result.exit_code)


@cli.group("cache")
def cache_group() -> None:
    """Inspect, check, clear and share the response cache.

    \b
    Example:
        flowpipe cache info
        flowpipe cache verify --repair
        flowpipe cache pull --lock campaign.lock.json
    """


@cache_group.command("info")
@cache_dir_option
@_errors_to_exit
def cache_info(cache_dir: Path | None) -> None:
    """Print where the cache is and what it holds.

    \b
    Example:
        flowpipe cache info
    """
    from flowpipe.store import default_cache_dir
    from flowpipe.store.repair import verify_folder

    folder = cache_dir or default_cache_dir()
    report = verify_folder(folder)
    click.echo(f"folder: {folder}")
    click.echo(f"generations: {report.generations}  images: {report.images}  "
               f"uploads: {report.uploads}  corrupt: {len(report.corrupt)}")


@cache_group.command("verify")
@cache_dir_option
@click.option("--repair", is_flag=True, help="Rebuild a damaged index from the stored values "
              "and delete corrupt entries (they are re-made).")
@_errors_to_exit
def cache_verify(cache_dir: Path | None, repair: bool) -> None:
    """Check the cache's index and read back every entry; exit 1 if anything is damaged.

    With --repair, a damaged index (cache.db) is set aside in damaged-TIME/ and rebuilt
    from what can still be read, and corrupt entries are deleted.

    \b
    Example:
        flowpipe cache verify --repair
    """
    from flowpipe.store import default_cache_dir
    from flowpipe.store.repair import verify_folder

    report = verify_folder(cache_dir or default_cache_dir(), repair=repair)
    if report.rebuilt is not None:
        fixed = report.rebuilt
        click.echo(f"rebuilt the damaged index: {fixed.rows} entries saved, {fixed.images} "
                   f"images re-indexed, {fixed.unrecovered} files not recovered; the damaged "
                   f"index is in {fixed.aside}")
    for key in report.corrupt:
        click.echo(f"corrupt: {key}")
    verb = "deleted" if repair else "found"
    click.echo(f"{len(report.corrupt)} corrupt entr{'y' if len(report.corrupt) == 1 else 'ies'} "
               f"{verb}; {report.generations} generations, {report.images} images checked")
    if report.corrupt and not repair:
        sys.exit(1)


@cache_group.command("clear")
@cache_dir_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@_errors_to_exit
def cache_clear(cache_dir: Path | None, yes: bool) -> None:
    """Delete every cached response, image and upload record (also when the index is
    damaged).

    \b
    Example:
        flowpipe cache clear --yes
    """
    from flowpipe.store import default_cache_dir
    from flowpipe.store.repair import clear_folder

    folder = cache_dir or default_cache_dir()
    if not yes:
        click.confirm(f"delete everything in {folder}?", abort=True)
    count, damaged = clear_folder(folder)
    if damaged:
        click.echo(f"the index was damaged: deleted it and {count} stored files from {folder}")
    else:
        click.echo(f"deleted {count} entries from {folder}")


@cache_group.command("push")
@cache_dir_option
@remote_option
@_errors_to_exit
def cache_push(cache_dir: Path | None, remote: str | None) -> None:
    """Copy every generation of the cache folder that the remote lacks to the remote.

    Images go before the records that name them; objects already there are never
    overwritten. The endpoint comes from AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL (or
    .flowpipe.yaml), credentials from the AWS chain. See docs/caching.md.

    \b
    Example:
        flowpipe cache push --remote s3://team-assets/flowpipe
    """
    from flowpipe.store import default_cache_dir
    from flowpipe.store.transfer import push_folder

    report = push_folder(cache_dir or default_cache_dir(), remote_url=remote)
    click.echo(f"{report.remote}: {report.copied} generation(s) pushed, "
               f"{report.present} already there")


@cache_group.command("pull")
@cache_dir_option
@remote_option
@click.option("--lock", "locks", multiple=True, type=click.Path(path_type=Path),
              metavar="LOCK", help="Pull exactly the generations this lock file names "
              "(repeatable).  [default: everything on the remote]")
@_errors_to_exit
def cache_pull(cache_dir: Path | None, remote: str | None, locks: tuple[Path, ...]) -> None:
    """Copy generations from the remote into the cache folder, verified.

    Every image must hash to its name and every record must match its key and the
    lock's image hashes; a refused object is reported and not kept. Exits 1 if
    something a lock names could not be pulled.

    \b
    Example:
        flowpipe cache pull --lock examples/ci-smoke.lock.json
        flowpipe run examples/ci-smoke.yaml --frozen
    """
    from flowpipe.store import default_cache_dir
    from flowpipe.store.transfer import pull_folder

    report = pull_folder(cache_dir or default_cache_dir(), locks=locks, remote_url=remote)
    click.echo(f"{report.remote}: {report.copied} generation(s) pulled, "
               f"{report.present} already here, {len(report.missing)} missing")
    for key in report.missing[:10]:
        click.echo(f"missing: {key}")
    if report.missing:
        sys.exit(1)


@cli.command("report")
@click.argument("out", type=click.Path(path_type=Path))
@_errors_to_exit
def report_command(out: Path) -> None:
    """Write OUT/report.html, the contact sheet of an output folder, and print its path.

    Reads OUT/manifest.json (and OUT/run.json if present); thumbnails go to
    OUT/.thumbs/ and are re-used on the next call. `flowpipe run` writes the report
    itself; use this after editing nothing but wanting it back, or for an old run.

    \b
    Example:
        flowpipe report out/campaign
    """
    from flowpipe.report import write_report

    click.echo(str(write_report(out)))


@cli.command("review")
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--recipe", type=click.Path(path_type=Path), default=None,
              help="The recipe the picks belong to (RECIPE.picks.yaml goes beside it).  "
              "[default: the one OUT/run.json names, if it lies under the current folder]")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="Port on 127.0.0.1; 0 picks a free one.")
@click.option("--no-browser", is_flag=True, help="Only print the URL; do not open a browser.")
@_errors_to_exit
def review_command(out: Path, recipe: Path | None, port: int, no_browser: bool) -> None:
    """Pick and reject the images of OUT in a browser; picks go to RECIPE.picks.yaml.

    Serves the contact sheet on 127.0.0.1 at a URL with a random token (printed) until
    Ctrl-C. Click Pick / Reject on an image, or use the keys: arrows move, P picks,
    X rejects, N writes a note, Enter opens the image. A later step's `STEP.pick`
    reference uses the pick; `flowpipe run` waits (exit 5) until there is one.
    See docs/review.md.

    \b
    Example:
        flowpipe review out/campaign
        flowpipe review out/campaign --recipe examples/campaign.yaml --no-browser
    """
    import webbrowser

    from flowpipe.review import ReviewConfig, serve_review

    config = ReviewConfig.for_output(out, recipe)

    def ready(url: str) -> None:
        click.echo(f"flowpipe review: {url}")
        click.echo(f"flowpipe review: picks go to {config.picks}; stop with Ctrl-C", err=True)
        if not no_browser:
            webbrowser.open(url)

    serve_review(config, port=port, ready=ready)


@cli.command("diff")
@click.argument("old", type=click.Path(path_type=Path))
@click.argument("new", type=click.Path(path_type=Path))
@click.option("-o", "--out", "target", type=click.Path(path_type=Path),
              default=Path("compare.html"), show_default=True, help="The page to write.")
@var_option
@click.option("--backend", type=click.Choice(["sim", "useapi"]), default=None,
              help="Backend kind of a recipe's keys.  [default: the lock's, else sim]")
@click.option("--cache-dir", type=click.Path(path_type=Path), default=None,
              envvar="FLOWPIPE_CACHE_DIR", help="Cache folder (old images come from it by key)."
              "  [default: the user cache folder, or FLOWPIPE_CACHE_DIR]")
@_errors_to_exit
def diff_command(old: Path, new: Path, target: Path, variables: tuple[str, ...],
                 backend: str | None, cache_dir: Path | None) -> None:
    """Compare two runs node by node and write an HTML page of what changed.

    OLD and NEW are output folders, a RECIPE.lock.json (old images come from the cache
    by its keys) or a recipe as it is now (its keys resolved through the cache). Per
    changed node: the prompt's words that changed, seed, model, references, and the old
    and new images side by side with a slider and blink overlay; unchanged nodes are
    folded away. Prints how many nodes changed.

    \b
    Example:
        flowpipe diff out/before out/after -o compare.html
        flowpipe diff examples/campaign.lock.json examples/campaign.yaml
    """
    from flowpipe.compare import compare, write_compare

    comparison = compare(old, new, cache_dir=cache_dir, variables=parse_vars(variables),
                         backend=backend)
    path = write_compare(comparison, target)
    changed = comparison.changed()
    click.echo(f"{len(changed)} changed, {len(comparison.same())} unchanged: {path}")
    for node in changed:
        what = ", ".join(c.label for c in node.changes) or node.state
        click.echo(f"  {node.state} {node.id}: {what}")


@cli.command("inspect")
@click.argument("image", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the facts as JSON.")
@_errors_to_exit
def inspect_command(image: Path, as_json: bool) -> None:
    """Print the provenance flowpipe wrote into IMAGE (a JPEG or PNG it made).

    Shows the recipe, node, model, seed, aspect ratio, request key, prompt and
    flowpipe version from the image's XMP packet, the SHA-256 of the image as the API
    made it (what picks and the lock record) and of the file (what sha256sum prints).
    Says plainly when flowpipe did not make the image.

    \b
    Example:
        flowpipe inspect out/campaign/hero/default/0.jpg
        flowpipe inspect out/campaign/hero/default/0.jpg --json
    """
    from flowpipe.store.provenance import inspect_file

    found = inspect_file(image)
    if as_json:
        import json

        click.echo(json.dumps(found.to_json(), indent=2, ensure_ascii=False))
    else:
        click.echo("\n".join(found.lines()))


@cli.command("validate")
@click.argument("recipes", nargs=-1, required=True, type=click.Path(path_type=Path))
@var_option
@_errors_to_exit
def validate_command(recipes: tuple[Path, ...], variables: tuple[str, ...]) -> None:
    """Check recipes without sending anything: YAML, schema, templates, references,
    per-model rules and asset files.

    Prints `ok: RECIPE (N nodes)` for each good recipe. Otherwise prints one
    `file:line:col: reason` line per problem, all of them at once, and exits 2.

    \b
    Example:
        flowpipe validate examples/campaign.yaml --var product=boot
    """
    from flowpipe.summary import validate_recipes

    validate_recipes(recipes, overrides=parse_vars(variables), echo=click.echo, warn=_warn)


def _plan_and_verdicts(
    recipe: Path, variables: tuple[str, ...], backend: str, out: Path | None,
    cache_dir: Path | None, refresh: tuple[str, ...], lock_file: Path | None,
) -> tuple[Any, Any]:
    """The plan and each node's verdict, its warnings said on stderr."""
    from flowpipe.summary import plan_with_verdicts, warning_lines

    plan, found = plan_with_verdicts(
        recipe, overrides=parse_vars(variables), backend=backend, out=out,
        cache_dir=cache_dir, refresh=refresh, lock_path=lock_file,
    )
    for line in warning_lines(plan):
        _warn(line)
    return plan, found


def _plan_options(func: F) -> F:
    """What `plan` and `why` take beside `--var`: the options of `run` that decide keys
    and states."""
    backend = click.option(
        "--backend", type=click.Choice(["auto", "sim", "useapi"]), default="auto",
        show_default=True, help="Backend kind that goes into every cache key; auto: useapi "
        "when USEAPI_TOKEN is set, else the committed lock's, else sim.")
    for option in (read_lock_option, cache_dir_option, refresh_option, out_option, backend):
        func = option(func)
    return func


@cli.command("plan")
@click.argument("recipe", type=click.Path(path_type=Path))
@var_option
@click.option("--json", "as_json", is_flag=True,
              help="Print the plan as JSON: every node's request, provisional key, state "
              "and why.")
@_plan_options
@_errors_to_exit
def plan_command(recipe: Path, variables: tuple[str, ...], as_json: bool, backend: str,
                 out: Path | None, refresh: tuple[str, ...], cache_dir: Path | None,
                 lock_file: Path | None) -> None:
    """Print the DAG `run` would execute, in run order, and why; nothing is sent.

    Per node: its state (cached, new or changed, against the cache and the lock),
    model, aspect ratio, count, seed, references, provisional cache key, the start of
    the prompt and why (the fields that changed since the lock, with the prompt's
    difference; an upstream image or an asset file that changed; a refresh; another
    backend or API version); then the edges. Keys of nodes that use images not made
    yet are provisional: `run` computes the real ones from the images' bytes.

    \b
    Example:
        flowpipe plan examples/campaign.yaml --json --backend useapi
        flowpipe plan examples/campaign.yaml --refresh hero
    """
    from flowpipe.summary import plan_json, plan_lines

    plan, found = _plan_and_verdicts(recipe, variables, backend, out, cache_dir, refresh,
                                     lock_file)
    if as_json:
        import json

        click.echo(json.dumps(plan_json(plan, found), indent=2, ensure_ascii=False))
    else:
        click.echo("\n".join(plan_lines(plan, found)))


@cli.command("why")
@click.argument("recipe", type=click.Path(path_type=Path))
@click.argument("node")
@var_option
@_plan_options
@_errors_to_exit
def why_command(recipe: Path, node: str, variables: tuple[str, ...], backend: str,
                out: Path | None, refresh: tuple[str, ...], cache_dir: Path | None,
                lock_file: Path | None) -> None:
    """Say why NODE of RECIPE would be cached, new or changed, and through which
    upstream nodes, all the way up; nothing is sent.

    Takes the options of `plan`. NODE is a node id as `plan` prints it.

    \b
    Example:
        flowpipe why examples/campaign.yaml poster
        flowpipe why examples/campaign.yaml "closeup[angle=side]"
    """
    from flowpipe.summary import why_lines

    plan, found = _plan_and_verdicts(recipe, variables, backend, out, cache_dir, refresh,
                                     lock_file)
    click.echo("\n".join(why_lines(plan, found, node)))


@cli.command("schema")
def schema_command() -> None:
    """Print the recipe JSON Schema (the one `validate` uses) for editors and tools.

    \b
    Example:
        flowpipe schema > recipe.schema.json
    """
    from flowpipe.recipe.schema import schema_text

    click.echo(schema_text(), nl=False)


def main() -> None:
    """Console-script entry point."""
    try:
        cli.main(prog_name="flowpipe", standalone_mode=True)
    except KeyboardInterrupt:  # pragma: no cover - a Ctrl-C outside a run
        click.echo("flowpipe: interrupted", err=True)
        sys.exit(exitcodes.INTERRUPTED)


__all__ = ["FLAGS", "cli", "error_lines", "main"]
