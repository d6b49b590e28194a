"""Screenshots of consecutive puzzles as a new player meets them, for docs/.

Plays a running game as a new guest in Chromium at 1366×768, answers each
puzzle "not sure" (a teach puzzle's outcome is photographed too, then left
with its "Next puzzle" button), and saves the puzzle image of each as the
player sees it, with its question, in one small contact sheet.

Run: .venv/bin/python bench/screenshot_puzzles.py --url http://127.0.0.1:5000 [--n 10] [--out docs/ten-puzzles.png]
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
TILE = 192


def capture(url: str, n: int) -> list[tuple[Image.Image, str]]:
    from playwright.sync_api import sync_playwright

    shots = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        context = browser.new_context(base_url=url, viewport={"width": 1366, "height": 768})
        token = context.request.get("/auth/csrf").json()["csrf_token"]
        context.request.post("/auth/guest", headers={"X-CSRFToken": token, "Accept": "application/json"})
        page = context.new_page()
        page.goto("/play")
        for _ in range(n):
            page.wait_for_selector("[data-testid=puzzle-image][data-state=ready]")
            page.wait_for_timeout(300)
            puzzle = page.get_by_test_id("puzzle-image").get_attribute("data-puzzle-id")
            badge = page.locator("[data-role=kind]").text_content()
            question = page.locator("[data-role=question]").text_content()
            shots.append((Image.open(io.BytesIO(page.get_by_test_id("puzzle-image").screenshot())),
                          f"#{puzzle} {badge}: {question}"))
            page.keyboard.press("u")
            page.wait_for_function("""id => !document.querySelector('[data-testid=feedback]').hidden
              || document.querySelector('[data-testid=puzzle-image]').dataset.puzzleId !== id""", arg=puzzle)
            if page.get_by_test_id("feedback").is_visible():
                page.wait_for_selector(".layer-overlay img[src$='truth.png']")
                page.wait_for_timeout(300)
                shots.append((Image.open(io.BytesIO(page.get_by_test_id("puzzle-image").screenshot())),
                              f"#{puzzle} its answer, the truth drawn on it"))
                page.get_by_role("button", name="Next puzzle").click()
        browser.close()
    return shots


def contact_sheet(shots: list[tuple[Image.Image, str]], columns: int = 5) -> Image.Image:
    rows = -(-len(shots) // columns)
    label = 30
    sheet = Image.new("RGB", (columns * (TILE + 8) + 8, rows * (TILE + label + 8) + 8), (13, 18, 32))
    draw = ImageDraw.Draw(sheet)
    for i, (shot, caption) in enumerate(shots):
        x, y = 8 + (i % columns) * (TILE + 8), 8 + (i // columns) * (TILE + label + 8)
        sheet.paste(shot.convert("RGB").resize((TILE, TILE), Image.Resampling.LANCZOS), (x, y + label))
        draw.text((x, y + 4), caption[:42], fill=(233, 237, 245))
    return sheet


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--n", type=int, default=10)
    parser.add_argument("--out", default=str(ROOT / "docs" / "ten-puzzles.png"))
    args = parser.parse_args(argv)
    sheet = contact_sheet(capture(args.url, args.n))
    sheet.quantize(colors=64, method=Image.Quantize.MEDIANCUT).save(args.out, optimize=True)
    print(f"wrote {args.out} ({Path(args.out).stat().st_size // 1024} KB)", file=sys.stderr)


if __name__ == "__main__":
    main()
