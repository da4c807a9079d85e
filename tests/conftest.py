"""Shared test fixtures: one torch thread for tiny models, the offline mini corpus (built once per
session), and loading a report in headless Chromium to read back what loaded."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

CHECK_SCRIPT = """
<pre id="result">pending</pre>
<script>
// Runs after every image and the audio's metadata had their chance to load (window 'load').
function mediaDuration(a) {
  if (a.readyState >= 1) return Promise.resolve(a.duration);
  return new Promise(resolve => {
    a.addEventListener('loadedmetadata', () => resolve(a.duration));
    a.addEventListener('error', () => resolve(-1));
    setTimeout(() => resolve(-2), 5000);
  });
}
window.addEventListener('load', async () => {
  const widths = [...document.images].map(img => img.complete ? img.naturalWidth : 0);
  const durations = await Promise.all([...document.querySelectorAll('audio')].map(mediaDuration));
  const links = [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href'));
  document.getElementById('result').textContent = JSON.stringify({widths, durations, links});
});
</script>
"""


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.fixture
def load_in_chromium(tmp_path):
    """``load(page) -> {"widths": [...], "durations": [...], "links": [...]}``: the natural width of
    every image, the duration of every audio element (negative: failed to load) and every link of
    ``page`` as headless Chromium saw them. Skips when Chromium is not installed."""
    if chromium() is None:
        pytest.skip("Chromium not installed (Debian: apt-get install chromium; make test does)")

    def load(page: Path) -> dict:
        probe = tmp_path / f"probe-{page.stem}.html"
        probe.write_text(page.read_text(encoding="utf-8").replace("</body>", CHECK_SCRIPT + "</body>"),
                         encoding="utf-8")
        result = subprocess.run(
            [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--autoplay-policy=no-user-gesture-required",
             f"--user-data-dir={tmp_path / 'chromium-profile'}", "--virtual-time-budget=10000",
             "--dump-dom", probe.as_uri()],
            capture_output=True, text=True, timeout=120,
        )
        dom = result.stdout
        assert '<pre id="result">' in dom, result.stderr[-2000:]
        return json.loads(dom.split('<pre id="result">')[1].split("</pre>")[0])

    return load


@pytest.fixture(scope="session")
def mini_corpus(tmp_path_factory) -> Path:
    """The offline ``mini`` corpus (seed 0), synthesized once per test session. Tests only read it
    (link it into a folder of their own where a command wants it at a certain place)."""
    if shutil.which("espeak-ng") is None or shutil.which("flite") is None:
        pytest.skip("espeak-ng and flite are needed to synthesize the offline corpus (make sysdeps)")
    from speechattn.offline.corpus import build_corpus
    from speechattn.offline.prose import WORDNET_DIR

    if not (WORDNET_DIR / "data.noun").is_file():
        pytest.skip("wordnet-base is needed for the offline corpus's prose sentences (make sysdeps)")

    root = tmp_path_factory.mktemp("offline") / "mini"
    build_corpus(root, size="mini", seed=0, jobs=2, progress=False)
    return root


@pytest.fixture(scope="module")
def one_thread():
    """Run the module's tiny models on one torch thread (restored afterwards): they gain nothing from
    intra-op threads, and on a busy machine OpenMP threads spinning for each other make every step
    tens of times slower."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
