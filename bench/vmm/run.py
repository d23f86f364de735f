#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""End-to-end exit costs: the same guest on busmap-vmm, on QEMU under KVM and on kvm-floor.

usage: run.py [--build DIR] [--runs R] [--quick] [--n1 N] [--n2 N] [--cases A,B,...]
              [--json FILE] [--no-qemu] [--instr] [-v]

Every case runs bench.rom (vmm/guests/bench.c) with its case number and iteration count
patched into the image; the cost of one iteration is (t(N2) - t(N1)) / (N2 - N1), which
cancels start-up and tear-down. Implementations alternate within each run (the order
rotates from run to run) and every figure is the median of R runs. The SeaBIOS case is the
wall time of one boot to a boot sector that exits at once. --instr adds, for busmap-vmm
and the floor, the user-space instructions per exit counted by callgrind: what the VMM
itself adds to an exit, free of timing noise (--runs 0 --instr: the counts alone).

Without a usable /dev/kvm the whole benchmark runs inside the nested KVM of
tests/vmm/nested/run.sh (a Linux guest under QEMU TCG): figures there are those of a
software-emulated CPU and only comparable within one run.
Exit status: 0, 1 when a guest gave a wrong status, 77 when no KVM can be had.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "tests", "vmm", "kvm"))
from kvmtest import kvm_problem  # noqa: E402  (the same test of /dev/kvm as the tests)

SKIP = 77
PASS = 3  # isa-debug-exit verdict 1
SEABIOS = "/usr/share/seabios/bios.bin"
HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.normpath(os.path.join(HERE, "..", ".."))
NESTED = os.path.join(SOURCE, "tests", "vmm", "nested", "run.sh")
IMPLS = ("busmap-vmm", "qemu", "kvm-floor")
VERBOSE = False

# The parameter block of bench.rom: magic, then case, iterations, vCPUs (little-endian).
PARAM_MAGIC = b"BMBENCH\0"

# name: (case number in bench.c, vCPUs, exits per iteration, what one iteration is)
CASES = {
    "port-read": (1, 1, 1, "inb from pci-testdev's I/O BAR"),
    "port-write": (2, 1, 1, "outb to pci-testdev's I/O BAR"),
    "mmio-read": (3, 1, 1, "byte read from pci-testdev's memory BAR"),
    "mmio-write": (4, 1, 1, "byte write to pci-testdev's memory BAR"),
    "config-read-cf8": (5, 1, 2, "CF8 address write and CFC dword read"),
    "config-read-ecam": (6, 1, 1, "ECAM dword read"),
    "bar-move": (7, 1, 2, "memory BAR moved and moved back through CFC (CF8 set once)"),
    "mmio-read-2vcpu": (3, 2, 1, "byte read from the memory BAR on each of 2 vCPUs at once"),
    "seabios-boot": (0, 1, 0, "SeaBIOS to a boot sector that exits at once (wall time)"),
}


def need_kvm(build):
    """Returns when KVM works here; otherwise runs this same benchmark in the nested KVM
    and exits with its status."""
    problem = kvm_problem()
    if not problem:
        return
    if os.environ.get("BUSMAP_IN_NESTED") == "1" or not os.access(NESTED, os.X_OK):
        print(f"SKIP: no usable KVM ({problem})")
        sys.exit(SKIP)
    timeout = os.environ.get("BUSMAP_NESTED_TIMEOUT", "7200")
    cmd = [NESTED, "--timeout", timeout, "--rw", build, "--",
           "env", "BUSMAP_IN_NESTED=1", sys.executable, os.path.abspath(__file__)]
    cmd += sys.argv[1:]
    print(f"{problem}: running in the nested KVM (QEMU TCG; slow, figures only "
          f"comparable within this run)", flush=True)
    print("$ " + " ".join(cmd), flush=True)
    sys.exit(subprocess.run(cmd, stdin=subprocess.DEVNULL).returncode)


