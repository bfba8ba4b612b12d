"""One command for a machine with a GPU: install dlexp on a CUDA torch, run the GPU tests, measure the speed.

    python benchmarks/device_check.py OUT [--budget 480] [--dry-run]

Run from the repository root. Steps, in order of importance, each one time-boxed:
  1. install: `pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cu126` (the README's GPU
     instructions); if that fails, the torch already installed, else `pip install torch==2.13.0`; then
     `pip install -e ".[test]"`. Says which torch it got.
  2. versions: Python, torch, CUDA, cuDNN, Lightning, dlexp, the device and the cores.
  3. gpu_tests: the tests marked `gpu` (tests/gpu), one row each.
  4. speed_mlp, speed_cnn: `dlexp train` against the bare loop on the device (benchmarks/train_overhead.py):
     per-epoch ratio, steady-state ratio, fixed overhead; the MLP workload of the README and a CNN on
     24,000 images of 3 x 64 x 64.
  5. launchers: a learning curve with Hydra's basic launcher and with joblib on every core
     (benchmarks/launchers.py).
OUT/device_check.json and OUT/device_check.md (one table of every figure) are rewritten after each step, so
a kill keeps what was measured; a step that would not fit in what is left of --budget (seconds of wall time,
default 480) is marked skipped, and every command stops at the budget. OUT/logs/ holds each step's output.
--dry-run walks the same steps on the CPU at tiny sizes without installing anything (CI runs it:
tests/test_device_check.py); about a minute of CPU time.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CUDA_TORCH = ["torch==2.13.0", "--index-url", "https://download.pytorch.org/whl/cu126"]
RESERVE = 5.0  # seconds kept back at the end to write the files

VERSIONS = r"""
import importlib.metadata as md, json, os, platform
out = {"python": platform.python_version(), "platform": platform.platform()}
try:
    import torch
    out.update(torch=torch.__version__, cuda=torch.version.cuda, cuda_available=torch.cuda.is_available(),
               cudnn=torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
               gpus=torch.cuda.device_count())
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        out.update(device=torch.cuda.get_device_name(0), capability=".".join(map(str, torch.cuda.get_device_capability(0))),
                   memory_gib=round(p.total_memory / 2**30, 1), bf16=torch.cuda.is_bf16_supported())
    else:
        out["device"] = "cpu"
except Exception as exc:
    out["torch"] = f"not importable: {type(exc).__name__}: {exc}"
for name in ("pytorch-lightning", "dlexp", "mlflow", "hydra-core", "numpy"):
    try:
        out[name] = md.version(name)
    except md.PackageNotFoundError:
        out[name] = None
