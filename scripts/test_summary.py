#!/usr/bin/env python3
"""Summarises the GoogleTest XML results of one or more build folders (BUILD/test-results/*.xml,
written by ctest through gtest_discover_tests' XML_OUTPUT_DIR): how many tests ran on the CPU, on
the emulated CUDA device and on a real GPU (the "device" property the CUDA tests record), how many
failed, and how many were skipped, grouped by the reason they gave.

    python3 scripts/test_summary.py build build-check [--markdown]

Standard library only. Exit status 0 (the summary reports; ctest decides success).
"""
import collections
import glob
import os
import re
import sys
import xml.etree.ElementTree as ET


def results(folder):
    """Yields (name, status, device, skip_message, seconds) for every test case in the folder's
    XMLs."""
    # Parametrised test names contain '/', so their files lie in sub-folders.
    for path in sorted(glob.glob(os.path.join(folder, "test-results", "**", "*.xml"),
                                 recursive=True)):
        try:
            root = ET.parse(path).getroot()
        except ET.ParseError:
            yield (os.path.basename(path), "unreadable", "cpu", "", 0.0)
            continue
        for case in root.iter("testcase"):
            name = case.get("classname", "") + "." + case.get("name", "")
            device = "cpu"
            for prop in case.iter("property"):
                if prop.get("name") == "device":
                    device = prop.get("value")
            if case.find("failure") is not None or case.find("error") is not None:
                status = "failed"
            elif case.find("skipped") is not None or case.get("result") == "skipped":
                status = "skipped"
            elif case.get("status") == "notrun":
                status = "skipped"
            else:
                status = "ran"
            message = ""
            skipped = case.find("skipped")
            if skipped is not None:
                message = (skipped.get("message") or skipped.text or "").strip()
            try:
                seconds = float(case.get("time", "0"))
            except ValueError:
                seconds = 0.0
            yield (name, status, device, message, seconds)


def reason(message):
    """The skip message's first line after GoogleTest's "file:line" line, for grouping."""
    lines = [l.strip() for l in message.splitlines() if l.strip()]
    lines = [l for l in lines if not re.match(r"^\S+:\d+$", l) and l != "Skipped"]
    return lines[0] if lines else "(no reason given)"


def main(argv):
    folders = [a for a in argv if not a.startswith("--")]
    if not folders:
        print(__doc__)
        return 2
    total = collections.Counter()
    print("== test summary ==")
    for folder in folders:
        counts = collections.Counter()
        seconds = collections.Counter()
        reasons = collections.Counter()
        failed = []
        for name, status, device, message, secs in results(folder):
            seconds[device] += secs
            if status == "ran":
                counts[device] += 1
            elif status == "skipped":
                counts["skipped"] += 1
                reasons[reason(message)] += 1
            else:
                counts["failed"] += 1
                failed.append(name)
        total.update(counts)
        cache = os.path.join(folder, "CMakeCache.txt")
        flavour = ""
        if os.path.exists(cache):
            text = open(cache, encoding="utf-8", errors="replace").read()
            cuda = re.search(r"^HALO_CUDA:\w+=(\w+)", text, re.M)
            san = re.search(r"^HALO_SANITIZE:\w+=(\w+)", text, re.M)
            flavour = " (HALO_CUDA=%s%s)" % (
                cuda.group(1) if cuda else "?",
                ", ASan+UBSan" if san and san.group(1) in ("ON", "1", "TRUE") else "")
        print("%s%s: %d ran on the CPU (%.0f s), %d on the emulated CUDA device (%.0f s), %d on a "
              "GPU (%.0f s); %d failed; %d skipped" % (
                  folder, flavour, counts["cpu"], seconds["cpu"], counts["emulated"],
                  seconds["emulated"], counts["gpu"], seconds["gpu"], counts["failed"],
                  counts["skipped"]))
        for r, n in reasons.most_common():
            print("    skipped %4d: %s" % (n, r[:160]))
        for name in failed:
            print("    FAILED: " + name)
    if len(folders) > 1:
        print("all: %d ran on the CPU, %d on the emulated CUDA device, %d on a GPU; %d failed; "
              "%d skipped" % (total["cpu"], total["emulated"], total["gpu"], total["failed"],
                              total["skipped"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