def patched_rom(rom, tmp, case, iterations, vcpus):
    data = bytearray(open(rom, "rb").read())
    at = data.find(PARAM_MAGIC)
    if at < 0 or data.find(PARAM_MAGIC, at + 1) >= 0:
        sys.exit(f"run.py: {rom} has no single parameter block")
    at += len(PARAM_MAGIC)
    for i, v in enumerate((case, iterations, vcpus)):
        data[at + 4 * i:at + 4 * i + 4] = v.to_bytes(4, "little")
    path = os.path.join(tmp, f"bench-{case}-{iterations}-{vcpus}.rom")
    with open(path, "wb") as f:
        f.write(data)
    return path


def boot_disk(bootdisk, bootsect, tmp):
    """The boot disk with its boot sector replaced by one that exits at once, so that the
    firmware sees the same disk (size, geometry) as in the whole-guest tests."""
    path = os.path.join(tmp, "bench-bootdisk.img")
    shutil.copyfile(bootdisk, path)
    sector = open(bootsect, "rb").read()
    if len(sector) != 512 or sector[510:] != b"\x55\xaa":
        sys.exit(f"run.py: {bootsect} is not a 512-byte boot sector")
    with open(path, "r+b") as f:
        f.write(sector)
    return path


def commands(impl, paths, rom, vcpus, machine="pc", disk=None):
    """The command line of one run: the same devices at the same slots everywhere (the
    floor has none)."""
    smp = ["-smp", str(vcpus)]
    if impl == "kvm-floor":
        return [paths["floor"], "-m", "128"] + smp + ["-bios", rom]
    if impl == "busmap-vmm":
        cmd = [paths["vmm"], "-m", "128"] + smp + ["-bios", rom, "-serial", "none",
               "-device", "pci-testdev,addr=2",
               "-device", "isa-debug-exit,iobase=0x501,iosize=2"]
        if disk:
            cmd += ["-device", f"virtio-blk,file={disk},addr=4"]
        return cmd
    cmd = [paths["qemu"], "-accel", "kvm", "-M", machine, "-m", "128"] + smp
    cmd += ["-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
            "-serial", "none", "-monitor", "none", "-bios", rom,
            "-device", "pci-testdev,addr=2",
            "-device", "isa-debug-exit,iobase=0x501,iosize=2"]
    if disk:
        cmd += ["-drive", f"file={disk},if=none,id=d0,format=raw",
                "-device", "virtio-blk-pci,drive=d0,addr=4,disable-modern=on"]
    return cmd


def timed(cmd, timeout):
    """Wall, user and system nanoseconds of one run, which must end with verdict 1. A run
    past its timeout is killed; one that does not even die then (a vCPU stuck in the
    kernel, seen under the nested KVM) is left behind, so that the benchmark goes on."""
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter_ns()
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=err)
        deadline, killed = time.monotonic() + timeout, False
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                if killed:
                    raise RuntimeError(f"still running 30 s after SIGKILL: {' '.join(cmd)}")
                p.kill()
                deadline, killed = time.monotonic() + 30, True
            time.sleep(0.002)
        wall = time.perf_counter_ns() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        if p.returncode != PASS:
            err.seek(0)
            msg = err.read().decode("utf-8", "replace")[-2000:]
            raise RuntimeError(f"status {p.returncode}, expected {PASS}: {' '.join(cmd)}"
                               f"\n{msg}")
    return wall, round(ru.ru_utime * 1e9), round(ru.ru_stime * 1e9)


