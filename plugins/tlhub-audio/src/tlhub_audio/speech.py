"""A tiny spoken-words dataset synthesised with espeak-ng (real speech audio, made offline).

``make_spoken_words(folder)`` writes ``folder/<word>/<voice>-<speed>-<pitch>.wav`` (class folders,
the layout of an image folder and of ``datasets``' ``audiofolder``) and returns the files with
their labels. Each word is spoken by several espeak-ng voices at several speeds and pitches, so a
classifier has to generalise across speakers, not memorise one waveform.

espeak-ng is a Debian package: ``apt-get install -y espeak-ng``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
from pathlib import Path

WORDS = ("yes", "no", "up", "down")
VOICES = ("en-us", "en-gb", "en-gb-scotland", "en-029", "en-us+f3", "en-gb+f4")
SPEEDS = (130, 175)
PITCHES = (35, 65)


def espeak_binary() -> str | None:
    return shutil.which("espeak-ng") or shutil.which("espeak")


def make_spoken_words(folder: str | Path, *, words=WORDS, voices=VOICES, speeds=SPEEDS, pitches=PITCHES) -> list[tuple[Path, str]]:
    """Synthesise every (word, voice, speed, pitch) as a WAV file (22.05 kHz mono, espeak-ng's rate)."""
    binary = espeak_binary()
    if binary is None:
        raise RuntimeError("espeak-ng is not installed: apt-get install -y espeak-ng")
    out = Path(folder)
    files: list[tuple[Path, str]] = []
    for word in words:
        (out / word).mkdir(parents=True, exist_ok=True)
        for voice in voices:
            for speed in speeds:
                for pitch in pitches:
                    path = out / word / f"{voice.replace('+', '_')}-{speed}-{pitch}.wav"
                    if not path.is_file():
                        subprocess.run([binary, "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(path), word],
                                       check=True, capture_output=True, timeout=60)
                    files.append((path, word))
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="synthesise a tiny spoken-words dataset with espeak-ng")
    parser.add_argument("folder")
    parser.add_argument("--words", nargs="+", default=list(WORDS))
    args = parser.parse_args(argv)
    files = make_spoken_words(args.folder, words=args.words)
    print(f"{len(files)} clips of {len(args.words)} words written to {args.folder}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
