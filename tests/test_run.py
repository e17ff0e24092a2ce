"""``run`` and ``worker``: many processes, one study, on the journal file and on PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from optuna_lcpred.curves import read_curve_table
from optuna_lcpred.curves import resolve_table_path
from optuna_lcpred.storage import open_storage
from optuna_lcpred.worker import recover_dead_worker


STUDY = """
[study]
name = "replay"
n_trials = {n_trials}

[objective]
target = "optuna_lcpred.bench:ReplayObjective"
[objective.options]
table = "mlpf_delphes"
step_seconds = {step_seconds}
{objective_extra}

[sampler]
name = "tpe"
seed = 0

[pruner]
name = "lcpred"
[pruner.options]
n_startup_trials = 5

[rdb]
heartbeat_interval = 1
grace_period = 3
max_retry = 1
"""

CLI = [sys.executable, "-m", "optuna_lcpred.cli"]
TABLE = read_curve_table(resolve_table_path("mlpf_delphes"))


def _study_file(
    tmp_path: Path, n_trials: int = 40, step_seconds: float = 0.0, checkpoint_dir: str = ""
) -> Path:
    path = tmp_path / "replay.toml"
    extra = f'checkpoint_dir = "{checkpoint_dir}"' if checkpoint_dir else ""
    path.write_text(
        STUDY.format(n_trials=n_trials, step_seconds=step_seconds, objective_extra=extra)
    )
    return path


def _cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env
    )


def _check_intact(storage: object, n_trials: int, *, some_pruned: bool = True) -> None:
    study = optuna.load_study(study_name="replay", storage=storage)  # type: ignore[arg-type]
    trials = study.get_trials()
    # Exactly the asked number of trials, each finished as COMPLETE or PRUNED.
    assert len(trials) == n_trials
    assert {t.state for t in trials} <= {TrialState.COMPLETE, TrialState.PRUNED}
    if some_pruned:
        assert any(t.state == TrialState.PRUNED for t in trials)
    for trial in trials:
        curve = TABLE.curves[trial.user_attrs["lcpred:row"]]
        steps = sorted(trial.intermediate_values)
        # Every reported curve is the table row's, step for step, with no gap.
        assert steps == list(range(len(steps)))
        np.testing.assert_array_equal(
            [trial.intermediate_values[s] for s in steps], curve[: len(steps)]
        )
        if trial.state == TrialState.COMPLETE:
            assert len(steps) == TABLE.n_steps


def test_four_workers_on_the_embedded_journal(tmp_path: Path) -> None:
    study_file = _study_file(tmp_path)
    result = _cli("run", str(study_file), "--workers", "4", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    # The default storage for several workers is the journal file, named after the study.
    assert (tmp_path / "replay.journal").is_file()
    _check_intact(open_storage(str(tmp_path / "replay.journal")), 40)
    assert "dashboard: optuna-dashboard replay.journal" in result.stdout
    # The summary names the command that says why trials were pruned, and it works as printed.
    line = next(x for x in result.stdout.splitlines() if x.startswith("why pruned: "))
    assert (
        line == "why pruned: optuna-lcpred report --storage journal:replay.journal --study replay"
    )
    report = _cli(*line.split()[3:], cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    assert "pruned: " in report.stdout and "by a prediction" in report.stdout


def test_four_workers_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    result = _cli(
        "run", str(_study_file(tmp_path)), "--workers", "4", "--storage", pg_url, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    _check_intact(pg_url, 40)


def test_one_worker_defaults_to_sqlite_and_summarises(tmp_path: Path) -> None:
    result = _cli(
        "run", str(_study_file(tmp_path)), "--n-trials", "6", "--json", "out.json", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "replay.sqlite3").is_file()
    url = f"sqlite:///{tmp_path / 'replay.sqlite3'}"
    _check_intact(url, 6, some_pruned=False)
    trials = optuna.load_study(study_name="replay", storage=url).get_trials()
    n_complete = sum(t.state == TrialState.COMPLETE for t in trials)
    epochs = sum(len(t.intermediate_values) for t in trials)
    # The summary gives the trial states, the epochs against full training, the best trial
    # and the dashboard command.
    assert f"trials: {n_complete} complete, {6 - n_complete} pruned, 0 failed" in result.stdout
    assert f"epochs trained: {epochs} of 600" in result.stdout
    assert "best: trial" in result.stdout
    assert "optuna-dashboard sqlite:///replay.sqlite3" in result.stdout
    # Running again with the same target adds nothing: the study already holds 6 trials.
    again = _cli("run", str(_study_file(tmp_path)), "--n-trials", "6", cwd=tmp_path)
    assert f"trials: {n_complete} complete" in again.stdout


def _wait_for(predicate, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("timed out waiting")


def _running_with_steps(storage: object) -> list[optuna.trial.FrozenTrial]:
    study = optuna.load_study(study_name="replay", storage=storage)  # type: ignore[arg-type]
    return [
        t
        for t in study.get_trials(states=(TrialState.RUNNING,))
        if len(t.intermediate_values) >= 3
    ]


def test_worker_stops_cleanly_on_sigterm_and_the_next_resumes_its_trial(tmp_path: Path) -> None:
    study_file = _study_file(tmp_path, n_trials=3, step_seconds=0.05, checkpoint_dir="ckpt")
    url = f"journal:{tmp_path / 'j.journal'}"
    prepared = _cli("run", str(study_file), "--workers", "0", "--storage", url, cwd=tmp_path)
    assert prepared.returncode == 0, prepared.stderr
    env = dict(os.environ, OPTUNA_LCPRED_STORAGE=url)
    worker = subprocess.Popen(
        [*CLI, "worker", str(study_file)], cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True
    )
    storage = open_storage(url)
    _wait_for(lambda: _running_with_steps(storage))
    worker.send_signal(signal.SIGTERM)
    _, err = worker.communicate(timeout=30)
    assert worker.returncode == 143, err
    study = optuna.load_study(study_name="replay", storage=open_storage(url))
    states = [t.state for t in study.get_trials()]
    # The interrupted trial is FAIL, not left RUNNING, and is queued again with the same
    # parameters; the others still wait for a worker.
    assert TrialState.RUNNING not in states
    assert states.count(TrialState.FAIL) == 1
    assert states.count(TrialState.WAITING) == 3
    stopped = study.get_trials(states=(TrialState.FAIL,))[0]
    (retry,) = [t for t in study.trials if t.user_attrs.get("lcpred:retry_of") == stopped.number]
    assert retry.system_attrs["fixed_params"] == stopped.params
    assert "trial 0 marked FAIL: the worker was stopped; queued again" in err
    # The next worker (the next Slurm allocation) finishes the study, and the retry resumes
    # the stopped replay after its last checkpointed step instead of starting it again.
    again = subprocess.run(
        [*CLI, "worker", str(study_file)], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert again.returncode == 0, again.stderr
    study = optuna.load_study(study_name="replay", storage=open_storage(url))
    resumed = study.trials[retry.number]
    assert resumed.state == TrialState.COMPLETE
    last = max(stopped.intermediate_values)  # the signal may land between report and save
    assert resumed.user_attrs["lcpred:resumed_from"] in (last - 1, last)
    assert resumed.user_attrs["lcpred:row"] == stopped.user_attrs["lcpred:row"]
    assert sorted(resumed.intermediate_values) == list(range(100))
    assert [t.state for t in study.trials].count(TrialState.COMPLETE) == 3
    assert not any(path.is_file() for path in (tmp_path / "ckpt").rglob("*"))
    # The summary counts what the stop cost: at most the step after the last checkpoint.
    summary = _cli("run", str(study_file), "--workers", "0", "--storage", url, cwd=tmp_path)
    lost = last - resumed.user_attrs["lcpred:resumed_from"]
    assert (
        f"epochs lost in failed or stopped trials: {lost} "
        "(retries resumed from checkpoints: 1)" in summary.stdout
    )


def test_a_killed_local_worker_is_recovered(tmp_path: Path) -> None:
    study_file = _study_file(tmp_path, n_trials=2, step_seconds=0.05)
    url = f"journal:{tmp_path / 'j.journal'}"
    _cli("run", str(study_file), "--workers", "0", "--storage", url, cwd=tmp_path)
    env = dict(os.environ, OPTUNA_LCPRED_STORAGE=url)
    worker = subprocess.Popen([*CLI, "worker", str(study_file)], cwd=tmp_path, env=env)
    storage = open_storage(url)
    _wait_for(lambda: _running_with_steps(storage))
    worker.kill()
    worker.wait()
    study = optuna.load_study(study_name="replay", storage=open_storage(url))
    victim = study.get_trials(states=(TrialState.RUNNING,))[0]
    # What `run` does when one of its workers dies: fail its trial and queue it again.
    assert recover_dead_worker(study, worker.pid) == [victim.number]
    assert study.trials[victim.number].state == TrialState.FAIL
    retried = [
        t
        for t in study.get_trials(states=(TrialState.WAITING,))
        if t.user_attrs.get("lcpred:retry_of") == victim.number
    ]
    assert len(retried) == 1


def test_a_journal_lock_left_by_a_killed_worker_expires(tmp_path: Path) -> None:
    # A worker killed while it appends to the journal leaves the lock behind (a symlink next to
    # the file). Optuna breaks it once it has not changed for 30 s (since 4.3, hence the floor in
    # pyproject.toml); before, every other worker waited for it for ever. In a subprocess with a
    # time limit, so that a lock that never expires fails this test instead of hanging the suite.
    url = f"journal:{tmp_path / 'j.journal'}"
    optuna.create_study(study_name="s", storage=open_storage(url))
    os.symlink(tmp_path / "j.journal", tmp_path / "j.journal.lock")  # what the killed one left
    script = (
        "import optuna; from optuna_lcpred.storage import open_storage; "
        f"study = optuna.load_study(study_name='s', storage=open_storage({url!r})); "
        "study.tell(study.ask(), 1.0); print(len(study.trials))"
    )
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=150
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == "1"  # the trial was written past the stale lock
    assert time.monotonic() - started >= 25  # by expiring it, not by finding it free


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_sigkilled_worker_is_failed_by_heartbeat_and_retried(tmp_path: Path, pg_url: str) -> None:
    study_file = _study_file(tmp_path, n_trials=8, step_seconds=0.01, checkpoint_dir="ckpt")
    env = dict(os.environ, OPTUNA_LCPRED_STORAGE=pg_url)
    assert (
        _cli(
            "run", str(study_file), "--workers", "0", "--storage", pg_url, cwd=tmp_path
        ).returncode
        == 0
    )
    victim = subprocess.Popen([*CLI, "worker", str(study_file)], cwd=tmp_path, env=env)
    _wait_for(lambda: _running_with_steps(pg_url))
    victim.kill()
    victim.wait()
    killed = _running_with_steps(pg_url)[0]
    time.sleep(3.5)  # past the grace period: the trial's heartbeat is stale
    survivor = _cli("worker", str(study_file), cwd=tmp_path, env=env)
    assert survivor.returncode == 0, survivor.stderr
    study = optuna.load_study(study_name="replay", storage=pg_url)
    trials = study.get_trials()
    # The killed trial became FAIL through its stale heartbeat, and a retry of it ran.
    assert trials[killed.number].state == TrialState.FAIL
    retries = [
        t
        for t in trials
        if optuna.storages.RetryFailedTrialCallback.retried_trial_number(t) == killed.number
    ]
    assert len(retries) == 1
    assert retries[0].state in (TrialState.COMPLETE, TrialState.PRUNED)
    # The worker's own retry callback made it: the chain is marked, and the dead run's worker
    # and predictions stayed behind (the retry carries only what its own run wrote).
    assert retries[0].user_attrs["lcpred:retry_of"] == killed.number
    assert retries[0].user_attrs["lcpred:worker"] != killed.user_attrs["lcpred:worker"]
    for key in ("lcpred:pred_final", "lcpred:step"):
        if key in killed.user_attrs:
            assert retries[0].user_attrs.get(key) != killed.user_attrs[key]
    # The retry resumed the killed replay from its checkpoint (saved after each report), and
    # its curve is whole: the saved steps reported again, then the rest.
    last = max(killed.intermediate_values)
    assert retries[0].user_attrs["lcpred:resumed_from"] in (last - 1, last)
    assert sorted(retries[0].intermediate_values) == list(
        range(len(retries[0].intermediate_values))
    )
    assert len(retries[0].intermediate_values) > last
    # Nothing else was lost: every other trial finished, none is left running or waiting.
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == 8
    assert len(trials) == 9


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://ana:hunter2@127.0.0.1:1/hpo",
        "postgresql://ana:hunter2@host.invalid:5432/hpo",
    ],
)
def test_unreachable_database_gives_one_line_without_password(tmp_path: Path, url: str) -> None:
    pytest.importorskip("psycopg2")
    result = _cli("run", str(_study_file(tmp_path)), "--storage", url, cwd=tmp_path, timeout=120)
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    # One clear line, which never shows the password.
    assert len(lines) == 1 and "cannot use the storage" in lines[0], result.stderr
    assert "hunter2" not in result.stderr + result.stdout


def test_wrong_password_gives_one_line_without_password(tmp_path: Path, pg_server: Any) -> None:
    import sqlalchemy as sa

    from optuna_lcpred.worker import with_installed_driver

    uri = str(pg_server.get_uri())
    # A role that must log in with a password: pgserver trusts local connections, so a
    # scram-sha-256 rule for that role goes first in pg_hba.conf.
    hba = Path(pg_server.pgdata) / "pg_hba.conf"
    if "lcpred_pw" not in hba.read_text():
        hba.write_text("local all lcpred_pw scram-sha-256\n" + hba.read_text())
    engine = sa.create_engine(with_installed_driver(uri), isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sa.text("DROP DATABASE IF EXISTS lcpred_pw"))
        connection.execute(sa.text("DROP ROLE IF EXISTS lcpred_pw"))
        connection.execute(sa.text("CREATE ROLE lcpred_pw LOGIN PASSWORD 'right-horse'"))
        connection.execute(sa.text("CREATE DATABASE lcpred_pw OWNER lcpred_pw"))
        connection.execute(sa.text("SELECT pg_reload_conf()"))
    engine.dispose()
    own = uri.replace("/postgres?", "/lcpred_pw?")
    right = own.replace("postgres:@", "lcpred_pw:right-horse@")
    wrong = own.replace("postgres:@", "lcpred_pw:battery-staple@")
    # The server rereads pg_hba.conf when it gets to it: wait until the rule is in force (a
    # connection without a password is refused), or the wrong password would be let in.
    deadline = time.monotonic() + 30
    while True:
        probe = sa.create_engine(with_installed_driver(own.replace("postgres:@", "lcpred_pw:@")))
        try:
            with probe.connect():
                pass
        except sa.exc.OperationalError:
            break
        finally:
            probe.dispose()
        assert time.monotonic() < deadline, "pg_hba.conf was not reloaded within 30 s"
        time.sleep(0.1)
    study_file = _study_file(tmp_path)
    # The right password connects ...
    ok = _cli("run", str(study_file), "--workers", "0", "--storage", right, cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    # ... the wrong one gives one clear line that names the cause and never the password.
    result = _cli("run", str(study_file), "--storage", wrong, cwd=tmp_path)
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "password authentication failed" in lines[0], result.stderr
    assert "battery-staple" not in result.stderr + result.stdout


def test_wrong_database_name_on_postgresql(tmp_path: Path, postgres: str) -> None:
    url = postgres.replace("/postgres?", "/no_such_db?").replace("postgres:@", "postgres:pw@")
    result = _cli("run", str(_study_file(tmp_path)), "--storage", url, cwd=tmp_path)
    assert result.returncode == 1
    assert "no_such_db" in result.stderr and "pw@" not in result.stderr


def test_a_wrong_objective_target_is_reported_before_the_study_is_created(tmp_path: Path) -> None:
    study_file = _study_file(tmp_path)
    study_file.write_text(
        study_file.read_text().replace(
            "optuna_lcpred.bench:ReplayObjective", "optuna_lcpred.bench:NoSuchObjective"
        )
    )
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    result = _cli("run", str(study_file), "--storage", url, cwd=tmp_path)
    assert result.returncode == 1
    assert "objective.target 'optuna_lcpred.bench:NoSuchObjective' cannot be imported" in (
        result.stderr
    )
    # Nothing was created for it: no study to clean up, no trials queued.
    assert optuna.get_all_study_names(storage=url) == []


def test_worker_on_a_missing_study_says_what_to_do(tmp_path: Path) -> None:
    url = f"journal:{tmp_path / 'empty.journal'}"
    result = _cli("worker", str(_study_file(tmp_path)), "--storage", url, cwd=tmp_path)
    assert result.returncode == 1
    assert "--workers 0" in result.stderr


def test_sigterm_turned_into_another_error_by_library_code_still_stops(tmp_path: Path) -> None:
    # SIGTERM can land inside library code that turns the worker's exception into its own
    # error (Optuna's journal-file lock did, releasing twice); the worker still stops.
    from optuna_lcpred.studyfile import load_study_file
    from optuna_lcpred.worker import WorkerTerminated
    from optuna_lcpred.worker import prepare_study
    from optuna_lcpred.worker import run_worker

    config = load_study_file(_study_file(tmp_path, n_trials=3))
    storage = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    prepare_study(config, storage)
    started: list[int] = []

    def objective(trial: optuna.Trial) -> float:
        started.append(trial.number)
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises before this ends
        except BaseException as exc:
            raise FileNotFoundError("lock file vanished") from exc
        return 1.0

    with pytest.raises(WorkerTerminated):
        run_worker(config, storage, objective=objective)
    study = optuna.load_study(study_name="replay", storage=storage)
    assert started == [0]  # no further trial was started
    assert study.trials[0].state == TrialState.FAIL
    # The stopped trial is queued again (trial 3); the two others still wait.
    assert [t.state for t in study.trials[1:]] == [TrialState.WAITING] * 3
    assert study.trials[3].user_attrs["lcpred:retry_of"] == 0
    # Every trial the package queued says so, the retry included.
    assert all(t.user_attrs["lcpred:queued"] is True for t in study.trials)


def test_ctrl_c_queues_the_running_trial_again(tmp_path: Path) -> None:
    from optuna_lcpred.studyfile import load_study_file
    from optuna_lcpred.worker import prepare_study
    from optuna_lcpred.worker import run_worker

    config = load_study_file(_study_file(tmp_path, n_trials=2))
    storage = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    prepare_study(config, storage)

    def objective(trial: optuna.Trial) -> float:
        trial.suggest_float("x", 0.0, 1.0)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_worker(config, storage, objective=objective)
    study = optuna.load_study(study_name="replay", storage=storage)
    # Stopped by the user, not failed by the objective: the study keeps its 2 live trials, and
    # running it again trains the interrupted one with the same parameters.
    assert [t.state for t in study.trials] == [TrialState.FAIL] + [TrialState.WAITING] * 2
    assert study.trials[2].user_attrs["lcpred:retry_of"] == 0
    assert study.trials[2].system_attrs["fixed_params"] == study.trials[0].params


def test_workers_are_dealt_out_over_the_gpus(tmp_path: Path) -> None:
    # No GPU is needed: the assignment is CUDA_VISIBLE_DEVICES, which each trial records.
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    study_file = _study_file(tmp_path, n_trials=8, step_seconds=0.005)
    result = _cli("run", str(study_file), "--workers", "2", "--gpus", "3,5", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    trials = optuna.load_study(
        study_name="replay", storage=open_storage(str(tmp_path / "replay.journal"))
    ).get_trials()
    by_worker: dict[str, set[str]] = {}
    for trial in trials:
        by_worker.setdefault(trial.user_attrs["lcpred:worker"], set()).add(
            trial.user_attrs["lcpred:cuda_visible_devices"]
        )
    # Each worker kept one GPU, and the two workers got different ones.
    assert sorted(by_worker.values(), key=sorted) == [{"3"}, {"5"}]


def test_gpu_assignment_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    from optuna_lcpred.worker import assign_gpus

    assert assign_gpus("0,1,2,3", 6) == ["0", "1", "2", "3", "0", "1"]
    assert assign_gpus(" GPU-a , GPU-b ", 2) == ["GPU-a", "GPU-b"]
    assert assign_gpus("none", 3) == [None, None, None]
    # "auto" deals out what CUDA_VISIBLE_DEVICES lists, and leaves one GPU (or none) alone.
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,6")
    assert assign_gpus("auto", 3) == ["4", "6", "4"]
    assert assign_gpus("auto", 1) == [None]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2")
    assert assign_gpus("auto", 4) == [None] * 4
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert assign_gpus("auto", 4) == [None] * 4
    with pytest.raises(ValueError, match=r"comma-separated list .* got '0,,1'"):
        assign_gpus("0,,1", 2)


def test_bad_gpus_option_is_a_usage_error(tmp_path: Path) -> None:
    result = _cli("run", str(_study_file(tmp_path)), "--workers", "2", "--gpus", ",", cwd=tmp_path)
    assert result.returncode == 1
    assert "--gpus" in result.stderr and "','" in result.stderr
    assert not (tmp_path / "replay.journal").exists()  # nothing was created