def median(xs):
    return statistics.median(xs) if xs else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(SOURCE, "build"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="3 runs of 500 and 5500 iterations")
    ap.add_argument("--n1", type=int)
    ap.add_argument("--n2", type=int)
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--json")
    ap.add_argument("--no-qemu", action="store_true")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every run's times")
    ap.add_argument("--instr", action="store_true",
                    help="also count user-space instructions per exit under callgrind "
                         "(busmap-vmm and kvm-floor)")
    a = ap.parse_args()
    global VERBOSE
    VERBOSE = a.verbose
    build = os.path.abspath(a.build)
    n1 = a.n1 or (500 if a.quick else 1000)
    n2 = a.n2 or (5500 if a.quick else 21000)
    runs = 3 if a.quick else a.runs
    if not 0 < n1 < n2 or runs < 0 or (runs == 0 and not a.instr):
        sys.exit("run.py: needs 0 < --n1 < --n2, and --runs >= 1 (0 only with --instr)")
    cases = [c for c in a.cases.split(",") if c]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        sys.exit(f"run.py: unknown case(s) {', '.join(unknown)} (known: {', '.join(CASES)})")
    paths = {
        "vmm": os.path.join(build, "vmm", "busmap-vmm"),
        "floor": os.path.join(build, "bench", "vmm", "kvm-floor"),
        "rom": os.path.join(build, "bench", "vmm", "bench.rom"),
        "bootsect": os.path.join(build, "bench", "vmm", "bench-bootsect.bin"),
        "bootdisk": os.path.join(build, "vmm", "guests", "bootdisk.img"),
    }
    for key in ("vmm", "floor", "rom"):
        if not os.path.isfile(paths[key]):
            print(f"SKIP: {paths[key]} is missing (build first: ninja -C {build})")
            return SKIP
    need_kvm(build)

    impls = list(IMPLS)
    qemu = shutil.which("qemu-system-x86_64")
    if a.no_qemu:
        impls.remove("qemu")
    elif not qemu:
        print("QEMU: qemu-system-x86_64 is not installed; its column is left out")
        impls.remove("qemu")
    paths["qemu"] = qemu
    json_path = a.json or os.path.join(build, "bench", "vmm", "vmm-bench.json")

    results = []
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name in cases:
            number, vcpus, exits, what = CASES[name]
            print(f"== {name}: {what}", flush=True)
            if name == "seabios-boot":
                res = seabios_case(paths, impls, runs, tmp) if runs else []
            else:
                res = exit_case(paths, impls, runs, tmp, name, number, vcpus, exits, n1, n2)
                if a.instr:
                    count_case(paths, res, tmp, number, vcpus, exits)
            for r in res:
                if r.get("error"):
                    failures += 1
                    print(f"   {r['implementation']}: FAILED: {r['error']}", flush=True)
            for r in res:
                r["kvm"] = "nested" if os.environ.get("BUSMAP_IN_NESTED") == "1" else "host"
            results += res
    table(results, n1, n2, runs)
    with open(json_path, "w") as f:
        json.dump([{k: v for k, v in r.items() if v is not None} for r in results], f,
                  indent=1)
        f.write("\n")
    print(f"JSON: {json_path}")
    return 1 if failures else 0


def alternate(impls, runs, measure, show, unit):
    """Runs measure(impl) for every implementation in each of the runs, the first one
    changing from run to run so that none always starts on a machine the previous one left
    busy. Returns the samples and the first error of each implementation, which then
    sits out the remaining runs."""
    samples = {impl: [] for impl in impls}
    errors = {}
    for run in range(runs):
        k = run % len(impls)
        line = []
        for impl in impls[k:] + impls[:k]:
            if impl in errors:
                continue
            try:
                samples[impl].append(measure(impl))
            except (RuntimeError, subprocess.TimeoutExpired) as e:
                errors[impl] = str(e)
                continue
            line.append(f"{impl} {show(samples[impl][-1]):.1f}")
        print(f"   run {run + 1}: {unit}: " + ", ".join(line), flush=True)
    return samples, errors


