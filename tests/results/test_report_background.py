"""The report helper process: the same files as writing in-process, and no way to lose or strand anything."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from matplotlib.image import imread

from w2s_gguf.report import load_results, write_report
from w2s_gguf.report.background import ReportWriter

FIXTURE = Path(__file__).parents[1] / "fixtures" / "results_v2"


def results_folder(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    shutil.copytree(FIXTURE, folder)
    return folder


def test_the_helper_writes_what_writing_in_process_writes(tmp_path):
    here, there = results_folder(tmp_path, "here"), results_folder(tmp_path, "there")
    expected = write_report(here, load_results(here))
    with ReportWriter() as reports:
        assert reports._helper is not None and reports._helper.is_alive()
        paths = reports.write(there, load_results(there))
    assert [p.name for p in paths] == [p.name for p in expected]
    assert (there / "report.md").read_text() == (here / "report.md").read_text()
    for path in paths[1:]:
        assert imread(path).shape == imread(here / path.name).shape
    assert reports._helper is None  # stopped on leaving the block


def test_a_failing_helper_hands_the_report_back(tmp_path):
    # Without results.json the helper cannot render; this process still has the results and writes them.
    folder = results_folder(tmp_path, "run")
    results = load_results(folder)
    (folder / "results.json").unlink()
    with ReportWriter() as reports:
        paths = reports.write(folder, results)
    assert all(p.is_file() for p in paths) and (folder / "report.md").is_file()


def test_a_dead_helper_is_replaced_by_writing_here(tmp_path):
    folder = results_folder(tmp_path, "run")
    with ReportWriter() as reports:
        os.kill(reports._helper.pid, signal.SIGKILL)
        reports._helper.join()
        paths = reports.write(folder, load_results(folder))
        assert reports._helper is None
    assert all(p.is_file() for p in paths)


CHILD = textwrap.dedent("""
    import os, signal, sys, time
    from w2s_gguf.report.background import ReportWriter
    with ReportWriter() as reports:
        print(reports._helper.pid, flush=True)
        try:
            time.sleep(float(sys.argv[1]))
        except KeyboardInterrupt:
            time.sleep(1)  # the main process cleans up (closes models, says how to resume) before stopping us
            sys.exit(130)
        os.kill(os.getpid(), signal.SIGKILL)
""")


def _gone(pid: int, within: float) -> bool:
    deadline = time.time() + within
    while time.time() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_the_helper_never_outlives_a_killed_main_process():
    proc = subprocess.Popen([sys.executable, "-c", CHILD, "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    # The helper shares the pipes: communicate() returns only once it has exited too.
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert _gone(int(out.split()[0]), within=10), "the helper outlived its killed parent"
    assert "Traceback" not in err


def test_ctrl_c_reaches_the_whole_group_without_a_helper_traceback():
    proc = subprocess.Popen([sys.executable, "-c", CHILD, "30"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    pid = int(proc.stdout.readline())
    time.sleep(2)  # the helper is importing matplotlib or waiting: either way it must ignore Ctrl-C
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal does: every process of the foreground group
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert _gone(pid, within=10)
