#!/usr/bin/env python3
"""The admin console in a real browser: Debian's Chromium, headless, driven by Selenium
through Debian's chromedriver, against a running vmsd (tests/api/console.rs starts it).

    python3 console_browser.py <base_url> <cert.pem> <admin_password> <screenshot_dir>

Chromium trusts exactly the daemon's self-signed certificate: the SHA-256 of its public key
goes to --ignore-certificate-errors-spki-list (Chromium honours it only with its own
--user-data-dir), so any other certificate is still refused.

It walks the issue's flow and checks every screen as a user sees it. Each passed step is
printed as one JSON line {"step": ..., ...}; the first failure prints {"failed": ...} and
exits 1. Screenshots of the main screens are written as PNGs to <screenshot_dir>.
"""

import base64
import datetime
import hashlib
import json
import os
import re
import sys
import tempfile

from selenium import webdriver
from selenium.common.exceptions import (
    NoAlertPresentException,
    StaleElementReferenceException,
    TimeoutException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

XSS = "<img src=x onerror=alert(1)>"
GUARD = f"Guard {XSS}"
LOBBY = f"Lobby {XSS}"
PASSWORD = "guard-password-1"
WAIT = 15


def step(name, **facts):
    print(json.dumps({"step": name, **facts}), flush=True)


def spki_sha256(pem_path):
    """base64 SHA-256 of the first certificate's SubjectPublicKeyInfo (DER)."""
    text = open(pem_path, encoding="ascii").read()
    body = text.split("-----BEGIN CERTIFICATE-----")[1].split("-----END CERTIFICATE-----")[0]
    der = base64.b64decode("".join(body.split()))

    def tlv(i):
        tag, length = der[i], der[i + 1]
        i += 2
        if length & 0x80:
            n = length & 0x7F
            length = int.from_bytes(der[i : i + n], "big")
            i += n
        return tag, i, length

    _, i, _ = tlv(0)  # Certificate
    _, i, _ = tlv(i)  # TBSCertificate
    tag, content, length = tlv(i)
    if tag == 0xA0:  # [0] version
        i = content + length
    for _ in range(5):  # serial, signature, issuer, validity, subject
        _, content, length = tlv(i)
        i = content + length
    _, content, length = tlv(i)
    return base64.b64encode(hashlib.sha256(der[i : content + length]).digest()).decode()


class Console:
    def __init__(self, base, cert, shots):
        self.base = base.rstrip("/")
        self.shots = shots
        self.profile = tempfile.TemporaryDirectory(prefix="vmsd-chromium-")
        o = webdriver.ChromeOptions()
        o.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
        for arg in [
            "--headless=new",
            "--no-sandbox",  # root in CI containers
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-extensions",
            "--force-device-scale-factor=1",
            "--window-size=1024,720",
            "--lang=en-US",
            f"--user-data-dir={self.profile.name}",
            f"--ignore-certificate-errors-spki-list={spki_sha256(cert)}",
        ]:
            o.add_argument(arg)
        o.set_capability("unhandledPromptBehavior", "ignore")
        o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        service = Service(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
        self.d = webdriver.Chrome(options=o, service=service)

    # -- looking and acting ------------------------------------------------------------
    def wait(self, cond, what):
        try:
            return WebDriverWait(self.d, WAIT).until(cond)
        except TimeoutException:
            raise AssertionError(f"timed out waiting for {what}; page text: {self.text()!r}")

    def css(self, sel):
        return self.wait(EC.visibility_of_element_located((By.CSS_SELECTOR, sel)), sel)

    def text(self):
        try:
            return self.d.find_element(By.TAG_NAME, "body").text
        except Exception:
            return ""

    def see(self, words, where="main"):
        self.wait(EC.text_to_be_present_in_element((By.CSS_SELECTOR, where), words), f"{words!r} in {where}")

    def type(self, sel, value):
        el = self.css(sel)
        el.clear()
        el.send_keys(value)

    def press(self, locator, what):
        """Clicks what `locator` finds once clickable; a view that re-rendered in between
        (a list reloaded) is looked up again."""
        for attempt in range(3):
            try:
                return self.wait(EC.element_to_be_clickable(locator), what).click()
            except StaleElementReferenceException:
                if attempt == 2:
                    raise

    def click(self, sel):
        self.press((By.CSS_SELECTOR, sel), sel)

    def nav(self, label):
        self.press((By.LINK_TEXT, label), f"link {label}")

    def alert_shown(self):
        try:
            self.d.switch_to.alert
            return True
        except NoAlertPresentException:
            return False

    def shot(self, name):
        self.d.save_screenshot(os.path.join(self.shots, f"{name}.png"))

    def error(self, status):
        return self.css(f'main .error[data-status="{status}"]').text

    def no_markup_from_data(self):
        """The XSS names are text: no <img> anywhere, no alert."""
        imgs = self.d.find_elements(By.CSS_SELECTOR, "img")
        assert not imgs, f"{len(imgs)} <img> element(s) in the page"
        assert not self.alert_shown(), "an alert was opened"

    def check_camera(self, name):
        label = self.wait(
            EC.visibility_of_element_located(
                (By.XPATH, f"//fieldset[contains(@class,'picker')]//label[contains(., {xpath_str(name)})]")
            ),
            f"camera {name} in the picker",
        )
        box = label.find_element(By.CSS_SELECTOR, "input[type=checkbox]")
        if not box.is_selected():
            box.click()
        return int(box.get_attribute("data-camera"))


def xpath_str(s):
    if "'" not in s:
        return f"'{s}'"
    return "concat('" + "', \"'\", '".join(s.split("'")) + "')"


def flow(c, password):
    d = c.d
    # The page itself: served at /, the login form, nothing else until logged in.
    d.get(c.base + "/")
    c.css("#login")
    assert d.title == "vmsd console", d.title
    c.shot("login")
    step("login_form")

    # 422: the server's words under the form.
    c.type("#login", "admin")
    c.type("#password", "not-the-password")
    c.click("#sign-in")
    assert "These credentials do not match our records." in c.error(422)
    step("login_422")

    c.type("#password", password)
    c.click("#sign-in")
    c.see("Signed in as admin", "#who")
    assert d.current_url.endswith("/console/users"), d.current_url
    token = d.execute_script("return sessionStorage.getItem('vmsd.token')")
    assert token and len(token) > 20, "the token is in sessionStorage"
    leaked = d.execute_script("return Object.keys(localStorage).filter(k => localStorage.getItem(k).includes(arguments[0]))", token)
    assert leaked == [], f"the token is in localStorage too: {leaked}"
    step("logged_in")

    # Two cameras, one named with markup.
    for name in ["Gate", LOBBY]:
        c.nav("Cameras")
        c.nav("New camera")
        c.type("#name", name)
        c.click("#save")
        c.see("Saved.")
    c.see(LOBBY, "main table")
    c.no_markup_from_data()
    c.shot("cameras")
    step("cameras_created")

    # A temporary user with both cameras and an L1 analytics permission: the pool is empty.
    expires = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=2)).strftime("%Y-%m-%d 12:00:00")

    def fill_new_guard():
        c.nav("Temporary users")
        c.nav("New temporary user")
        c.type("#name", GUARD)
        c.type("#login", "guard")
        c.type("#password", PASSWORD)
        c.type("#password_confirmation", PASSWORD)
        c.type("#expired_at", expires)
        c.type("#ptz_priority", "10")
        c.click('input[value="analytic-cases-motion-detect"]')
        ids = [c.check_camera("Gate"), c.check_camera("Lobby")]
        c.see("2 selected (2 to attach, 0 to detach)", ".picker .summary")
        return ids

    cams = fill_new_guard()
    c.shot("special-new")
    c.click("#save")
    words = c.error(402)
    assert "Not enough analytics licences" in words, words
    step("refused_402", text=words)
    c.shot("special-402")

    # The pool: set it, see used and free.
    c.nav("Licences")
    row = 'tr[data-pool="analytic_l1"]'
    c.type("#all-analytic_l1", "5")
    c.click("#set-analytic_l1")
    c.see("Saved.")
    cells = [td.text for td in c.css(row).find_elements(By.TAG_NAME, "td")[:4]]
    assert cells[1:4] == ["5", "0", "5"], cells
    step("pool_set", cells=cells)

    # Again: now it is created, and its page shows the name as text.
    fill_new_guard()
    c.click("#save")
    c.wait(EC.url_matches(r"/console/special/\d+$"), "the new user's page")
    guard_id = int(d.current_url.rsplit("/", 1)[1])
    c.see(f"User {GUARD}", "main h1")
    attached = c.css("main table").text
    assert "Gate" in attached and LOBBY in attached, attached
    c.no_markup_from_data()
    c.shot("special-user")
    step("special_created", id=guard_id, cameras=cams)

    # Edit: another PTZ priority, one camera detached.
    c.type("#ptz_priority", "20")
    lobby = c.css(f'.picker input[data-camera="{cams[1]}"]')
    lobby.click()
    c.see("1 selected (0 to attach, 1 to detach)", ".picker .summary")
    c.click("#save")
    c.see("Saved.")
    assert c.css("#ptz_priority").get_attribute("value") == "20"
    attached = c.css("main table").text
    assert "Gate" in attached and "Lobby" not in attached, attached
    step("special_edited")

    # The list: search finds it, the markup is text.
    c.nav("Temporary users")
    c.type("#search", "guar")
    c.see(GUARD, "main table")
    c.no_markup_from_data()
    c.shot("special-list")
    step("special_listed")

    # The audit log, newest first: the update, with the fields it changed.
    c.nav("Audit log")
    first = c.css("main tbody tr")
    cells = [td.text for td in first.find_elements(By.TAG_NAME, "td")]
    assert cells[3] == "special_user_updated", cells
    assert cells[4] == f"account #{guard_id}", cells
    assert "ptz_priority" in cells[5] and "cameras" in cells[5], cells
    c.shot("audit")
    step("audit_read", entry=cells)

    # Russian, from the switch; then back.
    Select(c.css("#lang")).select_by_value("ru")
    c.see("Журнал аудита", "header")
    c.see("Действие", "main")
    c.shot("audit-ru")
    Select(c.css("#lang")).select_by_value("en")
    c.see("Audit log", "header")
    step("russian")

    # Delete, after the confirmation.
    c.nav("Cameras")
    c.press((By.PARTIAL_LINK_TEXT, "Lobby"), "the Lobby link")
    c.click("#delete")
    c.see(f"Delete “{LOBBY}”? This cannot be undone.")
    c.no_markup_from_data()
    c.click("#confirm-delete")
    c.wait(EC.url_matches(r"/console/cameras$"), "back to the camera list")
    c.see("Gate", "main table")
    assert "Lobby" not in c.css("main").text
    step("camera_deleted")

    # A token the server no longer takes: back to the login form, token forgotten.
    d.execute_script("sessionStorage.setItem('vmsd.token', 'not-a-token')")
    d.get(c.base + "/console/audit")
    c.css("#login")
    assert d.execute_script("return sessionStorage.getItem('vmsd.token')") is None
    step("unauthenticated_401")

    # The first session is still open and the box allows one (the test sets
    # auth.sessions_limit = 1): 419, the sessions listed, one ended, logged in.
    c.type("#login", "admin")
    c.type("#password", password)
    c.click("#sign-in")
    words = c.error(419)
    assert "Session limit reached (1). End a session to log in:" in words, words
    assert c.css(".sessions li").text.startswith("web, 127.0.0.1, last used ")
    c.click(".sessions li button")
    c.see("Signed in as admin", "#who")
    assert d.current_url.endswith("/console/audit"), d.current_url
    step("session_limit_419")

    accounts_flow(c)
    password = change_password(c, password)

    # Log out: the login form, no token left.
    c.click("#logout")
    c.css("#login")
    assert d.execute_script("return sessionStorage.length") == 0
    step("logged_out")

    # Lockout: after the failures the form says how long to wait.
    waited = None
    for _ in range(8):
        c.type("#login", "admin")
        c.type("#password", "wrong-password")
        c.click("#sign-in")
        box = c.css("main .error")
        if box.get_attribute("data-status") == "429":
            waited = box.text
            break
    assert waited and re.search(r"Try again in \d+ s\.", waited), waited
    c.shot("login-429")
    step("login_429", text=waited)

    problems = [e for e in d.get_log("browser") if e.get("level") == "SEVERE" and "favicon" not in e.get("message", "")]
    # The 4xx answers the flow provoked are logged by Chromium as failed loads; anything
    # else (a script error, a CSP violation) is a defect.
    unexpected = [e for e in problems if not re.search(r"status of (4\d\d)", e.get("message", ""))]
    assert not unexpected, unexpected
    step("console_clean")


