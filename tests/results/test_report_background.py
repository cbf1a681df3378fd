"""The report helper process: the same files as writing in-process, and no way to lose or strand anything.

Ctrl-C and kills are synchronised on what the processes say, never on a
delay: the helper is known ready once it has written a report, and the
report helper's test hook (W2S_GGUF_TEST_STOP=report-helper:0:hold:FIFO)
holds it at its very first line, inside the window before it can ignore
SIGINT itself.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import wait_for_line
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
        assert reports._helper.is_alive()  # it wrote them: a failed helper would be replaced by writing here
    assert [p.name for p in paths] == [p.name for p in expected] == ["report.md", "accuracy.png", "pgr.png", "misfit.png"]
    # Byte for byte: another process, from results.json alone, renders the very same files.
    for path in paths:
        assert path.read_bytes() == (here / path.name).read_bytes(), path.name
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


# The main process of a run, reduced to what matters here. argv: folder, then "ready" (write one
# report first, so the helper has warmed up and is waiting), "starting" (do not) or "kill" (write
# one, then die by SIGKILL). It prints the helper's pid, "waiting" once it waits for Ctrl-C, and after
# Ctrl-C writes the report again and says who wrote it: "helper" (it survived) or "here".
CHILD = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from w2s_gguf.report import load_results
    from w2s_gguf.report.background import ReportWriter

    folder, mode = Path(sys.argv[1]), sys.argv[2]
    with ReportWriter() as reports:
        print(reports._helper.pid, flush=True)
        if mode != "starting":
            reports.write(folder, load_results(folder))
        if mode == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        try:  # "waiting" inside the try: a Ctrl-C right after the test reads it still lands here
            print("waiting", flush=True)
            sys.stdin.readline()  # the test never writes: only Ctrl-C ends this
        except KeyboardInterrupt:
            reports.write(folder, load_results(folder))
            alive = reports._helper is not None and reports._helper.is_alive()
            print("helper" if alive else "here", flush=True)
            sys.exit(130)
""")


def start_child(folder: Path, mode: str, stop: str | None = None) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "W2S_GGUF_TEST_STOP"}
    if stop:
        env["W2S_GGUF_TEST_STOP"] = stop
    # Its own session, like a terminal's foreground job: Ctrl-C goes to every process of the group.
    return subprocess.Popen([sys.executable, "-c", CHILD, str(folder), mode], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)


def gone(pid: int) -> bool:
    """The process has exited (a zombie not yet reaped by init counts as exited)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")


def test_the_helper_never_outlives_a_killed_main_process(tmp_path):
    proc = start_child(results_folder(tmp_path, "run"), "kill")
    # The helper shares the pipes: communicate() returns only once it has exited too.
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    assert gone(int(out.split()[0])), "the helper outlived its killed parent"
    assert "Traceback" not in err, err


def test_ctrl_c_once_the_helper_is_ready_reaches_the_whole_group_without_a_helper_traceback(tmp_path):
    folder = results_folder(tmp_path, "run")
    proc = start_child(folder, "ready")
    pid = int(proc.stdout.readline())
    assert proc.stdout.readline() == "waiting\n"  # one report written: the helper is warm and waiting
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal does: every process of the foreground group
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert out == "helper\n", "the helper died of the Ctrl-C instead of ignoring it"
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert gone(pid) and (folder / "report.md").is_file()


def test_ctrl_c_while_the_helper_is_still_starting_is_ignored_by_it(tmp_path):
    fifo = tmp_path / "hold"
    os.mkfifo(fifo)
    proc = start_child(results_folder(tmp_path, "run"), "starting", f"report-helper:0:hold:{fifo}")
    try:
        pid = int(proc.stdout.readline())
        assert proc.stdout.readline() == "waiting\n"
        wait_for_line(proc, "test hook: hold after report-helper 0")  # at its first line: it cannot ignore SIGINT yet
        held = os.open(fifo, os.O_WRONLY)  # returns once the helper has opened its end: it waits on us
        os.killpg(proc.pid, signal.SIGINT)
        os.close(held)  # let it go on: it must carry on as if the Ctrl-C had come after it started
        out, err = proc.communicate(timeout=120)
    finally:  # a failed check must not leave the group behind
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert out == "helper\n", "the helper died of the Ctrl-C instead of ignoring it"
    assert gone(pid)
