"""utils/slurm.sh (the Slurm backend of cmd.sh) against a fake cluster: ``sbatch``, ``squeue``, ``sacct``,
``scancel`` and ``srun`` executables on PATH that run each job script locally, in the background, as Slurm
would (array tasks with SLURM_ARRAY_TASK_ID, the --output file, job states for sacct). The script under test
is the real one; only the cluster is fake. The last tests drive asr_llm.sh stage 9 through cmd.sh's Slurm
backend, on one node and, through espnet2.bin.launch, on two."""
import json
import os
import shlex
import shutil
import sys

import pytest

from .conftest import REPO, TEMPLATE, UTILS, run

SLURM_SH = os.path.join(UTILS, "slurm.sh")

# One program for all fake commands; it looks at the name it was called by.
FAKE_CLUSTER = r'''
import json, os, re, signal, subprocess, sys, time
state_dir = os.environ["FAKE_SLURM_DIR"]
prog = globals().get("PROG") or os.path.basename(sys.argv[0])
args = sys.argv[1:]

def record(name, entry):
    with open(os.path.join(state_dir, name), "a") as f:
        f.write(json.dumps(entry) + "\n")

def states_path(job):
    return os.path.join(state_dir, f"{job}.states")

if prog == "sbatch":
    record("sbatch_calls", args)
    if os.environ.get("FAKE_SBATCH_FAIL"):
        print("sbatch: error: " + os.environ["FAKE_SBATCH_FAIL"], file=sys.stderr)
        sys.exit(1)
    opts, script = args[:-1], args[-1]
    counter = os.path.join(state_dir, "counter")
    job = int(open(counter).read()) + 1 if os.path.exists(counter) else 1001
    open(counter, "w").write(str(job))
    get = lambda key: next((a.split("=", 1)[1] for a in opts if a.startswith(key + "=")), None)
    array = get("--array")
    tasks = None
    if array:
        lo, hi = re.match(r"(\d+)-(\d+)", array).groups()
        tasks = list(range(int(lo), int(hi) + 1))
    spec = dict(job=job, script=script, tasks=tasks, output=get("--output"), nodes=get("--nodes"))
    subprocess.Popen([sys.executable, __file__, "--run-job", json.dumps(spec)], stdin=subprocess.DEVNULL,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    print(job)  # --parsable
elif args[:1] == ["--run-job"]:
    spec = json.loads(args[1])
    job, states = spec["job"], {}
    timeout_task = os.environ.get("FAKE_SLURM_TIMEOUT_TASK")
    open(os.path.join(state_dir, f"{job}.pgid"), "w").write(f"{os.getpgrp()}\n")
    for task in spec["tasks"] or [None]:
        key = str(task or 1)
        states[key] = ["RUNNING", "0:0"]
        json.dump(states, open(states_path(job), "w"))
        env = dict(os.environ, SLURM_JOB_ID=str(job), SLURM_NNODES=spec["nodes"] or "1")
        out = spec["output"].replace("%A", str(job)).replace("%a", key).replace("%j", str(job))
        if task is not None:
            env.update(SLURM_ARRAY_JOB_ID=str(job), SLURM_ARRAY_TASK_ID=str(task))
        with open(out, "w") as o:
            p = subprocess.Popen(["bash", spec["script"]], env=env, stdout=o, stderr=o, start_new_session=True)
            with open(os.path.join(state_dir, f"{job}.pgid"), "a") as f:
                f.write(f"{p.pid}\n")
            if timeout_task == key:
                time.sleep(0.5)
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
                o.write(f"slurmstepd: error: *** JOB {job} CANCELLED DUE TO TIME LIMIT ***\n")
                states[key] = ["TIMEOUT", "0:9"]
            else:
                rc = p.wait()
                states[key] = ["COMPLETED" if rc == 0 else "FAILED", f"{rc}:0"]
        json.dump(states, open(states_path(job), "w"))
    open(os.path.join(state_dir, f"{job}.finished"), "w").close()
elif prog == "squeue":
    job = args[args.index("-j") + 1]
    record("squeue_calls", args)
    if not os.path.exists(os.path.join(state_dir, f"{job}.finished")):
        print(job)
elif prog == "sacct":
    job = args[args.index("-j") + 1]
    states = json.load(open(states_path(job))) if os.path.exists(states_path(job)) else {}
    for task, (state, code) in sorted(states.items()):
        print(f"{job}_{task}|{state}|{code}")
elif prog == "scancel":
    record("scancel_calls", args)
    for pgid in reversed(open(os.path.join(state_dir, f"{args[0]}.pgid")).read().split()):  # tasks, then the job
        try:
            os.killpg(int(pgid), signal.SIGKILL)
        except ProcessLookupError:
            pass
elif prog == "srun":
    record("srun_calls", args)
    rest = list(args)
    while rest and rest[0].startswith("-"):
        rest.pop(0)
    os.execvp(rest[0], rest)
'''


