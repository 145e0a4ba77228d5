"""``riffle``: create a user, upload WAVs (resumable, with progress), list, download, delete.

riffle user create Alice          # saves url, user and token to the config file
riffle upload take1.wav take2.wav --title "Rehearsal"
riffle ls
riffle get <record id> -o take1.mp3
riffle rm <record id>
"""

import json
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import unquote

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn
from rich.table import Table

from client import config
from client.api import Api, ApiError
from client.exits import EXIT_CODES_HELP, Exit
from client.tus import Upload, UploadState, watch_job

err = Console(stderr=True, highlight=False)
out = Console(highlight=False, soft_wrap=True)

app = typer.Typer(
    help="riffle: WAV recordings in, MP3 links out.\n\nCredentials come from --url/--user/"
    "--token, else RIFFLE_URL / RIFFLE_USER / RIFFLE_TOKEN, else the config file that "
    "`riffle user create` writes ($XDG_CONFIG_HOME/riffle/config.toml, mode 0600).",
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
user_app = typer.Typer(help="Accounts.", no_args_is_help=True)
app.add_typer(user_app, name="user")

# Hints that go with a problem, by what the exit code means.
_HINTS = {
    Exit.CREDENTIALS: "check --user/--token (RIFFLE_USER/RIFFLE_TOKEN) or the config file "
    f"{config.config_path()}",
    Exit.UNAVAILABLE: "riffle is unreachable or busy: try again later",
}


def fail(error: ApiError, *, about: str | None = None) -> None:
    """Say what went wrong in the problem's own words, on stderr."""
    prefix = f"{about}: " if about else ""
    err.print(f"riffle: {prefix}{error}", style="red", markup=False)
    hint = _HINTS.get(error.exit_code)
    if hint:
        err.print(f"  ({hint})", style="dim", markup=False)


@contextmanager
def handled() -> Iterator[None]:
    """ApiError → its message and exit code; Ctrl-C → 130."""
    try:
        yield
    except ApiError as error:
        fail(error)
        raise typer.Exit(error.exit_code) from None
    except KeyboardInterrupt:
        err.print("riffle: interrupted; run the same command again to resume an upload")
        raise typer.Exit(Exit.INTERRUPTED) from None


@app.callback()
def main(
    context: typer.Context,
    url: Annotated[
        str | None,
        typer.Option(envvar="RIFFLE_URL", help=f"riffle's address [default: {config.DEFAULT_URL}]"),
    ] = None,
    user: Annotated[
        str | None, typer.Option(envvar="RIFFLE_USER", help="Your user id.", show_default=False)
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(envvar="RIFFLE_TOKEN", help="Your access token.", show_default=False),
    ] = None,
) -> None:
    """Resolve the credentials once, for every command."""
    context.obj = config.resolve(url, user, token)


def credentials(context: typer.Context) -> config.Credentials:
    resolved: config.Credentials = context.find_root().obj
    return resolved


@user_app.command("create")
def user_create(
    context: typer.Context,
    name: Annotated[str, typer.Argument(help="Your name (1 to 100 characters).")],
    save: Annotated[
        bool, typer.Option(help="Save url, user id and token to the config file.")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the answer as JSON.")] = False,
) -> None:
    """Create a user. Its token is shown once: it is saved to the config file (mode 0600)."""
    current = credentials(context)
    with handled(), Api.open(current) as api:
        created = api.create_user(name)
    if as_json:
        out.print(json.dumps(created), markup=False)
    else:
        out.print(f"user  {created['id']}\ntoken {created['token']}", markup=False)
    err.print("The token is shown only this once: riffle keeps only a hash of it.")
    if save:
        saved = config.Credentials(current.url, created["id"], created["token"], created["name"])
        path = config.save(saved)
        err.print(f"Saved to {path} (readable by you alone).", markup=False)


@app.command()
def upload(
    context: typer.Context,
    files: Annotated[
        list[Path],
        typer.Argument(exists=True, dir_okay=False, readable=True, help="WAV files."),
    ],
    title: Annotated[str | None, typer.Option(help="Title tag of the MP3s.")] = None,
    bitrate: Annotated[
        int | None, typer.Option(help="CBR bit rate in kbit/s (32-320).", min=32, max=320)
    ] = None,
) -> None:
    """Upload WAVs (tus, resumable: run it again after an interruption), wait for each to be
    converted, and print each MP3's download link."""
    current = credentials(context)
    options = {"title": title or "", "bitrate": str(bitrate) if bitrate else ""}
    first_failure: Exit | None = None
    with handled(), Api.open(current) as api, _progress() as progress:
        api.auth  # noqa: B018 -- fails early, with what is missing
        tasks = {path: progress.add_task(path.name, total=None, note="waiting") for path in files}
        for path, task in tasks.items():
            try:
                record = _upload_one(api, path, options, progress, task)
            except ApiError as error:
                progress.update(task, note="failed")
                progress.console.print(f"riffle: {path.name}: {error}", style="red", markup=False)
                first_failure = first_failure or error.exit_code
                continue
            out.print(record["url"], markup=False)
    if first_failure is not None:
        raise typer.Exit(first_failure)


@contextmanager
def _progress() -> Iterator[Progress]:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[note]}"),
    )
    with Progress(*columns, console=err, transient=False) as progress:
        yield progress


