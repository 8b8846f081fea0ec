"""`aedfleet import FILE`: load AEDs from a registry CSV or an OpenStreetMap export."""

from __future__ import annotations

import json
from pathlib import Path

import click

from fleet.cli import Context, pass_context, progress_bar
from fleet.registry import ImportReport, import_registry
from fleet.registry_file import read_registry_file


@click.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--id-prefix", default="", help="Prefix for the file's ids (e.g. 'koeln-').")
@click.option("--source", default=None, help="Name of the source stored with each AED.")
@click.option("--german-hours", is_flag=True, help="Read opening hours written as German text "
              "('Mo-Fr 8-18 Uhr') into OpenStreetMap syntax; text that cannot be read safely "
              "is imported as no hours (the AED counts as closed) and noted.")
@click.option("--json", "as_json", is_flag=True, help="Print the import report as JSON.")
@pass_context
def import_file(ctx: Context, file: Path, id_prefix: str, source: str | None,
                german_hours: bool, as_json: bool) -> None:
    """Import AEDs from FILE; re-importing updates, never duplicates.

    Every rejected row is reported with its line and reason; the good rows are imported.
    Exit status 1 when nothing could be imported.
    """
    parsed = read_registry_file(file, id_prefix=id_prefix, source=source,
                                german_hours=german_hours)
    with progress_bar(len(parsed.records), f"importing {file.name}") as bar:
        report = import_registry(ctx.engine, parsed, progress=bar, actor=ctx.actor,
                                 name=file.name)
    if as_json:
        click.echo(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
    else:
        _print_report(file, report)
    if report.imported == 0:
        raise click.ClickException(f"nothing imported from {file}")


def _print_report(file: Path, report: ImportReport) -> None:
    for note in report.notes:
        click.echo(f"note: {note}", err=True)
    for rejection in sorted(report.rejections, key=lambda r: r.line):
        click.echo(f"{file.name}: rejected {rejection}", err=True)
    click.echo(
        f"{file.name} ({report.format}): {report.rows} rows, {report.imported} imported "
        f"({report.created} new, {report.updated} updated, {report.unchanged} unchanged), "
        f"{len(report.rejections)} rejected; {report.municipalities_assigned} placed in a "
        f"municipality by their coordinates; {report.without_hours} without opening hours "
        "(inaccessible until set)")