@pytest.fixture
def cluster(tmp_path):
    """PATH with the fake Slurm commands; returns helpers to read what was submitted."""
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    state = tmp_path / "slurm_state"
    state.mkdir()
    prog = bin_dir / "fake_cluster.py"
    prog.write_text(FAKE_CLUSTER)
    for name in ("sbatch", "squeue", "sacct", "scancel", "srun"):
        # the fake program dispatches on the name of the command it runs as
        (bin_dir / name).write_text(
            f"#!{sys.executable}\nimport runpy\n"
            f"runpy.run_path({str(prog)!r}, init_globals=dict(PROG={name!r}), run_name='__main__')\n")
        (bin_dir / name).chmod(0o755)
    env = dict(PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", FAKE_SLURM_DIR=str(state),
               SLURM_SH_POLL_INTERVAL="0.1", SLURM_SH_SYNC_WAIT="0.5")

    def calls(name):
        path = state / name
        return [json.loads(line) for line in open(path)] if path.exists() else []

    return dict(env=env, calls=calls, state=state)


def slurm(cluster, *args, cwd, check=True, **extra_env):
    return run([SLURM_SH, *map(str, args)], cwd=str(cwd), check=check, **cluster["env"], **extra_env)


def write_conf(path, **values):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.writelines(f'{k}="{v}"\n' for k, v in values.items())


def test_array_job_runs_each_task_with_its_log(cluster, tmp_path):
    write_conf(tmp_path / "conf" / "slurm.conf", partition="cpuq", time="1:00:00", mem="2G", account="proj")
    hostile = ["a;touch INJ1", "b>INJ2", "$(touch INJ3)", "`touch INJ4`", "|", "touch", "INJ5"]
    p = slurm(cluster, "--mem", "3G", "JOB=1:3", "exp/log/hello.JOB.log", "echo", "task JOB says hi", *hostile,
              cwd=tmp_path, SLURM_SH_TIME="2:00:00")
    assert "submitted job 1001 (hello, 3 task(s))" in p.stderr
    for j in (1, 2, 3):
        lines = open(tmp_path / f"exp/log/hello.{j}.log").read().splitlines()
        assert shlex.split(lines[0][2:]) == ["echo", f"task {j} says hi", *hostile], lines[0]  # printf %q
        assert "Slurm job 1001, task" in lines[1]
        assert lines[2] == f"task {j} says hi " + " ".join(hostile)  # literal text: no shell read them
        assert lines[-1].startswith("# Ended (code 0)")
    assert not list(tmp_path.glob("**/INJ*")), "an argument reached a shell"
    (submit,) = cluster["calls"]("sbatch_calls")
    # config file < environment < option of the call
    for opt in ("--array=1-3", "--partition=cpuq", "--time=2:00:00", "--mem=3G", "--account=proj",
                "--job-name=hello", "--cpus-per-task=1", "--parsable", "--export=ALL"):
        assert opt in submit, (opt, submit)
    assert submit[-1].startswith(str(tmp_path / "exp/log/q/hello."))  # the job script, kept for inspection
    assert os.path.exists(submit[-1]) and cluster["calls"]("squeue_calls")


def test_single_job_and_throttled_array(cluster, tmp_path):
    slurm(cluster, "--name", "one", "exp/one.log", "echo", "alone", cwd=tmp_path)
    assert open(tmp_path / "exp/one.log").read().splitlines()[2] == "alone"
    slurm(cluster, "--max_jobs_run", "2", "JOB=2:4", "exp/t.JOB.log", "true", cwd=tmp_path)
    single, array = cluster["calls"]("sbatch_calls")
    assert not any(a.startswith("--array") for a in single) and "--job-name=one" in single
    assert "--array=2-4%2" in array and "--job-name=t" in array
    assert sorted(os.listdir(tmp_path / "exp")) == ["one.log", "q", "t.2.log", "t.3.log", "t.4.log"]


