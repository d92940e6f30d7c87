"""The README's screenshot of the hints editor (docs/editor.png), made with headless chromium.

Starts ``rtcolor edit PICTURE --hints HINTS`` (run it from the picture's folder, so the command the
page shows names no machine path), clicks three points with real mouse clicks, picks a suggested
color for each, sets the comparison slider, and saves the page. Needs Debian's chromium and
chromium-driver, and selenium (the dev extra).

    cd samples && python ../tools/editor_screenshot.py cameraman.png /tmp/cameraman.json ../docs/editor.png \
        -- --backend onnxruntime-int8
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time

CLICKS = ((0.30, 0.12, 1), (0.55, 0.50, 2), (0.78, 0.85, 3))  # (x, y, which suggested swatch to pick)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("picture")
    ap.add_argument("hints")
    ap.add_argument("output")
    ap.add_argument("edit_options", nargs="*", help="more options for rtcolor edit (after --), e.g. --model M")
    args = ap.parse_args()

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains

    cmd = [sys.executable, "-m", "realtime_color.cli", "edit", args.picture, "--hints", args.hints, "--no-browser"]
    proc = subprocess.Popen([*cmd, *args.edit_options], stdout=subprocess.PIPE, text=True)
    line = ""
    while "token=" not in line:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            raise SystemExit("rtcolor edit did not start")
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,800", "--hide-scrollbars"):
        options.add_argument(a)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        driver.get(line.strip())

        def wait(js: str, seconds: float = 120) -> None:
            deadline = time.monotonic() + seconds
            while not driver.execute_script("return " + js):
                if time.monotonic() > deadline:
                    raise SystemExit(f"timed out waiting for {js}")
                time.sleep(0.2)

        shown = "document.getElementById('color').dataset.rev === String(st.rev)"
        wait(shown)
        driver.execute_script(
            "document.querySelector('#modes button[data-mode=slider]').click();"
            "const s = document.getElementById('split'); s.value = 38; s.dispatchEvent(new Event('input'));"
        )
        dots = driver.find_element("id", "dots")
        w, h = dots.size["width"], dots.size["height"]
        for fx, fy, pick in CLICKS:
            offset = int((fx - 0.5) * w), int((fy - 0.5) * h)
            ActionChains(driver).move_to_element_with_offset(dots, *offset).click().perform()
            wait("document.querySelectorAll('#swatches .swatch').length >= 2")
            swatches = driver.find_elements("css selector", "#swatches .swatch")
            swatches[pick % len(swatches)].click()
            wait(shown)
        time.sleep(1.0)
        driver.save_screenshot(args.output)
    finally:
        driver.quit()
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
