"""A real browser on the real Airflow web UI: Debian's headless chromium driven by selenium.

What a person does, step by step: log in, open a DAG, press *Trigger*, fill fields of the form, press the
dialog's button, open the run's page and watch its state badge. The selectors are the UI's own stable
hooks (``element_<param>`` ids of the trigger form, ``data-testid`` attributes, visible texts), so a test
fails where a person would be stuck, not on a styling change. Every page a test leaves in failure is kept
as a screenshot and its HTML under the artefact directory (``$MUSE_TEST_ARTEFACTS``, default
``<repo>/test-artefacts``).

Chromium runs with the flags this offline machine needs (no background networking, no component
updates: without them chromium keeps trying to reach Google's hosts) and a fresh profile per session.
"""
from __future__ import annotations

import functools
import json
import os
import shutil
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                  "--no-first-run", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--window-size=1400,1000")
REPO = Path(__file__).resolve().parents[1]

# Pastes text into the UI's code editor (Monaco) the way a user's Ctrl+V does: a paste event on the
# editor's input element (an EditContext div in the Monaco of Airflow 3.3's UI, a textarea in older ones).
# Typing character by character would meet the editor's auto-closing brackets.
_PASTE = """
const [editor, text] = arguments;
const input = editor.querySelector('.native-edit-context') || editor.querySelector('textarea.inputarea');
const data = new DataTransfer();
data.setData('text/plain', text);
input.dispatchEvent(new ClipboardEvent('paste', {clipboardData: data, bubbles: true, cancelable: true}));
"""


