"""The web console in a real browser: headless Chromium from Debian driven
over WebDriver (selenium), against real `janus` processes started by
tests/console.sh.

    console_test.py open HTTP DNS SHOTS      # a node with auth off
    console_test.py auth HTTP TOKEN SHOTS    # a node with auth on; TOKEN is its bootstrap token

Prints one line per check ("ok …" or "FAIL …"), timings as "measure …", and
exits non-zero if any check failed. Screenshots go to SHOTS.
"""

import concurrent.futures
import http.client
import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

FAILED = []


def check(name, ok, detail=""):
    print(("ok   " if ok else "FAIL ") + name + (f" ({detail})" if detail and not ok else ""), flush=True)
    if not ok:
        FAILED.append(name)


class Api:
    """The native and Nacos HTTP APIs over one keep-alive connection."""

    def __init__(self, addr, token=None):
        host, port = addr.rsplit(":", 1)
        self.conn = http.client.HTTPConnection(host, int(port), timeout=30)
        self.token = token

    def call(self, method, path, body=None, form=None):
        headers = {}
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        data = None
        if body is not None:
            data = json.dumps(body)
            headers["content-type"] = "application/json"
        if form is not None:
            data = urllib.parse.urlencode(form)
            headers["content-type"] = "application/x-www-form-urlencoded"
        try:
            self.conn.request(method, path, body=data, headers=headers)
            response = self.conn.getresponse()
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            # The server closed the idle keep-alive connection: once more on a new one.
            self.conn.close()
            self.conn.request(method, path, body=data, headers=headers)
            response = self.conn.getresponse()
        text = response.read().decode()
        return response.status, (json.loads(text) if text.strip().startswith(("{", "[")) else text)


def browser():
    options = webdriver.ChromeOptions()
    for arg in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--window-size=1366,900",
    ):
        options.add_argument(arg)
    options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
    return webdriver.Chrome(options=options, service=service)


def wait_for(driver, condition, seconds=10):
    try:
        # A page re-renders as the registry changes: an element found a moment
        # ago may be gone, so a stale element is one more try, not a failure.
        wait = WebDriverWait(driver, seconds, poll_frequency=0.05, ignored_exceptions=(StaleElementReferenceException,))
        return wait.until(lambda d: condition(d))
    except TimeoutException:
        return None


def find(driver, css):
    found = driver.find_elements(By.CSS_SELECTOR, css)
    return found[0] if found else None


def console_errors(driver, allowed=()):
    """Severe browser log entries (JavaScript errors, failed requests) not
    matching any of `allowed`."""
    entries = driver.get_log("browser")
    return [e["message"] for e in entries if e["level"] == "SEVERE" and not any(a in e["message"] for a in allowed)]


def shot(driver, shots, name):
    path = os.path.join(shots, f"{name}.png")
    driver.save_screenshot(path)
    return path


def open_page(driver, base, route, ready_css, seconds=10):
    driver.get(f"{base}/console/#{route}")
    return wait_for(driver, lambda d: find(d, ready_css), seconds)


def dialog_fill(driver, values):
    """Fills the open dialog's fields by name and submits it."""
    dialog = wait_for(driver, lambda d: find(d, "dialog[open] form"))
    for name, value in values.items():
        field = dialog.find_element(By.NAME, name)
        if field.tag_name == "select":
            Select(field).select_by_value(value)
        elif field.get_attribute("type") == "checkbox":
            if field.is_selected() != value:
                field.click()
        else:
            field.clear()
            field.send_keys(value)
    dialog.find_element(By.CSS_SELECTOR, "button[type=submit]").click()


def answered(api):
    """HTTP requests the server has answered, from its metrics."""
    _, text = api.call("GET", "/metrics")
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("janus_http_requests_total"))


def row_texts(driver, container):
    """The text of each table row in `container`, read in one step."""
    return driver.execute_script(
        f"return [...document.querySelectorAll('{container} tbody tr')].map(r => r.innerText)"
    )


