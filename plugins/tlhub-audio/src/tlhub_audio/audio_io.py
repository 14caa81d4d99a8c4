"""Audio in whatever form it arrives, as one mono float32 array plus its sampling rate.

Forms accepted by :func:`load_audio`:

- a file path or raw file bytes (WAV, FLAC, MP3, OGG ... anything FFmpeg reads, through torchcodec)
- a ``datasets`` Audio value: decoded (a torchcodec ``AudioDecoder``, what datasets 4+/5 returns)
  or raw (``{"bytes": ..., "path": ...}`` with ``Audio(decode=False)``)
- ``{"array": ..., "sampling_rate": ...}`` (datasets 2/3 style, and what this module returns)
- ``(sampling_rate, array)`` as Gradio's ``gr.Audio(type="numpy")`` hands it over (int16)
- a bare numpy array or torch tensor (sampling rate unknown: the model's rate is assumed)

numpy is imported at call time only; torchcodec only when a file has to be decoded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tlhub.adapters.audio import wav_bytes, write_wav  # noqa: F401  (re-exported: WAV files are tlhub's helpers)
from tlhub.errors import DataError

#: What to install when torchcodec cannot load FFmpeg (Debian 12 package names; FFmpeg 4 to 8 work).
FFMPEG_FIX = (
    "install torchcodec and the FFmpeg libraries: pip install torchcodec, then "
    "apt-get install -y --no-install-recommends libavcodec59 libavformat59 libavutil57 libswresample4 "
    "libswscale6 libavdevice59 libavfilter8 (or apt-get install ffmpeg)"
)


def load_audio(value: Any, *, name: str | None = None) -> dict[str, Any]:
    """``{"array": float32 mono numpy array, "sampling_rate": int | None}`` for ``value``."""
    import numpy as np

    where = name
    if isinstance(value, dict):
        if value.get("array") is not None:
            return _clip(value["array"], value.get("sampling_rate"))
        if value.get("bytes") is not None or value.get("path") is not None:
            where = where or value.get("path")
            return _decode_file(value["bytes"] if value.get("bytes") is not None else value["path"], where)
        raise DataError(f"an audio value needs 'array' or 'bytes'/'path', got keys {sorted(value)}", fix="pass a file path or a datasets Audio value")
    if hasattr(value, "get_all_samples"):  # torchcodec AudioDecoder (datasets' decoded Audio)
        try:
            samples = value.get_all_samples()
        except Exception as exc:
            raise DataError(f"cannot decode {where or 'audio'}: {exc}", fix="check the file; " + FFMPEG_FIX) from None
        return _clip(samples.data.cpu().numpy(), int(samples.sample_rate))
    if isinstance(value, (str, Path)):
        path = Path(value).expanduser()
        if not path.is_file():
            raise DataError(f"audio file not found: {path}", fix="check the path")
        return _decode_file(str(path), where or str(path))
    if isinstance(value, (bytes, bytearray)):
        return _decode_file(bytes(value), where)
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], (int, np.integer)):
        return _clip(value[1], int(value[0]))  # Gradio: (sampling_rate, data)
    if hasattr(value, "__array__") or isinstance(value, list):
        return _clip(value, None)
    raise DataError(f"cannot read audio from a {type(value).__name__}", fix="pass a file path, bytes, or a datasets Audio value")


def _clip(array: Any, sampling_rate: int | None) -> dict[str, Any]:
    import numpy as np

    if hasattr(array, "detach"):
        array = array.detach().cpu().numpy()
    data = np.asarray(array)
    if np.issubdtype(data.dtype, np.integer):  # PCM (Gradio gives int16): scale to [-1, 1)
        data = data.astype(np.float32) / float(np.iinfo(data.dtype).max + 1)
    if data.ndim == 2:  # (samples, channels) from Gradio/soundfile, (channels, samples) from torch
        data = data.mean(axis=1 if data.shape[0] > data.shape[1] else 0)
    elif data.ndim != 1:
        raise DataError(f"audio must be 1-D (mono) or 2-D (channels), got shape {data.shape}", fix="pass mono or multi-channel audio")
    data = data.astype(np.float32, copy=False)
    if data.size == 0:
        raise DataError("the audio is empty (0 samples)", fix="remove the empty clip")
    if not np.isfinite(data).all():
        raise DataError("the audio holds NaN or infinite samples", fix="re-export the clip")
    return {"array": data, "sampling_rate": int(sampling_rate) if sampling_rate else None}


def _decode_file(source: str | bytes, where: str | None) -> dict[str, Any]:
    try:
        from torchcodec.decoders import AudioDecoder
    except Exception as exc:  # ImportError, or torchcodec failing to load its FFmpeg libraries
        raise DataError(f"cannot decode audio files: torchcodec is not usable ({type(exc).__name__}: {exc})", fix=FFMPEG_FIX) from None
    try:
        samples = AudioDecoder(source).get_all_samples()
    except Exception as exc:
        what = where or ("the audio bytes" if isinstance(source, bytes) else source)
        raise DataError(f"{what} is not audio FFmpeg can decode ({exc})", fix="remove the file or convert it to WAV/FLAC") from None
    return _clip(samples.data.cpu().numpy(), int(samples.sample_rate))


def resample(array, orig_sr: int | None, target_sr: int):
    """Polyphase resampling (scipy) from ``orig_sr`` to ``target_sr``; unknown rates are taken as the target."""
    import numpy as np

    if not orig_sr or orig_sr == target_sr:
        return array
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(int(orig_sr), int(target_sr))
    return resample_poly(array, target_sr // g, orig_sr // g).astype(np.float32)