def artefact_dir() -> Path:
    path = Path(os.environ.get("MUSE_TEST_ARTEFACTS") or REPO / "test-artefacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _editor_shows(editor: WebElement, text: str) -> bool:
    """Whether a code editor shows ``text``, as far as it draws it: Monaco draws only the lines in view (in
    any DOM order), so each drawn line must be a line of ``text`` (compared without white space: it re-indents)."""
    try:
        drawn = ["".join((line.get_attribute("textContent") or "").split())
                 for line in editor.find_elements(By.CSS_SELECTOR, ".view-line")]
    except StaleElementReferenceException:  # Monaco re-drew its lines while they were read: look again
        return False
    expected = {"".join(line.split()) for line in text.splitlines()}
    return any(drawn) and all(line in expected for line in drawn if line)


def _gone(element: WebElement, _driver: Any = None) -> bool:
    """Whether ``element`` is hidden or no longer in the page (React removes closed popovers)."""
    try:
        return not element.is_displayed()
    except StaleElementReferenceException:
        return True


def _type_into(driver: webdriver.Chrome, element: WebElement, text: str, what: str, chunk: int = 12,
               max_keystrokes_factor: int = 4) -> None:
    """Type ``text`` into an input, replacing what it held, a few characters at a time, checking each time.

    The trigger form's controlled inputs drop a keystroke typed while the form re-renders (measured in CI:
    the character at index 52 of a 54-character path, every time: ``archie`` for ``archive``), so blind
    typing of a long path loses a letter. Like a person watching the field, this types a short piece, waits
    until the input shows what was typed so far, and where it does not, erases back to the last correct
    character and goes on; it fails naming the input if it never shows the text.
    """
    element.send_keys(Keys.CONTROL, "a")
    element.send_keys(Keys.DELETE)
    budget = max_keystrokes_factor * len(text) + 10
    while budget > 0:
        shown = element.get_attribute("value") or ""
        if shown == text:
            return
        correct = len(os.path.commonprefix([shown, text]))
        element.send_keys(Keys.END)
        if len(shown) > correct:
            element.send_keys(Keys.BACKSPACE * (len(shown) - correct))
        piece = text[correct:correct + chunk]
        element.send_keys(piece)
        budget -= len(piece) + len(shown) - correct
        expected = text[:correct + len(piece)]
        try:
            WebDriverWait(driver, 2).until(lambda _, shows=expected: element.get_attribute("value") == shows)
        except WebDriverException:
            pass  # a keystroke was lost: the next round sees it and repairs it
    raise AssertionError(f"{what} shows {element.get_attribute('value')!r} after typing {text!r}")


class Browser:
    """One logged-in chromium session on one Airflow api-server."""

    def __init__(self, base_url: str, timeout: float = 30) -> None:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        self.profile = tempfile.mkdtemp(prefix="chromium-profile-")
        for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={self.profile}"):
            options.add_argument(flag)
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def close(self) -> None:
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)

    # --- looking ---------------------------------------------------------------------------------------
    def wait(self, what: str, condition: Callable[[Any], Any], timeout: float | None = None) -> Any:
        try:
            return WebDriverWait(self.driver, timeout or self.timeout).until(condition)
        except WebDriverException as exc:
            raise AssertionError(f"the page never showed {what} (at {self.driver.current_url})") from exc

    def find(self, xpath: str, what: str | None = None) -> WebElement:
        return self.wait(what or xpath, EC.presence_of_element_located((By.XPATH, xpath)))

    def clickable(self, xpath: str, what: str | None = None) -> WebElement:
        element = self.find(xpath, what)
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
        return self.wait(f"{what or xpath} (clickable)", EC.element_to_be_clickable(element))

    def button(self, text: str, within: str = "") -> WebElement:
        return self.clickable(f"{within}//button[normalize-space()={json.dumps(text)}]", f"a {text!r} button")

    def screenshot(self, name: str) -> Path:
        path = artefact_dir() / f"{name}.png"
        self.driver.save_screenshot(str(path))
        path.with_suffix(".html").write_text(self.driver.page_source)
        return path

    # --- doing -----------------------------------------------------------------------------------------
    def open(self, path: str) -> None:
        self.driver.get(self.base_url + path)

    def log_in(self, user: str, password: str) -> None:
        self.open("/")
        _type_into(self.driver, self.find("//input[@name='username']", "the login form"), user, "the user name")
        _type_into(self.driver, self.driver.find_element(By.NAME, "password"), password, "the password")
        self.driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        self.wait("the UI after logging in", lambda d: "/auth/login" not in d.current_url and "/login" not in
                  d.current_url)

    def open_trigger_form(self, dag_id: str) -> TriggerForm:
        self.open(f"/dags/{dag_id}")
        self.clickable("//button[@data-testid='trigger-dag-button']", f"{dag_id}'s Trigger button").click()
        self.find("//*[@role='dialog']//*[starts-with(@id, 'element_')]", "the trigger form's fields")
        return TriggerForm(self)

    def run_state(self, dag_id: str, run_id: str) -> str:
        """The state the run's page shows in the badge beside the run ID, e.g. ``Success``."""
        badge = self.find(f"//h2[normalize-space()={json.dumps(run_id)}]/following-sibling::"
                          "span[@data-testid='state-badge']", f"the state of run {run_id}")
        return badge.text.strip()

    def follow_run(self, dag_id: str, run_id: str, timeout: float, done: tuple[str, ...] = ("Success", "Failed")
                   ) -> str:
        """Open the run's page and watch its badge until the run ends (the page polls by itself)."""
        self.open(f"/dags/{dag_id}/runs/{urllib.parse.quote(run_id, safe='')}")
        deadline = time.monotonic() + timeout
        reloaded = time.monotonic()
        while time.monotonic() < deadline:
            state = self.run_state(dag_id, run_id)
            if state in done:
                return state
            time.sleep(3)
            if time.monotonic() - reloaded > 120:  # the page refreshes itself; reload now and then all the same
                self.driver.refresh()
                reloaded = time.monotonic()
        raise AssertionError(f"run {run_id} of {dag_id} still showed {self.run_state(dag_id, run_id)!r} after "
                             f"{timeout:.0f} s")