print("VERSIONS " + json.dumps(out))
"""


class Check:
    """The figures so far, written to OUT after every step; the budget and the commands' time boxes."""

    def __init__(self, out: Path, budget: float, dry: bool):
        self.out, self.budget, self.dry, self.t0 = out, budget, dry, time.monotonic()
        (out / "logs").mkdir(parents=True, exist_ok=True)
        self.data = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                     "dry_run": dry, "budget_s": budget, "elapsed_s": 0.0, "versions": {}, "steps": {},
                     "figures": []}
        self.env = dict(os.environ, COLUMNS="400", PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_BREAK_SYSTEM_PACKAGES="1",
                        PIP_NO_INPUT="1", MPLBACKEND="Agg", PYTHONUNBUFFERED="1",
                        DLEXP_RUNS_DIR=tempfile.mkdtemp(prefix="dlexp-device-check-"))
        for name in ("DLEXP_TRACKING_URI", "MLFLOW_TRACKING_URI"):
            self.env.pop(name, None)
        if dry:  # on the CPU even where there is a GPU
            self.env["CUDA_VISIBLE_DEVICES"] = ""

    def left(self) -> float:
        return self.budget - (time.monotonic() - self.t0)

    def figure(self, step: str, name: str, value, note: str = "") -> None:
        if isinstance(value, float):
            value = round(value, 4)
        self.data["figures"].append({"step": step, "figure": name, "value": value, "note": note})

    def status(self, step: str, status: str, seconds: float) -> None:
        self.data["steps"][step] = {"status": status, "seconds": round(seconds, 1)}
        self.figure(step, "status", status, f"{seconds:.1f} s")
        print(f"device_check: {step}: {status} ({seconds:.1f} s; {self.left():.0f} s of the budget left)", flush=True)
        self.save()

    def run(self, step: str, cmd: list[str], cap: float) -> tuple[int | None, str]:
        """The command's exit code (None: stopped at its time box) and its output, also kept in OUT/logs/."""
        timeout = max(1.0, min(cap, self.left() - RESERVE))
        log = self.out / "logs" / f"{step}.log"
        with open(log, "a") as f:
            f.write(f"$ {' '.join(cmd)}   (time box {timeout:.0f} s)\n")
            f.flush()
            start = f.tell()
            proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=f, stderr=subprocess.STDOUT,
                                    start_new_session=True)  # its own group: a time box stops its children too
            try:
                code: int | None = proc.wait(timeout)
            except subprocess.TimeoutExpired:
                code = None
                for sig in (signal.SIGTERM, signal.SIGKILL):
                    try:
                        os.killpg(proc.pid, sig)
                        proc.wait(5)
                        break
                    except (ProcessLookupError, subprocess.TimeoutExpired):
                        continue
        with open(log) as f:
            f.seek(start)
            output = f.read()
        return code, output

    def save(self) -> None:
        self.data["elapsed_s"] = round(time.monotonic() - self.t0, 1)
        for name, text in (("device_check.json", json.dumps(self.data, indent=2)), ("device_check.md", markdown(self.data))):
            tmp = self.out / f".{name}.tmp"
            tmp.write_text(text)
            tmp.replace(self.out / name)


def markdown(data: dict) -> str:
    v = data["versions"]
    device = v.get("device", "not known yet")
    if v.get("memory_gib"):
        device += f" ({v['memory_gib']} GiB, compute capability {v.get('capability')}, {v.get('gpus')} GPU(s))"
    lines = [f"# dlexp device check{' (dry run, CPU)' if data['dry_run'] else ''}", "",
             f"- date: {data['date']}", f"- device: {device}; {v.get('cores', '?')} cores",
             "- versions: " + ", ".join(f"{k} {v.get(k)}" for k in ("python", "torch", "cuda", "cudnn",
                                                                     "pytorch-lightning", "dlexp") if k in v),
             f"- wall time: {data['elapsed_s']} s of a {data['budget_s']:.0f} s budget", "",
             "| step | figure | value | note |", "|---|---|---|---|"]
    for f in data["figures"]:
        cells = [f["step"], f["figure"], str(f["value"]), f["note"]]
        lines.append("| " + " | ".join(c.replace("|", "/").replace("\n", " ") for c in cells) + " |")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------- the steps


def install(check: Check, _: dict) -> str:
    if check.dry:
        return "skipped: dry run (nothing installed)"
    pip = [sys.executable, "-m", "pip", "install", "--retries", "1", "--timeout", "20"]
    before = probe_torch(check)
    cpu_build = bool(before and not before[1] and before[0].endswith("+cpu"))

    def fetched(code: int | None, out: str) -> bool:
        return code == 0 and re.search(r"^Successfully installed .*\btorch-", out, re.M) is not None

    code, out = check.run("install", pip + CUDA_TORCH, cap=200)
    if cpu_build and not fetched(code, out):  # pip kept the CPU build it found: replace it
        code, out = check.run("install", pip + ["--force-reinstall"] + CUDA_TORCH, cap=200)
    if fetched(code, out):
        source = "pip install torch==2.13.0 --index-url .../whl/cu126"
    elif before and before[1]:
        source = "already installed, with CUDA"
    else:
        code, out = check.run("install", pip + (["--force-reinstall"] if cpu_build else []) + ["torch==2.13.0"],
                              cap=150)
        source = "pip install torch==2.13.0 (PyPI)" if fetched(code, out) else \
            "already installed" if before else "none: no torch could be installed"
    got = probe_torch(check)
    check.figure("install", "torch", got[0] if got else "not importable", source)
    check.figure("install", "torch sees a GPU", bool(got and got[1]))
    # without an index (a machine cut off from the network): dlexp alone, on the packages already there
    for how in (["-e", ".[test]"], ["-e", ".", "pytest", "psutil"], ["--no-deps", "--no-build-isolation", "-e", "."]):
        code, out = check.run("install", pip + how, cap=180)
        if code == 0:
            check.figure("install", "dlexp", "pip install " + " ".join(how))
            return "done"
    check.figure("install", "dlexp", "install failed", (out.strip().splitlines() or [""])[-1][:200])
    return "failed: pip install -e .[test] (see logs/install.log)"