def _upload_one(
    api: Api, path: Path, options: dict[str, str], progress: Progress, task: TaskID
) -> dict[str, Any]:
    label = f"upload  {path.name}"
    progress.update(task, description=label, note="")

    def sent(done: int, total: int) -> None:
        progress.update(task, completed=done, total=max(total, 1), note=_megabytes(done, total))

    def retry(error: ApiError, seconds: float) -> None:
        progress.update(task, note=f"{error.title}; again in {seconds:g} s")

    upload = Upload(
        api=api,
        path=path,
        metadata={"user": api.user, "filename": path.name, **options},
        state=UploadState(),
        on_progress=sent,
        on_retry=retry,
    )
    if upload.url:
        progress.update(task, note="resuming")
    result = upload.run()
    if result.resumed_from is not None:
        progress.console.print(
            f"{path.name}: resumed at byte {result.resumed_from} of {upload.size}", markup=False
        )
    progress.update(task, description=f"convert {path.name}", completed=0, total=1.0, note="")

    def convert(fraction: float) -> None:
        progress.update(task, completed=fraction)

    try:
        record = watch_job(api, result.job_url, convert)
    finally:
        upload.state.remove(upload.key)
    progress.update(task, completed=1.0, note=f"{record['duration_seconds']:.1f} s")
    return record


def _megabytes(done: int, total: int) -> str:
    return f"{done / 1e6:.1f}/{total / 1e6:.1f} MB"


@app.command("ls")
def list_recordings(
    context: typer.Context,
    limit: Annotated[int, typer.Option(help="How many, newest first.", min=1)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON record per line.")] = False,
) -> None:
    """List your recordings, newest first."""
    records: list[dict[str, Any]] = []
    with handled(), Api.open(credentials(context)) as api:
        cursor: str | None = None
        while len(records) < limit:
            page = api.list_records(limit=min(100, limit - len(records)), cursor=cursor)
            records += page["items"]
            cursor = page["next_cursor"]
            if not cursor:
                break
    if as_json:
        for record in records:
            out.print(json.dumps(record), markup=False)
        return
    if not records:
        err.print("No recordings yet: riffle upload FILE.wav")
        return
    table = Table("id", "name", "duration", "size", "added", box=None, pad_edge=False)
    for record in records:
        table.add_row(
            record["id"],
            record["original_filename"],
            f"{record['duration_seconds']:.1f} s",
            f"{record['size_bytes'] / 1e6:.2f} MB",
            record["created_at"][:19].replace("T", " "),
        )
    out.print(table)


@app.command()
def get(
    context: typer.Context,
    record_id: Annotated[str, typer.Argument(metavar="ID", help="The recording's id.")],
    output: Annotated[
        Path | None,
        typer.Option(
            "-o", "--output", help="Where to write the MP3 ('-': stdout).", dir_okay=False
        ),
    ] = None,
) -> None:
    """Download a recording's MP3 (by default under its own name, here)."""
    with handled(), Api.open(credentials(context)) as api, api.download(record_id) as response:
        if output is not None and str(output) == "-":
            for piece in response.iter_bytes():
                sys.stdout.buffer.write(piece)
            sys.stdout.buffer.flush()
            return
        target = output or Path(_attachment_name(response.headers.get("Content-Disposition")))
        target = target if output else Path(target.name)  # never a path from the server
        with target.open("wb") as file:
            for piece in response.iter_bytes():
                file.write(piece)
    err.print(f"Saved {target}", markup=False)


def _attachment_name(disposition: str | None) -> str:
    """``filename*=UTF-8''…`` (RFC 6266) first, then ``filename=``; else ``recording.mp3``."""
    text = disposition or ""
    extended = re.search(r"filename\*=UTF-8''([^;]+)", text, re.IGNORECASE)
    if extended:
        return unquote(extended.group(1).strip())
    plain = re.search(r'filename="([^"]+)"', text)
    return plain.group(1) if plain else "recording.mp3"


@app.command()
def rm(
    context: typer.Context,
    record_id: Annotated[str, typer.Argument(metavar="ID", help="The recording's id.")],
) -> None:
    """Delete a recording: its link stops working."""
    with handled(), Api.open(credentials(context)) as api:
        api.delete_record(record_id)
    err.print(f"Deleted {record_id}", markup=False)


def run() -> None:
    """The console script."""
    app()