def toasts(driver):
    return " | ".join(t.text for t in driver.find_elements(By.CSS_SELECTOR, "#toast .toast"))


def dig(dns, name, kind="SRV"):
    host, port = dns.rsplit(":", 1)
    out = subprocess.run(
        ["dig", f"@{host}", "-p", port, "+time=2", "+tries=1", "+short", name, kind],
        capture_output=True, text=True, check=False,
    )
    return out.stdout


def until(predicate, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def open_suite(http_addr, dns, shots):
    base = f"http://{http_addr}"
    api = Api(http_addr)
    driver = browser()
    try:
        # Every page loads with no console errors.
        status, _ = api.call("POST", "/v1/namespaces", {"id": "shop", "mode": "ap", "description": "the shop's services"})
        check("set-up: namespace shop", status == 201, status)
        for port in (8001, 8002):
            status, _ = api.call(
                "POST", "/v1/namespaces/shop/services/cart/instances",
                {"ip": "10.0.0.1", "port": port, "metadata": {"zone": "a"}},
            )
        pages = [
            ("namespaces", "/", "a.ns-link"),
            ("services", "/ns/shop", "a.svc-link"),
            ("service", "/ns/shop/svc/DEFAULT_GROUP/cart", "code.addr"),
            ("cluster", "/cluster", "#this-node"),
            ("access", "/access", "main h1"),
        ]
        for name, route, ready in pages:
            loaded = open_page(driver, base, route, ready)
            check(f"page {name} loads", loaded is not None, driver.find_element(By.TAG_NAME, "main").text[:200])
            shot(driver, shots, name)
            errors = console_errors(driver)
            check(f"page {name}: no console errors", not errors, errors)
        open_page(driver, base, "/cluster", "#this-node")
        leases = driver.find_element(By.ID, "leases").text
        check("the cluster page shows the leases this node runs", leases.startswith("2:"), leases)
        driver.get(base + "/")
        check("/ leads to the console", wait_for(driver, lambda d: "/console/" in d.current_url) is not None, driver.current_url)

        # Keyboard: the first Tab reaches the skip link, Enter on it moves focus to the content.
        open_page(driver, base, "/", "a.ns-link")
        driver.refresh()
        wait_for(driver, lambda d: find(d, "a.ns-link"))
        driver.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
        focused = driver.switch_to.active_element
        check("keyboard: Tab reaches the skip link first", "skip" in (focused.get_attribute("class") or ""), focused.text)

        # An idle open page costs the server nothing but its held watch.
        open_page(driver, base, "/ns/shop/svc/DEFAULT_GROUP/cart", "code.addr")
        time.sleep(1)
        before = answered(api)
        time.sleep(5)
        check("set-up: the metrics count answered requests", before > 0, before)
        extra = answered(api) - before - 1  # the first /metrics read itself
        check("an idle open console sends no requests (it waits on a watch)", extra <= 0, f"{extra} requests in 5 s")
        check("the service page lists its gRPC subscribers (none here)", "No gRPC client" in driver.find_element(By.ID, "subscribers").text)

        # Narrow screen and dark mode.
        driver.set_window_size(390, 844)
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
        open_page(driver, base, "/ns/shop/svc/DEFAULT_GROUP/cart", "code.addr")
        shot(driver, shots, "service-narrow-dark")
        background = driver.execute_script("return getComputedStyle(document.body).backgroundColor")
        check("dark mode: dark background", background not in ("rgb(255, 255, 255)", "rgba(0, 0, 0, 0)"), background)
        overflow = driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
        check("narrow screen: the page does not scroll sideways", overflow <= 1, f"{overflow}px too wide")
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
        driver.set_window_size(1366, 900)

        # Create a cp namespace in the UI.
        open_page(driver, base, "/", "a.ns-link")
        driver.find_element(By.ID, "create-namespace").click()
        dialog_fill(driver, {"id": "orders", "mode": "cp", "description": "made in the console"})
        row = wait_for(driver, lambda d: [t for t in row_texts(d, "#namespaces") if t.startswith("orders")])
        check("create a cp namespace in the UI", bool(row) and "CP" in row[0], toasts(driver))
        status, ns = api.call("GET", "/v1/namespaces/orders")
        check("the namespace made in the UI is cp", status == 200 and ns.get("mode") == "cp", ns)

        # A service page open before the instance exists; the instance is
        # registered through the Nacos API and appears without a reload.
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        port = listener.getsockname()[1]
        open_page(driver, base, "/ns/orders/svc/DEFAULT_GROUP/billing", "#instances")
        driver.execute_script("window.__noReload = 1")
        status, body = api.call(
            "POST", "/nacos/v1/ns/instance",
            form={"namespaceId": "orders", "serviceName": "billing", "ip": "127.0.0.1", "port": port, "ephemeral": "false"},
        )
        check("set-up: a persistent instance over the Nacos API", status == 200, body)
        started = time.monotonic()
        label = f"127.0.0.1:{port}"
        appeared = wait_for(driver, lambda d: find(d, f'button[data-instance="{label}"][data-action="offline"]'), 5)
        elapsed = time.monotonic() - started
        check("the Nacos registration appears on the open page", appeared is not None, driver.find_element(By.ID, "instances").text)
        check("…without a reload", driver.execute_script("return window.__noReload") == 1)
        check("…within a second", elapsed < 1.0, f"{elapsed:.2f}s")
        print(f"measure registration-to-page {elapsed * 1000:.0f} ms", flush=True)
        shot(driver, shots, "service-cp")
        srv = "billing.svc.orders.ns.janus."
        check("set-up: the instance is in the DNS answer", until(lambda: str(port) in dig(dns, srv), 10), dig(dns, srv))

        # Take it offline in the UI: it leaves the DNS answer.
        driver.find_element(By.CSS_SELECTOR, f'button[data-instance="{label}"][data-action="offline"]').click()
        back = wait_for(driver, lambda d: find(d, f'button[data-instance="{label}"][data-action="online"]'), 5)
        check("take offline in the UI", back is not None, toasts(driver))
        check("the offline instance leaves the DNS answer", until(lambda: str(port) not in dig(dns, srv), 5), dig(dns, srv))
        status, body = api.call("GET", "/nacos/v1/ns/instance/list?namespaceId=orders&serviceName=billing")
        check("…and the Nacos list", status == 200 and all(h["port"] != port for h in body.get("hosts", [])), body)

        # Deregister it in the UI, after confirming.
        driver.find_element(By.CSS_SELECTOR, f'button[data-instance="{label}"][data-action="deregister"]').click()
        dialog = wait_for(driver, lambda d: find(d, "dialog[open]"))
        check("deregistering asks first", dialog is not None and "Deregister" in dialog.text)
        dialog.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        gone = wait_for(driver, lambda d: not find(d, f'button[data-instance="{label}"]'), 5)
        check("deregister in the UI", gone is not None, toasts(driver))
        status, body = api.call("GET", "/v1/namespaces/orders/services/billing/instances")
        check("…and it is gone from the API", status == 200 and all(i["port"] != port for i in body["instances"]), body)
        listener.close()

        # An API refusal is shown in words: a namespace holding a service cannot be deleted.
        open_page(driver, base, "/", "a.ns-link")
        driver.execute_script(
            "[...document.querySelectorAll('#namespaces tbody tr')]"
            ".find(r => r.innerText.startsWith('shop')).querySelector('button.danger').click()"
        )
        wait_for(driver, lambda d: find(d, "dialog[open]")).find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        refusal = wait_for(driver, lambda d: find(d, "#toast .toast.error"), 5)
        check("a refused delete says why", refusal is not None and "Refused" in refusal.text, toasts(driver))
        # Expected refusals: the service page asked for the service before it
        # existed (404), and the delete of a non-empty namespace (409).
        errors = console_errors(driver, allowed=("409", "/services/billing?group=DEFAULT_GROUP - Failed to load resource: the server responded with a status of 404"))
        check("no console errors through the flows", not errors, errors)

        performance(driver, base, api, shots)
    finally:
        driver.quit()


def in_parallel(http_addr, calls, clients=16):
    """Makes `calls` over `clients` connections; fails the suite on any error."""
    def run(part):
        api = Api(http_addr)
        return [api.call(*call)[0] for call in part]
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        statuses = [s for part in pool.map(run, [calls[i::clients] for i in range(clients)]) for s in part]
    bad = [s for s in statuses if s >= 300]
    check(f"set-up: {len(calls)} writes", not bad, f"{len(bad)} failed, e.g. {bad[:3]}")


def performance(driver, base, api, shots):
    """Render times of a namespace of 10,000 services and a service of 1,000
    instances (reported, not asserted)."""
    http_addr = base.removeprefix("http://")
    api.call("POST", "/v1/namespaces", {"id": "big", "mode": "ap"})
    # Definitions go through Raft: many clients at once let it batch them.
    in_parallel(http_addr, [("POST", "/v1/namespaces/big/services", {"name": f"svc-{i:05}"}) for i in range(10_000)])
    api.call("POST", "/v1/namespaces", {"id": "wide", "mode": "cp"})
    api.call("POST", "/v1/namespaces/wide/services", {"name": "fleet"})
    api.call("PUT", "/v1/namespaces/wide/services/fleet/clusters/DEFAULT", {"health_check": {"type": "none"}})
    in_parallel(http_addr, [
        ("POST", "/v1/namespaces/wide/services/fleet/instances",
         {"ip": f"127.0.{i // 250}.{i % 250 + 1}", "port": 9000, "ephemeral": False})
        for i in range(1000)
    ])
    for name, route, css, count in (
        ("services-10000", "/ns/big", "#services tbody tr", 100),
        ("service-1000-instances", "/ns/wide/svc/DEFAULT_GROUP/fleet", "#instances tbody tr", 100),
    ):
        driver.get(f"{base}/console/#/")
        wait_for(driver, lambda d: find(d, "a.ns-link"))
        started = time.monotonic()
        driver.get(f"{base}/console/#{route}")
        # Counted in the page: fetching 1,000 element references over WebDriver
        # would time selenium, not the console.
        shown = wait_for(driver, lambda d: d.execute_script(f"return document.querySelectorAll('{css}').length") >= count, 30)
        elapsed = time.monotonic() - started
        check(f"{name}: rendered", shown is not None)
        print(f"measure render {name} {elapsed * 1000:.0f} ms", flush=True)
        shot(driver, shots, name)
    # The instances are paged on the server: the last of ten pages holds the last 100.
    pager = driver.find_element(By.CSS_SELECTOR, "main nav.pager").text
    check("1,000 instances: ten pages", "Page 1 of 10" in pager and "1000 instances" in pager, pager)
    last = None
    for page in range(2, 11):
        driver.find_element(By.XPATH, "//main/nav[@class='pager']/button[contains(., 'Next')]").click()
        last = wait_for(driver, lambda d: f"Page {page} of 10" in d.find_element(By.CSS_SELECTOR, "main nav.pager").text, 10)
    texts = row_texts(driver, "#instances")
    check("…the last page shows the last instances", last is not None and len(texts) == 100 and "127.0.3.250:9000" in texts[-1], texts[-1:] if texts else "none")
    # Search on the server: one match among 10,000.
    driver.get(f"{base}/console/#/ns/big")
    wait_for(driver, lambda d: find(d, "#services tbody tr"))
    driver.find_element(By.ID, "service-search").send_keys("svc-04242")
    one = wait_for(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#services tbody tr")) == 1, 5)
    check("search by name finds one of 10,000", one is not None, driver.find_element(By.ID, "services").text[:200])


def auth_suite(http_addr, admin_token, shots):
    base = f"http://{http_addr}"
    admin = Api(http_addr, admin_token)
    status, _ = admin.call("POST", "/v1/auth/users", {"name": "ops", "password": "console-test-pw"})
    check("set-up: user ops", status in (200, 201), status)
    admin.call("PUT", "/v1/auth/users/ops/grants", {"namespace": "*", "role": "admin"})
    admin.call("POST", "/v1/auth/users", {"name": "viewer"})
    admin.call("PUT", "/v1/auth/users/viewer/grants", {"namespace": "public", "role": "read"})
    status, issued = admin.call("POST", "/v1/auth/tokens", {"user": "viewer", "name": "console-test"})
    check("set-up: a read-only token", status in (200, 201), issued)
    admin.call("POST", "/v1/namespaces/public/services/web/instances", {"ip": "10.0.0.9", "port": 80})
    driver = browser()
    expected = ("401", "403")
    try:
        driver.get(f"{base}/console/")
        login = wait_for(driver, lambda d: find(d, "#login-form"))
        check("auth on: the console asks to sign in", login is not None, driver.current_url)
        shot(driver, shots, "login")
        driver.find_element(By.ID, "login-user").send_keys("ops")
        driver.find_element(By.ID, "login-password").send_keys("wrong-password")
        driver.find_element(By.CSS_SELECTOR, "#login-form button[type=submit]").click()
        refused = wait_for(driver, lambda d: find(d, "main p.error"), 5)
        check("a wrong password is refused in words", refused is not None and refused.text != "", refused.text if refused else "")
        driver.find_element(By.ID, "login-password").clear()
        driver.find_element(By.ID, "login-password").send_keys("console-test-pw")
        driver.find_element(By.CSS_SELECTOR, "#login-form button[type=submit]").click()
        listed = wait_for(driver, lambda d: find(d, "a.ns-link"), 5)
        check("signed in with a password, the namespaces show", listed is not None, driver.find_element(By.TAG_NAME, "main").text[:200])
        check("the header names the user", "ops" in driver.find_element(By.ID, "who").text)
        open_page(driver, base, "/access", "#users table")
        check("an admin sees the users", "viewer" in driver.find_element(By.ID, "users").text)
        shot(driver, shots, "access")
        driver.find_element(By.CSS_SELECTOR, "#who button").click()
        wait_for(driver, lambda d: find(d, "#login-form"))

        # A read-only token sees but cannot change.
        driver.find_element(By.ID, "login-token").send_keys(issued["token"])
        driver.find_element(By.CSS_SELECTOR, "#token-form button[type=submit]").click()
        wait_for(driver, lambda d: find(d, "a.ns-link"), 5)
        open_page(driver, base, "/ns/public/svc/DEFAULT_GROUP/web", "code.addr")
        check("a read-only token sees the instances", "10.0.0.9:80" in driver.find_element(By.ID, "instances").text)
        driver.find_element(By.CSS_SELECTOR, 'button[data-instance="10.0.0.9:80"][data-action="offline"]').click()
        refusal = wait_for(driver, lambda d: find(d, "#toast .toast.error"), 5)
        check("…but cannot change them, and is told so", refusal is not None and "Not allowed" in refusal.text, toasts(driver))
        status, body = admin.call("GET", "/v1/namespaces/public/services/web/instances")
        check("…and nothing changed", status == 200 and body["instances"][0]["enabled"] is True, body)
        errors = console_errors(driver, allowed=expected)
        check("auth pages: no console errors besides the refusals", not errors, errors)
    finally:
        driver.quit()


def main():
    mode = sys.argv[1]
    shots = sys.argv[4]
    os.makedirs(shots, exist_ok=True)
    if mode == "open":
        open_suite(sys.argv[2], sys.argv[3], shots)
    else:
        auth_suite(sys.argv[2], sys.argv[3], shots)
    print(f"console {mode}: {'FAILED ' + ', '.join(FAILED) if FAILED else 'all passed'}", flush=True)
    sys.exit(1 if FAILED else 0)


if __name__ == "__main__":
    main()