class TriggerForm:
    """The open *Trigger Dag* dialog: its fields are the DAG's Params (``element_<name>``)."""

    DIALOG = "//*[@role='dialog']"

    def __init__(self, browser: Browser) -> None:
        self.browser = browser

    def _section_of(self, element: WebElement) -> None:
        """Open the accordion section that holds ``element`` if it is folded away."""
        if element.is_displayed():
            return
        trigger = element.find_element(By.XPATH, "ancestor::*[@data-part='item'][1]//button[@data-part="
                                                 "'item-trigger'][1]")
        self.browser.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", trigger)
        trigger.click()
        self.browser.wait("the section to open", lambda _: element.is_displayed())

    def field(self, name: str) -> WebElement:
        element = self.browser.find(f"{self.DIALOG}//*[@id='element_{name}']", f"the form field {name}")
        self._section_of(element)
        self.browser.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
        return element

    def type(self, name: str, text: str) -> None:
        _type_into(self.browser.driver, self.field(name), text, f"the form field {name}")

    def paste_json(self, name: str, value: Any) -> None:
        """Replace the content of the field's code editor by ``value`` as JSON (SOF lists, parameter objects).

        As a person does: click into the editor, Ctrl+A, Delete, paste.
        """
        editor = self.field(name)
        editor.find_element(By.CSS_SELECTOR, ".view-lines").click()
        ActionChains(self.browser.driver).key_down(Keys.CONTROL).send_keys("a").key_up(Keys.CONTROL) \
            .send_keys(Keys.DELETE).perform()
        text = json.dumps(value, indent=2)  # as the UI formats it
        self.browser.driver.execute_script(_PASTE, editor, text)
        self.browser.wait(f"{name} to show the pasted JSON", lambda _: _editor_shows(editor, text))

    def switch(self, name: str, on: bool) -> None:
        root = self.browser.find(f"{self.DIALOG}//*[@id='switch:element_{name}']", f"the switch {name}")
        self._section_of(root)
        if (root.get_attribute("data-state") == "checked") != on:
            control = root.find_element(By.XPATH, f".//*[@id='switch:element_{name}:control']")
            self.browser.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", control)
            control.click()
        self.browser.wait(f"the switch {name} {'on' if on else 'off'}",
                          lambda _: (root.get_attribute("data-state") == "checked") == on)

    def choose_backfill(self) -> None:
        self.browser.clickable(f"{self.DIALOG}//label[.//*[normalize-space()='Backfill']]",
                               "the Backfill option").click()
        self.browser.find(f"{self.DIALOG}//*[normalize-space()='Date Range']", "the backfill's date range")

    def check(self, label: str, on: bool = True) -> None:
        """Tick (or untick) the dialog's checkbox labelled ``label``."""
        root = self.browser.find(f"{self.DIALOG}//label[@data-part='root']"
                                 f"[.//*[normalize-space()={json.dumps(label)}]]", f"the checkbox {label!r}")
        if (root.get_attribute("data-state") == "checked") != on:
            self.browser.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", root)
            root.click()
        self.browser.wait(f"the checkbox {label!r} {'ticked' if on else 'clear'}",
                          lambda _: (root.get_attribute("data-state") == "checked") == on)

    def date_range(self, start: str, end: str, time_of_day: str) -> None:
        """Fill the backfill's From/To pickers (dates ``YYYY/MM/DD``, time ``HH:mm``, UTC)."""
        for index, day in enumerate((start, end)):
            picker = self.browser.driver.find_elements(By.XPATH, f"{self.DIALOG}//*[@data-testid='datetime-input']")
            picker[index].click()
            popup = self.browser.find("//*[@data-scope='popover'][@data-part='content'][@data-state='open']",
                                      "the date picker")
            date_input = popup.find_element(By.XPATH, ".//input[@placeholder='YYYY/MM/DD']")
            time_input = popup.find_element(By.XPATH, ".//input[@placeholder='HH:mm']")
            _type_into(self.browser.driver, date_input, day, "the date picker's date")
            _type_into(self.browser.driver, time_input, time_of_day, "the date picker's time")
            picker[index].click()  # close the picker
            self.browser.wait("the date picker to close", functools.partial(_gone, popup))

    def submit_button(self, text: str = "Trigger") -> WebElement:
        buttons = self.browser.driver.find_elements(By.XPATH, f"{self.DIALOG}//button[normalize-space()="
                                                               f"{json.dumps(text)}]")
        if not buttons:
            raise AssertionError(f"the dialog has no {text!r} button")
        self.browser.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", buttons[-1])
        return buttons[-1]

    def sections_with_errors(self) -> list[str]:
        """The form sections whose heading carries the UI's error mark (an icon beside the section name)."""
        triggers = self.browser.driver.find_elements(By.XPATH, f"{self.DIALOG}//button[@data-part='item-trigger']")
        return [t.text.strip() for t in triggers
                if t.find_elements(By.XPATH, "./*[contains(@class, 'chakra-stack')]/*[name()='svg']")]

    def submit(self, text: str = "Trigger") -> None:
        button = self.submit_button(text)
        self.browser.wait(f"the {text!r} button enabled", lambda _: button.is_enabled())
        button.click()
