#!/usr/bin/env python3
# Records one run of QEMU for busmap's replay tests: the trace of PCI configuration
# accesses and BAR mappings (trace backend "log"), filtered and gzip'd, and QEMU's
# monitor output at the end (info pci, info mtree, info mtree -f).
#
# usage: capture.py [--timeout S] [--wait REGEX] [--send TEXT] OUTDIR -- QEMU ARGS...
#
# QEMU's log is read through a FIFO and filtered as it comes, so that a boot that
# traces millions of MMIO accesses needs no disk for them. Kept are:
#   pci_cfg_read/_write, pci_update_mappings_add/_del    as QEMU printed them;
#   memory_region_ops_read/_write on pcie-mmcfg-mmio, pci-conf-data and pci-conf-idx
#                                                        (the width of each access);
#   writes to the data register of the serial port (x86 "serial", arm "pl011")
#                                                        folded into # console: "..." lines,
#                                                        escaped as JSON strings are;
#   identical consecutive lines folded into "# previous line repeated N more times".
# --wait REGEX waits for the console to show REGEX (several: in turn); --send TEXT types
# TEXT on the console after the wait before it (give one --send per --wait, "" for none).
# After the last wait the monitor output is saved and QEMU quits. Exit status 0 when
# every wait was met, 1 otherwise (what was captured is kept, with "-partial" files).
import argparse
import gzip
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import tempfile
import threading
import time

CONFIG_REGIONS = ("'pcie-mmcfg-mmio'", "'pci-conf-data'", "'pci-conf-idx'")
CONSOLE_REGIONS = ("'serial'", "'pl011'")
KEEP = ("pci_cfg_read ", "pci_cfg_write ", "pci_update_mappings_add ",
        "pci_update_mappings_del ")
STAMP = re.compile(r"^\d+@\d+\.\d+:")


class Filter:
    def __init__(self, out):
        self.out = out
        self.console = []
        self.console_seen = ""
        self.prev = None
        self.repeats = 0
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.kept = 0

    def _emit(self, line):
        if line == self.prev:
            self.repeats += 1
            return
        self._flush_repeats()
        self.out.write(line + "\n")
        self.prev = line
        self.kept += 1

    def _flush_repeats(self):
        if self.repeats:
            self.out.write("# previous line repeated %d more times\n" % self.repeats)
            self.repeats = 0

    def _flush_console(self):
        if self.console:
            text = "".join(self.console)
            self.console = []
            self._emit("# console: " + json.dumps(text))

    def line(self, raw):
        line = STAMP.sub("", raw.rstrip("\n"))
        if line.startswith("memory_region_ops_write") and line.endswith(CONSOLE_REGIONS):
            f = line.split()
            # The data register: COM1's first port (x86 I/O addresses are absolute), the
            # PL011's first word.
            if (int(f[6], 16) & (0x7 if f[-1] == "'serial'" else 0xfff)) == 0:
                ch = chr(int(f[8], 16) & 0xff)
                with self.cond:
                    self.console.append(ch)
                    self.console_seen += ch
                    self.cond.notify_all()
                if ch == "\n" and sum(map(len, self.console)) > 160:
                    self._flush_console()
            return
        keep = line.startswith(KEEP) or (line.startswith("memory_region_ops_")
                                          and line.endswith(CONFIG_REGIONS))
        if keep:
            self._flush_console()
            self._emit(line)

    def close(self):
        self._flush_console()
        self._flush_repeats()

    def wait_for(self, regex, deadline, start):
        pat = re.compile(regex)
        with self.cond:
            while True:
                m = pat.search(self.console_seen, start)
                if m:
                    return m.end()
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(min(left, 1.0))


