"""The command line: generate on files written by make-tiny (the demo is in test_builtin.py)."""
from __future__ import annotations

import numpy as np
from PIL import Image

from interdyn.apps.cli import main
from interdyn.data.video_io import read_video, write_video


def test_generate_end_to_end_on_tiny_files(tmp_path):
    assert main(["make-tiny", str(tmp_path / "models")]) == 0
    Image.fromarray((np.random.default_rng(0).random((80, 100, 3)) * 255).astype(np.uint8)).save(tmp_path / "in.png")
    masks = np.zeros((10, 80, 100, 3), np.uint8)
    for f in range(10):
        masks[f, 30:50, 5 + 5 * f: 25 + 5 * f] = 255
    write_video(tmp_path / "mask_hand.mp4", masks, fps=14, lossless=True)
    code = main(["generate", "--svd", str(tmp_path / "models" / "svd_tiny"),
                 "--interdyn", str(tmp_path / "models" / "interdyn_tiny.safetensors"),
                 "--image", str(tmp_path / "in.png"), "--control", str(tmp_path), "--out", str(tmp_path / "out.mp4"),
                 "--height", "64", "--width", "64", "--frames", "4", "--steps", "1"])
    assert code == 0
    video, fps = read_video(tmp_path / "out.mp4")
    assert video.shape[:3] == (4, 64, 64) and abs(fps - 7) < 1e-6, "4 frames at 64x64 and the model fps"
    assert (tmp_path / "out_comparison.mp4").is_file(), "a side-by-side comparison is written next to the output"


def test_generate_reports_missing_image(tmp_path, capsys):
    main(["make-tiny", str(tmp_path / "m")])
    code = main(["generate", "--svd", str(tmp_path / "m" / "svd_tiny"), "--image", str(tmp_path / "none.png"),
                 "--out", str(tmp_path / "o.mp4"), "--height", "64", "--width", "64", "--frames", "2", "--steps", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "--image" in err and "does not exist" in err, f"one clear line naming --image: {err!r}"