def probe_torch(check: Check) -> tuple[str, bool] | None:
    code, out = check.run("install", [sys.executable, "-c", "import torch; print('TORCH', torch.__version__, "
                                      "torch.cuda.is_available())"], cap=90)
    found = re.search(r"^TORCH (\S+) (True|False)$", out, re.M)
    return (found[1], found[2] == "True") if code == 0 and found else None


def versions(check: Check, ctx: dict) -> str:
    code, out = check.run("versions", [sys.executable, "-c", VERSIONS], cap=90)
    found = re.search(r"^VERSIONS (.*)$", out, re.M)
    if not found:
        return f"failed: exit {code} (see logs/versions.log)"
    v = json.loads(found[1])
    v["cores"] = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
        if smi.returncode == 0:
            v["nvidia-smi"] = smi.stdout.strip().replace("\n", "; ")
    except (OSError, subprocess.TimeoutExpired):
        pass
    check.data["versions"] = v
    for key, value in v.items():
        check.figure("versions", key, value)
    print("device_check: " + ", ".join(f"{k} {val}" for k, val in v.items()), flush=True)
    ctx["accelerator"] = "gpu" if v.get("cuda_available") and not check.dry else "cpu"
    ctx["cores"] = v["cores"]
    return "done"


RESULT = re.compile(r"^(tests/\S+::\S+) (PASSED|FAILED|SKIPPED|ERROR|XFAIL|XPASS)(?: \((.*)\))?(?:\s+\[\s*\d+%\])?$", re.M)


def gpu_tests(check: Check, _: dict) -> str:
    code, out = check.run("gpu_tests", [sys.executable, "-m", "pytest", "tests/gpu", "-m", "gpu", "-v",
                                        "-p", "no:cacheprovider", "-o", "console_output_style=classic"], cap=240)
    failures = dict(re.findall(r"^(?:FAILED|ERROR) (tests/\S+::\S+) - (.*)$", out, re.M))
    counts: dict[str, int] = {}
    for test, outcome, reason in RESULT.findall(out):
        counts[outcome] = counts.get(outcome, 0) + 1
        check.figure("gpu_tests", test.split("::", 1)[1], outcome, (reason or failures.get(test, ""))[:300])
    summary = ", ".join(f"{n} {k.lower()}" for k, n in sorted(counts.items())) or "no test ran"
    check.figure("gpu_tests", "summary", summary)
    if code is None:
        return f"stopped at its time box ({summary})"
    return "done" if code in (0, 5) else f"failed ({summary}; see logs/gpu_tests.log)"


