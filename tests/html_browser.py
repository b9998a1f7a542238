"""Debian's chromium, headless, driven by Selenium through chromium-driver: what the HTML
report's tests (tests/test_html_report.py) and its benchmark (bench/html_load.py) open
report files with.

The network is off three ways: the browser's network is emulated offline (DevTools
`Network.emulateNetworkConditions`), every request goes to a proxy that is not there,
and the page forbids fetches itself (its Content-Security-Policy); `resources()` lists
what the page loaded anyway, which must be nothing."""
import shutil
import tempfile

CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
    "--window-size=1400,900",
)


def find_tools():
    """(chromium, chromedriver) paths, or a message naming what is missing."""
    chromium = shutil.which("chromium")
    driver = shutil.which("chromedriver")
    missing = [n for n, p in (("chromium", chromium), ("chromedriver (chromium-driver)", driver))
               if p is None]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (PyPI)")
    return chromium, driver, missing


class Browser:
    """One headless chromium with a fresh profile."""

    def __init__(self, chromium, driver, width=1400, height=900):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        self.profile = tempfile.mkdtemp(prefix="tapline-chromium-")
        opts = webdriver.ChromeOptions()
        opts.binary_location = chromium
        for flag in CHROMIUM_FLAGS:
            opts.add_argument(flag)
        opts.add_argument(f"--window-size={width},{height}")
        opts.add_argument(f"--user-data-dir={self.profile}")
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(service=Service(executable_path=driver), options=opts)
        self.driver.set_page_load_timeout(120)
        self.driver.execute_cdp_cmd("Network.enable", {})
        self.driver.execute_cdp_cmd("Network.emulateNetworkConditions", {
            "offline": True, "latency": 0, "downloadThroughput": 0, "uploadThroughput": 0})

    def open(self, path):
        """Loads a file from disk and waits for the report's script to have run."""
        from selenium.webdriver.support.ui import WebDriverWait

        self.driver.get(f"file://{path}")
        WebDriverWait(self.driver, 120).until(
            lambda d: d.execute_script("return document.body && document.body.dataset.ready === '1'"))

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def resources(self):
        """URLs of everything the page fetched after the document itself."""
        return self.js("return performance.getEntriesByType('resource').map(e => e.name)")

    def console(self):
        """The browser console's entries so far: (level, message)."""
        return [(e["level"], e["message"]) for e in self.driver.get_log("browser")]

    def close(self):
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)