def test_failed_and_killed_tasks_are_named_with_their_logs(cluster, tmp_path):
    script = "if [ JOB = 2 ]; then echo broken input >&2; exit 3; fi; if [ JOB = 3 ]; then sleep 30; fi; echo ok"
    p = slurm(cluster, "JOB=1:3", "exp/w.JOB.log", "sh", "-c", script, cwd=tmp_path, check=False,
              FAKE_SLURM_TIMEOUT_TASK="3")
    assert p.returncode == 1
    err = p.stderr
    assert "job 2 of 3 failed (exit code 3); log: exp/w.2.log" in err
    assert "job 3 of 3 failed (TIMEOUT, exit code 0:9); log: exp/w.3.log" in err
    assert "job 1 of 3 failed" not in err
    assert "last lines of exp/w.2.log" in err and "broken input" in err
    # Slurm's own output of the killed task says why
    out = err.split("job 3 of 3 failed")[1].split("Slurm output: ")[1].split(")")[0]
    assert "DUE TO TIME LIMIT" in open(tmp_path / out).read()


def test_interrupt_cancels_the_job(cluster, tmp_path):
    import signal
    import subprocess
    import time

    from .conftest import env

    p = subprocess.Popen([SLURM_SH, "JOB=1:2", "exp/s.JOB.log", "sleep", "30"], cwd=tmp_path,
                         env=env(**cluster["env"]), stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 20
    while not (cluster["state"] / "1001.pgid").exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=20)
    assert p.returncode == 130 and "cancelled job 1001" in err
    assert cluster["calls"]("scancel_calls") == [["1001"]]


def test_gpu_and_multi_node_requests(cluster, tmp_path):
    write_conf(tmp_path / "site.conf", partition="cpuq", gpu_partition="gpuq", gpu_time="3-00:00:00",
               mem_per_gpu="50G", cpus_per_gpu=4, gpu_request="--gpus-per-node={n}", extra_opts="--qos=high --exclusive")
    slurm(cluster, "--config", "site.conf", "--gpu", 2, "--num_nodes", 2, "--num_threads", 2, "exp/train.log",
          "echo", "training", cwd=tmp_path)
    (submit,) = cluster["calls"]("sbatch_calls")
    for opt in ("--partition=gpuq", "--time=3-00:00:00", "--mem-per-gpu=50G", "--gpus-per-node=2",
                "--cpus-per-task=8", "--nodes=2", "--ntasks-per-node=1", "--qos=high", "--exclusive",
                "--job-name=train"):
        assert opt in submit, (opt, submit)
    assert not any(a.startswith(("--array", "--mem=")) for a in submit)


def test_submission_problems_are_clear(cluster, tmp_path):
    p = slurm(cluster, "exp/x.log", "true", cwd=tmp_path, check=False, FAKE_SBATCH_FAIL="invalid partition specified: nope")
    assert p.returncode == 1 and "sbatch failed: sbatch: error: invalid partition specified: nope" in p.stderr
    p = slurm(cluster, "--config", "missing.conf", "exp/x.log", "true", cwd=tmp_path, check=False)
    assert p.returncode == 1 and "--config missing.conf: no such file" in p.stderr
    p = run([SLURM_SH, "exp/x.log", "true"], cwd=str(tmp_path), check=False,
            PATH=f"{os.path.dirname(shutil.which('bash'))}:/usr/bin:/bin")
    assert p.returncode == 1 and "'sbatch' not found on PATH" in p.stderr
    (tmp_path / "broken.conf").write_text("partition=gpu a100\n")  # unquoted blank: runs "a100"
    p = slurm(cluster, "--config", "broken.conf", "exp/x.log", "true", cwd=tmp_path, check=False)
    assert p.returncode == 1 and "broken.conf does not run as a bash file" in p.stderr and "a100" in p.stderr
    p = slurm(cluster, "JOB=3:1", "exp/x.log", "true", cwd=tmp_path, check=False)
    assert p.returncode == 1 and "empty job range" in p.stderr