def speed(workload: str):
    def step(check: Check, ctx: dict) -> str:
        name = f"speed_{workload}"
        if check.dry:
            sizes = ["--repeat", "1", "--epochs", "1", "2", "--no-warmup"] + \
                (["--n-train", "2000"] if workload == "mlp" else ["--n-train", "600", "--image-size", "16"])
            cap = 300.0
        else:
            repeat = "2" if check.left() > (300 if workload == "cnn" else 200) else "1"
            sizes = ["--repeat", repeat] + (["--epochs", "1", "9"] if workload == "mlp" else ["--epochs", "1", "5"])
            cap = 200.0
        figures = check.out / f"{name}.json"
        code, _ = check.run(name, [sys.executable, str(ROOT / "benchmarks" / "train_overhead.py"), "--workload",
                                   workload, "--accelerator", ctx.get("accelerator", "cpu"), *sizes,
                                   "--json", str(figures)], cap=cap)
        if figures.is_file():
            f = json.loads(figures.read_text())
            check.figure(name, "workload", f["workload"], f"accelerator {f['accelerator']}, "
                                                         f"{f['alternations']} alternation(s)")
            lo, hi = f["epochs"]
            check.figure(name, "per-epoch ratio dlexp/bare (whole runs)", f["per_epoch_ratio"], "target <= 1.05")
            check.figure(name, "steady-state epoch ratio dlexp/bare", f["steady_ratio"], "target <= 1.05")
            check.figure(name, f"fixed overhead of a {lo}-epoch run (s)", f["fixed_overhead_s"], "target <= 4 s")
            for side in ("bare", "dlexp"):
                check.figure(name, f"{side}: s per epoch (whole runs)", f["per_epoch_s"][side])
                check.figure(name, f"{side}: steady-state s per epoch", f["steady_epoch_s"][side])
                check.figure(name, f"{side}: wall of {lo} / {hi} epochs (s)",
                             f"{f['wall_lo'][side]:.2f} / {f['wall_hi'][side]:.2f}")
        if code is None:
            return "stopped at its time box" + ("" if figures.is_file() else " before one alternation ended")
        return "done" if code == 0 else f"failed: exit {code} (see logs/{name}.log)"
    return step


def launchers(check: Check, ctx: dict) -> str:
    cores = int(ctx.get("cores") or os.cpu_count() or 2)
    if check.dry:
        sizes = ["--jobs", "2", "--points", "2", "--epochs", "1", "--n-train", "1000"]
    else:
        sizes = ["--jobs", str(cores), "--points", str(cores), "--epochs", "2", "--n-train", "16000"]
    figures = check.out / "launchers.json"
    code, _ = check.run("launchers", [sys.executable, str(ROOT / "benchmarks" / "launchers.py"), "--repeat", "1",
                                      *sizes, "--json", str(figures)], cap=300 if check.dry else 150)
    if figures.is_file():
        f = json.loads(figures.read_text())
        check.figure("launchers", "workload", f["workload"], f"{f['alternations']} alternation(s)")
        check.figure("launchers", "basic launcher (s)", f["basic_s"])
        check.figure("launchers", f"joblib, n_jobs={f['jobs']} (s)", f["joblib_s"])
        check.figure("launchers", "joblib/basic", f["ratio"])
    if code is None:
        return "stopped at its time box"
    return "done" if code == 0 else f"failed: exit {code} (see logs/launchers.log)"


# (name, the step, the seconds it needs to be worth starting on a GPU machine)
STEPS = [("install", install, 60), ("versions", versions, 15), ("gpu_tests", gpu_tests, 60),
         ("speed_mlp", speed("mlp"), 45), ("speed_cnn", speed("cnn"), 70), ("launchers", launchers, 90)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="folder for device_check.json, device_check.md and logs/")
    ap.add_argument("--budget", type=float, default=None,
                    help="seconds of wall time for everything (default 480; with --dry-run 900, so that a CPU "
                         "machine loaded by other work still walks every step)")
    ap.add_argument("--dry-run", action="store_true", help="the same steps on the CPU, tiny sizes, no install")
    args = ap.parse_args()
    budget = args.budget if args.budget is not None else 900.0 if args.dry_run else 480.0
    check = Check(args.out, budget, args.dry_run)
    check.save()
    ctx: dict = {}
    for name, step, needs in STEPS:
        if check.left() < (RESERVE + 1 if args.dry_run else needs):
            check.status(name, f"skipped: {check.left():.0f} s of the budget left", 0.0)
            continue
        start = time.monotonic()
        try:
            status = step(check, ctx)
        except Exception as exc:  # a step that breaks must not cost the ones after it
            status = f"failed: {type(exc).__name__}: {exc}"
        check.status(name, status, time.monotonic() - start)
    shutil.rmtree(check.env["DLEXP_RUNS_DIR"], ignore_errors=True)
    print(f"device_check: wrote {args.out / 'device_check.json'} and {args.out / 'device_check.md'}:\n", flush=True)
    print(markdown(check.data), flush=True)


if __name__ == "__main__":
    main()
