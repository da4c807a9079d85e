"""Put the demo's results table and one alignment picture into README.md.

Usage: python scripts/update_readme.py [EXP_DIR]   (default exp/demo, after `make demo`)

Copies the first ASR test alignment PNG to docs/images/demo_alignment.png and puts it, then
EXP/results.md, between the README's demo-results markers, so the README never carries
hand-edited numbers.
"""

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- demo-results:start -->", "<!-- demo-results:end -->"


def main(exp: Path) -> None:
    results = (exp / "results.md").read_text(encoding="utf-8").strip()
    pictures = sorted((exp / "asr" / "decode" / "test" / "alignments").glob("*.png"))
    block = [START, ""]
    if pictures:
        target = ROOT / "docs" / "images" / "demo_alignment.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(pictures[0], target)
        block += [f"![ASR attention of {pictures[0].stem}](docs/images/demo_alignment.png)", ""]
    block += [results, "", END]
    readme = ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(head + "\n".join(block) + tail, encoding="utf-8")
    print(f"README.md updated from {exp}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "exp/demo"))
