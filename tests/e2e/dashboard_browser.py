#!/usr/bin/python3
"""Drives the relais dashboard in headless Chromium for test_e2e_dashboard.

usage: dashboard_browser.py URL SCREENSHOT FIGURES PERIOD

Prints "ready" once the alerts page is live (the C test then moves the
broker's clock so that an alert opens), waits for the alert to appear on
the same page without a reload, acknowledges it with a note from the page,
waits for the page to show it acknowledged, takes a screenshot, then, as a
coordinator would, clicks through the other pages and notes what each
shows, for the C test to compare with the broker's answers:

  participant  the person of the alert, opened by clicking them in the
               alert's row: their phase and referral rows;
  figures      the indicators for PERIOD ({measure: text}), and charts,
               how many SVG charts the page drew;
  groups       the same by QPV: each column's head {code: name};
  csv          the CSV behind the page's download link (status, type,
               disposition, text), for the same period by QPV;
  flows        the referral-flow map for PERIOD: each arrow's ends and
               what it says when pointed at, and each node's label.

All of it goes to FIGURES as one JSON object.  Prints "done" and exits 0;
any failure prints "error: ..." and exits 1.  Every wait is bounded.
"""
import json
import shutil
import sys
import tempfile

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

WAIT_S = 90
NOTE = "appel de la Mission locale prevu"


def submit(drv, form):
    drv.find_element(By.CSS_SELECTOR, form + " button[type='submit']").click()


def open_participant(drv, wait, alert):
    """The person of the alert's row, opened by clicking their id."""
    link = drv.find_element(By.CSS_SELECTOR,
                            "tr[data-alert='%s'] a.participant" % alert)
    who = link.text
    link.click()
    phase = wait.until(lambda d: d.find_elements(
        By.CSS_SELECTOR, "#page-participant.active dd[data-field='phase']")
        or False)[0].text
    rows = drv.find_elements(By.CSS_SELECTOR,
                             "#participant-referrals tbody tr")
    return {"id": who, "phase": phase,
            "referrals": [[td.text for td in tr.find_elements(By.TAG_NAME, "td")]
                          for tr in rows]}


def fetch_link(drv, link_id):
    """What the browser gets when it follows the link (the CSV download)."""
    drv.set_script_timeout(WAIT_S)
    return drv.execute_async_script("""
        const done = arguments[arguments.length - 1];
        fetch(document.getElementById(arguments[0]).href)
          .then(async (r) => done({status: r.status,
            type: r.headers.get('Content-Type'),
            disposition: r.headers.get('Content-Disposition'),
            text: await r.text()}))
          .catch((e) => done({status: 0, text: String(e)}));""", link_id)


def read_indicators(drv, wait, period):
    """The period's totals, then the same by QPV and its CSV download."""
    drv.find_element(By.CSS_SELECTOR, "nav button[data-page='indicators']").click()
    drv.find_element(By.ID, "report-period").send_keys(period)
    submit(drv, "#report-form")
    wait.until(lambda d: d.find_element(By.ID, "report").get_attribute(
        "data-loaded"))
    shown = {td.get_attribute("data-measure"): td.text
             for td in drv.find_elements(By.CSS_SELECTOR, "td[data-measure]")}
    charts = len(drv.find_elements(By.CSS_SELECTOR, "#report-charts svg"))

    Select(drv.find_element(By.ID, "report-by")).select_by_value("qpv")
    submit(drv, "#report-form")
    heads = wait.until(lambda d: d.find_elements(
        By.CSS_SELECTOR, "#report thead th[data-group]") or False)
    groups = {th.get_attribute("data-group"): th.text for th in heads}
    return {"figures": shown, "charts": charts, "groups": groups,
            "csv": fetch_link(drv, "report-csv")}


def read_flows(drv, wait, period):
    """The referral-flow map: its arrows and its nodes."""
    drv.find_element(By.CSS_SELECTOR, "nav button[data-page='flows']").click()
    drv.find_element(By.ID, "flows-period").send_keys(period)
    submit(drv, "#flows-form")
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#flows-map svg")
               or False)
    edges = [{"from": p.get_attribute("data-from"),
              "to": p.get_attribute("data-to"),
              "label": p.find_element(By.TAG_NAME, "title")
              .get_attribute("textContent")}
             for p in drv.find_elements(By.CSS_SELECTOR,
                                        "#flows-map path.flow-edge")]
    nodes = {t.get_attribute("data-agent"): t.get_attribute("textContent")
             for t in drv.find_elements(By.CSS_SELECTOR,
                                        "#flows-map text[data-agent]")}
    return {"edges": edges, "nodes": nodes,
            "title": drv.find_element(By.ID, "flows-msg").text}


def main():
    url, shot, figures, period = sys.argv[1:5]
    profile = tempfile.mkdtemp(prefix="relais-chromium-")
    opts = Options()
    opts.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
              "--disable-gpu", "--window-size=1400,900", "--lang=fr-FR",
              "--user-data-dir=" + profile):
        opts.add_argument(a)
    try:
        drive(opts, url, shot, figures, period)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def drive(opts, url, shot, figures, period):
    drv = webdriver.Chrome(service=Service("/usr/bin/chromedriver"),
                           options=opts)
    try:
        # The other pages are redrawn when asked: an element read as the
        # redraw lands is looked up again.
        wait = WebDriverWait(drv, WAIT_S,
                             ignored_exceptions=[StaleElementReferenceException])
        drv.get(url)
        wait.until(lambda d: d.execute_script(
            "return document.body.dataset.ready === 'yes' && "
            "Number(document.body.dataset.version || 0) >= 1 && "
            "document.getElementById('live').textContent.includes('direct')"))
        if drv.find_elements(By.CSS_SELECTOR, "tr[data-alert]"):
            raise AssertionError("an alert is listed before the clock moved")
        # A mark that a reload would wipe out.
        drv.execute_script("window.relaisMark = 42;")
        print("ready", flush=True)

        rows = wait.until(lambda d: d.find_elements(
            By.CSS_SELECTOR, "tr[data-alert]") or False)
        if drv.execute_script("return window.relaisMark") != 42:
            raise AssertionError("the page was reloaded")
        row = rows[0]
        alert = row.get_attribute("data-alert")
        print("alert " + alert, flush=True)
        row.find_element(By.CSS_SELECTOR, "input.note").send_keys(NOTE)
        row.find_element(By.CSS_SELECTOR, "button.ack").click()
        # The live update changes the row the coordinator typed in, in
        # place: the same element, its note still typed.
        wait.until(lambda d: row.find_element(
            By.CSS_SELECTOR, "td.status").text == "acknowledged")
        if row.find_element(By.CSS_SELECTOR,
                            "input.note").get_attribute("value") != NOTE:
            raise AssertionError("the live update lost the note being typed")
        drv.save_screenshot(shot)

        seen = {"participant": open_participant(drv, wait, alert)}
        seen.update(read_indicators(drv, wait, period))
        seen["flows"] = read_flows(drv, wait, period)
        with open(figures, "w", encoding="utf-8") as f:
            json.dump(seen, f)
        print("done", flush=True)
    finally:
        drv.quit()


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # the C test prints it as the failure's reason
        print("error: %s: %s" % (type(e).__name__, e), flush=True)
        sys.exit(1)
