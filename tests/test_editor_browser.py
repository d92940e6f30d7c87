"""rtcolor edit in a real browser: Debian's chromium, headless, driven by selenium through Debian's
chromium-driver (nothing downloaded). A picture: click, choose a suggested color, the picture
changes around the point, the file holds the hint, a reload shows it again. A video of two shots:
a hint on shot 2 shows on another frame of shot 2 and not on shot 1, and the page's colorize
gives what the command it shows gives."""

from __future__ import annotations

import base64
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from realtime_color.guidance.hints import load_hints
from realtime_color.media.images import write_image
from realtime_color.model.network import ModelConfig, build_model
from realtime_color.model.weights import save_checkpoint

from .conftest import scene

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (the dev extra)")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None, reason="needs Debian's chromium and chromium-driver (installed by .ci/run)"
)
ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def hinted_checkpoint(tmp_path_factory) -> Path:
    """A small binned hint-capable network whose hint branch has weights (as if trained), at 64 px."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(ab_bins=5, hint_channels=3)).eval()
    for weight in model.hints.parameters():  # the branch's zero-initialized layers, whatever its layout
        if not weight.detach().any():
            torch.nn.init.normal_(weight, std=0.5)
    return save_checkpoint(model, tmp_path_factory.mktemp("ckpt") / "hinted.safetensors", {"inference_size": 64})


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,860"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)  # the system driver: no Selenium Manager
    driver.set_script_timeout(60)
    yield driver
    driver.quit()


def rtcolor(*args: str) -> list[str]:
    return [sys.executable, "-m", "realtime_color.cli", *args]


@contextmanager
def editing(input_path: Path, hints: Path, checkpoint: Path):
    """``rtcolor edit`` as a user starts it; yields the URL it prints; Ctrl-C at the end."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = rtcolor("edit", str(input_path), "--hints", str(hints), "--no-browser", "--model", str(checkpoint),
                  "--backend", "torch", "--device", "cpu")  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline, line = time.monotonic() + 180, ""
        while "?token=" not in line:
            line = proc.stdout.readline()
            assert (line or proc.poll() is None) and time.monotonic() < deadline, proc.stderr.read()
        yield line.strip()
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(60)
        err = proc.stderr.read()
        assert code in (0, 130) and "Traceback" not in err, err