# ------------------------------------------------------------------------------------ asr_llm.sh stage 9
FAKE_PYTHON = r'''
import os, sys
args = sys.argv[1:]
if args[:2] != ["-m", "espnet_speechllm.bin.speechllm_train"]:
    os.execv(sys.executable, [sys.executable] + args)
with open(os.environ["FAKE_CALLS"], "a") as f:
    f.write(" ".join(args[2:]) + "\n")
out = args[args.index("--output_dir") + 1]
open(os.path.join(out, "config.yaml"), "w").write("fake: true\n")
print("fake training done")
'''


@pytest.fixture
def recipe(tmp_path, cluster):
    r = tmp_path / "asr1"
    (r / "conf").mkdir(parents=True)
    for name in ("asr_llm.sh", "utils", "scripts"):
        os.symlink(os.path.join(TEMPLATE, name), r / name)
    (r / "path.sh").write_text("export LC_ALL=C\n")
    shutil.copy(f"{REPO}/egs2/librispeech_llm/asr1/cmd.sh", r / "cmd.sh")
    shutil.copy(f"{REPO}/egs2/librispeech_llm/asr1/conf/slurm.conf", r / "conf" / "slurm.conf")
    (r / "conf" / "train_x.yaml").write_text("x: 1\n")
    for d in ("train_final", "dev"):
        os.makedirs(r / "dump" / "raw" / d)
        (r / "dump" / "raw" / d / "wav.scp").write_text("u1 a.wav\n")
    for mode in ("train", "valid"):
        os.makedirs(r / "exp" / "stats_train_x" / mode)
        for f in ("speech_shape", "text_shape"):
            (r / "exp" / "stats_train_x" / mode / f).write_text("u1 16000\n")
    fake = tmp_path / "fakepy.py"
    fake.write_text(FAKE_PYTHON)
    python = tmp_path / "python"
    python.write_text(f"#!/bin/sh\nexec {sys.executable} {fake} \"$@\"\n")
    python.chmod(0o755)
    return dict(dir=str(r), python=str(python), calls=str(tmp_path / "calls.txt"))


def stage9(recipe, cluster, *extra):
    args = ["./asr_llm.sh", "--stage", "9", "--stop_stage", "9", "--python", recipe["python"], "--train_set", "train",
            "--valid_set", "dev", "--test_sets", "test", "--train_config", "conf/train_x.yaml", *extra]
    return run(args, cwd=recipe["dir"], CMD_BACKEND="slurm", FAKE_CALLS=recipe["calls"], **cluster["env"])


def test_stage9_trains_through_the_slurm_backend(recipe, cluster):
    stage9(recipe, cluster, "--ngpu", "4")
    (submit,) = cluster["calls"]("sbatch_calls")
    # the librispeech conf/slurm.conf: GPU partition, time and memory of GPU jobs, 8 cores per GPU
    for opt in ("--partition=gpu", "--time=3-00:00:00", "--mem-per-gpu=120G", "--gres=gpu:4", "--cpus-per-task=32",
                "--job-name=train"):
        assert opt in submit, (opt, submit)
    log = open(f"{recipe['dir']}/exp/asr_llm_train_x/train.log").read()
    assert "fake training done" in log and log.splitlines()[-1].startswith("# Ended (code 0)")
    (train,) = [line.split() for line in open(recipe["calls"])]
    # one process per GPU through ESPnet's own spawning
    assert train[train.index("--ngpu") + 1] == "4"
    assert train[train.index("--multiprocessing_distributed") + 1] == "true"


def test_stage9_multi_node_goes_through_espnet_launch_and_srun(recipe, cluster):
    stage9(recipe, cluster, "--ngpu", "8", "--num_nodes", "2")
    (submit,) = cluster["calls"]("sbatch_calls")
    for opt in ("--nodes=2", "--ntasks-per-node=1", "--gres=gpu:8", "--partition=gpu"):
        assert opt in submit, (opt, submit)
    (srun,) = cluster["calls"]("srun_calls")
    assert srun[0] == "--export=ALL" and srun[1] == recipe["python"]
    (train,) = [line.split() for line in open(recipe["calls"])]
    # what espnet2.bin.launch adds for Slurm: one process per node that spawns one worker per GPU
    assert train[-6:-1] == ["--multiprocessing_distributed", "true", "--dist_launcher", "slurm", "--dist_init_method"]
    assert train[-1].startswith(f"file://{recipe['dir']}/exp/asr_llm_train_x/.dist_init_")
    assert train[train.index("--ngpu") + 1] == "8"