def accounts_flow(c):
    d = c.d
    # A camera group, and a camera moved into it.
    c.nav("Camera groups")
    c.nav("New group")
    c.type("#name", "Hall")
    c.click("#save")
    c.see("Saved.")
    c.see("Hall", "main table")
    c.nav("Cameras")
    c.nav("Gate")
    Select(c.css("select[name=group_id]")).select_by_visible_text("Hall")
    c.click("#save")
    c.see("Saved.")
    c.nav("Cameras")
    row = c.css("main tbody tr").text
    assert "Gate" in row and "Hall" in row, row
    step("group_assigned")

    # A regular user with a permission from the catalogue and a camera; then a sub-user.
    c.nav("Users")
    c.nav("New user")
    c.type("#login", "alice")
    c.type("#name", "Alice")
    c.type("#password", PASSWORD)
    c.type("#password_confirmation", "something-else")
    c.click('input[value="archives-show"]')
    c.check_camera("Gate")
    c.click("#save")
    words = c.error(422)
    assert "The password confirmation does not match." in words, words
    c.type("#password_confirmation", PASSWORD)
    c.click("#save")
    c.wait(EC.url_matches(r"/console/users/\d+$"), "alice's page")
    c.see("User Alice", "main h1")
    assert c.css('input[value="archives-show"]').is_selected()
    assert "Gate" in c.css("main table").text
    c.shot("user")
    c.nav("New sub-user")
    c.type("#login", "bob")
    c.type("#password", PASSWORD)
    c.type("#password_confirmation", PASSWORD)
    c.click("#save")
    c.wait(EC.url_matches(r"/console/users/\d+$"), "bob's page")
    c.see("sub-user", "main dl")
    # Alice's page lists him.
    c.nav("Users")
    c.type("#search", "ali")
    # The filtered page (bob is gone) replaces the first one after the search's debounce.
    c.see("Page 1 of 1 · 1 in all", "main .pager")
    c.see("Alice", "main table")
    c.nav("Alice")
    c.see("bob", "main")
    # Permissions edited: one added, the other removed.
    c.click('input[value="archives-show"]')
    c.click('input[value="ptz"]')
    c.click("#save")
    c.see("Saved.")
    assert c.css('input[value="ptz"]').is_selected()
    assert not c.css('input[value="archives-show"]').is_selected()
    step("regular_users")

    # Another administrator.
    c.nav("Administrators")
    c.type("#login", "second")
    c.type("#password", PASSWORD)
    c.type("#password_confirmation", PASSWORD)
    c.click("#save")
    c.see("Saved.")
    c.see("second", "main table")
    step("admin_created")


def change_password(c, password):
    c.nav("Password")
    new = "admin-password-2"
    c.type("#old_password", "not-it-at-all")
    c.type("#password", new)
    c.type("#password_confirmation", new)
    c.click("#save")
    words = c.error(422)
    assert "The password is incorrect." in words, words
    c.type("#old_password", password)
    c.type("#password", new)
    c.type("#password_confirmation", new)
    c.click("#save")
    c.see("Password changed.")
    step("password_changed")
    return new


def main():
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    base, cert, password, shots = sys.argv[1:]
    os.makedirs(shots, exist_ok=True)
    c = Console(base, cert, shots)
    try:
        flow(c, password)
        step("done")
        return 0
    except Exception as e:  # noqa: BLE001 - every failure is reported the same way
        try:
            c.shot("failure")
        except Exception:
            pass
        print(json.dumps({"failed": f"{type(e).__name__}: {e}"}), flush=True)
        return 1
    finally:
        c.d.quit()
        c.profile.cleanup()


if __name__ == "__main__":
    sys.exit(main())