def wait(driver, script: str, seconds: float = 120.0):
    """Poll a JS expression until it is truthy; returns its value."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = driver.execute_script(f"return {script};")
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {script}: {driver.find_element('id', 'message').text}")


def shown(driver) -> np.ndarray:
    """The colorized picture as the page shows it (decoded by the browser, read back from a canvas)."""
    url = driver.execute_script(
        "const i = document.getElementById('color'); const c = document.createElement('canvas');"
        "c.width = i.naturalWidth; c.height = i.naturalHeight; c.getContext('2d').drawImage(i, 0, 0);"
        "return c.toDataURL('image/png');"
    )
    data = np.frombuffer(base64.b64decode(url.split(",", 1)[1]), np.uint8)
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB).astype(np.float32)


def click_at(driver, fx: float, fy: float) -> None:
    """A real mouse click on the picture at fractions (fx, fy) of its width and height."""
    from selenium.webdriver.common.action_chains import ActionChains

    dots = driver.find_element("id", "dots")
    w, h = dots.size["width"], dots.size["height"]
    ActionChains(driver).move_to_element_with_offset(dots, int((fx - 0.5) * w), int((fy - 0.5) * h)).click().perform()


def loaded(rev: int, frame: int = 0) -> str:
    img = "document.getElementById('color').dataset"
    return f"{img}.rev === '{rev}' && {img}.frame === '{frame}'"


def test_a_picture_click_a_suggested_color_and_the_picture_changes_there(browser, hinted_checkpoint, tmp_path):
    picture, hints = tmp_path / "photo.png", tmp_path / "photo.json"
    write_image(picture, scene(180, 320, seed=3))
    with editing(picture, hints, hinted_checkpoint) as url:
        browser.get(url)
        wait(browser, loaded(0))
        before = shown(browser)
        click_at(browser, 0.3, 0.7)
        wait(browser, loaded(1) + " && document.querySelectorAll('#swatches .swatch').length >= 2")
        assert wait(browser, "document.getElementById('chooser-label').textContent").startswith("The network's")
        swatches = browser.find_elements("css selector", "#swatches .swatch")
        rgb = [np.array([int(s.get_attribute("data-color")[i : i + 2], 16) for i in (1, 3, 5)]) for s in swatches]
        pick = max(range(1, len(rgb)), key=lambda i: np.abs(rgb[i] - rgb[0]).sum())  # the least like the first
        chosen = swatches[pick].get_attribute("data-color")
        swatches[pick].click()
        wait(browser, loaded(2))
        after = shown(browser)
        h, w = before.shape[:2]
        y, x = int(0.7 * h), int(0.3 * w)
        near = np.abs(after - before)[y - 12 : y + 12, x - 12 : x + 12].mean()
        assert near > 0.5, near  # the picture changed around the point (an unchanged one decodes identically)
        assert "updated in" in browser.find_element("id", "latency").text
        placed = load_hints(hints).hints
        assert len(placed) == 1 and placed[0].color == chosen
        assert abs(placed[0].x - 0.3) < 0.02 and abs(placed[0].y - 0.7) < 0.02
        browser.refresh()
        wait(browser, "document.getElementById('color').dataset.rev === String(st.rev)")  # the server's rev
        dots = browser.find_elements("css selector", "#dots .hint")
        assert [d.get_attribute("data-color") for d in dots] == [chosen]  # still there after a reload
        assert np.abs(shown(browser) - after).mean() < 1.0  # and the picture is the hinted one
        browser.save_screenshot(str(tmp_path / "picture.png"))


def go_to(driver, frame: int, rev: int) -> None:
    driver.execute_script(
        f"const s = document.getElementById('scrub'); s.value = '{frame}'; s.dispatchEvent(new Event('input'));"
    )
    wait(driver, loaded(rev, frame) + f" && document.getElementById('dots').dataset.placed === '{rev}:{frame}'")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def frames_of(path: Path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(c.streams.video[0])]


def test_a_video_hint_holds_in_its_shot_and_the_page_colorizes_as_the_cli(browser, hinted_checkpoint, tmp_path):
    from realtime_color.media.synth import write_clip

    clip, hints = tmp_path / "reel.mp4", tmp_path / "reel.json"
    write_clip(clip, seconds=4.0, width=320, height=180, fps=15, gray=True, audio=False, cut_at=2.0, seed=2, pan=6.0)
    with editing(clip, hints, hinted_checkpoint) as url:
        browser.get(url)
        wait(browser, loaded(0))
        cuts = browser.execute_script("return st.cuts;")
        assert cuts == [0, 30], cuts  # the pipeline's cut detector found the two shots
        go_to(browser, 10, 0)
        shot1_before = shown(browser)
        go_to(browser, 50, 0)
        shot2_before = shown(browser)
        go_to(browser, 40, 0)
        click_at(browser, 0.25, 0.3)
        wait(browser, loaded(1, 40) + " && document.querySelectorAll('#dots .hint').length === 1")
        assert load_hints(hints).hints[0].frame == 40
        go_to(browser, 50, 1)  # another frame of shot 2: the hint is carried there
        dots = browser.find_elements("css selector", "#dots .hint")
        assert len(dots) == 1 and "carried" in dots[0].get_attribute("class")
        assert np.abs(shown(browser) - shot2_before).mean() > 0.1  # changed (an unchanged frame decodes identically)
        go_to(browser, 10, 1)  # shot 1: no hint, and the picture is as it was
        assert browser.find_elements("css selector", "#dots .hint") == []
        assert np.abs(shown(browser) - shot1_before).max() < 2.0
        browser.save_screenshot(str(tmp_path / "video.png"))

        output = browser.find_element("id", "output")
        output.clear()
        output.send_keys("page.mp4")
        browser.find_element("id", "run").click()
        wait(browser, "['done', 'failed'].includes(document.getElementById('job').dataset.state)", 600)
        assert browser.find_element("id", "job").get_attribute("data-state") == "done", browser.find_element(
            "id", "job-message"
        ).text
        command = browser.find_element("id", "command").text
    assert (tmp_path / "page.mp4").is_file()
    words = shlex.split(command)
    assert words[:2] == ["rtcolor", "colorize"] and words[words.index("--hints") + 1] == str(hints)
    words[words.index("-o") + 1] = str(tmp_path / "cli.mp4")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run(rtcolor(*words[1:]), check=True, capture_output=True, env=env, timeout=600)
    page, cli = frames_of(tmp_path / "page.mp4"), frames_of(tmp_path / "cli.mp4")
    assert len(page) == len(cli) == 60
    assert min(psnr(a, b) for a, b in zip(page, cli, strict=True)) >= 40.0
