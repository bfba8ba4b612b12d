"""Screenshots of MLflow's UI on a dlexp store, for the README (docs/ui-*.png).

    python docs/screenshots.py --runs-dir /tmp/store/runs --out docs

Starts `dlexp ui` on the store, drives headless Chromium through the DevTools protocol (aiohttp, which MLflow
installs, speaks its websocket), and writes two PNGs: the experiment's runs (the view `dlexp ui` opens) and
the newest run that follows another (`dlexp next`), its Description unfolded. Needs `chromium` on the PATH
(`apt-get install -y chromium`). A documentation tool: dlexp itself does not use it.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, timeout: float) -> None:
    end = time.time() + timeout
    while time.time() < end:
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            time.sleep(1)
    raise SystemExit(f"nothing answered at {url} within {timeout:.0f} s")


class Page:
    """One Chromium tab, driven over the DevTools protocol."""

    def __init__(self, ws):
        self.ws, self._id = ws, 0

    async def call(self, method: str, **params):
        self._id += 1
        await self.ws.send_str(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            msg = json.loads((await self.ws.receive()).data)
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    async def js(self, expression: str):
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        return (result.get("result") or {}).get("value")

    async def until(self, expression: str, timeout: float = 60) -> None:
        end = time.time() + timeout
        while time.time() < end:
            if await self.js(expression):
                return
            await asyncio.sleep(0.5)
        raise SystemExit(f"the page never showed: {expression}")

    async def center(self, selector: str):
        return await self.js(f"""(() => {{ const e = document.querySelector({selector!r});
            if (!e) return null; const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }})()""")

    async def click(self, selector: str) -> bool:
        """A real mouse click (the UI's handlers listen to pointer events) on the first element matching."""
        box = await self.center(selector)
        if not box:
            return False
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            await self.call("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left", clickCount=1)
        return True

    async def shot(self, path: Path, *, width: int, height: int, max_bytes: int = 300_000) -> None:
        data = base64.b64decode((await self.call("Page.captureScreenshot", format="png",
                                                 clip={"x": 0, "y": 0, "width": width, "height": height,
                                                       "scale": 1}))["data"])
        from PIL import Image

        image = Image.open(io.BytesIO(data)).convert("RGB")
        for colors in (256, 128, 64):  # a UI has few colours: a palette keeps the file small
            buf = io.BytesIO()
            image.quantize(colors=colors, method=Image.Quantize.MEDIANCUT).save(buf, "PNG", optimize=True)
            if buf.tell() <= max_bytes:
                break
        path.write_bytes(buf.getvalue())
        print(f"wrote {path} ({buf.tell() / 1000:.0f} kB)")


# clicks a button or link whose visible text is exactly `text`
CLICK = """(() => {{ const el = [...document.querySelectorAll('button, a, span[role=button]')]
    .find(e => e.textContent.trim() === {text!r}); if (el) {{ el.click(); return true; }} return false; }})()"""
CLOSE_ASSISTANT = """(() => { const b = document.querySelector('[aria-label="Close"], [aria-label="close"]');
    if (b && document.body.innerText.includes('MLflow Assistant')) { b.click(); return true; } return false; })()"""


async def capture(base: str, experiment_id: str, run_id: str | None, out: Path, cdp_port: int) -> None:
    import aiohttp

    version = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{cdp_port}/json/version").read())
    async with aiohttp.ClientSession() as http:
        target = json.loads(urllib.request.urlopen(
            urllib.request.Request(f"http://127.0.0.1:{cdp_port}/json/new?about:blank", method="PUT")).read())
        async with http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            page = Page(ws)
            await page.call("Page.enable")
            await page.call("Emulation.setDeviceMetricsOverride", width=1440, height=900, deviceScaleFactor=1,
                            mobile=False)
            # the view `dlexp ui` prints: the experiment's training runs
            await page.call("Page.navigate", url=f"{base}/#/experiments/{experiment_id}?workflowType=machine_learning")
            await page.until("document.body.innerText.includes('matching run')")
            await asyncio.sleep(2)
            await page.js(CLOSE_ASSISTANT)
            # seed groups: show the children nested under their parent (the row's own expander)
            await page.click('button[data-component-id*="runnamecellrenderer"]')
            await asyncio.sleep(2)
            await page.shot(out / "ui-runs.png", width=1440, height=560)
            if run_id:
                await page.call("Page.navigate",
                                url=f"{base}/#/experiments/{experiment_id}/runs/{run_id}?workflowType=machine_learning")
                await page.until("document.body.innerText.includes('Description')")
                await asyncio.sleep(2)
                await page.js(CLOSE_ASSISTANT)
                await page.js(CLICK.format(text="Show more"))
                await asyncio.sleep(1)
                # scroll the Description to the top of the view
                await page.js("""(() => { const h = [...document.querySelectorAll('*')].find(
                    e => e.childElementCount === 0 && e.textContent.trim() === 'Description');
                    if (h) h.scrollIntoView(); return !!h; })()""")
                await asyncio.sleep(1)
                await page.call("Emulation.setDeviceMetricsOverride", width=1440, height=1250, deviceScaleFactor=1,
                                mobile=False)
                await asyncio.sleep(1)
                await page.shot(out / "ui-run.png", width=1440, height=1250)
    del version


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs-dir", required=True, help="a dlexp store folder (its DLEXP_RUNS_DIR)")
    ap.add_argument("--out", default="docs", help="where the PNGs go")
    ap.add_argument("--run", help="the run page to capture (default: the newest run that follows another)")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, DLEXP_RUNS_DIR=str(Path(args.runs_dir).resolve()))

    from mlflow import MlflowClient

    c = MlflowClient(f"sqlite:///{Path(args.runs_dir).resolve() / 'mlflow.db'}")
    exp = c.get_experiment_by_name("dlexp")
    run_id = args.run
    if run_id is None:
        found = c.search_runs([exp.experiment_id], filter_string="tags.`dlexp.follows` != ''",
                              order_by=["attributes.start_time DESC"], max_results=1)
        run_id = found[0].info.run_id if found else None

    port, cdp = _free_port(), _free_port()
    ui = subprocess.Popen([sys.executable, "-m", "dlexp", "ui", "--port", str(port)], env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    profile = tempfile.mkdtemp(prefix="dlexp-chromium-")
    browser = None
    try:
        _wait_http(f"http://127.0.0.1:{port}/", 180)
        browser = subprocess.Popen([shutil.which("chromium") or "chromium", "--headless", "--no-sandbox",
                                    "--disable-gpu", "--hide-scrollbars", f"--remote-debugging-port={cdp}",
                                    f"--user-data-dir={profile}", "about:blank"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_http(f"http://127.0.0.1:{cdp}/json/version", 60)
        asyncio.run(capture(f"http://127.0.0.1:{port}", exp.experiment_id, run_id, out, cdp))
    finally:
        if browser is not None:
            browser.terminate()
            browser.wait()
        os.killpg(ui.pid, signal.SIGTERM)  # `dlexp ui` and the MLflow server it started, nothing else
        ui.wait()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()