def monitor(path, commands):
    s = socket.socket(socket.AF_UNIX)
    for _ in range(100):
        try:
            s.connect(path)
            break
        except OSError:
            time.sleep(0.1)
    s.settimeout(60)

    def until_prompt():
        buf = b""
        while not buf.endswith(b"(qemu) "):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        return buf.decode("utf-8", "replace")

    until_prompt()
    out = {}
    for cmd in commands:
        s.sendall(cmd.encode() + b"\n")
        text = until_prompt()
        # QEMU echoes the command with terminal escapes first; keep what follows it.
        text = text.split("\n", 1)[1] if "\n" in text else ""
        out[cmd] = text[: -len("(qemu) ")].replace("\r", "")
    try:
        s.sendall(b"quit\n")
    except OSError:
        pass
    s.close()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--wait", action="append", default=[])
    ap.add_argument("--send", action="append", default=[])
    ap.add_argument("outdir")
    ap.add_argument("qemu", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    qemu = a.qemu[1:] if a.qemu[:1] == ["--"] else a.qemu
    os.makedirs(a.outdir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="busmap-capture.")
    fifo = os.path.join(tmp, "trace.fifo")
    mon = os.path.join(tmp, "mon.sock")
    ser = os.path.join(tmp, "ser.sock")
    os.mkfifo(fifo)
    args = qemu + [
        "-trace", "pci_cfg_*", "-trace", "pci_update_mappings*",
        "-trace", "memory_region_ops_*", "-D", fifo,
        "-chardev", "socket,id=ser0,path=%s,server=on,wait=off" % ser,
        "-serial", "chardev:ser0",
        "-monitor", "unix:%s,server=on,wait=off" % mon,
    ]
    with open(os.path.join(a.outdir, "cmdline.txt"), "w") as f:
        f.write(" ".join(shlex.quote(x) for x in qemu) + "\n")
    partial = os.path.join(a.outdir, "qemu-trace.log.gz.partial")
    gz = gzip.open(partial, "wt", compresslevel=9)
    filt = Filter(gz)
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL)

    def pump():
        with open(fifo, "r", errors="replace") as f:
            for raw in f:
                filt.line(raw)

    t = threading.Thread(target=pump, daemon=True)
    t.start()
    deadline = time.monotonic() + a.timeout
    ok = True
    pos = 0
    for _ in range(100):
        if os.path.exists(ser):
            break
        time.sleep(0.1)
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(ser)

    def drain():
        # The console's text comes from the trace; what the port sends is read and dropped
        # so that the guest never waits on a full socket.
        try:
            while sock.recv(65536):
                pass
        except OSError:
            pass

    threading.Thread(target=drain, daemon=True).start()
    for i, regex in enumerate(a.wait):
        end = filt.wait_for(regex, deadline, pos)
        if end is None:
            print("capture: timed out waiting for %r" % regex, file=sys.stderr)
            ok = False
            break
        pos = end
        if i < len(a.send) and a.send[i]:
            time.sleep(0.5)
            for ch in a.send[i].encode().decode("unicode_escape"):
                sock.sendall(ch.encode("latin-1"))
                time.sleep(0.05)
    if ok:
        time.sleep(1)
    outs = monitor(mon, ["info pci", "info mtree -f", "info mtree"]) if proc.poll() is None else {}
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    t.join(60)
    filt.close()
    gz.close()
    suffix = "" if ok else "-partial"
    os.replace(partial, os.path.join(a.outdir, "qemu-trace%s.log.gz" % suffix))
    for cmd, name in (("info pci", "info-pci"), ("info mtree -f", "info-mtree-f"),
                      ("info mtree", "info-mtree")):
        if cmd in outs:
            with open(os.path.join(a.outdir, "%s%s.txt" % (name, suffix)), "w") as f:
                f.write(outs[cmd])
    with open(os.path.join(a.outdir, "serial%s.log" % suffix), "w") as f:
        f.write(filt.console_seen)
    print("capture: %s: %d lines kept%s" % (a.outdir, filt.kept, "" if ok else " (partial)"))
    sock.close()
    os.unlink(fifo)
    for p in (mon, ser):
        if os.path.exists(p):
            os.unlink(p)
    os.rmdir(tmp)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
