#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""Runs whole guests on busmap-vmm (and, to validate the guests themselves, on QEMU).

usage: kvmtest.py MODE ARGS...; exit 0 pass, 1 fail, 77 skip ("SKIP: reason" printed).

  usage VMM                     bad command lines and files: status 2, no KVM needed
  bootdisk VMM IMG [--smp N] [--bhyve] [--trace-map]
                                SeaBIOS boots the disk from virtio-blk: status 3
  hostile VMM ROM [--long] [--bhyve]
                                the hostile firmware survives: status 3
  firmware VMM ROM MARK [--smp N] [--bhyve] [--long]
                                a firmware guest passes (status 3) and prints MARK
  stop VMM ROM halt|triple      the guest stops for good: status 4 and a message
  uboot VMM IMG                 U-Boot reaches its prompt (or autoboot) on the serial port
  qemu-bootdisk IMG pc|q35 STATUS [--mac MAC]
  qemu-hostile ROM              the same guests under QEMU TCG, which gives
  qemu-stop ROM halt|triple     isa-debug-exit the same statuses
  qemu-firmware ROM MARK pc|q35 [--smp N]

busmap-vmm's statuses: (v << 1) | 1 for a guest's isa-debug-exit write v, 1 VMM error,
2 usage or bad file, 4 guest stopped, 6 KVM could not run the guest, 0 guest reset.
"""
import fcntl
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

SKIP = 77
SEABIOS = "/usr/share/seabios/bios.bin"
UBOOT = "/usr/lib/u-boot/qemu-x86/u-boot.rom"
MAC = "52:54:00:12:34:56"
KVM_GET_API_VERSION = 0xAE00
TIMEOUT = 300
LONG_TIMEOUT = 3600
SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "runtime error:",
                   "UndefinedBehaviorSanitizer", "ThreadSanitizer")

# Status of busmap-vmm for a guest's verdict v written to isa-debug-exit.
PASS = (1 << 1) | 1


class Failure(Exception):
    pass


def skip(reason):
    print(f"SKIP: {reason}")
    sys.exit(SKIP)


def kvm_problem():
    """Why /dev/kvm cannot run a guest here, or None when it can."""
    try:
        fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    except OSError as e:
        return f"/dev/kvm: {e.strerror}"
    try:
        version = fcntl.ioctl(fd, KVM_GET_API_VERSION)
    except OSError as e:
        return f"KVM_GET_API_VERSION: {e.strerror}"
    finally:
        os.close(fd)
    if version != 12:
        return f"KVM API version {version}, not 12"
    return None


NESTED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "nested", "run.sh")


def need_kvm():
    """Returns when KVM works here. Without it, runs this same test inside the nested KVM
    of tests/vmm/nested (a Linux guest under QEMU's TCG) and exits with its status; skips
    with the reasons when neither is possible."""
    problem = kvm_problem()
    if not problem:
        return
    if os.environ.get("BUSMAP_IN_NESTED") == "1" or not os.access(NESTED, os.X_OK):
        skip(f"no usable KVM ({problem})")
    timeout = int(os.environ.get("BUSMAP_NESTED_TIMEOUT", "1500"))
    cmd = [NESTED, "--timeout", str(timeout), "--rw", os.getcwd(), "--",
           "env", "BUSMAP_IN_NESTED=1", sys.executable, os.path.abspath(__file__)] + sys.argv[1:]
    print(f"{problem}: running in the nested KVM", flush=True)
    print("$ " + " ".join(cmd), flush=True)
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True)
    out, err = text(p.stdout), text(p.stderr)
    sys.stdout.write(out)
    sys.stderr.write(err)
    if p.returncode == SKIP and "run.sh: SKIP:" in err:
        reason = [l for l in err.splitlines() if l.startswith("run.sh: SKIP:")][0]
        skip(f"no usable KVM here ({problem}), and no nested one ({reason[14:]})")
    sys.exit(p.returncode)


def need_file(path, what):
    if not os.path.isfile(path):
        skip(f"{what} {path} is missing")


def text(b):
    return b.decode("utf-8", "replace")


def run(cmd, timeout):
    print("$ " + " ".join(cmd), flush=True)
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        stdout, stderr = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        # SIGTERM first: the program may still say where it was.
        p.terminate()
        try:
            stdout, stderr = p.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            stdout, stderr = p.communicate()
        raise Failure(f"no verdict after {timeout} s\nstdout:\n{text(stdout)[-3000:]}"
                      f"\nstderr:\n{text(stderr)[-3000:]}")
    out, err = text(stdout), text(stderr)
    if p.returncode < 0:
        raise Failure(f"killed by signal {-p.returncode}\n{err[-3000:]}")
    for mark in SANITIZER_MARKS:
        if mark in err or mark in out:
            raise Failure(f"sanitizer report\n{err[-6000:]}")
    return p.returncode, out, err


def expect(cmd, status, timeout=TIMEOUT):
    got, out, err = run(cmd, timeout)
    if got != status:
        raise Failure(f"status {got}, expected {status}\n"
                      f"stdout:\n{out[-4000:]}\nstderr:\n{err[-4000:]}")
    return out, err


def need_in(haystack, needle, where):
    if needle not in haystack:
        raise Failure(f"{where} lacks {needle!r}:\n{haystack[-4000:]}")


def private_copy(tmp, path):
    """The guest gets its own copy of a disk image: tests run in parallel."""
    dst = os.path.join(tmp, os.path.basename(path))
    shutil.copyfile(path, dst)
    return dst


def machine_args(disk):
    """The devices of every whole-guest run, at fixed slots so a trace names them."""
    return ["-device", "pci-testdev,addr=2",
            "-device", f"virtio-net,addr=3,mac={MAC}",
            "-device", f"virtio-blk,file={disk},addr=4",
            "-device", "isa-debug-exit,iobase=0x501,iosize=2",
            "-serial", "stdio"]


# ---- busmap-vmm ---------------------------------------------------------------------------

def usage(vmm):
    """Every bad command line and bad file is refused before KVM is opened: status 2 and
    a message naming the problem, on any machine."""
    with tempfile.TemporaryDirectory() as tmp:
        missing_rom = os.path.join(tmp, "missing.rom")
        short_rom = os.path.join(tmp, "short.rom")
        with open(short_rom, "wb") as f:
            f.write(b"\xf4" * 1000)
        missing_img = os.path.join(tmp, "missing.img")
        cases = [
            (["--frobnicate"], [r"frobnicate"]),
            (["-device", "frob-device"], [r"frob-device"]),
            (["-m", "0"], [r"-m\b|memory|\bram\b|size"]),
            (["-smp", "0"], [r"smp|cpu"]),
            (["-m"], [r"-m\b"]),
            (["-bios", missing_rom], [re.escape(missing_rom)]),
            (["-bios", short_rom], [re.escape(short_rom), r"size|bytes|multiple|KiB"]),
            (["-device", f"virtio-blk,file={missing_img}"], [re.escape(missing_img)]),
            (["-device", f"virtio-blk,file={tmp}"], [re.escape(tmp)]),
            (["-device", "virtio-blk"], [r"file"]),
        ]
        for args, patterns in cases:
            _, err = expect([vmm] + args, 2, timeout=60)
            if not err.strip():
                raise Failure(f"{args}: status 2 but nothing on stderr")
            for pat in patterns:
                if not re.search(pat, err, re.IGNORECASE):
                    raise Failure(f"{args}: stderr does not match {pat!r}:\n{err}")
            print(f"ok {args}: {err.strip().splitlines()[0]}")


BAR_NAME = re.compile(r"\b00:0([2-4])\.0/bar[0-5]\b")
MAP_WORD = re.compile(r"(?<![A-Za-z])map(ped)?\b", re.IGNORECASE)
UNMAP_WORD = re.compile(r"\bunmap(ped)?\b", re.IGNORECASE)


def check_trace(out, err):
    """--trace-map shows the BARs of the three PCI devices being unmapped and mapped:
    SeaBIOS moves them, and stage 2 turns decoding off and on while sizing them."""
    mapped, unmapped = set(), set()
    for line in (out + "\n" + err).splitlines():
        m = BAR_NAME.search(line)
        if not m:
            continue
        if UNMAP_WORD.search(line):
            unmapped.add(m.group(1))
        elif MAP_WORD.search(line):
            mapped.add(m.group(1))
    for slot in "234":
        if slot not in mapped or slot not in unmapped:
            raise Failure(f"--trace-map shows no map and unmap of 00:0{slot}.0's BARs "
                          f"(mapped {sorted(mapped)}, unmapped {sorted(unmapped)}):\n"
                          f"{err[-4000:]}")
    print(f"trace: map and unmap lines for the BARs of slots {sorted(mapped)}")


def bootdisk(vmm, image, smp="1", bhyve=False, trace=False):
    need_file(SEABIOS, "SeaBIOS")
    need_kvm()
    with tempfile.TemporaryDirectory() as tmp:
        disk = private_copy(tmp, image)
        cmd = [vmm, "-m", "128", "-smp", smp, "-bios", SEABIOS, "--check-memslots"]
        if bhyve:
            cmd.append("--bar-layout=bhyve")
        if trace:
            cmd.append("--trace-map")
        out, err = expect(cmd + machine_args(disk), PASS)
    need_in(out, "bootdisk: all checks passed", "the serial output")
    if trace:
        check_trace(out, err)
    print(out[-2000:])


def scratch_disk(tmp):
    """A disk for firmware that never boots from it: virtio-blk is there to be used."""
    disk = os.path.join(tmp, "scratch.img")
    with open(disk, "wb") as f:
        f.truncate(1 << 20)
    return disk


def firmware(vmm, rom, mark, smp="1", bhyve=False, long=False):
    """One of our firmware guests (-bios) must end with verdict 1 and say mark."""
    if long and os.environ.get("BUSMAP_KVM_LONG") != "1":
        skip("the long run needs BUSMAP_KVM_LONG=1")
    timeout = LONG_TIMEOUT if long else 2 * TIMEOUT
    need_kvm()
    with tempfile.TemporaryDirectory() as tmp:
        # bhyve's layout has every BAR placed and decoding from the start.
        layout = ["--bar-layout=bhyve"] if bhyve else []
        out, _ = expect([vmm, "-m", "128", "-smp", smp, "-bios", rom, "--check-memslots"]
                        + layout + machine_args(scratch_disk(tmp)), PASS, timeout=timeout)
    need_in(out, mark, "the serial output")
    prefix = mark.split(":")[0] + ":"
    print("\n".join(line for line in out.splitlines() if line.startswith(prefix)))


def hostile(vmm, rom, long=False, bhyve=False):
    firmware(vmm, rom, "hostile: survived", bhyve=bhyve, long=long)


STOP_WORDS = {"halt": r"halt|stop", "triple": r"triple|shutdown|fault|stop"}


def stop(vmm, rom, kind):
    need_kvm()
    _, err = expect([vmm, "-m", "16", "-bios", rom, "--check-memslots",
                     "-serial", "stdio"], 4, timeout=120)
    if not re.search(STOP_WORDS[kind], err, re.IGNORECASE):
        raise Failure(f"status 4 but stderr says nothing of the stop:\n{err}")
    print(err.strip())


UBOOT_BANNER = re.compile(r"U-Boot \d{4}\.\d{2}")
UBOOT_READY = re.compile(r"^=> |Hit any key to stop autoboot|autoboot", re.MULTILINE)


def uboot(vmm, image):
    """U-Boot's banner and prompt (or its autoboot) on the serial port. KVM on some hosts
    cannot emulate the instructions U-Boot runs MMIO with: status 6 skips, never passes."""
    need_file(UBOOT, "U-Boot for qemu-x86")
    need_kvm()
    with tempfile.TemporaryDirectory() as tmp:
        disk = private_copy(tmp, image)
        cmd = [vmm, "-m", "128", "-bios", UBOOT, "-device", f"virtio-blk,file={disk}",
               "-serial", "stdio"]
        print("$ " + " ".join(cmd), flush=True)
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        chunks = {"out": [], "err": []}

        def reader(stream, key):
            for block in iter(lambda: stream.read1(4096), b""):
                chunks[key].append(block)

        threads = [threading.Thread(target=reader, args=(p.stdout, "out"), daemon=True),
                   threading.Thread(target=reader, args=(p.stderr, "err"), daemon=True)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + TIMEOUT
        ready = False
        while time.monotonic() < deadline:
            out = text(b"".join(chunks["out"]))
            if UBOOT_BANNER.search(out) and UBOOT_READY.search(out):
                ready = True
                break
            if p.poll() is not None:
                break
            time.sleep(0.2)
        status = p.poll()
        if status is None:
            p.kill()  # U-Boot waits at its prompt for input that never comes
            p.wait()
        for t in threads:
            t.join(timeout=10)
        out, err = text(b"".join(chunks["out"])), text(b"".join(chunks["err"]))
    for mark in SANITIZER_MARKS:
        if mark in err:
            raise Failure(f"sanitizer report\n{err[-6000:]}")
    if not ready:
        if status == 6:
            skip(f"KVM could not run U-Boot here (status 6): "
                 f"{err.strip().splitlines()[-1] if err.strip() else 'no message'}")
        why = f"exited with status {status}" if status is not None else \
            f"no prompt after {TIMEOUT} s"
        raise Failure(f"U-Boot {why}\nstdout:\n{out[-4000:]}\nstderr:\n{err[-4000:]}")
    print(out[-1500:])


# ---- QEMU: the guests themselves ------------------------------------------------------------

def qemu_base(machine):
    qemu = shutil.which("qemu-system-x86_64")
    if not qemu:
        skip("qemu-system-x86_64 is not installed")
    return [qemu, "-accel", "tcg", "-M", machine, "-m", "128", "-nodefaults",
            "-nographic", "-display", "none", "-no-reboot"]


def qemu_devices(disk, legacy, mac=MAC):
    modern = ",disable-modern=on" if legacy else ""
    return ["-device", "isa-debug-exit,iobase=0x501,iosize=2",
            "-device", "pci-testdev",
            "-device", f"virtio-net-pci,romfile=,mac={mac}{modern}",
            "-drive", f"file={disk},if=none,id=d0,format=raw",
            "-device", f"virtio-blk-pci,drive=d0{modern}"]


def qemu_bootdisk(image, machine, status, mac=MAC):
    need_file(SEABIOS, "SeaBIOS")
    base = qemu_base(machine)
    with tempfile.TemporaryDirectory() as tmp:
        disk = private_copy(tmp, image)
        out, _ = expect(base + ["-bios", SEABIOS, "-serial", "stdio"]
                        + qemu_devices(disk, machine == "pc", mac), int(status))
    if int(status) == PASS:
        need_in(out, "bootdisk: all checks passed", "the serial output")
    else:
        need_in(out, "FAIL: ", "the serial output")
    print(out[-3000:])


def qemu_firmware(rom, mark, machine="pc", smp="1"):
    """The same firmware guest under QEMU TCG: the verdict busmap-vmm must give. On q35
    the virtio devices are asked for their legacy BAR too, as busmap-vmm's have it."""
    base = qemu_base(machine) + ["-smp", smp]
    with tempfile.TemporaryDirectory() as tmp:
        devices = qemu_devices(scratch_disk(tmp), machine == "pc")
        if machine != "pc":
            devices = [d + ",disable-legacy=off" if d.startswith("virtio-") else d
                       for d in devices]
        out, _ = expect(base + ["-bios", rom, "-serial", "stdio"] + devices, PASS,
                        timeout=2 * TIMEOUT)
    need_in(out, mark, "the serial output")
    prefix = mark.split(":")[0] + ":"
    print("\n".join(line for line in out.splitlines() if line.startswith(prefix)))


def qemu_hostile(rom):
    qemu_firmware(rom, "hostile: survived")


CPU_STATE = re.compile(r"EFL=([0-9a-f]+) .*? HLT=([01])")


def qemu_stop(rom, kind):
    """QEMU does not stop on a halted CPU: its monitor must show the CPU halted. A triple
    fault with -no-reboot ends QEMU, its reset log naming the triple fault."""
    base = qemu_base("pc")
    if kind == "triple":
        with tempfile.TemporaryDirectory() as tmp:
            log = os.path.join(tmp, "qemu.log")
            expect(base + ["-bios", rom, "-serial", "none", "-d", "cpu_reset", "-D", log],
                   0, timeout=60)
            with open(log, encoding="utf-8", errors="replace") as f:
                need_in(f.read(), "Triple fault", "QEMU's reset log")
        print("QEMU: triple fault")
        return
    p = subprocess.Popen(base + ["-bios", rom, "-serial", "none", "-monitor", "stdio"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    seen = []

    def reader():
        for block in iter(lambda: p.stdout.read1(4096), b""):
            seen.append(block)

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    state = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and p.poll() is None:
        try:
            p.stdin.write(b"info registers\n")
            p.stdin.flush()
        except BrokenPipeError:
            break
        time.sleep(0.5)
        found = CPU_STATE.findall(text(b"".join(seen)))
        if found:
            state = found[-1]
            if state[1] == "1":
                break
    try:
        p.stdin.write(b"quit\n")
        p.stdin.flush()
    except BrokenPipeError:
        pass
    p.wait(timeout=30)
    t.join(timeout=10)
    out = text(b"".join(seen))
    if not state or state[1] != "1":
        raise Failure(f"the CPU did not halt:\n{out[-3000:]}")
    if int(state[0], 16) & 0x200:
        raise Failure(f"the CPU halted with interrupts enabled:\n{out[-3000:]}")
    print("QEMU: CPU halted with interrupts off")


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    mode, args = argv[1], argv[2:]
    flags = [a for a in args if a.startswith("--")]
    pos = [a for a in args if not a.startswith("--")]
    try:
        if mode == "usage":
            usage(pos[0])
        elif mode == "bootdisk":
            smp = "1"
            if "--smp" in args:
                smp = args[args.index("--smp") + 1]
                pos.remove(smp)
            bootdisk(pos[0], pos[1], smp, "--bhyve" in flags, "--trace-map" in flags)
        elif mode == "hostile":
            hostile(pos[0], pos[1], "--long" in flags, "--bhyve" in flags)
        elif mode == "firmware":
            smp = "1"
            if "--smp" in args:
                smp = args[args.index("--smp") + 1]
                pos.remove(smp)
            firmware(pos[0], pos[1], pos[2], smp, "--bhyve" in flags, "--long" in flags)
        elif mode == "qemu-firmware":
            smp = "1"
            if "--smp" in args:
                smp = args[args.index("--smp") + 1]
                pos.remove(smp)
            qemu_firmware(pos[0], pos[1], pos[2], smp)
        elif mode == "stop":
            stop(pos[0], pos[1], pos[2])
        elif mode == "uboot":
            uboot(pos[0], pos[1])
        elif mode == "qemu-bootdisk":
            mac = MAC
            if "--mac" in args:
                mac = args[args.index("--mac") + 1]
                pos.remove(mac)
            qemu_bootdisk(pos[0], pos[1], pos[2], mac)
        elif mode == "qemu-hostile":
            qemu_hostile(pos[0])
        elif mode == "qemu-stop":
            qemu_stop(pos[0], pos[1])
        else:
            print(f"kvmtest.py: unknown mode {mode}", file=sys.stderr)
            return 2
    except Failure as e:
        print(f"FAIL: {e}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
