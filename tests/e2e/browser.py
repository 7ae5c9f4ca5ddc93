"""browser.py - Debian's chromium in headless mode through chromium-driver and python3-selenium for the console's
end-to-end tests: started against a test's system (its host name mapped to 127.0.0.1, its certificate accepted),
with screenshots under BUILD/test-output/SUITE/ and the waits and form filling the tests share."""
import os
import time

from harness import BUILD, ROOT, debian_module, skip

webdriver = debian_module("selenium.webdriver")
chrome_service = debian_module("selenium.webdriver.chrome.service")
HOST = "mail.example.com"


class Browser:
    def __init__(self, system, suite, host=HOST):
        if webdriver is None:
            skip("python3-selenium is not installed")
        if not os.path.exists("/usr/bin/chromedriver") or not os.path.exists("/usr/bin/chromium"):
            skip("Debian's chromium and chromium-driver are not installed")
        self.system = system
        self.host = host
        self.out = os.path.join(ROOT, BUILD, "test-output", suite)
        opts = webdriver.ChromeOptions()
        opts.binary_location = "/usr/bin/chromium"
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900",
                  "--host-resolver-rules=MAP %s 127.0.0.1" % host,
                  "--user-data-dir=" + os.path.join(system.base, "chromium")):
            opts.add_argument(a)
        # the server's certificate is its own CA's (interchange cert show); this browser profile trusts it for the test
        opts.set_capability("acceptInsecureCerts", True)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        service = chrome_service.Service(executable_path="/usr/bin/chromedriver",
                                         log_path=os.path.join(system.base, "chromedriver.log"))
        self.driver = webdriver.Chrome(options=opts, service=service)

    def url(self, path):
        return "https://%s:%d%s" % (self.host, self.system.ports["https"], path)

    def shot(self, name, height=None):
        """A screenshot of the window; with height, of a window that tall (the whole of a long page)."""
        os.makedirs(self.out, exist_ok=True)
        path = os.path.join(self.out, name + ".png")
        if height:
            self.driver.set_window_size(1280, height)
        assert self.driver.save_screenshot(path), path
        if height:
            self.driver.set_window_size(1280, 900)
        assert os.path.getsize(path) > 1000, path
        return path

    def el(self, sel):
        return self.driver.find_element("css selector", sel)

    def els(self, sel):
        return self.driver.find_elements("css selector", sel)

    def message(self):
        try:
            return self.el("#message").text
        except Exception:
            return ""

    def visible(self, sel):
        return self.el(sel).is_displayed()

    def wait(self, cond, what, timeout=30):  # a bound for a loaded machine (make asan): it returns when cond holds
        end = time.time() + timeout
        while time.time() < end:
            try:
                if cond():
                    return
            except Exception:  # the element is not there yet
                pass
            time.sleep(0.1)
        self.shot("failed-" + what.replace(" ", "-"))
        raise AssertionError("timed out waiting for %s; message: %r; browser log: %s"
                             % (what, self.message(), self.driver.get_log("browser")))

    def fill(self, form, **values):
        for name, value in values.items():
            box = self.el("%s [name=%s]" % (form, name))
            box.clear()
            box.send_keys(value)
        self.el(form + " button[type=submit]").click()

    def csp_violations(self):
        """What Chromium said about the Content-Security-Policy (a refused inline script, a blocked load)."""
        return [e["message"] for e in self.driver.get_log("browser") if "Content Security Policy" in e["message"]]

    def sign_in(self, login, password, path="/admin/"):
        self.driver.get(self.url(path))
        self.wait(lambda: self.visible("#signin-form"), "the sign-in form")
        self.fill("#signin-form", login=login, password=password)

    def quit(self):
        self.driver.quit()
