"""The GPU's utilisation while a benchmark part runs: the share of time a kernel was running, device-wide, as
the driver reports it (nvidia-smi's utilization.gpu), sampled every PERIOD seconds from another thread.

nvidia-smi streams its samples itself (-lms); without it, torch.cuda.utilization() (which needs pynvml)
is polled; with neither (no GPU, say) the summary is None and says nothing was measured."""

from __future__ import annotations

import shutil
import subprocess
import threading

PERIOD = 0.2  # seconds


class GpuSampler:
    def __init__(self) -> None:
        self.samples: list[float] = []
        self.source: str | None = None
        self._stop = threading.Event()
        self._proc: subprocess.Popen | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> GpuSampler:
        if shutil.which("nvidia-smi"):
            self.source = "nvidia-smi"
            self._proc = subprocess.Popen(
                ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", "--id=0",
                 f"--loop-ms={int(PERIOD * 1000)}"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            self._thread = threading.Thread(target=self._read_stream, daemon=True)
        elif self._torch_can_sample():
            self.source = "torch.cuda.utilization"
            self._thread = threading.Thread(target=self._poll_torch, daemon=True)
        if self._thread is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=10)
        if self._thread is not None:
            self._thread.join(timeout=10)

    @staticmethod
    def _torch_can_sample() -> bool:
        try:
            import torch

            if not torch.cuda.is_available():
                return False
            torch.cuda.utilization(0)
        except Exception:  # noqa: BLE001 - no pynvml, no driver: nothing to sample with
            return False
        return True

    def _read_stream(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            try:
                self.samples.append(float(line.strip()))
            except ValueError:  # "[N/A]" or a message: not a sample
                continue

    def _poll_torch(self) -> None:
        import torch

        while not self._stop.wait(PERIOD):
            self.samples.append(float(torch.cuda.utilization(0)))

    def summary(self) -> dict | None:
        """Mean and peak utilisation (%) over the samples; None when nothing could be sampled."""
        if not self.samples:
            return None
        return {"source": self.source, "mean_percent": round(sum(self.samples) / len(self.samples), 1),
                "max_percent": max(self.samples), "samples": len(self.samples), "period_seconds": PERIOD}