def exit_case(paths, impls, runs, tmp, name, number, vcpus, exits, n1, n2):
    """Per-iteration wall, user and system time, one (t(N2) - t(N1)) difference per run;
    medians over the runs."""
    roms = {n: patched_rom(paths["rom"], tmp, number, n, vcpus) for n in (n1, n2)}

    def measure(impl):
        # QEMU's pc has no ECAM; its q35 has one at 0xb0000000, as busmap-vmm does.
        machine = "q35" if (impl == "qemu" and name == "config-read-ecam") else "pc"
        t = {n: timed(commands(impl, paths, roms[n], vcpus, machine), 120 + n // 100)
             for n in (n1, n2)}
        if VERBOSE:
            print(f"   {impl}: t({n1}) {t[n1][0] / 1e6:.1f} ms, t({n2}) "
                  f"{t[n2][0] / 1e6:.1f} ms", flush=True)
        return [(b - a) / (n2 - n1) for a, b in zip(t[n1], t[n2])]

    samples, errors = alternate(impls, runs, measure, lambda x: x[0] / exits / 1000,
                                "us/exit")
    out = []
    for impl in impls:
        got = samples[impl]
        r = {"case": name, "implementation": impl, "vcpus": vcpus, "runs": len(got),
             "exits_per_op": exits,
             "machine": None if impl == "kvm-floor" else
             ("q35" if impl == "qemu" and name == "config-read-ecam" else "pc"),
             "error": errors.get(impl)}
        if got:
            wall = [g[0] for g in got]
            op = median(wall)
            r.update({
                "ns_per_op": round(op, 1),
                "ns_per_exit": round(op / exits, 1),
                "ns_per_exit_min": round(min(wall) / exits, 1),
                "ns_per_exit_max": round(max(wall) / exits, 1),
                # CPU time of the whole process (every vCPU thread) per exit it served.
                "user_ns_per_exit": round(median([g[1] for g in got]) / exits / vcpus, 1),
                "sys_ns_per_exit": round(median([g[2] for g in got]) / exits / vcpus, 1),
            })
        out.append(r)
    return out


CALLGRIND_N = (200, 1200)


def count_case(paths, res, tmp, number, vcpus, exits):
    """User-space instructions per exit: callgrind's totals of the whole process (every
    thread) at two iteration counts. The guest runs in KVM, so only the VMM's own work
    is counted, free of the timing noise of a shared (or emulated) machine."""
    valgrind = shutil.which("valgrind")
    if not valgrind:
        print("   instructions: valgrind is not installed")
        return
    n1, n2 = CALLGRIND_N
    for r in res:
        impl = r["implementation"]
        if impl == "qemu":
            continue  # its start-up alone takes minutes under callgrind
        ir = {}
        for n in (n1, n2):
            rom = patched_rom(paths["rom"], tmp, number, n, vcpus)
            out = os.path.join(tmp, "callgrind.out")
            cmd = [valgrind, "--tool=callgrind", f"--callgrind-out-file={out}",
                   "--dump-instr=no", "--compress-strings=no"]
            try:
                timed(cmd + commands(impl, paths, rom, vcpus), 300)
            except (RuntimeError, subprocess.TimeoutExpired) as e:
                print(f"   instructions, {impl}: {e}")
                break
            with open(out) as f:
                for line in f:
                    if line.startswith(("summary:", "totals:")):
                        ir[n] = int(line.split()[1])
                        break
        if len(ir) == 2:
            r["instructions_per_exit"] = round((ir[n2] - ir[n1]) / (n2 - n1) / exits / vcpus)
            print(f"   {impl}: {r['instructions_per_exit']} user-space instructions per exit",
                  flush=True)


def seabios_case(paths, impls, runs, tmp):
    """Wall time of one boot: process start to the boot sector's verdict."""
    need = [SEABIOS, paths["bootdisk"], paths["bootsect"]]
    missing = [p for p in need if not os.path.isfile(p)]
    if missing:
        print(f"   skipped: {', '.join(missing)} missing")
        return []
    disk = boot_disk(paths["bootdisk"], paths["bootsect"], tmp)
    # The floor has no firmware interface (fw_cfg) and no disk: SeaBIOS cannot boot there.
    impls = [i for i in impls if i != "kvm-floor"]
    samples, errors = alternate(
        impls, runs, lambda impl: timed(commands(impl, paths, SEABIOS, 1, disk=disk), 300),
        lambda x: x[0] / 1e6, "ms")
    out = []
    for impl in impls:
        got = samples[impl]
        r = {"case": "seabios-boot", "implementation": impl, "vcpus": 1, "runs": len(got),
             "machine": "pc", "error": errors.get(impl)}
        if got:
            r.update({"ns_per_op": round(median([g[0] for g in got])),
                      "user_ns_per_op": round(median([g[1] for g in got])),
                      "sys_ns_per_op": round(median([g[2] for g in got]))})
        out.append(r)
    return out


def ratio(results, r, impl, key="ns_per_op"):
    for o in results:
        if o["case"] == r["case"] and o["implementation"] == impl and o.get(key):
            return r[key] / o[key]
    return None


def fmt(x, spec):
    return "-" if x is None else format(x, spec)


def table(results, n1, n2, runs):
    print()
    print(f"Medians of {runs} runs. Exit cases: (t({n2}) - t({n1})) / {n2 - n1} iterations, "
          f"per exit and per vCPU; user/sys: the process's CPU time per exit. "
          f"seabios-boot: one boot, ms.")
    print(f"{'case':<17} {'implementation':<14} {'vcpus':>5} {'ns/exit':>9} {'/floor':>6} "
          f"{'/qemu':>6} {'user ns':>8} {'sys ns':>8} {'min..max ns/exit':>18} "
          f"{'instr/exit':>10}")
    for r in results:
        head = f"{r['case']:<17} {r['implementation']:<14} {r['vcpus']:>5}"
        instr = f"{fmt(r.get('instructions_per_exit'), 'd'):>10}"
        if r["case"] == "seabios-boot" and r.get("ns_per_op") is not None:
            print(f"{head} {r['ns_per_op'] / 1e6:>7.0f}ms {'-':>6} "
                  f"{fmt(ratio(results, r, 'qemu'), '.2f'):>6}")
        elif r.get("ns_per_op") is None:
            what = "failed" if r.get("error") else "-"
            print(f"{head} {what:>9} {'-':>6} {'-':>6} {'-':>8} {'-':>8} {'-':>18} {instr}")
        else:
            spread = f"{r['ns_per_exit_min']:.0f}..{r['ns_per_exit_max']:.0f}"
            print(f"{head} {r['ns_per_exit']:>9.0f} "
                  f"{fmt(ratio(results, r, 'kvm-floor'), '.2f'):>6} "
                  f"{fmt(ratio(results, r, 'qemu'), '.2f'):>6} {r['user_ns_per_exit']:>8.0f} "
                  f"{r['sys_ns_per_exit']:>8.0f} {spread:>18} {instr}")
    targets(results)


def targets(results):
    """The goals: busmap-vmm within 1.05x of the floor per exit, faster than QEMU, and with
    2 vCPUs a per-vCPU cost within 1.1x of one vCPU's."""
    print()
    for r in results:
        if r["implementation"] != "busmap-vmm" or r["case"] == "seabios-boot":
            continue
        notes = []
        f, q = ratio(results, r, "kvm-floor"), ratio(results, r, "qemu")
        if f is not None:
            notes.append(f"{f:.2f}x the floor ({'met' if f <= 1.05 else 'NOT met'}: <= 1.05)")
        if q is not None:
            notes.append(f"{q:.2f}x QEMU ({'met' if q < 1 else 'NOT met'}: < 1)")
        fi = [o for o in results if o["case"] == r["case"] and
              o["implementation"] == "kvm-floor" and o.get("instructions_per_exit")]
        if r.get("instructions_per_exit") and fi:
            notes.append(f"{r['instructions_per_exit'] - fi[0]['instructions_per_exit']} "
                         f"user-space instructions per exit more than the floor")
        print(f"target {r['case']}: " + "; ".join(notes))
    one = {r["implementation"]: r for r in results
           if r["case"] == "mmio-read" and r.get("ns_per_exit")}
    for r in results:
        if r["case"] == "mmio-read-2vcpu" and r.get("ns_per_exit") and \
                r["implementation"] in one:
            x = r["ns_per_exit"] / one[r["implementation"]]["ns_per_exit"]
            verdict = f" ({'met' if x <= 1.1 else 'NOT met'}: <= 1.1)" \
                if r["implementation"] == "busmap-vmm" else ""
            print(f"2 vCPUs against 1, {r['implementation']}: {x:.2f}x per vCPU{verdict}")


if __name__ == "__main__":
    sys.exit(main())
