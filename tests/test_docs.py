"""The API reference site builds with --strict, and its command-line page matches the parser."""

import subprocess
import sys
from pathlib import Path

from celery_animate.cli.parser import build_parser

ROOT = Path(__file__).parent.parent


def test_the_api_reference_builds_strictly(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    jobs = (tmp_path / "api" / "jobs" / "index.html").read_text()
    for documented in ["RenderJob", "poster", "RenderResult", "Progress", "EmbeddedCluster"]:
        assert documented in jobs
    assert "make_video" in (tmp_path / "api" / "animator" / "index.html").read_text()
    assert "JobCancelled" in (tmp_path / "api" / "errors" / "index.html").read_text()


def test_the_command_line_page_shows_every_command_as_the_parser_does(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    page = (ROOT / "docs" / "cli.md").read_text()
    parser = build_parser()
    commands = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, sub in commands.choices.items():
        assert f"## `{name}`" in page
        usage = sub.format_help().replace("usage: celery-animate", "celery-animate").rstrip()
        assert usage in page, f"docs/cli.md is out of date for `{name}`"
