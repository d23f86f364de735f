#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""Runs the built busmap program and checks its exit status and output.

usage: cmdtest.py CHECK BUSMAP [ARGS...]; exit 0 pass, 1 fail, 77 skip.
Every run also fails on a signal or on any sanitizer report in its output.
"""
import glob
import json
import os
import random
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

SKIP = 77
SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "runtime error:",
                   "UndefinedBehaviorSanitizer", "ThreadSanitizer")


class Failure(Exception):
    pass


def run(busmap, args, timeout=300):
    p = subprocess.run([busmap] + args, capture_output=True, timeout=timeout)
    out = p.stdout.decode("utf-8", "replace")
    err = p.stderr.decode("utf-8", "replace")
    if p.returncode < 0:
        raise Failure(f"{args}: killed by signal {-p.returncode}\n{err}")
    for mark in SANITIZER_MARKS:
        if mark in err or mark in out:
            raise Failure(f"{args}: sanitizer report\n{err}")
    return p.returncode, out, err


def expect_exit(busmap, args, code, timeout=300):
    got, out, err = run(busmap, args, timeout)
    if got != code:
        raise Failure(f"busmap {' '.join(args)}: exit {got}, expected {code}\n"
                      f"stdout:\n{out[-3000:]}\nstderr:\n{err[-3000:]}")
    return out, err


def json_documents(text):
    """Each non-empty line of text as JSON."""
    docs = [json.loads(line) for line in text.splitlines() if line.strip()]
    if not docs:
        raise Failure("no JSON output")
    return docs


def check_map_json(doc):
    for space in doc["spaces"]:
        for r in space["flat"]:
            for key in ("start", "end", "priority", "region", "device", "bar"):
                if key not in r:
                    raise Failure(f"flat entry without {key}: {r}")
            if int(r["start"], 16) > int(r["end"], 16):
                raise Failure(f"flat entry ends before it starts: {r}")
            if "/" in r["region"] and r["region"].split("/")[1].startswith("bar") \
                    and r["bar"] is None:
                raise Failure(f"a BAR range without its BAR: {r}")


def examples(busmap, directory):
    files = sorted(glob.glob(os.path.join(directory, "*.bm")))
    if not files:
        raise Failure(f"no examples in {directory}")
    for f in files:
        expect_exit(busmap, ["replay", f], 0)
        expect_exit(busmap, ["replay", "-v", f], 0)
        out, _ = expect_exit(busmap, ["replay", "--map=json", f], 0)
        for doc in json_documents(out):
            check_map_json(doc)
        for fmt in ("mtree", "flat"):
            out, _ = expect_exit(busmap, ["replay", "--map=" + fmt, f], 0)
            if "memory" not in out:
                raise Failure(f"{f}: --map={fmt} printed no memory space")
        out, _ = expect_exit(busmap, ["conflicts", f], 0)
        if "Overlaps between BARs" not in out:
            raise Failure(f"{f}: no conflicts report")
        print(f"ok {f}")


def wrong(busmap, path, line, expected, actual):
    _, err = expect_exit(busmap, ["replay", path], 1)
    for needle in (f"{path}:{line}:", f"expected: {expected}", f"actual:   {actual}"):
        if needle not in err:
            raise Failure(f"missing {needle!r} in:\n{err}")
    print(err)


def parse_errors(busmap, directory):
    """Each bad-*.bm starts with "# error at LINE:COL"."""
    files = sorted(glob.glob(os.path.join(directory, "bad-*.bm")))
    if not files:
        raise Failure("no bad-*.bm files")
    for f in files:
        with open(f, encoding="ascii", errors="replace") as fh:
            first = fh.readline().strip()
        where = first.split("error at ")[1]
        _, err = expect_exit(busmap, ["replay", f], 2)
        if not err.startswith(f"{f}:{where}: error: "):
            raise Failure(f"{f}: expected an error at {where}, got:\n{err}")
        print(err.strip())


def demo(busmap):
    out, _ = expect_exit(busmap, ["demo"], 0)
    for needle in ("every access reached the BAR the guest placed last",
                   "the VM aborts at step 5", "NOT inserted", "WRONG DEVICE"):
        if needle not in out:
            raise Failure(f"demo output lacks {needle!r}")
    out, _ = expect_exit(busmap, ["demo", "--conflicts"], 0)
    if "00:02.0/bar0 (virtio-net) hides 00:03.0/bar0 (virtio-blk)" not in out:
        raise Failure("demo --conflicts does not show net hiding blk")
    with tempfile.TemporaryDirectory() as tmp:
        svg = os.path.join(tmp, "seed.svg")
        expect_exit(busmap, ["demo", "--svg=" + svg], 0)
        check_svg(svg, 2)


def final_mtree(rundir):
    """QEMU's flat view at the end of the run: the only one, or the last snapshot's."""
    mtrees = sorted(glob.glob(os.path.join(rundir, "info-mtree-f*.txt")))
    final = [m for m in mtrees if m.endswith("info-mtree-f.txt")] or mtrees[-1:]
    return final[0] if final else None


def trace(busmap, rundir):
    if not os.path.isdir(rundir):
        print(f"{rundir}: not present, skipped")
        sys.exit(SKIP)
    log = os.path.join(rundir, "qemu-trace.log.gz")
    args = ["replay", "--qemu-trace=" + log]
    if final_mtree(rundir):
        args.append("--mtree=" + final_mtree(rundir))
    expect_exit(busmap, args, 0)
    out, _ = expect_exit(busmap, ["replay", "--map=json", "--qemu-trace=" + log], 0)
    for doc in json_documents(out):
        check_map_json(doc)
    out, _ = expect_exit(busmap, ["conflicts", "--qemu-trace=" + log], 0)
    print(out[-2000:])


def all_traces(busmap, root):
    """Every run recorded under root replays as QEMU ran it, final flat view included."""
    runs = sorted(d for d in glob.glob(os.path.join(root, "*", "qemu-trace.log.gz")))
    for log in runs:
        rundir = os.path.dirname(log)
        mtree = final_mtree(rundir)
        if not mtree:
            raise Failure(f"{rundir}: no info-mtree-f*.txt to compare the final map with")
        out, _ = expect_exit(busmap, ["replay", "-v", "--qemu-trace=" + log,
                                      "--mtree=" + mtree], 0)
        print(out.strip().splitlines()[-1])
    print(f"replayed {len(runs)} traces")
    if not runs:
        raise Failure(f"{root}: no trace replayed")


def diverge(busmap, rundir):
    """A trace whose first BAR mapping was altered: exit 1, naming that trace line."""
    import gzip
    log = os.path.join(rundir, "qemu-trace.log.gz")
    if not os.path.exists(log):
        sys.exit(SKIP)
    with gzip.open(log, "rt", encoding="utf-8", errors="replace") as fh:
        lines = fh.read().split("\n")
    for i, line in enumerate(lines):
        if "pci_update_mappings_add" in line and ",0x" in line:
            head, tail = line.rsplit(",0x", 1)
            addr, size = tail.split("+", 1)
            lines[i] = f"{head},0x{int(addr, 16) + 0x1000:x}+{size}"
            lineno = i + 1
            break
    else:
        raise Failure(f"{log}: no mapping to alter")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "altered.log")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write("\n".join(lines))
        _, err = expect_exit(busmap, ["replay", "--qemu-trace=" + path], 1)
        if f"{path}:{lineno}:" not in err or "QEMU:" not in err or "busmap:" not in err:
            raise Failure(f"the divergence at line {lineno} is not reported:\n{err}")
        print(err)


def bars_of(busmap, source_args):
    out, _ = expect_exit(busmap, ["replay", "--map=json"] + source_args, 0)
    return len(json_documents(out)[-1]["bars"])


def check_svg(path, lanes):
    root = ET.parse(path).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    if root.tag != ns + "svg":
        raise Failure(f"{path}: the root is {root.tag}")
    found = [g for g in root.iter(ns + "g") if g.get("class") == "lane"]
    if len(found) != lanes:
        raise Failure(f"{path}: {len(found)} lanes for {lanes} BARs")
    names = [g.get("data-bar") for g in found]
    if len(set(names)) != len(names):
        raise Failure(f"{path}: two lanes for one BAR: {names}")


def svg(busmap, *source):
    source = list(source)
    if source[0].startswith("--qemu-trace="):
        if not os.path.exists(source[0].split("=", 1)[1]):
            sys.exit(SKIP)
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "t.svg")
        expect_exit(busmap, ["timeline", "--svg=" + out] + source, 0)
        lanes = bars_of(busmap, source)
        check_svg(out, lanes)
        print(f"ok {source}: {lanes} lanes")


def garbage_inputs(seed_text):
    rnd = random.Random(20240424)
    cases = {}
    for i, size in enumerate((1, 100, 4096, 100000)):
        cases[f"random-{i}"] = bytes(rnd.getrandbits(8) for _ in range(size))
    cases["random-printable"] = "".join(rnd.choice("abc:./-<>0x1 \t\n#\"")
                                        for _ in range(20000)).encode()
    cases["long-line"] = b"host x86\nmmio.l " + b"1" * 200000 + b" -> 1\n"
    cases["long-line-no-newline"] = b"A" * (1 << 20)
    cases["ten-megabyte-line"] = b"host x86\nnote " + b"x" * (10 << 20) + b"\n"
    cases["huge-hex"] = b"host x86\nmmio.l 0x" + b"f" * 40 + b" -> 1\n"
    cases["huge-decimal"] = b"host x86\nmmio.l " + b"9" * 30 + b" -> 1\n"
    cases["huge-size"] = b"host x86\ndevice 00:02.0 id 1:2 bar0 mem64 99999999999T\n"
    cases["size-overflow"] = b"host x86\ndevice 00:02.0 id 1:2 bar0 mem64 16777216T\n"
    cases["range-overflow"] = b"host x86\nexpect map mmio 0xffffffffffffffff+2 unassigned\n"
    cases["deep-parens"] = b"host x86\n" + b"(" * 3000 + b"\n"
    cases["deep-quotes"] = b"host x86\nnote " + b'"' * 3001 + b"\n"
    cases["nested-quotes"] = b'host x86\nstep "' + b'\\"' * 1500 + b"\n"
    cases["many-words"] = b"host x86\nnote " + b"x " * 5000 + b"\n"
    cases["nul-in-line"] = seed_text.replace(b"device 00:03.0", b"device\0 00:03.0")
    cases["nul-only"] = b"\0" * 1000
    cases["cut-short"] = seed_text[:seed_text.index(b"ecam 0xe0000000") + 4]
    cases["control-bytes"] = b"host x86\x01\n"
    cases["too-many-statements"] = b"host x86\n" + b"note x\n" * 200001
    cases["too-large"] = b"host x86\n" + (b"# " + b"x" * 1000 + b"\n") * 17000
    cases["no-host"] = b"device 00:02.0 nvme\n"
    cases["two-hosts"] = b"host x86\nhost x86\n"
    cases["bus-without-bridge"] = b"host x86\ndevice 05:00.0 nvme\n"
    cases["bad-msix"] = b"host x86\ndevice 00:02.0 nvme msix 4 bar0+0x7fff0 bar0+0x0\n"
    cases["empty"] = b""
    return cases


def garbage(busmap, seed_path):
    with open(seed_path, "rb") as fh:
        seed_text = fh.read()
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in garbage_inputs(seed_text).items():
            path = os.path.join(tmp, name + ".bm")
            with open(path, "wb") as fh:
                fh.write(data)
            _, err = expect_exit(busmap, ["replay", path], 2, timeout=120)
            if "error" not in err:
                raise Failure(f"{name}: exit 2 without an error message:\n{err}")
            print(f"ok {name}: {err.strip()[:150]}")
        # The same through the trace reader.
        for name in ("random-2", "nul-only", "long-line-no-newline"):
            data = garbage_inputs(seed_text)[name]
            path = os.path.join(tmp, name + ".log")
            with open(path, "wb") as fh:
                fh.write(data)
            _, err = expect_exit(busmap, ["replay", "--qemu-trace=" + path], 2, timeout=120)
            print(f"ok trace {name}: {err.strip()[:150]}")
        path = os.path.join(tmp, "not-gzip.log.gz")
        with open(path, "wb") as fh:
            fh.write(b"this is not gzip data\n")
        _, err = expect_exit(busmap, ["replay", "--qemu-trace=" + path], 2)
        if "gzip -dc\" failed" not in err:
            raise Failure(f"not-gzip: gzip's failure is not named:\n{err}")
        # A .gz whose text is wrong: the parser names the line, gzip is not blamed, whether
        # gzip was done writing when the parser stopped or not (more than a pipe holds).
        import gzip
        bad = b"pci_cfg_read a 00:01.0 @0x0 -> 0x1af4\n# c\npci_cfg_read a 00:01.0 @0x0\n"
        for name, tail in (("short", b""), ("long", b"# padding\n" * 200000)):
            path = os.path.join(tmp, f"bad-line-{name}.log.gz")
            with gzip.open(path, "wb") as fh:
                fh.write(bad + tail)
            _, err = expect_exit(busmap, ["replay", "--qemu-trace=" + path], 2)
            if f"{path}:3: error: pci_cfg_read" not in err or "gzip" in err.replace(path, ""):
                raise Failure(f"bad-line-{name}: the parser's error is not the one given:\n{err}")
            print(f"ok {name} .gz with a bad line: {err.strip()}")
        # CRLF line ends are not garbage.
        path = os.path.join(tmp, "crlf.bm")
        with open(path, "wb") as fh:
            fh.write(seed_text.replace(b"\n", b"\r\n"))
        expect_exit(busmap, ["replay", path], 0)


def usage(busmap):
    for args in ([], ["frob"], ["replay"], ["replay", "--map=xml", "x.bm"],
                 ["replay", "--bogus", "x.bm"], ["replay", "a.bm", "b.bm"],
                 ["timeline", "x.bm"], ["demo", "x.bm"], ["replay", "--svg"],
                 ["replay", "--mtree=x", "x.bm"], ["presets", "x"]):
        _, err = expect_exit(busmap, args, 2)
        if "usage:" not in err and "error" not in err:
            raise Failure(f"{args}: no usage message")
    expect_exit(busmap, ["--help"], 0)
    expect_exit(busmap, ["--version"], 0)
    out, _ = expect_exit(busmap, ["presets"], 0)
    for preset in ("virtio-net-legacy", "virtio-blk-legacy", "virtio-net-modern", "nvme",
                   "pci-bridge"):
        if preset not in out:
            raise Failure(f"presets lacks {preset}")


def manpage(busmap, page):
    """Every example scenario in the manual page runs and its expectations hold."""
    with open(page, encoding="utf-8") as fh:
        text = fh.read()
    blocks = []
    for chunk in text.split(".EX\n")[1:]:
        body = chunk.split(".EE\n")[0]
        body = body.replace("\\-", "-").replace("\\e", "\\")
        lines = [l for l in body.splitlines() if l.strip() and not l.startswith("#")]
        if lines and lines[0].startswith("host "):
            blocks.append(body)
    if not blocks:
        raise Failure(f"{page}: no example scenario")
    with tempfile.TemporaryDirectory() as tmp:
        for i, body in enumerate(blocks):
            path = os.path.join(tmp, f"example-{i}.bm")
            with open(path, "w", encoding="ascii") as fh:
                fh.write(body)
            expect_exit(busmap, ["replay", path], 0)
            print(f"ok example {i}")


# Golden outputs: (name, arguments), run from the source tree so that file names in the
# output are the same everywhere. An argument "{trace}" needs the recorded traces; "{svg}"
# is where a picture is written, and the picture is compared instead of stdout.
GOLDEN = [
    ("seed-replay", ["replay", "examples/seed-uboot.bm"]),
    ("seed-replay-v", ["replay", "-v", "examples/seed-uboot.bm"]),
    ("seed-mtree", ["replay", "--map=mtree", "examples/seed-uboot.bm"]),
    ("seed-flat", ["replay", "--map=flat", "examples/seed-uboot.bm"]),
    ("seed-json", ["replay", "--map=json", "examples/seed-uboot.bm"]),
    ("seed-conflicts", ["conflicts", "examples/seed-uboot.bm"]),
    ("seed-timeline.svg", ["timeline", "--svg", "{svg}", "examples/seed-uboot.bm"]),
    ("x86-flat", ["replay", "--map=flat", "examples/x86-nvme-bridge.bm"]),
    ("x86-json", ["replay", "--map=json", "examples/x86-nvme-bridge.bm"]),
    ("virt-conflicts", ["conflicts", "examples/qemu-virt-overlap.bm"]),
    ("demo", ["demo"]),
    ("presets", ["presets"]),
    ("trace-a-v", ["replay", "-v", "--map=flat",
                   "--qemu-trace={trace}/a-arm64-uboot-net2-blk3/qemu-trace.log.gz"]),
    ("trace-a-conflicts", ["conflicts",
                           "--qemu-trace={trace}/a-arm64-uboot-net2-blk3/qemu-trace.log.gz"]),
]


def golden(busmap, srcdir, golden_dir, trace_root, update=""):
    """Every subcommand and format against its recorded output; "update" rewrites them."""
    busmap = os.path.abspath(busmap)
    have_traces = os.path.isdir(trace_root)
    checked = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, args in GOLDEN:
            if any("{trace}" in a for a in args) and not have_traces:
                continue
            svg_path = os.path.join(tmp, "out.svg")
            # The trace paths are given relative to the source tree too.
            rel_traces = os.path.relpath(trace_root, srcdir)
            argv = [a.replace("{svg}", svg_path).replace("{trace}", rel_traces) for a in args]
            p = subprocess.run([busmap] + argv, capture_output=True, cwd=srcdir, timeout=300)
            if p.returncode != 0:
                raise Failure(f"busmap {' '.join(argv)}: exit {p.returncode}\n"
                              f"{p.stderr.decode('utf-8', 'replace')[-2000:]}")
            got = open(svg_path, "rb").read() if "{svg}" in args else p.stdout
            path = os.path.join(golden_dir, name if name.endswith(".svg") else name + ".out")
            if update == "update":
                with open(path, "wb") as f:
                    f.write(got)
                continue
            want = open(path, "rb").read()
            if got != want:
                g = got.decode("utf-8", "replace").splitlines()
                w = want.decode("utf-8", "replace").splitlines()
                first = next((i for i in range(min(len(g), len(w))) if g[i] != w[i]),
                             min(len(g), len(w)))
                raise Failure(f"busmap {' '.join(argv)} differs from {path} at line "
                              f"{first + 1}:\n  expected: {w[first] if first < len(w) else '(end)'}"
                              f"\n  actual:   {g[first] if first < len(g) else '(end)'}")
            checked += 1
    print(f"ok {checked} golden outputs" + ("" if have_traces else " (traces absent)"))


CHECKS = {
    "golden": golden,
    "diverge": diverge,
    "manpage": manpage,
    "examples": examples,
    "wrong": wrong,
    "parse-errors": parse_errors,
    "demo": demo,
    "trace": trace,
    "all-traces": all_traces,
    "svg": svg,
    "garbage": garbage,
    "usage": usage,
}


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in CHECKS:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        CHECKS[sys.argv[1]](*sys.argv[2:])
    except Failure as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
    except subprocess.TimeoutExpired as e:
        print(f"FAIL: timed out: {e.cmd}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
