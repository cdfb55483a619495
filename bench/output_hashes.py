"""SHA-256 of what the `interdyn` command writes, to show that a refactor changed no output (not a test).

Runs, as a user would, from the --out folder (never the repository) and with the built-in model
(builtin:toy-physics, CPU, seconds each), one subfolder per command:

    prepare/  interdyn prepare synthetic --out clips --num-clips 3 (push scenes, seeds 1000000-1000002)
    demo/     interdyn demo --out demo
    generate/ interdyn generate --svd builtin:toy-physics --interdyn builtin:toy-physics
                  --image frame0.png --control ../prepare/clips/push_1000000/mask_hand.mp4 --out out.mp4
                  --height 64 --width 64 --frames 8 --steps 8 --seed 1
              (frame0.png: frame 0 of push_1000000/video.mp4, read with PyAV by this script)
    manifest/ interdyn generate ... --manifest manifest.csv --report report.json (2 rows: clips 1000001 and
                  1000002, seeds 2 and 3, the same sampling flags)
    evaluate/ interdyn evaluate --data ../prepare/clips --out eval --svd builtin:toy-physics
                  --interdyn builtin:toy-physics --frames 8 --height 64 --width 64 --clip-fps 6 --fps 7
                  --steps 8 --min-guidance 1 --max-guidance 2 --no-progress
              (default methods interdyn, no_control, copy_first_frame; no metric weights are given, so
              LPIPS/FID/KID/FVD/KVD are n/a and the scores are SSIM, PSNR and MF with OpenCV's tracker)

Every command runs as `--python -m interdyn.apps.cli ...` in a subprocess with OMP_NUM_THREADS=1 (and
MKL_NUM_THREADS=1). The code imported is the installed distribution's unless --code CHECKOUT is given; the
files imported (interdyn.apps.cli, interdyn_training.evaluation.runner) are printed and kept in run_info.json.
Outside the repository the training package is `interdyn_training` (pyproject's package-dir; the entry points
of `interdyn prepare/evaluate` name it), so PYTHONPATH=/other/checkout alone swaps interdyn/ but NOT
training/ (the editable finder still maps interdyn_training to the installed checkout, and a plain `training`
there is another distribution's). --code puts a folder of two links (interdyn, interdyn_training ->
CHECKOUT/interdyn, CHECKOUT/training) first on PYTHONPATH, which wins over the editable finder.
stdout/stderr of each command go to <out>/logs/ (not hashed: progress bars and timings).

Hashes (printed and written to <out>/hashes.json, relative path -> SHA-256):
- every file under --out except logs/, hashes.json, frames.json and run_info.json (which code ran: paths), as bytes (the
  inputs this script writes, frame*.png and manifest.csv, included), except
- JSON files (.json): parsed, every key that holds a timing removed at any depth (TIMING_KEYS: "seconds",
  "elapsed", "duration", "started", "finished_at", "date", "time", "timestamp", and any key ending in
  "_seconds"), then hashed as json.dumps(sort_keys=False, indent=1); key order is kept, so a reordered
  report still counts as a change. Today only "seconds" occurs (generate --report: run and per row;
  evaluate results.json: run.seconds). Nothing else needs care: the videos (PyAV), PNGs (PIL) and the
  evaluation's .npz feature cache (numpy stamps zip members 1980-01-01) hold no date.

Videos (.mp4, .webm, .mkv, .gif) also get the SHA-256 of their decoded frames (rgb24) in <out>/frames.json,
because libx264 (lossy, crf) is not byte-reproducible here: encoding the same YUV frames several times in one
process gives 2-3 different bitstreams that decode to identical pictures (measured on prepare's
push_1000000/video.mp4, at the base commit and at HEAD alike; the same frames give one bitstream in 30 of 30
tries with x264-params asm=0 or mbtree=0: x264's SIMD macroblock-tree path, not our code). --compare says, for
each video whose bytes differ, whether its decoded frames do; --frames-for-videos counts such a video as equal.

    python bench/output_hashes.py --out /tmp/hashes_head
    git worktree add /tmp/base 3117d78 && python bench/output_hashes.py --code /tmp/base --out /tmp/hashes_base
    python bench/output_hashes.py --compare /tmp/hashes_base/hashes.json /tmp/hashes_head/hashes.json
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

TIMING_KEYS = {"seconds", "elapsed", "duration", "started", "finished_at", "date", "time", "timestamp"}
MODEL = "builtin:toy-physics"
SAMPLING = ["--height", "64", "--width", "64", "--frames", "8", "--steps", "8"]
NOT_HASHED = ("logs", "hashes.json", "frames.json", "run_info.json")
VIDEO_SUFFIXES = (".mp4", ".webm", ".mkv", ".gif")


def strip_timings(obj):
    if isinstance(obj, dict):
        return {k: strip_timings(v) for k, v in obj.items()
                if not (k in TIMING_KEYS or k.endswith("_seconds"))}
    if isinstance(obj, list):
        return [strip_timings(v) for v in obj]
    return obj


def file_hash(path: Path) -> str:
    if path.suffix == ".json":
        data = json.loads(path.read_text())
        return hashlib.sha256(json.dumps(strip_timings(data), indent=1).encode()).hexdigest()
    return hashlib.sha256(path.read_bytes()).hexdigest()


def frames_hash(path: Path) -> str:
    """SHA-256 of a video's decoded frames (rgb24, in order, with their shapes): equal for two encodings that
    decode to the same pictures."""
    import av  # only here: --compare needs neither PyAV nor PIL

    h = hashlib.sha256()
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            pixels = frame.to_ndarray(format="rgb24")
            h.update(repr(pixels.shape).encode() + pixels.tobytes())
    return h.hexdigest()


def hash_tree(root: Path) -> dict[str, str]:
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if rel.parts[0] in NOT_HASHED or not path.is_file():
            continue
        out[rel.as_posix()] = file_hash(path)
    return out


def first_frame(video: Path, png: Path) -> None:
    import av  # only here: --compare needs neither PyAV nor PIL

    with av.open(str(video)) as container:
        frame = next(container.decode(video=0)).to_image()
    frame.save(png)


class Runner:
    def __init__(self, out: Path, python: str, code: Path | None = None):
        self.out, self.python = out, python
        self.env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        self.shim = None
        if code is not None:
            # the installed distribution maps `interdyn` and `interdyn_training` (the repository's training/)
            # to the editable checkout; a folder of two links, first on PYTHONPATH, wins over that finder
            shim = Path(tempfile.mkdtemp(prefix="output_hashes_code_"))
            (shim / "interdyn").symlink_to(code.resolve() / "interdyn")
            (shim / "interdyn_training").symlink_to(code.resolve() / "training")
            self.env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(shim), self.env.get("PYTHONPATH")]))
            self.shim = shim
        (out / "logs").mkdir()

    def run(self, name: str, folder: str, args: list[str]) -> None:
        cwd = self.out / folder
        cwd.mkdir(exist_ok=True)
        cmd = [self.python, "-m", "interdyn.apps.cli", *args]
        print(f"[{folder}] {' '.join(cmd)}", flush=True)
        with open(self.out / "logs" / f"{name}.log", "w") as log:
            rc = subprocess.run(cmd, cwd=cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT).returncode
        if rc != 0:
            sys.exit(f"{name} failed with exit status {rc}; see {self.out / 'logs' / (name + '.log')}")

    def remove_shim(self) -> None:
        if self.shim is not None:
            for name in ("interdyn", "interdyn_training"):  # the two links this script made, nothing else
                (self.shim / name).unlink()
            self.shim.rmdir()  # its own mkdtemp, now empty
            self.shim = None

    def code_used(self) -> dict:
        probe = ("import sys, interdyn.apps.cli, interdyn_training.evaluation.runner as r; "
                 "print(interdyn.apps.cli.__file__); print(r.__file__); print(sys.version.split()[0])")
        lines = subprocess.run([self.python, "-c", probe], cwd=self.out, env=self.env, check=True,
                               capture_output=True, text=True).stdout.split("\n")
        return {"interdyn": lines[0], "training": lines[1], "python": lines[2],
                "PYTHONPATH": self.env.get("PYTHONPATH", "")}


def produce(out: Path, python: str, code: Path | None) -> dict[str, str]:
    out.mkdir(parents=True)  # refuses an existing folder
    r = Runner(out, python, code)
    models = ["--svd", MODEL, "--interdyn", MODEL]
    try:
        info = r.code_used()
        print(f"code: interdyn {info['interdyn']}, training {info['training']} (python {info['python']})",
              flush=True)
        (out / "run_info.json").write_text(json.dumps(info, indent=1))

        r.run("prepare", "prepare", ["prepare", "synthetic", "--out", "clips", "--num-clips", "3"])
        clips = out / "prepare" / "clips"
        r.run("demo", "demo", ["demo", "--out", "demo"])

        (out / "generate").mkdir()
        first_frame(clips / "push_1000000" / "video.mp4", out / "generate" / "frame0.png")
        r.run("generate", "generate", ["generate", *models, "--image", "frame0.png",
                                       "--control", "../prepare/clips/push_1000000/mask_hand.mp4",
                                       "--out", "out.mp4", *SAMPLING, "--seed", "1"])

        (out / "manifest").mkdir()
        rows = ["image,control,out,seed"]
        for i, clip in enumerate(("push_1000001", "push_1000002")):
            first_frame(clips / clip / "video.mp4", out / "manifest" / f"frame{i}.png")
            rows.append(f"frame{i}.png,../prepare/clips/{clip}/mask_hand.mp4,row{i}.mp4,{i + 2}")
        (out / "manifest" / "manifest.csv").write_text("\n".join(rows) + "\n")
        r.run("manifest", "manifest", ["generate", *models, "--manifest", "manifest.csv", "--report", "report.json",
                                       *SAMPLING])

        r.run("evaluate", "evaluate", ["evaluate", "--data", "../prepare/clips", "--out", "eval", *models,
                                       "--frames", "8", "--height", "64", "--width", "64", "--clip-fps", "6",
                                       "--fps", "7", "--steps", "8", "--min-guidance", "1", "--max-guidance", "2",
                                       "--no-progress"])
    finally:
        r.remove_shim()
    hashes = hash_tree(out)
    (out / "hashes.json").write_text(json.dumps(hashes, indent=1) + "\n")
    frames = {rel: frames_hash(out / rel) for rel in hashes if Path(rel).suffix in VIDEO_SUFFIXES}
    (out / "frames.json").write_text(json.dumps(frames, indent=1) + "\n")
    return hashes


def compare(a: Path, b: Path, frames_for_videos: bool = False) -> int:
    ha, hb = json.loads(a.read_text()), json.loads(b.read_text())
    fa, fb = ({}, {})
    if (a.parent / "frames.json").is_file() and (b.parent / "frames.json").is_file():
        fa, fb = (json.loads((x.parent / "frames.json").read_text()) for x in (a, b))
    differ = same_frames = 0
    for rel in sorted(set(ha) | set(hb)):
        if rel not in hb:
            print(f"only in {a}: {rel}")
        elif rel not in ha:
            print(f"only in {b}: {rel}")
        elif ha[rel] != hb[rel]:
            if rel in fa and fa.get(rel) == fb.get(rel):
                same_frames += 1
                note = "; decoded frames identical (the encoder's bytes only)"
                if frames_for_videos:
                    print(f"bytes differ, counted equal: {rel}{note}")
                    continue
            else:
                note = "; decoded frames differ too" if rel in fa else ""
            print(f"differs: {rel}{note}")
        else:
            continue
        differ += 1
    print(f"{len(set(ha) | set(hb))} files, {differ} differ"
          + (f" ({same_frames} video(s) whose bytes differ but decoded frames are identical"
             + (", counted equal)" if frames_for_videos else ")") if same_frames else ""))
    return 1 if differ else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--out", type=Path, help="folder to create (must not exist) for the outputs and hashes.json")
    group.add_argument("--compare", type=Path, nargs=2, metavar=("A.json", "B.json"),
                       help="print the files whose hashes differ; exit status 1 if any")
    parser.add_argument("--frames-for-videos", action="store_true",
                        help="with --compare: a video whose bytes differ but whose decoded frames are identical "
                             "(frames.json beside each hashes.json) counts as equal")
    parser.add_argument("--python", default=sys.executable, help="interpreter that runs interdyn (default: this one)")
    parser.add_argument("--code", type=Path, default=None,
                        help="run another checkout's interdyn/ and training/ (e.g. a git worktree of an older "
                             "commit) instead of the installed ones; the files imported are printed")
    args = parser.parse_args()
    if args.compare:
        return compare(*args.compare, frames_for_videos=args.frames_for_videos)
    if args.out.exists():
        parser.error(f"--out {args.out} exists; give a new folder")
    if args.code is not None and not (args.code / "interdyn").is_dir():
        parser.error(f"--code {args.code} has no interdyn/ folder")
    hashes = produce(args.out.resolve(), args.python, args.code)
    for rel, digest in hashes.items():
        print(f"{digest}  {rel}")
    print(f"{len(hashes)} files; wrote {args.out / 'hashes.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
